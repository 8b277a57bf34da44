"""rlsf semantics: realloc strategy, coalescing, pools, and what a heap can hold."""

from __future__ import annotations

import random

import pytest
from conftest import (
    GRAN,
    assert_consistent,
    heap_and_flex_fixture,
    is_flex,
    make_flex,
    new_heap,
    pattern,
    round_down,
    snapshot,
)

import tlsf
from tlsf import BlockInfo

# The Heap contract holds for FlexHeap too: every test here runs for both types.
Heap = heap_and_flex_fixture()


KiB, MiB = 1 << 10, 1 << 20
SL_LENS = [1, 2, 4, 8, 16, 32, 64]


def fill(mem, off, serial, n):
    data = pattern(serial, n)
    mem[off : off + n] = data
    return data


# ---------------------------------------------------------------- realloc


def test_realloc_shrinks_in_place(Heap):
    h, mem = new_heap(Heap, 64 * KiB)
    a = h.alloc(1000)
    data = fill(mem, a, 1, 1000)
    h.alloc(10)  # a used next block
    assert h.realloc(a, 100) == a
    assert h.usable_size(a) == 112
    assert mem[a : a + 100] == data[:100]
    assert list(h.walk())[:3] == [
        BlockInfo(0, 128, True),
        BlockInfo(128, 1024 - 128, False),  # the tail went back to the free lists
        BlockInfo(1024, 32, True),
    ]
    assert h.realloc(a, 100) == a  # same size: nothing moves
    assert h.realloc(a, 0) == a  # realloc to 0 keeps a minimum block
    assert h.usable_size(a) == 16
    assert list(h.walk())[:2] == [BlockInfo(0, 32, True), BlockInfo(32, 1024 - 32, False)]
    assert mem[a : a + 16] == data[:16]
    assert_consistent(h)


def test_realloc_shrink_absorbs_small_tail(Heap):
    h, mem = new_heap(Heap, 64 * KiB)
    a = h.alloc(100)  # usable 112, block 128
    h.alloc(10)
    assert h.realloc(a, 90) == a  # a 16-byte tail cannot be a block: it stays inside
    assert h.usable_size(a) == 112
    assert list(h.walk())[0] == BlockInfo(0, 128, True)


def test_realloc_grows_into_free_next_block(Heap):
    h, mem = new_heap(Heap, 64 * KiB)
    a, b, c = h.alloc(100), h.alloc(100), h.alloc(100)
    data = fill(mem, a, 2, 100)
    h.free(b)
    assert h.realloc(a, 200) == a  # 128 + 128 >= 224: stays, splits the rest off
    assert h.usable_size(a) == 208
    assert mem[a : a + 100] == data
    assert list(h.walk())[:3] == [
        BlockInfo(0, 224, True),
        BlockInfo(224, 32, False),
        BlockInfo(256, 128, True),
    ]
    assert h.realloc(a, 230) == a  # takes the whole 32-byte free block
    assert list(h.walk())[:2] == [BlockInfo(0, 256, True), BlockInfo(256, 128, True)]
    assert mem[a : a + 100] == data
    assert_consistent(h, {a: 230, c: 100})


def test_realloc_grows_into_the_tail(Heap):
    h, mem = new_heap(Heap, 64 * KiB)
    a = h.alloc(100)
    data = fill(mem, a, 3, 100)
    assert h.realloc(a, 60_000) == a
    assert mem[a : a + 100] == data
    assert_consistent(h, {a: 60_000})


def skip_crash_safe(Heap):  # noqa: N803
    if Heap.__name__ == "SharedHeap":
        pytest.skip("a SharedHeap is crash-safe: a moving realloc never moves into the previous block")


def test_realloc_moves_back_into_free_previous_block(Heap):
    skip_crash_safe(Heap)
    h, mem = new_heap(Heap, 64 * KiB)
    a, b, c = h.alloc(100), h.alloc(100), h.alloc(100)  # blocks at 0, 128, 256
    data = fill(mem, b, 4, 112)
    h.free(a)
    new = h.realloc(b, 150)  # needs 176 bytes: 128 free before + 128 own
    assert new == a < b  # moved backwards
    assert mem[new : new + 112] == data
    assert list(h.walk())[:4] == [
        BlockInfo(0, 176, True),
        BlockInfo(176, 80, False),
        BlockInfo(256, 128, True),
        BlockInfo(384, 65504 - 384, False),
    ]
    assert_consistent(h, {new: 150, c: 100})


