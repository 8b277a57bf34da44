"""The twin of ``csrc/platform/unix.c`` (``os_memory.h`` on POSIX systems),
with the `mmap` module and, for mincore, ctypes.

Guarantee kept by every function: memory handed out is readable and writable
for as long as it is reserved; giving pages back makes them read as zeros,
never fault.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import mmap
import os
import sys
from typing import Any

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


def libc_function(name: str, argtypes: list[Any]) -> Any:
    """The C library's function `name` returning int, on Linux; else None."""
    lib = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    try:
        fn = getattr(ctypes.CDLL(lib, use_errno=True), name) if lib else None
    except (OSError, AttributeError):
        return None
    if fn is not None:
        fn.argtypes = argtypes
        fn.restype = ctypes.c_int
    return fn


_mincore = libc_function("mincore", [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p])


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
        if _mincore(address + done, length, vec) != 0:
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


# ------------------------------------------------------------------- files


def file_open(path: str | bytes, create: bool) -> tuple[int, int]:
    """Opens `path` read-write (create: a new file, failing if it exists) and
    takes an exclusive advisory lock on it without waiting (BlockingIOError
    when another open file holds it); returns (fd, size)."""
    flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0) | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = os.open(path, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd, os.fstat(fd).st_size
    except BaseException:
        os.close(fd)
        raise


def file_allocate(fd: int, off: int, n: int) -> None:
    """Gives file bytes [off, off+n) storage (extending the file if needed)."""
    try:
        os.posix_fallocate(fd, off, n)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        if os.fstat(fd).st_size < off + n:  # a file system without it: the size at least
            os.ftruncate(fd, off + n)


FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2


_fallocate = libc_function("fallocate", [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64])


def file_discard(fd: int, off: int, address: int, n: int, count: bool) -> int:
    """Gives the file's storage for [off, off+n) back (a hole: reads as
    zeros), its pages mapped at `address`; with `count`, returns the bytes of
    them that were resident, else n; 0 where holes cannot be punched."""
    if _fallocate is None:
        return 0
    resident = resident_bytes(address, n) if count else n
    if _fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, n) != 0:
        return 0
    return resident


def file_sync(fd: int, m: mmap.mmap) -> None:
    """Writes a file mapping, and the file, to stable storage."""
    m.flush()
    os.fsync(fd)
