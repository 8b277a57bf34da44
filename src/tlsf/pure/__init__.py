"""The pure-Python twin of the C core: the same API, the same algorithms.

Each module mirrors one C file function for function, with the same names,
and returns identical offsets, walks and statistics for identical calls
(the differential tests check it):

=========================  ==================================================
C file                     twin module
=========================  ==================================================
``csrc/tlsf_classes.h``    `tlsf.pure.classes`: the size classes and their
                           bitmaps (`Classes`), shared by both engines
``csrc/tlsf.c``            `tlsf.pure.tlsf`: the in-band engine (`Tlsf`), and
                           `Heap`, the twin of the binding's Heap
``csrc/tlsf_flex.c``       `tlsf.pure.flex`: the growable heap (`Flex`, a
                           Tlsf that grows), and `FlexHeap`, the twin of
                           the binding's FlexHeap (binding/flex.c)
``csrc/platform/unix.c``   `tlsf.pure.platform.unix`: memory from the system
``binding/shared.c``       `tlsf.pure.shared`: `SharedHeap`, which is C only
                           (it needs a robust process-shared lock) and
                           raises NotImplementedError here
``csrc/tlsf_offset.c``     `tlsf.pure.offset`: the out-of-band engine
                           (`TlsfOffset`), and `OffsetAllocator`, the twin of
                           the binding's OffsetAllocator
``binding/block.c``        `tlsf.pure.block`: `Block`, an allocation that
                           frees itself (its buffer protocol needs Python
                           3.12 here; ``view()`` works everywhere)
``binding/args.c``        `tlsf.pure.args`: the argument conversions and
                           messages of both classes (with batch.c, errors.c)
(none)                     `tlsf.pure.journal`: the undo journal that makes
                           each operation atomic under interrupts (C cannot
                           be interrupted inside a core call)
=========================  ==================================================

It is the readable reference, the fallback where no compiler exists
(TLSF_PURE_PYTHON=1 forces it) and the oracle that tests the C code.
"""

from __future__ import annotations

from tlsf import __version__
from tlsf._errors import CorruptionError, InvalidOffsetError, OutOfMemoryError
from tlsf._records import BlockInfo, Stats
from tlsf.pure.block import Block
from tlsf.pure.flex import Flex, FlexHeap
from tlsf.pure.offset import OffsetAllocator, TlsfOffset
from tlsf.pure.shared import SharedHeap
from tlsf.pure.tlsf import (
    GRANULARITY,
    HEADER_SIZE,
    MAX_CAPACITY,
    MIN_BLOCK,
    MIN_POOL,
    NIL,
    SENTINEL_SIZE,
    Heap,
    Tlsf,
)

IMPLEMENTATION = "python"

# The public names of `tlsf` (the same objects for the exceptions and records,
# so that code written against either catches and compares the same things),
# then the twin's own.
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
    "GRANULARITY",
    "HEADER_SIZE",
    "MAX_CAPACITY",
    "MIN_BLOCK",
    "MIN_POOL",
    "NIL",
    "SENTINEL_SIZE",
    "Flex",
    "Tlsf",
    "TlsfOffset",
]