def test_realloc_moves_back_using_both_free_neighbours(Heap):
    skip_crash_safe(Heap)
    h, mem = new_heap(Heap, 64 * KiB)
    a, b, c, d = (h.alloc(100) for _ in range(4))  # blocks at 0, 128, 256, 384
    data = fill(mem, b, 5, 112)
    h.free(a)
    h.free(c)
    new = h.realloc(b, 300)  # 320 bytes: more than b + c (256), not more than a + b + c
    assert new == a
    assert mem[new : new + 112] == data
    assert list(h.walk())[:3] == [
        BlockInfo(0, 320, True),
        BlockInfo(320, 64, False),
        BlockInfo(384, 128, True),
    ]
    assert_consistent(h, {new: 300, d: 100})


def test_realloc_prefers_next_block_over_previous(Heap):
    h, mem = new_heap(Heap, 64 * KiB)
    a, b, c, d = (h.alloc(100) for _ in range(4))
    h.free(a)
    h.free(c)
    assert h.realloc(b, 200) == b  # fits into b + c: does not move


def test_realloc_moves_elsewhere(Heap):
    h, mem = new_heap(Heap, 64 * KiB)
    a, b, c = h.alloc(100), h.alloc(100), h.alloc(100)  # blocks at 0, 128, 256
    data = fill(mem, b, 6, 112)
    h.free(a)  # 128 free bytes before b: not enough for 1008
    new = h.realloc(b, 1000)
    assert new == 400  # the first fit after c
    assert mem[new : new + 112] == data
    assert list(h.walk())[:4] == [
        BlockInfo(0, 256, False),  # the old block merged with the free one before it
        BlockInfo(256, 128, True),
        BlockInfo(384, 1024, True),
        BlockInfo(1408, 65504 - 1408, False),
    ]
    assert_consistent(h, {new: 1000, c: 100})


def test_realloc_with_used_neighbours_moves(Heap):
    h, mem = new_heap(Heap, 64 * KiB)
    a, b, c = h.alloc(100), h.alloc(100), h.alloc(100)
    data = fill(mem, b, 7, 112)
    new = h.realloc(b, 1000)
    assert new > c
    assert mem[new : new + 112] == data
    assert list(h.walk())[1] == BlockInfo(128, 128, False)
    assert_consistent(h, {a: 100, new: 1000, c: 100})


@pytest.mark.parametrize("align", [64, 256, 4096])
def test_realloc_move_back_keeps_alignment(Heap, align):
    h, mem = new_heap(Heap, 256 * KiB)
    blocks = [h.alloc(3000, align=align) for _ in range(4)]
    data = fill(mem, blocks[2], 8, 3000)
    h.free(blocks[1])
    new = h.realloc(blocks[2], 5000)
    assert new % align == 0
    assert mem[new : new + 3000] == data
    assert_consistent(h, {blocks[0]: 3000, new: 5000, blocks[3]: 3000})


# ------------------------------------------------------------- coalescing


@pytest.mark.parametrize("seed", range(6))
def test_freeing_everything_leaves_one_free_block(Heap, seed):
    rng = random.Random(seed)
    cap = rng.choice([64 * KiB, 100_003, 256 * KiB])
    h, mem = new_heap(Heap, cap, sl_len=rng.choice(SL_LENS))
    fresh = list(h.walk())
    live = []
    for _ in range(2000):
        if live and rng.random() < 0.45:
            h.free(live.pop(rng.randrange(len(live))))
        elif live and rng.random() < 0.2:
            k = rng.randrange(len(live))
            try:
                live[k] = h.realloc(live[k], rng.randrange(0, 5000))
            except tlsf.OutOfMemoryError:
                pass
        else:
            try:
                live.append(h.alloc(rng.randrange(0, 3000), align=2 ** rng.randrange(0, 9)))
            except tlsf.OutOfMemoryError:
                pass
    assert_consistent(h)
    rng.shuffle(live)
    for off in live:
        h.free(off)
    assert list(h.walk()) == fresh
    assert h.stats() == (0, fresh[0].size, fresh[0].size - GRAN, 0, 1)


