"""python -m tlsf bench --numpy [N]: numpy's memory handler over a tlsf heap
(tlsf.numpy) against numpy's default handler, ratios from one run.

1. Create and drop one float64 array: numpy.empty(n) and numpy.zeros(n) for
   n = 100, 10,000 and 1,000,000, with numpy's default handler; with the
   tlsf handler over a Heap(256 MiB), a FlexHeap() and a
   SharedHeap.create(); and with numpy-allocator calling Python functions
   that allocate from TLSFAllocator (PyPI's OffsetAllocator) in a 256 MiB
   mapping: the Python-callable handler that PyPI's packages make
   possible, when both are installed. Targets: the tlsf handler takes at
   most 1.1x the default's time, and is at least 10x faster than
   numpy-allocator + TLSFAllocator.
2. A numpy workload that makes temporaries: per iteration
   c = a * b + a; d = numpy.sqrt(c); d.sum(), over float64 arrays of shapes
   (10,), (1000,), (100, 100) and (500, 500) (its inputs made beforehand);
   the default handler against the tlsf handler over a Heap and a FlexHeap
   (the same 1.1x target).
3. heap.ndarray((n,)) + release (an array in a tlsf.Block of its own,
   under any handler) against numpy.empty((n,)) with the default handler,
   per array, n = 100 and 10,000.

Two reference rows, with no target, tell the costs apart: the tlsf handler
over FlexHeap(trim_threshold=None) (a FlexHeap that keeps its free pages:
the rest of FlexHeap()'s time is giving pages back and faulting them in
again), and numpy-allocator calling the C library's malloc, calloc and free
through C pointers (no Python, but no numpy cache of small blocks either:
what any handler other than numpy's own starts from).

Every contender of a case runs the same loop (one closure); only the
handler set around it, outside the timed region, differs (in 3, only the
function the loop calls). The contenders take turns over the rounds, each
round starting with the next one (a noisy machine slows all of them alike),
after an untimed warm-up that faults the heaps' first pages in; the figure
is the median nanoseconds per iteration. Each heap serves every case, in
the order above, as one program's heap would: a FlexHeap has grown to the
largest case's size by the cases after it.

N sizes the loops: N iterations of numpy.empty(100 or 10,000) and
numpy.zeros(100), N / 4 of numpy.empty(1,000,000), N / 10 of
numpy.zeros(10,000), N / 1000 of numpy.zeros(1,000,000), and a tenth of
those for numpy-allocator + TLSFAllocator (about 10x slower); in 2, N / 10
to N / 2000 iterations by shape; in 3, N / 4 arrays.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import tlsf
import tlsf.numpy

CAPACITY = 256 << 20  # the Heap's and the numpy-allocator pool's bytes
TARGET_RATIO = 1.1  # the tlsf handler's time at most this times the default's
TARGET_SPEEDUP = 10.0  # the tlsf handler at least this much faster than numpy-allocator + TLSFAllocator
PEER_SHARE = 10  # the numpy-allocator contender runs 1/PEER_SHARE of the iterations
PEER_ALLOCS = 1 << 16  # TLSFAllocator's maxAllocs
PEER_FAILED = 0xFFFFFFFF  # TLSFAllocator's offset of a failed allocation

Loop = Callable[[int], None]  # runs n iterations
Setting = Callable[[], AbstractContextManager[Any]]  # the handler around a timed loop
Report = dict[str, Any]

DEFAULT = "numpy's default handler"
HEAP = "tlsf handler, Heap(256 MiB)"
FLEX = "tlsf handler, FlexHeap()"
FLEX_KEEP = "tlsf handler, FlexHeap(trim_threshold=None)"
SHARED = "tlsf handler, SharedHeap.create()"
PEER = "numpy-allocator + TLSFAllocator (Python)"
LIBC = "numpy-allocator + C malloc (C pointers)"
TARGETED = (HEAP, FLEX, SHARED)  # the tlsf handlers the 1.1x target is checked on
WORKLOAD = (DEFAULT, HEAP, FLEX, FLEX_KEEP, LIBC)  # the contenders of 2
NDARRAY = "heap.ndarray((n,)) + release, Heap(256 MiB)"
EMPTY = "numpy.empty((n,)), default handler"

SIZES = (100, 10_000, 1_000_000)
# iterations per case: N // divisor
CREATE = {
    "empty": {100: 1, 10_000: 1, 1_000_000: 4},
    "zeros": {100: 1, 10_000: 10, 1_000_000: 1000},
}
SHAPES = {(10,): 10, (1_000,): 20, (100, 100): 100, (500, 500): 2000}
NDARRAY_SIZES = (100, 10_000)
NDARRAY_DIVISOR = 4


def interleaved(loops: dict[str, tuple[Setting, Loop, int]], rounds: int) -> dict[str, float]:
    """Median nanoseconds per iteration of each loop run n times (at least
    once) under its setting, the loops taking turns over the rounds and
    each round starting with the next loop, after an untimed warm-up of
    n / 10 iterations each. The setting is entered before the clock
    starts and left after it stops."""
    names = list(loops)
    times: dict[str, list[float]] = {name: [] for name in names}
    for setting, loop, n in loops.values():
        with setting():
            loop(max(1, n // 10))
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            setting, loop, n = loops[name]
            iterations = max(1, n)
            with setting():
                t0 = time.perf_counter_ns()
                loop(iterations)
                elapsed = time.perf_counter_ns() - t0
            times[name].append(elapsed / iterations)
    return {name: statistics.median(t) for name, t in times.items()}


# ------------------------------------------------------------ the handlers


def uses(heap: Any) -> Setting:
    return lambda: tlsf.numpy.use(heap)


class Handlers:
    """The contenders' settings: numpy's default handler; the tlsf handler
    over each heap (its fallbacks counted); numpy-allocator + TLSFAllocator;
    and for reference, FlexHeap keeping its free pages (trim_threshold=None:
    what its trimming costs) and numpy-allocator calling the C library's
    malloc through C pointers (no Python, but not numpy's cache of small
    blocks: what any handler other than numpy's own pays); and why any of
    them is not measured."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        import numpy as np

        self.np = np
        self.settings: dict[str, Setting] = {DEFAULT: contextlib.nullcontext}
        self.heaps: dict[str, Any] = {}
        self.skipped: dict[str, str] = {}
        self.fallbacks: dict[str, int] = {}
        self.peer: Any = None
        if tlsf.IMPLEMENTATION != "c":
            reason = "the tlsf handler is C: tlsf._numpy_handler needs the C core (tlsf._core)"
            self.skipped.update({HEAP: reason, FLEX: reason, FLEX_KEEP: reason, SHARED: reason})
        else:
            makers: dict[str, Callable[[], Any]] = {
                HEAP: lambda: tlsf.Heap(CAPACITY),
                FLEX: tlsf.FlexHeap,
                FLEX_KEEP: lambda: tlsf.FlexHeap(trim_threshold=None),
                SHARED: tlsf.SharedHeap.create,
            }
            for name, make in makers.items():
                heap = stack.enter_context(make())  # closing a SharedHeap removes its name
                try:
                    self.check(name, uses(heap), "tlsf.")
                except ImportError as e:  # tlsf._numpy_handler was not built
                    self.skipped[name] = str(e)
                    continue
                self.heaps[name] = heap
                self.settings[name] = self.counted(name, heap)
                self.fallbacks[name] = 0
        try:
            self.peer = python_handler(stack)
        except ImportError as e:
            self.skipped[PEER] = (f"not installed ({e.name}): pip install numpy-allocator tlsfallocator, "
                                  "or the bench extra")  # fmt: skip
        else:
            self.check(PEER, self.peer.setting, self.peer.__name__)
            self.settings[PEER] = self.peer.setting
        try:
            libc = c_library_handler()
        except ImportError as e:
            self.skipped[LIBC] = f"not installed ({e.name}): pip install numpy-allocator"
        except (OSError, AttributeError) as e:  # no C library to load by name here
            self.skipped[LIBC] = f"no C library's malloc: {e}"
        else:
            self.check(LIBC, libc.setting, libc.__name__)
            self.settings[LIBC] = libc.setting

    def check(self, name: str, setting: Setting, handler_name: str) -> None:
        """That arrays made under setting come from the handler measured."""
        multiarray: Any
        try:
            from numpy._core import multiarray
        except ImportError:  # numpy 1.x
            from numpy.core import multiarray

        with setting():
            a = self.np.empty(10)
        found = str(multiarray.get_handler_name(a))
        if not found.startswith(handler_name) or a.ctypes.data % 16:
            raise RuntimeError(f"{name}: an array's data came from {found!r} at {a.ctypes.data:#x}")

    def counted(self, name: str, heap: tlsf.Heap | tlsf.FlexHeap | tlsf.SharedHeap) -> Setting:
        @contextlib.contextmanager
        def setting() -> Iterator[Any]:
            with tlsf.numpy.use(heap) as h:
                yield h
            self.fallbacks[name] += tlsf.numpy.fallbacks(h)  # every array of the loop is freed by now

        return setting


def python_handler(stack: contextlib.ExitStack) -> Any:
    """numpy-allocator's handler whose functions are Python, over a 256 MiB
    anonymous mapping that TLSFAllocator's OffsetAllocator hands out by
    offset: a dict maps each pointer back to its allocation (free takes
    one). Sizes round up to 16 bytes, which keeps every offset 16-aligned
    (the allocator splits a block exactly). numpy-allocator calls each
    function with the GIL held; a handler is a class of its metaclass,
    and ``with`` sets it."""
    import ctypes
    import mmap

    import numpy_allocator  # type: ignore[import-not-found]
    import TLSFAllocator  # type: ignore[import-not-found]

    memory = stack.enter_context(mmap.mmap(-1, CAPACITY))
    base = ctypes.addressof(ctypes.c_char.from_buffer(memory))  # the export ends with the temporary
    pool = TLSFAllocator.OffsetAllocator(CAPACITY, PEER_ALLOCS)
    allocate, release = pool.allocate, pool.free
    live: dict[int, tuple[Any, int]] = {}

    def malloc(size: int) -> int:
        block = allocate((size + 15) & ~15 or 16)
        if block.offset == PEER_FAILED:
            return 0  # NULL: numpy raises MemoryError
        p = base + block.offset
        live[p] = (block, size)
        return p

    def calloc(nelem: int, elsize: int) -> int:
        p = malloc(nelem * elsize)
        if p:
            ctypes.memset(p, 0, nelem * elsize)
        return p

    def free(ptr: int, size: int) -> None:
        if ptr:
            release(live.pop(ptr)[0])

    def realloc(ptr: int, size: int) -> int:
        if not ptr:
            return malloc(size)
        new = malloc(size)
        if new:
            ctypes.memmove(new, ptr, min(size, live[ptr][1]))
            free(ptr, 0)
        return new

    functions = {"_malloc_": malloc, "_calloc_": calloc, "_realloc_": realloc, "_free_": free}
    handler = numpy_allocator.type("TLSFAllocator_pool", (), functions)
    handler.live = live
    handler.setting = lambda: handler  # the class is the context manager
    return handler


def c_library_handler() -> Any:
    """numpy-allocator's handler calling the C library's malloc, calloc,
    realloc and free directly: each attribute is the address of a ctypes
    function object's slot holding the function's address (free ignores
    the size numpy also passes)."""
    import ctypes

    import numpy_allocator  # type: ignore[import-not-found]

    libc = ctypes.CDLL(None)
    names = ("malloc", "calloc", "realloc", "free")
    functions = {f"_{name}_": ctypes.addressof(getattr(libc, name)) for name in names}
    handler = numpy_allocator.type("c_library", (), functions)
    handler.library = libc  # keeps the slots alive
    handler.setting = lambda: handler
    return handler


# ------------------------------------------------------------ the sections


def calls(make: Any, arg: Any) -> Loop:
    """A loop that calls make(arg) and drops the result."""

    def loop(count: int) -> None:
        for _ in range(count):
            make(arg)

    return loop


def arithmetic(sqrt: Any, a: Any, b: Any) -> Loop:
    def loop(count: int) -> None:
        for _ in range(count):
            c = a * b + a
            d = sqrt(c)
            d.sum()

    return loop


def create_and_drop(h: Handlers, n: int, rounds: int, progress: Callable[[str], None]) -> dict[str, Any]:
    np = h.np
    report: dict[str, Any] = {}
    for kind, divisors in CREATE.items():
        make = getattr(np, kind)
        for size in SIZES:
            case = f"numpy.{kind}({size:,})"
            progress(f"numpy: {case}")

            loop = calls(make, size)
            iterations = n // divisors[size]
            loops = {name: (setting, loop, iterations // (PEER_SHARE if name == PEER else 1))
                     for name, setting in h.settings.items()}  # fmt: skip
            report[case] = interleaved(loops, rounds)
    return report


def workload(h: Handlers, n: int, rounds: int, progress: Callable[[str], None]) -> dict[str, Any]:
    np = h.np
    rng = np.random.default_rng(49)
    report: dict[str, Any] = {}
    for shape, divisor in SHAPES.items():
        case = f"shape {shape}"
        progress(f"numpy: workload, {case}")
        a = rng.random(shape) + 0.5
        b = rng.random(shape) + 0.5

        loop = arithmetic(np.sqrt, a, b)
        settings = {name: h.settings[name] for name in WORKLOAD if name in h.settings}
        report[case] = interleaved({name: (s, loop, n // divisor) for name, s in settings.items()}, rounds)
    return report


def own_arrays(h: Handlers, n: int, rounds: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """heap.ndarray works on either implementation, without the handler."""
    np = h.np
    report: dict[str, Any] = {}
    with tlsf.Heap(CAPACITY) as heap:
        typed_later: Any = heap  # heap.ndarray is new: not in _core.pyi yet
        own = typed_later.ndarray
        for size in NDARRAY_SIZES:
            case = f"n = {size:,}"
            progress(f"numpy: heap.ndarray, {case}")

            count = n // NDARRAY_DIVISOR
            loops: dict[str, tuple[Setting, Loop, int]] = {
                EMPTY: (contextlib.nullcontext, calls(np.empty, (size,)), count),
                NDARRAY: (contextlib.nullcontext, calls(own, (size,)), count),
            }
            report[case] = interleaved(loops, rounds)
    return report


# --------------------------------------------------------------- the run


def measure(n: int, rounds: int, progress: Callable[[str], None]) -> Report:
    import numpy as np

    with contextlib.ExitStack() as stack:
        h = Handlers(stack)
        report: Report = {
            "numpy": np.__version__,
            "ns_per_array": create_and_drop(h, n, rounds, progress),
            "ns_per_workload_iteration": workload(h, n, rounds, progress),
            "ns_per_own_array": own_arrays(h, n, rounds, progress),
            "fallbacks": h.fallbacks,
            "grown_bytes": {name: heap.size for name, heap in h.heaps.items() if name != HEAP},
            "skipped": h.skipped,
        }
        if h.peer is not None and h.peer.live:
            raise RuntimeError(f"{PEER}: {len(h.peer.live)} allocations not freed")
    report["targets"] = verdicts(report)
    return report


def verdicts(report: Report) -> list[dict[str, Any]]:
    """One entry per target checked: (case, contender, figure, met)."""
    found = []
    for section in ("ns_per_array", "ns_per_workload_iteration"):
        for case, times in report[section].items():
            for name in TARGETED:
                if name in times:
                    ratio = times[name] / times[DEFAULT]
                    found.append({"case": case, "contender": name, "target": f"<= {TARGET_RATIO}x default",
                                  "figure": ratio, "met": ratio <= TARGET_RATIO})  # fmt: skip
            if PEER in times and HEAP in times:
                speedup = times[PEER] / times[HEAP]
                found.append({"case": case, "contender": PEER,
                              "target": f"tlsf handler (Heap) >= {TARGET_SPEEDUP:.0f}x faster",
                              "figure": speedup, "met": speedup >= TARGET_SPEEDUP})  # fmt: skip
    return found


# ------------------------------------------------------------- the table


def _rows(times: dict[str, float], base: str, marks: dict[str, str]) -> list[str]:
    return [f"    {name:<46}{ns:>14,.1f}{ns / times[base]:>11.2f}  {marks.get(name, '')}".rstrip()
            for name, ns in times.items()]  # fmt: skip


def _marks(case: str, targets: list[dict[str, Any]]) -> dict[str, str]:
    marks = {FLEX_KEEP: "(reference)", LIBC: "(reference)"}
    for t in targets:
        if t["case"] == case:
            verdict = "met" if t["met"] else "missed"
            if t["contender"] == PEER:
                marks[PEER] = f"{verdict}: Heap's {t['figure']:.1f}x faster (>= {TARGET_SPEEDUP:.0f}x)"
            else:
                marks[t["contender"]] = f"{verdict} (<= {TARGET_RATIO}x)"
    return marks


def table(n: int, rounds: int, report: Report) -> str:
    targets = report["targets"]
    head = f"{'ns/op':>14}{'x default':>11}  target"
    lines = [
        f"tlsf {tlsf.__version__} ({tlsf.IMPLEMENTATION}), numpy {report['numpy']}, Python "
        f"{sys.version.split()[0]}: numpy's memory handler over a tlsf heap against numpy's default, "
        f"N={n:,}, median of {rounds} rounds",
        f"targets: the tlsf handler (Heap, FlexHeap, SharedHeap) at most {TARGET_RATIO}x the default's time, "
        f"and at least {TARGET_SPEEDUP:.0f}x faster than numpy-allocator + TLSFAllocator",
        f"1. create and drop one float64 array{'':<14}{head}",
    ]
    for case, times in report["ns_per_array"].items():
        lines.append(f"  {case}")
        lines += _rows(times, DEFAULT, _marks(case, targets))
    lines.append(f"2. workload: c = a * b + a; d = sqrt(c); d.sum(){'':<1}{head}")
    for case, times in report["ns_per_workload_iteration"].items():
        lines.append(f"  {case}, float64")
        lines += _rows(times, DEFAULT, _marks(case, targets))
    lines.append(f"3. an array in its own allocation, per array{'':<5}{'ns/op':>14}{'x empty':>11}")
    for case, times in report["ns_per_own_array"].items():
        lines.append(f"  {case}")
        lines += _rows(times, EMPTY, {})
    for name, reason in report["skipped"].items():
        lines.append(f"{name}: not measured, {reason}")
    if report["fallbacks"]:
        counts = ", ".join(f"{name.split(', ')[1]} {k}" for name, k in report["fallbacks"].items())
        lines.append(f"allocations the C library served because the heap was full: {counts}")
    if report["grown_bytes"]:
        sizes = ", ".join(f"{name.split(', ')[1]} {size / (1 << 20):.1f} MiB"
                          for name, size in report["grown_bytes"].items())  # fmt: skip
        lines.append(f"the growing heaps' sizes at the end: {sizes}")
    missed: dict[str, list[str]] = {}
    for t in targets:
        if not t["met"]:
            missed.setdefault(t["contender"], []).append(f"{t['case']} {t['figure']:.2f}x")
    met = sum(t["met"] for t in targets)
    if not targets:
        lines.append("targets: none checked (the tlsf handler was not measured)")
    else:
        lines.append(f"targets met: {met} of {len(targets)}" + ("; missed:" if missed else ""))
    lines += [f"  {name}: {', '.join(cases)}" for name, cases in missed.items()]
    return "\n".join(lines)
