"""tlsf.pure.block: Block, one allocation of a heap as an object that owns
it, and the heap methods that make numpy arrays of Blocks (mirrors
binding/block.c; see tlsf.Block).

A Block's bytes are exported as views of its heap (exported_view), each of
which keeps the block alive, so the allocation outlives every memoryview and
array over it and the heap cannot close under them. The buffer protocol
itself (memoryview(block)) needs Python 3.12 (PEP 688) in pure Python;
block.view() works everywhere."""

from __future__ import annotations

import sys
import weakref
from typing import Any

from .args import no_copy, size_arg
from .tlsf import HeapBase, exported_view


class Block:
    """One allocation of a heap that frees itself, made by heap.block(size,
    align=1) (calling the class raises TypeError); mirrors binding/block.c.

    Its bytes through the buffer protocol (Python 3.12+ here): memoryview(block),
    numpy.frombuffer(block); on every Python: block.view(). Freed by free(), at
    the end of a `with` block, or when the last reference goes."""

    __slots__ = ("__weakref__", "_exports", "_freed", "_heap", "_offset", "_size")
    _exports: list[weakref.ref[Any]]
    _freed: bool
    _heap: HeapBase
    _offset: int
    _size: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("type 'tlsf.pure.Block' is not an acceptable base type")

    def __new__(cls, *args: Any, **kwargs: Any) -> Block:
        raise TypeError("cannot create 'tlsf.pure.Block' instances")

    @classmethod
    def _of(cls, heap: HeapBase, offset: int, size: int) -> Block:
        b = object.__new__(cls)
        b._heap, b._offset, b._size, b._freed = heap, offset, size, False
        b._exports = []  # weak references to the exporters of view()
        return b

    def _release(self, defer: bool = False) -> None:
        """Frees the allocation unless it is freed or the heap closed (its
        memory went with it); defer: by the next new_block or Block.free."""
        if self._freed:
            return
        self._freed = True
        heap = self._heap
        heap._blocks -= 1
        if defer:
            _deferred.append((heap, self._offset))
        elif not heap.closed:
            heap.free(self._offset)

    def view(self) -> memoryview:
        """A writable memoryview of the block's bytes, as memoryview(block); it
        keeps the block alive."""
        if self._freed:
            raise ValueError("block is freed")
        heap = self._heap
        with heap._lock:
            heap._core()  # ValueError when closed
            self._exports = [r for r in self._exports if r() is not None]
            if len(heap._views) >= 64:
                heap._views = [r for r in heap._views if r() is not None]
            return exported_view(heap._base, self._offset, self._size, heap._views, self._exports, owner=self)

    if sys.version_info >= (3, 12):

        def __buffer__(self, flags: int) -> memoryview:
            return self.view()

        def __release_buffer__(self, buffer: memoryview) -> None:
            # Its presence matters too: numpy holds the buffer of an exporter
            # that has a release slot (wrapped in a memoryview), and otherwise
            # keeps only the object, which would let free() go through.
            buffer.release()

    def free(self) -> None:
        """Free the allocation now. Idempotent; BufferError while views of the
        block are alive."""
        live = sum(r() is not None for r in self._exports)
        if live:
            exports = f"{live} export{'' if live == 1 else 's'}"
            raise BufferError(f"cannot free the block while views of it are alive ({exports})")
        self._release()
        free_deferred()

    def __del__(self) -> None:
        lock = self._heap._lock
        if lock.acquire(blocking=False):  # not held by this thread: free now
            lock.release()
            self._release()
        else:  # maybe held by this thread (a collection inside a heap call): later
            self._release(defer=True)

    def __enter__(self) -> Block:
        """Return the block itself; the end of the `with` block frees it (__exit__)."""
        return self

    def __exit__(self, *exc: object) -> None:
        """free() the block, with or without an exception (which is not
        suppressed: return None): its allocation goes back to the heap.
        BufferError while views of it are alive."""
        self.free()

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"<tlsf.Block offset={self._offset} size={self._size}{' freed' if self._freed else ''}>"

    @property
    def offset(self) -> int:
        """The allocation's payload offset in its heap."""
        return self._offset

    @property
    def size(self) -> int:
        """Bytes of the block (as asked for; its buffer's length)."""
        return self._size

    @property
    def heap(self) -> Any:
        """The heap it was allocated from."""
        return self._heap

    @property
    def freed(self) -> bool:
        """True once the allocation is freed."""
        return self._freed

    __copy__ = __deepcopy__ = __reduce_ex__ = __reduce__ = no_copy  # type: ignore[assignment]


# Frees that a Block's finalizer could not make at once (heap, offset): a
# garbage collection can run inside a heap call, under the heap's lock, which
# is not re-entrant. Made by the next new_block or Block.free.
_deferred: list[tuple[HeapBase, int]] = []


def free_deferred() -> None:
    while _deferred:
        heap, offset = _deferred.pop()
        if not heap.closed:
            heap.free(offset)


def new_block(heap: HeapBase, size: int, align: int) -> Block:
    """Heap.block(size, align)."""
    free_deferred()
    size = size_arg(size)
    b = Block._of(heap, heap.alloc(size, align), size)
    heap._blocks += 1
    return b
