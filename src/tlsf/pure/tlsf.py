"""The twin of the in-band engine ``csrc/tlsf.c`` and of its binding, `Heap`.

This module is the readable reference of ``csrc/tlsf.c``. Class `Tlsf` mirrors
that file function for function, with the same names (``tlsf_alloc`` there is
`Tlsf.alloc` here); the size classes and bitmaps are `tlsf.pure.classes`
(``tlsf_classes.h``), as in C. C's helpers that only shape its machine code
have none here: ``list_of`` and ``list_exists`` are `Classes.map_floor` and
`Classes.class_exists`, and ``alloc_any`` / ``free_any`` (the out-of-line copies
for another sl_len or alignment) are `Tlsf.alloc` / `Tlsf.free_offset`. Class
`Heap` mirrors the binding ``binding/heap.c``.
For the same configuration and the same calls both return identical offsets
and walks, which the differential test checks.

Block layout (offsets from the start of memory, multiples of 16)::

    used block   [size|flags|align][prev_phys] payload ...
    free block   [size          ][prev_phys][next_free][prev_free] ...
    sentinel     [32|flags      ][prev_phys][pool_start][next_pool]

Flags: USED, SENTINEL, and PREV_FREE (the previous block is free), so that
freeing a block next to a used one does not touch that block's header. A free
block has no flags: its previous block is never free.

Each pool ends with a sentinel, a permanently used block that stops
coalescing and chains the pools in address order. Which offsets are live
allocations is decided by `Tlsf.live`, kept outside the arena.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import threading
import weakref
from array import array
from collections.abc import Callable, Iterator, Sequence
from operator import index
from typing import TYPE_CHECKING, Any, overload

from tlsf._errors import CorruptionError, InvalidOffsetError, OutOfMemoryError
from tlsf._records import BlockInfo, Stats
from tlsf.pure.args import (
    align_arg,
    allocation_of,
    integers,
    is_size_arg,
    no_copy,
    offsets_result,
    oom,
    oom_realloc,
    plain_data_format,
    range_arg,
    size_arg,
)
from tlsf.pure.classes import CLASS_NONE, FL_MAX, Classes
from tlsf.pure.journal import atomic, register

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# ----------------------------------------------------------------------- layout

GRANULARITY = 16
HEADER_SIZE = 16
MIN_BLOCK = 32
SENTINEL_SIZE = 32
MIN_POOL = MIN_BLOCK + SENTINEL_SIZE
MAX_CAPACITY = 1 << 58
NIL = (1 << 64) - 1
Neighbours = tuple[int, int, int, int, int, int]

GRAN_LOG2 = 4
F_USED = 1
F_SENTINEL = 2
F_PREV_FREE = 4
ALIGN_SHIFT = 58  # a used block's size word keeps log2(alignment) in bits 58..63
SIZE_MASK = ((1 << ALIGN_SHIFT) - 1) & ~(GRANULARITY - 1)
NOT_SIZE = ((1 << 64) - 1) & ~SIZE_MASK
SENTINEL_WORD = SENTINEL_SIZE | F_USED | F_SENTINEL
MAGIC = 0x544C5346434F5245  # "TLSFCORE", the control structure's first word

# Words of the C control structure (struct tlsf) that the twin keeps too, in
# a heap image that outlives its process (a file): the magic, the crash-safe
# mode and a moving realloc's note, which tlsf_recover reads.
CTL_MAGIC, CTL_CRASH_SAFE, CTL_PENDING_OLD, CTL_PENDING_NEW = 0, 7, 8, 9

# Word indices inside a block.
W_SIZE, W_PREV, W_NEXT_FREE, W_PREV_FREE = 0, 1, 2, 3
W_POOL_START, W_NEXT_POOL = 2, 3  # in a sentinel


def round_up(x: int, a: int) -> int:
    return (x + a - 1) & ~(a - 1)


def round_down(x: int, a: int) -> int:
    return x & ~(a - 1)


def block_size_for(size: int) -> int:
    """Block size holding `size` payload bytes."""
    b = (size + HEADER_SIZE + GRANULARITY - 1) & ~(GRANULARITY - 1)
    return b if b > MIN_BLOCK else MIN_BLOCK


def align_gap(b: int, align: int) -> int:
    """Padding in front of the payload for `align` in a block at b: 0, or at
    least MIN_BLOCK so that it can be a free block of its own."""
    if align <= GRANULARITY:
        return 0
    gap = round_up(b + HEADER_SIZE, align) - HEADER_SIZE - b
    return gap + align if 0 < gap < MIN_BLOCK else gap


def fl_count_for(capacity: int) -> int:
    """First-level classes a heap of this capacity can use (sizes up to capacity)."""
    return capacity.bit_length() - GRAN_LOG2 if capacity >= 2 * GRANULARITY else 1


def live_words_for(capacity: int) -> int:
    """64-bit words of the C core's live bitmap: one bit per 16-byte granule,
    and at least one (the C core reads it for any heap)."""
    return 1 if capacity < 64 * GRANULARITY else (capacity // GRANULARITY + 63) // 64


def sound_used_word(b: int, word: int) -> bool:
    """A used block's size word is sound: flags, size, recorded alignment."""
    aligned = not (b + HEADER_SIZE) & ((1 << (word >> ALIGN_SHIFT)) - 1)
    return word & (GRANULARITY - 1) & ~F_PREV_FREE == F_USED and aligned


def control_size(capacity: int, sl_len: int) -> int:
    """Bytes of the C core's control structure for this configuration; 0 if invalid."""
    if not (1 <= sl_len <= 64) or sl_len & (sl_len - 1) or capacity > MAX_CAPACITY:
        return 0
    fl_count = fl_count_for(capacity)
    live_words = live_words_for(capacity)
    return 8 * (17 + FL_MAX) + 8 * (2 * fl_count * sl_len + live_words)  # sizeof(struct tlsf) + arrays


