"""The result records of `tlsf`, shared by the C core and the pure-Python twin."""

from __future__ import annotations

from typing import NamedTuple


class Stats(NamedTuple):
    """Heap statistics, kept up to date in O(1)."""

    allocated_bytes: int  #: sum of usable_size() of the live allocations
    free_bytes: int  #: sum of the sizes of the free blocks, headers included
    largest_free: int  #: alloc(largest_free) succeeds now; 0 when no alloc would
    allocations: int  #: number of live allocations
    free_blocks: int  #: number of free blocks


class BlockInfo(NamedTuple):
    """One block of a pool, as listed by walk().

    For the heaps (Heap, FlexHeap, SharedHeap) a block starts with its header,
    so offset is not the offset alloc() returned for it;
    ``heap.allocation_of(block)`` is, on every heap type and on
    OffsetAllocator (whose blocks have no header), what free() takes."""

    offset: int  #: start of the block (its header, on a heap), from the start of memory
    size: int  #: whole block, header included
    used: bool


__all__ = ["BlockInfo", "Stats"]
