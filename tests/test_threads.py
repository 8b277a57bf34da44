"""Several threads allocating and freeing on one heap at the same time."""

from __future__ import annotations

import random
import sys
import threading

from conftest import assert_consistent, heap_and_flex_fixture, new_heap, pattern

import tlsf

Heap = heap_and_flex_fixture()  # threads on a FlexHeap and a SharedHeap too

THREADS = 4
OPS = 3000


def test_concurrent_alloc_free(Heap):
    h, mem = new_heap(Heap, 1 << 20, sl_len=16)
    barrier = threading.Barrier(THREADS)
    results: dict[int, dict[int, bytes]] = {}
    errors: list[BaseException] = []

    def worker(tid: int) -> None:
        rng = random.Random(tid)
        mine: dict[int, bytes] = {}
        try:
            barrier.wait()
            for i in range(OPS):
                r = rng.random()
                if mine and r < 0.45:
                    off = rng.choice(list(mine))
                    data = mine.pop(off)
                    assert mem[off : off + len(data)] == data, f"thread {tid}: data lost"
                    h.free(off)
                elif mine and r < 0.6:
                    off = rng.choice(list(mine))
                    data = mine.pop(off)
                    try:
                        new = h.realloc(off, rng.randrange(0, 4000))
                    except tlsf.OutOfMemoryError:
                        mine[off] = data
                        continue
                    keep = min(len(data), h.usable_size(new))
                    assert mem[new : new + keep] == data[:keep], f"thread {tid}: realloc lost"
                    mine[new] = data[:keep]
                else:
                    try:
                        off = h.alloc(rng.randrange(0, 4000), align=2 ** rng.randrange(0, 8))
                    except tlsf.OutOfMemoryError:
                        continue
                    data = pattern(tid * OPS + i, rng.randrange(1, 17))
                    mem[off : off + len(data)] = data
                    mine[off] = data
            results[tid] = mine
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    if errors:
        raise errors[0]
    live = {off: len(d) for mine in results.values() for off, d in mine.items()}
    assert sum(len(m) for m in results.values()) == len(live)  # nobody got the same offset
    assert_consistent(h, live)
    st = h.stats()
    assert st.allocations == len(live)
    assert st.allocated_bytes == sum(h.usable_size(off) for off in live)
    for mine in results.values():
        for off, data in mine.items():
            assert mem[off : off + len(data)] == data
            h.free(off)
    assert [b.used for b in h.walk()] == [False]
