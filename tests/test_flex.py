"""tlsf.FlexHeap: a heap in its own reservation that grows and gives pages back.

Both implementations (the `FlexHeap` fixture), and the C core against the twin
through growth (Lockstep). Resident memory is read from /proc/self/statm, so
the trim tests run on Linux only. Sizes have knobs, for CI time:
TLSF_FLEX_TRIM_MIB (default 1024: the heap filled and trimmed) and
TLSF_FLEX_MANY (default 10,000,000 small allocations for the C core; the twin
makes a hundredth of them).
"""

from __future__ import annotations

import mmap
import os
import random
import sys
from array import array

import pytest
from conftest import GRAN, IMPLS, Lockstep, assert_consistent, both_classes, impl_class, pattern

import tlsf

MIB = 1 << 20
GROW_MIN = 64 << 10
GROW_MAX = 1 << 30
TRIM_MIB = int(os.environ.get("TLSF_FLEX_TRIM_MIB", "1024"))
MANY = int(os.environ.get("TLSF_FLEX_MANY", "10000000"))
LINUX = sys.platform.startswith("linux")
# Resident memory means what it says only in a normal process: under
# AddressSanitizer (.ci/sanitize preloads it) it holds its shadow and quarantine.
RSS_OK = LINUX and "libasan" not in os.environ.get("LD_PRELOAD", "")


@pytest.fixture(params=IMPLS)
def FlexHeap(request):  # noqa: N802 - it is a class
    """The FlexHeap class of each implementation in turn."""
    return impl_class(request.param, "FlexHeap")


