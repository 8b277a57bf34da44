"""The twin's operations are atomic under asynchronous exceptions, and a child
forked while another thread is inside a call gets a usable heap.

The C core runs each operation without a bytecode boundary; the twin can be
interrupted at any line (a KeyboardInterrupt from a signal handler, an
exception raised by a trace function). Its journal (tlsf.pure.journal) undoes
the half-done operation. Twin only: the classes come from tlsf.pure directly,
so these tests also run with TLSF_PURE_PYTHON=1.
"""

from __future__ import annotations

import linecache
import os
import random
import signal
import sys
import threading
import time
from typing import Any, Callable

import pytest
from conftest import pattern

import tlsf
import tlsf.pure.classes
import tlsf.pure.journal
import tlsf.pure.offset
import tlsf.pure.tlsf
from tlsf.pure import Heap, OffsetAllocator

TRACED = {
    os.path.abspath(m.__file__ or "")
    for m in (tlsf.pure.tlsf, tlsf.pure.offset, tlsf.pure.classes, tlsf.pure.journal)
}
ERRORS = (tlsf.OutOfMemoryError, tlsf.InvalidOffsetError, ValueError)


class Interrupt(BaseException):
    """Raised by the trace function in the middle of an operation."""


def interrupted(n: int, call: Callable[[], Any]) -> tuple[bool, Any]:
    """Runs call(), raising Interrupt at the n-th 'line' event inside the
    twin's modules: (True, the source line where it was raised) if it was
    raised, else (False, outcome), the outcome being the result or the class
    of an expected error."""
    count = 0
    where = ""

    def local(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count, where
        if event == "line":
            count += 1
            if count == n:
                where = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
                raise Interrupt
        return local

    def calls(frame: Any, event: str, arg: Any) -> Any:
        return local if os.path.abspath(frame.f_code.co_filename) in TRACED else None

    sys.settrace(calls)
    try:
        return False, outcome(call)
    except Interrupt:
        return True, where
    finally:
        sys.settrace(None)


def outcome(call: Callable[[], Any]) -> Any:
    try:
        r = call()
    except ERRORS as e:
        return type(e)
    return list(r) if r is not None and not isinstance(r, (int, bool)) else r


# ------------------------------------------------------------------ states


def free_interiors(h: Heap, mem: bytearray) -> bytes:
    """The arena with the bytes inside free blocks beyond their 32-byte
    metadata zeroed (they are unspecified after an engine error)."""
    image = bytearray(mem)
    for b in h.walk():
        if not b.used:
            image[b.offset + 32 : b.offset + b.size] = bytes(b.size - 32)
    return bytes(image)


def heap_state(h: Heap, mem: bytearray, exact: bool) -> tuple:
    t = h._t
    assert t is not None
    lists = (list(t.heads), list(t.tails), t.cls.fl_bitmap, list(t.cls.sl_bitmap), t.first_pool)
    live = {p: bytes(mem[p : p + h.usable_size(p)]) for p in sorted(t.live)}
    image = bytes(mem) if exact else free_interiors(h, mem)
    return image, list(h.walk()), h.stats(), lists, live


def oa_state(a: OffsetAllocator) -> tuple:
    t = a._t
    lists = []
    for head in t.heads:
        chain = []
        while head is not None:
            chain.append((head.offset, head.size, head.flags))
            head = head.next_free
        lists.append(chain)
    tails = [None if n is None else n.offset for n in t.tails]
    ranges = []
    s = t.first_range
    while s is not None:
        ranges.append((s.range_first.offset, s.offset, s.flags, s.prev_phys.offset))
        s = s.next_range
    index = sorted((u, n.offset, n.size, n.flags) for u, n in t.index.items())
    counters = (t.capacity, t.nodes_total, t.cls.fl_count, t.cls.fl_bitmap, list(t.cls.sl_bitmap))
    return list(a.walk()), a.stats(), a.capacity, lists, tails, ranges, index, counters


def release_left_held(allocator: Any) -> None:
    """Before 3.10, CPython can deliver an asynchronous exception at the first
    instruction of a with statement's exception handler, before it calls
    __exit__ (bpo-29988, fixed in 3.10): an interrupt that lands there, as an
    engine error leaves an operation, leaves the lock held (README, "Threads,
    fork and interrupts"). The heap itself is unchanged."""
    assert sys.version_info < (3, 10), "the lock was left held"
    allocator._lock.release()


# ------------------------------------------------------------------- cases
# Each case: (name, prepare() -> (allocator, memory or None, context), call(allocator, context)).


def filled(h: Heap, mem: bytearray, size: int, align: int = 1) -> int:
    p = h.alloc(size, align)
    mem[p : p + size] = pattern(p * 7 + size, size)
    return p


def heap(capacity: int = 4096, **kw: Any) -> tuple[Heap, bytearray]:
    mem = bytearray(capacity)
    return Heap(mem, **kw), mem


def heap_case(build: Callable[[Heap, bytearray], Any], capacity: int = 4096, **kw: Any):
    def prepare():
        h, mem = heap(capacity, **kw)
        return h, mem, build(h, mem)

    return prepare


def h_split(h, mem):
    return None


def h_hole(h, mem):  # an exact hole: no split
    a = filled(h, mem, 48)
    filled(h, mem, 48)
    h.free(a)


def h_three(h, mem):  # a b c d, all used, then the free rest
    return [filled(h, mem, n) for n in (100, 200, 100, 300)]


def h_coalesce_left(h, mem):
    a, b, c, d = h_three(h, mem)
    h.free(a)
    return b


def h_coalesce_both(h, mem):
    a, b, c, d = h_three(h, mem)
    h.free(a)
    h.free(c)
    return b


def h_move_prev(h, mem):
    a, b, c, d = h_three(h, mem)
    h.free(a)
    return b


def h_pools(h, mem):
    h.insert_free_block(0, 2048)
    return filled(h, mem, 100)


def h_pools_last_used(h, mem):
    h.insert_free_block(0, 2048)
    p = filled(h, mem, 100)
    filled(h, mem, 2048 - 32 - 16 - 128 - 16)  # the pool's last block is used
    return p


def h_batch(h, mem):
    a, b, c, d = h_three(h, mem)
    return [d, b, a]


HEAP_CASES = [
    ("alloc split", heap_case(h_split), lambda h, c: h.alloc(100)),
    ("alloc exact hole", heap_case(h_hole), lambda h, c: h.alloc(48)),
    ("alloc aligned with padding", heap_case(h_three), lambda h, c: h.alloc(64, 512)),
    ("alloc zero", heap_case(h_three), lambda h, c: h.alloc(0)),
    ("alloc out of memory", heap_case(h_three), lambda h, c: h.alloc(5000)),
    ("free no coalescing", heap_case(h_three), lambda h, c: h.free(c[1])),
    ("free coalesce right", heap_case(h_three), lambda h, c: h.free(c[3])),
    ("free coalesce left", heap_case(h_coalesce_left), lambda h, c: h.free(c)),
    ("free coalesce both", heap_case(h_coalesce_both), lambda h, c: h.free(c)),
    ("free invalid", heap_case(h_three), lambda h, c: h.free(c[1] + 16)),
    ("realloc shrink", heap_case(h_three), lambda h, c: h.realloc(c[1], 20)),
    ("realloc shrink no split", heap_case(h_three), lambda h, c: h.realloc(c[1], 190)),
    ("realloc grow in place", heap_case(h_three), lambda h, c: h.realloc(c[3], 900)),
    ("realloc grow in place whole", heap_case(h_three), lambda h, c: h.realloc(c[3], 4096 - 784 - 64)),
    ("realloc move into previous", heap_case(h_move_prev), lambda h, c: h.realloc(c, 250)),
    ("realloc move elsewhere", heap_case(h_three), lambda h, c: h.realloc(c[1], 1000)),
    ("realloc out of memory", heap_case(h_three), lambda h, c: h.realloc(c[1], 5000)),
    ("alloc_many", heap_case(h_coalesce_left), lambda h, c: h.alloc_many([10, 100, 1000], 64)),
    ("alloc_many failure", heap_case(h_coalesce_both), lambda h, c: h.alloc_many([100, 1000, 5000])),
    ("free_many", heap_case(h_batch), lambda h, c: h.free_many(c)),
    ("free_many invalid", heap_case(h_batch), lambda h, c: h.free_many([*c, c[0]])),
    ("insert_free_block", heap_case(h_pools, pool=False), lambda h, c: h.insert_free_block(3000, 1000)),
    ("insert_free_block first", heap_case(h_pools, pool=False), lambda h, c: h.insert_free_block(0, 0)),
    (
        "insert_free_block before",
        heap_case(lambda h, m: h.insert_free_block(2048, 2048), pool=False),
        lambda h, c: h.insert_free_block(0, 2000),
    ),
    ("append_free_block", heap_case(h_pools, pool=False), lambda h, c: h.append_free_block(2048, 1000)),
    (
        "append_free_block last used",
        heap_case(h_pools_last_used, pool=False),
        lambda h, c: h.append_free_block(2048, 2048),
    ),
    ("check", heap_case(h_coalesce_both), lambda h, c: h.check()),
]


def oa_case(build: Callable[[OffsetAllocator], Any], capacity: int = 4096, **kw: Any):
    def prepare():
        a = OffsetAllocator(capacity, **kw)
        return a, None, build(a)

    return prepare


def o_four(a):
    return [a.alloc(n) for n in (100, 200, 100, 300)]


def o_left(a):
    p, q, r, s = o_four(a)
    a.free(p)
    return q


def o_both(a):
    p, q, r, s = o_four(a)
    a.free(p)
    a.free(r)
    return q


def o_hole(a):
    p, q, r, s = o_four(a)
    a.free(q)
    return p


def o_ranges(a):
    a.add_range(10_000, 1000)
    return a.alloc(100)


OA_CASES = [
    ("alloc split", oa_case(lambda a: None), lambda a, c: a.alloc(100)),
    ("alloc exact", oa_case(o_hole), lambda a, c: a.alloc(200)),
    ("alloc aligned with padding", oa_case(o_four), lambda a, c: a.alloc(64, 512)),
    ("alloc out of memory", oa_case(o_four), lambda a, c: a.alloc(5000)),
    ("free no coalescing", oa_case(o_four), lambda a, c: a.free(c[1])),
    ("free coalesce right", oa_case(o_four), lambda a, c: a.free(c[3])),
    ("free coalesce left", oa_case(o_left), lambda a, c: a.free(c)),
    ("free coalesce both", oa_case(o_both), lambda a, c: a.free(c)),
    ("free invalid", oa_case(o_four), lambda a, c: a.free(c[1] + 1)),
    ("resize shrink", oa_case(o_four), lambda a, c: a.resize(c[1], 20)),
    ("resize grow", oa_case(o_four), lambda a, c: a.resize(c[3], 1000)),
    ("resize grow whole", oa_case(o_four), lambda a, c: a.resize(c[3], 4096 - 400)),
    ("resize grow into a hole", oa_case(o_hole), lambda a, c: a.resize(c, 300)),
    ("resize cannot grow", oa_case(o_four), lambda a, c: a.resize(c[1], 300)),
    ("alloc_many", oa_case(o_left, granularity=16), lambda a, c: a.alloc_many([10, 100, 1000], 64)),
    ("alloc_many failure", oa_case(o_both), lambda a, c: a.alloc_many([100, 1000, 5000])),
    ("free_many", oa_case(o_four), lambda a, c: a.free_many([c[3], c[1], c[0]])),
    ("free_many invalid", oa_case(o_four), lambda a, c: a.free_many([c[3], c[1], c[3]])),
    ("add_range apart", oa_case(o_four), lambda a, c: a.add_range(8192, 1000)),
    ("add_range first", oa_case(lambda a: None, capacity=0), lambda a, c: a.add_range(64, 100_000)),
    ("add_range after", oa_case(o_four), lambda a, c: a.add_range(4096, 100_000)),
    ("add_range after used", oa_case(lambda a: a.alloc(4096)), lambda a, c: a.add_range(4096, 50)),
    ("add_range before", oa_case(o_ranges), lambda a, c: a.add_range(9000, 1000)),
    ("add_range between", oa_case(o_ranges), lambda a, c: a.add_range(4096, 10_000 - 4096)),
    ("add_range overlapping", oa_case(o_ranges), lambda a, c: a.add_range(4000, 100)),
    ("reset", oa_case(lambda a: (o_ranges(a), o_four(a))), lambda a, c: a.reset()),
    ("check", oa_case(o_both), lambda a, c: a.check()),
]


def run_case(prepare, call, state, oa: bool) -> int:
    """Interrupts call at its 1st, 2nd, ... line until it completes; returns
    the number of interruptions."""
    allocator, mem, ctx = prepare()
    reference = outcome(lambda: call(allocator, ctx))
    exact = reference is None or not (isinstance(reference, type) and issubclass(reference, ERRORS))
    after = state(allocator, mem, True)
    n = 1
    while True:
        allocator, mem, ctx = prepare()
        before = state(allocator, mem, exact)
        hit, got = interrupted(n, lambda a=allocator, c=ctx: call(a, c))
        if not hit:
            assert got == reference
            assert state(allocator, mem, True) == after
            return n - 1
        if allocator._lock.locked():
            assert got.startswith("with self._lock"), f"lock held after line event {n}: {got}"
            release_left_held(allocator)
        allocator.check()
        assert state(allocator, mem, exact) == before, f"interrupted at line event {n}"
        assert outcome(lambda a=allocator, c=ctx: call(a, c)) == reference, f"repeated after line event {n}"
        allocator.check()
        if exact:
            assert state(allocator, mem, True) == after, f"repeated after line event {n}"
        n += 1


@pytest.mark.parametrize("name, prepare, call", HEAP_CASES, ids=[c[0] for c in HEAP_CASES])
def test_heap_operation_interrupted_at_every_line(name, prepare, call):
    def state(h, mem, exact):
        return heap_state(h, mem, exact)

    assert run_case(prepare, call, state, False) > 0


@pytest.mark.parametrize("name, prepare, call", OA_CASES, ids=[c[0] for c in OA_CASES])
def test_offset_operation_interrupted_at_every_line(name, prepare, call):
    def state(a, mem, exact):
        return oa_state(a)

    assert run_case(prepare, call, state, True) > 0


class FlakyLog(list):
    """A journal whose `del log[-3:]` is interrupted once, at the k-th time:
    the rollback is interrupted itself (after restoring an entry, before
    dropping it)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def __delitem__(self, key: Any) -> None:
        self.k -= 1
        if self.k == 0:
            raise Interrupt
        super().__delitem__(key)


def journal_lengths(call: Callable[[], Any], engine: Any) -> list[int]:
    """The length of engine's journal at each 'line' event of call() inside
    the twin's modules (the line counts differ between Python versions)."""
    lengths = []

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            lengths.append(len(engine.log))
        return local

    sys.settrace(lambda f, e, a: local if os.path.abspath(f.f_code.co_filename) in TRACED else None)
    try:
        call()
    finally:
        sys.settrace(None)
    return lengths


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_rollback_interrupted_itself_completes(k):
    def prepare():
        h, mem = heap()
        a, b, c, d = h_three(h, mem)
        h.free(a)
        return h, mem, b

    h, mem, b = prepare()
    lengths = journal_lengths(lambda: h.realloc(b, 250), h._t)
    # interrupted once the move has made more than k stores (and the
    # counters' entry), well before it commits
    n = 1 + next(i for i, length in enumerate(lengths) if length > 3 * (k + 1))
    h, mem, b = prepare()
    t = h._t
    t.log = t.cls.log = FlakyLog(k)
    before = heap_state(h, mem, True)
    hit, _ = interrupted(n, lambda: h.realloc(b, 250))
    assert hit and not t.log
    assert t.log.k <= 0  # the rollback was interrupted
    h.check()
    assert heap_state(h, mem, True) == before


# ------------------------------------------------------------- real signals


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
@pytest.mark.parametrize("cls", ["Heap", "OffsetAllocator"])
def test_keyboard_interrupts_from_a_timer(cls):
    """A random workload under a SIGALRM every 0.7 ms whose handler raises
    KeyboardInterrupt: after each one, check() passes and the allocations are
    those of the model, an interrupted call done entirely or not at all (done
    only when the interrupt came after the call returned: an interrupt in
    the middle is undone)."""
    rng = random.Random(1)
    armed = [False]
    landed = {"twin": 0, "elsewhere": 0}

    def handler(signum: int, frame: Any) -> None:
        if armed[0]:
            armed[0] = False  # one interrupt per call
            inside = frame is not None and os.path.abspath(frame.f_code.co_filename) in TRACED
            landed["twin" if inside else "elsewhere"] += 1
            raise KeyboardInterrupt

    if cls == "Heap":
        mem: Any = bytearray(1 << 16)
        h: Any = Heap(mem)
    else:
        mem = None
        h = OffsetAllocator(1 << 16, granularity=16)
    model: dict[int, bytes] = {}  # offset -> contents (Heap) or b"" (OffsetAllocator)

    def used() -> set[int]:
        return {b.offset + (16 if mem is not None else 0) for b in h.walk() if b.used}

    def stamp(p: int, n: int) -> None:
        model[p] = pattern(p + n, n) if mem is not None else b""
        if mem is not None:
            mem[p : p + n] = model[p]

    def verify() -> None:
        h.check()
        now = used()
        for p in now - model.keys():  # done: the interrupt came after the call returned
            model[p] = b""
        for p in model.keys() - now:  # a free or a move, done
            del model[p]
        assert now == model.keys()
        if mem is not None:
            for p, data in model.items():
                data = model[p] = data[: h.usable_size(p)]  # a realloc may have shrunk it, done
                assert mem[p : p + len(data)] == data

    def call(op: float) -> Any:
        if op < 0.4 or not model:
            n = rng.randrange(1, 600)
            return "alloc", n, h.alloc(n, rng.choice([1, 1, 64]))
        if op < 0.75:
            p = rng.choice(list(model))
            return "free", p, h.free(p)
        if op < 0.85 and mem is not None:
            p = rng.choice(list(model))
            n = rng.randrange(1, 900)
            return "realloc", (p, n), h.realloc(p, n)
        if op < 0.85:
            p = rng.choice(list(model))
            return "resize", p, h.resize(p, rng.randrange(1, 900))
        if op < 0.93:
            sizes = [rng.randrange(1, 300) for _ in range(rng.randrange(1, 8))]
            return "alloc_many", None, h.alloc_many(sizes)
        ps = rng.sample(list(model), min(len(model), rng.randrange(1, 6)))
        return "free_many", ps, h.free_many(ps)

    old = signal.signal(signal.SIGALRM, handler)
    interrupts = 0
    deadline = time.monotonic() + 1.5
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.0007, 0.0007)
        while time.monotonic() < deadline:
            op = rng.random()
            try:
                armed[0] = True
                try:
                    kind, arg, result = call(op)
                finally:
                    armed[0] = False
            except KeyboardInterrupt:
                interrupts += 1
                if h._lock.locked():
                    release_left_held(h)
                verify()
                continue
            except tlsf.OutOfMemoryError:
                continue
            if kind == "alloc":
                stamp(result, arg)
            elif kind == "free":
                del model[arg]
            elif kind == "realloc":
                (p, n), data = arg, model.pop(arg[0])
                keep = min(len(data), n)
                assert mem[result : result + keep] == data[:keep]
                model[result] = data[:keep]
            elif kind == "alloc_many":
                for p in result:
                    stamp(int(p), 1)
            elif kind == "free_many":
                for p in arg:
                    del model[p]
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    verify()
    assert interrupts > 10
    assert landed["twin"] > 0  # some came in the middle of an operation


