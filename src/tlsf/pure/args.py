"""Argument conversion, and the other binding helpers shared by the twin's
public classes (`Heap`, `OffsetAllocator`).

The C binding does the same (binding/args.h, batch.c, memory.c, errors.c:
as_size, as_pow2, as_range_arg, batch_values, offsets_result, is_size_arg,
plain_data_format, oom_error, block_allocation: allocation_of). Every
argument is converted before an allocator is touched: an ``__index__`` that
uses the allocator runs first.
"""

from __future__ import annotations

import struct
from array import array
from operator import index
from typing import Any

from tlsf._errors import OutOfMemoryError
from tlsf._records import BlockInfo
from tlsf.pure.classes import U64_MAX


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


def oom(size: int, align: int, item: int = -1) -> OutOfMemoryError:
    """The error of an allocation of `size` bytes aligned to `align` that
    nothing can hold; `item` >= 0 names the item of alloc_many. Worded as
    the C binding's oom_error, which sees sizes beyond 64 bits as 2**64-1
    and alignments beyond them as 2**63: those read "or more"."""
    at = f" (item {item})" if item >= 0 else ""
    if size >= U64_MAX:
        return OutOfMemoryError(f"cannot allocate 2**64-1 bytes or more{at}")
    if align >= 1 << 63:
        return OutOfMemoryError(f"cannot allocate {size} bytes aligned to 2**63 or more{at}")
    return OutOfMemoryError(f"cannot allocate {size} bytes aligned to {align}{at}")


def oom_realloc(offset: int, size: int) -> OutOfMemoryError:
    """The error of a realloc of `offset` to `size` bytes that nothing can
    hold (the binding's words, heap.c: heap_realloc)."""
    if size >= U64_MAX:
        return OutOfMemoryError(f"cannot reallocate offset {offset} to 2**64-1 bytes or more")
    return OutOfMemoryError(f"cannot reallocate offset {offset} to {size} bytes")


def range_arg(x: Any, what: str) -> int:
    """The offset or size of a range: negative is a ValueError."""
    v = index(x)
    if v < 0:
        raise ValueError(f"{what} must be >= 0, not {v}")
    return v


def integers(values: Any) -> Any:
    """The items of a sequence, or of a buffer of integers of any byte order
    and layout (as batch_values in C); any other buffer is a TypeError."""
    try:
        view = memoryview(values)
    except TypeError:
        return values
    with view:
        fmt = code = view.format
        order = "@"
        if fmt[:1] in ("@", "=", "<", ">", "!"):
            order, code = fmt[0], fmt[1:]
        if (
            len(code) != 1
            or code not in "bBhHiIlLqQnN"
            or (order != "@" and code in "nN")  # no standard size
            or struct.calcsize(order + code) != view.itemsize
        ):
            raise TypeError(f"a buffer of integers is needed, not format '{fmt}'")
        return list(struct.unpack(f"{order}{view.nbytes // view.itemsize}{code}", view.tobytes()))


def offsets_result(given: Any, n: int, wide: bool = False) -> tuple[Any, array]:
    """(result, items) of alloc_many, made before the allocator is touched so
    that nothing can fail once the blocks are taken (offsets_result in C):
    n zeros as array('q') (Heap) or, `wide`, array('Q') (OffsetAllocator: any
    64-bit offset), and the result, an int64 / uint64 ndarray over it when
    `given` was an ndarray, else the array itself."""
    items = array("Q" if wide else "q", bytes(8)) * n
    if type(given).__name__ == "ndarray" and type(given).__module__ == "numpy":
        import numpy

        return numpy.frombuffer(items, dtype=numpy.uint64 if wide else numpy.int64), items
    return items, items


def plain_data_format(fmt: str) -> bool:
    """Whether buffer format `fmt` describes plain data, which a heap may
    overwrite with its headers: no object references ('O'), no pointers ('P',
    '&'), nothing unknown; struct field names (":name:") are skipped."""
    plain = set("@=<>!^0123456789 ,xcbB?hHiIlLqQnNefdgFDGZsuwT{}()")
    k = 0
    while k < len(fmt):
        if fmt[k] == ":":
            k = fmt.find(":", k + 1)
            if k < 0:
                return False
        elif fmt[k] not in plain:
            return False
        k += 1
    return True


def allocation_of(block: Any, header: int) -> int:
    """allocation_of(block) of a heap or allocator whose block header has
    `header` bytes (0 for OffsetAllocator): the offset alloc() returned for a
    block that walk() listed, a tlsf.BlockInfo. Arithmetic only, as
    block_allocation in C (errors.c)."""
    if not isinstance(block, BlockInfo) or tuple.__len__(block) < 1:
        raise TypeError(
            f"allocation_of() argument must be a tlsf.BlockInfo (from walk()), not {type(block).__name__}"
        )
    return index(tuple.__getitem__(block, 0)) + header


def no_copy(obj: object, *args: Any) -> Any:
    """What copy and pickle get from a heap or allocator, as from the C types
    (which have no __reduce__): a TypeError. Each owns its metadata (and a
    heap its memory's export), which cannot be duplicated or sent."""
    raise TypeError(f"cannot pickle 'tlsf.pure.{type(obj).__qualname__}' object")


def is_size_arg(memory: Any) -> bool:
    """Whether Heap's `memory` is a size: an int, or any integer-like object
    (numpy.int64, ...) that is not a buffer of at least one dimension (a numpy
    array has __index__ too, and is memory)."""
    if isinstance(memory, int):
        return True
    if not hasattr(type(memory), "__index__"):
        return False
    try:
        view = memoryview(memory)
    except TypeError:
        return True
    with view:
        return view.ndim == 0


__all__ = [
    "align_arg",
    "allocation_of",
    "integers",
    "is_size_arg",
    "no_copy",
    "offsets_result",
    "plain_data_format",
    "range_arg",
    "size_arg",
]
