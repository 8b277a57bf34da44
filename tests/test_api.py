"""API and unit tests: construction, errors, pinning, close, view, stats, walk, layout."""

from __future__ import annotations

import gc
import mmap
import os
import subprocess
import sys

import pytest
from conftest import GRAN, PURE_ONLY, Sneaky, assert_consistent, new_heap, round_up, snapshot

import tlsf
from tlsf import BlockInfo, Stats

MiB = 1 << 20


# ------------------------------------------------------------ the package


def test_exceptions_and_records():
    assert issubclass(tlsf.OutOfMemoryError, MemoryError)
    assert issubclass(tlsf.InvalidOffsetError, ValueError)
    assert issubclass(tlsf.CorruptionError, RuntimeError)
    assert tlsf.Stats._fields == (
        "allocated_bytes",
        "free_bytes",
        "largest_free",
        "allocations",
        "free_blocks",
    )
    assert tlsf.BlockInfo._fields == ("offset", "size", "used")


def test_implementation_matches_heap():
    assert tlsf.IMPLEMENTATION in ("c", "python")
    if PURE_ONLY:
        assert tlsf.IMPLEMENTATION == "python"
    if tlsf.IMPLEMENTATION == "c":
        from tlsf._core import Heap
    else:
        from tlsf.pure import Heap
    assert tlsf.Heap is Heap


def _implementation(env_value):
    env = {k: v for k, v in os.environ.items() if k != "TLSF_PURE_PYTHON"}
    if env_value is not None:
        env["TLSF_PURE_PYTHON"] = env_value
    code = "import tlsf, tlsf.pure; print(tlsf.IMPLEMENTATION, tlsf.Heap is tlsf.pure.Heap)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_pure_python_env_forces_python():
    assert _implementation("1") == ["python", "True"]


def test_default_implementation_is_c_when_built():
    try:
        import tlsf._core  # noqa: F401
    except ImportError:
        expected = ["python", "True"]
    else:
        expected = ["c", "False"]
    assert _implementation(None) == expected
    assert _implementation("0") == expected


def test_records_are_shared_classes(Heap):
    h, _ = new_heap(Heap, 4096)
    assert type(h.stats()) is tlsf.Stats
    assert all(type(b) is tlsf.BlockInfo for b in h.walk())
    with pytest.raises(tlsf.OutOfMemoryError) as e:
        h.alloc(1 << 20)
    assert type(e.value) is tlsf.OutOfMemoryError
    with pytest.raises(tlsf.InvalidOffsetError) as e:
        h.free(16)
    assert type(e.value) is tlsf.InvalidOffsetError


# ----------------------------------------------------------- construction


def _check_fresh(h, capacity, sl_len=32):
    end = capacity // GRAN * GRAN
    assert h.capacity == capacity
    assert h.sl_len == sl_len
    assert h.closed is False
    assert list(h.walk()) == [BlockInfo(0, end - 32, False)]
    assert h.stats() == Stats(0, end - 32, end - 48, 0, 1)
    off = h.alloc(100)
    assert off == 16
    assert h.usable_size(off) == 112
    with h.view(off) as v:
        v[:3] = b"abc"
    h.check()
    return off


def test_from_bytearray(Heap):
    mem = bytearray(MiB)
    h = Heap(mem)
    off = _check_fresh(h, MiB)
    assert mem[off : off + 3] == b"abc"


def test_from_mmap(Heap):
    m = mmap.mmap(-1, 65536)
    h = Heap(m)
    off = _check_fresh(h, 65536)
    assert m[off : off + 3] == b"abc"
    with pytest.raises(BufferError):
        m.close()  # pinned while the heap lives
    h.close()
    m.close()


def test_from_memoryview(Heap):
    mem = bytearray(8192)
    h = Heap(memoryview(mem)[3:4099])  # any base address works, even an odd one
    off = _check_fresh(h, 4096)
    assert mem[3 + off : 3 + off + 3] == b"abc"
    assert mem[:3] == b"\0\0\0" and not any(mem[4099:])


def test_from_numpy(Heap):
    np = pytest.importorskip("numpy")
    arr = np.zeros(100_003, dtype=np.uint8)
    h = Heap(arr)
    off = _check_fresh(h, 100_003)
    assert arr[off : off + 3].tobytes() == b"abc"


