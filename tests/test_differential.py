"""Differential test: the C core and the pure-Python twin run the same algorithm.

For the same configuration and the same calls they must return identical
offsets (or raise the same exception with the same message), list identical blocks in walk() and
report identical stats().
"""

from __future__ import annotations

import math
import random

import pytest
from conftest import Lockstep, assert_consistent, random_align

OPS = 100_000
WALK_EVERY = 1_000
KiB, MiB = 1 << 10, 1 << 20

CONFIGS = [
    # (capacity, sl_len, pools: None = one pool over the whole buffer)
    (4 * KiB, 1, None),
    (64 * KiB, 4, None),
    (256 * KiB, 2, None),
    (MiB, 32, None),
    (MiB, 64, None),
    (16 * MiB, 16, None),
    (100_003, 8, None),
    (512 * KiB + 7, 64, None),
    (1_000_037, 32, [(600_000, 300_001), (8, 200_000), (250_003, 100_000)]),
]


def random_size(rng: random.Random, capacity: int) -> int:
    r = rng.random()
    if r < 0.3:
        return rng.randrange(0, 64)
    if r < 0.98:
        return int(2 ** rng.uniform(0, math.log2(capacity)))
    return rng.choice([capacity, capacity + 1, 2**63, 2**64 - 1, 2**64])


@pytest.mark.parametrize(("capacity", "sl_len", "pools"), CONFIGS)
def test_c_and_python_agree(both, capacity, sl_len, pools):
    CHeap, PyHeap = both  # noqa: N806
    rng = random.Random(capacity * 131 + sl_len)
    mem_c, mem_py = bytearray(capacity), bytearray(capacity)
    c = CHeap(mem_c, sl_len=sl_len, pool=pools is None)
    py = PyHeap(mem_py, sl_len=sl_len, pool=pools is None)
    call = Lockstep(c, py)
    ends = []
    for off, size in pools or []:
        taken = call("insert_free_block", off, size)
        assert taken > 0
        ends.append(off + taken)
    call.compare()

    batch = hasattr(c, "alloc_many")  # checked in test_batch.py
    live: list[int] = []
    tags: dict[int, bytes] = {}  # 8 bytes written at the start of each allocation
    for i in range(OPS):
        r = rng.random()
        if r < 0.40 or not live:
            off = call("alloc", random_size(rng, capacity), random_align(rng))
            if isinstance(off, int):
                live.append(off)
                tags[off] = mem_c[off : off + 8] = mem_py[off : off + 8] = rng.randbytes(8)
        elif r < 0.75:
            k = rng.randrange(len(live))
            live[k], live[-1] = live[-1], live[k]
            assert call("free", off := live.pop()) is None
            del tags[off]
        elif r < 0.95:
            k = rng.randrange(len(live))
            size = 0 if rng.random() < 0.05 else random_size(rng, capacity)
            new = call("realloc", live[k], size)
            if isinstance(new, int):
                tag = tags.pop(live[k])[:size]
                assert mem_c[new : new + len(tag)] == mem_py[new : new + len(tag)] == tag
                live[k] = new
                tags[new] = mem_c[new : new + 8] = mem_py[new : new + 8] = rng.randbytes(8)
        elif r < 0.97:
            call("usable_size", rng.choice(live))
        elif r < 0.98 and batch:
            if rng.random() < 0.5:
                sizes = [random_size(rng, capacity) // 8 for _ in range(rng.randrange(1, 9))]
                offs = call("alloc_many", sizes, random_align(rng))
                if not isinstance(offs, tuple):  # (error class, message)
                    live += offs
                    for off in offs:
                        tags[off] = mem_c[off : off + 8] = mem_py[off : off + 8] = rng.randbytes(8)
            else:
                rng.shuffle(live)
                k = rng.randrange(1, min(len(live), 8) + 1)
                victims, live[:] = live[:k], live[k:]
                assert call("free_many", victims) is None
                for off in victims:
                    del tags[off]
        elif r < 0.993:
            off = rng.randrange(-16, capacity + 16)  # almost always invalid
            if call("free", off) is None:
                live.remove(off)
                del tags[off]
        elif ends:
            k = rng.randrange(len(ends))
            added = call("append_free_block", ends[k], rng.randrange(0, 4096))
            if isinstance(added, int):
                ends[k] += added
        if i % WALK_EVERY == 0:
            call.compare()
    call.compare()
    assert len(live) == c.stats().allocations
    c.check()
    py.check()
    assert_consistent(c)
    assert_consistent(py)
