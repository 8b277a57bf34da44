"""The twin of ``csrc/platform/unix.c`` (``os_memory.h`` on POSIX systems),
with the `mmap` module and, for mincore, ctypes.

Guarantee kept by every function: memory handed out is readable and writable
for as long as it is reserved; giving pages back makes them read as zeros,
never fault.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import sys

# Linux's value where the mmap module does not name it (it does from 3.13 on).
MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if sys.platform.startswith("linux") else 0)
CHUNK_PAGES = 4096  # pages per mincore call


def page_size() -> int:
    """The size of a page (what discard works in)."""
    return mmap.PAGESIZE


def reserve(n: int) -> mmap.mmap:
    """n bytes (a multiple of the page size) of zeroed, private, read-write
    address space that costs no memory until touched. OSError if refused."""
    flags = mmap.MAP_PRIVATE | getattr(mmap, "MAP_ANONYMOUS", getattr(mmap, "MAP_ANON", 0)) | MAP_NORESERVE
    return mmap.mmap(-1, n, flags=flags)


def unreserve(m: mmap.mmap) -> None:
    """Ends a reservation made by reserve."""
    m.close()


def address_of(m: mmap.mmap) -> int:
    """Where m is mapped (for mincore)."""
    c = ctypes.c_char.from_buffer(m)
    try:
        return ctypes.addressof(c)
    finally:
        del c  # the export ends here, so that m can be closed


def _libc_mincore() -> object | None:
    name = ctypes.util.find_library("c")
    try:
        fn = ctypes.CDLL(name, use_errno=True).mincore if name else None
    except (OSError, AttributeError):
        return None
    if fn is not None:
        fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        fn.restype = ctypes.c_int
    return fn


_mincore = _libc_mincore() if sys.platform.startswith("linux") else None


def resident_bytes(address: int, n: int) -> int:
    """Bytes of [address, address+n) resident now, by mincore, in chunks so
    that the vector stays small; all of n when mincore is refused."""
    if _mincore is None:
        return n
    page = mmap.PAGESIZE
    vec = (ctypes.c_ubyte * CHUNK_PAGES)()
    total = 0
    done = 0
    while done < n:
        length = min(n - done, CHUNK_PAGES * page)
        if _mincore(address + done, length, vec) != 0:  # type: ignore[operator]
            return n
        total += page * sum(v & 1 for v in vec[: length // page])
        done += length
    return total


def discard(m: mmap.mmap, address: int, off: int, n: int, count: bool) -> int:
    """Gives the pages of m[off:off+n] (page-aligned) back to the system; they
    read as zeros afterwards. With `count`, returns the bytes of those pages
    that were resident; without, n. 0 where pages cannot be given back."""
    if not sys.platform.startswith("linux") or not hasattr(m, "madvise"):
        return 0
    resident = resident_bytes(address + off, n) if count else n
    if resident == 0:
        return 0
    try:
        m.madvise(mmap.MADV_DONTNEED, off, n)
    except OSError:
        return 0
    return resident


def hugepages(m: mmap.mmap, off: int, n: int) -> bool:
    """Asks for transparent huge pages on m[off:off+n] where the platform has them."""
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is None:
        return False
    try:
        m.madvise(advice, off, n)
    except OSError:
        return False
    return True
