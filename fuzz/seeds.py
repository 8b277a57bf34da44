"""Writes the hand-made seed inputs of fuzz_tlsf.c into fuzz/corpus/ (run: python3 fuzz/seeds.py).

The input format is described at the top of fuzz_tlsf.c. The files are
committed; this script only documents how they were made.
"""

from __future__ import annotations

import pathlib
import struct

(
    ALLOC,
    ALLOC2,
    FREE,
    FREE2,
    REALLOC,
    USABLE,
    INVALID,
    APPEND,
    INSERT,
    SCRIBBLE,
    ALLOC_MANY,
    FREE_MANY,
    LARGEST,
) = range(13)  # op = (b & 0x7f) % 13
P = 0x80  # paranoid: compare a copy of the heap around refused operations


def header(sl_log2: int, cap: int, off: int, psize: int) -> bytes:
    return bytes([sl_log2]) + struct.pack("<H", cap & 0xFFFF) + bytes([off]) + struct.pack("<H", psize)


def u16(x: int) -> bytes:
    return struct.pack("<H", x)


def alloc8(size: int, align_log2: int = 4, op: int = ALLOC) -> bytes:
    return bytes([op, 0x00, size, align_log2])


def alloc16(size: int, align_log2: int = 4, op: int = ALLOC) -> bytes:
    return bytes([op, 0x10]) + u16(size) + bytes([align_log2])


def realloc8(k: int, size: int) -> bytes:
    return bytes([REALLOC, 0x00, k, size])


def realloc16(k: int, size: int) -> bytes:
    return bytes([REALLOC, 0x10, k]) + u16(size)


def free(k: int) -> bytes:
    return bytes([FREE, k])


SEEDS = {
    "basic": header(5, 0, 0, 0xFFFF)
    + alloc8(100)
    + alloc8(100)
    + alloc8(100)
    + free(1)
    + realloc8(0, 200)
    + bytes([USABLE, 0])
    + free(0),
    "sl1-unaligned-pool": header(0, 4096, 7, 3000)
    + alloc8(40, 8)
    + alloc8(10, 10)
    + alloc8(200, 5)
    + realloc8(1, 0)
    + free(0),
    "realloc-moves-back": header(2, 8192, 0, 8192)
    + alloc8(100)
    + alloc8(100)
    + alloc8(100)
    + alloc8(16)
    + free(0)
    + realloc8(1, 150),
    "realloc-both-neighbours": header(3, 8192, 0, 8192)
    + alloc8(100)
    + alloc8(100)
    + alloc8(100)
    + alloc8(16)
    + free(0)
    + free(1)
    + realloc16(1, 300),
    "append-growth": header(4, 8192, 0, 1024)
    + alloc8(200)
    + alloc16(700)
    + bytes([APPEND, 0x10, 0])
    + u16(2048)
    + alloc16(2500)
    + bytes([APPEND | P, 0x40])
    + u16(100)
    + u16(64)  # wrong offset: ERANGE, nothing changes
    + bytes([APPEND | P, 0x00, 0, 20]),  # too small: taken 0
    "second-pool": header(5, 16384, 0, 4096)
    + bytes([INSERT, 0x10])
    + u16(6000)
    + u16(4000)
    + bytes([INSERT | P, 0x10])
    + u16(100)
    + u16(1000)  # overlaps the first pool: ERANGE
    + bytes([APPEND, 0x10, 0])
    + u16(1904)  # the first pool grows up to the second
    + alloc16(3000)
    + alloc16(3000)
    + alloc16(3500)
    + free(1),
    "invalid-offsets": header(5, 4096, 0, 4096)
    + alloc8(64)
    + alloc8(200)
    + free(0)
    + bytes([INVALID, 0, 0])
    + u16(17)
    + bytes([INVALID, 1, 1, 0, 2])
    + bytes([INVALID, 2, 2, 0])
    + bytes([INVALID, 0, 3, 0])
    + bytes([INVALID, 1, 4, 5, 9])
    + bytes([INVALID, 2, 5, 0])
    + bytes([INVALID, 0, 6, 0]),
    "scribble-realloc": header(5, 8192, 0, 8192)
    + alloc8(50)
    + alloc8(30)
    + bytes([SCRIBBLE, 0])
    + u16(40)
    + u16(20)
    + bytes([7])
    + realloc16(0, 1000)
    + bytes([SCRIBBLE, 0])
    + u16(3)
    + u16(900)
    + bytes([1])
    + realloc8(0, 10),
    "batch": header(4, 8192, 0, 8192)
    + bytes([ALLOC_MANY, 0x04 | 0x18, 10, 20, 30, 40])
    + bytes([FREE_MANY, 0x80 | 0x40 | 2, 0, 1])  # a duplicate: EINVAL
    + bytes([FREE_MANY, 0x80 | 3, 1, 4, 200])  # an offset past the arena: EINVAL
    + bytes([FREE_MANY, 2, 1])
    + bytes([ALLOC_MANY, 0x80 | 0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),  # ENOMEM: all or nothing
    "largest": header(6, 2048, 3, 2000) + alloc8(100) + alloc8(30) + free(0) + bytes([LARGEST]) + free(1),
    "tiny-pool": header(6, 64, 0, 64) + alloc8(0) + alloc8(0) + free(0) + alloc8(16) + bytes([LARGEST]),
    "errors": header(5, 1024, 0, 1024)
    + bytes([ALLOC | P, 0x00, 10, 17])  # align 0: EALIGN
    + bytes([ALLOC | P, 0x00, 10, 18])  # align 3: EALIGN
    + bytes([ALLOC | P, 0x00, 10, 21])  # align 2^63: ENOMEM
    + bytes([ALLOC | P, 0x30, 5, 4])  # size past the arena: ENOMEM
    + bytes([ALLOC | P, 0x70, 5, 4])  # size near 2^64: ENOMEM
    + alloc8(10)
    + bytes([REALLOC | P, 0x70, 0, 1]),  # realloc near 2^64: ENOMEM, untouched
    "big-alignment": header(5, 0, 0, 0xFFFF)
    + alloc8(10, 16)
    + alloc8(10, 12)
    + alloc8(10, 15)
    + realloc16(0, 5000)
    + free(1)
    + free(0),
    # regression: capacity 1025, free(1024): the live bitmap had no word for the last granule
    # (heap-buffer-overflow read in is_live); any capacity with capacity % 16 != 0 == (capacity / 16) % 64
    "regress-live-bitmap-end": header(5, 1025, 0, 0) + bytes([INVALID, 0, 0]) + u16(1024),
    "many-small": header(1, 4096, 0, 4096)
    + b"".join(alloc8(n * 7 % 60) for n in range(40))
    + b"".join(free(k) for k in (5, 0, 17, 3, 9, 1, 2, 30)),
}


def main() -> None:
    out = pathlib.Path(__file__).resolve().parent / "corpus"
    out.mkdir(exist_ok=True)
    for name, data in SEEDS.items():
        (out / name).write_bytes(data)
    print(f"{len(SEEDS)} seeds written to {out}")


if __name__ == "__main__":
    main()