class Tlsf:
    """Control structure and operations of one heap over `memory` (mirrors tlsf.c)."""

    def __init__(self, memory: memoryview, capacity: int, sl_len: int) -> None:
        if not control_size(capacity, sl_len):
            raise ValueError(f"sl_len must be a power of two in 1..64, not {sl_len}")
        self.capacity = capacity
        self.limit = capacity - MIN_BLOCK if capacity >= MIN_BLOCK else 0
        self.cls = Classes(sl_len.bit_length() - 1, GRAN_LOG2, fl_count_for(capacity))
        n_lists = self.cls.fl_count << self.cls.sl_log2
        self.heads = [NIL] * n_lists
        self.tails = [NIL] * n_lists
        self.live: set[int] = set()  # payload offsets of live allocations
        self.first_pool = NIL
        self.bad_offset = NIL
        # statistics (C: the used blocks' bytes with headers, the pools' blocks'
        # bytes but the sentinels; stats() derives allocated and free bytes)
        self.used_bytes = self.pool_bytes = self.allocations = self.free_blocks = 0
        # crash-safe mode and a moving realloc's note (see set_crash_safe);
        # ctl: the C control structure's words in a heap image, or None
        self.crash_safe = False
        self.pending_old = self.pending_new = NIL
        self.ctl: memoryview | None = None
        self.bytes = memory
        # Native 64-bit words over the arena; every header sits at a multiple of 16.
        self.words = memory[: capacity - capacity % 8].cast("Q")
        # The undo journal of the operation in progress (tlsf.pure.journal):
        # every store below is recorded just before it is made.
        self.log: list[Any] = []
        self.cls.log = self.log

    def set_pending(self, old: int, new: int) -> None:
        """Notes a moving realloc's blocks (C: t->pending_old, t->pending_new),
        in the image's control words too when there are some."""
        log = self.log
        log += (self, "pending_old", self.pending_old)
        self.pending_old = old
        log += (self, "pending_new", self.pending_new)
        self.pending_new = new
        ctl = self.ctl
        if ctl is not None:
            log += (ctl, CTL_PENDING_OLD, ctl[CTL_PENDING_OLD])
            ctl[CTL_PENDING_OLD] = old
            log += (ctl, CTL_PENDING_NEW, ctl[CTL_PENDING_NEW])
            ctl[CTL_PENDING_NEW] = new

    def init_ctl(self, ctl: memoryview | None) -> None:
        """The image's control words as tlsf_init leaves them (magic, no note)."""
        self.ctl = ctl
        if ctl is not None:
            ctl[CTL_MAGIC] = MAGIC
            ctl[CTL_PENDING_OLD] = ctl[CTL_PENDING_NEW] = NIL

    def set_crash_safe(self) -> None:
        """Crash-safe mode (mirrors tlsf_set_crash_safe): a moving realloc
        notes its blocks for recover, and never moves into the previous block."""
        self.crash_safe = True
        if self.ctl is not None:
            self.ctl[CTL_CRASH_SAFE] = 1

    def counters(self) -> tuple[int, ...]:
        """What journal.atomic saves when an operation begins (and so is not journaled)."""
        return (
            self.used_bytes, self.pool_bytes, self.allocations, self.free_blocks,
            self.bad_offset, self.cls.fl_bitmap,
        )  # fmt: skip

    def set_counters(self, saved: tuple[int, ...]) -> None:
        (
            self.used_bytes, self.pool_bytes, self.allocations, self.free_blocks,
            self.bad_offset, self.cls.fl_bitmap,
        ) = saved  # fmt: skip

    # -------------------------------------------------------------- free lists

    def insert_free(self, b: int, size: int, at_head: bool) -> None:
        """File free block b; a block at least as large as the head goes in
        front, a smaller one at the tail (alloc's look into the request's own
        list sees the head only: a small remainder must not hide the holes of a
        same-size workload). at_head: in front anyway (an undone allocation
        goes back where alloc took it)."""
        w = self.words
        log = self.log
        i = self.cls.map_floor(size)
        h = self.heads[i]
        k = b >> 3
        log += (w, k + W_NEXT_FREE, w[k + W_NEXT_FREE])
        log += (w, k + W_PREV_FREE, w[k + W_PREV_FREE])
        if h == NIL:
            w[k + W_NEXT_FREE] = NIL
            w[k + W_PREV_FREE] = NIL
            log += (self.heads, i, h)
            log += (self.tails, i, self.tails[i])
            self.heads[i] = self.tails[i] = b
            self.cls.mark_class(i)
        elif at_head or size >= w[h >> 3]:
            w[k + W_NEXT_FREE] = h
            w[k + W_PREV_FREE] = NIL
            log += (w, (h >> 3) + W_PREV_FREE, w[(h >> 3) + W_PREV_FREE])
            w[(h >> 3) + W_PREV_FREE] = b
            log += (self.heads, i, h)
            self.heads[i] = b
        else:
            t = self.tails[i]
            w[k + W_NEXT_FREE] = NIL
            w[k + W_PREV_FREE] = t
            log += (w, (t >> 3) + W_NEXT_FREE, w[(t >> 3) + W_NEXT_FREE])
            w[(t >> 3) + W_NEXT_FREE] = b
            log += (self.tails, i, t)
            self.tails[i] = b
        self.free_blocks += 1

    def remove_free(self, b: int, i: int) -> None:
        """Unlink free block b from its list i."""
        w = self.words
        log = self.log
        n = w[(b >> 3) + W_NEXT_FREE]
        p = w[(b >> 3) + W_PREV_FREE]
        if p == NIL:
            log += (self.heads, i, self.heads[i])
            self.heads[i] = n
        else:
            log += (w, (p >> 3) + W_NEXT_FREE, w[(p >> 3) + W_NEXT_FREE])
            w[(p >> 3) + W_NEXT_FREE] = n
        if n == NIL:
            log += (self.tails, i, self.tails[i])
            self.tails[i] = p
        else:
            log += (w, (n >> 3) + W_PREV_FREE, w[(n >> 3) + W_PREV_FREE])
            w[(n >> 3) + W_PREV_FREE] = p
        if self.heads[i] == NIL:
            self.cls.unmark_class(i)
        self.free_blocks -= 1

    def remove_head(self, b: int, i: int) -> None:
        """remove_free for b, the head of list i (checked: its PREV_FREE is
        NIL), which alloc takes."""
        w = self.words
        log = self.log
        n = w[(b >> 3) + W_NEXT_FREE]
        log += (self.heads, i, self.heads[i])
        self.heads[i] = n
        if n == NIL:
            log += (self.tails, i, self.tails[i])
            self.tails[i] = NIL
            self.cls.unmark_class(i)
        else:
            log += (w, (n >> 3) + W_PREV_FREE, w[(n >> 3) + W_PREV_FREE])
            w[(n >> 3) + W_PREV_FREE] = NIL
        self.free_blocks -= 1

    # -------------------------------------------------------------- validation
    # The arena is untrusted: what is read from it is checked before it is
    # followed, and before the first write of an operation.

    def valid_block_offset(self, b: int) -> bool:
        return not b & (GRANULARITY - 1) and b <= self.limit

    def corrupt(self, where: int, what: str = "heap metadata is corrupt") -> CorruptionError:
        """The error to raise; `what` ends with ";" for a check's message (the
        binding's format: "<what>; at offset <where>", or what alone at NIL)."""
        self.bad_offset = where
        if where == NIL:
            return CorruptionError(what[:-1] if what.endswith(";") else what)
        return CorruptionError(f"{what} at offset {where}")

    def check_links(self, b: int, i: int) -> None:
        """Free block b's list links agree with its neighbours in list i, and
        the list's head and tail ("safe unlinking": remove_free may follow them)."""
        w = self.words
        n = w[(b >> 3) + W_NEXT_FREE]
        p = w[(b >> 3) + W_PREV_FREE]
        if (
            self.heads[i] != b
            if p == NIL
            else self.heads[i] == b or not self.valid_block_offset(p) or w[(p >> 3) + W_NEXT_FREE] != b
        ):
            raise self.corrupt(b)
        if (
            self.tails[i] != b
            if n == NIL
            else not self.valid_block_offset(n) or w[(n >> 3) + W_PREV_FREE] != b
        ):
            raise self.corrupt(b)

    def valid_free_size(self, b: int, s: int) -> bool:
        """s <= limit - b < MAX_CAPACITY also clears the alignment bits, so only
        the flags (none on a free block) and the granularity are tested."""
        return not s & (GRANULARITY - 1) and MIN_BLOCK <= s <= self.limit - b

    def check_free_at(self, b: int) -> tuple[int, int]:
        """(size, list) of the free block at b (a valid block offset), after
        checking that it is correctly linked."""
        s = self.words[b >> 3]
        if not self.valid_free_size(b, s):
            raise self.corrupt(b)
        i = self.cls.map_floor(s)
        self.check_links(b, i)
        return s, i

    def check_free_before(self, q: int, end: int) -> tuple[int, int]:
        """check_free_at for q, read from block end's prev_phys, which must end
        at end. A q that is no block before end (NIL or out of range) blames
        end; any other fault, q."""
        if (
            not self.valid_block_offset(q)
            or not self.valid_free_size(q, s := self.words[q >> 3])
            or q + s != end
        ):
            raise self.corrupt(q if self.valid_block_offset(q) and q < end else end)
        i = self.cls.map_floor(s)
        self.check_links(q, i)
        return s, i

    def check_head(self, b: int, i: int) -> int:
        """Size of b, just read from the head of list i, after checking that it
        is correctly linked (check_links knowing that the head is b)."""
        w = self.words
        s = w[b >> 3]
        n = w[(b >> 3) + W_NEXT_FREE]
        if (
            not self.valid_free_size(b, s)
            or w[(b >> 3) + W_PREV_FREE] != NIL
            or (
                self.tails[i] != b
                if n == NIL
                else not self.valid_block_offset(n) or w[(n >> 3) + W_PREV_FREE] != b
            )
        ):
            raise self.corrupt(b)
        return s

    def check_used_block(self, b: int) -> int:
        """Size word of the used block at b (behind a live payload), after
        checking that the block after it names it as previous block (so that a
        scribbled size cannot swallow a neighbour)."""
        words = self.words
        w = words[b >> 3]
        s = w & SIZE_MASK
        if (
            w & (GRANULARITY - 1) & ~F_PREV_FREE != F_USED
            or s < MIN_BLOCK
            or b > self.limit
            or s > self.limit - b
            or words[((b + s) >> 3) + W_PREV] != b
        ):
            raise self.corrupt(b)
        return w

    def check_next(self, b: int, word: int, next_free: bool) -> tuple[int, int, int]:
        """(next, next_size, next_index): the block after used block b (size
        word `word`), free (and sound) or not as `next_free` says; size and
        index are 0 when it is not free."""
        nxt = b + (word & SIZE_MASK)
        if next_free:  # nxt is a valid block offset: b's size was checked
            return (nxt, *self.check_free_at(nxt))
        return nxt, 0, 0

    def check_prev(self, b: int, word: int) -> tuple[int, int, int]:
        """(prev, prev_size, prev_index): the block before used block b, read
        only when `word` says it is free; size and index 0 when it is not."""
        prev = self.words[(b >> 3) + W_PREV]
        if not word & F_PREV_FREE:
            return prev, 0, 0
        return (prev, *self.check_free_before(prev, b))

    def check_neighbours(self, b: int, word: int) -> Neighbours:
        """Both physical neighbours of used block b, the next one as its header
        says: (prev, prev_size, prev_index, next, next_size, next_index)."""
        nxt = self.check_next(b, word, not self.words[(b + (word & SIZE_MASK)) >> 3] & F_USED)
        return (*self.check_prev(b, word), *nxt)

    # --------------------------------------------------------- block placement

    def link_next(self, nxt: int, prev: int, prev_free: bool) -> None:
        """Block `nxt` now follows block `prev`, free or not."""
        w = self.words
        k = nxt >> 3
        self.log += (w, k, w[k])
        w[k] = w[k] | F_PREV_FREE if prev_free else w[k] & ~F_PREV_FREE
        self.log += (w, k + W_PREV, w[k + W_PREV])
        w[k + W_PREV] = prev

    def carve(self, b: int, size: int, gap: int, need: int, align_log2: int, note: bool = False) -> int:
        """Turn unlinked free region [b, b+size) into a used block of `need`
        bytes after `gap` bytes of padding; padding and tail go back to the
        free lists. Returns the payload offset. note: the payload offset
        becomes pending_new just before the commit (crash-safe realloc).

        The new headers are written first, back to front, inside the region
        whose header still says "free, size bytes"; the commit is the store
        to b's size word (the padding's, or the used block's)."""
        w = self.words
        log = self.log
        end = b + size
        u = b + gap
        usize = size - gap
        rest = NIL
        if usize - need >= MIN_BLOCK:
            rest = u + need
            log += (w, rest >> 3, w[rest >> 3])
            w[rest >> 3] = usize - need
            log += (w, (rest >> 3) + W_PREV, w[(rest >> 3) + W_PREV])
            w[(rest >> 3) + W_PREV] = u
            self.link_next(end, rest, True)
            usize = need
        else:
            self.link_next(end, u, False)
        word = usize | F_USED | (align_log2 << ALIGN_SHIFT) | (F_PREV_FREE if gap else 0)
        if note:
            self.set_pending(self.pending_old, u + HEADER_SIZE)
        if gap:
            log += (w, (u >> 3) + W_PREV, w[(u >> 3) + W_PREV])
            w[(u >> 3) + W_PREV] = b
            log += (w, u >> 3, w[u >> 3])
            w[u >> 3] = word
            log += (w, b >> 3, w[b >> 3])
            w[b >> 3] = gap  # commit
            self.insert_free(b, gap, False)
        else:
            log += (w, u >> 3, w[u >> 3])
            w[u >> 3] = word  # commit
        if rest != NIL:
            self.insert_free(rest, size - gap - need, False)
        log += (self.live, u + HEADER_SIZE, False)
        self.live.add(u + HEADER_SIZE)
        self.allocations += 1
        self.used_bytes += usize
        return u + HEADER_SIZE

    def release(self, b: int, size: int, nb: Neighbours, at_head: bool) -> int:
        """Unlinked region [b, b+size) becomes a free block, merged with the
        free neighbours described by nb (see check_neighbours); at_head as
        insert_free. Returns where the merged free block starts."""
        prev, prev_size, prev_index, nxt, next_size, next_index = nb
        if next_size:
            self.remove_free(nxt, next_index)
            size += next_size
        if prev_size:
            self.remove_free(prev, prev_index)
            b = prev
            size += prev_size
        return self.file_free(b, size, at_head)

    def file_free(self, b: int, size: int, at_head: bool) -> int:
        """Region [b, b+size) (prev_phys valid), with no free neighbour left,
        becomes a free block: the commit, then its list; at_head as insert_free."""
        self.log += (self.words, b >> 3, self.words[b >> 3])
        self.words[b >> 3] = size
        self.link_next(b + size, b, True)
        self.insert_free(b, size, at_head)
        return b

    # ------------------------------------------------------- public operations

    def alloc(self, size: int, align: int, note: bool = False) -> int:
        """note: as carve's (C: alloc_noted; tlsf_alloc passes none)."""
        if size > self.capacity or align > self.capacity:
            raise oom(size, align)
        need = block_size_for(size)
        # worst-case padding: align_gap() <= align + GRANULARITY
        search = need if align <= GRANULARITY else need + align + GRANULARITY
        # Beyond rlsf: first the head of the request's own (rounded-down) list.
        # It often fits, and only there can the holes of a same-size workload
        # or a heap's single large block be found (rlsf #15). Still O(1).
        cls = self.cls
        i = cls.map_floor(search)
        if cls.class_exists(i) and (b := self.heads[i]) != NIL:
            gap = align_gap(b, align)
            if gap + need <= self.words[b >> 3]:
                return self.take_head(b, i, gap, need, align, note)
        # Good fit: every block of the list found is large enough.
        i = cls.find_suitable(cls.map_ceil(search))
        if i == CLASS_NONE:
            raise oom(size, align)
        b = self.heads[i]
        return self.take_head(b, i, align_gap(b, align), need, align, note)

    def take_head(self, b: int, i: int, gap: int, need: int, align: int, note: bool) -> int:
        """alloc's end: b, just read from the head of list i, becomes a block
        of `need` bytes after `gap` bytes of padding for alignment `align`."""
        bsize = self.check_head(b, i)
        if gap + need > bsize:
            raise self.corrupt(b)
        if self.words[((b + bsize) >> 3) + W_PREV] != b:
            raise self.corrupt(b + bsize)
        self.remove_head(b, i)
        return self.carve(b, bsize, gap, need, 0 if align <= GRANULARITY else align.bit_length() - 1, note)

    def free_offset(self, p: int, next_free: bool | None, at_head: bool) -> tuple[int, int, int]:
        """Frees live payload p. next_free: whether a free block follows, or
        None to read it from the header. alloc_many's rollback knows it from
        the call instead (on a corrupted heap the block after may look free
        without being the call's) and puts the block back at_head of its list,
        where alloc took it, so that lists, bitmaps and statistics are as
        before the call. Returns what the free did (C: the tlsf_freed_t out):
        the freed block's size, and the start and size of the free block that
        now holds it."""
        if p not in self.live:
            raise InvalidOffsetError(f"offset {p} is not a live allocation")
        b = p - HEADER_SIZE
        word = self.check_used_block(b)
        size = word & SIZE_MASK
        if next_free is None:
            next_free = not self.words[(b + size) >> 3] & F_USED
        if not next_free and not word & F_PREV_FREE:  # most frees: no neighbour to check or merge
            self.drop_used(p, size)
            merged = self.file_free(b, size, at_head)
        else:
            nxt = self.check_next(b, word, next_free)
            nb = (*self.check_prev(b, word), *nxt)
            self.drop_used(p, size)
            merged = self.release(b, size, nb, at_head)
        return size, merged, self.words[merged >> 3]

    def drop_used(self, p: int, size: int) -> None:
        """The used block of `size` behind live payload p is no more."""
        self.log += (self.live, p, True)
        self.live.discard(p)
        self.allocations -= 1
        self.used_bytes -= size

    def free(self, p: int) -> None:
        self.free_offset(p, None, False)

    def free_merged(self, p: int) -> tuple[int, int, int]:
        """free, telling what it did (free_offset's result)."""
        return self.free_offset(p, None, False)

    def live_word(self, p: int) -> int:
        """The size word of live payload p's block, checked."""
        if p not in self.live:
            raise InvalidOffsetError(f"offset {p} is not a live allocation")
        return self.check_used_block(p - HEADER_SIZE)

    def usable_size(self, p: int) -> int:
        return (self.live_word(p) & SIZE_MASK) - HEADER_SIZE

    def alignment(self, p: int) -> int:
        """The alignment live allocation p was made with (kept by realloc)."""
        return 1 << (self.live_word(p) >> ALIGN_SHIFT)

    def grow_need(self, size: int, align: int) -> int:
        """Bytes of free space that, appended to a pool as one free block,
        make alloc(size, align) succeed whatever else the heap holds: the
        worst case for alignment, rounded up to a class boundary (good fit).
        NIL (C: UINT64_MAX) for a request no heap of this capacity fits."""
        if size > self.capacity or align > self.capacity:
            return NIL
        need = block_size_for(size)
        search = need if align <= GRANULARITY else need + align + GRANULARITY
        # a block of at least the lower bound of class map_ceil(search) is found by the search
        m = search.bit_length() - 1
        sli = self.cls.sl_log2
        return round_up(search, 1 << (m - sli)) if m > sli else search

    def realloc(self, p: int, size: int) -> int:
        if p not in self.live:
            raise InvalidOffsetError(f"offset {p} is not a live allocation")
        b = p - HEADER_SIZE
        word = self.check_used_block(b)
        if size > self.capacity:
            raise oom_realloc(p, size)
        old = word & SIZE_MASK
        need = block_size_for(size)
        align_log2 = word >> ALIGN_SHIFT
        flags = word & NOT_SIZE
        nb = self.check_neighbours(b, word)
        prev, prev_size, prev_index, nxt, next_size, next_index = nb
        w = self.words
        log = self.log

        # 1. Shrink (or keep) in place: the tail goes back to the free lists.
        # Its header (merged with a free next block) is written inside the
        # block first; the commit is the block's own smaller size.
        if need <= old:
            if old - need >= MIN_BLOCK:
                log += (w, ((b + need) >> 3) + W_PREV, w[((b + need) >> 3) + W_PREV])
                w[((b + need) >> 3) + W_PREV] = b
                self.used_bytes -= old - need
                self.release(b + need, old - need, (prev, 0, 0, nxt, next_size, next_index), False)
                log += (w, b >> 3, word)
                w[b >> 3] = need | flags  # commit
            return p
        # 2. Grow into a free next block.
        if next_size and old + next_size >= need:
            total = old + next_size
            self.remove_free(nxt, next_index)
            if total - need >= MIN_BLOCK:
                rest = b + need
                log += (w, rest >> 3, w[rest >> 3])
                w[rest >> 3] = total - need
                log += (w, (rest >> 3) + W_PREV, w[(rest >> 3) + W_PREV])
                w[(rest >> 3) + W_PREV] = b
                self.link_next(b + total, rest, True)
                self.insert_free(rest, total - need, False)
                total = need
            else:
                self.link_next(b + total, b, False)
            log += (w, b >> 3, word)
            w[b >> 3] = total | flags
            self.used_bytes += total - old
            return p
        # 3. Move into a free previous block (with the next one too if free);
        # not in crash-safe mode (see csrc/tlsf.c, "Crash consistency").
        if prev_size and not self.crash_safe:
            avail = prev_size + old + next_size
            gap = align_gap(prev, 1 << align_log2)
            if gap + need <= avail:
                self.remove_free(prev, prev_index)
                if next_size:
                    self.remove_free(nxt, next_index)
                q = prev + gap + HEADER_SIZE
                dst = slice(q, q + old - HEADER_SIZE)
                log += (self.bytes, dst, self.bytes[dst].tobytes())
                self.bytes[q : q + old - HEADER_SIZE] = self.bytes[p : p + old - HEADER_SIZE]
                self.drop_used(p, old)
                return self.carve(prev, avail, gap, need, align_log2)
        # 4. Allocate elsewhere, copy, free. In crash-safe mode the two blocks
        # are noted first (pending_new just before the new block's commit), so
        # that recovery frees the new block when the old one is still live.
        if self.crash_safe:
            self.set_pending(p, self.pending_new)
        try:
            q = Tlsf.alloc(self, size, 1 << align_log2, self.crash_safe)  # not a Flex's: C calls alloc_noted
        except OutOfMemoryError:
            raise oom_realloc(p, size) from None
        dst = slice(q, q + old - HEADER_SIZE)
        log += (self.bytes, dst, self.bytes[dst].tobytes())
        self.bytes[q : q + old - HEADER_SIZE] = self.bytes[p : p + old - HEADER_SIZE]
        Tlsf.free(self, p)
        self.set_pending(NIL, NIL)
        return q

    # -------------------------------------------------------- batch operations

    def alloc_many(self, sizes: Sequence[int], align: int) -> list[int]:
        """All or nothing: on failure, free_offset undoes each allocation of
        the call, newest first, at the head of its list. Whether an allocation
        left a remainder is read off
        the free-block count (kept outside the arena): one block taken, one
        more for padding (PREV_FREE in the header it wrote), one more for a
        remainder."""
        out: list[int] = []
        splits: list[bool] = []
        try:
            for size in sizes:
                free_blocks = self.free_blocks
                p = Tlsf.alloc(self, size, align)  # not a Flex's: C calls tlsf_alloc
                out.append(p)
                padded = 1 if self.words[(p - HEADER_SIZE) >> 3] & F_PREV_FREE else 0
                splits.append(self.free_blocks + 1 - free_blocks - padded == 1)
        except (OutOfMemoryError, CorruptionError) as e:
            error = oom(sizes[len(out)], align, len(out)) if isinstance(e, OutOfMemoryError) else e
            for p, split in zip(reversed(out), reversed(splits)):
                try:
                    self.free_offset(p, split, True)
                except CorruptionError as c:  # that block stays allocated; the others go on
                    error = c
            raise error from None
        return out

    def free_many(self, offsets: Sequence[int]) -> None:
        self.free_many_notify(offsets, None)

    def free_many_notify(
        self, offsets: Sequence[int], freed: Callable[[int, tuple[int, int, int]], None] | None
    ) -> None:
        """free_many, calling freed(offset, what) after each free (what: as free_merged tells).

        Every offset is validated before any is freed: live, listed once
        (its live mark is cleared as it is seen, then restored), and its block
        and physical neighbours sound. Whole free lists are not checked (that
        is O(n)), so forged links between two lists can still stop the batch
        midway (a known gap, tests/test_corruption.py)."""
        live = self.live
        k = 0
        while k < len(offsets) and offsets[k] in live:
            self.log += (live, offsets[k], True)
            live.discard(offsets[k])
            k += 1
        live.update(offsets[:k])
        if k < len(offsets):
            raise InvalidOffsetError(f"offset {offsets[k]} is not a live allocation")
        for p in offsets:
            self.check_neighbours(p - HEADER_SIZE, self.check_used_block(p - HEADER_SIZE))
        for p in offsets:
            what = self.free_offset(p, None, False)
            if freed is not None:
                freed(p, what)

    # ------------------------------------------------------------------- pools

    def valid_sentinel(self, s: int) -> bool:
        w = self.words
        return (
            self.valid_block_offset(s)
            and w[s >> 3] & ~F_PREV_FREE == SENTINEL_WORD
            and w[(s >> 3) + W_POOL_START] < s
        )

    def find_pool_slot(self, start: int, end: int) -> tuple[int, int]:
        """(prev_link, next): where a pool [start, end) goes in the address-
        ordered chain; ValueError if it overlaps a pool."""
        w = self.words
        prev = NIL
        s = self.first_pool
        while s != NIL:
            if not self.valid_sentinel(s) or (prev != NIL and s <= prev):
                raise self.corrupt(s)
            ps = w[(s >> 3) + W_POOL_START]
            if ps < end and start < s + SENTINEL_SIZE:
                raise ValueError(f"range [{start}, {end}) overlaps a pool")
            if ps >= end:
                break
            prev = s
            s = w[(s >> 3) + W_NEXT_POOL]
        return prev, s

    def set_pool_link(self, prev_link: int, s: int) -> None:
        if prev_link == NIL:
            self.log += (self, "first_pool", self.first_pool)
            self.first_pool = s
        else:
            k = (prev_link >> 3) + W_NEXT_POOL
            self.log += (self.words, k, self.words[k])
            self.words[k] = s

    def write_sentinel(self, s: int, prev: int, pool_start: int, next_pool: int) -> None:
        """The sentinel closing a pool whose last block, `prev`, is free."""
        w = self.words
        k = s >> 3
        for j in range(4):
            self.log += (w, k + j, w[k + j])
        w[k] = SENTINEL_WORD | F_PREV_FREE
        w[k + W_PREV] = prev
        w[k + W_POOL_START] = pool_start
        w[k + W_NEXT_POOL] = next_pool

    def check_range(self, off: int, size: int) -> None:
        if off > self.capacity or size > self.capacity - off:
            raise ValueError(f"range [{off}, {off + size}) is outside memory of {self.capacity} bytes")

    def insert_free_block(self, off: int, size: int) -> int:
        self.check_range(off, size)
        start = round_up(off, GRANULARITY)
        end = round_down(off + size, GRANULARITY)
        if end < start or end - start < MIN_POOL:
            return 0
        prev_link, nxt = self.find_pool_slot(start, end)
        s = end - SENTINEL_SIZE
        w = self.words
        self.log += (w, start >> 3, w[start >> 3])
        w[start >> 3] = s - start
        self.log += (w, (start >> 3) + W_PREV, w[(start >> 3) + W_PREV])
        w[(start >> 3) + W_PREV] = NIL
        self.write_sentinel(s, start, start, nxt)
        self.set_pool_link(prev_link, s)
        self.insert_free(start, s - start, False)
        self.pool_bytes += s - start
        return end - off

    def append_free_block(self, off: int, size: int) -> int:
        self.check_range(off, size)
        w = self.words
        prev_link = NIL
        s = self.first_pool
        while s != NIL and s + SENTINEL_SIZE < off:
            if not self.valid_sentinel(s) or (prev_link != NIL and s <= prev_link):
                raise self.corrupt(s)
            prev_link = s
            s = w[(s >> 3) + W_NEXT_POOL]
        if s == NIL:
            raise ValueError(f"no pool ends at offset {off}")
        if not self.valid_sentinel(s):
            raise self.corrupt(s)
        if s + SENTINEL_SIZE != off:
            raise ValueError(f"no pool ends at offset {off}")
        add = round_down(size, GRANULARITY)
        end = off + add
        nxt = w[(s >> 3) + W_NEXT_POOL]
        if nxt != NIL and (not self.valid_sentinel(nxt) or nxt <= s):
            raise self.corrupt(nxt)
        if nxt != NIL and w[(nxt >> 3) + W_POOL_START] < end:
            raise ValueError(f"range [{off}, {end}) overlaps the next pool")
        if add < MIN_BLOCK:
            return 0
        # The old sentinel becomes free space, merged with a free last block.
        pool_start = w[(s >> 3) + W_POOL_START]
        last = w[(s >> 3) + W_PREV]
        b = s
        bsize = add
        if last == NIL or not self.valid_block_offset(last) or last >= s:
            raise self.corrupt(s)
        if not w[last >> 3] & F_USED:
            last_size, last_index = self.check_free_before(last, s)
            self.remove_free(last, last_index)
            b = last
            bsize += last_size
        # The new sentinel first, beyond the pool's end; the commit is the
        # store that makes the last block (or the old sentinel) cover the new space.
        ns = end - SENTINEL_SIZE
        self.write_sentinel(ns, b, pool_start, nxt)
        self.log += (w, b >> 3, w[b >> 3])
        w[b >> 3] = bsize  # commit
        self.set_pool_link(prev_link, ns)
        self.insert_free(b, bsize, False)
        self.pool_bytes += add  # the old sentinel's bytes, less the new one's
        return add

    # ---------------------------------------------------------------- recovery

    def recover(self, avail: int, repair: bool) -> int:
        """Rebuilds this engine (mirrors tlsf_recover) from the chain of block
        headers of the one pool starting at offset 0, of which [0, avail) may
        be read: free lists, bitmaps, statistics, live allocations, prev_phys
        and PREV_FREE, the pool chain. Strict (not repair): any inconsistency,
        two free neighbours or an interrupted moving realloc is a
        CorruptionError naming the offset. Repairing: free neighbours are
        merged, links and flags rewritten, an interrupted crash-safe moving
        realloc undone; only a broken chain of sizes is a CorruptionError.
        Returns where the pool ends (after its sentinel)."""
        # The engine's state is derived and may be anything: only a moving
        # realloc's note is read, from the image's control words, when their
        # magic says they are some.
        ctl = self.ctl
        noted = ctl is not None and ctl[CTL_MAGIC] == MAGIC
        pending_old = ctl[CTL_PENDING_OLD] if noted else NIL  # type: ignore[index]
        pending_new = ctl[CTL_PENDING_NEW] if noted else NIL  # type: ignore[index]
        crash_safe = self.crash_safe
        Tlsf.__init__(self, self.bytes, self.capacity, 1 << self.cls.sl_log2)
        self.init_ctl(ctl)
        self.crash_safe = crash_safe
        avail = min(avail, self.capacity)
        if not repair and pending_new != NIL:
            raise self.corrupt(pending_new)  # a moving realloc was interrupted
        w = self.words
        b = 0
        prev = run = NIL
        run_size = 0
        while True:
            if b > avail or avail - b < SENTINEL_SIZE:
                raise self.corrupt(b)
            word = w[b >> 3]
            size = word & SIZE_MASK
            sentinel = bool(word & F_SENTINEL)
            used = bool(word & F_USED)
            if sentinel:
                bad = word & ~F_PREV_FREE != SENTINEL_WORD
            else:
                bad = size < MIN_BLOCK or size > avail - SENTINEL_SIZE - b
                if not bad and used:
                    bad = not sound_used_word(b, word)
                elif not bad:
                    bad = word & ~SIZE_MASK != 0 and not repair
            if bad:
                raise self.corrupt(b)
            if not repair and (
                w[(b >> 3) + W_PREV] != prev or (used and (not word & F_PREV_FREE) != (run == NIL))
            ):
                raise self.corrupt(b)
            if not used:
                if run != NIL and not repair:
                    raise self.corrupt(b)  # two free blocks side by side
                if run == NIL:
                    run = b
                    run_size = 0
                    w[(b >> 3) + W_PREV] = prev
                run_size += size
                prev = run
                b += size
                continue
            if run != NIL:  # the free run before this block
                if w[run >> 3] != run_size:
                    w[run >> 3] = run_size
                self.insert_free(run, run_size, False)
                run = NIL
                self.link_next(b, prev, True)
            else:
                self.link_next(b, prev, False)
            if sentinel:
                if not repair and (w[(b >> 3) + W_POOL_START] != 0 or w[(b >> 3) + W_NEXT_POOL] != NIL):
                    raise self.corrupt(b)
                w[(b >> 3) + W_POOL_START] = 0
                w[(b >> 3) + W_NEXT_POOL] = NIL
                self.first_pool = b
                self.pool_bytes = b  # the pool starts at 0
                pool_end = b + SENTINEL_SIZE
                break
            self.live.add(b + HEADER_SIZE)
            self.allocations += 1
            self.used_bytes += size
            prev = b
            b += size
        # A moving realloc interrupted while both its blocks were live did not
        # happen: its new block goes. (Once the old one was freed, it did.)
        if pending_new not in (NIL, pending_old) and pending_new in self.live and pending_old in self.live:
            Tlsf.free(self, pending_new)
        self.log.clear()  # nothing here is to be undone
        return pool_end

    # -------------------------------------------------------------- inspection

    def stats(self) -> Stats:
        largest = 0
        i = self.cls.find_highest()
        if i != CLASS_NONE:
            # The head of the highest list fits a request of its own size: the
            # search either lands on that list or falls back to its head.
            largest = self.check_head(self.heads[i], i) - HEADER_SIZE
        return Stats(
            self.used_bytes - HEADER_SIZE * self.allocations,
            self.pool_bytes - self.used_bytes,
            largest,
            self.allocations,
            self.free_blocks,
        )

    def walk_pool(self, s: int) -> Iterator[tuple[int, int, bool]]:
        """(block, size, used) for each block of the pool ending at sentinel s."""
        w = self.words
        b = w[(s >> 3) + W_POOL_START]
        prev = NIL
        while b < s:
            word = w[b >> 3]
            size = word & SIZE_MASK
            if word & F_SENTINEL or size < MIN_BLOCK or size > s - b or w[(b >> 3) + W_PREV] != prev:
                raise self.corrupt(b, "pool chain or block header broken")
            yield b, size, bool(word & F_USED)
            prev = b
            b += size
        if b != s or w[(s >> 3) + W_PREV] != prev:
            raise self.corrupt(s, "pool chain or block header broken")

    def walk_pools(self) -> Iterator[tuple[int, int, bool]]:
        w = self.words
        prev_end = 0
        s = self.first_pool
        while s != NIL:
            if not self.valid_sentinel(s) or w[(s >> 3) + W_POOL_START] < prev_end:
                raise self.corrupt(s, "pool chain or block header broken")
            yield from self.walk_pool(s)
            prev_end = s + SENTINEL_SIZE
            s = w[(s >> 3) + W_NEXT_POOL]

    def walk(self) -> list[BlockInfo]:
        return [BlockInfo(b, size, used) for b, size, used in self.walk_pools()]

    def check_block(self, b: int, size: int, used: bool, c: dict[str, Any]) -> None:
        """Pass 1 of check: one block. Free blocks are marked in `live` at
        b+HEADER_SIZE (no live payload can be there) for pass 2."""
        word = self.words[b >> 3]
        live = b + HEADER_SIZE in self.live
        if used:
            if not live:
                raise self.corrupt(b, f"used block at {b} has no live-allocation bit;")
            if word & (GRANULARITY - 1) & ~F_PREV_FREE != F_USED:
                raise self.corrupt(b, f"used block at {b} has bad flags;")
            if bool(word & F_PREV_FREE) != (c["prev_was_free"] and self.words[(b >> 3) + W_PREV] != NIL):
                raise self.corrupt(b, f"used block at {b}: its previous-block-free flag is wrong;")
            if (b + HEADER_SIZE) & ((1 << (word >> ALIGN_SHIFT)) - 1):
                raise self.corrupt(b, f"used block at {b} is not aligned as recorded;")
            c["used"] += 1
            c["used_bytes"] += size - HEADER_SIZE
            c["prev_was_free"] = False
            return
        if live:
            raise self.corrupt(b, f"free block at {b} has a live-allocation bit;")
        if word != size:
            raise self.corrupt(b, f"free block at {b} has flags in its size word;")
        if c["prev_was_free"] and self.words[(b >> 3) + W_PREV] != NIL:  # NIL: a pool's first
            raise self.corrupt(b, f"free block at {b} follows a free block (not coalesced);")
        self.log += (self.live, b + HEADER_SIZE, False)
        self.live.add(b + HEADER_SIZE)
        c["marked"] += 1
        c["free_n"] += 1
        c["free_bytes"] += size
        c["prev_was_free"] = True

    def unmark(self, c: dict[str, Any]) -> None:
        """Clears the marks of the first c["marked"] free blocks."""
        for b, _size, used in self.walk_pools():
            if not c["marked"]:
                return
            if not used:
                self.log += (self.live, b + HEADER_SIZE, True)
                self.live.discard(b + HEADER_SIZE)
                c["marked"] -= 1

    def check_sentinels(self) -> None:
        """Each sentinel says whether the last block of its pool is free."""
        w = self.words
        s = self.first_pool
        while s != NIL:
            last_free = not w[w[(s >> 3) + W_PREV] >> 3] & F_USED
            if bool(w[s >> 3] & F_PREV_FREE) != last_free:
                raise self.corrupt(s, f"sentinel at {s}: its previous-block-free flag is wrong;")
            s = w[(s >> 3) + W_NEXT_POOL]

    def check_lists(self, c: dict[str, Any]) -> None:
        """Pass 2 of check: the free lists against the bitmaps and the marks."""
        w = self.words
        cls = self.cls
        sl_len = 1 << cls.sl_log2
        seen = 0
        bad_fl = cls.check_bitmaps()
        if bad_fl is not None:
            raise self.corrupt(
                NIL, f"bitmaps of first level {bad_fl} disagree with each other or name no list;"
            )
        for fl in range(cls.fl_count):
            slmap = cls.sl_bitmap[fl]
            for sl in range(sl_len):
                i = (fl << cls.sl_log2) | sl
                b = self.heads[i]
                prev = NIL
                if (b != NIL) != bool((slmap >> sl) & 1):
                    raise self.corrupt(NIL, f"list ({fl}, {sl}) disagrees with its bitmap bit;")
                while b != NIL:
                    if (
                        not self.valid_block_offset(b)
                        or w[b >> 3] & F_USED
                        or b + HEADER_SIZE not in self.live
                    ):
                        raise self.corrupt(
                            b, f"list ({fl}, {sl}) holds {b}, which is not a free block "
                            "or is listed twice;"
                        )
                    self.log += (self.live, b + HEADER_SIZE, True)
                    self.live.discard(b + HEADER_SIZE)
                    c["marked"] -= 1
                    if w[(b >> 3) + W_PREV_FREE] != prev:
                        raise self.corrupt(b, f"free block {b}: back link does not match;")
                    if cls.map_floor(w[b >> 3]) != i:
                        raise self.corrupt(b, f"free block {b} is filed in the wrong list;")
                    seen += 1
                    prev = b
                    b = w[(b >> 3) + W_NEXT_FREE]
                if self.tails[i] != prev:
                    raise self.corrupt(prev, f"list ({fl}, {sl}) has a wrong tail;")
        if seen != c["free_n"]:
            raise self.corrupt(
                NIL, f"{c['free_n']} free blocks in the pools but {seen} in the lists;"
            )

    def check(self) -> None:
        c = dict(prev_was_free=False, used=0, used_bytes=0, free_n=0, free_bytes=0, marked=0)
        try:
            # 1. physical: every pool, block by block
            for b, size, used in self.walk_pools():
                self.check_block(b, size, used, c)
            # 2. free lists against bitmaps and the marks of pass 1 (pools are walkable now)
            self.check_sentinels()
            self.check_lists(c)
        except CorruptionError:
            where = self.bad_offset
            c["marked"] = c["free_n"]
            try:
                self.unmark(c)
            except CorruptionError:
                pass  # the walk stops where pass 1 stopped: all marks are cleared by then
            self.bad_offset = where
            raise
        # 3. the live set holds exactly the used blocks
        if len(self.live) != c["used"]:
            raise self.corrupt(NIL, f"{len(self.live)} live-allocation bits for {c['used']} used blocks;")
        # 4. statistics (as stats() derives them)
        allocated_bytes = self.used_bytes - HEADER_SIZE * self.allocations
        free_bytes = self.pool_bytes - self.used_bytes
        if (self.allocations, allocated_bytes, self.free_blocks, free_bytes) != (
            c["used"],
            c["used_bytes"],
            c["free_n"],
            c["free_bytes"],
        ):
            raise self.corrupt(
                NIL,
                f"statistics disagree with the blocks: allocations {self.allocations}/{c['used']}, "
                f"allocated_bytes {allocated_bytes}/{c['used_bytes']}, "
                f"free_blocks {self.free_blocks}/{c['free_n']}, "
                f"free_bytes {free_bytes}/{c['free_bytes']};",
            )


