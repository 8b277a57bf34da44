"""The invalid-offset matrix: anything that is not a live allocation's offset is refused.

Each bad offset, via free, realloc, usable_size and view, raises InvalidOffsetError
naming the offset and leaves the arena bytes and walk() unchanged, even when
user data imitates a block header exactly.
"""

from __future__ import annotations

import pytest
from conftest import GRAN, IMPLS, assert_consistent, heap_and_flex_fixture, impl_class, new_heap, snapshot

import tlsf

# The Heap contract holds for FlexHeap too: every test here runs for both types.
Heap = heap_and_flex_fixture()



CAPACITY = 65536

CALLS = {
    "free": lambda h, off: h.free(off),
    "realloc": lambda h, off: h.realloc(off, 10),
    "realloc-0": lambda h, off: h.realloc(off, 0),
    "usable_size": lambda h, off: h.usable_size(off),
    "view": lambda h, off: h.view(off),
    "view-sized": lambda h, off: h.view(off, 1),
}


def make(Heap):  # noqa: N803
    """A heap with live and freed allocations. Returns (heap, mem, live, freed)."""
    h, mem = new_heap(Heap, CAPACITY)
    offs = [h.alloc(size) for size in (100, 200, 300, 400, 500, 600, 64)]
    freed = offs[1::2]
    for off in freed:
        h.free(off)
    live = offs[0::2]
    for i, off in enumerate(live):
        mem[off : off + 64] = bytes([i + 1]) * 64
    return h, mem, live, freed


def bad_offsets(h, live, freed):
    """Named bad offsets for the heap built by make()."""
    a = live[1]  # a live allocation with at least 200 usable bytes
    walk = list(h.walk())
    free_blocks = [b for b in walk if not b.used]
    tail = free_blocks[-1]
    cases = {
        "double-free": freed[0],
        "double-free-2": freed[-1],
        "interior+1": a + 1,
        "interior+8": a + 8,
        "interior+16": a + 16,
        "interior+32": a + 32,
        "end-of-payload": a + h.usable_size(a),
        "header": a - GRAN,
        "free-block-header": tail.offset,
        "free-block-payload": tail.offset + GRAN,
        "free-space": tail.offset + 1024,
        "free-space-odd": tail.offset + 1037,
        "sentinel-header": tail.offset + tail.size,
        "sentinel-payload": tail.offset + tail.size + GRAN,
        "zero": 0,
        "eight": 8,
        "capacity": CAPACITY,
        "capacity+16": CAPACITY + GRAN,
        "minus-1": -1,
        "minus-16": -GRAN,
        "2**32+16": 2**32 + 16,
        "2**63": 2**63,
        "2**64": 2**64,
        "2**64+16": 2**64 + 16,
        "2**70": 2**70,
        "-(2**70)": -(2**70),
    }
    for name, off in cases.items():
        assert off not in live, name
    return cases


def test_matrix(Heap):
    h, mem, live, freed = make(Heap)
    before = snapshot(h, mem)
    cases = bad_offsets(h, live, freed)
    for call_name, call in CALLS.items():
        for case, off in cases.items():
            with pytest.raises(tlsf.InvalidOffsetError) as e:
                call(h, off)
            assert str(off) in str(e.value), f"{call_name}({case}={off}): {e.value}"
            assert snapshot(h, mem) == before, f"{call_name}({case}={off}) changed the heap"
    assert_consistent(h, {off: 64 for off in live})
    # the heap still works: the live allocations can be freed, exactly once
    for off in live:
        h.free(off)
        with pytest.raises(tlsf.InvalidOffsetError):
            h.free(off)
    assert [b.used for b in h.walk()] == [False]


