"""tlsf: the Two-Level Segregated Fit real-time allocator for Python.

`tlsf.Heap` carves allocations out of any writable buffer in O(1) time.
`tlsf.FlexHeap` does the same in memory of its own that grows from the
operating system as it is used and gives pages back.
`tlsf.SharedHeap` is one such heap in shared memory, used by many processes
(C extension only).
`tlsf.Block` is one allocation of any of them as an object that frees
itself and exports its bytes (heap.block(size)); `tlsf.numpy` puts numpy
arrays in a heap (a memory handler, heap.ndarray()).
`tlsf.OffsetAllocator` does the same over a range of offsets it never touches
(a GPU buffer, a file, an address range), with all metadata out of band.
`tlsf.malloc_library()` is the C core as the malloc of any program
(LD_PRELOAD it, or ``python -m tlsf run -- COMMAND``; tlsf.malloc).
The heaps are the C core when the extension is built, else the pure-Python twin
`tlsf.pure` (forced with TLSF_PURE_PYTHON=1); `tlsf.IMPLEMENTATION` says which.
When the twin is in use because the C core failed to build or to import,
`import tlsf` says so with a RuntimeWarning (none with TLSF_PURE_PYTHON=1).
"""

from __future__ import annotations

import os

from tlsf._errors import CorruptionError, InvalidOffsetError, OutOfMemoryError
from tlsf._records import BlockInfo, Stats
from tlsf.malloc import malloc_library as malloc_library  # not in __all__: no twin of it

__version__ = "0.1.0"

IMPLEMENTATION = "python"
_core_error: ImportError | None = None
if os.environ.get("TLSF_PURE_PYTHON", "") in ("", "0"):
    try:
        from tlsf._core import Block, FlexHeap, Heap, OffsetAllocator, SharedHeap
    except ImportError as e:
        _core_error = e
    else:
        IMPLEMENTATION = "c"
if IMPLEMENTATION == "python":
    from tlsf.pure import Block, FlexHeap, Heap, OffsetAllocator, SharedHeap  # type: ignore[assignment]
if _core_error is not None:  # the twin, not chosen: a RuntimeWarning says why (tlsf/_build.py)
    from tlsf._build import warn_fallback

    warn_fallback(_core_error)
    del warn_fallback
del _core_error


def get_include() -> str:
    """The folder of tlsf_capi.h, the C API for other extensions (see that header)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")


__all__ = [
    "IMPLEMENTATION",
    "Block",
    "BlockInfo",
    "CorruptionError",
    "FlexHeap",
    "Heap",
    "InvalidOffsetError",
    "OffsetAllocator",
    "OutOfMemoryError",
    "SharedHeap",
    "Stats",
    "__version__",
]
