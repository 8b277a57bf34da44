"""Huge and odd arguments, in the manner of glibc's tst-malloc-too-large.

Every request that cannot fit fails with OutOfMemoryError and leaves the heap
(arena bytes, walk, stats) unchanged; a failed realloc leaves the old block
byte-identical and live. Nothing wraps around 2**64, nothing raises OverflowError.
"""

from __future__ import annotations

import pytest
from conftest import (
    GRAN,
    assert_consistent,
    assert_offset_consistent,
    heap_and_flex_fixture,
    is_flex,
    new_heap,
    pattern,
    snapshot,
)

import tlsf

# The Heap contract holds for FlexHeap too: every test here runs for both types.
Heap = heap_and_flex_fixture()



KiB, MiB = 1 << 10, 1 << 20
CAP = 64 * KiB

HUGE = sorted(
    {2**64 - k for k in range(4097)}
    | {2**63 + d for d in range(-64, 65)}
    | {2**58 + d for d in range(-64, 65)}
    | {2**32 + d for d in range(-64, 65)}
    | {CAP + d for d in range(1, 4097)}
    | {2**65, 2**70, 2**100, 2**1000}
)
POWERS = [2**k for k in range(64)] + [2**64, 2**65, 2**100]


def busy_heap(Heap, capacity=CAP, sl_len=32):  # noqa: N803
    """A heap with a few live allocations (holding patterns) and a few holes."""
    h, mem = new_heap(Heap, capacity, sl_len=sl_len)
    offs = [h.alloc(s) for s in (1000, 24, 3000, 100, 5000, 7)]
    for off in offs[1::2]:
        h.free(off)
    live = offs[0::2]
    for i, off in enumerate(live):
        mem[off : off + h.usable_size(off)] = pattern(i, h.usable_size(off))
    return h, mem, live


def test_alloc_too_large(Heap):
    h, mem, live = busy_heap(Heap)
    before = snapshot(h, mem)
    for size in HUGE:
        for align in (1, 16, 4096):
            with pytest.raises(tlsf.OutOfMemoryError):
                h.alloc(size, align=align)
        assert snapshot(h, mem) == before, size
    assert_consistent(h)


def test_realloc_too_large(Heap):
    h, mem, live = busy_heap(Heap)
    before = snapshot(h, mem)
    for off in live:
        for size in HUGE:
            with pytest.raises(tlsf.OutOfMemoryError):
                h.realloc(off, size)
        assert snapshot(h, mem) == before
    assert_consistent(h)


@pytest.mark.parametrize("capacity", [4 * KiB, 64 * KiB, 100_003, MiB])
def test_largest_request_boundary(Heap, capacity):
    """A fresh heap takes exactly its one free block's payload, and not a byte more."""
    h, mem = new_heap(Heap, capacity)
    end = capacity // GRAN * GRAN
    most = end - 32 - GRAN
    assert h.stats().largest_free == most
    before = snapshot(h, mem)
    for size in range(most + 1, capacity + 300):
        with pytest.raises(tlsf.OutOfMemoryError):
            h.alloc(size)
    assert snapshot(h, mem) == before
    off = h.alloc(most)
    assert off == 16 and h.usable_size(off) == most
    for size in range(most + 1, most + 300):
        with pytest.raises(tlsf.OutOfMemoryError):
            h.realloc(off, size)
    assert h.realloc(off, most) == off
    h.free(off)
    assert snapshot(h, mem) == before