def test_from_int(Heap):
    h = Heap(MiB, sl_len=4)
    _check_fresh(h, MiB, sl_len=4)
    h.close()
    assert h.closed


@pytest.mark.parametrize("sl_len", [1, 2, 4, 8, 16, 32, 64])
def test_sl_len_valid(Heap, sl_len):
    h, _ = new_heap(Heap, 65536, sl_len=sl_len)
    _check_fresh(h, 65536, sl_len)


@pytest.mark.parametrize("sl_len", [0, -1, 3, 6, 48, 65, 128, 256, 2**64])
def test_sl_len_invalid(Heap, sl_len):
    with pytest.raises(ValueError):
        Heap(bytearray(4096), sl_len=sl_len)


@pytest.mark.parametrize("sl_len", [4.0, "4", None])
def test_sl_len_not_int(Heap, sl_len):
    with pytest.raises(TypeError):
        Heap(bytearray(4096), sl_len=sl_len)


def test_keyword_only(Heap):
    with pytest.raises(TypeError):
        Heap(bytearray(4096), 32)


@pytest.mark.parametrize(
    "memory",
    [b"\0" * 4096, memoryview(b"\0" * 4096), memoryview(bytearray(4096)).toreadonly()],
    ids=["bytes", "memoryview-of-bytes", "readonly-memoryview"],
)
def test_read_only_memory(Heap, memory):
    with pytest.raises(TypeError):
        Heap(memory)


def test_read_only_numpy(Heap):
    np = pytest.importorskip("numpy")
    arr = np.zeros(4096, dtype=np.uint8)
    arr.flags.writeable = False
    with pytest.raises(TypeError):
        Heap(arr)


@pytest.mark.parametrize("memory", ["4096", 4096.0, None, object(), [0] * 64])
def test_not_a_buffer(Heap, memory):
    with pytest.raises(TypeError):
        Heap(memory)


def test_not_contiguous(Heap):
    with pytest.raises((TypeError, ValueError, BufferError)):
        Heap(memoryview(bytearray(8192))[::2])


@pytest.mark.parametrize("n", [-1, -16, -(2**70)])
def test_negative_int(Heap, n):
    with pytest.raises(ValueError):
        Heap(n)


@pytest.mark.parametrize("pool", [True, False])
@pytest.mark.parametrize("n", [0, 1, 15, 16, 32, 48, 63])
def test_tiny_memory_has_no_pool(Heap, n, pool):
    for h in (Heap(bytearray(n), pool=pool), Heap(n, pool=pool)):
        assert h.capacity == n
        assert list(h.walk()) == []
        assert h.stats() == Stats(0, 0, 0, 0, 0)
        for size in (0, 1, 16):
            with pytest.raises(tlsf.OutOfMemoryError):
                h.alloc(size)
        h.check()
        h.close()


def test_smallest_pool(Heap):
    h, _ = new_heap(Heap, 64)
    assert list(h.walk()) == [BlockInfo(0, 32, False)]
    assert h.stats() == Stats(0, 32, 16, 0, 1)
    with pytest.raises(tlsf.OutOfMemoryError):
        h.alloc(17)
    assert h.alloc(16) == 16
    assert list(h.walk()) == [BlockInfo(0, 32, True)]
    assert h.stats() == Stats(16, 0, 0, 1, 0)
    with pytest.raises(tlsf.OutOfMemoryError):
        h.alloc(0)
    h.free(16)
    assert list(h.walk()) == [BlockInfo(0, 32, False)]


def test_small_remainder_is_absorbed(Heap):
    h, _ = new_heap(Heap, 80)  # one free block of 48 bytes
    off = h.alloc(0)
    assert off == 16
    assert h.usable_size(off) == 32
    assert list(h.walk()) == [BlockInfo(0, 48, True)]
    assert h.stats() == Stats(32, 0, 0, 1, 0)


def test_empty_heap_pool_false(Heap):
    h, mem = new_heap(Heap, 65536, pool=False)
    assert list(h.walk()) == []
    assert h.stats() == Stats(0, 0, 0, 0, 0)
    h.check()
    for size in (0, 1, 100):
        with pytest.raises(tlsf.OutOfMemoryError):
            h.alloc(size)
    for off in (0, 16, 32):
        with pytest.raises(tlsf.InvalidOffsetError):
            h.free(off)
    assert h.insert_free_block(0, 65536) == 65536
    assert list(h.walk()) == [BlockInfo(0, 65536 - 32, False)]
    assert h.alloc(1) == 16
    assert_consistent(h, {16: 1})


