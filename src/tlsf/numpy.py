"""numpy arrays from a tlsf heap: a memory handler (NEP 49) and arrays that own allocations.

    with tlsf.numpy.use(heap):      # heap: a Heap, FlexHeap or SharedHeap
        a = numpy.empty(1000)       # a's data lives in heap, and stays there after the block

    a = heap.ndarray((100, 3))      # an array in its own allocation (these two: any implementation)
    b = heap.ndarray_at(offset, 10) # an array over an existing allocation

The handler is C (tlsf._numpy_handler, over tlsf's C API): numpy calls it for
every array's data with no Python call, from any thread, with or without the
GIL. What it guarantees:

- Each array keeps the handler, and the handler keeps the heap object, alive:
  arrays outlive the ``with`` block, the heap variable and the handler.
- ``heap.close()`` raises BufferError while any array still uses the heap's
  memory; nothing dangles.
- ``use`` restores the handler it replaced when its block ends, in the
  context that entered it: numpy keeps the current handler in a context
  variable, so threads and asyncio tasks each see their own, and each
  ``with`` keeps the handler to restore in its own frame (no shared stack).
- A request the heap cannot serve goes to the C library's allocator and is
  counted (``fallbacks(handler)``), or, with ``on_full="raise"``, fails with
  numpy's MemoryError. Frees and resizes find each block's allocator by its
  address.
- ``calloc`` (numpy.zeros) zeroes, realloc (``ndarray.resize``) keeps the
  contents, and the size numpy passes to free is not trusted.

numpy is imported on first use of this module's functions, not by ``import tlsf``.
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tlsf._errors import InvalidOffsetError

if TYPE_CHECKING:
    import numpy as np


__all__ = ["fallbacks", "handler", "heap_of", "ndarray", "ndarray_at", "offset", "use"]

ON_FULL = ("fallback", "raise")
MIN_ALIGN = 16  # what numpy's default allocator (the C library's malloc) gives on 64-bit platforms


_np: Any = None  # numpy, once its version is checked


def _numpy() -> Any:
    global _np
    if _np is None:
        import numpy

        if tuple(int(p) for p in numpy.__version__.split(".")[:2]) < (1, 22):
            version = numpy.__version__
            raise ImportError(f"tlsf.numpy needs numpy 1.22 or later (memory handlers), not {version}")
        _np = numpy
    return _np


def _array_api() -> Any:
    """numpy's C API table, the capsule that tlsf._numpy_handler calls through."""
    _numpy()
    try:
        from numpy._core import _multiarray_umath as umath  # type: ignore[attr-defined]  # numpy 2
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as umath
    return umath._ARRAY_API


def _handler_module() -> Any:
    try:
        from tlsf import _numpy_handler
    except ImportError as e:
        raise ImportError(
            "tlsf.numpy's handler is C: tlsf._numpy_handler was not built (no compiler at install, or the "
            "pure-Python twin); heap.ndarray() and heap.block() work without it"
        ) from e
    return _numpy_handler


def handler(heap: Any, *, on_full: str = "fallback", align: int = MIN_ALIGN) -> Any:
    """The "mem_handler" capsule of a handler that allocates from heap, for
    numpy's own API (PyDataMem_SetHandler) or use().

    on_full: "fallback" (a request the heap cannot serve goes to the C
    library's allocator, counted by fallbacks()) or "raise" (numpy raises
    MemoryError). align: every array's alignment in the heap, a power of two,
    at least 16 (a block of the C library's is aligned to 16).
    """
    if on_full not in ON_FULL:
        raise ValueError(f"on_full must be one of {ON_FULL}, not {on_full!r}")
    if not isinstance(align, int) or align < MIN_ALIGN or align & (align - 1):
        raise ValueError(f"align must be a power of two of at least {MIN_ALIGN}, not {align!r}")
    module = _handler_module()
    _numpy()
    return module.make(heap, f"tlsf.{type(heap).__name__}", align, on_full == "raise")


