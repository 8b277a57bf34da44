"""tlsf.OffsetAllocator: the contract of _core.pyi, in both implementations.

Construction and its errors, granularity, alignment padding going back to
the free lists, in-place resize, ranges (add_range coalescing, overlap),
reset, statistics, batch calls, re-entrant arguments, and the absence of any
cap on the number of allocations.
"""

from __future__ import annotations

from array import array

import pytest
from conftest import PURE_ONLY, Sneaky, assert_offset_consistent

import tlsf
from tlsf import BlockInfo

KiB, MiB = 1 << 10, 1 << 20


def state(oa) -> tuple:
    """Everything observable about an allocator without changing it."""
    return list(oa.walk()), oa.stats(), oa.capacity


# ------------------------------------------------------------------ construction


def test_fresh_allocator(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(1000)
    assert (oa.capacity, oa.granularity, oa.sl_len) == (1000, 1, 32)
    assert list(oa.walk()) == [BlockInfo(0, 1000, False)]
    assert oa.stats() == tlsf.Stats(0, 1000, 1000, 0, 1)
    assert "OffsetAllocator" in repr(oa) and "capacity=1000" in repr(oa)
    oa.check()


def test_keyword_arguments(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(capacity=4096, sl_len=4, granularity=256)
    assert (oa.capacity, oa.granularity, oa.sl_len) == (4096, 256, 4)
    off = oa.alloc(size=10, align=512)
    assert oa.usable_size(offset=off) == 256
    assert oa.resize(offset=off, size=300) is True
    oa.free(offset=off)
    with pytest.raises(TypeError):
        OffsetAllocator(4096, 32)  # sl_len is keyword-only


def test_empty_allocator(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(0)
    assert oa.capacity == 0 and list(oa.walk()) == []
    assert oa.stats() == tlsf.Stats(0, 0, 0, 0, 0)
    for size in (0, 1, 2**64):
        with pytest.raises(tlsf.OutOfMemoryError):
            oa.alloc(size)
    oa.add_range(4096, 4096)
    assert oa.alloc(0) == 4096
    assert_offset_consistent(oa)


@pytest.mark.parametrize(
    ("args", "kw", "exc"),
    [
        ((-1,), {}, ValueError),
        ((2**64,), {}, ValueError),
        ((2**70,), {}, ValueError),
        ((1000,), {"granularity": 256}, ValueError),
        ((1024,), {"granularity": 0}, ValueError),
        ((1024,), {"granularity": 3}, ValueError),
        ((1024,), {"granularity": -16}, ValueError),
        ((1024,), {"granularity": 2**64}, ValueError),
        ((1024,), {"sl_len": 0}, ValueError),
        ((1024,), {"sl_len": 3}, ValueError),
        ((1024,), {"sl_len": 128}, ValueError),
        ((1024,), {"sl_len": -32}, ValueError),
        (("1024",), {}, TypeError),
        ((1024.0,), {}, TypeError),
        ((None,), {}, TypeError),
        ((1024,), {"granularity": 16.0}, TypeError),
        ((1024,), {"sl_len": "32"}, TypeError),
        ((1024,), {"bogus": 1}, TypeError),
    ],
)
def test_bad_construction(OffsetAllocator, args, kw, exc):  # noqa: N803
    with pytest.raises(exc):
        OffsetAllocator(*args, **kw)


def test_largest_capacity(OffsetAllocator):  # noqa: N803
    """The managed space reaches 2**64 - 1 (exclusive end)."""
    oa = OffsetAllocator(2**64 - 1)
    assert oa.capacity == 2**64 - 1
    big = oa.alloc(2**63, align=2**63)
    assert big == 0
    assert oa.alloc(2**62) == 2**63
    assert oa.usable_size(big) == 2**63
    assert_offset_consistent(oa)
    oa = OffsetAllocator(2**63, granularity=2**63)
    assert oa.alloc(1) == 0 and oa.usable_size(0) == 2**63


def test_final(OffsetAllocator):  # noqa: N803
    with pytest.raises(TypeError):
        type("Sub", (OffsetAllocator,), {})


# ------------------------------------------------------------------ allocation


def test_offsets_follow_each_other(OffsetAllocator):  # noqa: N803
    """No headers: one-byte allocations sit one byte apart."""
    oa = OffsetAllocator(100)
    assert [oa.alloc(1) for _ in range(100)] == list(range(100))
    with pytest.raises(tlsf.OutOfMemoryError):
        oa.alloc(1)
    assert oa.stats().free_blocks == 0
    assert_offset_consistent(oa, {k: 1 for k in range(100)})


def test_size_zero_takes_one_granule(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(4096, granularity=16)
    offs = [oa.alloc(0) for _ in range(5)]
    assert offs == [0, 16, 32, 48, 64]
    assert all(oa.usable_size(o) == 16 for o in offs)


@pytest.mark.parametrize("granularity", [1, 2, 16, 256, 4096])
def test_granularity(OffsetAllocator, granularity):  # noqa: N803
    oa = OffsetAllocator(64 * granularity, granularity=granularity)
    live = {}
    for size in (1, granularity - 1, granularity, granularity + 1, 3 * granularity, 0):
        off = oa.alloc(size)
        assert off % granularity == 0
        assert oa.usable_size(off) == max(1, -(-size // granularity)) * granularity
        live[off] = size
    assert_offset_consistent(oa, live)
    for off in live:
        if off % granularity == 0 and granularity > 1:
            with pytest.raises(tlsf.InvalidOffsetError):
                oa.free(off + 1)
    for off in live:
        oa.free(off)
    assert list(oa.walk()) == [BlockInfo(0, 64 * granularity, False)]


@pytest.mark.parametrize("align", [2**k for k in range(0, 21)])
def test_alignment(OffsetAllocator, align):  # noqa: N803
    oa = OffsetAllocator(4 * MiB)
    first = oa.alloc(3)
    off = oa.alloc(100, align)
    assert off % align == 0
    assert_offset_consistent(oa, {first: 3, off: 100})


def test_alignment_padding_goes_back_to_the_free_lists(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(64 * KiB)
    assert oa.alloc(1) == 0
    assert oa.alloc(1, align=4096) == 4096
    assert list(oa.walk()) == [
        BlockInfo(0, 1, True),
        BlockInfo(1, 4095, False),  # the padding is a free block of its own
        BlockInfo(4096, 1, True),
        BlockInfo(4097, 64 * KiB - 4097, False),
    ]
    assert oa.usable_size(4096) == 1  # and not part of the allocation
    assert oa.alloc(4095) == 1  # the padding is handed out again
    assert_offset_consistent(oa, {0: 1, 1: 4095, 4096: 1})


def test_granularity_larger_alignments(OffsetAllocator):  # noqa: N803
    """With granularity 256, align 256 needs no padding; larger aligns pad in granules."""
    oa = OffsetAllocator(MiB, granularity=256)
    assert oa.alloc(10, align=256) == 0
    assert oa.alloc(10, align=64) == 256  # below the granularity: every offset qualifies
    assert oa.alloc(10, align=4096) == 4096
    assert [b.size for b in oa.walk()][:4] == [256, 256, 4096 - 512, 256]


def test_same_size_requests_reuse_their_holes(OffsetAllocator):  # noqa: N803
    """The own-list head fallback: a same-size workload fills its holes (high-water stays)."""
    oa = OffsetAllocator(16 * MiB)
    offs = [oa.alloc(3000) for _ in range(1000)]
    high = max(offs) + 3000
    for off in offs[::2]:
        oa.free(off)
    again = [oa.alloc(3000) for _ in range(500)]
    assert max(again) + 3000 <= high
    assert sorted(again) == sorted(offs[::2])


def test_out_of_memory_leaves_the_allocator_unchanged(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(10_000)
    keep = [oa.alloc(s) for s in (1000, 2000, 3000)]
    oa.free(keep[1])
    before = state(oa)
    cases = [(10_001, 1), (2**64 - 1, 1), (2**64, 1), (4001, 1), (1, 2**14), (1, 2**64), (10, 2**100)]
    for size, align in cases:
        with pytest.raises(tlsf.OutOfMemoryError):
            oa.alloc(size, align)
        assert state(oa) == before


@pytest.mark.parametrize(("size", "align"), [(-1, 1), (-(2**70), 1), (1, 0), (1, 3), (1, -4), (1, 2**64 + 1)])
def test_bad_alloc_arguments(OffsetAllocator, size, align):  # noqa: N803
    oa = OffsetAllocator(4096)
    before = state(oa)
    with pytest.raises(ValueError) as e:
        oa.alloc(size, align)
    assert not isinstance(e.value, tlsf.InvalidOffsetError)
    assert state(oa) == before


@pytest.mark.parametrize("bad", [1.0, "1", None, b"1", [1]])
def test_non_integer_arguments(OffsetAllocator, bad):  # noqa: N803
    oa = OffsetAllocator(4096)
    off = oa.alloc(10)
    before = state(oa)
    for call in (
        lambda: oa.alloc(bad),
        lambda: oa.alloc(10, bad),
        lambda: oa.free(bad),
        lambda: oa.usable_size(bad),
        lambda: oa.resize(bad, 10),
        lambda: oa.resize(off, bad),
        lambda: oa.add_range(bad, 16),
        lambda: oa.add_range(8192, bad),
    ):
        with pytest.raises(TypeError):
            call()
        assert state(oa) == before


# ------------------------------------------------------------------ resize


def test_resize_in_place(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(1000)
    a, b = oa.alloc(100), oa.alloc(100)
    assert oa.resize(b, 300) is True  # grows into the free space after it
    assert oa.usable_size(b) == 300
    assert oa.resize(b, 50) is True  # shrinks; the tail merges with the free space
    assert list(oa.walk()) == [BlockInfo(0, 100, True), BlockInfo(100, 50, True), BlockInfo(150, 850, False)]
    before = state(oa)
    assert oa.resize(a, 101) is False  # b is in the way: nothing changes
    assert state(oa) == before
    assert oa.resize(a, 100) is True and state(oa) == before
    assert oa.resize(b, 0) is True and oa.usable_size(b) == 1
    assert oa.resize(b, 900) is True and oa.usable_size(b) == 900
    assert oa.stats().free_blocks == 0
    assert oa.resize(b, 901) is False
    assert oa.resize(b, 2**64) is False and oa.resize(b, 2**200) is False
    with pytest.raises(ValueError):
        oa.resize(b, -1)
    assert_offset_consistent(oa, {a: 100, b: 900})


def test_resize_shrink_next_to_used(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(300)
    a, b, c = oa.alloc(100), oa.alloc(100), oa.alloc(100)
    assert oa.resize(b, 40) is True
    assert list(oa.walk())[1:3] == [BlockInfo(100, 40, True), BlockInfo(140, 60, False)]
    assert oa.resize(b, 100) is True  # and back, exactly filling the gap
    assert oa.stats().free_blocks == 0
    assert_offset_consistent(oa, {a: 100, b: 100, c: 100})


# ------------------------------------------------------------------ ranges


def test_add_range_coalesces_with_touching_ranges(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(0)
    oa.add_range(0, 100)
    oa.add_range(200, 100)
    assert [(b.offset, b.size) for b in oa.walk()] == [(0, 100), (200, 100)]
    with pytest.raises(tlsf.OutOfMemoryError):
        oa.alloc(101)
    oa.add_range(100, 100)  # touches both: one range, one free block
    assert list(oa.walk()) == [BlockInfo(0, 300, False)]
    assert oa.capacity == 300
    assert oa.alloc(300) == 0
    assert_offset_consistent(oa, {0: 300})


def test_add_range_next_to_used_blocks(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(0)
    oa.add_range(100, 100)
    a = oa.alloc(100)
    oa.add_range(200, 50)  # after a used block: a free block of its own
    oa.add_range(50, 50)  # before it
    assert list(oa.walk()) == [BlockInfo(50, 50, False), BlockInfo(100, 100, True), BlockInfo(200, 50, False)]
    oa.free(a)  # now the range is one block again
    assert list(oa.walk()) == [BlockInfo(50, 200, False)]
    assert_offset_consistent(oa, {})


@pytest.mark.parametrize(
    ("offset", "size"),
    [(0, 1), (99, 2), (199, 2), (150, 100), (50, 300), (299, 1), (0, 1000)],
)
def test_add_range_overlap_is_refused(OffsetAllocator, offset, size):  # noqa: N803
    oa = OffsetAllocator(0)
    oa.add_range(0, 100)
    oa.add_range(200, 100)
    oa.alloc(50)
    before = state(oa)
    with pytest.raises(ValueError, match="overlap"):
        oa.add_range(offset, size)
    assert state(oa) == before


@pytest.mark.parametrize(
    ("offset", "size"),
    [(-1, 16), (16, -16), (8, 16), (16, 8), (2**64 - 16, 16), (2**64, 16), (16, 2**64), (2**70, 16)],
)
def test_add_range_bad_arguments(OffsetAllocator, offset, size):  # noqa: N803
    oa = OffsetAllocator(0, granularity=16)
    with pytest.raises(ValueError):
        oa.add_range(offset, size)
    assert state(oa) == ([], tlsf.Stats(0, 0, 0, 0, 0), 0)


def test_add_range_at_the_top_of_the_space(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(0)
    oa.add_range(2**64 - 101, 100)  # ends at 2**64 - 1
    assert oa.alloc(100) == 2**64 - 101
    oa.add_range(2**63, 0)  # empty: nothing
    assert oa.capacity == 100
    assert_offset_consistent(oa)


def test_many_ranges(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(0, granularity=16)
    starts = [k * 4096 for k in range(64)]
    for s in starts[1::2]:  # apart
        oa.add_range(s, 4096)
    assert [b.offset for b in oa.walk()] == starts[1::2]
    assert_offset_consistent(oa)
    for s in reversed(starts[0::2]):  # each touches one or two
        oa.add_range(s, 4096)
    assert list(oa.walk()) == [BlockInfo(0, 64 * 4096, False)]
    assert oa.capacity == 64 * 4096
    assert_offset_consistent(oa)


# ------------------------------------------------------------------ reset, stats


def test_reset(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(10_000)
    oa.add_range(20_000, 5000)
    offs = [oa.alloc(s) for s in (100, 200, 300, 5000, 4000)]
    oa.reset()
    assert list(oa.walk()) == [BlockInfo(0, 10_000, False), BlockInfo(20_000, 5000, False)]
    assert oa.stats().allocations == 0 and oa.capacity == 15_000
    for off in offs:
        with pytest.raises(tlsf.InvalidOffsetError):
            oa.free(off)
    assert oa.alloc(10_000) == 0
    assert_offset_consistent(oa, {0: 10_000})


def test_largest_free_can_be_allocated(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(100_000)
    offs = [oa.alloc(s) for s in range(1, 400, 7)]
    for off in offs[::3]:
        oa.free(off)
    largest = oa.stats().largest_free
    assert oa.usable_size(oa.alloc(largest)) == largest


# ------------------------------------------------------------------ batch


def test_alloc_many_and_free_many(OffsetAllocator):  # noqa: N803
    oa = OffsetAllocator(4096, granularity=16)
    offs = oa.alloc_many([10, 20, 0, 100], align=64)
    assert type(offs) is array and offs.typecode == "Q"
    assert all(o % 64 == 0 for o in offs)
    assert_offset_consistent(oa, dict(zip(offs, [10, 20, 0, 100])))
    before = state(oa)
    with pytest.raises(tlsf.OutOfMemoryError):
        oa.alloc_many([100, 100, 5000])  # all or nothing
    assert state(oa) == before
    with pytest.raises(tlsf.InvalidOffsetError):
        oa.free_many([offs[0], offs[1], offs[0]])  # listed twice: nothing freed
    with pytest.raises(tlsf.InvalidOffsetError):
        oa.free_many([offs[0], 8])
    assert state(oa) == before
    oa.free_many(offs)
    assert list(oa.walk()) == [BlockInfo(0, 4096, False)]


def test_batch_with_numpy(OffsetAllocator):  # noqa: N803
    np = pytest.importorskip("numpy")
    oa = OffsetAllocator(MiB, granularity=256)
    offs = oa.alloc_many(np.array([1, 300, 256], dtype=np.uint32), align=256)
    assert isinstance(offs, np.ndarray) and offs.dtype == np.uint64
    assert list(offs) == [0, 256, 768]
    oa.free_many(offs)
    assert oa.stats().allocations == 0


# ------------------------------------------------------------------ re-entrancy


@pytest.mark.parametrize("action", ["reset", "free", "alloc", "add_range"])
def test_reentrant_arguments(OffsetAllocator, action):  # noqa: N803
    """An argument whose __index__ changes the allocator: no crash, consistent after."""
    oa = OffsetAllocator(4096)
    victim = oa.alloc(100)
    acts = {
        "reset": oa.reset,
        "free": lambda: oa.free(victim),
        "alloc": lambda: oa.alloc(10),
        "add_range": lambda: oa.add_range(4096, 4096),
    }
    for make_call in (
        lambda s: oa.alloc(s),
        lambda s: oa.alloc(10, Sneaky(16, acts[action])),
        lambda s: oa.resize(victim, s),
        lambda s: oa.usable_size(Sneaky(victim, acts[action])),
        lambda s: oa.free(Sneaky(victim, acts[action])),
        lambda s: oa.alloc_many([s, 5]),
    ):
        try:
            make_call(Sneaky(20, acts[action]))
        except (tlsf.InvalidOffsetError, tlsf.OutOfMemoryError, ValueError):
            pass
        assert_offset_consistent(oa)


# ------------------------------------------------------------ many blocks


@pytest.mark.parametrize("impl_count", [("c", 10_000_000), ("python", 200_000)], ids=["c-10M", "python-200k"])
def test_ten_million_blocks(impl_count):
    """10 million one-unit blocks (granularity 1) in the C core, then all freed.

    The C core's cap is 2**27 nodes (134 million blocks, 4 GiB of nodes);
    tests/native/node_table.c reaches it with the cap lowered. The twin stores
    nodes as Python objects, which have no cap; it runs the same test with
    200,000 blocks to keep the suite fast."""
    from conftest import impl_class

    impl, count = impl_count
    if impl == "c" and PURE_ONLY:
        pytest.skip("TLSF_PURE_PYTHON=1")
    oa = impl_class(impl, "OffsetAllocator")(count)
    step = 1_000_000
    for start in range(0, count, step):
        n = min(step, count - start)
        offs = oa.alloc_many(array("q", [1]) * n)
        assert offs == array("Q", range(start, start + n))
    st = oa.stats()
    assert (st.allocations, st.allocated_bytes, st.free_blocks) == (count, count, 0)
    with pytest.raises(tlsf.OutOfMemoryError):
        oa.alloc(1)
    oa.check()
    for start in range(0, count, step):
        oa.free_many(array("q", range(start, min(start + step, count))))
    assert list(oa.walk()) == [BlockInfo(0, count, False)]
    oa.check()


def test_alloc_many_offsets_above_2_63(OffsetAllocator):  # noqa: N803
    """array('Q') holds every 64-bit offset: no OverflowError at the top of the space."""
    oa = OffsetAllocator(0)
    oa.add_range(2**64 - 4097, 4096)
    offs = oa.alloc_many([10, 20])
    assert list(offs) == [2**64 - 4097, 2**64 - 4087]
    oa.free_many(offs)
    assert oa.stats().allocations == 0