# ------------------------------------------------------- pinning and close


def test_bytearray_pinned_while_heap_lives(Heap):
    mem = bytearray(4096)
    h = Heap(mem)
    with pytest.raises(BufferError):
        mem.append(0)
    with pytest.raises(BufferError):
        mem.extend(b"x" * 4096)
    assert len(mem) == 4096
    h.close()
    mem.append(0)  # released on close
    assert len(mem) == 4097


def test_bytearray_released_when_heap_dies(Heap):
    mem = bytearray(4096)
    h = Heap(mem)
    h.alloc(10)
    del h
    gc.collect()
    mem.append(0)


def test_pool_false_still_pins(Heap):
    mem = bytearray(4096)
    h = Heap(mem, pool=False)
    with pytest.raises(BufferError):
        mem.append(0)
    h.close()
    mem.append(0)


def test_context_manager(Heap):
    mem = bytearray(4096)
    with Heap(mem) as h:
        assert not h.closed
        off = h.alloc(10)
    assert h.closed
    mem.append(0)
    assert off == 16


def test_context_manager_closes_on_error(Heap):
    with pytest.raises(KeyError), Heap(4096) as h:
        raise KeyError
    assert h.closed


def test_close_is_idempotent(Heap):
    h, _ = new_heap(Heap, 4096)
    h.close()
    h.close()
    assert h.closed


