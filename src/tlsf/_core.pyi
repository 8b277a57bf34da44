"""Type stub of tlsf._core, the CPython binding of the C core (sources: binding/)."""

import sys
from array import array
from collections.abc import Iterable, Iterator
from os import PathLike
from types import TracebackType
from typing import Any, Final, SupportsIndex, TypeVar, final, overload

import numpy as np
import numpy.typing as npt

from tlsf._records import BlockInfo, Stats

if sys.version_info >= (3, 12):
    from collections.abc import Buffer as _Buffer
else:
    from typing import Any as _Buffer

_H = TypeVar("_H", bound=_HeapLike)

GRANULARITY: Final[int]
HEADER_SIZE: Final[int]
MIN_BLOCK: Final[int]
SENTINEL_SIZE: Final[int]

class _HeapLike:
    """What Heap, FlexHeap and SharedHeap share (binding/heap_methods.h); not a runtime class."""

    def alloc(self, size: SupportsIndex, align: SupportsIndex = 1) -> int: ...
    def free(self, offset: SupportsIndex) -> None: ...
    def realloc(self, offset: SupportsIndex, size: SupportsIndex) -> int: ...
    def usable_size(self, offset: SupportsIndex) -> int: ...
    @overload
    def alloc_many(  # type: ignore[overload-overlap]  # an ndarray is a buffer too: it comes first
        self, sizes: np.ndarray[Any, Any], align: SupportsIndex = 1
    ) -> npt.NDArray[np.int64]:
        """The offsets as an int64 numpy.ndarray when `sizes` is a numpy.ndarray (exactly)."""
    @overload
    def alloc_many(self, sizes: _Buffer | Iterable[SupportsIndex], align: SupportsIndex = 1) -> array[int]:
        """The offsets as an array.array('q') (signed 64-bit). All or nothing."""
    def free_many(self, offsets: _Buffer | Iterable[SupportsIndex]) -> None: ...
    @property
    def capacity(self) -> int: ...
    @property
    def sl_len(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    def stats(self) -> Stats: ...
    def walk(self) -> Iterator[BlockInfo]:
        """Every block of every pool in address order; BlockInfo.offset is the block's
        start (its header): allocation_of(block) is the offset alloc() returned."""
    def allocation_of(self, block: BlockInfo, /) -> int:
        """The offset alloc() returned for a block of walk() (block.offset plus the
        header's size): what free(), view() and usable_size() take."""
    def check(self) -> None: ...
    def view(self, offset: SupportsIndex, size: SupportsIndex | None = None) -> memoryview: ...
    def block(self, size: SupportsIndex, align: SupportsIndex = 1) -> Block: ...
    def ndarray(
        self, shape: Any, dtype: Any = None, *, align: int | None = None, order: str = "C"
    ) -> np.ndarray[Any, Any]:
        """A numpy.ndarray in an allocation of its own (tlsf.numpy.ndarray); dtype None: float64."""
    def ndarray_at(self, offset: SupportsIndex, shape: Any, dtype: Any = None) -> np.ndarray[Any, Any]:
        """A numpy.ndarray over the live allocation at offset (tlsf.numpy.ndarray_at); dtype None: float64."""
    def close(self) -> None: ...
    def __enter__(self: _H) -> _H:
        """The heap itself; the end of the `with` block closes it."""
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

@final
class Block:
    """One allocation of a heap that frees itself (binding/block.c)."""

    @property
    def offset(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def heap(self) -> _HeapLike: ...
    @property
    def freed(self) -> bool: ...
    def view(self) -> memoryview: ...
    def free(self) -> None: ...
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    def __enter__(self) -> Block: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

@final
class Heap(_HeapLike):
    """A TLSF heap over `memory`: a writable C-contiguous buffer, or an int
    (that many bytes of anonymous memory owned by the heap)."""

    def __new__(cls, memory: _Buffer | int, *, sl_len: SupportsIndex = 32, pool: bool = True) -> Heap: ...
    def insert_free_block(self, offset: SupportsIndex, size: SupportsIndex) -> int: ...
    def append_free_block(self, offset: SupportsIndex, size: SupportsIndex) -> int: ...

class _GrowingHeapLike(_HeapLike):
    """What FlexHeap and SharedHeap share (binding/flex.h); not a runtime class."""

    def trim(self) -> int: ...
    def _arena(self) -> memoryview: ...
    @property
    def max_size(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def trim_threshold(self) -> int | None: ...
    @property
    def root(self) -> int: ...
    @root.setter
    def root(self, value: SupportsIndex) -> None: ...

@final
class FlexHeap(_GrowingHeapLike):
    """A TLSF heap in its own reservation of max_size bytes of address space
    (default 1 TiB, or less where the system refuses) that grows as it is
    used, never moving, and gives pages back (trim(), trim_threshold); or in
    a file (create, open), which survives its process and its crashes."""

    def __new__(
        cls,
        max_size: SupportsIndex | None = None,
        *,
        sl_len: SupportsIndex = 32,
        trim_threshold: SupportsIndex | None = 1048576,
        hugepages: bool = False,
    ) -> FlexHeap: ...
    @classmethod
    def create(
        cls,
        path: str | bytes | PathLike[str] | PathLike[bytes],
        *,
        max_size: SupportsIndex | None = None,
        sl_len: SupportsIndex = 32,
        exist_ok: bool = False,
        trim_threshold: SupportsIndex | None = 1048576,
        hugepages: bool = False,
    ) -> FlexHeap: ...
    @classmethod
    def open(
        cls,
        path: str | bytes | PathLike[str] | PathLike[bytes],
        *,
        recover: bool = False,
        trim_threshold: SupportsIndex | None = 1048576,
        hugepages: bool = False,
    ) -> FlexHeap: ...
    def flush(self) -> None: ...
    @property
    def hugepages(self) -> bool: ...
    @property
    def path(self) -> str | bytes | None: ...

@final
class SharedHeap(_GrowingHeapLike):
    """One TLSF heap in a named POSIX shared memory segment, used by every
    process that attaches it (create, attach, or unpickling); offsets are
    valid in every process, and a process killed at any moment, even
    holding the lock, leaves a heap the others go on with."""

    @classmethod
    def create(
        cls,
        name: str | None = None,
        *,
        max_size: SupportsIndex | None = None,
        sl_len: SupportsIndex = 32,
        trim_threshold: SupportsIndex | None = None,
        persist: bool = False,
    ) -> SharedHeap: ...
    @classmethod
    def attach(cls, name: str, *, trim_threshold: SupportsIndex | None = None) -> SharedHeap: ...
    @staticmethod
    def remove(name: str, /) -> None: ...
    def unlink(self) -> None: ...
    def _hold(self, seconds: float) -> None: ...
    def __reduce__(self) -> tuple[Any, tuple[str]]: ...
    @property
    def name(self) -> str: ...
    @property
    def recoveries(self) -> int: ...

@final
class OffsetAllocator:
    """TLSF over a range of offsets it never touches (a GPU buffer, a file, an
    address range): all metadata is out of band, in a node table (32 bytes
    per block, up to about 2**27 blocks at a time).

    Offsets and sizes are bytes, multiples of `granularity` (a power of two);
    every range lies below 2**64 - 1. Errors are those of Heap:
    OutOfMemoryError when nothing fits, InvalidOffsetError for anything that
    is not a live allocation's offset (the allocator unchanged), ValueError
    for bad values, TypeError for non-integers; MemoryError (not
    OutOfMemoryError) when the process cannot grow the metadata or the
    node table is full.
    """

    def __new__(
        cls, capacity: SupportsIndex, *, sl_len: SupportsIndex = 32, granularity: SupportsIndex = 1
    ) -> OffsetAllocator:
        """Manages [0, capacity); capacity 0 gives an allocator with no range (see add_range)."""
    def alloc(self, size: SupportsIndex, align: SupportsIndex = 1) -> int:
        """O(1). The offset of `size` bytes (rounded up to the granularity; size 0
        takes one granule), a multiple of `align` (a power of two)."""
    def free(self, offset: SupportsIndex) -> None: ...
    def resize(self, offset: SupportsIndex, size: SupportsIndex) -> bool:
        """In place only: True when the allocation now holds `size` bytes (shrunk, or
        grown into free space right after it), False when it cannot grow (unchanged)."""
    def usable_size(self, offset: SupportsIndex) -> int: ...
    @overload
    def alloc_many(  # type: ignore[overload-overlap]  # an ndarray is a buffer too: it comes first
        self, sizes: np.ndarray[Any, Any], align: SupportsIndex = 1
    ) -> npt.NDArray[np.uint64]:
        """The offsets as a uint64 numpy.ndarray when `sizes` is a numpy.ndarray (exactly)."""
    @overload
    def alloc_many(self, sizes: _Buffer | Iterable[SupportsIndex], align: SupportsIndex = 1) -> array[int]:
        """The offsets as an array.array('Q') (unsigned 64-bit: any offset). All or nothing."""
    def free_many(self, offsets: _Buffer | Iterable[SupportsIndex]) -> None:
        """Every offset is validated (live, listed once) before any is freed."""
    def add_range(self, offset: SupportsIndex, size: SupportsIndex) -> None:
        """Give [offset, offset + size) to the allocator; ranges touching it coalesce
        with it. ValueError when it overlaps a range or is not a multiple of the granularity."""
    def reset(self) -> None:
        """Forget every allocation; every range becomes one free block."""
    @property
    def capacity(self) -> int:
        """Total bytes of all ranges."""
    @property
    def granularity(self) -> int: ...
    @property
    def sl_len(self) -> int: ...
    def stats(self) -> Stats: ...
    def walk(self) -> Iterator[BlockInfo]:
        """Every block of every range in address order; no headers: BlockInfo.offset is
        what alloc() returned for a used block (allocation_of(block) too)."""
    def allocation_of(self, block: BlockInfo, /) -> int:
        """The offset alloc() returned for a block of walk(): block.offset itself."""
    def check(self) -> None: ...
