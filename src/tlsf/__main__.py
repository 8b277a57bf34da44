"""python -m tlsf: version, implementation in use, and a self-check that
replays a standard workload through a Heap, a FlexHeap and an
OffsetAllocator and verifies them.

python -m tlsf bench [...]: the benchmark against the peers (tlsf.bench).
python -m tlsf run [...] -- COMMAND: a program on tlsf's malloc (tlsf.malloc).
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import islice
from typing import Any, Callable

import tlsf
from tlsf.bench import realloc_by_resize
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from tlsf.bench import main as bench

        return bench(argv[1:])
    if argv[:1] == ["run"]:
        from tlsf.malloc import main as run_program

        return run_program(argv[1:])
    p = argparse.ArgumentParser(prog="python -m tlsf", description=__doc__)
    p.add_argument("--workload", default="mixed", choices=sorted(WORKLOADS))
    p.add_argument("--ops", type=int, default=None, help="replay only the first N records")
    p.add_argument("--capacity", type=int, default=256 << 20, help="heap size in bytes")
    a = p.parse_args(argv)

    print(f"tlsf {tlsf.__version__}, implementation: {tlsf.IMPLEMENTATION}")
    print(f"self-check: replaying workload {a.workload!r} ({WORKLOADS[a.workload][0]})")
    ops = list(islice(iter_ops(a.workload), a.ops))
    with tlsf.Heap(a.capacity) as heap:
        check(f"tlsf.Heap({a.capacity})", heap, lambda: replay(heap.alloc, heap.free, heap.realloc, ops), ops)
    with tlsf.FlexHeap(a.capacity) as flex:
        check(f"tlsf.FlexHeap({a.capacity}), starting empty", flex,
              lambda: replay(flex.alloc, flex.free, flex.realloc, ops), ops)
        print(f"  grew to {flex.size:,} bytes; trim() gave back {flex.trim():,} resident bytes")
    oa = tlsf.OffsetAllocator(a.capacity)
    check(f"tlsf.OffsetAllocator({a.capacity})", oa,
          lambda: replay(oa.alloc, oa.free, realloc_by_resize(oa), ops), ops)
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
