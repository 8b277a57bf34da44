"""The package tried as an adversary would, from outside: memory that holds
object references, views in reference cycles, heaps in garbage cycles, batch
calls whose result cannot be built, fork, copy and pickle, integer buffers of
every format, and sizes given as numpy integers. Each class of input runs on
both implementations and, where it applies, on both heap types.

Interrupts (KeyboardInterrupt in the middle of a twin operation) and fork
while another thread is inside a twin call are in test_interrupts.py.
"""

from __future__ import annotations

import array
import copy
import ctypes
import gc
import os
import pickle
import subprocess
import sys
import textwrap
import weakref

import numpy as np
import pytest

import tlsf
from tests.conftest import assert_consistent, assert_offset_consistent, impl_class, pattern

PURE = os.environ.get("TLSF_PURE_PYTHON", "") not in ("", "0")


def run_python(code: str, *, pure: bool) -> subprocess.CompletedProcess:
    """Runs `code` in a new interpreter (this one), with the twin forced or not."""
    env = dict(os.environ, TLSF_PURE_PYTHON="1" if pure else "0")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )


def heap_state(h) -> tuple:
    return list(h.walk()), h.stats()


# ------------------------------------------- memory that is not plain bytes

OBJECT_MEMORY = {
    "numpy object array": lambda: np.zeros(512, dtype=object),
    "numpy struct with an object field": lambda: np.zeros(64, dtype=[("x", "f8"), ("o", "O")]),
    "numpy 2-d object array": lambda: np.empty((16, 16), dtype=object),
    "ctypes pointer array": lambda: (ctypes.c_void_p * 64)(),
    "ctypes array of pointers to int": lambda: (ctypes.POINTER(ctypes.c_int) * 64)(),
}

PLAIN_MEMORY = {
    **{f"array('{c}')": (lambda c=c: array.array(c, bytes(4096))) for c in "bBhHiIlLqQfd"},
    "numpy float64": lambda: np.zeros(512),
    "numpy >i4": lambda: np.zeros(1024, dtype=">i4"),
    "numpy complex": lambda: np.zeros(256, dtype=complex),
    "numpy bool": lambda: np.zeros(4096, dtype=bool),
    "numpy struct with a field named O": lambda: np.zeros(256, dtype=[("O", "f8"), ("Oops", "i8")]),
    "numpy unicode": lambda: np.zeros(256, dtype="U4"),
    "numpy bytes": lambda: np.zeros(256, dtype="S16"),
    "ctypes int64 array": lambda: (ctypes.c_int64 * 512)(),
    "ctypes char buffer": lambda: ctypes.create_string_buffer(4096),
}


@pytest.mark.parametrize("name", OBJECT_MEMORY)
def test_memory_holding_objects_is_refused(Heap, name):
    mem = OBJECT_MEMORY[name]()
    before = bytes(memoryview(mem).cast("B")) if not isinstance(mem, np.ndarray) else None
    with pytest.raises(TypeError, match="plain data"):
        Heap(mem)
    if before is not None:
        assert bytes(memoryview(mem).cast("B")) == before  # nothing written
    del mem
    gc.collect()


@pytest.mark.parametrize("name", PLAIN_MEMORY)
def test_memory_of_plain_data_is_accepted(Heap, name):
    mem = PLAIN_MEMORY[name]()
    with Heap(mem) as h:
        a = h.alloc(100)
        h.view(a)[:3] = b"abc"
        h.free(a)
        assert_consistent(h)


def test_object_array_message_is_the_same(both):
    c, py = both
    msgs = []
    for cls in (c, py):
        with pytest.raises(TypeError) as e:
            cls(np.zeros(512, dtype=object))
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]


@pytest.mark.parametrize("pure", [False, True])
def test_object_array_reproducer_does_not_crash(pure):
    if not pure and PURE:
        pytest.skip("TLSF_PURE_PYTHON=1")
    r = run_python(
        """
        import numpy as np, tlsf
        a = np.zeros(512, dtype=object)
        try:
            h = tlsf.Heap(a)
        except TypeError:
            pass
        else:
            del h
        del a
        print("ok")
        """,
        pure=pure,
    )
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr


# ---------------------------------------------- views in reference cycles

CYCLE_CASES = {
    "view in a self-referencing list": """
        h = tlsf.Heap(bytearray(1 << 16)); lst = [h.view(h.alloc(10))]; lst.append(lst)
        del h, lst
    """,
    "slice of a view in a cycle, view gone": """
        h = tlsf.Heap(bytearray(1 << 16)); v = h.view(h.alloc(100)); lst = [v[10:20]]; lst.append(lst)
        del v, h, lst
    """,
    "heap and view in one cycle": """
        class Box: pass
        b = Box(); b.h = tlsf.Heap(bytearray(1 << 16)); b.v = b.h.view(b.h.alloc(10)); b.me = b
        del b
    """,
    "memory, heap and view in one cycle": """
        class B(bytearray): pass
        m = B(1 << 16); m.h = tlsf.Heap(m); m.v = m.h.view(m.h.alloc(10))
        del m
    """,
    "owned memory, numpy array over a view, in a cycle": """
        import numpy as np
        h = tlsf.Heap(1 << 16); a = np.frombuffer(h.view(h.alloc(800)), dtype=np.float64)
        lst = [a, h]; lst.append(lst)
        del a, h, lst
    """,
}


@pytest.mark.parametrize("case", CYCLE_CASES)
@pytest.mark.parametrize("pure", [False, True])
def test_views_in_cycles_are_collected_without_crash(case, pure):
    if not pure and PURE:
        pytest.skip("TLSF_PURE_PYTHON=1")
    r = run_python(
        "import gc, tlsf\n"
        + textwrap.dedent(CYCLE_CASES[case])
        + "gc.collect(); gc.collect()\n"
        + "print('ok')\n",
        pure=pure,
    )
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}"
    assert r.stdout == "ok\n" and "Exception ignored" not in r.stderr, r.stdout + r.stderr


def test_view_slices_outliving_the_view_still_pin_the_heap(Heap):
    h = Heap(bytearray(4096))
    v = h.view(h.alloc(100))
    s = v[1:5]
    del v
    gc.collect()
    with pytest.raises(BufferError):
        h.close()
    s.release()
    h.close()
    assert h.closed


# ---------------------------------------------------- garbage collection


def test_heap_in_a_cycle_through_its_memory_is_freed(Heap):
    class B(bytearray):
        pass

    b = B(4096)
    h = Heap(b)
    b.h = h
    wb, wh = weakref.ref(b), weakref.ref(h)
    del b, h
    gc.collect()
    assert wb() is None and wh() is None


def test_heap_in_a_cycle_through_an_owner_is_freed(Heap):
    class Owner:
        pass

    o = Owner()
    o.mem = np.zeros(4096, dtype=np.uint8)
    o.heap = Heap(o.mem)
    o.me = o
    wo, wh = weakref.ref(o), weakref.ref(o.heap)
    del o
    gc.collect()
    assert wo() is None and wh() is None


def test_heap_with_live_view_in_a_cycle_is_freed_later(Heap):
    class B(bytearray):
        pass

    b = B(4096)
    h = Heap(b)
    b.h = h
    b.v = h.view(h.alloc(10))  # a view kept by the memory itself
    wb, wh = weakref.ref(b), weakref.ref(h)
    del b, h
    gc.collect()
    gc.collect()
    assert wb() is None and wh() is None


def test_offset_allocator_weakref_and_collection(OffsetAllocator):
    oa = OffsetAllocator(1 << 20)
    w = weakref.ref(oa)
    lst = [oa]
    lst.append(lst)
    del oa, lst
    gc.collect()
    assert w() is None


# ------------------------------------------- alloc_many's exits after the core


@pytest.mark.parametrize("kind", ["Heap", "OffsetAllocator"])
def test_alloc_many_result_that_cannot_be_built_allocates_nothing(kind, monkeypatch):
    for impl in ["python"] if PURE else ["c", "python"]:
        cls = impl_class(impl, kind)
        h = cls(bytearray(1 << 16)) if kind == "Heap" else cls(1 << 16)
        keep = h.alloc(100)
        sizes = np.array([16, 32, 48])
        before = heap_state(h)
        with monkeypatch.context() as m:
            m.setitem(sys.modules, "numpy", None)  # numpy cannot be imported any more
            with pytest.raises(ImportError):
                h.alloc_many(sizes)
        assert heap_state(h) == before, impl
        h.free(keep)
        (assert_consistent if kind == "Heap" else assert_offset_consistent)(h)


