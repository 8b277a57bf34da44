"""Atheris harness over the Python API: the safety contract under fuzzing.

The input is a program of operations on a small tlsf.Heap, scribbling over
the arena included. Every call must succeed or raise one of the documented
exceptions; the interpreter must never crash, and bytes outside the heap's
memory (guards around it) must never change.

    python -m pip install atheris
    python fuzz/fuzz_python.py -max_total_time=60 [CORPUS_DIR]
    TLSF_PURE_PYTHON=1 python fuzz/fuzz_python.py ...   # the twin, coverage-guided

The C extension is not built for coverage, so against the C core the search
is guided by the harness's own branches only; the twin mirrors the core and is
fully instrumented.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    import tlsf
    import tlsf.pure

ALLOWED = (tlsf.CorruptionError, tlsf.InvalidOffsetError, tlsf.OutOfMemoryError, ValueError)
GUARD = 64


def run(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    capacity = fdp.ConsumeIntInRange(0, 8192)
    sl_len = 1 << fdp.ConsumeIntInRange(0, 6)
    buf = bytearray(b"\xa5" * (capacity + 2 * GUARD))
    mem = memoryview(buf)[GUARD : GUARD + capacity]
    heap = tlsf.Heap(mem, sl_len=sl_len, pool=fdp.ConsumeBool())
    live: list[int] = []
    for _ in range(fdp.ConsumeIntInRange(0, 64)):
        op = fdp.ConsumeIntInRange(0, 11)
        try:
            if op == 0:
                off = heap.alloc(fdp.ConsumeIntInRange(0, capacity + 64), 1 << fdp.ConsumeIntInRange(0, 14))
                assert 0 <= off and off + heap.usable_size(off) <= capacity
                live.append(off)
            elif op == 1 and live:
                heap.free(live.pop(fdp.ConsumeIntInRange(0, len(live) - 1)))
            elif op == 2:
                heap.free(fdp.ConsumeIntInRange(-32, capacity + 32))
            elif op == 3 and live:
                k = fdp.ConsumeIntInRange(0, len(live) - 1)
                live[k] = heap.realloc(live[k], fdp.ConsumeIntInRange(0, capacity + 64))
                assert live[k] + heap.usable_size(live[k]) <= capacity
            elif op == 4 and capacity:
                # scribble anywhere in the arena: headers, sentinels, free space
                at = fdp.ConsumeIntInRange(0, capacity - 1)
                chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 16))
                mem[at : at + len(chunk)] = chunk[: capacity - at]
            elif op == 5:
                heap.check()
            elif op == 6:
                for block in heap.walk():
                    assert 0 <= block.offset and block.offset + block.size <= capacity
            elif op == 7:
                heap.stats()
            elif op == 8:
                sizes = [fdp.ConsumeIntInRange(0, 512) for _ in range(fdp.ConsumeIntInRange(0, 8))]
                live.extend(heap.alloc_many(sizes))
            elif op == 9 and live:
                k = fdp.ConsumeIntInRange(0, len(live))
                heap.free_many(live[:k])
                del live[:k]
            elif op == 10:
                heap.insert_free_block(fdp.ConsumeIntInRange(0, capacity), fdp.ConsumeIntInRange(0, capacity))
            elif op == 11 and live:
                v = heap.view(live[fdp.ConsumeIntInRange(0, len(live) - 1)])
                v[:1] = b"\x00"[: len(v)]
                v.release()
        except ALLOWED:
            if op in (1, 9):  # the offsets may have been freed before the error: forget them
                live.clear()
    heap.close()
    mem.release()
    if buf[:GUARD] != b"\xa5" * GUARD or buf[GUARD + capacity :] != b"\xa5" * GUARD:
        raise AssertionError("bytes outside the heap's memory changed")


if __name__ == "__main__":
    atheris.Setup(sys.argv, atheris.instrument_func(run))
    atheris.Fuzz()
