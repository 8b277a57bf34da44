"""Argument conversion shared by the twin's public classes (`Heap`, `OffsetAllocator`).

The binding ``_core.c`` does the same in C (as_size, as_align, as_range_arg,
batch_values, offsets_like). Every argument is converted before an
allocator is touched: an ``__index__`` that uses the allocator runs first.
"""

from __future__ import annotations

from array import array
from operator import index
from typing import Any


def size_arg(x: Any) -> int:
    """A size: any integer (``__index__``); negative is a ValueError."""
    v = index(x)
    if v < 0:
        raise ValueError(f"size must be >= 0, not {v}")
    return v


def align_arg(x: Any) -> int:
    """An alignment: a power of two, else a ValueError."""
    v = index(x)
    if v <= 0 or v & (v - 1):
        raise ValueError(f"alignment must be a power of two, not {v}")
    return v


def range_arg(x: Any, what: str) -> int:
    """The offset or size of a range: negative is a ValueError."""
    v = index(x)
    if v < 0:
        raise ValueError(f"{what} must be >= 0, not {v}")
    return v


def integers(values: Any) -> Any:
    """The items of a sequence, or of a buffer of integers, without numpy."""
    try:
        view = memoryview(values)
    except TypeError:
        return values
    with view:
        fmt = view.format.lstrip("@")
        if fmt not in tuple("bBhHiIlLqQnN"):
            return values  # not native integers: let iteration (and __index__) judge
        return (view if view.ndim == 1 else view.cast("B").cast(fmt)).tolist()  # type: ignore[call-overload]


def offsets_like(given: Any, offsets: list[int], wide: bool = False) -> Any:
    """The offsets as array('q') (Heap) or, `wide`, array('Q') (OffsetAllocator:
    any 64-bit offset); an int64 / uint64 ndarray when `given` was an ndarray."""
    out = array("Q" if wide else "q", offsets)
    if type(given).__name__ == "ndarray" and type(given).__module__ == "numpy":
        import numpy

        return numpy.frombuffer(out, dtype=numpy.uint64 if wide else numpy.int64)
    return out


__all__ = ["align_arg", "integers", "offsets_like", "range_arg", "size_arg"]
