"""python -m tlsf bench: replay standard workloads, or a program's recorded
trace (--trace FILE: python -m tlsf run --trace FILE -- ...), through tlsf
and its peers.

Every allocator replays the same records of the same workload with the same
loop, in one process, interleaved over several rounds (so that a noisy
machine slows all of them alike). The floor is that loop calling do-nothing C
methods with tlsf's signatures: the least any Python allocator call can cost.
Fragmentation is measured in a separate untimed replay: the highest byte ever
handed out over the peak of live requested bytes.

Peers without alignment replay the trace without it; peers without realloc
replay a realloc as allocate + free (no copy), and OffsetAllocator, which
only resizes in place, as resize or else allocate + free.
"""

from __future__ import annotations

import argparse
import json
import mmap
import statistics
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import tlsf
from tlsf import pure
from tlsf._cli import Parser, clear_progress, environment, output_file, plural, positive_int, speed
from tlsf.workloads import ALLOC, FREE, WORKLOADS, iter_ops, read_trace

Records = list[tuple[int, int, int, int]]  # (op, id, size, alignment)


# ------------------------------------------------------------------ the replay
# One loop per calling convention; the loops are otherwise identical.


def replay_aligned(ops: Records, n_ids: int, alloc: Any, free: Any, realloc: Any) -> None:
    slots: list[Any] = [None] * n_ids
    for op, ident, size, align in ops:
        if op == ALLOC:
            slots[ident] = alloc(size, align)
        elif op == FREE:
            free(slots[ident])
        else:
            slots[ident] = realloc(slots[ident], size)


def replay_unaligned(ops: Records, n_ids: int, alloc: Any, free: Any, realloc: Any) -> None:
    slots: list[Any] = [None] * n_ids
    for op, ident, size, _align in ops:
        if op == ALLOC:
            slots[ident] = alloc(size)
        elif op == FREE:
            free(slots[ident])
        else:
            slots[ident] = realloc(slots[ident], size)


# ------------------------------------------------------------- the allocators


@dataclass
class Contender:
    """One allocator: how to make a fresh instance and replay through it."""

    name: str
    make: Callable[[Any], Any]  # memory (a pre-faulted bytearray) -> state
    calls: Callable[[Any], tuple[Any, Any, Any]]  # state -> (alloc, free, realloc)
    aligned: bool  # takes (size, align)
    end: Callable[[Any, Any, int], int]  # (state, handle, size) -> highest byte used
    close: Callable[[Any], None] = lambda state: None
    batch: bool = False  # has alloc_many / free_many


def _heap_contender(name: str, cls: Any) -> Contender:
    return Contender(
        name,
        make=lambda memory: cls(memory),
        calls=lambda h: (h.alloc, h.free, h.realloc),
        aligned=True,
        end=lambda h, off, size: off + size,
        close=lambda h: h.close(),
        batch=True,
    )


def _growing_contender(name: str, make: Callable[[int], Any]) -> Contender:
    """A heap that starts empty and grows from the system, made by
    make(max_size) with max_size the others' memory: its growth and page
    faults are in its time."""
    return Contender(
        name,
        make=lambda memory: make(len(memory)),
        calls=lambda h: (h.alloc, h.free, h.realloc),
        aligned=True,
        end=lambda h, off, size: off + size,
        close=lambda h: h.close(),
        batch=True,
    )


def _shared_heap(max_size: int) -> tlsf.SharedHeap:
    """A SharedHeap in a new named segment, which takes the segment's
    process-shared lock at every call; closing it removes the name."""
    return tlsf.SharedHeap.create(max_size=max_size)


def realloc_by_resize(a: Any) -> Callable[[int, int], int]:
    """realloc for an OffsetAllocator: resize in place, else allocate + free (no data to copy)."""
    alloc, free, resize = a.alloc, a.free, a.resize

    def realloc(off: int, size: int) -> int:
        if resize(off, size):
            return off
        new = alloc(size)
        free(off)
        return new

    return realloc


