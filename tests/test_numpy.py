"""numpy arrays from a heap: the memory handler (tlsf.numpy.use, C only), and
arrays and Blocks that own allocations (heap.ndarray, heap.block; both
implementations). NEP 49's rules each have a test here; numpy's own test
modules run under the handler in CI (.ci/numpy-suite)."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import itertools
import multiprocessing
import pickle
import sys
import threading
import weakref

import pytest
from conftest import heap_and_flex_fixture, make_flex

import tlsf

np = pytest.importorskip("numpy")
tn = pytest.importorskip("tlsf.numpy")

Heap = heap_and_flex_fixture()
C_ONLY = pytest.mark.skipif(tlsf.IMPLEMENTATION != "c", reason="the handler is C (tlsf._numpy_handler)")
HEAP_KINDS = ["Heap", "FlexHeap", "SharedHeap"]


def handler_name(a) -> str | None:
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    return multiarray.get_handler_name(a)


def new(cls, size: int = 1 << 20, **kw):
    """A heap of class cls (a Heap, FlexHeap or SharedHeap) of about `size` bytes."""
    if cls.__name__ == "Heap":
        return cls(size, **kw)
    return make_flex(cls, size, **kw)


def allocations(heap) -> int:
    return heap.stats().allocations


@pytest.fixture(params=HEAP_KINDS)
def kind(request):
    """Each heap class of the C core, for the handler's tests."""
    if tlsf.IMPLEMENTATION != "c":
        pytest.skip("the handler is C (tlsf._numpy_handler)")
    return getattr(tlsf, request.param)


# ------------------------------------------------------------- the handler


@C_ONLY
def test_arrays_of_the_handler_live_in_the_heap_and_free_into_it(kind):
    with new(kind) as heap:
        with tn.use(heap) as h:
            a = np.arange(1000.0)
            b = np.empty((10, 10), dtype=np.int8)
        assert handler_name(a) == handler_name(b) == f"tlsf.{kind.__name__}"
        assert handler_name(np.empty(3)) == "default_allocator"  # restored
        assert tn.offset(heap, a) == tn.offset(heap, a[7:]) >= 0
        assert allocations(heap) == 2
        assert tn.heap_of(h) is heap and tn.fallbacks(h) == 0
        assert a.sum() == 499500.0
        del a, b
        assert allocations(heap) == 0
        heap.check()


@C_ONLY
def test_zeros_are_zero_over_old_bytes(kind):
    with new(kind) as heap:
        dirty = heap.ndarray(4096, np.uint8)
        dirty[:] = 0xAB
        del dirty  # its bytes stay in the free block
        with tn.use(heap):
            z = np.zeros(4096, np.uint8)
            z2 = np.zeros((3, 5))
        assert tn.offset(heap, z) >= 0 and not z.any() and not z2.any()
        del z, z2


@C_ONLY
def test_resize_keeps_the_contents_in_place_and_across_allocators():
    heap = tlsf.Heap(1 << 16)
    with tn.use(heap) as h:
        a = np.arange(100, dtype=np.int64)
        at = tn.offset(heap, a)
        a.resize(200, refcheck=False)  # realloc in the heap: in place, the space after it is free
        assert list(a[:100]) == list(range(100)) and tn.offset(heap, a) == at
        a.resize(100_000, refcheck=False)  # does not fit: moves to the C library's memory
        assert list(a[:100]) == list(range(100))
        assert tn.fallbacks(h) == 1 and allocations(heap) == 0
        with pytest.raises(ValueError, match="not in this heap"):
            tn.offset(heap, a)
        a.resize(10, refcheck=False)  # realloc of the C library's block
        assert list(a) == list(range(10))
    with tn.use(heap):
        d = np.arange(10, dtype=np.int64)
    with tn.use(tlsf.Heap(1 << 16)):  # another handler is current: d's own resizes it
        d.resize(20, refcheck=False)
    assert tn.offset(heap, d) >= 0 and list(d[:10]) == list(range(10))
    del a, d
    heap.check()
    heap.close()


@C_ONLY
def test_close_is_refused_while_arrays_use_the_heap(kind):
    heap = new(kind)
    with tn.use(heap):
        a = np.ones(100)
    with pytest.raises(BufferError, match="arrays use its memory"):
        heap.close()
    assert not heap.closed and a.sum() == 100.0  # nothing was released
    v = a[10:]
    del a
    with pytest.raises(BufferError):
        heap.close()  # the view keeps the array's data
    del v
    heap.close()
    assert heap.closed