@pytest.mark.parametrize("sl_len", [1, 32, 64])
def test_every_power_of_two_alignment(Heap, sl_len):
    cap = MiB
    h, mem = new_heap(Heap, cap, sl_len=sl_len)
    fresh = list(h.walk())
    for align in POWERS:
        for size in (0, 1, 100, 4096, cap // 4, cap // 2, cap - 64, cap, 2**64 - 1, 2**64):
            before = snapshot(h, mem)
            try:
                off = h.alloc(size, align=align)
            except tlsf.OutOfMemoryError:
                assert snapshot(h, mem) == before, (size, align)
                assert not (align <= cap // 4 and size <= cap // 4), (size, align)
                continue
            assert align < cap and size < cap, (size, align)
            assert off % align == 0 and off % GRAN == 0 and off >= GRAN
            assert off + h.usable_size(off) <= cap
            assert h.usable_size(off) >= size
            assert_consistent(h, {off: size})
            h.free(off)
            assert list(h.walk()) == fresh


def test_alignment_with_busy_heap(Heap):
    h, mem, live = busy_heap(Heap, capacity=MiB)
    expected = {off: 0 for off in live}
    for align in POWERS:
        for size in (0, 100, 10_000, 2**63):
            before = snapshot(h, mem)
            try:
                off = h.alloc(size, align=align)
            except tlsf.OutOfMemoryError:
                assert snapshot(h, mem) == before, (size, align)
                continue
            assert off % align == 0
            assert_consistent(h, {**expected, off: size})
            h.free(off)
            assert_consistent(h, expected)


def test_realloc_keeps_alignment_under_pressure(Heap):
    h, mem = new_heap(Heap, 256 * KiB)
    serial = 0
    for align in (32, 256, 4096, 32768):
        off, data = h.alloc(100, align=align), b""
        blockers = []
        for size in (200, 5000, 20000, 60000, 10, 0, 100, 3000):
            new = h.realloc(off, size)
            assert new % align == 0, (align, size)
            keep = min(len(data), size)
            assert mem[new : new + keep] == data[:keep]
            serial += 1
            data = pattern(serial, size)
            mem[new : new + size] = data
            off = new
            blockers.append(h.alloc(40))  # a used neighbour after the block, often
        h.free(off)
        for b in blockers:
            h.free(b)
    assert [b.used for b in h.walk()] == [False]


def test_failed_realloc_of_big_block(Heap):
    """The block can neither grow in place nor move: it is left byte-identical."""
    h, mem = new_heap(Heap, 64 * KiB)
    a = h.alloc(20_000)
    b = h.alloc(20_000)
    mem[a : a + 20_000] = pattern(1, 20_000)
    before = snapshot(h, mem)
    for size in (30_000, 40_000, 44_000, 63_000, 64 * KiB):
        with pytest.raises(tlsf.OutOfMemoryError):
            h.realloc(a, size)
        assert snapshot(h, mem) == before
    h.free(b)
    assert h.realloc(a, 40_000) == a  # now the next block is free
    assert mem[a : a + 20_000] == pattern(1, 20_000)


@pytest.mark.parametrize("size", [-1, -16, -(2**63), -(2**64), -(2**70)])
def test_negative_sizes(Heap, size):
    h, mem, live = busy_heap(Heap)
    before = snapshot(h, mem)
    with pytest.raises(ValueError) as e:
        h.alloc(size)
    assert not isinstance(e.value, tlsf.InvalidOffsetError)
    with pytest.raises(ValueError) as e:
        h.realloc(live[0], size)
    assert not isinstance(e.value, tlsf.InvalidOffsetError)
    assert snapshot(h, mem) == before


@pytest.mark.parametrize(
    "align", [0, -1, -16, -(2**70), 3, 6, 12, 24, 48, 4097, 2**20 + 2**10, 2**63 - 1, 2**64 - 1]
)
def test_bad_alignment(Heap, align):
    h, mem, _ = busy_heap(Heap)
    before = snapshot(h, mem)
    for size in (0, 10, 2**64):
        with pytest.raises(ValueError) as e:
            h.alloc(size, align=align)
        assert not isinstance(e.value, tlsf.InvalidOffsetError)
    assert snapshot(h, mem) == before


@pytest.mark.parametrize("bad", [1.0, 16.5, "16", None, b"1", [1], 2**64 * 1.0])
def test_non_integer_arguments(Heap, bad):
    h, mem, live = busy_heap(Heap)
    before = snapshot(h, mem)
    calls = [
        lambda: h.alloc(bad),
        lambda: h.alloc(10, align=bad),
        lambda: h.realloc(live[0], bad),
        lambda: h.view(live[0], bad if bad is not None else 1.0),  # None: the default
    ]
    if not is_flex(Heap):  # a FlexHeap has no pool calls
        calls += [
            lambda: h.insert_free_block(bad, 100),
            lambda: h.insert_free_block(0, bad),
            lambda: h.append_free_block(bad, 100),
            lambda: h.append_free_block(CAP, bad),
        ]
    for call in calls:
        with pytest.raises(TypeError):
            call()
    assert snapshot(h, mem) == before


def test_integer_like_arguments(Heap):
    """Objects with __index__ (numpy integers) are integers."""
    np = pytest.importorskip("numpy")
    h, mem = new_heap(Heap, CAP)
    off = h.alloc(np.int64(100), align=np.uint32(64))
    assert off % 64 == 0
    assert h.usable_size(np.int64(off)) >= 100
    off = h.realloc(np.uint64(off), np.int16(10))
    h.free(np.int32(off))
    assert [b.used for b in h.walk()] == [False]


# ------------------------------------------------- the same sweep on OffsetAllocator


def busy_offset_allocator(OffsetAllocator, granularity=1):  # noqa: N803
    """An OffsetAllocator of CAP bytes with live allocations and holes; returns (oa, live)."""
    oa = OffsetAllocator(CAP, granularity=granularity)
    offs = [oa.alloc(s) for s in (1000, 24, 3000, 100, 5000, 7)]
    for off in offs[1::2]:
        oa.free(off)
    return oa, offs[0::2]


def oa_state(oa) -> tuple:
    return list(oa.walk()), oa.stats(), oa.capacity


@pytest.mark.parametrize("granularity", [1, 16, 256])
def test_offset_alloc_and_resize_too_large(OffsetAllocator, granularity):  # noqa: N803
    oa, live = busy_offset_allocator(OffsetAllocator, granularity)
    before = oa_state(oa)
    for size in HUGE:
        for align in (1, 16, 4096):
            with pytest.raises(tlsf.OutOfMemoryError):
                oa.alloc(size, align=align)
        for off in live:
            assert oa.resize(off, size) is False
        with pytest.raises(tlsf.OutOfMemoryError):
            oa.alloc_many([1, size, 1])
        assert oa_state(oa) == before, size
    assert_offset_consistent(oa)


@pytest.mark.parametrize("capacity", [1, 4 * KiB, 100_003, MiB])
def test_offset_largest_request_boundary(OffsetAllocator, capacity):  # noqa: N803
    """A fresh allocator takes exactly its capacity, and not a byte more."""
    oa = OffsetAllocator(capacity)
    assert oa.stats().largest_free == capacity
    before = oa_state(oa)
    for size in range(capacity + 1, capacity + 300):
        with pytest.raises(tlsf.OutOfMemoryError):
            oa.alloc(size)
    assert oa_state(oa) == before
    assert oa.alloc(capacity) == 0
    assert oa.resize(0, capacity + 1) is False
    oa.free(0)
    assert oa_state(oa) == before


@pytest.mark.parametrize("sl_len", [1, 32, 64])
def test_offset_every_power_of_two_alignment(OffsetAllocator, sl_len):  # noqa: N803
    cap = MiB
    oa = OffsetAllocator(cap, sl_len=sl_len)
    oa.alloc(1)  # offset 0 taken: every alignment above 1 needs padding
    fresh = oa_state(oa)
    for align in POWERS:
        for size in (0, 1, 100, 4096, cap // 4, cap // 2, cap - 1, cap, 2**64 - 1, 2**64):
            try:
                off = oa.alloc(size, align=align)
            except tlsf.OutOfMemoryError:
                assert oa_state(oa) == fresh, (size, align)
                assert not (align <= cap // 4 and size <= cap // 4), (size, align)
                continue
            assert off % align == 0 and off + oa.usable_size(off) <= cap
            assert oa.usable_size(off) == max(size, 1)
            assert_offset_consistent(oa, {0: 1, off: size})
            oa.free(off)
            assert oa_state(oa) == fresh


@pytest.mark.parametrize("size", [-1, -16, -(2**63), -(2**64), -(2**70)])
def test_offset_negative_sizes(OffsetAllocator, size):  # noqa: N803
    oa, live = busy_offset_allocator(OffsetAllocator)
    before = oa_state(oa)
    for call in (lambda: oa.alloc(size), lambda: oa.resize(live[0], size), lambda: oa.alloc_many([1, size])):
        with pytest.raises(ValueError) as e:
            call()
        assert not isinstance(e.value, tlsf.InvalidOffsetError)
    assert oa_state(oa) == before


@pytest.mark.parametrize(
    "align", [0, -1, -16, -(2**70), 3, 6, 12, 24, 48, 4097, 2**20 + 2**10, 2**63 - 1, 2**64 - 1]
)
def test_offset_bad_alignment(OffsetAllocator, align):  # noqa: N803
    oa, _ = busy_offset_allocator(OffsetAllocator)
    before = oa_state(oa)
    for size in (0, 10, 2**64):
        with pytest.raises(ValueError) as e:
            oa.alloc(size, align=align)
        assert not isinstance(e.value, tlsf.InvalidOffsetError)
    assert oa_state(oa) == before


def test_offset_integer_like_arguments(OffsetAllocator):  # noqa: N803
    np = pytest.importorskip("numpy")
    oa = OffsetAllocator(np.uint64(CAP), granularity=np.int32(16), sl_len=np.int8(8))
    off = oa.alloc(np.int64(100), align=np.uint32(64))
    assert off % 64 == 0 and oa.usable_size(np.int64(off)) == 112
    assert oa.resize(np.uint64(off), np.int16(10)) is True
    oa.free(np.int32(off))
    oa.add_range(np.uint64(CAP), np.int64(CAP))
    assert [b.used for b in oa.walk()] == [False]