def _offset_contender(name: str, cls: Any) -> Contender:
    return Contender(
        name,
        make=lambda memory: cls(len(memory)),
        calls=lambda a: (a.alloc, a.free, realloc_by_resize(a)),
        aligned=True,
        end=lambda a, off, size: off + size,
        batch=True,
    )


def _moving_realloc(alloc: Any, free: Any) -> Any:
    """realloc for a peer that has none: allocate + free (no copy)."""

    def realloc(block: Any, size: int) -> Any:
        new = alloc(size)
        free(block)
        return new

    return realloc


def _mp_contender() -> Contender:
    from multiprocessing.heap import Heap as MpHeap

    def calls(h: Any) -> tuple[Any, Any, Any]:
        return h.malloc, h.free, _moving_realloc(h.malloc, h.free)

    def end(h: Any, block: Any, size: int) -> int:
        return sum(arena.size for arena in h._arenas)  # its footprint: every arena mapped

    return Contender("multiprocessing.heap", lambda memory: MpHeap(), calls, False, end)


def _offset_allocator_contender() -> Contender | None:
    try:
        import TLSFAllocator  # type: ignore[import-not-found]
    except ImportError:
        return None
    failed = 0xFFFFFFFF

    def calls(a: Any) -> tuple[Any, Any, Any]:
        return a.allocate, a.free, _moving_realloc(a.allocate, a.free)

    def end(a: Any, block: Any, size: int) -> int:
        if block.offset == failed:
            raise tlsf.OutOfMemoryError("TLSFAllocator failed")
        return int(block.offset) + size

    return Contender(
        "TLSFAllocator",
        lambda memory: TLSFAllocator.OffsetAllocator(min(len(memory), failed), 1 << 21),
        calls,
        False,
        end,
    )


def _floor_contender() -> Contender | None:
    try:
        from tlsf._floor import _Floor  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Contender(
        "floor",
        make=lambda memory: _Floor(),
        calls=lambda f: (f.alloc, f.free, f.realloc),
        aligned=True,
        end=lambda f, off, size: 0,
    )


def contenders() -> list[Contender]:
    found: list[Contender | None] = [_floor_contender()]
    if tlsf.IMPLEMENTATION == "c":
        found.append(_heap_contender("tlsf.Heap (C)", tlsf.Heap))
        found.append(_growing_contender("tlsf.FlexHeap (C)", tlsf.FlexHeap))
        found.append(_growing_contender("tlsf.SharedHeap (C)", _shared_heap))
        found.append(_offset_contender("tlsf.OffsetAllocator (C)", tlsf.OffsetAllocator))
    found += [
        _heap_contender("tlsf.pure.Heap", pure.Heap),
        _growing_contender("tlsf.pure.FlexHeap", pure.FlexHeap),
        _offset_contender("tlsf.pure.OffsetAllocator", pure.OffsetAllocator),
        _mp_contender(),
        _offset_allocator_contender(),
    ]
    return [c for c in found if c is not None]


def unavailable() -> list[str]:
    """What contenders() leaves out on this installation, and why."""
    out = []
    if tlsf.IMPLEMENTATION != "c":
        out.append("tlsf's C core (not built, or TLSF_PURE_PYTHON set: only the twins run)")
    if _floor_contender() is None:
        out.append("floor (the extension tlsf._floor was not built)")
    if _offset_allocator_contender() is None:
        out.append("TLSFAllocator (pip install tlsfallocator, or the bench extra)")
    return out


# --------------------------------------------------------------- measurement


@dataclass
class Result:
    name: str
    batch_ops_per_s: float = 0.0  # alloc_many/free_many, for the heaps
    times: list[float] = field(default_factory=list)  # ns per operation, one per round
    high_water: int = 0
    peak_live: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def footprint(c: Contender, ops: Records, n_ids: int, memory: bytearray) -> tuple[int, int]:
    """(highest byte used, peak live requested bytes) over one untimed replay."""
    state = c.make(memory)
    alloc, free, realloc = c.calls(state)
    slots: list[Any] = [None] * n_ids
    sizes = [0] * n_ids
    live = peak = high = 0
    try:
        for op, ident, size, align in ops:
            if op == FREE:
                free(slots[ident])
                live -= sizes[ident]
                continue
            if op == ALLOC:
                h = slots[ident] = alloc(size, align) if c.aligned else alloc(size)
                live += size
            else:
                h = slots[ident] = realloc(slots[ident], size)
                live += size - sizes[ident]
            sizes[ident] = size
            peak = max(peak, live)
            high = max(high, c.end(state, h, size))
    finally:
        c.close(state)
    return high, peak


