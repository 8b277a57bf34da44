"""python -m tlsf bench --trim: does memory go back to the system?

One scenario, each allocator in a fresh process of its own (resident memory
is per process): allocate 1 GiB in blocks of mixed sizes (100 B to 700 KiB),
writing every byte; free all but every 100th block; then give memory back
(glibc: ``malloc_trim(0)``; FlexHeap: ``trim()``). Resident memory is read
from /proc/self/statm (Linux) after each step, above what the process held
before the first allocation. glibc's malloc, through ctypes, is the anchor:
the C allocator that gives memory back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import mmap
import random
import subprocess
import sys
from typing import Any

SIZES = [100, 3000, 20_000, 150_000, 700_000]
KEEP_EVERY = 100


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * mmap.PAGESIZE


def plan(total: int) -> list[int]:
    rng = random.Random(1)
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(rng.choice(SIZES))
    return sizes


def run_glibc(sizes: list[int]) -> tuple[dict[str, int], int]:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    base = rss()
    ptrs = []
    for size in sizes:
        p = libc.malloc(size)
        ctypes.memset(p, 0xA5, size)
        ptrs.append(p)
    full = rss() - base
    for k, p in enumerate(ptrs):
        if k % KEEP_EVERY:
            libc.free(p)
    freed = rss() - base
    libc.malloc_trim(0)
    return {"full": full, "after_free": freed, "after_trim": rss() - base}, sum(sizes[::KEEP_EVERY])


def run_flex(cls: Any, sizes: list[int]) -> tuple[dict[str, int], int]:
    base = rss()
    h = cls(trim_threshold=None)  # everything given back by trim(), as malloc_trim
    offs = []
    for size in sizes:
        off = h.alloc(size)
        v = h.view(off, size)
        v[:] = b"\xa5" * size
        v.release()
        offs.append(off)
    full = rss() - base
    h.free_many([o for k, o in enumerate(offs) if k % KEEP_EVERY])
    freed = rss() - base
    h.trim()
    return {"full": full, "after_free": freed, "after_trim": rss() - base}, h.stats().allocated_bytes


def one(kind: str, mib: int) -> dict[str, Any]:
    sizes = plan(mib << 20)
    if kind == "glibc":
        r, live = run_glibc(sizes)
    else:
        import tlsf
        from tlsf import pure

        r, live = run_flex(tlsf.FlexHeap if kind == "c" else pure.FlexHeap, sizes)
    return {**r, "live": live}


ALLOCATORS = {"glibc": "glibc malloc + malloc_trim(0)", "c": "tlsf.FlexHeap (C) trim()",
              "python": "tlsf.pure.FlexHeap trim()"}  # fmt: skip


def main(mib: int) -> str:
    lines = [
        f"give-back: {mib} MiB in blocks of {min(SIZES)} B..{max(SIZES) // 1000} KB, all written; "
        f"all but every {KEEP_EVERY}th freed; then trim. Resident MiB above the start:",
        f"{'allocator':<32}{'full':>9}{'after free':>12}{'after trim':>12}{'live':>9}",
    ]
    for kind, name in ALLOCATORS.items():
        if kind == "c":
            import tlsf

            if tlsf.IMPLEMENTATION != "c":
                continue
        out = subprocess.run([sys.executable, "-m", "tlsf.bench_trim", kind, str(mib)], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        r = json.loads(out)
        lines.append(f"{name:<32}" + "".join(f"{r[k] / 2**20:>{w}.1f}" for k, w in
                     (("full", 9), ("after_free", 12), ("after_trim", 12), ("live", 9))))  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(one(sys.argv[1], int(sys.argv[2]))))
