"""python -m tlsf bench --shared [N]: a SharedHeap against what users of
shared memory do today, ratios from one run.

1. Per object, one process: one multiprocessing.shared_memory.SharedMemory
   per 4 KiB object (create, close, unlink), against SharedHeap alloc + free;
   also with a view of the object, and with the object written.
2. PyPI's shared-allocator (FreeListAllocator: pure Python, a stack of
   fixed-size slots in one SharedMemory), allocate + free of 4 KiB slots,
   when it is installed.
3. Contention: 2 processes working on one SharedHeap at once (started at
   one moment) against 1 process doing the same, and against 2 processes
   with a heap each (what this machine gives 2 processes that share no
   lock). Two patterns: free(alloc(4 KiB)) pairs, and the records of the
   `mixed` workload.
4. numpy: the parent allocates a 1 MiB float64 array, 2 pool workers fill a
   half each, the parent sums it and frees it; against one SharedMemory per
   array that the workers attach by name. The pool lives across repetitions,
   so process start-up is not timed. Also the cost of only making and
   destroying the shared array.

N sizes every loop: N objects per heap loop, N operations per process in 3
(N / 2 alloc + free pairs, or N records of `mixed`); the slower loops run
fewer (N / 100 SharedMemory objects, N / 20 shared-allocator slots, N / 5000
numpy arrays) so that each takes about as long.
"""

from __future__ import annotations

import multiprocessing
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from itertools import islice
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import tlsf
from tlsf.bench import replay_aligned
from tlsf.workloads import ALLOC, FREE, iter_ops

OBJECT = 4096  # bytes of one object in 1-3
ARRAY = 1 << 20  # bytes of one numpy array in 4
WORKERS = 2
MAX_SIZE = 1 << 30  # each heap's max_size: room for 2 processes' `mixed`
START_DELAY = 0.05  # seconds from handing the contention tasks out to their start

Loop = Callable[[int], None]  # runs n iterations
Report = dict[str, dict[str, Any]]

SHM_OBJECT = "SharedMemory: create + close + unlink"
SHM_OBJECT_WRITE = "SharedMemory: create + write + close + unlink"
SLOT = "shared-allocator: allocate + free"
SLOT_WRITE = "shared-allocator: allocate + write + free"
HEAP_OBJECT = "SharedHeap: alloc + free"
HEAP_OBJECT_VIEW = "SharedHeap: alloc + view + free"
HEAP_OBJECT_WRITE = "SharedHeap: alloc + view + write + free"
ONE = "1 process"
SHARING = "2 processes, one heap"
APART = "2 processes, a heap each"
HEAP_ARRAY = "SharedHeap: alloc, fill, sum, free"
HEAP_ARRAY_GIVE = "SharedHeap(trim_threshold=1 MiB): alloc, fill, sum, free"
SHM_ARRAY = "SharedMemory per array: create, fill, sum, close + unlink"
ROUND_TRIP = "the pool's round trip alone (a task per worker, doing nothing)"
HEAP_MAKE = "SharedHeap: alloc + frombuffer + free"
SHM_MAKE = "SharedMemory: create + ndarray + close + unlink"