# -------------------------------------------------------------------- fork


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads (3.12+)
def test_fork_while_another_thread_is_inside_a_call():
    h = Heap(1 << 16)
    oa = OffsetAllocator(1 << 16)
    stop = threading.Event()

    def worker() -> None:
        rng = random.Random(2)
        live: list[tuple[Any, int]] = []
        while not stop.is_set():
            target = h if rng.random() < 0.5 else oa
            mine = [p for t, p in live if t is target]
            if mine and rng.random() < 0.5:
                p = rng.choice(mine)
                live.remove((target, p))
                target.free(p)
            else:
                try:
                    live.append((target, target.alloc(rng.randrange(1, 2000))))
                except tlsf.OutOfMemoryError:
                    pass

    thread = threading.Thread(target=worker)
    thread.start()
    failures = []
    try:
        for _ in range(50):
            time.sleep(0.002)
            pid = os.fork()
            if pid == 0:  # the child: only this thread exists
                code = 1
                try:
                    signal.alarm(3)  # a deadlock kills the child
                    for a in (h, oa):
                        a.check()
                        p = a.alloc(64)
                        a.free(p)
                        a.check()
                    code = 0
                finally:
                    os._exit(code)
            deadline = time.monotonic() + 10
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    status = -1
                    break
                time.sleep(0.001)
            if status != 0:
                failures.append(status)
                if len(failures) == 3:
                    break
    finally:
        stop.set()
        thread.join()
    h.check()
    oa.check()
    assert not failures, f"children failed (wait statuses): {failures}"