@C_ONLY
def test_a_closed_heap_sends_everything_to_the_c_library():
    heap = tlsf.FlexHeap()
    h = tn.handler(heap)
    heap.close()
    with _using(h):
        a = np.arange(10.0)
    assert a.sum() == 45.0 and tn.fallbacks(h) == 1
    del a


class _using:
    """Sets a handler capsule made earlier (numpy's own API, through tlsf's module)."""

    def __init__(self, h):
        self.h = h

    def __enter__(self):
        self.old = tn._handler_module().set(tn._array_api(), self.h)

    def __exit__(self, *exc):
        tn._handler_module().set(tn._array_api(), self.old)


@C_ONLY
@pytest.mark.parametrize("order", list(itertools.permutations(["array", "view", "heap", "handler"])))
def test_arrays_outlive_the_heap_object_and_the_handler_in_any_order(order):
    heap = tlsf.FlexHeap()
    ref = weakref.ref(heap)
    with tn.use(heap) as h:
        array = np.arange(1000.0)
    objs = {"array": array, "view": array[::7], "heap": heap, "handler": h}
    del array, heap, h
    for name in order:
        for k in ("array", "view"):
            if k in objs:
                objs[k] += 1  # still readable and writable
        del objs[name]
        gc.collect()
        alive = ref() is not None
        assert alive == ("array" in objs or "view" in objs or "heap" in objs or "handler" in objs)
    assert ref() is None  # nothing leaked


@C_ONLY
def test_pickling_an_array_copies_it():
    heap = tlsf.Heap(1 << 16)
    with tn.use(heap):
        a = np.arange(10.0)
    b = pickle.loads(pickle.dumps(a))
    assert (a == b).all() and handler_name(b) == "default_allocator"
    with tn.use(heap):
        c = pickle.loads(pickle.dumps(a))
    assert tn.offset(heap, c) != tn.offset(heap, a)
    del a, c
    assert allocations(heap) == 0


# --------------------------------------------------------------- contexts


@C_ONLY
def test_nested_uses_restore_in_order_even_after_an_exception():
    h1, h2 = tlsf.Heap(1 << 16), tlsf.Heap(1 << 16)
    with tn.use(h1):
        with pytest.raises(KeyError):
            with tn.use(h2):
                a = np.empty(8)
                raise KeyError
        b = np.empty(8)
    c = np.empty(8)
    assert tn.offset(h2, a) >= 0 and tn.offset(h1, b) >= 0 and handler_name(c) == "default_allocator"
    del a, b


@C_ONLY
def test_threads_each_see_their_own_handler():
    heaps = [tlsf.FlexHeap() for _ in range(4)]
    barrier = threading.Barrier(len(heaps) + 1)
    out: dict[int, list] = {}
    errors = []

    def work(i):
        try:
            with tn.use(heaps[i]):
                barrier.wait()  # every thread is inside its own `with` at once
                out[i] = [np.empty(100 + i) for _ in range(200)]
                barrier.wait()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(heaps))]
    for t in threads:
        t.start()
    barrier.wait()
    main = np.empty(5)  # the main thread: still the default, while the others are inside
    barrier.wait()
    for t in threads:
        t.join()
    assert not errors
    assert handler_name(main) == "default_allocator"
    for i, arrays in out.items():
        assert all(tn.offset(heaps[i], a) >= 0 for a in arrays)
        assert allocations(heaps[i]) == 200
    del arrays
    out.clear()
    assert all(allocations(h) == 0 for h in heaps)


@C_ONLY
def test_asyncio_tasks_each_see_their_own_handler():
    heaps = [tlsf.Heap(1 << 20) for _ in range(3)]

    async def task(i, started, go):
        with tn.use(heaps[i]):
            started.set()
            await go.wait()  # the other tasks run their `with` meanwhile
            return [np.empty(50) for _ in range(10)]

    async def main():
        go = asyncio.Event()
        started = [asyncio.Event() for _ in heaps]
        tasks = [asyncio.create_task(task(i, started[i], go)) for i in range(len(heaps))]
        for e in started:
            await e.wait()
        outside = np.empty(3)
        go.set()
        return outside, await asyncio.gather(*tasks)

    outside, results = asyncio.run(main())
    assert handler_name(outside) == "default_allocator"
    for i, arrays in enumerate(results):
        assert all(tn.offset(heaps[i], a) >= 0 for a in arrays)
    del results