# -------------------------------------------------------------------- the API


def exported_view(
    base: memoryview, offset: int, n: int, *views: list[weakref.ref[Any]], owner: object = None
) -> memoryview:
    """A memoryview of base[offset:offset + n] whose every slice and export
    keeps one exporter alive, a ctypes array over those bytes, which keeps
    `owner` alive; a weak reference to it is added to each list of `views`,
    so that the heap (and a Block) can tell whether any view is alive (the
    binding counts its exports in C). The exporter is not
    a memoryview: the garbage collector could clear an exported memoryview in
    a reference cycle, which fails and then crashes Python 3.9-3.11 (CPython
    gh-77894); a ctypes array is cleared safely."""
    exporter = (ctypes.c_ubyte * n).from_buffer(base, offset)
    if owner is not None:
        exporter.owner = owner  # type: ignore[attr-defined]
    for v in views:
        v.append(weakref.ref(exporter))
    return memoryview(exporter).cast("B")  # "<B" to "B", as the binding's views


def anonymous_memory(n: int) -> mmap.mmap:
    """n bytes of anonymous memory for Heap(n): private, so that after fork()
    parent and child each have their own copy, as of any process memory (an
    mmap made with fileno -1 is shared by default). More than the system will
    map is a MemoryError."""
    try:
        if hasattr(mmap, "MAP_PRIVATE"):
            return mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE)
        return mmap.mmap(-1, n)
    except OSError as e:
        if e.errno == errno.ENOMEM:
            raise MemoryError(f"cannot map {n} bytes of memory for the heap") from e
        raise


