"""The twin of ``csrc/tlsf_image.c``: the heap image format (see tlsf_image.h).

[0, 4096)              the header below; a segment's lock at LOCK_OFF; the rest zero
[4096, control_end)    the C control structure, derived: rebuilt at every open
[arena_off, +size)     the arena: one pool at its offset 0, which grows with the file
"""

from __future__ import annotations

import struct

from tlsf.pure.tlsf import MAX_CAPACITY, MIN_POOL, control_size

VERSION = 1
HEADER_SIZE = 4096
ALIGN = 64 << 10  # the arena's offset: a multiple of any page size up to 64 KiB
ORDER = 0x01020304  # reads so on a machine of the same byte order
CLEAN = 1  # flags: closed cleanly (cleared while open)
BROKEN = 2  # flags: recovery found the chain broken (a segment)
LOCK_OFF, LOCK_SIZE = 1024, 1024  # a segment's lock, in the header page
MAGIC = b"TLSFHEAP"  # a heap file
SHARED_MAGIC = b"TLSFSHRD"  # a shared memory segment (SharedHeap: C only)

# tlsf_image_header_t: magic, version, word_size, order, sl_len, flags,
# recoveries, max_size, size, root, control_off, arena_off (native byte order)
HEADER = struct.Struct("=8s6I5Q")
FLAGS_AT, SIZE_AT, ROOT_AT = 24, 40, 48  # byte offsets of fields updated in place

# What check finds (tlsf_image.h).
OK, NOT_HEAP, NEWER, FOREIGN, BAD, TRUNCATED = range(6)


def arena_off(max_size: int, sl_len: int) -> int:
    """Where the control structure ends and the arena starts; 0 when invalid."""
    control = control_size(max_size, sl_len)
    if not control or not max_size:
        return 0
    return -(-(HEADER_SIZE + control) // ALIGN) * ALIGN


def init(max_size: int, sl_len: int, size: int) -> bytes:
    """A new header (not yet marked as a heap: no magic)."""
    return HEADER.pack(b"\0" * 8, VERSION, 8, ORDER, sl_len, 0, 0, max_size, size, 0, HEADER_SIZE,
                       arena_off(max_size, sl_len))  # fmt: skip


def check(header: bytes, file_size: int, magic: bytes) -> tuple[int, int]:
    """(what, detail) for header bytes of an image of file_size bytes with
    the given magic (zeros where the image is shorter); detail: NEWER's
    version, TRUNCATED's bytes needed."""
    if file_size < HEADER.size or header[:8] != magic:
        return NOT_HEAP, 0
    _, version, word_size, order, sl_len, _, _, max_size, size, _, control_off, arena = HEADER.unpack(
        header[: HEADER.size]
    )
    if version > VERSION:
        return NEWER, version
    if word_size != 8 or order != ORDER:
        return FOREIGN, 0
    want = arena_off(max_size, sl_len)
    if (
        not version
        or not want
        or max_size > MAX_CAPACITY
        or control_off != HEADER_SIZE
        or arena != want
        or size > max_size
        or size < MIN_POOL
    ):
        return BAD, 0
    if file_size < arena or file_size - arena < size:
        return TRUNCATED, arena + size
    return OK, 0