# ---------------------------------------------------- exhaustion and fallback


@C_ONLY
def test_a_full_heap_falls_back_and_frees_both_kinds(kind):
    heap = new(kind, 1 << 20)
    with tn.use(heap) as h:
        arrays = [np.empty(64 << 10, np.uint8) for _ in range(40)]  # 2.5 MiB into 1 MiB
    in_heap = [a for a in arrays if _in(heap, a)]
    assert 0 < len(in_heap) < len(arrays)
    assert tn.fallbacks(h) == len(arrays) - len(in_heap)
    for i, a in enumerate(arrays):
        a[:] = i % 251
    assert all((a == i % 251).all() for i, a in enumerate(arrays))
    del arrays, in_heap, a
    assert allocations(heap) == 0
    heap.check()
    heap.close()


def _in(heap, a) -> bool:
    try:
        tn.offset(heap, a)
    except ValueError:
        return False
    return True


@C_ONLY
def test_raise_mode_makes_a_full_heap_a_memory_error():
    heap = tlsf.Heap(1 << 16)
    with tn.use(heap, on_full="raise") as h:
        a = np.empty(1000)
        with pytest.raises(MemoryError):
            np.empty(1 << 20)
        with pytest.raises(MemoryError):
            np.zeros(1 << 20)
        with pytest.raises(MemoryError):
            a.resize(1 << 20, refcheck=False)
        assert a.size == 1000
    assert tn.fallbacks(h) == 0
    del a
    assert allocations(heap) == 0


def test_handler_options_are_checked():
    heap = tlsf.Heap(4096)
    with pytest.raises(ValueError, match="on_full"):
        tn.handler(heap, on_full="ignore")
    with pytest.raises(ValueError, match="power of two"):
        tn.handler(heap, align=24)
    with pytest.raises(ValueError, match="at least 16"):
        tn.handler(heap, align=8)


@C_ONLY
def test_align_is_every_arrays_alignment():
    heap = tlsf.FlexHeap()
    with tn.use(heap, align=4096):
        arrays = [np.empty(n) for n in (1, 100, 5000)]
    assert all(a.ctypes.data % 4096 == 0 for a in arrays)
    del arrays


# ------------------------------------------------ without the GIL, in parallel


class _Allocator(ctypes.Structure):
    _fields_ = [
        ("ctx", ctypes.c_void_p),
        ("malloc", ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)),
        ("calloc", ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)),
        ("realloc", ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)),
        ("free", ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)),
    ]


class _Handler(ctypes.Structure):  # NEP 49's PyDataMem_Handler
    _fields_ = [("name", ctypes.c_char * 127), ("version", ctypes.c_uint8), ("allocator", _Allocator)]


def _functions(capsule) -> _Allocator:
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return _Handler.from_address(get(capsule, b"mem_handler")).allocator


@C_ONLY
def test_the_functions_run_without_the_gil_from_many_threads(kind):
    """ctypes calls the handler's C functions with the GIL released: 4 threads
    allocate, write, resize and free at once, as numpy's GIL-free code does."""
    heap = new(kind, 64 << 20)
    capsule = tn.handler(heap)
    f = _functions(capsule)
    errors = []

    def work(seed):
        try:
            live = []
            for i in range(3000):
                n = 16 + (i * 7919 + seed) % 3000
                p = f.calloc(f.ctx, n, 1) if i % 3 == 0 else f.malloc(f.ctx, n)
                if i % 3 == 0 and ctypes.string_at(p, n) != bytes(n):
                    raise AssertionError("calloc did not zero")
                ctypes.memset(p, seed, n)
                if i % 5 == 0:
                    p = f.realloc(f.ctx, p, n * 2)
                    if ctypes.string_at(p, n) != bytes([seed]) * n:
                        raise AssertionError("realloc lost the contents")
                live.append(p)
                if len(live) > 50:
                    f.free(f.ctx, live.pop(i % len(live)), 0)  # the size is not trusted
            for p in live:
                f.free(f.ctx, p, 12345)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert allocations(heap) == 0 and tn.fallbacks(capsule) == 0
    heap.check()
    assert f.calloc(f.ctx, sys.maxsize, 4) is None  # n * size overflows: NULL, never a short block
    f.free(f.ctx, None, 0)
    heap.close()  # the handler is alive, but none of its allocations is