@contextlib.contextmanager
def use(heap: Any, *, on_full: str = "fallback", align: int = MIN_ALIGN) -> Iterator[Any]:
    """Within the block, numpy allocates new arrays' data from heap (a Heap,
    FlexHeap or SharedHeap); yields the handler (see handler() for the options).
    The handler it replaced comes back at the end, in this context only."""
    h = handler(heap, on_full=on_full, align=align)
    api = _array_api()
    module = _handler_module()
    previous = module.set(api, h)
    try:
        yield h
    finally:
        module.set(api, previous)


def fallbacks(handler: Any) -> int:
    """How many allocations of handler the C library served (the heap could not)."""
    return int(_handler_module().fallbacks(handler))


def heap_of(handler: Any) -> Any:
    """The heap a handler made by handler() or use() allocates from."""
    return _handler_module().heap(handler)


def offset(heap: Any, array: Any) -> int:
    """The offset in heap of the allocation that holds array's data (array: one
    that the handler or heap.ndarray() put in heap, or any view of it), to be
    passed to another process (heap.ndarray_at there), or to heap.view and
    heap.usable_size. Never to heap.free or heap.realloc: the array owns the
    allocation. ValueError if the data is not an allocation of heap."""
    owner = array
    while not owner.flags.owndata and isinstance(owner.base, _numpy().ndarray):
        owner = owner.base
    if not owner.flags.owndata:  # heap.ndarray(): an array over a Block's view
        owner = _numpy().frombuffer(owner.base, dtype="u1")
    at = owner.__array_interface__["data"][0] - _handler_module().address(heap)
    if not 0 <= at < heap.capacity:
        raise ValueError("the array's data is not in this heap")
    try:
        heap.usable_size(at)
    except InvalidOffsetError:
        raise ValueError("the array's data is not an allocation of this heap") from None
    return at


def _layout(np: Any, shape: Any, dtype: Any) -> tuple[Any, int]:
    """The dtype and byte size of an array of shape and dtype that a heap can
    hold (numpy itself judges the shape when it makes the array)."""
    dt = np.dtype(dtype)
    if dt.hasobject or not dt.itemsize:
        raise TypeError(f"a heap's array holds plain data of a fixed size, not {dt}")
    try:
        count = operator.index(shape)  # an int, numpy.int64, ...
    except TypeError:
        count = math.prod(operator.index(n) for n in shape)
    n = count * dt.itemsize
    if n < 0:
        raise ValueError(f"negative dimensions are not allowed: {shape}")
    return dt, n


def ndarray(
    heap: Any, shape: Any, dtype: Any = float, *, align: int | None = None, order: str = "C"
) -> np.ndarray:
    """A new array of heap (uninitialised, as numpy.empty) in an allocation of
    its own, freed when the array and every view of it are gone.
    align: of the data (default: the dtype's alignment, at least 16)."""
    if order not in ("C", "F"):
        raise ValueError(f"order must be 'C' or 'F', not {order!r}")
    np = _numpy()
    dt, n = _layout(np, shape, dtype)
    block = heap.block(n or 1, max(MIN_ALIGN, dt.alignment) if align is None else align)
    # numpy keeps the view's exporter as the array's base, and it holds the
    # block. Positional arguments: numpy's keyword path costs more than the rest.
    return np.ndarray(shape, dt, block.view(), 0, None, order)


def ndarray_at(heap: Any, offset: int, shape: Any, dtype: Any = float) -> np.ndarray:
    """An array over the live allocation at offset (C order), which it does not
    own: the allocation must outlive it (a view keeps the heap open, not the
    allocation). InvalidOffsetError if offset is not a live allocation,
    ValueError if the array does not fit it."""
    np = _numpy()
    dt, n = _layout(np, shape, dtype)
    return np.ndarray(shape, dt, heap.view(offset, n))