def test_alloc_many_result_owns_its_buffer(Heap):
    h = Heap(1 << 16)
    out = h.alloc_many(np.array([16, 32]))
    assert out.dtype == np.int64 and list(out) == [16, 48]
    arr = h.alloc_many([1, 2, 3])
    assert isinstance(arr, array.array) and arr.typecode == "q"
    arr.append(5)  # a plain, resizable array: no export is left on it
    assert arr.buffer_info()[1] == 4


# ------------------------------------------------------------------ fork

fork_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")


def child_exit(fn) -> int:
    """Runs fn in a forked child; returns its exit status (0 if fn returned)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            fn()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@fork_only
@pytest.mark.parametrize("memory", ["int", "bytearray", "numpy"])
def test_owned_and_private_memory_is_private_after_fork(Heap, memory):
    mem = {
        "int": lambda: 1 << 20,
        "bytearray": lambda: bytearray(1 << 20),
        "numpy": lambda: np.zeros(1 << 17),
    }
    h = Heap(mem[memory]())
    live = {}
    for k in range(50):
        off = h.alloc(100 + k)
        h.view(off)[:16] = pattern(k, 16)
        live[off] = k
    before = heap_state(h)

    def scribble():
        for off in list(live)[::2]:
            h.free(off)
        for _ in range(200):
            h.view(h.alloc(300), 300)[:] = b"\xff" * 300
        h.check()

    assert child_exit(scribble) == 0
    assert heap_state(h) == before
    h.check()
    for off, k in live.items():
        assert bytes(h.view(off)[:16]) == pattern(k, 16)


@fork_only
def test_offset_allocator_is_private_after_fork(OffsetAllocator):
    oa = OffsetAllocator(1 << 20)
    offs = [oa.alloc(100) for _ in range(10)]
    before = heap_state(oa)
    assert child_exit(lambda: [oa.free(o) for o in offs] and oa.alloc(5000)) == 0
    assert heap_state(oa) == before


# --------------------------------------------------------- copy and pickle


@pytest.mark.parametrize("kind", ["Heap", "OffsetAllocator"])
@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle", "reduce"])
def test_no_copy_or_pickle(kind, how):
    impls = ["python"] if PURE else ["c", "python"]
    msgs = []
    for impl in impls:
        cls = impl_class(impl, kind)
        h = cls(bytearray(4096)) if kind == "Heap" else cls(4096)
        call = {
            "copy": lambda h=h: copy.copy(h),
            "deepcopy": lambda h=h: copy.deepcopy(h),
            "pickle": lambda h=h: pickle.dumps(h),
            "reduce": lambda h=h: h.__reduce_ex__(2),
        }[how]
        with pytest.raises(TypeError, match="cannot pickle") as e:
            call()
        msgs.append(str(e.value).replace("tlsf._core.", "").replace("tlsf.pure.", ""))
        assert not getattr(h, "closed", False)
        h.free(h.alloc(10))  # still the one working object
    assert len(set(msgs)) == 1, msgs


@pytest.mark.parametrize("kind", ["Heap", "OffsetAllocator"])
def test_no_subclass(kind):
    for impl in ["python"] if PURE else ["c", "python"]:
        cls = impl_class(impl, kind)
        with pytest.raises(TypeError, match="not an acceptable base type"):
            type("Sub", (cls,), {})


# ------------------------------------------- batch arguments of every format

INT_BUFFERS = {
    **{f"array('{c}')": (lambda v, c=c: array.array(c, v)) for c in "bBhHiIlLqQ"},
    **{
        f"numpy {d}": (lambda v, d=d: np.array(v, dtype=d))
        for d in ["<i2", ">i2", "<u4", ">u4", "<i8", ">i8", ">u8"]
    },
    "numpy strided": lambda v: np.array([x for x in v for _ in (0, 1)], dtype=np.int64)[::2],
    "numpy 2-d": lambda v: np.array(v, dtype=np.int32).reshape(len(v), 1),
    "numpy 2-d Fortran strided": lambda v: np.asfortranarray(np.array([v, v], dtype=">i8")).T[:, 0],
    **{
        f"ctypes {t.__name__}": (lambda v, t=t: (t * len(v))(*v))
        for t in (
            ctypes.c_int8,
            ctypes.c_uint16,
            ctypes.c_int32,
            ctypes.c_uint32,
            ctypes.c_int64,
            ctypes.c_uint64,
        )
    },
    "ctypes big-endian int64": lambda v: (ctypes.c_int64.__ctype_be__ * len(v))(*v),
    "memoryview cast 'H'": lambda v: memoryview(array.array("H", v)),
}


@pytest.mark.parametrize("name", INT_BUFFERS)
def test_batch_accepts_every_integer_buffer(name, Heap, OffsetAllocator):
    sizes = [16, 16, 16, 7]  # offsets below 128: every format can hold them
    for h in (Heap(1 << 16), OffsetAllocator(1 << 16)):
        out = h.alloc_many(INT_BUFFERS[name](sizes))
        assert len(out) == 4 and max(out) < 128
        assert [h.usable_size(o) >= s for o, s in zip(out, sizes)] == [True] * 4
        h.free_many(INT_BUFFERS[name]([int(o) for o in out]))
        assert h.stats().allocations == 0


NOT_INT_BUFFERS = {
    "numpy float": lambda: np.array([16.0]),
    "numpy bool": lambda: np.array([True]),
    "numpy object": lambda: np.array([16], dtype=object),
    "numpy struct": lambda: np.zeros(2, dtype=[("a", "i8")]),
    "array('d')": lambda: array.array("d", [16.0]),
    "ctypes double": lambda: (ctypes.c_double * 1)(16.0),
    "ctypes pointer": lambda: (ctypes.c_void_p * 1)(16),
    "bytes of 'c'": lambda: memoryview(b"ab").cast("c"),
}


@pytest.mark.parametrize("name", NOT_INT_BUFFERS)
def test_batch_refuses_other_buffers_with_one_message(name):
    msgs = set()
    for impl in ["python"] if PURE else ["c", "python"]:
        for kind in ("Heap", "OffsetAllocator"):
            cls = impl_class(impl, kind)
            h = cls(1 << 16)
            for call in (h.alloc_many, h.free_many):
                with pytest.raises(TypeError, match="a buffer of integers is needed") as e:
                    call(NOT_INT_BUFFERS[name]())
                msgs.add(str(e.value))
            assert h.stats().allocations == 0
    assert len(msgs) == 1, msgs


def test_ctypes_reproducer(Heap):
    h = Heap(1 << 16)
    assert list(h.alloc_many((ctypes.c_int64 * 2)(16, 32))) == [16, 48]


def test_negative_in_a_big_endian_buffer(Heap):
    h = Heap(1 << 16)
    with pytest.raises(ValueError, match="size must be >= 0, not -3"):
        h.alloc_many(np.array([16, -3], dtype=">i2"))
    with pytest.raises(tlsf.InvalidOffsetError):
        h.free_many(np.array([-3], dtype=">i8"))
    assert h.stats().allocations == 0


# -------------------------------------------------- sizes and their errors


@pytest.mark.parametrize(
    "size",
    [np.int64(4096), np.uint32(4096), np.array(4096), np.int16(4096)],
    ids=["int64", "uint32", "0-d array", "int16"],
)
def test_integer_like_memory_is_a_size(Heap, size):
    h = Heap(size)
    assert h.capacity == 4096
    h.view(h.alloc(100), 100)[:] = b"x" * 100  # owned, writable memory


def test_an_array_with_index_is_still_memory(Heap):
    mem = np.zeros(4096, dtype=np.uint8)
    h = Heap(mem)
    off = h.alloc(10)
    h.view(off)[0] = 7
    assert mem[off] == 7


def test_more_than_the_system_can_map_is_a_memory_error(Heap):
    with pytest.raises(MemoryError, match="cannot map"):
        Heap(2**50)  # past any 64-bit address space that Linux gives a process