@C_ONLY
def test_close_refused_while_the_handler_allocates_and_frees_in_another_thread(kind):
    """close() attempts while another thread, without the GIL, allocates and
    frees through the handler: every attempt is refused (an array lives),
    no allocation or free of the thread is told "closed" (which would send
    a heap block to the C library's free), and the heap is whole after."""
    heap = new(kind, 16 << 20)
    capsule = tn.handler(heap)
    with tn.use(heap):
        keep = np.ones(10)
    f = _functions(capsule)
    done = threading.Event()
    errors = []
    refusals = [0]

    def churn():
        try:
            # Each switch between the threads waits for the GIL: the churn goes
            # on until the main thread has tried 20 times meanwhile, however
            # busy the machine is.
            i = 0
            while i < 2_000 or refusals[0] < 20:
                p = f.malloc(f.ctx, 64 + i % 512)
                ctypes.memset(p, 1, 64)
                f.free(f.ctx, p, 0)
                i += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            done.set()

    t = threading.Thread(target=churn)
    t.start()
    while not done.is_set():
        with pytest.raises(BufferError):
            heap.close()
        refusals[0] += 1
    t.join()
    assert not errors and refusals[0] >= 20
    assert tn.fallbacks(capsule) == 0 and allocations(heap) == 1
    heap.check()
    del keep
    heap.close()


# ------------------------------------------------------------ shared memory


def _read_in_child(name: str, offset: int, q) -> None:
    heap = tlsf.SharedHeap.attach(name)
    a = heap.ndarray_at(offset, (100,), np.float64)
    q.put(float(a.sum()))
    a[:] = -1.0  # the parent sees it
    del a
    heap.close()


@C_ONLY
def test_an_array_made_through_the_handler_is_read_by_offset_in_another_process():
    heap = tlsf.SharedHeap.create()
    with tn.use(heap):
        a = np.arange(100.0)
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_read_in_child, args=(heap.name, tn.offset(heap, a), q))
    p.start()
    assert q.get(timeout=60) == 4950.0
    p.join(60)
    assert p.exitcode == 0 and (a == -1.0).all()
    del a
    heap.close()


# ------------------------------------------------------- ndarray and Block


def test_ndarray_is_an_allocation_freed_with_its_last_view(Heap):  # noqa: N803
    with new(Heap) as heap:
        a = heap.ndarray((3, 4), np.int32)
        b = heap.ndarray((5, 2), np.float32, order="F", align=256)
        assert a.shape == (3, 4) and a.dtype == np.int32 and a.flags.c_contiguous and a.flags.writeable
        assert b.flags.f_contiguous and b.ctypes.data % 256 == 0
        a[:] = 7
        v = a[1:, ::2]
        del a
        gc.collect()
        assert allocations(heap) == 2 and v.sum() == 7 * 4
        with pytest.raises(BufferError):
            heap.close()
        del v, b
        gc.collect()
        assert allocations(heap) == 0
        z = heap.ndarray(0)
        assert z.shape == (0,) and allocations(heap) == 1  # an empty array still owns one allocation
        del z


def test_ndarray_refuses_what_a_heap_cannot_hold(Heap):  # noqa: N803
    with new(Heap) as heap:
        with pytest.raises(TypeError, match="plain data"):
            heap.ndarray(3, object)
        with pytest.raises(ValueError, match="negative"):
            heap.ndarray((2, -1))
        with pytest.raises(ValueError, match="order"):
            heap.ndarray(3, order="K")
        with pytest.raises(tlsf.OutOfMemoryError):
            heap.ndarray(1 << 40, np.uint8)
        assert allocations(heap) == 0