def interleaved(loops: dict[str, tuple[Loop, int]], rounds: int) -> dict[str, float]:
    """Median seconds per iteration of each loop (at least one iteration: a
    small N leaves the slower loops none), the loops taking turns over the
    rounds (a noisy machine slows all of them alike), after a warm-up that
    starts the resource tracker and faults in the heaps' first pages."""
    times: dict[str, list[float]] = {name: [] for name in loops}
    for loop, n in loops.values():
        loop(max(1, n // 10))
    for _ in range(rounds):
        for name, (loop, n) in loops.items():
            iterations = max(1, n)
            t0 = time.perf_counter()
            loop(iterations)
            times[name].append((time.perf_counter() - t0) / iterations)
    return {name: statistics.median(t) for name, t in times.items()}


# ------------------------------------------------------ 1, 2: per object


def shm_objects(data: bytes | None) -> Loop:
    def loop(n: int) -> None:
        for _ in range(n):
            shm = SharedMemory(create=True, size=OBJECT)
            if data is not None:
                shm.buf[:OBJECT] = data  # type: ignore[index]  # buf is None only once closed
            shm.close()
            shm.unlink()  # also unregisters it from the resource tracker, which would warn

    return loop


def heap_pairs(heap: tlsf.SharedHeap) -> Loop:
    alloc, free = heap.alloc, heap.free

    def loop(n: int) -> None:
        for _ in range(n):
            free(alloc(OBJECT))

    return loop


def heap_objects(heap: tlsf.SharedHeap, data: bytes | None) -> Loop:
    alloc, free, view = heap.alloc, heap.free, heap.view

    def loop(n: int) -> None:
        for _ in range(n):
            off = alloc(OBJECT)
            with view(off, OBJECT) as v:
                if data is not None:
                    v[:] = data
            free(off)

    return loop


def slot_objects(slots: Any, data: bytes | None) -> Loop:
    allocate, free, write = slots.allocate, slots.free, slots.write

    def loop(n: int) -> None:
        for _ in range(n):
            off = allocate(OBJECT)
            if data is not None:
                write(off, data)
            free(off)

    return loop


def per_object(n: int, rounds: int) -> dict[str, float]:
    data = bytes(OBJECT)
    with tlsf.SharedHeap.create(max_size=MAX_SIZE) as heap:
        loops = {
            SHM_OBJECT: (shm_objects(None), n // 100),
            SHM_OBJECT_WRITE: (shm_objects(data), n // 100),
            HEAP_OBJECT: (heap_pairs(heap), n),
            HEAP_OBJECT_VIEW: (heap_objects(heap, None), n),
            HEAP_OBJECT_WRITE: (heap_objects(heap, data), n),
        }
        try:
            from shared_allocator import FreeListAllocator  # type: ignore[import-not-found]
        except ImportError:
            return interleaved(loops, rounds)
        slots = FreeListAllocator(name=f"tlsf-bench-{secrets.token_hex(6)}", slot_size=OBJECT,
                                  num_slots=64, create=True)  # fmt: skip
        try:
            loops[SLOT] = (slot_objects(slots, None), n // 20)
            loops[SLOT_WRITE] = (slot_objects(slots, data), n // 20)
            return interleaved(loops, rounds)
        finally:
            slots.close()
            slots.unlink()


# ----------------------------------------------- the pool's worker processes

_heaps: dict[str, tlsf.SharedHeap] = {}
_mixed: dict[int, tuple[list[tuple[int, int, int, int]], int]] = {}


def _attached(name: str) -> tlsf.SharedHeap:
    """This worker's attachment to the heap `name`, made once and kept (as a
    program would). It keeps the pages freed (trim_threshold=None), so that a
    round's final frees do not leave the next round faulting them in again:
    the contention runs time the heap's lock, not page faults."""
    heap = _heaps.get(name)
    if heap is None:
        heap = _heaps[name] = tlsf.SharedHeap.attach(name, trim_threshold=None)
    return heap


def mixed_records(n: int) -> tuple[list[tuple[int, int, int, int]], int]:
    """The first n records of `mixed` (alignment as bytes), then a free of
    every block still live, so that each round leaves the heap empty; and the
    number of ids."""
    ops = []
    live = set()
    for op, ident, size, align_log2 in islice(iter_ops("mixed"), n):
        ops.append((op, ident, size, 1 << align_log2))
        if op == ALLOC:
            live.add(ident)
        elif op == FREE:
            live.remove(ident)
    ops += [(FREE, ident, 0, 1) for ident in sorted(live)]
    return ops, 1 + max(r[1] for r in ops)


def _work(name: str, pattern: str, n: int, go: float) -> tuple[int, float, float]:
    """Run `pattern` on the heap `name` from the moment `go`, spinning until
    then so that the workers start within microseconds of each other (a
    barrier's wake-ups were milliseconds apart here); return (operations,
    start, end). perf_counter is one system-wide clock (Linux, macOS,
    Windows), so the workers' times compare."""
    heap = _attached(name)
    if pattern == "mixed" and n not in _mixed:
        _mixed[n] = mixed_records(n)
    while time.perf_counter() < go:
        pass
    start = time.perf_counter()
    if pattern == "pairs":
        heap_pairs(heap)(n // 2)
        count = n // 2 * 2
    else:
        ops, n_ids = _mixed[n]
        replay_aligned(ops, n_ids, heap.alloc, heap.free, heap.realloc)
        count = len(ops)
    return count, start, time.perf_counter()


def _fill_heap(name: str, offset: int, lo: int, hi: int, value: float) -> None:
    import numpy as np

    with _attached(name).view(offset, ARRAY) as v:
        np.frombuffer(v, np.float64)[lo:hi] = value


def _nothing() -> None:
    pass


def _fill_shm(name: str, lo: int, hi: int, value: float) -> None:
    import numpy as np

    shm = SharedMemory(name=name)
    np.ndarray((ARRAY // 8,), np.float64, buffer=shm.buf)[lo:hi] = value
    shm.close()


# -------------------------------------------------------- 3: contention


def contention(pool: Any, n: int, rounds: int) -> dict[str, dict[str, float]]:
    """Operations per second of all processes together, from the first start
    to the last end (a worker that starts late counts against the rate),
    median over the rounds, after an untimed round that faults the heaps'
    pages in and makes the workers' records."""
    rates: dict[str, dict[str, list[float]]] = {}
    with tlsf.SharedHeap.create(max_size=MAX_SIZE) as a, tlsf.SharedHeap.create(max_size=MAX_SIZE) as b:
        runs = {ONE: [a.name], SHARING: [a.name, a.name], APART: [a.name, b.name]}  # a task per heap named
        for pattern in ("pairs", "mixed"):
            rates[pattern] = {config: [] for config in runs}
            for r in range(rounds + 1):
                for config, names in runs.items():
                    # A task's dispatch takes well under START_DELAY; a worker spinning till go takes no
                    # other task, so the tasks of a run go to different workers.
                    go = time.perf_counter() + START_DELAY
                    done = [pool.apply_async(_work, (name, pattern, n, go)) for name in names]
                    counts, starts, ends = zip(*(d.get() for d in done))
                    if r:
                        rates[pattern][config].append(sum(counts) / (max(ends) - min(starts)))
    return {p: {c: statistics.median(v) for c, v in by.items()} for p, by in rates.items()}


# ------------------------------------------------------------- 4: numpy


def numpy_arrays(pool: Any, n: int, rounds: int) -> dict[str, float]:
    import numpy as np

    count = ARRAY // 8
    halves = [(0, count // 2), (count // 2, count)]

    def check(a: Any, value: float) -> None:
        if a.sum() != value * count:
            raise RuntimeError("the parent does not see the workers' writes")

    def heap_arrays(heap: tlsf.SharedHeap) -> Loop:
        def loop(repeat: int) -> None:
            for k in range(repeat):
                off = heap.alloc(ARRAY)
                pool.starmap(_fill_heap, [(heap.name, off, lo, hi, float(k)) for lo, hi in halves])
                with heap.view(off, ARRAY) as v:
                    check(np.frombuffer(v, np.float64), float(k))
                heap.free(off)

        return loop

    def shm_arrays(repeat: int) -> None:
        for k in range(repeat):
            shm = SharedMemory(create=True, size=ARRAY)
            pool.starmap(_fill_shm, [(shm.name, lo, hi, float(k)) for lo, hi in halves])
            check(np.ndarray((count,), np.float64, buffer=shm.buf), float(k))
            shm.close()
            shm.unlink()

    def round_trips(repeat: int) -> None:
        for _ in range(repeat):
            pool.starmap(_nothing, [()] * len(halves))

    def heap_make(heap: tlsf.SharedHeap) -> Loop:
        def loop(repeat: int) -> None:
            for _ in range(repeat):
                off = heap.alloc(ARRAY)
                with heap.view(off, ARRAY) as v:
                    np.frombuffer(v, np.float64)
                heap.free(off)

        return loop

    def shm_make(repeat: int) -> None:
        for _ in range(repeat):
            shm = SharedMemory(create=True, size=ARRAY)
            np.ndarray((count,), np.float64, buffer=shm.buf)
            shm.close()
            shm.unlink()

    arrays = n // 5000
    with tlsf.SharedHeap.create(max_size=MAX_SIZE) as heap:
        # With a trim threshold, a freed array's pages go back at each free,
        # and the next array's writers fault them in again; by default
        # (trim_threshold=None) the heap keeps them.
        with tlsf.SharedHeap.create(max_size=MAX_SIZE, trim_threshold=1 << 20) as giving:
            loops = {
                HEAP_ARRAY: (heap_arrays(heap), arrays),
                HEAP_ARRAY_GIVE: (heap_arrays(giving), arrays),
                SHM_ARRAY: (shm_arrays, arrays),
                ROUND_TRIP: (round_trips, arrays),
                HEAP_MAKE: (heap_make(heap), n // 100),
                SHM_MAKE: (shm_make, n // 100),
            }
            return interleaved(loops, rounds)


# --------------------------------------------------------------- the run


def measure(n: int, rounds: int, progress: Callable[[str], None]) -> Report:
    progress("shared: per object")
    report: Report = {"per_object_s": per_object(n, rounds)}
    pool = multiprocessing.get_context("spawn").Pool(WORKERS)  # the heaps reach the workers by name only
    try:
        progress("shared: contention")
        report["ops_per_s"] = contention(pool, n, rounds)
        try:
            import numpy  # noqa: F401
        except ImportError:
            pass
        else:
            progress("shared: numpy arrays")
            report["numpy_s"] = numpy_arrays(pool, n, rounds)
    finally:
        pool.close()
        pool.join()
    return report


def table(n: int, rounds: int, report: Report) -> str:
    obj = report["per_object_s"]
    lines = [
        f"tlsf {tlsf.__version__}, Python {sys.version.split()[0]}: SharedHeap against shared memory "
        f"per object and its peers, N={n:,}, median of {rounds} rounds",
        f"per {OBJECT // 1024} KiB object, one process{'µs':>42}",
    ]
    lines += [f"  {name:<62}{s * 1e6:>10.2f}" for name, s in obj.items()]
    lines.append(f"SharedHeap is faster than a SharedMemory per object: alloc + free "
                 f"{obj[SHM_OBJECT] / obj[HEAP_OBJECT]:.0f}x, alloc + view + free "
                 f"{obj[SHM_OBJECT] / obj[HEAP_OBJECT_VIEW]:.0f}x, both writing the object "
                 f"{obj[SHM_OBJECT_WRITE] / obj[HEAP_OBJECT_WRITE]:.0f}x")  # fmt: skip
    if SLOT in obj:
        lines.append(f"SharedHeap is faster than shared-allocator: alloc + free "
                     f"{obj[SLOT] / obj[HEAP_OBJECT]:.1f}x, both writing the object "
                     f"{obj[SLOT_WRITE] / obj[HEAP_OBJECT_WRITE]:.1f}x")  # fmt: skip
    else:
        lines.append("shared-allocator: not installed, not measured (its 0.1.0 declares Python >= 3.13.7; "
                     "pip install --no-deps --ignore-requires-python shared-allocator)")  # fmt: skip
    rates = report["ops_per_s"]
    lines.append(f"contention: million operations per second, all processes together{'pairs':>10}"
                 f"{'mixed':>10}")  # fmt: skip
    for config in rates["pairs"]:
        lines.append(f"  {config:<64}" + "".join(f"{rates[p][config] / 1e6:>10.2f}" for p in rates))
    for config in (SHARING, APART):
        ratios = ", ".join(f"{rates[p][config] / rates[p][ONE]:.2f}x ({p})" for p in rates)
        lines.append(f"{config}: {ratios} the rate of {ONE}")
    if "numpy_s" not in report:
        lines.append("numpy: not installed, not measured")
        return "\n".join(lines)
    arr = report["numpy_s"]
    lines.append(f"numpy: a {ARRAY >> 20} MiB float64 array, {WORKERS} pool workers fill a half each, "
                 f"the parent sums it{'µs':>10}")  # fmt: skip
    lines += [f"  {name:<62}{s * 1e6:>10.1f}" for name, s in arr.items()]
    lines.append(f"SharedHeap is faster than a SharedMemory per array: "
                 f"{arr[SHM_ARRAY] / arr[HEAP_ARRAY]:.2f}x, "
                 f"{arr[SHM_ARRAY] / arr[HEAP_ARRAY_GIVE]:.2f}x with trim_threshold=1 MiB; "
                 f"making and destroying it only: {arr[SHM_MAKE] / arr[HEAP_MAKE]:.1f}x")  # fmt: skip
    return "\n".join(lines)
