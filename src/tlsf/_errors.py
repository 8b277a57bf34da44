"""The exceptions of `tlsf`, shared by the C core and the pure-Python twin."""

from __future__ import annotations


class OutOfMemoryError(MemoryError):
    """Nothing fits the request. The heap is unchanged."""


class InvalidOffsetError(ValueError):
    """The offset is not that of a live allocation. The heap is unchanged."""


class CorruptionError(RuntimeError):
    """Heap metadata was found inconsistent (the arena was overwritten)."""


__all__ = ["CorruptionError", "InvalidOffsetError", "OutOfMemoryError"]
