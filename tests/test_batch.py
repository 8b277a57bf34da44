"""The batch API: alloc_many (all or nothing) and free_many (every offset validated first)."""

from __future__ import annotations

import random
from array import array

import pytest
from conftest import Sneaky, assert_consistent, heap_and_flex_fixture, new_heap, snapshot

import tlsf

# The Heap contract holds for FlexHeap too: every test here runs for both types.
Heap = heap_and_flex_fixture()




def _batches_against_single_calls(make, header: int, rng: random.Random) -> None:
    """alloc_many on one allocator, alloc one by one on a twin of it given
    only the calls that succeeded: a successful batch is the same as single
    calls, and a failed one leaves no trace (the two agree on everything,
    down to the order inside the free lists that later offsets depend on)."""
    a1, a2 = make(), make()
    failed = 0
    for _ in range(40):
        sizes = [rng.randrange(0, 3000) for _ in range(rng.randrange(0, 20))]
        align = 2 ** rng.randrange(0, 10)
        try:
            batch = list(a1.alloc_many(sizes, align))
        except tlsf.OutOfMemoryError:
            failed += 1
        else:
            assert batch == [a2.alloc(s, align) for s in sizes]
        assert (list(a1.walk()), a1.stats()) == (list(a2.walk()), a2.stats())
        live = [b.offset + header for b in a1.walk() if b.used]
        victims = rng.sample(live, len(live) // 2)
        a1.free_many(victims)
        for off in victims:
            a2.free(off)
    assert failed, "no batch failed: the rollback went untested"
    a1.check()


@pytest.mark.parametrize("seed", range(4))
def test_alloc_many_is_sequential_alloc(Heap, seed):  # noqa: N803
    rng = random.Random(seed)
    sl_len = rng.choice([1, 8, 32, 64])
    _batches_against_single_calls(lambda: new_heap(Heap, 32 * 1024, sl_len=sl_len)[0], 16, rng)


@pytest.mark.parametrize("seed", range(4))
def test_offset_alloc_many_is_sequential_alloc(OffsetAllocator, seed):  # noqa: N803
    rng = random.Random(seed)
    sl_len = rng.choice([1, 8, 32, 64])
    _batches_against_single_calls(lambda: OffsetAllocator(32 * 1024, sl_len=sl_len), 0, rng)


def _failed_batch_keeps_list_order(alloc, free, alloc_many, sizes):
    """Free blocks A > C > B of one list, freed in the order A, B, C: the list
    is A, B, C (a block smaller than the head goes to the tail). Taking A
    leaves B, C, the head smaller than the block behind it. A batch that takes
    B and then fails must put B back at the head, or the next request would
    get C."""
    a, _, b, _, c, _ = (alloc(n) for n in sizes)
    for off in (a, b, c):
        free(off)
    assert alloc(sizes[0]) == a
    with pytest.raises(tlsf.OutOfMemoryError):
        alloc_many([sizes[2], 2**40])
    assert alloc(sizes[2]) == b


def test_failed_alloc_many_keeps_list_order(Heap):  # noqa: N803
    h, _ = new_heap(Heap, 4096, sl_len=1)  # blocks of 64..127 bytes share a list
    _failed_batch_keeps_list_order(h.alloc, h.free, h.alloc_many, (96, 16, 64, 16, 80, 16))


def test_offset_failed_alloc_many_keeps_list_order(OffsetAllocator):  # noqa: N803
    a = OffsetAllocator(4096, sl_len=1)  # 64..127 units share a list
    _failed_batch_keeps_list_order(a.alloc, a.free, a.alloc_many, (112, 1, 80, 1, 96, 1))


def test_alloc_many_result_types(Heap):
    h, _ = new_heap(Heap, 65536)
    out = h.alloc_many([1, 100, 17], 64)
    assert isinstance(out, array) and out.typecode == "q"
    assert all(off % 64 == 0 for off in out)
    assert [h.usable_size(off) for off in out] == [16, 112, 32]
    for sizes in ((5, 6), array("I", [5, 6]), array("q", [5, 6]), range(5, 7)):
        out = h.alloc_many(sizes)
        assert len(out) == 2 and all(h.usable_size(off) >= 6 for off in out)
    assert len(h.alloc_many([])) == 0
    assert h.stats().allocations == 3 + 4 * 2
    np = pytest.importorskip("numpy")
    out = h.alloc_many(np.array([10, 20, 30], dtype=np.uint32))
    assert isinstance(out, np.ndarray) and out.dtype == np.int64 and out.shape == (3,)
    h.free_many(out)
    h.free_many(np.array(h.alloc_many([1, 2]), dtype=np.int64))
    assert h.stats().allocations == 3 + 4 * 2


@pytest.mark.parametrize("bad_size", [70_000, 2**64, 2**70])
def test_alloc_many_all_or_nothing(Heap, bad_size):
    h, mem = new_heap(Heap, 65536)
    keep = h.alloc_many([100, 200, 300])
    h.free(keep[1])
    walk, stats = list(h.walk()), h.stats()
    for sizes in ([bad_size], [10, 20, bad_size], [100] * 50 + [bad_size], [3000] * 30):
        with pytest.raises(tlsf.OutOfMemoryError):
            h.alloc_many(sizes)
        assert list(h.walk()) == walk
        assert h.stats() == stats
    assert_consistent(h, {keep[0]: 100, keep[2]: 300})


def test_alloc_many_bad_arguments(Heap):
    h, mem = new_heap(Heap, 65536)
    before = snapshot(h, mem)
    with pytest.raises(ValueError):
        h.alloc_many([10, -1])
    with pytest.raises(ValueError):
        h.alloc_many([10], 3)
    for bad in ([10, 1.5], [None], ["1"], 5, None):
        with pytest.raises(TypeError):
            h.alloc_many(bad)
    assert snapshot(h, mem) == before
    h.close()
    with pytest.raises(ValueError):
        h.alloc_many([10])
    with pytest.raises(ValueError):
        h.free_many([16])


def test_free_many_validates_everything_first(Heap):
    h, mem = new_heap(Heap, 65536)
    offs = list(h.alloc_many([100] * 10))
    freed = offs.pop(3)
    h.free(freed)
    before = snapshot(h, mem)
    for bad_list, bad in (
        (offs[:5] + [freed] + offs[5:], freed),  # a double free in the middle
        (offs + [offs[2]], offs[2]),  # listed twice
        (offs[:2] + [offs[2] + 16], offs[2] + 16),  # interior
        ([-1] + offs, -1),
        (offs + [2**70], 2**70),
    ):
        with pytest.raises(tlsf.InvalidOffsetError) as e:
            h.free_many(bad_list)
        assert str(bad) in str(e.value)
        assert snapshot(h, mem) == before  # nothing was freed
    with pytest.raises(TypeError):
        h.free_many(offs[:2] + [1.5])
    assert snapshot(h, mem) == before
    h.free_many(offs)
    h.free_many([])
    assert [b.used for b in h.walk()] == [False]


# --------------------------------------------- huge arguments and re-entrancy


@pytest.mark.parametrize(
    "size", [2**64 - k for k in (0, 1, 16, 17, 4096)] + [2**63, 2**63 - 1, 2**63 + 16, 2**70]
)
def test_alloc_many_huge_size_leaves_nothing(Heap, size):
    """The blocks made before the failing size are freed again (free space may
    keep their stale headers: only blocks and stats are compared)."""
    h, mem = new_heap(Heap, 8192)
    a = h.alloc(100)
    before = list(h.walk()), h.stats()
    with pytest.raises(tlsf.OutOfMemoryError):
        h.alloc_many([10, 20, size, 30])
    assert (list(h.walk()), h.stats()) == before
    assert_consistent(h, {a: 100})


def test_alloc_many_every_alignment(Heap):
    h, mem = new_heap(Heap, 1 << 16)
    for k in range(64):
        before = list(h.walk()), h.stats()
        try:
            offs = h.alloc_many([1, 100], align=2**k)
        except tlsf.OutOfMemoryError:
            assert 2**k >= 1 << 15  # two blocks aligned so cannot both fit in 64 KiB
            assert (list(h.walk()), h.stats()) == before
            continue
        assert all(o % 2**k == 0 for o in offs)
        h.free_many(offs)
    for bad in (0, 3, -8, 2**64 + 1):
        with pytest.raises(ValueError):
            h.alloc_many([1], align=bad)


def test_batch_argument_that_closes_the_heap(Heap):
    for call in (
        lambda h, s: h.alloc_many([10, s]),
        lambda h, s: h.alloc_many([10], align=s),
        lambda h, s: h.free_many([s]),
    ):
        h, _ = new_heap(Heap, 4096)
        h.alloc(10)
        with pytest.raises(ValueError):
            call(h, Sneaky(16, h.close))
        assert h.closed


def test_free_many_argument_that_frees_a_listed_block(Heap):
    h, mem = new_heap(Heap, 4096)
    a, b = h.alloc(10), h.alloc(10)
    with pytest.raises(tlsf.InvalidOffsetError):
        h.free_many([a, Sneaky(b, lambda: h.free(a))])
    assert_consistent(h, {b: 10})