def records(source: Iterable[tuple[int, int, int, int]], ops_limit: int | None) -> Records:
    """The first ops_limit records of a workload or a trace (read_trace), with
    alignments in bytes."""
    return [(op, ident, size, 1 << align_log2)
            for op, ident, size, align_log2 in islice(source, ops_limit)]  # fmt: skip


def live_peak(ops: Records) -> tuple[int, int]:
    """(the peak of live requested bytes, how many operations have run when
    live bytes first reach it)."""
    live: dict[int, int] = {}
    total = peak = at = 0
    for i, (op, ident, size, _) in enumerate(ops):
        total -= live.pop(ident, 0)
        if op != FREE:
            live[ident] = size
            total += size
        if total > peak:
            peak, at = total, i + 1
    return peak, at


def max_live_bytes(ops: Records) -> int:
    """The peak of live requested bytes: no heap smaller than this can replay ops."""
    return live_peak(ops)[0]


def trace_capacity(ops: Records) -> int:
    """A capacity that a recorded trace fits in whatever the allocator: four
    times its peak of live bytes plus twice its largest request, 64 MiB more."""
    largest = max((size for op, _, size, _ in ops if op != FREE), default=0)
    return 4 * max_live_bytes(ops) + 2 * largest + (64 << 20)


def prefaulted(capacity: int) -> bytearray:
    """One buffer for every heap, its pages touched once: page faults are the
    operating system's cost, not the allocator's."""
    memory = bytearray(capacity)
    memory[:: mmap.PAGESIZE] = bytes(len(range(0, capacity, mmap.PAGESIZE)))
    return memory


def run(name: str, ops: Records, rounds: int, capacity: int,
        progress: Callable[[str], None]) -> list[Result]:
    n_ids = 1 + max(r[1] for r in ops)
    memory = prefaulted(capacity)
    cs = contenders()
    results = {c.name: Result(c.name) for c in cs}
    for r in range(rounds):
        for c in cs:
            progress(f"{name}: round {r + 1}/{rounds}, {c.name}")
            state = c.make(memory)
            alloc, free, realloc = c.calls(state)
            loop = replay_aligned if c.aligned else replay_unaligned
            t0 = time.perf_counter()
            loop(ops, n_ids, alloc, free, realloc)
            results[c.name].times.append((time.perf_counter() - t0) / len(ops) * 1e9)
            c.close(state)
    for c in cs:
        if c.batch:
            progress(f"{name}: batch calls, {c.name}")
            results[c.name].batch_ops_per_s = batch_rate(c, ops, memory, rounds)
    for c in cs:
        if c.name != "floor":
            progress(f"{name}: fragmentation, {c.name}")
            results[c.name].high_water, results[c.name].peak_live = footprint(c, ops, n_ids, memory)
    return list(results.values())


def batch_rate(c: Contender, ops: Records, memory: bytearray, rounds: int) -> float:
    """Operations per second (allocs plus frees) of alloc_many / free_many:
    the workload's allocation sizes in batches as large as its peak live count."""
    sizes = [size for op, _, size, _ in ops if op == ALLOC]
    batch = max(1, max_live(ops))
    chunks = [array("q", sizes[k : k + batch]) for k in range(0, len(sizes), batch)]
    best = []
    for _ in range(rounds):
        state = c.make(memory)
        t0 = time.perf_counter()
        for chunk in chunks:
            state.free_many(state.alloc_many(chunk))
        best.append(2 * len(sizes) / (time.perf_counter() - t0))
        c.close(state)
    return statistics.median(best)


