"""python -m tlsf replay: replay a standard workload or a recorded trace
through chosen allocators, every operation timed, and show what happened:
live bytes and each allocator's high-water mark over time (fragmentation as
it happens), the latency distribution, and the heap at its peak of live
bytes (python -m tlsf map: that heap alone, as text or a picture).

A trace is the project's 16-byte-record file (python -m tlsf run --trace
FILE -- COMMAND records one; tlsf.workloads.write_trace writes a workload).
Latencies are Python-level: a perf_counter_ns pair around each call, so the
timer's own cost (tens of ns) is in every figure, and the garbage collector
is paused during a replay (its pauses are the interpreter's, not an
allocator's); --native BENCH adds the
native bench's percentiles (benchmarks/native: make, then pass ./bench).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import tlsf
from tlsf._cli import Parser, clear_progress, environment, output_file, plural, positive_int
from tlsf.bench import (
    Contender,
    Records,
    contenders,
    live_peak,
    max_live_bytes,
    prefaulted,
    records,
    trace_capacity,
)
from tlsf.heapmap import Blocks, Summary, summary, text_map
from tlsf.workloads import ALLOC, FREE, WORKLOADS, iter_ops, read_trace, write_ops

# --allocator names: the C core's type when it is built, else the twin's.
ALLOCATORS: dict[str, tuple[str, ...]] = {
    "heap": ("tlsf.Heap (C)", "tlsf.pure.Heap"),
    "flex": ("tlsf.FlexHeap (C)", "tlsf.pure.FlexHeap"),
    "shared": ("tlsf.SharedHeap (C)",),
    "offset": ("tlsf.OffsetAllocator (C)", "tlsf.pure.OffsetAllocator"),
    "pure-heap": ("tlsf.pure.Heap",),
    "pure-flex": ("tlsf.pure.FlexHeap",),
    "pure-offset": ("tlsf.pure.OffsetAllocator",),
    "multiprocessing": ("multiprocessing.heap",),
    "tlsfallocator": ("TLSFAllocator",),
}
PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)


@dataclass
class Run:
    """One allocator's replay: per-operation latency, the timeline of live
    bytes and high-water mark, and the heap at the peak of live bytes."""

    allocator: str
    latency_ns: array  # per operation, in record order, timer included
    seconds: float  # the calls alone
    timeline: list[tuple[int, int, int]]  # (operations done, live bytes, high-water mark)
    peak_live: int = 0
    high_water: int = 0
    peak_at: int = 0  # operations done when live bytes peaked
    blocks: Blocks | None = None  # walk() at the peak, for heaps that walk
    figures: Summary | None = None  # and the heap's figures then
    sorted_ns: list[int] = field(default_factory=list)

    def percentile(self, p: float) -> int:
        if not self.sorted_ns:
            self.sorted_ns = sorted(self.latency_ns)
        return self.sorted_ns[min(len(self.sorted_ns) - 1, int(len(self.sorted_ns) * p / 100))]

    def to_json(self) -> dict[str, Any]:
        return {
            "allocator": self.allocator, "operations": len(self.latency_ns), "seconds": self.seconds,
            "ns_per_op": self.seconds * 1e9 / max(1, len(self.latency_ns)),
            "latency_ns": {**{f"p{p:g}": self.percentile(p) for p in PERCENTILES},
                           "max": self.percentile(100)},
            "peak_live": self.peak_live, "high_water": self.high_water, "peak_at": self.peak_at,
            "heap_at_peak": self.figures._asdict() if self.figures else None,
            "timeline": self.timeline,
        }


def replay(c: Contender, ops: Records, memory: bytearray, *, stop: int | None = None,
           samples: int = 2000, progress: Callable[[float], None] | None = None,
           keep: Callable[[Any], None] | None = None) -> Run:
    """Replays ops through a fresh instance of c, each call timed; the heap's
    blocks are kept when live bytes peak. With stop, replays only that many
    operations and hands the instance to keep() before closing it."""
    n = len(ops) if stop is None else min(stop, len(ops))
    peak_at = live_peak(ops[:n])[1]
    state = c.make(memory)
    alloc, free, realloc = c.calls(state)
    clock = time.perf_counter_ns
    latency = array("q", bytes(8 * n))
    slots: list[Any] = [None] * (1 + max((r[1] for r in ops[:n]), default=0))
    sizes = [0] * len(slots)
    step = max(1, n // samples)
    run = Run(c.name, latency, 0.0, [(0, 0, 0)])
    live = high = 0
    collecting = gc.isenabled()
    gc.disable()  # the collector's pauses are the interpreter's, not the allocator's
    try:
        for i in range(n):
            op, ident, size, align = ops[i]
            if op == FREE:
                h = slots[ident]
                t0 = clock()
                free(h)
                latency[i] = clock() - t0
                live -= sizes[ident]
            else:
                if op == ALLOC:
                    t0 = clock()
                    h = alloc(size, align) if c.aligned else alloc(size)
                    latency[i] = clock() - t0
                    live += size
                else:
                    t0 = clock()
                    h = realloc(slots[ident], size)
                    latency[i] = clock() - t0
                    live += size - sizes[ident]
                slots[ident], sizes[ident] = h, size
                high = max(high, c.end(state, h, size))
            if i + 1 == peak_at:
                run.peak_live, run.peak_at = live, peak_at
                if hasattr(state, "walk"):
                    run.blocks = list(state.walk())
                    run.figures = summary(state, run.blocks)
            if (i + 1) % step == 0 or i + 1 == n:
                run.timeline.append((i + 1, live, high))
                if progress and (i + 1) % (step * 20) == 0:
                    progress((i + 1) / n)
        run.high_water = high
        run.seconds = sum(latency) / 1e9
        if keep:
            keep(state)
    finally:
        if collecting:
            gc.enable()
        c.close(state)
    return run


def chosen(names: Sequence[str]) -> list[Contender]:
    """The contenders for --allocator names (see ALLOCATORS)."""
    available = {c.name: c for c in contenders()}
    out = []
    for name in names:
        found = next((available[n] for n in ALLOCATORS[name] if n in available), None)
        if found is None:
            raise LookupError(f"--allocator {name}: not available here ({' or '.join(ALLOCATORS[name])})")
        out.append(found)
    return out


def native_latency(bench: str, ops: Records, capacity: int) -> dict[str, dict[str, int]]:
    """Runs the native bench (benchmarks/native/bench) on ops and reads its
    latency percentiles: {allocator: {"p50": ns, "p99": ..., "p99.99": ..., "max": ...}}."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "replay.trc")
        write_ops([(o, i, s, a.bit_length() - 1) for o, i, s, a in ops], path)
        out = subprocess.run([bench, path, "--runs", "1", "--arena", str(capacity)], capture_output=True,
                             text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        words = line.split()
        # name ns/op min-max p50 p99 p99.99 max high/peak failures
        if len(words) == 9 and words[0] != "alloc" and words[3].isdigit():
            found[f"native {words[0]}"] = dict(zip(("p50", "p99", "p99.99", "max"), map(int, words[3:7])))
    if not found:
        raise ValueError(f"{bench} printed no latency table:\n{out}")
    return found


def progress_bar(label: str) -> Callable[[float], None]:
    """A progress bar on a terminal's stderr; elsewhere, one line per label."""
    if not sys.stderr.isatty():
        sys.stderr.write(f"{label}\n")
        return lambda done: None

    def show(done: float) -> None:
        filled = int(30 * done)
        sys.stderr.write(f"\r\x1b[K{label} [{'#' * filled}{'.' * (30 - filled)}] {done:.0%}")
        sys.stderr.flush()

    show(0.0)
    return show


def table(runs: Sequence[Run]) -> str:
    lines = [f"{'allocator':<26}{'ns/op':>8}{'p50':>8}{'p99':>8}{'p99.99':>9}{'max':>10}"
             f"{'peak live':>14}{'high-water':>14}{'ratio':>7}"]
    for r in runs:
        lines.append(f"{r.allocator:<26}{r.seconds * 1e9 / max(1, len(r.latency_ns)):>8.0f}"
                     f"{r.percentile(50):>8}{r.percentile(99):>8}{r.percentile(99.99):>9}{r.percentile(100):>10}"
                     f"{r.peak_live:>14,}{r.high_water:>14,}{r.high_water / max(1, r.peak_live):>7.3f}")
    return "\n".join(lines)


def source(p: Parser, name: str, ops_limit: int | None) -> tuple[str, Records, bool]:
    """(title, records, is a trace) for a workload name or a trace file."""
    if name in WORKLOADS:
        return f"workload {name!r} ({WORKLOADS[name][0]})", records(iter_ops(name), ops_limit), False
    if not os.path.exists(name):
        p.error(f"{name}: neither a workload ({', '.join(sorted(WORKLOADS))}) nor a trace file")
    try:
        ops = records(read_trace(name), ops_limit)
    except (OSError, ValueError) as e:
        p.error(str(e))
    if not ops:
        p.error(f"{name} holds no operations")
    return f"trace {name}", ops, True


def arguments(p: Parser) -> None:
    """The arguments replay and map share."""
    p.add_argument("source", metavar="WORKLOAD_OR_TRACE",
                   help=f"a standard workload ({', '.join(sorted(WORKLOADS))}) or a trace file")
    p.add_argument("--ops", type=positive_int, help="only the first N records")
    p.add_argument("--capacity", type=positive_int,
                   help="bytes of each heap (default: replay 256 MiB, or for a trace what its peak "
                        "needs; map twice the peak of live bytes)")


def plot_needs_matplotlib(p: Parser, plot: str | None) -> None:
    """--plot, refused up front when matplotlib is missing."""
    if plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            p.error("--plot needs matplotlib (pip install 'tlsf[plot]')")


def prepare(p: Parser, a: argparse.Namespace, snug: bool = False) -> tuple[str, Records, int]:
    """(title, records, capacity) of the replay the arguments ask for; a snug
    capacity (for a map) is twice the peak of live bytes, in whole MiB."""
    title, ops, is_trace = source(p, a.source, a.ops)
    if snug:
        capacity = a.capacity or max(1, -(-2 * max_live_bytes(ops) >> 20)) << 20
    else:
        capacity = a.capacity or (trace_capacity(ops) if is_trace else 256 << 20)
    if capacity < max_live_bytes(ops):
        p.error(f"--capacity {capacity:,}: the replay needs at least {max_live_bytes(ops):,} bytes live "
                "at its peak")
    return title, ops, capacity


def main(argv: Sequence[str]) -> int:
    p = Parser(prog="python -m tlsf replay", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    arguments(p)
    p.add_argument("--allocator", action="append", choices=sorted(ALLOCATORS), metavar="NAME",
                   help=f"replay through NAME (repeat for several; default heap and offset): "
                        f"{', '.join(ALLOCATORS)}")
    p.add_argument("--plot", metavar="FILE.png", type=output_file,
                   help="draw the timeline, the latency distribution and the heap map at the peak "
                        "(needs matplotlib: pip install 'tlsf[plot]')")
    p.add_argument("--json", metavar="FILE", type=output_file, help="also write the figures as JSON")
    p.add_argument("--native", metavar="BENCH",
                   help="also the native bench's latency percentiles (benchmarks/native/bench)")
    a = p.parse_args(argv)
    plot_needs_matplotlib(p, a.plot)
    if a.native and not os.access(a.native, os.X_OK):
        p.error(f"--native {a.native}: not an executable (make -C benchmarks/native builds it)")
    try:
        cs = chosen(a.allocator or ["heap", "offset"])
    except LookupError as e:
        p.error(str(e))
    title, ops, capacity = prepare(p, a)
    memory = prefaulted(capacity)
    print(f"tlsf {tlsf.__version__} ({tlsf.IMPLEMENTATION}): {title}, {plural(len(ops), 'operation')}, "
          f"heaps of {capacity:,} bytes")
    runs = []
    for c in cs:
        try:
            runs.append(replay(c, ops, memory, progress=progress_bar(f"replaying through {c.name}")))
        except tlsf.OutOfMemoryError as e:
            clear_progress()
            p.exit(2, f"{p.prog}: error: {c.name} ran out of memory ({e}); give a larger --capacity\n")
        clear_progress()
    native = native_latency(a.native, ops, capacity) if a.native else {}
    print(table(runs))
    print("latency in ns per call, timer included; ratio = high-water / peak live bytes")
    for name, figures in native.items():
        print(f"{name}: " + ", ".join(f"{k} {v} ns" for k, v in figures.items()))
    for r in runs:
        if r.figures:
            print(f"{r.allocator} at the peak of live bytes (operation {r.peak_at:,}): {r.figures}")
    if a.plot:
        from tlsf.plot import replay_figure

        replay_figure(runs, a.plot, title=title, native=native)
        print(f"plot: {a.plot}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({**environment(source=a.source, ops=len(ops), capacity=capacity),
                       "runs": [r.to_json() for r in runs], "native": native}, f, indent=1)
    return 0


def map_main(argv: Sequence[str]) -> int:
    """python -m tlsf map: the heap of one allocator after a replay, as text
    and optionally as a picture."""
    p = Parser(prog="python -m tlsf map",
               description="The layout of a heap after replaying a workload or a trace into it: every "
                           "block over the address range, used and free, with its figures and the "
                           "size-class report of its blocks. By default the replay stops at the peak "
                           "of live bytes.")
    arguments(p)
    p.add_argument("--allocator", default="heap", choices=[k for k in ALLOCATORS if "multi" not in k
                                                           and "tlsfalloc" not in k])
    p.add_argument("--at", type=positive_int, metavar="N",
                   help="stop after N operations instead of at the peak of live bytes")
    p.add_argument("--width", type=positive_int, default=64, help="characters per line (default 64)")
    p.add_argument("--rows", type=positive_int, default=16, help="lines (default 16)")
    p.add_argument("--plot", metavar="FILE.png", type=output_file,
                   help="also draw it (needs matplotlib: pip install 'tlsf[plot]')")
    a = p.parse_args(argv)
    plot_needs_matplotlib(p, a.plot)
    try:
        (c,) = chosen([a.allocator])
    except LookupError as e:
        p.error(str(e))
    title, ops, capacity = prepare(p, a, snug=True)
    stop = a.at or live_peak(ops)[1]
    shown: list[str] = []

    def keep(heap: Any) -> None:
        print(f"{c.name} after {plural(min(stop, len(ops)), 'operation')} of {title}:")
        print(text_map(heap, a.width, a.rows))
        if a.plot:
            from tlsf.plot import heap_map

            heap_map(heap, a.plot, title=f"{c.name}, {title}, after {min(stop, len(ops)):,} operations")
            shown.append(a.plot)

    try:
        replay(c, ops, prefaulted(capacity), stop=stop, keep=keep)
    except tlsf.OutOfMemoryError as e:
        p.exit(2, f"{p.prog}: error: {c.name} ran out of memory ({e}); give a larger --capacity\n")
    for path in shown:
        print(f"plot: {path}")
    return 0