@pytest.mark.parametrize("call_name", list(CALLS))
def test_fake_header_in_free_space(Heap, call_name):
    """User data in free space that copies a live block's header byte for byte."""
    h, mem, live, freed = make(Heap)
    a = live[1]
    header = bytes(mem[a - GRAN : a])
    tail = [b for b in h.walk() if not b.used][-1]
    # in the big free tail, and inside a freed allocation's old payload (clear of the
    # 32 bytes of free-block metadata)
    fakes = [tail.offset + 256, freed[0] + 3 * GRAN]
    for fake in fakes:
        mem[fake - GRAN : fake] = header
    before = snapshot(h, mem)
    for fake in fakes:
        with pytest.raises(tlsf.InvalidOffsetError) as e:
            CALLS[call_name](h, fake)
        assert str(fake) in str(e.value)
        assert snapshot(h, mem) == before
    h.check()


@pytest.mark.parametrize("call_name", list(CALLS))
def test_fake_header_inside_live_payload(Heap, call_name):
    """A live allocation whose data contains a copy of a real header and a fake block."""
    h, mem, live, _ = make(Heap)
    a, b = live[1], live[2]
    header = bytes(mem[b - GRAN : b])
    fake = a + 4 * GRAN
    mem[fake - GRAN : fake] = header
    mem[a : a + GRAN] = header  # also right at the start of the payload
    before = snapshot(h, mem)
    for off in (fake, a + GRAN):
        with pytest.raises(tlsf.InvalidOffsetError) as e:
            CALLS[call_name](h, off)
        assert str(off) in str(e.value)
        assert snapshot(h, mem) == before
    h.check()
    h.free(a)
    h.check()


def test_double_free_with_restored_header_coalesced(Heap):
    """A freed block merged into its free neighbour: restoring its old header is not enough."""
    h, mem, live, freed = make(Heap)
    victim = live[1]  # both neighbours are free: it merges into the block before it
    header = bytes(mem[victim - GRAN : victim])
    h.free(victim)
    assert all(b.offset != victim - GRAN for b in h.walk())
    mem[victim - GRAN : victim] = header
    before = snapshot(h, mem)
    for call in CALLS.values():
        with pytest.raises(tlsf.InvalidOffsetError) as e:
            call(h, victim)
        assert str(victim) in str(e.value)
        assert snapshot(h, mem) == before
    h.check()


def test_double_free_with_restored_header(Heap):
    """A freed block that kept its place: rewriting its used header over the free one."""
    h, mem = new_heap(Heap, CAPACITY)
    _, victim, _ = h.alloc(100), h.alloc(100), h.alloc(100)
    header = bytes(mem[victim - GRAN : victim])
    h.free(victim)
    assert any(b.offset == victim - GRAN and not b.used for b in h.walk())
    mem[victim - GRAN : victim - GRAN + 8] = header[:8]  # the size word with the used flag
    for call in CALLS.values():
        with pytest.raises((tlsf.InvalidOffsetError, tlsf.CorruptionError)):
            call(h, victim)


@pytest.mark.parametrize("bad", [1.0, 16.0, "16", None, b"16", [16]])
def test_non_integer_offsets(Heap, bad):
    h, mem, live, _ = make(Heap)
    before = snapshot(h, mem)
    for call in CALLS.values():
        with pytest.raises(TypeError):
            call(h, bad)
    assert snapshot(h, mem) == before


def test_every_granule(Heap):
    """Every offset of the arena: live payload offsets are accepted, all others refused."""
    h, mem, live, _ = make(Heap)
    before = snapshot(h, mem)
    live_set = set(live)
    for off in range(-GRAN, CAPACITY + 2 * GRAN, 4):
        if off in live_set:
            assert h.usable_size(off) >= 64
            continue
        with pytest.raises(tlsf.InvalidOffsetError):
            h.usable_size(off)
        if off % GRAN == 0:
            with pytest.raises(tlsf.InvalidOffsetError):
                h.free(off)
    assert snapshot(h, mem) == before


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("capacity", [0, 1, 8, 15, 16, 17, 24, 31, 32, 33, 47, 48, 64])
def test_tiny_heaps_refuse_every_offset(impl, capacity):
    """A heap too small for any block (below 32 bytes) or for a payload: no
    offset is live, and its bounds check (one unsigned compare for the
    header's range; under 32 bytes offset 16 passes it and reads the live
    bitmap's one word, which every heap has, and finds its bit clear)
    refuses each without reading past the bitmap."""
    for pool in (True, False):
        h = impl_class(impl, "Heap")(bytearray(capacity), pool=pool)
        for off in range(-GRAN, capacity + 3 * GRAN):
            with pytest.raises(tlsf.InvalidOffsetError):
                h.free(off)
            with pytest.raises(tlsf.InvalidOffsetError):
                h.usable_size(off)
        h.check()