def test_ndarray_at_is_bounded_by_the_allocation(Heap):  # noqa: N803
    with new(Heap) as heap:
        off = heap.alloc(80)
        a = heap.ndarray_at(off, (2, 5), np.float64)
        a[:] = 3
        assert heap.ndarray_at(off, 10).sum() == 30.0
        with pytest.raises(ValueError, match="usable size"):
            heap.ndarray_at(off, heap.usable_size(off) // 8 + 1)
        with pytest.raises(tlsf.InvalidOffsetError):
            heap.ndarray_at(off + 16, 1)
        del a
        heap.free(off)


def test_block_frees_itself_and_refuses_while_viewed(Heap):  # noqa: N803
    with new(Heap) as heap:
        b = heap.block(100, align=64)
        assert (b.offset % 64, b.size, len(b), b.heap, b.freed) == (0, 100, 100, heap, False)
        assert repr(b) == f"<tlsf.Block offset={b.offset} size=100>"
        v = b.view()
        v[:3] = b"abc"
        with pytest.raises(BufferError, match="1 export"):
            b.free()
        with pytest.raises(BufferError):
            heap.close()
        assert bytes(heap.view(b.offset, 3)) == b"abc"
        del v
        b.free()
        b.free()  # idempotent
        assert b.freed and repr(b).endswith(" freed>") and allocations(heap) == 0
        with pytest.raises(ValueError, match="freed"):
            b.view()
        with heap.block(10) as c:
            pass
        assert c.freed
        d = heap.block(10)
        del d
        gc.collect()
        assert allocations(heap) == 0
        with pytest.raises(TypeError, match="pickle"):
            pickle.dumps(heap.block(1))
        with pytest.raises(TypeError, match="cannot create"):
            type(b)()


def test_block_is_a_buffer(Heap):  # noqa: N803
    if sys.version_info < (3, 12) and Heap.__module__.startswith("tlsf.pure"):
        pytest.skip("a buffer written in Python needs PEP 688 (3.12)")
    with new(Heap) as heap:
        b = heap.block(16)
        arr = np.frombuffer(b, np.uint8)
        arr[:] = 9
        assert bytes(memoryview(b)) == b"\x09" * 16
        with pytest.raises(BufferError):
            b.free()
        del arr
        gc.collect()
        b.free()


def test_block_outlives_nothing_it_needs(Heap):  # noqa: N803
    """The view keeps the block, the block keeps the heap: dropping the names
    in any order leaves a usable view, and then frees everything."""
    heap = new(Heap)
    ref = weakref.ref(heap)
    b = heap.block(32)
    v = b.view()
    del b, heap
    gc.collect()
    v[:] = bytes(32)
    assert ref() is not None
    del v
    gc.collect()
    assert ref() is None


def test_a_block_keeps_its_heap_open_until_freed(Heap):  # noqa: N803
    """Even with no view: numpy.ndarray(shape, dtype, buffer=block) keeps the
    block itself, not its buffer."""
    heap = new(Heap)
    b = heap.block(64)
    buffers = sys.version_info >= (3, 12) or Heap.__module__ == "tlsf._core"  # the twin's: PEP 688
    a = np.ndarray((8,), np.float64, b) if buffers else None
    with pytest.raises(BufferError, match="1 block"):
        heap.close()
    del a
    gc.collect()
    with pytest.raises(BufferError, match="blocks of it are not freed"):
        heap.close()  # the block itself
    b.free()
    heap.close()
    assert b.freed


def test_a_block_collected_inside_a_heap_call_is_freed_later(Heap):  # noqa: N803
    """A Block in a reference cycle may be collected while this thread is
    inside a heap call, under the heap's lock (the twin's is not re-entrant:
    a trace function collects there): it is freed by the next block made,
    and nothing deadlocks."""
    heap = new(Heap)
    gc.disable()
    try:
        for _ in range(10):
            c: list = []
            c.append((heap.block(16), c))  # garbage in a cycle
        del c

        def collect_inside(frame, event, arg):
            if event == "call" and frame.f_code.co_name == "walk" and heap._lock.locked():
                sys.settrace(None)
                gc.collect()  # the twin's Tlsf.walk, under the heap's lock
            return None

        if not hasattr(heap, "_lock"):
            pytest.skip("the C core runs no Python code under a heap's lock")
        sys.settrace(collect_inside)
        try:
            list(heap.walk())
        finally:
            sys.settrace(None)
    finally:
        gc.enable()
    gc.collect()
    heap.block(16).free()  # makes the frees put off
    assert allocations(heap) == 0
    heap.close()


def test_arrays_made_by_numpys_constructor_over_a_view_keep_the_memory(Heap):  # noqa: N803
    """numpy.ndarray(shape, dtype, buffer) releases the buffer at once and
    keeps only its exporter: the exporter itself keeps the heap open and the
    block allocated, not the buffer."""
    heap = new(Heap)
    off = heap.alloc(64)
    a = np.ndarray((8,), np.float64, heap.view(off))
    b = heap.block(64)
    c = np.ndarray((8,), np.float64, b.view())
    with pytest.raises(BufferError):
        b.free()
    del c
    gc.collect()
    b.free()
    with pytest.raises(BufferError):
        heap.close()
    a[:] = 1.0  # still the heap's memory
    del a
    gc.collect()
    heap.close()
