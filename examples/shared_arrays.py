"""Worker processes fill one numpy array that lives in a tlsf.SharedHeap.

The parent creates a shared heap (a named POSIX shared memory segment),
allocates a float64 array in it and gives a multiprocessing Pool the heap and
the array's offset. A SharedHeap pickles as its name and unpickles by
attaching the segment, so each worker gets the heap in its task arguments,
wraps the same offset with numpy (no copy: `numpy.frombuffer` over
`heap.view(offset, nbytes)`) and fills its slice in place. The parent then
reads every value the workers wrote, frees the array and closes the heap.
Closing the heap in the process that created it removes the segment's name,
so nothing is left in /dev/shm. This works with each start method: fork,
spawn and forkserver.

A view pins the mapping: close() raises BufferError while a memoryview of
the heap is alive, and a numpy array made over a view holds that view's
buffer. So release them in order: delete the array, then release the view
(`view.release()` raises BufferError while an array still uses it).

    python examples/shared_arrays.py [n] [workers] [fork|spawn|forkserver]

(C extension only: SharedHeap raises NotImplementedError with TLSF_PURE_PYTHON=1;
needs numpy.)
"""

from __future__ import annotations

import multiprocessing
import os
import sys

import numpy as np

import tlsf

DTYPE = np.dtype(np.float64)
ALIGN = 64  # the array starts on a cache line


def value(i: np.ndarray) -> np.ndarray:
    """What element i of the array holds (sqrt is correctly rounded: the same in every process)."""
    return np.sqrt(i.astype(DTYPE))


def fill_slice(heap: tlsf.SharedHeap, offset: int, n: int, start: int, stop: int) -> int:
    """A worker's task: write value(i) into a[start:stop] of the shared array at offset.

    `heap` arrives pickled: unpickling it attached the segment in this process.
    """
    view = heap.view(offset, n * DTYPE.itemsize)  # the allocation's bytes, writable, no copy
    a = np.frombuffer(view, dtype=DTYPE)
    a[start:stop] = value(np.arange(start, stop))
    del a  # the array holds the view's buffer: drop it first,
    view.release()  # then the view,
    heap.close()  # and then the heap may close (it only detaches: the name is the creator's)
    return stop - start


def fill_in_parallel(n: int, workers: int = 4, method: str = "spawn", name: str | None = None) -> np.ndarray:
    """Fill an n-element float64 array in shared memory with `workers` processes
    started with `method`; return a private copy of it. `name`: the segment's
    (/dev/shm/<name>), random when None."""
    nbytes = n * DTYPE.itemsize
    # max_size bounds the heap; it is sparse, so only the pages used cost memory
    with tlsf.SharedHeap.create(name, max_size=nbytes + (16 << 20)) as heap:
        offset = heap.alloc(nbytes, align=ALIGN)
        bounds = [n * k // workers for k in range(workers + 1)]
        tasks = [(heap, offset, n, lo, hi) for lo, hi in zip(bounds, bounds[1:])]
        with multiprocessing.get_context(method).Pool(workers) as pool:  # leaving it stops the workers
            # bounded: a Pool waits forever for the task of a worker that died
            done = sum(pool.starmap_async(fill_slice, tasks).get(timeout=120))
        assert done == n

        view = heap.view(offset, nbytes)
        a = np.frombuffer(view, dtype=DTYPE)
        result = a.copy()  # a copy outlives the heap; `a` itself must not
        del a
        view.release()
        heap.free(offset)
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

    # what happens when a view is still alive: close() refuses
    heap = tlsf.SharedHeap.create(f"{name}-demo", max_size=1 << 20)
    view = heap.view(heap.alloc(64, align=ALIGN))
    a = np.frombuffer(view, dtype=DTYPE)
    try:
        heap.close()
    except BufferError as e:
        print(f"close() with an array alive: BufferError: {e}")
    del a
    view.release()
    heap.close()
    print(f"after del a; view.release(): closed={heap.closed}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        int(args[0]) if len(args) > 0 else 1_000_000,
        int(args[1]) if len(args) > 1 else 4,
        args[2] if len(args) > 2 else "spawn",
    )
