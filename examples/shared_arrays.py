"""Worker processes fill one numpy array that lives in a tlsf.SharedHeap.

The parent creates a shared heap (a named POSIX shared memory segment) and
makes a float64 array in it with numpy itself: inside `tlsf.numpy.use(heap)`
numpy takes every new array's data from the heap. It gives a
multiprocessing Pool the heap and the array's offset (`tlsf.numpy.offset`).
A SharedHeap pickles as its name and unpickles by attaching the segment, so
each worker gets the heap in its task arguments, wraps the same offset with
`heap.ndarray_at` (no copy) and fills its slice in place. The parent then
reads every value the workers wrote; dropping the array frees it into the
heap, and closing the heap in the process that created it removes the
segment's name, so nothing is left in /dev/shm. This works with each start
method: fork, spawn and forkserver.

Nothing can dangle: close() raises BufferError while an array still uses
the heap (the handler's arrays, and those of ndarray_at, which hold a view),
so drop the arrays first.

    python examples/shared_arrays.py [n] [workers] [fork|spawn|forkserver]

Needs: numpy (pip install 'tlsf[numpy]'; in a checkout, pip install '.[examples]'),
and the C extension: SharedHeap raises NotImplementedError with TLSF_PURE_PYTHON=1.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

import numpy as np

import tlsf
import tlsf.numpy

DTYPE = np.dtype(np.float64)
ALIGN = 64  # the array starts on a cache line


def value(i: np.ndarray) -> np.ndarray:
    """What element i of the array holds (sqrt is correctly rounded: the same in every process)."""
    return np.sqrt(i.astype(DTYPE))


def fill_slice(heap: tlsf.SharedHeap, offset: int, n: int, start: int, stop: int) -> int:
    """A worker's task: write value(i) into a[start:stop] of the shared array at offset.

    `heap` arrives pickled: unpickling it attached the segment in this process.
    """
    a = heap.ndarray_at(offset, n, DTYPE)  # the allocation's bytes as an array, writable, no copy
    a[start:stop] = value(np.arange(start, stop))
    del a  # the array holds a view of the heap: drop it first,
    heap.close()  # and then the heap may close (it only detaches: the name is the creator's)
    return stop - start


def fill_in_parallel(n: int, workers: int = 4, method: str = "spawn", name: str | None = None) -> np.ndarray:
    """Fill an n-element float64 array in shared memory with `workers` processes
    started with `method`; return a private copy of it. `name`: the segment's
    (/dev/shm/<name>), random when None."""
    # max_size bounds the heap; it is sparse, so only the pages used cost memory
    with tlsf.SharedHeap.create(name, max_size=n * DTYPE.itemsize + (16 << 20)) as heap:
        with tlsf.numpy.use(heap, align=ALIGN):
            a = np.empty(n, DTYPE)  # numpy's own array, its data in the heap
        offset = tlsf.numpy.offset(heap, a)  # valid in every process
        bounds = [n * k // workers for k in range(workers + 1)]
        tasks = [(heap, offset, n, lo, hi) for lo, hi in zip(bounds, bounds[1:])]
        with multiprocessing.get_context(method).Pool(workers) as pool:  # leaving it stops the workers
            # bounded: a Pool waits forever for the task of a worker that died
            done = sum(pool.starmap_async(fill_slice, tasks).get(timeout=120))
        assert done == n
        result = a.copy()  # a copy in ordinary memory outlives the heap
        del a  # frees the array into the heap
        heap.check()
    # closed here: the segment's name is removed (the creator's object closed it)
    return result


def main(n: int = 1_000_000, workers: int = 4, method: str = "spawn") -> None:
    name = f"tlsf-example-{os.getpid()}"
    a = fill_in_parallel(n, workers, method, name)
    ok = np.array_equal(a, value(np.arange(n)))
    print(f"{workers} {method} workers filled {n} float64 in shared memory: {'ok' if ok else 'WRONG'}")
    try:  # closing the heap removed the segment's name: nobody can attach it any more
        tlsf.SharedHeap.attach(name).close()
        print(f"segment {name}: LEFT BEHIND")
        ok = False
    except FileNotFoundError:
        print(f"segment {name}: removed")
    print(f"a[:4] = {a[:4]}, a[-1] = {float(a[-1])!r}, sum = {a.sum():.6f}")

    # what happens when an array is still alive: close() refuses
    heap = tlsf.SharedHeap.create(f"{name}-demo", max_size=1 << 20)
    with tlsf.numpy.use(heap):
        a = np.zeros(8)
    try:
        heap.close()
    except BufferError as e:
        print(f"close() with an array alive: BufferError: {e}")
    del a
    heap.close()
    print(f"after del a: closed={heap.closed}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        int(args[0]) if len(args) > 0 else 1_000_000,
        int(args[1]) if len(args) > 1 else 4,
        args[2] if len(args) > 2 else "spawn",
    )
