"""The twin's place for ``binding/shared.c``: `SharedHeap` is C only.

A heap shared by processes needs a lock in the shared memory that processes
take without a system call and that survives the death of its holder (a
robust process-shared mutex, csrc/platform/os_shared.h); pure Python has no
such lock, and offering a SharedHeap without one would be unsafe. So the
twin's SharedHeap says so, as the C one does on a platform without the lock.
"""

from __future__ import annotations

from typing import NoReturn

_WHY = (
    "SharedHeap needs the C extension tlsf._core (a robust process-shared lock); "
    "the pure-Python twin has none"
)


class SharedHeap:
    """Not available in the pure-Python twin: every way to get one raises
    NotImplementedError. Its class methods take the arguments of the C
    SharedHeap's (binding/shared.c), so that their signatures agree."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError(_WHY)

    @classmethod
    def create(
        cls,
        name: str | None = None,
        *,
        max_size: int | None = None,
        sl_len: int = 32,
        trim_threshold: int | None = None,
        persist: bool = False,
    ) -> NoReturn:
        """A SharedHeap in a new shared memory segment: NotImplementedError in the twin."""
        raise NotImplementedError(_WHY)

    @classmethod
    def attach(cls, name: str, *, trim_threshold: int | None = None) -> NoReturn:
        """The heap in the segment `name`: NotImplementedError in the twin."""
        raise NotImplementedError(_WHY)

    @staticmethod
    def remove(name: str, /) -> NoReturn:
        """Remove the name of a segment: NotImplementedError in the twin."""
        raise NotImplementedError(_WHY)
