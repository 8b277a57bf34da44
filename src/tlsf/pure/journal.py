"""The undo journal that makes each operation of the twin atomic.

The C core cannot be interrupted in the middle of an operation: it runs under
the GIL, and no Python code (a signal handler, a trace function, another
thread) runs until it returns. The twin can be, at any bytecode: a
KeyboardInterrupt raised by a signal handler, an exception raised by a trace
function, or a fork() while another thread is inside a call (the child has no
such thread). So while an operation runs, each engine records every store it
makes, just before making it, as an entry (target, key, old value) in its
journal, a list (flat: three items per entry, no tuple kept alive for the
garbage collector to scan in a long alloc_many):

- ``(obj, "attr", old)``: an attribute (a node's link, a bitmap, a list head array);
- ``(container, key, old)``: an item (an arena word, a list head, a bitmap word;
  ``old`` is `MISSING` for a dict key that was absent);
- ``(a_set, member, was_in)``: the membership of `member` in a set;
- ``(restore, None, old)``: ``restore(old)`` (the counters saved when the
  operation began).

`atomic` runs one operation; if it does not complete, `undo` replays the
journal backwards, and the heap is exactly as before the call. Each store
costs one entry (O(1) per operation, no snapshot of a whole structure).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from tlsf._errors import CorruptionError, InvalidOffsetError, OutOfMemoryError

R = TypeVar("R")
# What the engines raise themselves: they leave the heap as the C core does
# (unchanged, or after a CorruptionError what was done before it was found).
ENGINE_ERRORS = (CorruptionError, InvalidOffsetError, OutOfMemoryError, ValueError)
MISSING: Any = object()  # `old` of a dict key that was absent


class Engine(Protocol):
    """What `atomic` needs of an engine: its journal and its counters."""

    log: list[Any]

    def counters(self) -> tuple[int, ...]: ...

    def set_counters(self, saved: tuple[int, ...]) -> None: ...


def restore(target: Any, key: Any, old: Any) -> None:
    """Undoes one entry. Restoring an entry twice is harmless."""
    if key.__class__ is str:
        setattr(target, key, old)
    elif target.__class__ is set:
        if old:
            target.add(key)
        else:
            target.discard(key)
    elif key is None:
        target(old)
    elif old is MISSING:
        target.pop(key, None)
    else:
        target[key] = old


def undo(log: list[Any]) -> None:
    """Replays `log` backwards and empties it. Each entry is restored before
    it is dropped, so that an interrupt in here leaves at most the last
    entry restored and still in the journal: undo then starts again, until
    the journal is empty (a second KeyboardInterrupt is swallowed; the first
    one is re-raised by `atomic`)."""
    while True:
        try:
            while log:
                restore(*log[-3:])
                del log[-3:]
            return
        except BaseException:
            continue


def atomic(engine: Engine, op: Callable[..., R], *args: Any) -> R:
    """``op(engine, *args)``, all or nothing: any exception (KeyboardInterrupt,
    an exception from a trace function, MemoryError, ...) undoes what the
    operation did before it is re-raised; but the engine's own errors
    (ENGINE_ERRORS) leave the heap exactly as the C core leaves it, which the
    differential tests compare, down to the bytes alloc_many's rollback leaves
    in free blocks and what an operation did before it found a corruption.

    The journal is dropped on the line that returns: once the operation is
    committed, no line of the twin runs before the caller gets the result
    (Heap and OffsetAllocator call this on the line that takes their lock)."""
    log = engine.log
    try:
        log.clear()  # left over when an interrupt struck an engine error's handler below
        log += (engine.set_counters, None, engine.counters())
        result = op(engine, *args)
        log.clear(); return result  # noqa: E702 - one line: see above
    except ENGINE_ERRORS:
        log.clear()
        raise
    except BaseException:
        undo(log)
        raise


# ---------------------------------------------------------------------- fork

# Every live Heap and OffsetAllocator of the twin (objects with a `_lock` and
# an engine `_t`, None once closed). A child forked while another thread was
# inside a call inherits the lock held and the operation half done, and that
# thread does not exist in the child: the child gets a new lock, and the
# operation is undone (its journal is not empty only in the middle of one).
_ALLOCATORS: weakref.WeakSet[Any] = weakref.WeakSet()


def register(allocator: Any) -> None:
    """Makes `allocator` usable in a child forked at any moment."""
    _ALLOCATORS.add(allocator)


def _after_fork_in_child() -> None:
    for allocator in list(_ALLOCATORS):
        allocator._lock = threading.Lock()
        engine = allocator._t
        if engine is not None and engine.log:
            undo(engine.log)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


__all__ = ["MISSING", "atomic", "register", "restore", "undo"]