def test_free_coalesces_both_sides(Heap):
    h, mem = new_heap(Heap, 64 * KiB)
    a, b, c, d = (h.alloc(100) for _ in range(4))
    h.free(a)
    h.free(c)
    assert [blk.used for blk in h.walk()] == [False, True, False, True, False]
    h.free(b)
    assert list(h.walk())[:2] == [BlockInfo(0, 384, False), BlockInfo(384, 128, True)]
    h.free(d)
    assert list(h.walk()) == [BlockInfo(0, 65504, False)]


# ------------------------------------------------------------------ pools


def test_insert_free_block(Heap):
    h, mem = new_heap(Heap, 8192, pool=False)
    assert h.insert_free_block(8, 1000) == 1000  # [16, 1008): rounded inwards
    assert list(h.walk()) == [BlockInfo(16, 1008 - 16 - 32, False)]
    assert h.insert_free_block(2000, 50) == 0  # [2000, 2048) is smaller than 64 bytes
    assert h.insert_free_block(3000, 63) == 0
    assert h.insert_free_block(4000, 5) == 0
    assert len(list(h.walk())) == 1
    assert h.insert_free_block(4096, 64) == 64  # the smallest pool
    assert h.insert_free_block(1008, 1000) == 992  # right after the first pool: [1008, 2000)
    assert list(h.walk()) == [
        BlockInfo(16, 960, False),
        BlockInfo(1008, 960, False),
        BlockInfo(4096, 32, False),
    ]
    assert_consistent(h, capacity=8192)


def test_insert_free_block_errors(Heap):
    h, mem = new_heap(Heap, 8192, pool=False)
    h.insert_free_block(1024, 1024)  # [1024, 2048)
    before = snapshot(h, mem)
    bad = [
        (1000, 100),  # overlaps the start
        (2000, 100),  # overlaps the end
        (1024, 1024),  # the same range
        (0, 8192),  # around
        (8000, 193),  # beyond the end of memory
        (8192, 64),
        (8193, 0),
        (0, 8193),
        (-16, 100),
        (100, -100),
        (-1, -1),
        (2**64, 64),
        (64, 2**64),
        (2**64 - 16, 32),
        (2**70, 2**70),
    ]
    for off, size in bad:
        with pytest.raises(ValueError):
            h.insert_free_block(off, size)
        assert snapshot(h, mem) == before, (off, size)


def test_insert_whole_and_tiny(Heap):
    h, mem = new_heap(Heap, 100_003, pool=False)
    assert h.insert_free_block(0, 100_003) == 100_000
    assert list(h.walk()) == [BlockInfo(0, 99_968, False)]
    h2, _ = new_heap(Heap, 100, pool=False)
    assert h2.insert_free_block(0, 100) == 96
    assert h2.insert_free_block(96, 4) == 0