class HeapBase:
    """What Heap and FlexHeap share (mirrors binding/heap_methods.h): every
    method but the pool calls. The engine `_t` is a Tlsf, or a tlsf.pure.flex.Flex
    (a Tlsf that grows), whose class supplies the calls that allocate and free."""

    # no other attributes, as the C types have none (__weakref__: journal.register)
    __slots__ = ("__weakref__", "_base", "_blocks", "_capacity", "_lock", "_owned", "_sl_len", "_t", "_views")
    _base: memoryview
    _blocks: int
    _capacity: int
    _lock: threading.Lock
    _owned: Any
    _sl_len: int
    _t: Tlsf | None
    _views: list[weakref.ref[Any]]

    def _core(self) -> Tlsf:
        t = self._t
        if t is None:
            raise ValueError("heap is closed")
        return t

    # Arguments are converted before the lock is taken and the heap is touched:
    # an __index__ that frees or closes the heap cannot break an operation.
    #
    # Each operation that changes the heap runs through journal.atomic, on the
    # line that takes the lock: an exception raised in the middle (a
    # KeyboardInterrupt, a trace function's) undoes it, and no line runs
    # between its end and the release of the lock (a trace function raising
    # there would leave the lock held: `with` exits only from its body).

    # alloc and free, the hot calls, test the common case inline.

    def alloc(self, size: int, align: int = 1) -> int:
        """Allocate size bytes aligned to align (a power of two); return the
        payload offset (an int). OutOfMemoryError if nothing fits."""
        if size.__class__ is not int or size < 0:
            size = size_arg(size)
        if align.__class__ is not int or align != 1:
            align = align_arg(align)
        with self._lock: return atomic(t := self._core(), t.__class__.alloc, size, align)  # noqa: E701

    def free(self, offset: int) -> None:
        """Free the allocation at offset. InvalidOffsetError if it is not live."""
        if offset.__class__ is not int:
            offset = index(offset)
        with self._lock: return atomic(t := self._core(), t.__class__.free, offset)  # noqa: E701

    def realloc(self, offset: int, size: int) -> int:
        """Resize an allocation, keeping its contents and alignment; return its
        (possibly new) offset. On failure the allocation is untouched."""
        offset = index(offset)
        size = size_arg(size)
        with self._lock: return atomic(t := self._core(), t.__class__.realloc, offset, size)  # noqa: E701

    def usable_size(self, offset: int) -> int:
        """Bytes usable at the live allocation at offset (an int)."""
        offset = index(offset)
        with self._lock:
            return self._core().usable_size(offset)

    @overload
    def alloc_many(  # type: ignore[overload-overlap]  # an ndarray is a buffer too: it comes first
        self, sizes: np.ndarray[Any, Any], align: int = 1
    ) -> npt.NDArray[np.int64]: ...
    @overload
    def alloc_many(self, sizes: Any, align: int = 1) -> array[int]: ...
    def alloc_many(self, sizes: Any, align: int = 1) -> Any:
        """Allocate every size in sizes (an iterable or a buffer of integers),
        all aligned to align; all or nothing. Return the offsets as an
        array.array('q') (signed 64-bit), or as an int64 numpy.ndarray when
        sizes is a numpy.ndarray."""
        values = [size_arg(v) for v in integers(sizes)]
        align = align_arg(align)
        result, items = offsets_result(sizes, len(values))

        def op(t: Tlsf) -> Any:
            items[:] = array("q", t.alloc_many(values, align))
            return result

        with self._lock: return atomic(self._core(), op)  # noqa: E701

    def free_many(self, offsets: Any) -> None:
        """Free every offset in offsets (an iterable or a buffer of integers);
        all are validated before any is freed."""
        values = [index(v) for v in integers(offsets)]
        with self._lock: return atomic(t := self._core(), t.__class__.free_many, values)  # noqa: E701

    @property
    def sl_len(self) -> int:
        return self._sl_len

    @property
    def closed(self) -> bool:
        return self._t is None

    def stats(self) -> Stats:
        """Return the heap's statistics, a tlsf.Stats (O(1))."""
        with self._lock:
            return self._core().stats()

    def walk(self) -> Iterator[BlockInfo]:
        """Return an iterator of tlsf.BlockInfo(offset, size, used): every block
        of every pool in address order. offset is where the block starts (its
        header) and size includes the header, so offset is not what alloc()
        returned: allocation_of(block) is (what free(), view() and
        usable_size() take)."""
        with self._lock:
            return iter(self._core().walk())

    def allocation_of(self, block: BlockInfo, /) -> int:
        """The offset alloc() returned for block, a tlsf.BlockInfo of walk():
        what free(), view() and usable_size() take (block.offset plus the
        block header's size); for a free block, the offset an allocation at
        its start would have. Arithmetic only: block is not looked up in the
        heap."""
        return allocation_of(block, HEADER_SIZE)

    def check(self) -> None:
        """Full invariant check; CorruptionError if the heap is inconsistent."""
        # check marks the free blocks in the live set, then clears the marks
        with self._lock: return atomic(self._core(), Tlsf.check)  # noqa: E701

    def view(self, offset: int, size: int | None = None) -> memoryview:
        """A writable memoryview of the first size bytes (None: all usable
        bytes) of the live allocation at offset."""
        offset = index(offset)
        n = None if size is None else index(size)
        with self._lock:
            usable = self._core().usable_size(offset)
            if n is None:
                n = usable
            elif not 0 <= n <= usable:
                raise ValueError(f"view size {n} outside 0..{usable} (the usable size)")
            if len(self._views) >= 64:
                self._views = [r for r in self._views if r() is not None]
            return exported_view(self._base, offset, n, self._views)

    def block(self, size: int, align: int = 1) -> Any:
        """Allocate size bytes as a tlsf.Block, which frees itself (free(),
        `with`, or its last reference gone) and exports its bytes
        (memoryview(block))."""
        from .block import new_block  # block.py builds on this module

        return new_block(self, size, align)

    # dtype None is numpy's float64, as the default of tlsf.numpy (float): a
    # text signature, which the binding's methods have, cannot say `float`.

    def ndarray(self, shape: Any, dtype: Any = None, *, align: int | None = None, order: str = "C") -> Any:
        """A new numpy.ndarray in a new allocation, freed when the array and
        every view of it are gone (tlsf.numpy.ndarray; needs numpy). dtype
        None: float64, as numpy's; align None: the dtype's alignment, at
        least 16."""
        from tlsf import numpy  # imports numpy: only when called, as in the binding

        return numpy.ndarray(self, shape, dtype, align=align, order=order)

    def ndarray_at(self, offset: int, shape: Any, dtype: Any = None) -> Any:
        """A numpy.ndarray (C order) over the live allocation at offset, which
        it does not own; it must fit the allocation (tlsf.numpy.ndarray_at;
        needs numpy). dtype None: float64, as numpy's."""
        from tlsf import numpy

        return numpy.ndarray_at(self, offset, shape, dtype)

    def close(self) -> None:
        """Release the heap's memory and its control structure (see the
        close() of each heap type). Idempotent; BufferError while views or
        Blocks not freed are alive (the heap stays open)."""
        with self._lock:
            if self._t is None:
                return
            self._views = [r for r in self._views if r() is not None]
            if self._views:
                n = len(self._views)
                exports = f"{n} export{'' if n == 1 else 's'}"
                raise BufferError(f"cannot close the heap while views of it are alive ({exports})")
            if self._blocks:
                blocks = f"{self._blocks} block{'' if self._blocks == 1 else 's'}"
                raise BufferError(f"cannot close the heap while blocks of it are not freed ({blocks})")
            self._base.release()
            self._t.words.release()
            self._t = None
            self._release_memory(True)

    def _release_memory(self, clean: bool) -> None:
        """Gives back the memory the heap owns (a FlexHeap's file too; clean:
        the heap was closed, not abandoned while being made)."""
        if self._owned is not None and isinstance(self._owned, mmap.mmap):
            self._owned.close()
        self._owned = None

    __copy__ = __deepcopy__ = __reduce_ex__ = __reduce__ = no_copy  # type: ignore[assignment]

    def __enter__(self) -> Any:
        """Return the heap itself; the end of the `with` block closes it (__exit__)."""
        return self

    def __exit__(self, *exc: object) -> None:
        """close() the heap, with or without an exception (which is not
        suppressed: return None). BufferError while views or Blocks not
        freed are alive."""
        self.close()