def test_methods_after_close(Heap):
    h, _ = new_heap(Heap, 4096)
    off = h.alloc(10)
    h.close()
    calls = [
        lambda: h.alloc(10),
        lambda: h.free(off),
        lambda: h.realloc(off, 20),
        lambda: h.usable_size(off),
        lambda: h.view(off),
        lambda: h.insert_free_block(0, 64),
        lambda: h.append_free_block(4096, 0),
        lambda: h.stats(),
        lambda: list(h.walk()),
        lambda: h.check(),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            call()


def test_close_with_live_view(Heap):
    mem = bytearray(4096)
    h = Heap(mem)
    off = h.alloc(10)
    v = h.view(off)
    with pytest.raises(BufferError):
        h.close()
    assert not h.closed
    assert h.usable_size(off) == 16  # still open and working
    v[0] = 7
    assert mem[off] == 7
    with pytest.raises(BufferError):
        mem.append(0)
    v.release()
    h.close()
    assert h.closed
    mem.append(0)


def test_close_after_view_collected(Heap):
    h, _ = new_heap(Heap, 4096)
    off = h.alloc(10)
    v = h.view(off)
    sub = v[2:4]  # a slice of a view keeps the memory exported
    del v
    with pytest.raises(BufferError):
        h.close()
    del sub
    gc.collect()
    h.close()
    assert h.closed


def test_walk_is_an_iterator(Heap):
    h, _ = new_heap(Heap, 4096)
    it = h.walk()
    assert iter(it) is it
    assert next(it) == BlockInfo(0, 4064, False)
    with pytest.raises(StopIteration):
        next(it)


# ------------------------------------------------------------------- view


def test_view_bounds_and_writes(Heap):
    mem = bytearray(65536)
    h = Heap(mem)
    a = h.alloc(100)
    b = h.alloc(40)
    with h.view(a) as v:
        assert len(v) == h.usable_size(a) == 112
        assert not v.readonly
        assert (v.format, v.ndim, v.nbytes) == ("B", 1, 112)
        v[:] = b"\xaa" * 112
    assert mem[a : a + 112] == b"\xaa" * 112
    with h.view(b, 5) as v:
        assert len(v) == 5
        v[:] = b"hello"
    assert mem[b : b + 5] == b"hello"
    with h.view(b, 0) as v:
        assert len(v) == 0
    with h.view(b, 48) as v:  # usable_size exactly
        assert len(v) == 48
        assert bytes(v[:5]) == b"hello"
    mem[a : a + 4] = b"wxyz"  # writes through the buffer are seen by views
    with h.view(a, 4) as v:
        assert bytes(v) == b"wxyz"
    before = snapshot(h, mem)
    for size in (49, 1000, 2**64, 2**70, -1, -(2**70)):
        with pytest.raises(ValueError) as e:
            h.view(b, size)
        assert not isinstance(e.value, tlsf.InvalidOffsetError)
    for size in (1.0, "1"):
        with pytest.raises(TypeError):
            h.view(b, size)
    assert snapshot(h, mem) == before
    assert_consistent(h, {a: 100, b: 40})


def test_view_of_int_memory(Heap):
    h = Heap(65536)
    a = h.alloc(1024)
    with h.view(a) as v:
        v[:] = bytes(range(256)) * 4
    b = h.alloc(1000)
    with h.view(b) as v:
        v[:] = b"\x02" * len(v)
    with h.view(a, 1024) as v:
        assert bytes(v) == bytes(range(256)) * 4
    h.check()
    h.close()


def test_view_of_freed_block(Heap):
    h, _ = new_heap(Heap, 4096)
    a = h.alloc(10)
    h.free(a)
    with pytest.raises(tlsf.InvalidOffsetError):
        h.view(a)


# ------------------------------------------------------- layout and stats


@pytest.mark.parametrize("capacity", [4096, 100_003])
def test_usable_sizes(Heap, capacity):
    h, _ = new_heap(Heap, capacity)
    fresh = list(h.walk())
    for size in range(0, 700):
        off = h.alloc(size)
        assert off == 16
        assert h.usable_size(off) == max(16, round_up(size))
        h.free(off)
    assert list(h.walk()) == fresh


def test_first_pool_layout(Heap):
    h, _ = new_heap(Heap, MiB)
    assert list(h.walk()) == [BlockInfo(0, 1048544, False)]
    assert h.alloc(0) == 16
    assert h.alloc(1) == 48
    assert h.alloc(17) == 80
    assert list(h.walk()) == [
        BlockInfo(0, 32, True),
        BlockInfo(32, 32, True),
        BlockInfo(64, 48, True),
        BlockInfo(112, 1048544 - 112, False),
    ]


def test_alignment_padding_becomes_free_block(Heap):
    h, _ = new_heap(Heap, MiB)
    a = h.alloc(0, align=4096)
    assert a == 4096
    assert list(h.walk()) == [
        BlockInfo(0, 4080, False),
        BlockInfo(4080, 32, True),
        BlockInfo(4112, 1048544 - 4112, False),
    ]
    h.free(a)
    b = h.alloc(0, align=32)  # padding 16 would be too small for a free block
    assert b == 64
    assert list(h.walk())[:2] == [BlockInfo(0, 48, False), BlockInfo(48, 32, True)]
    c = h.alloc(16)  # the padding is reused
    assert c == 16
    assert_consistent(h, {b: 0, c: 16})


@pytest.mark.parametrize("align", [2**k for k in range(13)])
def test_alignment(Heap, align):
    h, _ = new_heap(Heap, 65536)
    offs = {}
    for size in (0, 1, 17, 100, 1000):
        off = h.alloc(size, align=align)
        assert off % align == 0 and off % 16 == 0
        offs[off] = size
    assert_consistent(h, offs)


def test_stats_after_alloc_and_free(Heap):
    h, _ = new_heap(Heap, MiB)
    empty = Stats(0, 1048544, 1048528, 0, 1)
    assert h.stats() == empty
    a = h.alloc(100)
    assert h.stats() == Stats(112, 1048544 - 128, 1048544 - 128 - 16, 1, 1)
    b = h.alloc(1000)
    c = h.alloc(5)
    assert h.stats().allocations == 3
    assert h.stats().allocated_bytes == 112 + 1008 + 16
    h.free(b)
    st = h.stats()
    assert st.allocations == 2 and st.allocated_bytes == 128
    assert st.free_blocks == 2
    assert st.free_bytes == 1048544 - 128 - 32
    assert_consistent(h, {a: 100, c: 5})
    h.free(a)
    h.free(c)
    assert h.stats() == empty
    assert list(h.walk()) == [BlockInfo(0, 1048544, False)]


def test_largest_free_is_allocatable(Heap):
    h, _ = new_heap(Heap, MiB, sl_len=4)
    offs = [h.alloc(s) for s in (100, 5000, 70000, 3, 12345, 200000)]
    for off in offs[::2]:
        h.free(off)
    largest = h.stats().largest_free
    assert largest > 0
    off = h.alloc(largest)
    assert h.usable_size(off) >= largest


def test_walk_lists_blocks(Heap):
    h, _ = new_heap(Heap, 65536)
    a, b, c = h.alloc(100), h.alloc(200), h.alloc(300)
    h.free(b)
    assert list(h.walk()) == [
        BlockInfo(0, 128, True),
        BlockInfo(128, 224, False),
        BlockInfo(352, 320, True),
        BlockInfo(672, 65504 - 672, False),
    ]
    assert (a, c) == (16, 368)


def test_corruption_detected(Heap):
    h, mem = new_heap(Heap, 65536)
    a = h.alloc(100)
    h.alloc(100)
    h.check()
    saved = bytes(mem[a - 16 : a])
    mem[a - 16 : a] = b"\xff" * 16  # scribble over a header
    with pytest.raises(tlsf.CorruptionError):
        h.check()
    mem[a - 16 : a] = saved
    h.check()
    mem[256:264] = (12345).to_bytes(8, "little")  # the free block's size word
    with pytest.raises(tlsf.CorruptionError) as e:
        h.check()
    assert type(e.value) is tlsf.CorruptionError


def _scribble_value(rng, capacity):
    """Garbage that looks like heap metadata: offsets, sizes with flags, NIL, zero."""
    off = rng.randrange(capacity) & ~15
    return (
        rng.choice([0, 2**64 - 1, off, off | 1, off | 3, 32 | 3, off | (rng.randrange(64) << 58)])
        if rng.random() < 0.8
        else rng.getrandbits(64)
    )


@pytest.mark.parametrize("seed", range(40))
def test_scribbled_arena_never_crashes(Heap, seed):
    """Garbage in the arena: every call returns or raises a tlsf error, never crashes."""
    import random

    rng = random.Random(seed)
    cap = rng.choice([4096, 16384, 20_011])
    h, mem = new_heap(Heap, cap, sl_len=rng.choice([1, 4, 32]), pool=seed % 4 != 0)
    if seed % 4 == 0:  # several pools
        for start in (0, cap // 3, 2 * cap // 3):
            h.insert_free_block(start, cap // 3 - 16)
    offs = []
    for _ in range(10):
        try:
            offs.append(h.alloc(rng.randrange(0, 600), align=rng.choice([1, 64])))
        except tlsf.OutOfMemoryError:
            pass
    for off in offs[::3]:
        h.free(off)
    for _ in range(rng.randrange(1, 12)):
        if rng.random() < 0.5:  # a metadata word
            pos = rng.randrange(0, cap - 8) & ~7
            mem[pos : pos + 8] = _scribble_value(rng, cap).to_bytes(8, "little")
        else:
            pos = rng.randrange(cap - 8)
            mem[pos : pos + 8] = rng.randbytes(8)
    errors = (tlsf.CorruptionError, tlsf.OutOfMemoryError, tlsf.InvalidOffsetError)
    calls = [h.check, h.stats, lambda: list(h.walk())]
    for off in offs:
        calls += [lambda o=off: h.usable_size(o), lambda o=off: h.realloc(o, rng.randrange(2000))]
        calls += [lambda o=off: h.free(o), lambda: h.alloc(rng.randrange(0, 2000))]
        calls += [lambda: h.alloc(rng.randrange(0, 200), align=256), h.check]
    calls += [lambda: h.append_free_block(cap - 16, 16), lambda: h.insert_free_block(0, cap)]
    for call in calls:
        try:
            call()
        except errors:
            pass
        except ValueError as e:  # insert/append_free_block: a range refused
            assert "closed" not in str(e)


# ------------------------------------------------- argument forms, re-entrancy


def test_keyword_arguments(Heap):
    """The parameter names of the API (free and usable_size: positional only, see _core.pyi)."""
    h, _ = new_heap(Heap, 8192, pool=False)
    assert h.insert_free_block(offset=0, size=4096) == 4096
    assert h.append_free_block(offset=4096, size=1024) == 1024
    a = h.alloc(size=10, align=64)
    assert a % 64 == 0
    with h.view(offset=a, size=4) as v:
        assert len(v) == 4
    a = h.realloc(offset=a, size=100)
    assert h.usable_size(a) == 112
    h.free(a)
    assert [b.used for b in h.walk()] == [False]
    with pytest.raises(TypeError):
        h.alloc(10, bogus=1)


CALL_FORMS = {
    "alloc()": lambda h: h.alloc(),
    "alloc(1, 1, 1)": lambda h: h.alloc(1, 1, 1),
    "alloc(size=1)": lambda h: h.alloc(size=1),
    "alloc(1, size=1)": lambda h: h.alloc(1, size=1),
    "free()": lambda h: h.free(),
    "free(16, 16)": lambda h: h.free(16, 16),
    "free(offset=16)": lambda h: h.free(offset=16),
    "usable_size(offset=16)": lambda h: h.usable_size(offset=16),
    "realloc(16)": lambda h: h.realloc(16),
    "view()": lambda h: h.view(),
    "view(16, 1, 1)": lambda h: h.view(16, 1, 1),
    "insert_free_block(0)": lambda h: h.insert_free_block(0),
    "stats(1)": lambda h: h.stats(1),
    "walk(1)": lambda h: h.walk(1),
    "check(1)": lambda h: h.check(1),
    "close(1)": lambda h: h.close(1),
}


def test_same_call_forms(both):
    """Both implementations accept and refuse the same ways of calling."""
    outcomes = []
    for cls in both:
        row = {}
        for name, call in CALL_FORMS.items():
            h = cls(4096)
            h.alloc(10)
            try:
                call(h)
                row[name] = "ok"
            except Exception as e:  # noqa: BLE001 - the type is what is compared
                row[name] = type(e).__name__
        outcomes.append(row)
    c, py = outcomes
    assert {k: (c[k], py[k]) for k in c if c[k] != py[k]} == {}


def test_argument_conversion_that_closes_the_heap(Heap):
    calls = [
        lambda h, s: h.alloc(s),
        lambda h, s: h.alloc(10, align=s),
        lambda h, s: h.free(s),
        lambda h, s: h.realloc(s, 10),
        lambda h, s: h.realloc(16, s),
        lambda h, s: h.usable_size(s),
        lambda h, s: h.view(s),
        lambda h, s: h.view(16, s),
        lambda h, s: h.insert_free_block(s, 64),
        lambda h, s: h.append_free_block(4096, s),
    ]
    for call in calls:
        h = Heap(4096)
        assert h.alloc(100) == 16
        with pytest.raises(ValueError):
            call(h, Sneaky(16, h.close))
        assert h.closed


def test_argument_conversion_that_frees_the_block(Heap):
    h, mem = new_heap(Heap, 4096)
    calls = [
        lambda a, s: h.free(s),
        lambda a, s: h.realloc(s, 1000),
        lambda a, s: h.realloc(a, s),
        lambda a, s: h.usable_size(s),
        lambda a, s: h.view(s),
        lambda a, s: h.view(a, s),
    ]
    for call in calls:
        a = h.alloc(100)
        h.alloc(10)
        with pytest.raises(tlsf.InvalidOffsetError):
            call(a, Sneaky(a if call is not calls[2] else 8, lambda a=a: h.free(a)))
        h.check()
    h2, _ = new_heap(Heap, 4096)
    off = h2.alloc(Sneaky(10, lambda: h2.alloc(10)))  # nested use is fine
    assert off == 48
    assert_consistent(h2, {16: 10, 48: 10})


def test_view_outlives_heap(Heap):
    """A view keeps its memory alive, even memory the heap made itself."""
    h = Heap(65536)
    a = h.alloc(1000)
    v = h.view(a)
    v[:4] = b"live"
    del h
    gc.collect()
    v[4:8] = b"ever"
    assert bytes(v[:8]) == b"liveever"
    v.release()


def test_walk_iterator_after_close(Heap):
    h, _ = new_heap(Heap, 4096)
    h.alloc(10)
    it = h.walk()
    h.close()
    try:
        blocks = list(it)
    except ValueError:
        return
    assert blocks == [BlockInfo(0, 32, True), BlockInfo(32, 4064 - 32, False)]


def test_pure_exports_the_public_names_of_tlsf():
    import tlsf.pure

    assert set(tlsf.__all__) <= set(tlsf.pure.__all__)
    for name in tlsf.__all__:
        if name in ("Block", "Heap", "FlexHeap", "SharedHeap", "OffsetAllocator", "IMPLEMENTATION"):
            continue
        assert getattr(tlsf.pure, name) is getattr(tlsf, name), name
    assert tlsf.pure.IMPLEMENTATION == "python"
    for name in ("Block", "Heap", "FlexHeap", "SharedHeap", "OffsetAllocator"):
        assert getattr(tlsf.pure, name).__name__ == name
