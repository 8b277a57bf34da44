"""The project's standard allocation workloads, generated in-package.

The same records as the project's trace generator (splitmix64-driven, so
identical on every machine): every benchmark, in Python or in C, replays
these traces. A record is ``(op, id, size, align_log2)`` with op one of
ALLOC, FREE, REALLOC; an id is reused only after it was freed.

    for op, ident, size, align_log2 in iter_ops("mixed"): ...
    write_trace("mixed", "/tmp/mixed.trc")   # the 16-byte-record file format
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator

ALLOC, FREE, REALLOC = 0, 1, 2
MAGIC = b"TLSFTRC1"
# The trace file (its C structures: src/tlsf/include/tlsf_trace.h).
HEADER = struct.Struct("<8sQQ")  # magic, n_ops, n_ids
RECORD = struct.Struct("<BBHIQ")  # op, align_log2, reserved, id, size
MASK64 = (1 << 64) - 1

Op = tuple[int, int, int, int]


class SplitMix64:
    """The generator behind every workload (Steele, Lea and Flood's splitmix64)."""

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self) -> float:
        return (self.next() >> 11) * (1.0 / (1 << 53))

    def below(self, n: int) -> int:
        return self.next() % n


def _churn(
    seed: int,
    n_ops: int,
    max_live: int,
    size_fn: Callable[[SplitMix64], int],
    p_free: float = 0.5,
    p_realloc: float = 0.0,
    align_fn: Callable[[SplitMix64], int] | None = None,
) -> Iterator[Op]:
    """Allocate until max_live blocks are live; then free a random live block
    with probability p_free (realloc one with p_realloc), else allocate.
    Nothing live forces an alloc; max_live live forces a free."""
    rng = SplitMix64(seed)
    live: list[int] = []  # live ids; random pick and swap-remove
    free_ids: list[int] = []
    n_ids = 0
    ramp = True
    for _ in range(n_ops):
        n = len(live)
        if ramp:
            action = ALLOC
            ramp = n + 1 < max_live
        elif n == 0:
            action = ALLOC
        elif n >= max_live:
            action = FREE
        else:
            r = rng.uniform()
            action = FREE if r < p_free else REALLOC if r < p_free + p_realloc else ALLOC
        if action == ALLOC:
            size = size_fn(rng)
            if free_ids:
                ident = free_ids.pop()
            else:
                ident = n_ids
                n_ids += 1
            live.append(ident)
            yield (ALLOC, ident, size, align_fn(rng) if align_fn else 0)
        elif action == FREE:
            k = rng.below(n)
            ident = live[k]
            last = live.pop()
            if k < len(live):
                live[k] = last
            free_ids.append(ident)
            yield (FREE, ident, 0, 0)
        else:
            yield (REALLOC, live[rng.below(n)], size_fn(rng), 0)


def _log_uniform(lo: int, ratio: float) -> Callable[[SplitMix64], int]:
    return lambda rng: int(lo * math.pow(ratio, rng.uniform()))


def _rlsf_stress(seed: int, n_ops: int) -> Iterator[Op]:
    """rlsf's benchmark pattern: ten size ranges in turn; each step frees slot
    i and allocates a new random layout into it (align 4, 8, 16 or 32)."""
    ranges = [(1, 7), (1, 15), (1, 63), (1, 255), (16, 15), (16, 63),
              (16, 127), (64, 63), (64, 127), (128, 127)]  # fmt: skip
    arena = 70 * 1024
    rng = SplitMix64(seed)
    per_range = n_ops // len(ranges)
    for lo, mask in ranges:
        slots = min(arena // (lo + mask + 8) // 2, 256)
        for i in range(slots):
            yield (ALLOC, i, lo + rng.below(mask + 1), 2 + rng.below(4))
        i = 0
        for _ in range(max(0, (per_range - 2 * slots) // 2)):
            yield (FREE, i, 0, 0)
            yield (ALLOC, i, lo + rng.below(mask + 1), 2 + rng.below(4))
            i = (i + 1) % slots
        for k in range(slots):
            yield (FREE, k, 0, 0)


WORKLOADS: dict[str, tuple[str, Callable[[], Iterator[Op]]]] = {
    "mixed": (
        "log-uniform 16 B..64 KiB, up to 10,000 live, free p=0.5",
        lambda: _churn(0x5EED2024, 1_000_000, 10_000, _log_uniform(16, 4096.0)),
    ),
    "small": (
        "uniform 1..256 B, up to 20,000 live, free p=0.5",
        lambda: _churn(0x5A11, 1_000_000, 20_000, lambda r: 1 + r.below(256)),
    ),
    "uniform": (
        "every request 3,000 B (not a size class), up to 20,000 live",
        lambda: _churn(0xC0FFEE, 500_000, 20_000, lambda r: 3000),
    ),
    "realloc": (
        "log-uniform 16 B..64 KiB, 30% realloc, up to 5,000 live",
        lambda: _churn(0x4EA1, 500_000, 5_000, _log_uniform(16, 4096.0), 0.35, 0.3),
    ),
    "aligned": (
        "log-uniform 16 B..16 KiB, alignment 16..4096, up to 5,000 live",
        lambda: _churn(0xA11C, 500_000, 5_000, _log_uniform(16, 1024.0),
                       align_fn=lambda r: 4 + r.below(9)),
    ),
    "rlsf-stress": (
        "rlsf's benchmark: 10 size ranges 1..255 B, align 4..32, free slot i then alloc",
        lambda: _rlsf_stress(0x12345689, 1_000_000),
    ),
}


def iter_ops(name: str) -> Iterator[Op]:
    """The records of workload `name`, generated lazily."""
    return WORKLOADS[name][1]()


def write_trace(name: str, path: str) -> tuple[int, int]:
    """Write workload `name` as a trace file; returns (n_ops, n_ids)."""
    return write_ops(list(iter_ops(name)), path)


def write_ops(ops: list[Op], path: str) -> tuple[int, int]:
    """Write records (op, id, size, align_log2) as a trace file; returns (n_ops, n_ids)."""
    n_ids = 1 + max((op[1] for op in ops), default=-1)
    pack = RECORD.pack
    with open(path, "wb") as f:
        f.write(HEADER.pack(MAGIC, len(ops), n_ids))
        f.write(b"".join(pack(o, a, 0, i, s) for (o, i, s, a) in ops))
    return len(ops), n_ids


def read_trace(path: str) -> Iterator[Op]:
    with open(path, "rb") as f:
        magic, n, _ = HEADER.unpack(f.read(HEADER.size))
        if magic != MAGIC:
            raise ValueError(f"{path}: not a trace file")
        data = f.read()
    if len(data) < n * RECORD.size:
        raise ValueError(f"{path}: truncated ({len(data)} bytes for {n} records)")
    # More is a recording cut between writing records and the header that counts them.
    for o, a, _, i, s in RECORD.iter_unpack(data[: n * RECORD.size]):
        yield (o, i, s, a)


__all__ = ["ALLOC", "FREE", "REALLOC", "WORKLOADS", "SplitMix64", "iter_ops", "read_trace",
           "write_ops", "write_trace"]