# ------------------------------------------------- the same matrix on OffsetAllocator

OA_CALLS = {
    "free": lambda oa, off: oa.free(off),
    "resize": lambda oa, off: oa.resize(off, 10),
    "resize-0": lambda oa, off: oa.resize(off, 0),
    "usable_size": lambda oa, off: oa.usable_size(off),
    "free_many": lambda oa, off: oa.free_many([off]),
}


def make_offset(OffsetAllocator, granularity):  # noqa: N803
    """Two ranges with live and freed allocations. Returns (oa, live, freed)."""
    oa = OffsetAllocator(CAPACITY, granularity=granularity)
    oa.add_range(2 * CAPACITY, CAPACITY)
    offs = [oa.alloc(size) for size in (1000, 2000, 3000, 4000, 5000, 6000, 64)]
    offs.append(oa.alloc(CAPACITY))  # in the second range
    freed = offs[1:7:2]
    for off in freed:
        oa.free(off)
    return oa, [o for o in offs if o not in freed], freed


@pytest.mark.parametrize("granularity", [1, 16, 256])
def test_offset_matrix(OffsetAllocator, granularity):  # noqa: N803
    oa, live, freed = make_offset(OffsetAllocator, granularity)
    g = granularity
    a = live[1]
    tail = [b for b in oa.walk() if not b.used][-1]
    cases = {
        "double-free": freed[0],
        "double-free-2": freed[-1],
        "interior+1": a + 1,
        "interior+g": a + g,
        "end-of-allocation": a + oa.usable_size(a),
        "free-space": tail.offset,
        "free-space+g": tail.offset + g,
        "free-space-odd": tail.offset + 3 * g + 1,
        "range-end": CAPACITY,
        "between-ranges": CAPACITY + 16 * g,
        "second-range-end": 3 * CAPACITY,
        "beyond": 4 * CAPACITY,
        "minus-1": -1,
        "minus-g": -g,
        "2**63": 2**63,
        "2**64-1": 2**64 - 1,
        "2**64": 2**64,
        "2**70": 2**70,
        "-(2**70)": -(2**70),
    }
    before = (list(oa.walk()), oa.stats())
    for call_name, call in OA_CALLS.items():
        for case, off in cases.items():
            assert off not in live, case
            with pytest.raises(tlsf.InvalidOffsetError) as e:
                call(oa, off)
            assert str(off) in str(e.value), f"{call_name}({case}={off}): {e.value}"
            assert (list(oa.walk()), oa.stats()) == before, f"{call_name}({case}={off}) changed it"
    for off in live:
        oa.free(off)
        with pytest.raises(tlsf.InvalidOffsetError):
            oa.free(off)
    assert [b.used for b in oa.walk()] == [False, False]


def test_offset_every_unit(OffsetAllocator):  # noqa: N803
    """Every offset near the ranges: live offsets are accepted, all others refused."""
    oa, live, _ = make_offset(OffsetAllocator, 1)
    before = (list(oa.walk()), oa.stats())
    live_set = set(live)
    for off in range(-4, CAPACITY + 4):
        if off in live_set:
            assert oa.usable_size(off) >= 64
            continue
        with pytest.raises(tlsf.InvalidOffsetError):
            oa.usable_size(off)
        with pytest.raises(tlsf.InvalidOffsetError):
            oa.free(off)
    assert (list(oa.walk()), oa.stats()) == before