def rss() -> int:
    """Resident bytes of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * mmap.PAGESIZE


def fill(h, off: int, byte: int = 0xA5) -> None:
    """Writes every usable byte of allocation `off` (makes its pages resident)."""
    v = h.view(off)
    v[:] = bytes([byte]) * len(v)
    v.release()


# ------------------------------------------------------------------ basics


def test_starts_empty_and_grows_on_demand(FlexHeap):
    with FlexHeap() as h:
        assert h.size == 0 and h.capacity == h.max_size >= 1 << 30
        assert h.stats() == tlsf.Stats(0, 0, 0, 0, 0) and list(h.walk()) == []
        a = h.alloc(100)
        assert a == GRAN and h.size == GROW_MIN
        assert list(h.walk()) == [
            tlsf.BlockInfo(0, 128, True),
            tlsf.BlockInfo(128, GROW_MIN - 128 - 32, False),
        ]
        h.check()


def test_default_max_size_is_a_tebibyte_where_the_system_allows(FlexHeap):
    with FlexHeap() as h:
        assert h.max_size in [1 << k for k in range(30, 41)]
        if LINUX:
            assert h.max_size == 1 << 40  # MAP_NORESERVE: no overcommit accounting refuses it


def test_growth_is_geometric_and_bounded(FlexHeap):
    """Each growth makes the pool max(size + need, size + clamp(size, 64 KiB, 1 GiB)),
    a multiple of 64 KiB: it doubles, and a large request grows it by what it needs."""
    with FlexHeap(trim_threshold=None) as h:
        sizes = []
        for _ in range(8):
            h.alloc(30_000)
            if not sizes or h.size != sizes[-1]:
                sizes.append(h.size)
        while h.size < 4 * MIB:
            h.alloc(60_000)
            if h.size != sizes[-1]:
                sizes.append(h.size)
        assert sizes[:5] == [GROW_MIN, 2 * GROW_MIN, 4 * GROW_MIN, 8 * GROW_MIN, 16 * GROW_MIN]
        before = h.size
        h.alloc(40 * MIB)
        # by what it needs: rounded up to its size class's bound (at most 1/sl_len more)
        assert before + 40 * MIB < h.size <= before + 40 * MIB * (1 + 1 / 32) + GROW_MIN
        assert all(s % GROW_MIN == 0 for s in sizes)
        assert_consistent(h)


def test_step_stops_doubling_at_one_gibibyte(FlexHeap):
    with FlexHeap(trim_threshold=None) as h:
        h.alloc(2 * GROW_MAX)  # pool just over 2 GiB: the next step is 1 GiB, not its size
        size = h.size
        h.alloc(size)  # does not fit: grows by what it needs
        assert h.size > 2 * size
        size = h.size
        h.alloc(h.stats().largest_free + 1)
        assert h.size == size + GROW_MAX
        h.check()


def test_offsets_and_views_survive_growth(FlexHeap):
    rng = random.Random(5)
    with FlexHeap() as h:
        live = {}
        views = []
        for serial in range(3000):
            size = rng.choice([16, 100, 1000, 5000, 70_000])
            off = h.alloc(size, rng.choice([1, 16, 64, 4096]))
            data = pattern(serial, size)
            v = h.view(off, size)
            v[:] = data
            live[off] = (size, data)
            if serial % 100 == 0:
                views.append((v, data))
            else:
                v.release()
        assert h.size >= 32 * MIB  # grew many times
        for off, (size, data) in live.items():
            assert h.view(off, size).tobytes() == data
        for v, data in views:  # taken before later growths
            assert v.tobytes() == data
            v.release()
        assert_consistent(h, {off: size for off, (size, _) in live.items()})


def test_realloc_grows_in_place_at_the_end(FlexHeap):
    with FlexHeap() as h:
        a = h.alloc(1000)
        fill(h, a, 7)
        b = h.realloc(a, 10 * MIB)  # the last block of the pool: the pool grows under it
        assert b == a and h.size > 10 * MIB
        assert h.view(b, 1000).tobytes() == bytes([7]) * 1000
        h.check()


def test_alloc_many_grows_once_for_the_batch(FlexHeap):
    with FlexHeap() as h:
        h.alloc(10)
        offs = h.alloc_many([50_000] * 200, 64)
        assert all(o % 64 == 0 for o in offs)
        # one growth by the batch's needs: 200 x 50,176 (50,000 + header + worst
        # alignment gap, rounded up to its size class's bound)
        assert h.size == -(-(GROW_MIN + 200 * 50_176) // GROW_MIN) * GROW_MIN
        assert_consistent(h)
        h.free_many(offs)
        assert_consistent(h)


def test_max_size_is_the_only_limit(FlexHeap):
    with FlexHeap(max_size=MIB + 100) as h:
        assert h.capacity == h.max_size == MIB + 100
        offs = []
        with pytest.raises(tlsf.OutOfMemoryError, match=r"cannot allocate 4000 bytes aligned to 1"):
            while True:
                offs.append(h.alloc(4000))
        assert h.size == MIB + 96  # all of it (down to 16 bytes)
        assert len(offs) * 4016 > MIB - 8192
        with pytest.raises(tlsf.OutOfMemoryError, match=r"cannot allocate 2000000 bytes aligned to 1"):
            h.alloc(2_000_000)
        h.free_many(offs)
        assert h.alloc(MIB) == GRAN  # one free block again
        assert_consistent(h)


def test_oom_messages_name_the_request(FlexHeap):
    with FlexHeap(max_size=MIB) as h:
        a = h.alloc(100)
        for call, args, msg in [
            (h.alloc, (2**64,), "cannot allocate 2**64-1 bytes or more"),
            (h.alloc, (10, 2**63), "cannot allocate 10 bytes aligned to 2**63 or more"),
            (h.alloc_many, ([10, 2 * MIB],), "cannot allocate 2097152 bytes aligned to 1 (item 1)"),
            (h.realloc, (a, 2 * MIB), f"cannot reallocate offset {a} to 2097152 bytes"),
        ]:
            with pytest.raises(tlsf.OutOfMemoryError) as e:
                call(*args)
            assert str(e.value) == msg
        assert h.stats().allocations == 1
        h.check()


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(max_size=0), (ValueError, "max_size must be > 0, not 0")),
        (dict(max_size=-5), (ValueError, "max_size must be > 0, not -5")),
        (
            dict(max_size=2**58 + 1),
            (ValueError, f"max_size of {2**58 + 1} bytes exceeds the largest capacity, 2**58"),
        ),
        (
            dict(max_size=2**70),
            (ValueError, f"max_size of {2**70} bytes exceeds the largest capacity, 2**58"),
        ),
        (dict(max_size=1.5), (TypeError, None)),
        (dict(max_size="1"), (TypeError, None)),
        (dict(sl_len=3), (ValueError, "sl_len must be a power of two in 1..64, not 3")),
        (dict(trim_threshold=-1), (ValueError, "trim_threshold must be >= 0 or None, not -1")),
        (dict(trim_threshold=1.0), (TypeError, None)),
    ],
)
def test_bad_arguments(FlexHeap, kwargs, error):
    cls, msg = error
    with pytest.raises(cls) as e:
        FlexHeap(**kwargs)
    if msg is not None:
        assert str(e.value) == msg


def test_hugepages_is_an_option(FlexHeap):
    with FlexHeap(hugepages=True) as h:
        assert h.hugepages is True
        offs = [h.alloc(5000) for _ in range(1000)]
        h.free_many(offs)
        assert_consistent(h)
    with FlexHeap() as h:
        assert h.hugepages is False


def test_arguments_are_keyword_only_but_max_size(FlexHeap):
    with pytest.raises(TypeError):
        FlexHeap(MIB, 32)
    with FlexHeap(MIB, sl_len=4, trim_threshold=None) as h:
        assert (h.max_size, h.sl_len, h.trim_threshold) == (MIB, 4, None)
    with FlexHeap(trim_threshold=2**70) as h:  # never reached: off
        assert h.trim_threshold is None
    with FlexHeap() as h:
        assert h.trim_threshold == MIB


def test_reservation_beyond_the_system_is_a_memory_error(FlexHeap):
    """2**58 bytes of address space (plus its live bitmap) exceed what x86-64's
    47-bit user space can map: a MemoryError naming the size, no crash."""
    with pytest.raises(
        MemoryError, match=r"cannot reserve address space for a heap of 288230376151711744 bytes"
    ):
        FlexHeap(max_size=2**58)


def test_type_is_final_and_not_a_heap(FlexHeap):
    with pytest.raises(TypeError):
        type("Sub", (FlexHeap,), {})
    h = FlexHeap()
    assert not isinstance(h, tlsf.Heap)
    with pytest.raises(TypeError):
        import copy

        copy.copy(h)
    h.close()


def test_close_repr_and_state_after_close(FlexHeap):
    h = FlexHeap(max_size=MIB)
    a = h.alloc(10)
    name = "tlsf.FlexHeap" if "pure" not in type(h).__module__ else "tlsf.pure.FlexHeap"
    assert repr(h) == f"<{name} size={GROW_MIN} max_size={MIB} sl_len=32 allocations=1>"
    v = h.view(a)
    with pytest.raises(BufferError):
        h.close()
    v.release()
    h.close()
    h.close()
    assert h.closed and h.size == GROW_MIN and h.max_size == MIB
    assert repr(h) == f"<{name} max_size={MIB} sl_len=32 closed>"
    for call in (lambda: h.alloc(1), lambda: h.free(a), h.trim, h.stats, h._arena):
        with pytest.raises(ValueError, match="heap is closed"):
            call()


def test_arena_view_is_the_pool(FlexHeap):
    with FlexHeap() as h:
        a = h.alloc(100)
        h.view(a)[:5] = b"hello"
        arena = h._arena()
        assert len(arena) == h.size and arena[a : a + 5] == b"hello"
        with pytest.raises(BufferError):
            h.close()
        arena.release()


# ------------------------------------------------------ C core against twin


def test_differential_through_growth_and_trim():
    c_cls, py_cls = both_classes("FlexHeap")
    rng = random.Random(12)
    for trim in (None, 0, 64 << 10):
        c = c_cls(max_size=64 * MIB, sl_len=rng.choice([4, 32]), trim_threshold=trim)
        py = py_cls(max_size=64 * MIB, sl_len=c.sl_len, trim_threshold=trim)
        step = Lockstep(c, py)
        live: list[int] = []
        for i in range(3000):
            r = rng.random()
            if r < 0.5 or not live:
                size = rng.choice(
                    [rng.randrange(0, 200), rng.randrange(0, 70_000), rng.randrange(0, 3 * MIB)]
                )
                res = step("alloc", size, rng.choice([1, 1, 64, 4096]))
                if isinstance(res, int):
                    live.append(res)
            elif r < 0.8:
                step("free", live.pop(rng.randrange(len(live))))
            elif r < 0.9:
                k = rng.randrange(len(live))
                res = step("realloc", live[k], rng.randrange(0, 2 * MIB))
                if isinstance(res, int):
                    live[k] = res
            elif r < 0.95:
                res = step("alloc_many", [rng.randrange(0, 100_000) for _ in range(rng.randrange(1, 20))], 16)
                if not isinstance(res, tuple):
                    live.extend(res)
            elif r < 0.99:
                batch = [
                    live.pop(rng.randrange(len(live))) for _ in range(min(len(live), rng.randrange(1, 10)))
                ]
                step("free_many", batch)
            else:  # the same pages resident, and given back
                step("trim")
            assert c.size == py.size, f"size differs after {step.calls} calls"
            if i % 100 == 0:
                step.compare()
            if i % 500 == 0:  # the same bytes: headers, and zeros where pages went back
                a, b = c._arena(), py._arena()
                assert a.tobytes() == b.tobytes()
                a.release()
                b.release()
        step.compare()
        c.close()
        py.close()


# ------------------------------------------------------------ giving back


@pytest.mark.skipif(not RSS_OK, reason="resident memory from /proc/self/statm, not under ASan")
def test_trim_gives_back_all_but_the_live_bytes(FlexHeap):
    """Fill TRIM_MIB (1 GiB) in blocks of mixed sizes, free all but every
    100th, trim(): resident memory falls to within live bytes + 10% +
    metadata (the live bitmap's touched part, one page per block boundary)."""
    rng = random.Random(1)
    base = rss()
    h = FlexHeap(trim_threshold=None)
    offs, total = [], 0
    while total < TRIM_MIB * MIB:
        size = rng.choice([100, 3000, 20_000, 150_000, 700_000])
        off = h.alloc(size)
        fill(h, off)
        offs.append(off)
        total += size
    full = rss() - base
    assert full >= total * 0.95
    keep = offs[::100]
    h.free_many([o for i, o in enumerate(offs) if i % 100])
    released = h.trim()
    after = rss() - base
    live = h.stats().allocated_bytes
    blocks = h.stats().allocations + h.stats().free_blocks
    metadata = h.size // 128 + 2 * blocks * mmap.PAGESIZE
    assert after <= live * 1.1 + metadata, (after, live, metadata)
    assert released >= full - after - metadata
    assert h.trim() == 0  # nothing resident is left to give back
    for off in keep:
        v = h.view(off)
        assert v.tobytes() == b"\xa5" * len(v)  # the live blocks are intact
        v.release()
    h.check()
    h.close()


@pytest.mark.skipif(not RSS_OK, reason="resident memory from /proc/self/statm, not under ASan")
def test_trim_threshold_frees_without_trim(FlexHeap):
    for threshold in (MIB, None):
        h = FlexHeap(trim_threshold=threshold)
        h.alloc(10)
        big = h.alloc(64 * MIB)
        h.alloc(10)  # the big block is not the pool's last
        fill(h, big)
        before = rss()
        h.free(big)
        dropped = before - rss()
        if threshold is None:
            assert dropped < MIB
            assert h.trim() >= 64 * MIB - 2 * mmap.PAGESIZE
        else:
            assert dropped >= 63 * MIB
            assert h.trim() == 0
        h.check()
        h.close()


@pytest.mark.skipif(not RSS_OK, reason="resident memory from /proc/self/statm, not under ASan")
def test_free_many_gives_back_each_block(FlexHeap):
    h = FlexHeap(trim_threshold=MIB)
    offs = [h.alloc(4 * MIB) for _ in range(8)]
    for o in offs:
        fill(h, o)
    before = rss()
    h.free_many(offs[::2])  # no two adjacent: each is its own free block
    assert before - rss() >= 4 * (4 * MIB - 2 * mmap.PAGESIZE)
    h.check()
    h.close()


def test_pages_given_back_read_as_zeros(FlexHeap):
    with FlexHeap(trim_threshold=0) as h:
        a = h.alloc(100 * 1024)
        h.alloc(10)
        fill(h, a, 0xFF)
        h.free(a)
        b = h.alloc(100 * 1024)
        assert b == a
        data = h.view(b).tobytes()
        # the block's header page is kept; whole pages after it read as zeros
        first_page_end = -(-(a - GRAN + 32) // mmap.PAGESIZE) * mmap.PAGESIZE
        assert set(data[first_page_end - a : (a + 100 * 1024) // mmap.PAGESIZE * mmap.PAGESIZE - a]) == {0}


def test_small_frees_leave_their_pages_to_trim(FlexHeap):
    """A free gives back at least 64 KiB of pages or none: a program churning
    through small blocks would fault them back in at once."""
    with FlexHeap(trim_threshold=0) as h:
        small = h.alloc(40_000)  # 9 whole pages: fewer than 64 KiB
        h.alloc(10)
        fill(h, small, 0xEE)
        h.free(small)
        arena = h._arena()
        assert arena[small + 8192 : small + 12288] == b"\xee" * 4096  # kept
        arena.release()
        assert h.trim() >= 8 * 4096  # trim() gives them back
        arena = h._arena()
        assert arena[small + 8192 : small + 12288] == bytes(4096)
        arena.release()


def test_many_small_allocations_through_growth(FlexHeap):
    n = MANY // 100 if FlexHeap.__module__.startswith("tlsf.pure") else MANY
    with FlexHeap(trim_threshold=None) as h:
        sizes = array("Q", (16 + (k * 7) % 48 for k in range(1000))) * (n // 1000)
        offs = h.alloc_many(sizes)
        assert len(offs) == len(sizes) and h.stats().allocations == len(sizes)
        assert h.size >= len(sizes) * 32
        h.free_many(offs)
        st = h.stats()
        assert st.allocations == 0 and st.free_blocks == 1
        h.check()