def max_live(ops: Records) -> int:
    live = peak = 0
    for op, _, _, _ in ops:
        live += 1 if op == ALLOC else -1 if op == FREE else 0
        peak = max(peak, live)
    return peak


# ------------------------------------------------------------------- report


def table(title: str, results: Sequence[Result]) -> str:
    by = {r.name: r for r in results}
    floor = by.get("floor")
    lines = [
        title,
        f"{'allocator':<26}{'ns/op':>10}{'min-max':>18}{'x floor':>9}{'high-water/peak':>17}",
    ]
    for r in results:
        ratio = f"{r.median / floor.median:.2f}" if floor else "-"
        frag = f"{r.high_water / r.peak_live:.3f}" if r.peak_live else "-"
        spread = f"{min(r.times):.0f}-{max(r.times):.0f}"
        lines.append(f"{r.name:<26}{r.median:>10.1f}{spread:>18}{ratio:>9}{frag:>17}")
    for r in results:
        if r.batch_ops_per_s:
            lines.append(f"{r.name} alloc_many/free_many: {r.batch_ops_per_s / 1e6:.2f} million ops/s")
    for grown, heap in (("tlsf.FlexHeap (C)", "tlsf.Heap (C)"), ("tlsf.SharedHeap (C)", "tlsf.Heap (C)"),
                        ("tlsf.pure.FlexHeap", "tlsf.pure.Heap")):  # fmt: skip
        if grown in by and heap in by:
            lines.append(f"{grown}, starting empty, takes {by[grown].median / by[heap].median:.2f}x "
                         f"the time of {heap} over pre-faulted memory")  # fmt: skip
    shared, flex = by.get("tlsf.SharedHeap (C)"), by.get("tlsf.FlexHeap (C)")
    if shared and flex:
        # Both start empty and grow: what is left between them is the lock and the shared mapping.
        lines.append(f"{shared.name} takes {shared.median / flex.median:.2f}x the time of {flex.name}, "
                     "both starting empty")  # fmt: skip
    for lead in ("tlsf.Heap (C)", "tlsf.OffsetAllocator (C)", "tlsf.pure.Heap", "tlsf.pure.OffsetAllocator"):
        # Each engine against the peers and, for the C core, its own twin: the
        # pairs a user chooses between (growing heaps are compared above).
        others = [r for r in results if r.name not in (lead, "floor") and "FlexHeap" not in r.name
                  and "SharedHeap" not in r.name and not (lead.startswith("tlsf.pure") and "(C)" in r.name)]
        if lead in by and others:
            lines.append(f"{lead}: " + ", ".join(f"{speed(by[lead].median, r.median)} {r.name}"
                                                 for r in others))
    return "\n".join(lines)


