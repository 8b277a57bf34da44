"""Differential test of OffsetAllocator: the C engine and the twin agree exactly.

For the same configuration and the same calls they must return identical
offsets and resize results (or raise the same exception with the same message), list identical
blocks in walk() and report identical stats().
"""

from __future__ import annotations

import math
import random

import pytest
from conftest import Lockstep, assert_offset_consistent, random_align

OPS = 100_000
WALK_EVERY = 1_000
KiB, MiB = 1 << 10, 1 << 20

CONFIGS = [
    # (capacity, sl_len, granularity, extra ranges added later: (offset, size))
    (4 * KiB, 1, 1, []),
    (64 * KiB, 4, 1, []),
    (MiB, 32, 1, []),
    (MiB, 64, 16, []),
    (16 * MiB, 16, 256, []),
    (100_003, 8, 1, [(100_003, 5000), (200_000, 4096), (150_000, 50_000)]),
    (0, 32, 16, [(2**40, MiB), (2**40 + MiB, MiB), (4096, 64 * KiB), (2**63, 2**20)]),
    (2**64 - 1, 32, 1, []),
]


def random_size(rng: random.Random, capacity: int) -> int:
    r = rng.random()
    if r < 0.3:
        return rng.randrange(0, 64)
    if r < 0.98:
        return int(2 ** rng.uniform(0, math.log2(min(max(capacity, 2), 2**40))))
    return rng.choice([capacity, capacity + 1, 2**63, 2**64 - 1, 2**64])


@pytest.mark.parametrize(("capacity", "sl_len", "granularity", "ranges"), CONFIGS)
def test_c_and_python_agree(both_offset, capacity, sl_len, granularity, ranges):
    COffset, PyOffset = both_offset  # noqa: N806
    rng = random.Random(capacity * 131 + sl_len * 7 + granularity)
    c = COffset(capacity, sl_len=sl_len, granularity=granularity)
    py = PyOffset(capacity, sl_len=sl_len, granularity=granularity)
    call = Lockstep(c, py)
    pending = list(ranges)
    live: list[int] = []
    for i in range(OPS):
        cap = max(c.capacity, 1)
        r = rng.random()
        if r < 0.40 or not live:
            off = call("alloc", random_size(rng, cap), random_align(rng))
            if isinstance(off, int):
                live.append(off)
        elif r < 0.75:
            k = rng.randrange(len(live))
            live[k], live[-1] = live[-1], live[k]
            assert call("free", live.pop()) is None
        elif r < 0.93:
            call("resize", rng.choice(live), 0 if rng.random() < 0.05 else random_size(rng, cap))
        elif r < 0.95:
            call("usable_size", rng.choice(live))
        elif r < 0.97:
            if rng.random() < 0.5:
                sizes = [random_size(rng, cap) // 8 for _ in range(rng.randrange(1, 9))]
                offs = call("alloc_many", sizes, random_align(rng))
                if not isinstance(offs, tuple):  # (error class, message)
                    live += offs
            else:
                rng.shuffle(live)
                k = rng.randrange(1, min(len(live), 8) + 1)
                victims, live[:] = live[:k], live[k:]
                assert call("free_many", victims) is None
        elif r < 0.995:
            off = rng.randrange(-16, min(cap, 2**62) + 16)  # almost always invalid
            if call("free", off) is None:
                live.remove(off)
        elif r < 0.998 and pending:
            call("add_range", *pending.pop(0))
        elif r >= 0.9995:
            call("reset")
            live.clear()
        if i % WALK_EVERY == 0:
            call.compare()
    call.compare()
    assert len(live) == c.stats().allocations
    assert_offset_consistent(c)
    assert_offset_consistent(py)
