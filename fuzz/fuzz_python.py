"""Atheris harness over the Python API: the safety contract under fuzzing.

The input is a program of operations on a small tlsf.Heap, scribbling over
the arena included, on a tlsf.FlexHeap in a file (growth, trim, scribbling,
reopening with recover=True), on a tlsf.SharedHeap (the same, switching to a
newly attached object instead of reopening; C core only), or on a
tlsf.OffsetAllocator (its first byte chooses).
Every call must succeed or raise one of the documented exceptions; the
interpreter must never crash, and bytes outside the heap's memory (guards
around it) must never change. The OffsetAllocator's metadata is out of a
program's reach, so its check() must always pass and every allocation must lie
inside the ranges given to it.

    python -m pip install atheris
    python fuzz/fuzz_python.py -max_total_time=60 [CORPUS_DIR]
    TLSF_PURE_PYTHON=1 python fuzz/fuzz_python.py ...   # the twin, coverage-guided

The C extension is not built for coverage, so against the C core the search
is guided by the harness's own branches only; the twin mirrors the core and is
fully instrumented.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    import tlsf
    import tlsf.pure

ALLOWED = (tlsf.CorruptionError, tlsf.InvalidOffsetError, tlsf.OutOfMemoryError, ValueError)
GUARD = 64
TMP = tempfile.mkdtemp(prefix="tlsf-fuzz-")


@atheris.instrument_func  # the C core is not instrumented: the harness's branches guide the search
def run(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind == 0:
        run_offset(fdp)
    elif kind == 1:
        run_heap(fdp)
    else:
        run_flex(fdp, shared=kind == 3 and tlsf.IMPLEMENTATION == "c")


@atheris.instrument_func
def run_flex(fdp: atheris.FuzzedDataProvider, shared: bool) -> None:
    """A file heap or a SharedHeap: every call succeeds or raises a documented
    exception; reopening (recover=True) after any scribbling succeeds or is a
    CorruptionError; a SharedHeap goes on through another attached object."""
    max_size = fdp.ConsumeIntInRange(64, 1 << 20)
    trim = fdp.ConsumeIntInRange(0, 1 << 16)
    path = os.path.join(TMP, "fuzz.tlsf")
    if shared:  # `creator` keeps the name until the end
        heap = creator = tlsf.SharedHeap.create(max_size=max_size, trim_threshold=trim)
    else:
        if os.path.exists(path):
            os.unlink(path)
        heap = tlsf.FlexHeap.create(path, max_size=max_size, trim_threshold=trim)
    live: list[int] = []
    for _ in range(fdp.ConsumeIntInRange(0, 48)):
        op = fdp.ConsumeIntInRange(0, 7)
        try:
            if op == 0:
                off = heap.alloc(fdp.ConsumeIntInRange(0, max_size + 64), 1 << fdp.ConsumeIntInRange(0, 14))
                assert 0 <= off and off + heap.usable_size(off) <= heap.size <= max_size
                live.append(off)
            elif op == 1 and live:
                heap.free(live.pop(fdp.ConsumeIntInRange(0, len(live) - 1)))
            elif op == 2 and live:
                k = fdp.ConsumeIntInRange(0, len(live) - 1)
                live[k] = heap.realloc(live[k], fdp.ConsumeIntInRange(0, max_size))
            elif op == 3:
                arena = heap._arena()
                at = fdp.ConsumeIntInRange(0, max(0, len(arena) - 1))
                chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 16))[: len(arena) - at]
                arena[at : at + len(chunk)] = chunk
                arena.release()
            elif op == 4:
                heap.trim()
            elif op == 5:
                heap.check()
            elif op == 6:
                heap.free_many(live)
                live.clear()
            elif op == 7 and shared:
                other = tlsf.SharedHeap.attach(creator.name, trim_threshold=trim)
                other.root, heap = heap.root, other
            elif op == 7:
                heap.close()
                live.clear()
                heap = tlsf.FlexHeap.open(path, recover=fdp.ConsumeBool())
        except ALLOWED:
            live.clear()
        except BufferError:
            pass
        if heap.closed:  # a reopening refused the file: done with this program
            return
    heap.close()
    if shared:
        creator.close()  # removes the segment's name


@atheris.instrument_func
def run_heap(fdp: atheris.FuzzedDataProvider) -> None:
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


@atheris.instrument_func
def run_offset(fdp: atheris.FuzzedDataProvider) -> None:
    granularity = 1 << fdp.ConsumeIntInRange(0, 12)
    capacity = fdp.ConsumeIntInRange(0, 1 << 20) & -granularity
    a = tlsf.OffsetAllocator(capacity, sl_len=1 << fdp.ConsumeIntInRange(0, 6), granularity=granularity)
    ranges = [(0, a.capacity)] if a.capacity else []
    live: list[int] = []

    def inside(off: int) -> bool:  # within one range, touching ranges merged (they coalesce)
        end = off + a.usable_size(off)
        merged: list[list[int]] = []
        for start, stop in sorted(ranges):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], stop)
            else:
                merged.append([start, stop])
        return any(start <= off and end <= stop for start, stop in merged)

    for _ in range(fdp.ConsumeIntInRange(0, 64)):
        op = fdp.ConsumeIntInRange(0, 9)
        try:
            if op == 0:
                off = a.alloc(fdp.ConsumeIntInRange(0, 1 << 21), 1 << fdp.ConsumeIntInRange(0, 63))
                assert inside(off), off
                live.append(off)
            elif op == 1 and live:
                a.free(live.pop(fdp.ConsumeIntInRange(0, len(live) - 1)))
            elif op == 2:
                a.free(fdp.ConsumeIntInRange(-8, 1 << 21))
            elif op == 3 and live:
                off = live[fdp.ConsumeIntInRange(0, len(live) - 1)]
                a.resize(off, fdp.ConsumeIntInRange(0, 1 << 21))
                assert inside(off), off
            elif op == 4:
                top = 2**64 - 1 if fdp.ConsumeBool() else 1 << 22  # anywhere, or near the first range
                at = fdp.ConsumeIntInRange(0, top)
                size = fdp.ConsumeIntInRange(0, 1 << 20)
                a.add_range(at, size)
                ranges.append((at, at + size))
            elif op == 5:
                sizes = [fdp.ConsumeIntInRange(0, 4096) for _ in range(fdp.ConsumeIntInRange(0, 8))]
                new = list(a.alloc_many(sizes, 1 << fdp.ConsumeIntInRange(0, 12)))
                assert all(inside(off) for off in new), new
                live.extend(new)
            elif op == 6 and live:
                k = fdp.ConsumeIntInRange(0, len(live))
                a.free_many(live[:k])
                del live[:k]
            elif op == 7:
                a.reset()
                live.clear()
            elif op == 8:
                blocks = list(a.walk())
                assert sum(b.size for b in blocks) == a.capacity
            elif op == 9:
                a.stats()
        except (tlsf.InvalidOffsetError, tlsf.OutOfMemoryError, ValueError):
            pass  # the call changed nothing
        a.check()


if __name__ == "__main__":
    atheris.Setup(sys.argv, run)
    atheris.Fuzz()
