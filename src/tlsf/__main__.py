"""python -m tlsf: version, implementation in use, and a self-check that
replays a standard workload through a Heap, a FlexHeap and an
OffsetAllocator and verifies them.

subcommands (python -m tlsf SUBCOMMAND --help for each):
  bench [...]                   the benchmark against the peers (tlsf.bench)
  replay WORKLOAD_OR_TRACE      every operation timed through chosen allocators:
                                timeline, latency, heap at the peak (tlsf.replay)
  map WORKLOAD_OR_TRACE         the layout of a heap after a replay, as text or
                                a picture (tlsf.heapmap, tlsf.plot)
  run [...] -- COMMAND          a program on tlsf's malloc (tlsf.malloc)
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import islice
from typing import Any, Callable

import tlsf
from tlsf._cli import Parser, plural, positive_int
from tlsf.bench import max_live_bytes, realloc_by_resize, records
from tlsf.workloads import ALLOC, FREE, WORKLOADS, iter_ops


def replay(alloc: Any, free: Any, realloc: Callable[[int, int], int],
           ops: list[tuple[int, int, int, int]]) -> dict[str, int]:
    """Replay workload records through an allocator's calls; returns the
    high-water mark against the peak of live requested bytes."""
    offsets: dict[int, int] = {}
    sizes: dict[int, int] = {}
    live = peak = high = 0
    for op, ident, size, align_log2 in ops:
        if op == ALLOC:
            off = alloc(size, 1 << align_log2)
            offsets[ident] = off
            sizes[ident] = size
            live += size
        elif op == FREE:
            free(offsets.pop(ident))
            live -= sizes.pop(ident)
            continue
        else:
            off = realloc(offsets[ident], size)
            offsets[ident] = off
            live += size - sizes[ident]
            sizes[ident] = size
        peak = max(peak, live)
        high = max(high, off + size)
    return {"peak_live": peak, "high_water": high, "live_at_end": len(offsets)}


SUBCOMMANDS = {
    "bench": ("tlsf.bench", "main"),
    "replay": ("tlsf.replay", "main"),
    "map": ("tlsf.replay", "map_main"),
    "run": ("tlsf.malloc", "main"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in SUBCOMMANDS:
        import importlib

        module, function = SUBCOMMANDS[argv[0]]
        return int(getattr(importlib.import_module(module), function)(argv[1:]))
    p = Parser(prog="python -m tlsf", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    version = f"tlsf {tlsf.__version__} ({tlsf.IMPLEMENTATION}), Python {sys.version.split()[0]}"
    p.add_argument("--version", action="version", version=version)
    p.add_argument("--workload", default="mixed", choices=sorted(WORKLOADS))
    p.add_argument("--ops", type=positive_int, default=None, help="replay only the first N records")
    p.add_argument("--capacity", type=positive_int, default=256 << 20, help="heap size in bytes")
    a = p.parse_args(argv)
    ops = list(islice(iter_ops(a.workload), a.ops))
    need = max_live_bytes(records(ops, None))
    if a.capacity < need:
        p.error(f"--capacity {a.capacity:,}: the workload needs at least {need:,} bytes live at its peak")

    print(f"tlsf {tlsf.__version__}, implementation: {tlsf.IMPLEMENTATION}")
    print(f"self-check: replaying {plural(len(ops), 'operation')} of workload {a.workload!r} "
          f"({WORKLOADS[a.workload][0]})")
    try:
        with tlsf.Heap(a.capacity) as heap:
            check(f"tlsf.Heap({a.capacity})", heap,
                  lambda: replay(heap.alloc, heap.free, heap.realloc, ops), ops)
        with tlsf.FlexHeap(a.capacity) as flex:
            check(f"tlsf.FlexHeap({a.capacity}), starting empty", flex,
                  lambda: replay(flex.alloc, flex.free, flex.realloc, ops), ops)
            print(f"  grew to {flex.size:,} bytes; trim() gave back {flex.trim():,} resident bytes")
        oa = tlsf.OffsetAllocator(a.capacity)
        check(f"tlsf.OffsetAllocator({a.capacity})", oa,
              lambda: replay(oa.alloc, oa.free, realloc_by_resize(oa), ops), ops)
    except (tlsf.OutOfMemoryError, ValueError) as e:
        # The capacity holds the live bytes but not the heap's own overhead and fragmentation.
        p.exit(2, f"{p.prog}: error: --capacity {a.capacity:,} is too small for this workload ({e})\n")
    return 0


def check(name: str, allocator: Any, run: Callable[[], dict[str, int]], ops: list) -> None:
    """Times run(), then verifies the allocator with check() and prints what it found."""
    print(f"{name}:")
    t0 = time.perf_counter()
    r = run()
    elapsed = time.perf_counter() - t0
    allocator.check()
    print(f"  {len(ops):,} operations in {elapsed:.2f} s "
          f"({elapsed / max(len(ops), 1) * 1e9:.0f} ns per op, replay loop and page faults included)")
    print(f"  high-water / peak live bytes: {r['high_water'] / max(r['peak_live'], 1):.3f} "
          f"({r['high_water']:,} / {r['peak_live']:,})")
    print(f"  {allocator.stats()}")
    print("  check(): passed")


if __name__ == "__main__":
    sys.exit(main())
