"""An allocation-heavy Python program, a workload of run.py.

    python python_alloc.py [--scale S] [--seed N]

CPython serves objects of at most 512 bytes from its own pools (pymalloc),
whose 1 MiB arenas are mmap'ed, so a program's malloc sees the larger
objects: the tables of big dicts and sets, the item arrays of long lists
(grown by realloc as they are appended to), long strings and bytes, and
bytearrays resized in place. Every phase here makes many of those, of varied
sizes and lifetimes, from a seeded generator; large blocks (256 KiB .. 4 MiB)
are included, which glibc serves by mmap and other allocators from their
heaps. Each phase prints a checksum of what it computed, so the output is the
same under every allocator (run.py compares it); the time goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import zlib
from typing import Any

# Size classes of the bytes phase: (weight, low, high), log-uniform within each.
BYTES_SIZES = ((70, 16, 4096), (25, 4096, 256 * 1024), (5, 256 * 1024, 4 * 1024 * 1024))


def log_uniform(rng: random.Random, low: int, high: int) -> int:
    """A size in [low, high), its logarithm uniform."""
    return int(low * (high / low) ** rng.random())


def keep(rng: random.Random, live: list[Any], obj: Any, cap: int) -> None:
    """Keeps obj among at most cap live objects, replacing a random one when full."""
    if len(live) < cap:
        live.append(obj)
    else:
        live[rng.randrange(cap)] = obj


def phase_dicts(rng: random.Random, n: int) -> int:
    """Dicts of 1 .. 20000 keys, kept in a window of 64, some grown and shrunk."""
    live: list[dict[str, int]] = []
    check = 0
    for i in range(n):
        size = log_uniform(rng, 1, 20000)
        d = {f"k{i}_{j}": j for j in range(size)}
        if rng.random() < 0.3:  # grow by half: the table is reallocated
            d.update({f"g{j}": -j for j in range(size // 2)})
        if rng.random() < 0.2:  # empty most of it, then a copy (a new small table)
            for key in list(d)[: len(d) * 3 // 4]:
                del d[key]
            d = dict(d)
        check = (check + len(d) + sum(d.values())) & 0xFFFFFFFF
        keep(rng, live, d, 64)
    return check + sum(len(d) for d in live)


def phase_lists(rng: random.Random, n: int) -> int:
    """Lists grown by append (realloc), comprehensions, sorts, slices, sets."""
    live: list[list[int]] = []
    check = 0
    for _ in range(n):
        size = log_uniform(rng, 8, 200000)
        xs: list[int] = []
        for k in range(size):
            xs.append(k * 7919 % 10007)
        ys = sorted(xs)
        zs = [x + 1 for x in ys[::3]]
        s = set(zs)
        check = (check + len(s) + sum(zs[:100]) + ys[len(ys) // 2]) & 0xFFFFFFFF
        del xs[len(xs) // 2 :]  # shrinks: realloc down
        keep(rng, live, xs, 32)
    return check + sum(len(x) for x in live)


def phase_strings(rng: random.Random, n: int) -> int:
    """Long strings: joins, repeats, growing concatenation, encode and decode, replace."""
    words = [f"word{i}" * (1 + i % 7) for i in range(500)]
    live: list[str] = []
    check = 0
    for _ in range(n):
        k = log_uniform(rng, 10, 20000)
        s = " ".join(rng.choice(words) for _ in range(k))
        t = ""
        for piece in s.split(" ")[:2000]:
            t += piece  # grown in place by realloc while it is the only reference
        u = s.upper().replace("WORD", "w\u00e9rd")
        b = u.encode("utf-8")
        check = zlib.crc32(b[:4096], check) ^ len(t) ^ len(b.decode("utf-8"))
        keep(rng, live, u, 64)
    return check + sum(len(s) for s in live)


def make_document(rng: random.Random, depth: int) -> Any:
    """A nested JSON-able value."""
    if depth == 0:
        r = rng.random()
        if r < 0.3:
            return rng.randrange(10**9)
        if r < 0.5:
            return rng.random()
        if r < 0.6:
            return None
        return "".join(rng.choice("abcdefghij \u00e9\u4e2d") for _ in range(log_uniform(rng, 1, 300)))
    if rng.random() < 0.5:
        return [make_document(rng, depth - 1) for _ in range(rng.randrange(1, 12))]
    return {f"f{i}": make_document(rng, depth - 1) for i in range(rng.randrange(1, 12))}


def phase_json(rng: random.Random, n: int) -> int:
    """JSON round trips of nested documents (one large text per document)."""
    check = 0
    for _ in range(n):
        doc = make_document(rng, rng.randrange(2, 5))
        text = json.dumps(doc, sort_keys=True)
        back = json.loads(text)
        again = json.dumps(back, sort_keys=True, indent=1)
        if json.loads(again) != back:
            raise SystemExit("json round trip differs")
        check = zlib.crc32(text.encode(), check)
    return check


def phase_bytes(rng: random.Random, n: int) -> int:
    """bytes and bytearrays of 16 B .. 4 MiB, 1000 live, replaced at random; bytearrays resized."""
    weights = [w for w, _, _ in BYTES_SIZES]
    live: list[bytes | bytearray | None] = [None] * 1000
    check = 0
    total = 0
    for i in range(n):
        _, low, high = rng.choices(BYTES_SIZES, weights)[0]
        size = log_uniform(rng, low, high)
        kind = rng.random()
        obj: bytes | bytearray
        if kind < 0.5:
            obj = bytes([i & 0xFF]) * size
        elif kind < 0.8:
            obj = bytearray(size)
            obj[0] = i & 0xFF
            obj += b"x" * (size // 3)  # resized in place: realloc
            del obj[size // 2 :]  # and down
        else:
            obj = b"".join([b"ab", bytes(size), b"cd"])
        slot = rng.randrange(len(live))
        old = live[slot]
        if old is not None:
            check = (check + old[0] + len(old)) & 0xFFFFFFFF
            total -= len(old)
        live[slot] = obj
        total += len(obj)
    return check ^ total


PHASES = (
    ("dicts", phase_dicts, 400),
    ("lists", phase_lists, 120),
    ("strings", phase_strings, 250),
    ("json", phase_json, 150),
    ("bytes", phase_bytes, 40000),
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0, help="multiply every phase's count (default 1)")
    p.add_argument("--seed", type=int, default=12345)
    args = p.parse_args()
    for name, phase, count in PHASES:
        start = time.perf_counter()
        check = phase(random.Random(f"{args.seed}/{name}"), max(1, round(count * args.scale)))
        print(f"{name}: {check}")
        print(f"{name}: {time.perf_counter() - start:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