def progress(msg: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\x1b[K{msg}")
    else:
        sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _report(bench: Any, n: int, rounds: int, json_path: str | None) -> int:
    """Runs one of the separate benches (bench_shared, bench_numpy: measure and
    table) sized by n, prints its table, and writes its figures to json_path."""
    measured = bench.measure(n, rounds, progress)
    clear_progress()
    print(bench.table(n, rounds, measured))
    if json_path:
        with open(json_path, "w") as f:
            json.dump({**environment(bench=bench.__name__, n=n, rounds=rounds), "results": measured}, f,
                      indent=2)
    return 0


def main(argv: Sequence[str]) -> int:
    p = Parser(prog="python -m tlsf bench", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="mixed", choices=sorted(WORKLOADS))
    p.add_argument("--all", action="store_true", help="every workload")
    p.add_argument("--rounds", type=positive_int, default=5, help="timed replays per allocator (default 5)")
    p.add_argument("--ops", type=positive_int, default=None, help="only the first N records")
    p.add_argument("--capacity", type=positive_int, default=None,
                   help="bytes of each heap (default 256 MiB; for a trace, what its peak needs)")
    p.add_argument("--trace", metavar="FILE",
                   help="replay a recorded trace (python -m tlsf run --trace FILE -- ...) instead")
    p.add_argument("--json", metavar="FILE", type=output_file, help="also write the results as JSON")
    p.add_argument("--trim", type=positive_int, metavar="MIB", nargs="?", const=1024,
                   help="instead: memory given back after freeing 99%% of MIB (default 1024) "
                        "MiB, FlexHeap against glibc (tlsf.bench_trim)")  # fmt: skip
    p.add_argument("--shared", type=positive_int, metavar="N", nargs="?", const=500_000,
                   help="instead: SharedHeap against a SharedMemory per object, shared-allocator, "
                        "2 processes on one heap, numpy arrays filled by pool workers; N (default "
                        "500000) sizes the loops (tlsf.bench_shared)")  # fmt: skip
    p.add_argument("--numpy", type=positive_int, metavar="N", nargs="?", const=200_000,
                   help="instead: numpy's memory handler over a tlsf heap (tlsf.numpy) against numpy's "
                        "default and numpy-allocator + TLSFAllocator, a numpy workload, heap.ndarray; "
                        "N (default 200000) sizes the loops (tlsf.bench_numpy)")  # fmt: skip
    a = p.parse_args(argv)
    if a.trim is not None:
        from tlsf.bench_trim import main as trim_report

        print(trim_report(a.trim))
        return 0
    if a.shared is not None:
        if tlsf.IMPLEMENTATION != "c":
            p.error("--shared: tlsf.SharedHeap needs the C extension tlsf._core")
        from tlsf import bench_shared

        return _report(bench_shared, a.shared, a.rounds, a.json)

    if a.numpy is not None:
        try:
            import numpy  # noqa: F401
        except ImportError:
            p.error("--numpy: numpy is not installed (pip install numpy)")
        from tlsf import bench_numpy

        return _report(bench_numpy, a.numpy, a.rounds, a.json)

    if a.trace:
        try:
            sources = [(a.trace, records(read_trace(a.trace), a.ops))]
        except (OSError, ValueError) as e:
            p.error(f"--trace: {e}")
        if not sources[0][1]:
            p.error(f"--trace: {a.trace} holds no operations")
    else:
        names = sorted(WORKLOADS) if a.all else [a.workload]
        sources = [(name, records(iter_ops(name), a.ops)) for name in names]
    if a.capacity is not None:
        for name, ops in sources:
            if a.capacity < max_live_bytes(ops):
                p.error(f"--capacity {a.capacity:,}: {name} needs at least {max_live_bytes(ops):,} bytes "
                        "live at its peak")
    print(f"tlsf {tlsf.__version__} ({tlsf.IMPLEMENTATION}), Python {sys.version.split()[0]}, "
          f"{plural(a.rounds, 'round')}, median per operation (one op = one alloc, free or realloc)")
    for missing in unavailable():
        print(f"not measured here: {missing}")
    report: dict[str, Any] = {}
    for name, ops in sources:
        capacity = a.capacity or (trace_capacity(ops) if a.trace else 256 << 20)
        try:
            results = run(name, ops, a.rounds, capacity, progress)
        except tlsf.OutOfMemoryError as e:
            clear_progress()
            p.exit(2, f"{p.prog}: error: {name} does not fit in heaps of {capacity:,} bytes ({e}); "
                      "give a larger --capacity\n")
        clear_progress()
        what = f"trace {name}" if a.trace else f"workload {name!r} ({WORKLOADS[name][0]})"
        print(table(f"{what}: {plural(len(ops), 'operation')}, heaps of {capacity >> 20} MiB", results),
              flush=True)
        report[name] = [
            {"allocator": r.name, "ns_per_op": r.median, "times": r.times,
             "high_water": r.high_water, "peak_live": r.peak_live,
             "batch_ops_per_s": r.batch_ops_per_s}
            for r in results
        ]
    if a.json:
        with open(a.json, "w") as f:
            json.dump({**environment(rounds=a.rounds, ops={name: len(ops) for name, ops in sources},
                                     not_measured=unavailable()),
                       "results": report}, f, indent=2)
    return 0
