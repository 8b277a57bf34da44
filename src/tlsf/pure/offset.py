"""The twin of the out-of-band engine ``csrc/tlsf_offset.c`` and of its binding.

Class `TlsfOffset` mirrors ``tlsf_offset.c`` function for function, with the
same names (``tlsf_oa_alloc`` there is `TlsfOffset.alloc` here; the static
helpers insert_free, remove_free, remove_head, split_after, absorb_next,
carve, release, find_live, grow_lists, set_range_link, check_ranges,
check_lists, check_index and unmark_all keep their names; C's out-of-line
``alloc_any`` and ``free_any`` for another sl_len have none); the size classes
and bitmaps are `tlsf.pure.classes` (``tlsf_classes.h``), as in C. Class `OffsetAllocator`
mirrors the binding (``binding/offset.c``). For the same
configuration and the same calls both return identical offsets, walks and
statistics: the same list order, the same search, the same order of list
insertions and removals.

What is storage, and so not mirrored line by line:

- The node table. A node is a `Node` object; `new_node` makes one and
  `drop_node` forgets it; both only count the nodes in use (`nodes_total`,
  the budget of check's cycle detection). The C table (32-byte nodes named
  by 32-bit refs, node 0 standing for NIL and reading as used), its spare
  stack, grow_nodes, reserve_nodes and alloc_short (which make running out
  of memory leave the allocator unchanged) and its cap of 2^27 nodes have no
  twin: Python allocates on demand.
- The offset index. A dict {unit offset: used node} stands for the C linear
  hashing table: index_find is ``index.get``, index_insert an assignment,
  unlinking a ``del``; hash_of, bucket, bucket_of and index_grow have no twin.
  check_index checks the dict the way C checks its buckets.

Offsets and sizes are in units of the granularity inside, bytes at the API,
exactly as in C. Each range ends with a sentinel node: a permanently used
block of size 0 at the range's end that stops coalescing, names the range's
first block (range_first) and links the ranges in address order
(next_range). No two physically adjacent blocks are free. Used nodes are in
the offset index, which is what decides whether an offset is live.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterator, Sequence
from operator import index
from typing import TYPE_CHECKING, Any, overload

from tlsf._errors import CorruptionError, InvalidOffsetError, OutOfMemoryError
from tlsf._records import BlockInfo, Stats
from tlsf.pure.args import (
    align_arg,
    allocation_of,
    integers,
    no_copy,
    offsets_result,
    oom,
    range_arg,
    size_arg,
)
from tlsf.pure.classes import CLASS_NONE, U64_MAX, Classes
from tlsf.pure.journal import MISSING, atomic, register

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# ----------------------------------------------------------------------- layout

N_USED = 1
N_SENTINEL = 2
N_MARK = 4  # scratch bit of check and free_many


class Node:
    """One block of a range, or a range's sentinel (struct node).

    C keeps a sentinel's next_range and range_first in a union with the
    free-list links next_free and prev_free; here they are slots of their
    own, set on sentinels only (a block never reads them)."""

    __slots__ = (
        "offset",
        "size",
        "prev_phys",
        "next_phys",
        "next_free",
        "prev_free",
        "next_range",
        "range_first",
        "flags",
    )
    offset: int  # in units
    size: int  # in units
    prev_phys: Node | None  # None for a range's first block
    next_phys: Node  # a block always has one; a sentinel's is None (see add_range)
    next_free: Node | None  # free block: list links
    prev_free: Node | None
    next_range: Node | None  # sentinel: the next range's sentinel
    range_first: Node  # sentinel: the first block of its range
    flags: int

    def __init__(self) -> None:
        self.prev_phys = self.next_free = self.prev_free = None
        self.flags = 0


def align_gap(offset: int, align: int) -> int:
    """Units of padding in front of unit offset `offset` for alignment `align` (units)."""
    return -offset & (align - 1)


def invalid_offset(offset: int) -> InvalidOffsetError:
    return InvalidOffsetError(f"offset {offset} is not a live allocation")


class CheckCtx:
    """State of check (check_ctx)."""

    __slots__ = ("used", "used_units", "free_n", "marked")

    def __init__(self) -> None:
        self.used = self.used_units = self.free_n = self.marked = 0


class TlsfOffset:
    """One out-of-band allocator (struct tlsf_oa and the functions of tlsf_offset.c)."""

    def __init__(self, sl_len: int, granularity: int) -> None:
        """tlsf_oa_create: a new allocator with no ranges. sl_len (a power of
        two, 1..64) and granularity (a power of two below 2**64) are valid:
        the caller checks them."""
        self.cls = Classes(sl_len.bit_length() - 1, 0, 0)
        self.gran_log2 = granularity.bit_length() - 1
        self.capacity = 0  # units in all ranges
        self.heads: list[Node | None] = []  # lists[2*i] in C
        self.tails: list[Node | None] = []  # lists[2*i+1] in C
        self.first_range: Node | None = None  # sentinel of the lowest range
        # statistics, in units (allocations: also the entries of the index;
        # the free units are capacity - allocated)
        self.allocated = self.allocations = self.free_blocks = 0
        self.nodes_total = 0  # nodes in use (C: nodes in the table)
        self.index: dict[int, Node] = {}  # the offset index: unit offset -> used node
        # The undo journal of the operation in progress (tlsf.pure.journal):
        # every store below is recorded just before it is made (a new node's
        # fields are not: nothing refers to it before the store that links it).
        self.log: list[Any] = []
        self.cls.log = self.log

    def counters(self) -> tuple[int, ...]:
        """What journal.atomic saves when an operation begins (and so is not journaled)."""
        return (
            self.allocated, self.allocations, self.free_blocks,
            self.nodes_total, self.cls.fl_bitmap,
        )  # fmt: skip

    def set_counters(self, saved: tuple[int, ...]) -> None:
        (
            self.allocated, self.allocations, self.free_blocks,
            self.nodes_total, self.cls.fl_bitmap,
        ) = saved  # fmt: skip

    # -------------------------------------------------------------- node table

    def new_node(self) -> Node:
        self.nodes_total += 1
        return Node()

    def drop_node(self, n: Node) -> None:
        self.log += (n, "flags", n.flags)
        n.flags = 0
        self.nodes_total -= 1

    # -------------------------------------------------------------- free lists

    def insert_free(self, b: Node, at_head: bool) -> None:
        """As in tlsf.c: a block at least as large as the list's head goes in
        front, a smaller one at the tail, so the head is the largest seen.
        at_head: in front anyway (an undone allocation goes back where alloc
        took it). The statistic free_blocks is not the lists' business: carve,
        release, resize and reset count what an operation changes, once."""
        log = self.log
        i = self.cls.map_floor(b.size)
        h = self.heads[i]
        log += (b, "flags", b.flags)
        log += (b, "next_free", b.next_free)
        log += (b, "prev_free", b.prev_free)
        b.flags = 0
        if h is None:
            b.next_free = b.prev_free = None
            log += (self.heads, i, h)
            log += (self.tails, i, self.tails[i])
            self.heads[i] = self.tails[i] = b
            self.cls.mark_class(i)
        elif at_head or b.size >= h.size:
            b.next_free = h
            b.prev_free = None
            log += (h, "prev_free", h.prev_free)
            h.prev_free = b
            log += (self.heads, i, h)
            self.heads[i] = b
        else:
            t = self.tails[i]
            assert t is not None  # the list is not empty
            b.next_free = None
            b.prev_free = t
            log += (t, "next_free", t.next_free)
            t.next_free = b
            log += (self.tails, i, t)
            self.tails[i] = b

    def remove_free(self, b: Node) -> None:
        log = self.log
        i = self.cls.map_floor(b.size)
        if b.prev_free:
            log += (b.prev_free, "next_free", b.prev_free.next_free)
            b.prev_free.next_free = b.next_free
        else:
            log += (self.heads, i, self.heads[i])
            self.heads[i] = b.next_free
        if b.next_free:
            log += (b.next_free, "prev_free", b.next_free.prev_free)
            b.next_free.prev_free = b.prev_free
        else:
            log += (self.tails, i, self.tails[i])
            self.tails[i] = b.prev_free
        if self.heads[i] is None:
            self.cls.unmark_class(i)

    def remove_head(self, b: Node, i: int) -> None:
        """remove_free for the head b of list i (what alloc takes)."""
        log = self.log
        n = b.next_free
        log += (self.heads, i, self.heads[i])
        self.heads[i] = n
        if n:
            log += (n, "prev_free", n.prev_free)
            n.prev_free = None
        else:
            log += (self.tails, i, self.tails[i])
            self.tails[i] = None
            self.cls.unmark_class(i)

    # --------------------------------------------------------- block placement

    def split_after(self, b: Node, keep: int) -> Node:
        """A new node for the part of block b beyond its first `keep` units, linked after b."""
        r = self.new_node()
        r.offset = b.offset + keep
        r.size = b.size - keep
        r.flags = 0
        r.prev_phys = b
        r.next_phys = b.next_phys
        log = self.log
        log += (b.next_phys, "prev_phys", b.next_phys.prev_phys)
        b.next_phys.prev_phys = r
        log += (b, "next_phys", b.next_phys)
        b.next_phys = r
        log += (b, "size", b.size)
        b.size = keep
        return r

    def absorb_next(self, p: Node, b: Node) -> None:
        """Block b across the link from its previous neighbour p, which absorbs it."""
        log = self.log
        log += (p, "size", p.size)
        p.size += b.size
        log += (p, "next_phys", p.next_phys)
        p.next_phys = b.next_phys
        log += (b.next_phys, "prev_phys", b.next_phys.prev_phys)
        b.next_phys.prev_phys = p
        self.drop_node(b)

    def carve(self, b: Node, gap: int, need: int) -> Node:
        """Free block b (unlinked) becomes a used block of `need` units after
        `gap` units of padding; padding and tail go back to the free lists.
        Returns the used node."""
        # free blocks: b less, the padding and the tail more
        if gap:
            u = self.split_after(b, gap)
            self.insert_free(b, False)
            b = u
            self.free_blocks += 1
        if b.size > need:
            self.insert_free(self.split_after(b, need), False)
        else:
            self.free_blocks -= 1
        self.log += (b, "flags", b.flags)
        b.flags = N_USED
        self.log += (self.index, b.offset, self.index.get(b.offset, MISSING))
        self.index[b.offset] = b  # index_insert
        self.allocations += 1
        self.allocated += need
        return b

    def release(self, b: Node, at_head: bool) -> None:
        """Block b, in no list and not indexed, becomes free, merged with its
        free neighbours; at_head as insert_free."""
        n = b.next_phys
        p = b.prev_phys
        self.free_blocks += 1  # and one less for each merged
        if not n.flags & N_USED:
            self.remove_free(n)
            self.absorb_next(b, n)
            self.free_blocks -= 1
        if p and not p.flags & N_USED:
            self.remove_free(p)
            self.absorb_next(p, b)
            b = p
            self.free_blocks -= 1
        self.insert_free(b, at_head)

    # ------------------------------------------------------- public operations

    def units_for(self, size: int) -> int:
        """Units for `size` bytes; 0 bytes take one unit."""
        g = self.gran_log2
        u = (size >> g) + (1 if size & ((1 << g) - 1) else 0)
        return u if u else 1

    def alloc(self, size: int, align: int) -> int:
        """tlsf_oa_alloc, in bytes; `align` is a power of two below 2**64 (the caller checks)."""
        cls = self.cls
        need = self.units_for(size)
        au = align >> self.gran_log2
        if not au:
            au = 1
        if need > self.capacity or au > self.capacity:
            raise oom(size, align)
        # worst-case padding is au - 1 units (saturated: then only the own list can serve)
        search = U64_MAX if au - 1 > U64_MAX - need else need + au - 1
        # First the head of the request's own list, then good fit (as tlsf.c).
        i = cls.map_floor(search)
        b = self.heads[i] if cls.class_exists(i) else None
        if b is not None and (align_gap(b.offset, au) > b.size or need > b.size - align_gap(b.offset, au)):
            b = None
        if b is None:
            i = cls.find_suitable(cls.map_ceil(search))
            if i == CLASS_NONE:
                raise oom(size, align)
            b = self.heads[i]
            assert b is not None  # the bitmaps name a non-empty list
        self.remove_head(b, i)
        return self.carve(b, align_gap(b.offset, au), need).offset << self.gran_log2

    def find_live(self, offset: int) -> Node | None:
        """The used node at byte offset `offset`, or None."""
        if offset & ((1 << self.gran_log2) - 1):
            return None
        return self.index.get(offset >> self.gran_log2)  # index_find

    def free_offset(self, offset: int, at_head: bool) -> None:
        """at_head as insert_free: alloc_many's rollback puts each block back
        where alloc took it from."""
        b = self.find_live(offset)
        if b is None:
            raise invalid_offset(offset)
        self.log += (self.index, b.offset, b)
        del self.index[b.offset]
        self.allocations -= 1
        self.allocated -= b.size
        self.release(b, at_head)

    def free(self, offset: int) -> None:
        self.free_offset(offset, False)

    def usable_size(self, offset: int) -> int:
        b = self.find_live(offset)
        if b is None:
            raise invalid_offset(offset)
        return b.size << self.gran_log2

    def resize(self, offset: int, size: int) -> bool:
        """In place only: True when the allocation now has `size` bytes (shrunk,
        or grown into a free next block), False when it could not grow (unchanged)."""
        b = self.find_live(offset)
        if b is None:
            raise invalid_offset(offset)
        need = self.units_for(size)
        if need > self.capacity:
            return False
        # 1. Shrink (or keep): the tail goes back to the free lists.
        if need <= b.size:
            if need < b.size:
                tail = self.split_after(b, need)
                self.allocated -= tail.size
                self.release(tail, False)
            return True
        # 2. Grow into a free next block; its node keeps what is left.
        n = b.next_phys
        if not n.flags & N_USED and n.size >= need - b.size:
            total = b.size + n.size
            self.remove_free(n)
            log = self.log
            if total > need:
                log += (n, "offset", n.offset)
                n.offset = b.offset + need
                log += (n, "size", n.size)
                n.size = total - need
                self.insert_free(n, False)
            else:
                log += (b, "next_phys", b.next_phys)
                b.next_phys = n.next_phys
                log += (n.next_phys, "prev_phys", n.next_phys.prev_phys)
                n.next_phys.prev_phys = b
                self.drop_node(n)
                self.free_blocks -= 1
            self.allocated += need - b.size
            log += (b, "size", b.size)
            b.size = need
            return True
        return False

    # -------------------------------------------------------- batch operations

    def alloc_many(self, sizes: Sequence[int], align: int) -> list[int]:
        """All or nothing: on failure every block this call made is freed
        again, newest first, each to the head of its list, where alloc took it:
        the lists are as before the call."""
        out: list[int] = []
        try:
            for size in sizes:
                out.append(self.alloc(size, align))
        except MemoryError as e:
            for offset in reversed(out):
                self.free_offset(offset, True)
            if isinstance(e, OutOfMemoryError):
                raise oom(sizes[len(out)], align, len(out)) from None
            raise
        return out

    def free_many(self, offsets: Sequence[int]) -> None:
        """Validate all before freeing any: each offset must be live and listed
        once (its node is marked as it is seen, then unmarked)."""
        k = 0
        while k < len(offsets):
            b = self.find_live(offsets[k])
            if b is None or b.flags & N_MARK:
                break
            self.log += (b, "flags", b.flags)
            b.flags |= N_MARK
            k += 1
        for j in range(k):
            b = self.find_live(offsets[j])
            assert b is not None
            self.log += (b, "flags", b.flags)
            b.flags &= ~N_MARK
        if k < len(offsets):
            raise invalid_offset(offsets[k])
        for offset in offsets:
            self.free(offset)

    # ------------------------------------------------------------------ ranges

    def grow_lists(self, capacity: int) -> None:
        """The free lists cover sizes up to the capacity: more first levels as ranges are added."""
        fl_count = capacity.bit_length()  # tlsf_log2(capacity) + 1
        if fl_count <= self.cls.fl_count:
            return
        more = (fl_count - self.cls.fl_count) << self.cls.sl_log2
        log = self.log
        log += (self, "heads", self.heads)
        self.heads = self.heads + [None] * more
        log += (self, "tails", self.tails)
        self.tails = self.tails + [None] * more
        log += (self.cls, "fl_count", self.cls.fl_count)
        self.cls.fl_count = fl_count

    def set_range_link(self, pred: Node | None, s: Node) -> None:
        if pred:
            self.log += (pred, "next_range", pred.next_range)
            pred.next_range = s
        else:
            self.log += (self, "first_range", self.first_range)
            self.first_range = s

    def add_range(self, offset: int, size: int) -> None:
        """Give [offset, offset+size) (bytes, >= 0) to the allocator; ranges it touches coalesce with it."""
        g = self.gran_log2
        if size > U64_MAX - offset:
            raise ValueError("the range must end below 2**64")
        if (offset | size) & ((1 << g) - 1):
            raise ValueError(f"offset and size must be multiples of the granularity ({1 << g})")
        if not size:
            return
        start = offset >> g
        end = start + (size >> g)
        # the range ending at start (prev), and the first range after it (next)
        pred = None
        s = self.first_range
        while s and s.offset < start:
            pred = s
            s = s.next_range
        prev = s if s and s.offset == start else None
        nxt = prev.next_range if prev else s
        if nxt and nxt.range_first.offset < end:
            raise ValueError(f"range [{offset}, {offset + size}) overlaps a range of the allocator")
        if nxt and nxt.range_first.offset != end:
            nxt = None
        self.grow_lists(self.capacity + (end - start))

        b = self.new_node()
        first = prev.range_first if prev else b
        b.offset = start
        b.size = end - start
        b.prev_phys = prev.prev_phys if prev else None
        if nxt:  # joins the next range: its sentinel closes the new one
            sentinel = nxt
            b.next_phys = nxt.range_first
            if prev:  # and the previous one: its sentinel goes
                self.set_range_link(pred, nxt)
                self.drop_node(prev)
        elif prev:  # extends the previous range: its sentinel moves to the end
            sentinel = prev
            self.log += (sentinel, "offset", sentinel.offset)
            sentinel.offset = end
            b.next_phys = sentinel
        else:  # a range of its own
            sentinel = self.new_node()
            sentinel.offset = end
            sentinel.size = 0
            sentinel.flags = N_USED | N_SENTINEL
            sentinel.next_phys = None  # type: ignore[assignment]  # the one node without
            sentinel.next_range = s
            self.set_range_link(pred, sentinel)
            b.next_phys = sentinel
        log = self.log
        log += (sentinel, "range_first", getattr(sentinel, "range_first", None))
        sentinel.range_first = first
        log += (b.next_phys, "prev_phys", b.next_phys.prev_phys)
        b.next_phys.prev_phys = b
        if b.prev_phys:
            log += (b.prev_phys, "next_phys", b.prev_phys.next_phys)
            b.prev_phys.next_phys = b
        log += (self, "capacity", self.capacity)
        self.capacity += end - start
        self.release(b, False)

    def reset(self) -> None:
        """Forget every allocation; each range becomes one free block. O(blocks)."""
        log = self.log
        n_lists = len(self.heads)
        log += (self, "heads", self.heads)
        self.heads = [None] * n_lists
        log += (self, "tails", self.tails)
        self.tails = [None] * n_lists
        self.cls.fl_bitmap = 0
        log += (self.cls, "sl_bitmap", self.cls.sl_bitmap)
        self.cls.sl_bitmap = [0] * len(self.cls.sl_bitmap)
        log += (self, "index", self.index)
        self.index = {}
        self.allocated = self.allocations = self.free_blocks = 0
        s = self.first_range
        while s:
            first = s.range_first
            b = first.next_phys
            while b is not s:
                nxt = b.next_phys
                self.drop_node(b)
                b = nxt
            log += (first, "size", first.size)
            first.size = s.offset - first.offset
            log += (first, "next_phys", first.next_phys)
            first.next_phys = s
            log += (s, "prev_phys", s.prev_phys)
            s.prev_phys = first
            self.insert_free(first, False)
            self.free_blocks += 1
            s = s.next_range

    # -------------------------------------------------------------- inspection

    def stats(self) -> Stats:
        g = self.gran_log2
        # as tlsf.c: the head of the highest list fits a request of its own size
        i = self.cls.find_highest()
        h = None if i == CLASS_NONE else self.heads[i]
        return Stats(
            self.allocated << g,
            (self.capacity - self.allocated) << g,
            0 if h is None else h.size << g,
            self.allocations,
            self.free_blocks,
        )

    def walk(self) -> list[BlockInfo]:
        """Every block of every range in address order (bytes)."""
        g = self.gran_log2
        out = []
        s = self.first_range
        while s:
            b = s.range_first
            while b is not s:
                out.append(BlockInfo(b.offset << g, b.size << g, bool(b.flags & N_USED)))
                b = b.next_phys
            s = s.next_range
        return out

    # check: nothing outside this module can write the metadata, so a failure
    # here is a bug of the engine; the checks state its invariants.

    def check_ranges(self, c: CheckCtx) -> None:
        """1. Ranges in address order, apart (touching ones coalesce), each a
        chain of contiguous blocks closed by its sentinel; free blocks get N_MARK."""
        units = 0
        budget = self.nodes_total
        end = 0
        s = self.first_range
        while s:
            if not budget:
                raise CorruptionError("the range chain has a cycle")
            budget -= 1
            if s.flags != N_USED | N_SENTINEL or s.size or s.next_phys is not None or s.range_first is None:
                raise CorruptionError(f"sentinel at unit {s.offset} is malformed")
            b = s.range_first
            if b.prev_phys or (s is not self.first_range and b.offset <= end):
                raise CorruptionError(f"range at unit {b.offset} overlaps or touches the one before")
            prev_free = False
            at = b.offset
            while b is not s:
                if not budget:
                    raise CorruptionError("a range has a cycle of blocks")
                budget -= 1
                if (
                    b.offset != at
                    or not b.size
                    or b.size > s.offset - at
                    or b.next_phys is None
                    or b.next_phys.prev_phys is not b
                ):
                    raise CorruptionError(f"block at unit {b.offset} is out of place in its range")
                if b.flags & N_USED:
                    if b.flags != N_USED:
                        raise CorruptionError(f"used block at unit {at} has bad flags")
                    if self.index.get(at) is not b:
                        raise CorruptionError(f"used block at unit {at} is not in the offset index")
                    c.used += 1
                    c.used_units += b.size
                    prev_free = False
                else:
                    if b.flags:
                        raise CorruptionError(f"free block at unit {at} has flags")
                    if prev_free:
                        raise CorruptionError(f"free block at unit {at} follows a free block (not coalesced)")
                    self.log += (b, "flags", b.flags)
                    b.flags = N_MARK
                    c.marked += 1
                    c.free_n += 1
                    prev_free = True
                at += b.size
                b = b.next_phys
            if s.prev_phys is None or s.prev_phys.next_phys is not s:
                raise CorruptionError(f"sentinel at unit {s.offset} is not linked to its last block")
            if at != s.offset:
                raise CorruptionError(f"the blocks end at unit {at}, not at their sentinel (unit {s.offset})")
            units += s.offset - s.range_first.offset
            end = s.offset
            s = s.next_range
        if units != self.capacity:
            raise CorruptionError(f"ranges hold {units} units but the capacity is {self.capacity}")

    def check_lists(self, c: CheckCtx) -> None:
        """2. The first levels are those of the capacity (they size the lists);
        each list holds marked free blocks of its class, each once, linked both ways."""
        cls = self.cls
        seen = 0
        if cls.fl_count != self.capacity.bit_length():  # tlsf_log2(capacity) + 1, 0 for 0
            raise CorruptionError(f"{cls.fl_count} first levels for a capacity of {self.capacity} units")
        bad_fl = cls.check_bitmaps()
        if bad_fl is not None:
            raise CorruptionError(f"bitmaps of first level {bad_fl} disagree with each other or name no list")
        for i in range(cls.fl_count << cls.sl_log2):
            prev = None
            fl = i >> cls.sl_log2
            sl = i & cls.sl_mask
            if (self.heads[i] is None) != (not (cls.sl_bitmap[fl] >> sl) & 1):
                raise CorruptionError(f"list {i} disagrees with its bitmap bit")
            b = self.heads[i]
            while b:
                if b.flags != N_MARK:
                    raise CorruptionError(
                        f"list {i} holds a node that is not a free block or is listed twice"
                    )
                self.log += (b, "flags", b.flags)
                b.flags = 0
                c.marked -= 1
                seen += 1
                if b.prev_free is not prev:
                    raise CorruptionError(f"free block at unit {b.offset}: back link does not match")
                if cls.map_floor(b.size) != i:
                    raise CorruptionError(f"free block at unit {b.offset} is filed in the wrong list")
                prev = b
                b = b.next_free
            if self.tails[i] is not prev:
                raise CorruptionError(f"list {i} has a wrong tail")
        if seen != c.free_n:
            raise CorruptionError(f"{c.free_n} free blocks in the ranges but {seen} in the lists")

    def check_index(self, c: CheckCtx) -> None:
        """3. The offset index holds exactly the used blocks, each under its own offset."""
        entries = 0
        for u, b in self.index.items():
            entries += 1
            if entries > c.used:
                raise CorruptionError("the offset index holds more entries than used blocks")
            if b.flags != N_USED or b.offset != u:
                raise CorruptionError(f"offset index key {u} holds a wrong node (unit {b.offset})")
        if entries != c.used or len(self.index) != c.used:
            raise CorruptionError(
                f"the offset index holds {entries} entries (counted {len(self.index)}) "
                f"for {c.used} used blocks"
            )

    def unmark_all(self) -> None:
        """Clears the marks left by a failed check: the walk of check_ranges,
        with its budget (never below 0) and no further than a node that is not
        a sentinel (which has no range_first)."""
        budget = self.nodes_total
        s = self.first_range
        while s and budget and s.flags == N_USED | N_SENTINEL:
            budget -= 1
            b: Node | None = s.range_first
            while b and b is not s and budget:
                self.log += (b, "flags", b.flags)
                b.flags &= ~N_MARK
                b = b.next_phys
                budget -= 1
            s = s.next_range

    def check(self) -> None:
        """Full invariant check; CorruptionError with the description on failure."""
        c = CheckCtx()
        try:
            self.check_ranges(c)
            self.check_lists(c)
        except CorruptionError:
            self.unmark_all()
            raise
        self.check_index(c)
        # 4. statistics (the free units, capacity - allocated, follow: the
        # ranges hold the capacity)
        if (self.allocations, self.allocated, self.free_blocks) != (c.used, c.used_units, c.free_n):
            raise CorruptionError(
                f"statistics disagree with the blocks: allocations {self.allocations}/{c.used}, "
                f"allocated units {self.allocated}/{c.used_units}, "
                f"free_blocks {self.free_blocks}/{c.free_n}"
            )


# -------------------------------------------------------------------- the API


class OffsetAllocator:
    """TLSF over a range of offsets it never touches (mirrors the binding's
    OffsetAllocator; see tlsf.OffsetAllocator).

    Unlike Heap, the managed space may reach 2**64 - 1 bytes: a size or an
    alignment of 2**64 or more is refused here (OutOfMemoryError), not by the
    engine, and offsets may be 2**63 or more."""

    # no other attributes, as the C type has none (__weakref__: journal.register)
    __slots__ = ("__weakref__", "_lock", "_t")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("type 'tlsf.pure.OffsetAllocator' is not an acceptable base type")

    def __init__(self, capacity: int, *, sl_len: int = 32, granularity: int = 1) -> None:
        # Converted and validated in this order: granularity, sl_len, capacity.
        granularity = index(granularity)
        if granularity > U64_MAX:
            raise ValueError(f"granularity must be below 2**64, not {granularity}")
        if granularity <= 0 or granularity & (granularity - 1):
            raise ValueError(f"granularity must be a power of two, not {granularity}")
        sl_len = index(sl_len)
        if not 1 <= sl_len <= 64 or sl_len & (sl_len - 1):
            raise ValueError(f"sl_len must be a power of two in 1..64, not {sl_len}")
        capacity = range_arg(capacity, "capacity")
        if capacity > U64_MAX:
            raise ValueError(f"capacity must be below 2**64, not {capacity}")
        if capacity & (granularity - 1):
            raise ValueError(
                f"capacity must be a multiple of the granularity ({granularity}), not {capacity}"
            )
        t = TlsfOffset(sl_len, granularity)
        if capacity:
            atomic(t, TlsfOffset.add_range, 0, capacity)
        self._lock = threading.Lock()  # each operation is atomic
        self._t = t
        register(self)

    # Arguments are converted before the lock is taken and the allocator is
    # touched: an __index__ that frees or resets it cannot break an operation.
    # Each operation that changes it runs through journal.atomic on the line
    # that takes the lock (as in Heap, which says why).

    def alloc(self, size: int, align: int = 1) -> int:
        """O(1). Return the offset (an int) of size bytes (rounded up to the
        granularity; size 0 takes one granule), a multiple of align (a power
        of two). OutOfMemoryError if nothing fits."""
        if size.__class__ is not int or size < 0:
            size = size_arg(size)
        if align.__class__ is not int or align != 1:
            align = align_arg(align)
        if size > U64_MAX or align > U64_MAX:  # never fits, even in 2**64 - 1 bytes
            raise oom(size, align)
        with self._lock: return atomic(self._t, TlsfOffset.alloc, size, align)  # noqa: E701

    def free(self, offset: int) -> None:
        """Free the allocation at offset. InvalidOffsetError if it is not live."""
        if offset.__class__ is not int:
            offset = index(offset)
        with self._lock: return atomic(self._t, TlsfOffset.free, offset)  # noqa: E701

    def resize(self, offset: int, size: int) -> bool:
        """In place only: True when the allocation now holds `size` bytes (shrunk,
        or grown into free space right after it), False when it cannot grow (unchanged)."""
        offset = index(offset)
        size = size_arg(size)
        if size > U64_MAX:  # cannot be had: only the offset is checked
            with self._lock:
                self._t.usable_size(offset)
            return False
        with self._lock: return atomic(self._t, TlsfOffset.resize, offset, size)  # noqa: E701

    def usable_size(self, offset: int) -> int:
        """Bytes of the live allocation at offset (an int)."""
        offset = index(offset)
        with self._lock:
            return self._t.usable_size(offset)

    @overload
    def alloc_many(  # type: ignore[overload-overlap]  # an ndarray is a buffer too: it comes first
        self, sizes: np.ndarray[Any, Any], align: int = 1
    ) -> npt.NDArray[np.uint64]: ...
    @overload
    def alloc_many(self, sizes: Any, align: int = 1) -> array[int]: ...
    def alloc_many(self, sizes: Any, align: int = 1) -> Any:
        """Allocate every size in sizes (an iterable or a buffer of integers),
        all aligned to align; all or nothing. Return the offsets as an
        array.array('Q') (unsigned 64-bit: any offset below 2**64 - 1), or as
        a uint64 numpy.ndarray when sizes is a numpy.ndarray."""
        values = [size_arg(v) for v in integers(sizes)]
        align = align_arg(align)
        huge = next((k for k, v in enumerate(values) if v > U64_MAX), -1)
        if huge >= 0:  # as in alloc, before anything is allocated
            raise oom(values[huge], align, huge)
        if values and align > U64_MAX:
            raise oom(values[0], align, 0)
        result, items = offsets_result(sizes, len(values), wide=True)

        def op(t: TlsfOffset) -> Any:
            items[:] = array("Q", t.alloc_many(values, align))
            return result

        with self._lock: return atomic(self._t, op)  # noqa: E701

    def free_many(self, offsets: Any) -> None:
        """Free every offset in offsets (an iterable or a buffer of integers);
        all are validated (live, listed once) before any is freed."""
        values = [index(v) for v in integers(offsets)]
        with self._lock: return atomic(self._t, TlsfOffset.free_many, values)  # noqa: E701

    def add_range(self, offset: int, size: int) -> None:
        """Give [offset, offset + size) to the allocator; ranges touching it
        coalesce with it. ValueError when it overlaps a range or is not a
        multiple of the granularity."""
        offset = range_arg(offset, "offset")
        size = range_arg(size, "size")
        with self._lock: return atomic(self._t, TlsfOffset.add_range, offset, size)  # noqa: E701

    def reset(self) -> None:
        """Forget every allocation; every range becomes one free block."""
        with self._lock: return atomic(self._t, TlsfOffset.reset)  # noqa: E701

    @property
    def capacity(self) -> int:
        """Total bytes of all ranges."""
        return self._t.capacity << self._t.gran_log2

    @property
    def granularity(self) -> int:
        """Offsets and sizes are multiples of it."""
        return 1 << self._t.gran_log2

    @property
    def sl_len(self) -> int:
        """Second-level lists per first-level class."""
        return 1 << self._t.cls.sl_log2

    def stats(self) -> Stats:
        """Return the allocator's statistics, a tlsf.Stats (O(1))."""
        with self._lock:
            return self._t.stats()

    def walk(self) -> Iterator[BlockInfo]:
        """Return an iterator of tlsf.BlockInfo(offset, size, used): every block
        of every range in address order. There are no headers: offset is what
        alloc() returned for a used block (allocation_of(block), as for every
        heap type) and size is exact."""
        with self._lock:
            return iter(self._t.walk())

    def allocation_of(self, block: BlockInfo, /) -> int:
        """The offset alloc() returned for block, a tlsf.BlockInfo of walk():
        what free() and usable_size() take, block.offset itself (no headers);
        for a free block, the offset an allocation at its start would have.
        Arithmetic only: block is not looked up."""
        return allocation_of(block, 0)

    def check(self) -> None:
        """Full invariant check; CorruptionError if the metadata is inconsistent."""
        # check marks the free blocks (N_MARK), then clears the marks
        with self._lock: return atomic(self._t, TlsfOffset.check)  # noqa: E701

    __copy__ = __deepcopy__ = __reduce_ex__ = __reduce__ = no_copy  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"<tlsf.pure.OffsetAllocator capacity={self.capacity} granularity={self.granularity} "
            f"sl_len={self.sl_len} allocations={self._t.allocations}>"
        )


__all__ = ["Node", "OffsetAllocator", "TlsfOffset"]
