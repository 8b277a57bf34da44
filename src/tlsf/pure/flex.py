"""The twin of the growable heap: class `Flex` mirrors ``csrc/tlsf_flex.c``
function for function, with the same names (``tlsf_flex_alloc`` there is
`Flex.alloc` here); class `FlexHeap` mirrors the binding ``binding/flex.c``.

A Flex is a Tlsf whose one pool, [0, size), grows at its end when a request
does not fit (never moving anything), and which gives the whole pages inside
free blocks back to its source. See ``tlsf_flex.h`` for the growth policy.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from collections.abc import Callable, Sequence
from operator import index
from typing import Any

from tlsf._errors import CorruptionError, OutOfMemoryError
from tlsf.pure import image
from tlsf.pure.journal import atomic, register
from tlsf.pure.platform import unix
from tlsf.pure.tlsf import (
    CTL_PENDING_NEW,
    GRANULARITY,
    HEADER_SIZE,
    MAX_CAPACITY,
    MIN_POOL,
    NIL,
    SENTINEL_SIZE,
    HeapBase,
    Tlsf,
    control_size,
    exported_view,
    round_down,
    round_up,
)

GROW_MIN = 64 << 10  # first pool and smallest step
GROW_MAX = 1 << 30  # largest step
GROW_UNIT = 64 << 10  # pool sizes are multiples of it (until the cap)
FREE_HEAD = 32  # a free block's size, prev_phys, next_free, prev_free words
FREE_DISCARD_MIN = 64 << 10  # a free gives back no fewer bytes of pages (tlsf_flex.c: freed)

DEFAULT_MAX_SIZE = 1 << 40  # 1 TiB of address space
SMALLEST_DEFAULT = 1 << 30  # halved down to this when the system refuses
DEFAULT_TRIM_THRESHOLD = 1 << 20  # 1 MiB of whole pages
TRIM_OFF = NIL


class Source:
    """The memory of a Flex (C: tlsf_flex_source_t): `extend` makes arena
    bytes [old_size, new_size) usable before the pool grows into them (None:
    nothing to do); `discard` gives the pages of [off, off+n) back (None:
    never)."""

    __slots__ = ("discard", "extend", "page")

    def __init__(
        self,
        extend: Callable[[int, int], None] | None,
        discard: Callable[[int, int, bool], int] | None,
        page: int,
    ) -> None:
        self.extend = extend
        self.discard = discard
        self.page = page


class Flex(Tlsf):
    """A heap over a Tlsf that grows from `src` and gives pages back (mirrors tlsf_flex.c)."""

    def __init__(
        self, memory: memoryview, capacity: int, sl_len: int, src: Source, trim_threshold: int
    ) -> None:
        super().__init__(memory, capacity, sl_len)
        self.size = 0  # bytes of the arena in the pool, [0, size); 0: no pool yet
        self.trim_threshold = trim_threshold
        self.src = src

    def counters(self) -> tuple[int, ...]:
        return (*super().counters(), self.size)

    def set_counters(self, saved: tuple[int, ...]) -> None:
        super().set_counters(saved[:-1])
        self.size = saved[-1]

    def grown_size(self, gain: int) -> int:
        """The pool size after a growth by at least `gain` bytes (0: cannot)."""
        old = self.size
        cap = round_down(self.capacity, GRANULARITY)
        step = min(max(old, GROW_MIN), GROW_MAX)
        if gain > cap - old:
            return 0
        want = old + max(gain, step)
        want = cap if want > cap - GROW_UNIT else round_up(want, GROW_UNIT)
        return min(want, cap)

    def grow(self, gain: int) -> bool:
        """Grows the pool by at least `gain` bytes at its end: one call of
        extend, then one insert_free_block (the first pool) or
        append_free_block. False when it cannot."""
        old = self.size
        new_size = self.grown_size(gain)
        if not new_size:
            return False
        if self.src.extend is not None:
            self.src.extend(old, new_size)
        if old:
            taken = self.append_free_block(old, new_size - old)
        else:
            taken = self.insert_free_block(0, new_size)
        self.size = old + taken
        return True

    def gain_for(self, size: int, align: int) -> int:
        """Bytes the pool must gain so that alloc(size, align) then succeeds
        (the first pool also holds its sentinel); NIL when nothing could."""
        need = self.grow_need(size, align)
        return need if need == NIL else need + (0 if self.size else SENTINEL_SIZE)

    def alloc(self, size: int, align: int, note: bool = False) -> int:
        try:
            return Tlsf.alloc(self, size, align)
        except OutOfMemoryError:
            if not self.grow(self.gain_for(size, align)):
                raise
        return Tlsf.alloc(self, size, align)

    def realloc(self, p: int, size: int) -> int:
        try:
            return Tlsf.realloc(self, p, size)
        except OutOfMemoryError:
            if not self.grow(self.gain_for(size, self.alignment(p))):
                raise
        return Tlsf.realloc(self, p, size)

    def alloc_many(self, sizes: Sequence[int], align: int) -> list[int]:
        try:
            return Tlsf.alloc_many(self, sizes, align)
        except OutOfMemoryError:
            # One growth for the whole batch: a free block of the summed needs
            # fits every request in turn (what each takes from it is at most
            # its need, and the rest still fits the next).
            gain = 0 if self.size else SENTINEL_SIZE
            for size in sizes:
                need = self.grow_need(size, align)
                if need == NIL or need > NIL - gain:
                    raise
                gain += need
            if not self.grow(gain):
                raise
        return Tlsf.alloc_many(self, sizes, align)

    def discard_inside(self, b: int, size: int, least: int, count: bool) -> int:
        """Gives back the whole pages inside free block [b, b+size) when they
        make at least `least` bytes (C: min); returns what discard says."""
        page = self.src.page
        lo = round_up(b + FREE_HEAD, page)
        hi = round_down(b + size, page)
        if self.src.discard is None or hi <= lo or hi - lo < least:
            return 0
        return self.src.discard(lo, hi - lo, count)

    def freed(self, offset: int, what: tuple[int, int, int]) -> None:
        """After a free (payload `offset`, what it did): when the free block
        it left has at least trim_threshold bytes of whole pages, the pages of
        that block that the freed one covered go back, when they make at
        least FREE_DISCARD_MIN (see tlsf_flex.c)."""
        size, merged, merged_size = what
        page = self.src.page
        b = offset - HEADER_SIZE
        lo = round_up(merged + FREE_HEAD, page)
        hi = round_down(merged + merged_size, page)
        if self.src.discard is None or hi <= lo or hi - lo < self.trim_threshold:
            return
        start = max(round_down(b, page), lo)
        end = min(round_up(b + size, page), hi)
        if end - start >= FREE_DISCARD_MIN:
            self.src.discard(start, end - start, False)

    # Giving pages back cannot be undone by the journal: the twin does it once
    # the free is committed (the journal emptied), so that an interrupt there
    # leaves the free done and only pages kept. A batch's pages go back after
    # the whole batch; no block is allocated in between, so they are the same.

    def free(self, p: int) -> None:
        if self.trim_threshold == TRIM_OFF:
            return Tlsf.free(self, p)
        what = self.free_merged(p)
        self.log.clear()  # committed
        self.freed(p, what)
        return None

    def free_many(self, offsets: Sequence[int]) -> None:
        pending: list[tuple[int, tuple[int, int, int]]] = []
        self.free_many_notify(offsets, None if self.trim_threshold == TRIM_OFF else
                              lambda p, what: pending.append((p, what)))  # fmt: skip
        self.log.clear()  # committed
        for p, what in pending:
            self.freed(p, what)

    def trim(self) -> int:
        """Gives the whole pages inside every free block back; returns the
        bytes of them that were resident. O(blocks)."""
        released = 0
        for b, size, used in self.walk_pools():
            # a block the walk calls free but whose payload is live is a
            # scribbled header: its pages hold someone's data
            if not used and b + HEADER_SIZE not in self.live:
                released += self.discard_inside(b, size, 1, True)
                # C also gives back the live bitmap's pages for the block
                # (discard_live_words); the twin's live allocations are a set
        return released


def max_size_arg(x: Any) -> int:
    """max_size: a positive int up to 2**58 (None, the default, is handled by the caller)."""
    v = index(x)
    if v <= 0:
        raise ValueError(f"max_size must be > 0, not {v}")
    if v > MAX_CAPACITY:
        raise ValueError(f"max_size of {v} bytes exceeds the largest capacity, 2**58")
    return v


def trim_threshold_arg(x: Any) -> int:
    """trim_threshold: None (off) or an int >= 0; one beyond 64 bits is never reached: off."""
    if x is None:
        return TRIM_OFF
    v = index(x)
    if v < 0:
        raise ValueError(f"trim_threshold must be >= 0 or None, not {v}")
    return min(v, TRIM_OFF)


def reserve(max_size: int, shrink: bool) -> tuple[mmap.mmap, int]:
    """A reservation for a heap of max_size bytes, and that size; with
    `shrink` (the default size), halved while the system refuses."""
    page = unix.page_size()
    while True:
        try:
            return unix.reserve(round_up(max_size, page)), max_size
        except OSError as e:
            if not shrink or max_size // 2 < SMALLEST_DEFAULT:
                why = os.strerror(e.errno or 0)
                msg = f"cannot reserve address space for a heap of {max_size} bytes ({why})"
                raise MemoryError(msg) from None
            max_size //= 2


DEFAULT_FILE_MAX_SIZE = 16 << 30  # a file's control structure is sized by it


def release(views: list[memoryview | None]) -> None:
    """Releases the memoryviews that nothing exports from any more."""
    for v in views:
        if v is not None:
            try:
                v.release()
            except BufferError:  # a view of the heap still uses it; it goes when collected
                pass


class FlexHeap(HeapBase):
    """A TLSF heap in its own reservation of address space that grows and gives
    pages back (mirrors the binding, binding/flex.c; see tlsf.FlexHeap).

    A file heap maps the file with the mmap module, which cannot map over a
    reservation: each growth maps the longer file anew, and the engine and
    the views taken from then on use the new mapping (the old ones, shared
    with it, stay valid). Offsets make this invisible to the algorithm."""

    __slots__ = ("_address", "_fd", "_flex", "_hugepages", "_maps", "_path", "_root")
    _t: Flex | None
    _flex: Flex

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("type 'tlsf.pure.FlexHeap' is not an acceptable base type")

    def __init__(
        self,
        max_size: int | None = None,
        *,
        sl_len: int = 32,
        trim_threshold: int | None = DEFAULT_TRIM_THRESHOLD,
        hugepages: bool = False,
    ) -> None:
        size = DEFAULT_MAX_SIZE if max_size is None else max_size_arg(max_size)
        sl_len = index(sl_len)
        trim = trim_threshold_arg(trim_threshold)
        if not control_size(size, sl_len):
            raise ValueError(f"sl_len must be a power of two in 1..64, not {sl_len}")
        self._setup(sl_len, hugepages)
        self._owned, size = reserve(size, max_size is None)
        self._capacity = size
        if self._hugepages:  # a best effort, where the platform has them
            unix.hugepages(self._owned, 0, len(self._owned))
        self._address = unix.address_of(self._owned)
        self._base = memoryview(self._owned)
        src = Source(None, self._discard_pages, unix.page_size())
        self._t = self._flex = Flex(self._base, size, sl_len, src, trim)
        register(self)

    def _setup(self, sl_len: int, hugepages: Any) -> None:
        self._sl_len = sl_len
        self._hugepages = bool(hugepages)
        self._views = []  # one per view(), see exported_view
        self._blocks = 0  # Blocks not freed (pure/block.py)
        self._lock = threading.Lock()
        self._fd = -1
        self._path: Any = None
        self._maps: list[mmap.mmap] = []
        self._root = 0
        self._owned = None
        self._t = None

    def _discard_pages(self, off: int, n: int, count: bool) -> int:
        """The source's discard: the arena is reserved whole, so growing needs nothing."""
        return unix.discard(self._owned, self._address, off, n, count)

    # ------------------------------------------------------------ file heaps

    @classmethod
    def create(
        cls,
        path: Any,
        *,
        max_size: int | None = None,
        sl_len: int = 32,
        exist_ok: bool = False,
        trim_threshold: int | None = DEFAULT_TRIM_THRESHOLD,
        hugepages: bool = False,
    ) -> FlexHeap:
        """A new FlexHeap in a new file (max_size: 16 GiB by default). exist_ok:
        open the heap the file holds instead of failing."""
        size = DEFAULT_FILE_MAX_SIZE if max_size is None else max_size_arg(max_size)
        sl_len = index(sl_len)
        trim = trim_threshold_arg(trim_threshold)
        arena = image.arena_off(size, sl_len)
        if not arena:
            raise ValueError(f"sl_len must be a power of two in 1..64, not {sl_len}")
        if size < MIN_POOL:  # a file always holds its pool
            raise ValueError(f"max_size of a heap file must be at least {MIN_POOL} bytes, not {size}")
        self = cls.__new__(cls)
        self._setup(sl_len, hugepages)
        try:
            self._open_file(path, True)
        except FileExistsError:
            if not exist_ok:
                raise
            return cls.open(path, trim_threshold=trim_threshold, hugepages=hugepages)
        try:
            # The header and control structure (sparse), the first pool, then
            # the magic: a file that has it is a heap.
            os.ftruncate(self._fd, arena)
            self._capacity = size
            self._map(arena)
            self._owned[: image.HEADER.size] = image.init(size, sl_len, 0)
            flex = Flex(self._base, size, sl_len, self._file_source(), trim)
            flex.init_ctl(self._ctl())
            self._bind(flex)
            flex.set_crash_safe()
            if not flex.grow(1):
                raise OSError(f"{self._path!r}: cannot make the heap's first pool (disk full?)")
            self._owned[:8] = image.MAGIC
        except BaseException:
            self._release_memory(False)
            raise
        register(self)
        return self

    @classmethod
    def open(
        cls,
        path: Any,
        *,
        recover: bool = False,
        trim_threshold: int | None = DEFAULT_TRIM_THRESHOLD,
        hugepages: bool = False,
    ) -> FlexHeap:
        """The heap in a file (a FlexHeap), every allocation as it was. A file not closed
        cleanly must be consistent, or opened with recover=True, which
        rebuilds it from its chain of block headers."""
        trim = trim_threshold_arg(trim_threshold)
        self = cls.__new__(cls)
        self._setup(0, hugepages)
        file_size = self._open_file(path, False)
        try:
            header = os.pread(self._fd, image.HEADER.size, 0)
            header += bytes(image.HEADER.size - len(header))  # zeros where the file is shorter
            kind, detail = image.check(header, file_size, image.MAGIC)
            if kind:
                raise self._image_error(kind, detail, file_size)
            fields = image.HEADER.unpack(header)
            self._sl_len, size, arena = fields[4], fields[7], fields[11]
            self._capacity = size
            self._map(file_size)
            flags = fields[5]
            clean = bool(flags & image.CLEAN)
            struct.pack_into("=I", self._owned, image.FLAGS_AT, flags & ~image.CLEAN)  # until closed
            flex = Flex(self._base, size, self._sl_len, self._file_source(), trim)
            flex.ctl = self._ctl()  # read, then reset, by recover
            try:
                pool_end = flex.recover(file_size - arena, bool(recover))
                atomic(flex, Tlsf.check)
            except CorruptionError:
                where = flex.bad_offset
                struct.pack_into("=I", self._owned, image.FLAGS_AT, flags)  # left as it was
                if recover:
                    msg = f"{self._path!r}: the chain of block headers is broken at offset {where}; "
                    msg += "recover=True cannot repair it"
                elif clean:
                    msg = f"{self._path!r}: the heap is corrupt at offset {where}"
                else:
                    msg = f"{self._path!r} was not closed cleanly and is inconsistent at offset {where}; "
                    msg += "FlexHeap.open(path, recover=True) repairs it"
                raise CorruptionError(msg) from None
            flex.set_crash_safe()
            flex.size = pool_end
            struct.pack_into("=Q", self._owned, image.SIZE_AT, pool_end)
            self._bind(flex)
        except BaseException:
            self._release_memory(False)
            raise
        register(self)
        return self

    def _open_file(self, path: Any, create: bool) -> int:
        self._path = os.fspath(path)
        try:
            self._fd, size = unix.file_open(self._path, create)
        except BlockingIOError:
            raise BlockingIOError(f"{self._path!r} is open in another FlexHeap (one at a time)") from None
        except OSError as e:
            raise OSError(e.errno, os.strerror(e.errno or 0), self._path) from None
        return size

    def _image_error(self, kind: int, detail: int, file_size: int) -> Exception:
        path = self._path
        if kind == image.NOT_HEAP:
            return ValueError(f"{path!r} is not a tlsf heap file")
        if kind == image.NEWER:
            return ValueError(
                f"{path!r}: heap file format version {detail} is newer than this tlsf reads (1)"
            )
        if kind == image.FOREIGN:
            return ValueError(f"{path!r}: heap file made on a machine of another word size or byte order")
        if kind == image.TRUNCATED:
            return CorruptionError(
                f"{path!r}: heap file is truncated ({file_size} bytes; its header says {detail})"
            )
        return CorruptionError(f"{path!r}: heap file header is inconsistent")

    def _arena_off(self) -> int:
        return image.arena_off(self._capacity, self._sl_len)

    def _map(self, length: int) -> None:
        """Maps the file's first `length` bytes; the engine (when there is one)
        and the views to come use that mapping."""
        m = mmap.mmap(self._fd, length, flags=mmap.MAP_SHARED)
        self._maps.append(m)
        self._owned = m
        self._address = unix.address_of(m)
        old = [getattr(self, "_base", None)]
        self._base = memoryview(m)[self._arena_off() :]
        t = self._t
        if t is not None:
            old += [t.words, t.ctl]
            n = len(self._base)
            t.bytes = self._base
            t.words = self._base[: n - n % 8].cast("Q")
            t.ctl = self._ctl()
        release(old)

    def _ctl(self) -> memoryview:
        """The C control structure's first words (CTL_*), in the file."""
        return memoryview(self._owned)[
            image.HEADER_SIZE : image.HEADER_SIZE + 8 * (CTL_PENDING_NEW + 1)
        ].cast("Q")

    def _bind(self, flex: Flex) -> None:
        self._t = self._flex = flex

    def _file_source(self) -> Source:
        return Source(self._extend_file, self._discard_file, unix.page_size())

    def _extend_file(self, old_size: int, new_size: int) -> None:
        """Before the pool grows to new_size: storage for the new bytes, then
        the longer file mapped; the header's size says what the file holds."""
        arena = self._arena_off()
        unix.file_allocate(self._fd, arena + old_size, new_size - old_size)
        self._map(arena + new_size)
        struct.pack_into("=Q", self._owned, image.SIZE_AT, new_size)

    def _discard_file(self, off: int, n: int, count: bool) -> int:
        arena = self._arena_off()
        return unix.file_discard(self._fd, arena + off, self._address + arena + off, n, count)

    def _release_memory(self, clean: bool) -> None:
        if self._fd < 0:
            super()._release_memory(clean)
            return
        if clean and self._maps:  # nothing is in progress
            struct.pack_into("=Q", self._owned, image.SIZE_AT, self._flex.size)
            flags = struct.unpack_from("=I", self._owned, image.FLAGS_AT)[0]
            struct.pack_into("=I", self._owned, image.FLAGS_AT, flags | image.CLEAN)
        flex = getattr(self, "_flex", None)
        release([getattr(self, "_base", None)] + ([flex.words, flex.bytes, flex.ctl] if flex else []))
        for m in self._maps:
            try:
                m.close()
            except BufferError:  # a memoryview of it still lives; it closes when collected
                pass
        self._maps = []
        self._owned = None
        os.close(self._fd)  # drops the lock
        self._fd = -1

    def close(self) -> None:
        """Give back the heap's reservation of address space and its pages; a
        file heap is marked closed cleanly and unmapped, and its file closed
        (which another FlexHeap may then open). Idempotent; BufferError while
        views or Blocks not freed are alive (the heap stays open)."""
        HeapBase.close(self)

    def __exit__(self, *exc: object) -> None:
        """close() the heap, with or without an exception (which is not
        suppressed: return None). Give back the heap's reservation of address
        space and its pages; a file heap is marked closed cleanly and
        unmapped, and its file closed (which another FlexHeap may then open).
        BufferError while views or Blocks not freed are alive."""
        HeapBase.close(self)

    def flush(self) -> None:
        """Write what the heap file holds to stable storage (msync and fsync),
        so that it survives a power loss too; nothing to do for anonymous memory."""
        with self._lock:
            self._core()
            if self._fd >= 0:
                unix.file_sync(self._fd, self._owned)

    @property
    def path(self) -> Any:
        """The heap file's path (os.fspath of what was given), or None."""
        return self._path

    @property
    def root(self) -> int:
        """An offset the program keeps to find its data again (0: none); kept
        in the file of a file heap."""
        with self._lock:
            if self._fd >= 0 and self._t is not None:
                return int(struct.unpack_from("=Q", self._owned, image.ROOT_AT)[0])
            return self._root

    @root.setter
    def root(self, value: int) -> None:
        v = index(value)
        if not 0 <= v < 1 << 64:
            raise ValueError(f"root must be in 0..2**64-1, not {v}")
        with self._lock:
            self._core()
            if self._fd >= 0:
                struct.pack_into("=Q", self._owned, image.ROOT_AT, v)
            else:
                self._root = v

    def trim(self) -> int:
        """Give the whole pages inside every free block back to the system;
        return the bytes of them that were resident (an int)."""
        with self._lock: return atomic(self._core(), Flex.trim)  # noqa: E701  # fmt: skip

    def _arena(self) -> memoryview:
        """A memoryview of the bytes of the pool now, headers and all (for tests and tools)."""
        with self._lock:
            self._core()  # open
            return exported_view(self._base, 0, self._flex.size, self._views)

    @property
    def capacity(self) -> int:
        """Bytes of the arena, max_size: every offset lies below."""
        return self._capacity

    max_size = capacity

    @property
    def size(self) -> int:
        """Bytes of the arena in the pool now."""
        return self._flex.size

    @property
    def hugepages(self) -> bool:
        """Whether transparent huge pages were asked for the arena."""
        return self._hugepages

    @property
    def trim_threshold(self) -> int | None:
        """Bytes of whole pages from which free() gives a free block's pages back; None: never."""
        t = self._flex.trim_threshold
        return None if t == TRIM_OFF else t

    def __del__(self) -> None:
        # as the binding's deallocator: a file heap dropped without close() is
        # closed (cleanly: no operation can be in progress)
        if getattr(self, "_fd", -1) >= 0 and self._t is not None:
            self._t = None
            self._release_memory(True)

    def __repr__(self) -> str:
        t = self._t
        where = "" if self._path is None else f" path={self._path!r}"
        if t is None:
            return f"<tlsf.pure.FlexHeap{where} max_size={self._capacity} sl_len={self._sl_len} closed>"
        return (f"<tlsf.pure.FlexHeap{where} size={t.size} max_size={self._capacity} sl_len={self._sl_len} "
                f"allocations={t.allocations}>")  # fmt: skip