def test_pools_walk_in_address_order(Heap):
    h, mem = new_heap(Heap, 64 * KiB, pool=False)
    for off in (40_960, 0, 20_480, 8192):
        assert h.insert_free_block(off, 4096) == 4096
    assert [b.offset for b in h.walk()] == [0, 8192, 20_480, 40_960]
    assert all(b.size == 4064 and not b.used for b in h.walk())
    offs = [h.alloc(2000) for _ in range(8)]  # two per pool
    with pytest.raises(tlsf.OutOfMemoryError):
        h.alloc(2100)
    pools = sorted({off // 4096 for off in offs})
    assert pools == [0, 2, 5, 10]
    assert_consistent(h, {off: 2000 for off in offs})
    for off in offs:
        h.free(off)
    assert [b.offset for b in h.walk()] == [0, 8192, 20_480, 40_960]
    assert_consistent(h, {})  # several pools, each one free block


def test_append_free_block_coalesces_with_free_last_block(Heap):
    h, mem = new_heap(Heap, 8192, pool=False)
    assert h.insert_free_block(8, 1000) == 1000  # pool [16, 1008)
    assert h.append_free_block(1008, 500) == 496  # rounded down to 16
    assert list(h.walk()) == [BlockInfo(16, 1504 - 16 - 32, False)]
    assert h.append_free_block(1504, 31) == 0  # fewer than 32 bytes: nothing added
    assert h.append_free_block(1504, 32) == 32
    assert list(h.walk()) == [BlockInfo(16, 1536 - 16 - 32, False)]
    a = h.alloc(1400)
    assert a == 32
    assert_consistent(h, {a: 1400})


def test_append_free_block_after_used_last_block(Heap):
    h, mem = new_heap(Heap, 8192, pool=False)
    h.insert_free_block(0, 1024)
    a = h.alloc(1024 - 32 - 16)  # takes the whole pool
    assert list(h.walk()) == [BlockInfo(0, 992, True)]
    assert h.append_free_block(1024, 1024) == 1024
    assert list(h.walk()) == [BlockInfo(0, 992, True), BlockInfo(992, 1024, False)]
    b = h.alloc(1000)
    assert b == 992 + 16
    assert_consistent(h, {a: 1024 - 48, b: 1000})


def test_append_whole_buffer_in_steps(Heap):
    h, mem = new_heap(Heap, 64 * KiB, pool=False)
    end = h.insert_free_block(0, 64)
    while end < 64 * KiB:
        end += h.append_free_block(end, min(4096, 64 * KiB - end))
    assert list(h.walk()) == [BlockInfo(0, 64 * KiB - 32, False)]
    assert h.alloc(64 * KiB - 48) == 16


def test_append_free_block_errors(Heap):
    h, mem = new_heap(Heap, 8192, pool=False)
    h.insert_free_block(0, 1024)  # [0, 1024)
    h.insert_free_block(2048, 1024)  # [2048, 3072)
    before = snapshot(h, mem)
    bad = [
        (1008, 100),  # not the end of a pool
        (1040, 100),  # not the end of a pool
        (0, 100),  # a pool's start
        (1024, 1040),  # runs into the second pool
        (1024, 2048),
        (3072, 5121),  # beyond the end of memory
        (8192, 64),  # no pool ends there, and outside memory
        (5000, 100),
        (-16, 100),
        (1024, -1),
        (2**64, 64),
        (1024, 2**64),
        (2**70, 2**70),
    ]
    for off, size in bad:
        with pytest.raises(ValueError):
            h.append_free_block(off, size)
        assert snapshot(h, mem) == before, (off, size)
    assert h.append_free_block(1024, 1024) == 1024  # exactly up to the next pool
    assert h.append_free_block(3072, 5120) == 5120  # exactly up to the end of memory
    assert list(h.walk()) == [BlockInfo(0, 2016, False), BlockInfo(2048, 6112, False)]


def test_append_onto_full_pool_heap(Heap):
    h, mem = new_heap(Heap, 8192, pool=True)
    if is_flex(Heap):
        pytest.skip(f"a {Heap.__name__} has no pool calls")
    with pytest.raises(ValueError):
        h.append_free_block(8192, 16)


# ------------------------------------------------------------- capacity


@pytest.mark.parametrize("sl_len", SL_LENS)
def test_one_big_allocation(Heap, sl_len):
    h, mem = new_heap(Heap, MiB, sl_len=sl_len)
    off = h.alloc(MiB - 256)
    assert h.usable_size(off) >= MiB - 256
    h.free(off)
    assert h.alloc(MiB - 48) == 16  # every byte of the single free block


def _fill_free_refill(Heap, capacity, sl_len, rng):  # noqa: N803
    h = make_flex(Heap, capacity, sl_len=sl_len)
    offs = []
    while True:
        try:
            offs.append(h.alloc(3000))
        except tlsf.OutOfMemoryError:
            break
    assert len(offs) == (round_down(capacity) - 32) // 3024  # largest_free's promise
    freed = rng.sample(offs, len(offs) // 3)
    for off in freed:
        h.free(off)
    for i in range(len(freed)):
        try:
            h.alloc(3000)
        except tlsf.OutOfMemoryError:
            raise AssertionError(
                f"capacity={capacity} sl_len={sl_len}: {len(freed)} blocks freed, only {i} fit again"
            ) from None
    h.check()
    h.close()


@pytest.mark.parametrize("seed", range(3))
def test_freed_blocks_fit_again(Heap, seed):
    """Fill with 3,000 B blocks, free a random third, take as many again: many capacities."""
    rng = random.Random(seed)
    for k in range(70):
        capacity = rng.randrange(100_000, 2_000_000)
        _fill_free_refill(Heap, capacity, SL_LENS[(k + seed) % len(SL_LENS)], rng)
