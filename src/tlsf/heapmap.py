"""Seeing a heap without any plotting library: where its used and free
blocks lie (the layout, aggregated into cells, and as text for a terminal),
its figures in one line, and the size-class report of its blocks.

Every heap type works: `Heap`, `FlexHeap`, `SharedHeap`, `OffsetAllocator`
(anything with walk() and stats()). tlsf.plot draws the same layout as a
picture.

    print(tlsf.heapmap.text_map(heap))
    print(tlsf.heapmap.report_text(tlsf.heapmap.report(heap.walk())))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

Blocks = Sequence[tuple[int, int, bool]]  # (offset, size, used), as walk() lists them


class Summary(NamedTuple):
    """A heap's state in the figures a map's title gives."""

    span: int  #: bytes from the first block's start to the last block's end
    capacity: int  #: bytes in blocks (the heap's pools, headers included)
    used: int  #: bytes in used blocks, headers included
    free: int  #: bytes in free blocks, headers included
    largest_free: int  #: the largest request alloc() can satisfy now (stats().largest_free)
    blocks: int

    @property
    def fragmentation(self) -> float:
        """The share of free bytes outside the largest free block: 0 when all
        free memory is one block, near 1 when it is crumbs."""
        return 1.0 - self.largest_free / self.free if self.free else 0.0

    def __str__(self) -> str:
        return (f"capacity {_bytes(self.capacity)}, used {_bytes(self.used)}, free {_bytes(self.free)}, "
                f"largest free block {_bytes(self.largest_free)}, fragmentation {self.fragmentation:.1%}, "
                f"{self.blocks:,} blocks")


def summary(heap: Any, blocks: Blocks | None = None) -> Summary:
    """The figures of heap (its blocks from walk() unless given)."""
    blocks = list(heap.walk()) if blocks is None else blocks
    used = sum(size for _, size, u in blocks if u)
    capacity = sum(size for _, size, _ in blocks)
    span = blocks[-1][0] + blocks[-1][1] - blocks[0][0] if blocks else 0
    return Summary(span, capacity, used, capacity - used, heap.stats().largest_free, len(blocks))


class SizeClass(NamedTuple):
    """The blocks of one size class, [low, high) bytes: a power of two and
    the next, TLSF's first level."""

    low: int
    high: int
    free_blocks: int
    free_bytes: int
    used_blocks: int
    used_bytes: int


def report(blocks: Iterable[tuple[int, int, bool]]) -> list[SizeClass]:
    """For each size class that holds a block of blocks (heap.walk()), its
    free and used blocks and bytes (whole blocks, headers included), smallest
    class first: which sizes the free memory is in, and which are live."""
    counts: dict[int, list[int]] = {}
    for _, size, used in blocks:
        c = counts.setdefault(size.bit_length() - 1, [0, 0, 0, 0])
        c[2 * used] += 1
        c[2 * used + 1] += size
    return [SizeClass(1 << k, 2 << k, *c) for k, c in sorted(counts.items())]


class Layout(NamedTuple):
    """The address range [start, end) cut into len(used) cells of `cell`
    bytes each: per cell, the share of its bytes in used blocks and the share
    in any block (the rest lies between pools or past the end)."""

    start: int
    end: int
    cell: int
    used: list[float]
    in_heap: list[float]


def layout(blocks: Blocks, cells: int) -> Layout:
    """Aggregates blocks in address order into `cells` cells (at least one
    byte each): exact shares, in time proportional to blocks plus cells, so
    that a million blocks map in about a second."""
    if cells < 1:
        raise ValueError(f"cells must be at least 1, not {cells}")
    if not blocks:
        return Layout(0, 0, 1, [0.0] * cells, [0.0] * cells)
    start = blocks[0][0]
    span = blocks[-1][0] + blocks[-1][1] - start
    cell = max(1, -(-span // cells))
    used = [0] * cells
    inside = [0] * cells
    for offset, size, is_used in blocks:
        lo, hi = offset - start, offset - start + size
        first, last = lo // cell, (hi - 1) // cell
        if first == last:  # the common case at a million blocks: inside one cell
            inside[first] += size
            if is_used:
                used[first] += size
            continue
        for k in range(first, last + 1):
            part = min(hi, (k + 1) * cell) - max(lo, k * cell)
            inside[k] += part
            if is_used:
                used[k] += part
    return Layout(start, start + cells * cell, cell, [u / cell for u in used], [i / cell for i in inside])


# The text map's characters by the share of a cell's heap bytes in use.
TEXT_SCALE = ".-=#"
OUTSIDE = " "  # a cell that is mostly not heap (between pools, past the end)


def text_map(heap: Any, width: int = 64, rows: int = 16, blocks: Blocks | None = None) -> str:
    """The layout of heap as `rows` lines of `width` characters, each line an
    address range: '.' free, '-' mostly free, '=' mostly used, '#' used, ' '
    not heap; with the heap's figures above and its size classes below."""
    if width < 1 or rows < 1:
        raise ValueError(f"width and rows must be at least 1, not {width} and {rows}")
    blocks = list(heap.walk()) if blocks is None else blocks
    lay = layout(blocks, width * rows)
    lines = [str(summary(heap, blocks)),
             f"one character = {_bytes(lay.cell)}: '.' free, '-' mostly free, '=' mostly used, '#' used"]
    for r in range(rows):
        chars = []
        for k in range(r * width, (r + 1) * width):
            if lay.in_heap[k] < 0.5:
                chars.append(OUTSIDE)
            else:
                share = lay.used[k] / lay.in_heap[k]
                chars.append(TEXT_SCALE[0 if share == 0 else 3 if share == 1 else 1 if share < 0.5 else 2])
        lines.append(f"{lay.start + r * width * lay.cell:>14,} |{''.join(chars)}|")
    lines.append(report_text(report(blocks)))
    return "\n".join(lines)


def report_text(classes: Iterable[SizeClass]) -> str:
    """report() as a table."""
    lines = [f"{'size class':>23} {'free blocks':>12} {'free bytes':>14} {'used blocks':>12} "
             f"{'used bytes':>14}"]
    for c in classes:
        lines.append(f"{_bytes(c.low):>10} .. {_bytes(c.high):>9} {c.free_blocks:>12,} {c.free_bytes:>14,} "
                     f"{c.used_blocks:>12,} {c.used_bytes:>14,}")
    return "\n".join(lines)


def _bytes(n: int) -> str:
    """1536 -> '1.5 KiB'; exact below 1 KiB."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.4g} {unit}"
    return f"{n} B"


__all__ = ["Layout", "SizeClass", "Summary", "layout", "report", "report_text", "summary",
           "text_map"]