class Heap(HeapBase):
    """A TLSF heap over `memory` (mirrors the binding, binding/heap.c; see tlsf.Heap)."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("type 'tlsf.pure.Heap' is not an acceptable base type")

    def __init__(self, memory: Any, *, sl_len: int = 32, pool: bool = True) -> None:
        sl_len = index(sl_len)
        if is_size_arg(memory):
            memory = index(memory)
            if memory < 0:
                raise ValueError(f"memory size must be >= 0, not {memory}")
            if memory > MAX_CAPACITY:
                raise ValueError(f"memory of {memory} bytes exceeds the largest capacity, 2**58")
            memory = anonymous_memory(memory) if memory else bytearray()
            self._owned = memory
        else:
            self._owned = None
        try:
            view = memoryview(memory)
        except TypeError:
            raise TypeError(
                f"memory must be a writable buffer or an int, not {type(memory).__name__}"
            ) from None
        if view.readonly:
            view.release()
            raise TypeError("memory must be a writable buffer, not read-only")
        if not view.c_contiguous:
            view.release()
            raise ValueError("memory must be C-contiguous")
        if not plain_data_format(view.format):
            fmt = view.format
            view.release()
            raise TypeError(
                f"memory must hold plain data, not object references or pointers (buffer format '{fmt}')"
            )
        self._base = view.cast("B")
        view.release()
        self._views = []  # one per view(), see exported_view
        self._blocks = 0  # Blocks not freed (pure/block.py)
        capacity = self._base.nbytes
        if capacity > MAX_CAPACITY:
            raise ValueError(f"memory of {capacity} bytes exceeds the largest capacity, 2**58")
        if not control_size(capacity, sl_len):
            raise ValueError(f"sl_len must be a power of two in 1..64, not {sl_len}")
        self._capacity = capacity
        self._sl_len = sl_len
        self._lock = threading.Lock()  # each operation is atomic
        self._t = Tlsf(self._base, capacity, sl_len)
        if pool:
            atomic(self._t, Tlsf.insert_free_block, 0, capacity)
        register(self)

    def insert_free_block(self, offset: int, size: int) -> int:
        """Make [offset, offset+size) a new pool; return the bytes taken (0 if too small)."""
        offset = range_arg(offset, "offset")
        size = range_arg(size, "size")
        with self._lock: return atomic(self._core(), Tlsf.insert_free_block, offset, size)  # noqa: E701

    def append_free_block(self, offset: int, size: int) -> int:
        """Grow the pool that ends at offset by size bytes; return the bytes added."""
        offset = range_arg(offset, "offset")
        size = range_arg(size, "size")
        with self._lock: return atomic(self._core(), Tlsf.append_free_block, offset, size)  # noqa: E701

    @property
    def capacity(self) -> int:
        """Size of the memory in bytes."""
        return self._capacity

    def close(self) -> None:
        """Release the buffer the heap pins (or unmap the memory it owns) and
        its control structure. Idempotent; BufferError while views or Blocks
        not freed are alive (the heap stays open)."""
        HeapBase.close(self)

    def __exit__(self, *exc: object) -> None:
        """close() the heap, with or without an exception (which is not
        suppressed: return None). Release the buffer the heap pins (or unmap
        the memory it owns) and its control structure. BufferError while
        views or Blocks not freed are alive."""
        HeapBase.close(self)

    def __repr__(self) -> str:
        t = self._t
        state = "closed" if t is None else f"allocations={t.allocations}"
        return f"<tlsf.pure.Heap capacity={self._capacity} sl_len={self._sl_len} {state}>"

