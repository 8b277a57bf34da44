"""The two-level size classes and their bitmaps (mirrors ``csrc/tlsf_classes.h``).

Shared by both engines: `tlsf.pure.tlsf` (in-band headers, `min_log2` 4) and
`tlsf.pure.offset` (out-of-band nodes, sizes in units, `min_log2` 0).

A size s with m = floor(log2 s) falls in first level fl = m - min_log2 and
second level sl = the sl_log2 bits below the top bit. Class index
i = fl * sl_len + sl. Sizes below 2**sl_log2 get a class each (exact).
"""

from __future__ import annotations

from typing import Any

FL_MAX = 64  # first levels for any 64-bit size (TLSF_FL_MAX)
CLASS_NONE = (1 << 64) - 1  # "no class": beyond every list (TLSF_CLASS_NONE)
U64_MAX = (1 << 64) - 1


class Classes:
    """Size classes and bitmaps of one allocator (tlsf_classes_t and its functions)."""

    __slots__ = ("sl_log2", "min_log2", "fl_count", "fl_bitmap", "sl_bitmap", "sl_mask", "log")

    def __init__(self, sl_log2: int, min_log2: int, fl_count: int) -> None:
        self.sl_log2 = sl_log2  # log2 of the second-level count
        self.min_log2 = min_log2  # log2 of the smallest size filed
        self.fl_count = fl_count  # first levels in use: lists exist for fl < fl_count
        self.fl_bitmap = 0  # bit fl set <=> sl_bitmap[fl] != 0
        self.sl_bitmap = [0] * FL_MAX  # bit sl set <=> list (fl, sl) is not empty
        self.sl_mask = (1 << sl_log2) - 1
        # the journal of its engine (tlsf.pure.journal): the old value of each
        # sl_bitmap word before a store (fl_bitmap is among the engine's counters)
        self.log: list[Any] = []

    def map_floor(self, size: int) -> int:
        """The list a free block of `size` is filed in (rounding down); size >= 2**min_log2."""
        m = size.bit_length() - 1
        sli = self.sl_log2
        sl = (size >> (m - sli) if m >= sli else size << (sli - m)) & self.sl_mask
        return ((m - self.min_log2) << sli) | sl

    def map_ceil(self, size: int) -> int:
        """The first list whose every block fits `size` (good fit: no list is
        scanned); CLASS_NONE when the rounding would overflow 64 bits."""
        m = size.bit_length() - 1
        if m > self.sl_log2:
            rounding = (1 << (m - self.sl_log2)) - 1
            if size > U64_MAX - rounding:
                return CLASS_NONE
            size += rounding
        return self.map_floor(size)

    def class_exists(self, i: int) -> bool:
        """Whether class i has lists (its first level is in use)."""
        return i >> self.sl_log2 < self.fl_count

    def find_suitable(self, i: int) -> int:
        """The first non-empty list at or above class i, or CLASS_NONE. Bit scans only."""
        sli = self.sl_log2
        fl = i >> sli
        if fl >= self.fl_count:
            return CLASS_NONE
        slmap = self.sl_bitmap[fl] & (-1 << (i & self.sl_mask))
        if not slmap:
            flmap = self.fl_bitmap & (-1 << (fl + 1))
            if not flmap:
                return CLASS_NONE
            fl = (flmap & -flmap).bit_length() - 1
            slmap = self.sl_bitmap[fl]
        return (fl << sli) | ((slmap & -slmap).bit_length() - 1)

    def find_highest(self) -> int:
        """The highest non-empty list, or CLASS_NONE."""
        if not self.fl_bitmap:
            return CLASS_NONE
        fl = self.fl_bitmap.bit_length() - 1
        return (fl << self.sl_log2) | (self.sl_bitmap[fl].bit_length() - 1)

    def mark_class(self, i: int) -> None:
        """List i became non-empty."""
        fl = i >> self.sl_log2
        self.log += (self.sl_bitmap, fl, self.sl_bitmap[fl])
        self.sl_bitmap[fl] |= 1 << (i & self.sl_mask)
        self.fl_bitmap |= 1 << fl

    def unmark_class(self, i: int) -> None:
        """List i became empty."""
        fl = i >> self.sl_log2
        self.log += (self.sl_bitmap, fl, self.sl_bitmap[fl])
        self.sl_bitmap[fl] &= ~(1 << (i & self.sl_mask))
        if not self.sl_bitmap[fl]:
            self.fl_bitmap &= ~(1 << fl)

    def check_bitmaps(self) -> int | None:
        """None when the bitmaps agree with each other and name no list beyond
        fl_count; else the first level at fault."""
        allowed = (1 << (1 << self.sl_log2)) - 1
        if self.fl_bitmap >> FL_MAX:  # a C uint64_t cannot hold these bits
            return FL_MAX
        for fl in range(FL_MAX):
            slmap = self.sl_bitmap[fl]
            if (self.fl_bitmap >> fl) & 1 != (slmap != 0) or slmap & ~(allowed if fl < self.fl_count else 0):
                return fl
        return None


__all__ = ["CLASS_NONE", "FL_MAX", "U64_MAX", "Classes"]
