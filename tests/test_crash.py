"""Crash recovery by fault injection: an operation stopped after each of its stores.

A heap file is made and filled; then, for every k, a forked process opens it,
runs one operation whose k-th store to the heap image (arena words, the
moved data, the noted realloc in the control words) is its last (the twin's
undo journal, which sees every store before it is made, stops it there) and
dies with os._exit. The file then holds exactly what a process killed at that
instruction leaves. Both recoveries, the C core's and the twin's, must open
it with recover=True, agree with each other (walk, stats: the differential
test of tlsf_recover), pass check(), and show the operation either done or
not done, with every other allocation's bytes intact. The C core's own store
order is tested the same way by tests/native/crash.c.
"""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import GRAN, both_classes, pattern

import tlsf
from tlsf.pure.flex import Flex

MIB = 1 << 20

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")


class Stop(BaseException):
    """Raised by FaultLog where the process is to die."""


class FaultLog(list):
    """An undo journal that lets `left` stores to the image through, then stops."""

    def __init__(self, engine: Flex, left: int):
        super().__init__()
        self.targets = {id(engine.words), id(engine.bytes), id(engine.ctl)}
        self.left = left

    def __iadd__(self, entry):  # type: ignore[override]
        if id(entry[0]) in self.targets:
            if self.left == 0:
                raise Stop
            self.left -= 1
        return super().__iadd__(entry)


def run_op(path: str, op, stop_after: int | None) -> None:
    """In a child process: open the file, run op(engine) with the journal
    stopping it after `stop_after` image stores (None: never), then die."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            h = tlsf.pure.FlexHeap.open(path)
            engine = h._flex
            if stop_after is not None:
                engine.log = engine.cls.log = FaultLog(engine, stop_after)
                # each growth maps the file anew: the journal must see the new views
                extend = engine.src.extend

                def extend_and_follow(old, new, log=engine.log):
                    extend(old, new)
                    log.targets |= {id(engine.words), id(engine.bytes), id(engine.ctl)}

                engine.src.extend = extend_and_follow
            try:
                op(engine)
                code = 3  # completed: not stopped
            except Stop:
                code = 2
            except tlsf.OutOfMemoryError:
                code = 4
        finally:
            os._exit(code)  # dies: nothing is closed, the clean flag stays off
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status)


def used_blocks(h) -> dict[int, int]:
    return {b.offset + GRAN: b.size for b in h.walk() if b.used}


def contents(h, offs) -> dict[int, bytes]:
    out = {}
    for off in offs:
        v = h.view(off)
        out[off] = v.tobytes()
        v.release()
    return out


def setup_heap(path: str, layout) -> dict[int, bytes]:
    """A heap file: layout(h) allocates and frees; every live block is filled."""
    with tlsf.pure.FlexHeap.create(path, max_size=8 * MIB, trim_threshold=None) as h:
        layout(h)
        live = sorted(used_blocks(h))
        for i, off in enumerate(live):
            v = h.view(off)
            v[:] = pattern(1000 + i, len(v))
            v.release()
        return contents(h, live)


# Each scenario: (layout, the index among the live blocks of the one the
# operation works on (or None), the operation on the engine given that
# offset). The layouts give every shape: split and no split, padding,
# coalescing left/right/both, growth.
def L_big_free(h):
    a = h.alloc(100)
    h.alloc(5000)
    h.free(a)


def L_row(h):
    """Seven blocks of 1024 bytes, the 2nd and 4th free, then the pool's free
    rest: live [0, 2, 4, 5, 6] by index 0..4."""
    offs = [h.alloc(1000) for _ in range(7)]
    h.free(offs[1])
    h.free(offs[3])


def L_full(h):
    h.alloc(h.stats().largest_free)


SCENARIOS = {
    "alloc-split": (L_big_free, None, lambda t, p: Flex.alloc(t, 40, 1)),
    "alloc-exact": (L_row, None, lambda t, p: Flex.alloc(t, 1000, 1)),
    "alloc-padded": (L_big_free, None, lambda t, p: Flex.alloc(t, 100, 4096)),
    "alloc-grows": (L_full, None, lambda t, p: Flex.alloc(t, 200_000, 1)),
    "free-alone": (L_row, 3, lambda t, p: Flex.free(t, p)),
    "free-left": (L_row, 2, lambda t, p: Flex.free(t, p)),
    "free-right": (L_row, 0, lambda t, p: Flex.free(t, p)),
    "free-both": (L_row, 1, lambda t, p: Flex.free(t, p)),
    "realloc-shrink": (L_row, 3, lambda t, p: Flex.realloc(t, p, 100)),
    "realloc-shrink-merge": (L_row, 0, lambda t, p: Flex.realloc(t, p, 100)),
    "realloc-grow-in-place": (L_row, 0, lambda t, p: Flex.realloc(t, p, 1500)),
    "realloc-grow-whole-next": (L_row, 0, lambda t, p: Flex.realloc(t, p, 2020)),
    "realloc-move": (L_row, 3, lambda t, p: Flex.realloc(t, p, 30_000)),
    "realloc-grows-pool": (L_full, 0, lambda t, p: Flex.realloc(t, p, 300_000)),
    "alloc_many": (L_row, None, lambda t, p: Flex.alloc_many(t, [10, 1000, 5000], 1)),
    "free_many": (L_row, 0, lambda t, p: Flex.free_many(t, [p, *sorted(t.live)[1:4:2]])),
}
# what realloc keeps of the block it works on: the first 100 bytes at most
KEEP = 100


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_store_of_every_operation(tmp_path, name):
    c_cls, py_cls = both_classes("FlexHeap")
    layout, index, op_on = SCENARIOS[name]
    base = str(tmp_path / "base.tlsf")
    before_bytes = setup_heap(base, layout)
    target = None if index is None else sorted(before_bytes)[index]

    def op(t):
        op_on(t, target)

    # The operation done: what "it happened" looks like (a batch: each prefix).
    done = str(tmp_path / "done.tlsf")
    shutil.copy(base, done)
    assert run_op(done, op, None) == 3
    with py_cls.open(done, recover=True) as h:
        after = used_blocks(h)
    with py_cls.open(base) as h:
        before = used_blocks(h)
    assert before != after

    stops = 0
    for k in range(10_000):
        image = str(tmp_path / f"k{k}.tlsf")
        shutil.copy(base, image)
        if run_op(image, op, k) == 3:
            break  # k stores were all it takes: the last image is the done one
        stops += 1
        recovered = []
        for cls in (c_cls, py_cls):
            copy = image + f".{cls.__module__}"
            shutil.copy(image, copy)
            with cls.open(copy, recover=True) as h:
                h.check()
                used = used_blocks(h)
                kept = {off: before_bytes[off] for off in before_bytes if off in used and off in after}
                if target in used:  # the block worked on: what the operation keeps of it
                    kept[target] = before_bytes[target][:KEEP]
                # every allocation the operation did not touch keeps its bytes
                got = contents(h, kept)
                for off, data in kept.items():
                    assert got[off][: len(data)] == data[: len(got[off])], f"{name}, store {k}: {off} changed"
                recovered.append((list(h.walk()), h.stats(), used))
        assert recovered[0] == recovered[1], f"{name}, store {k}: the C and twin recoveries differ"
        used = recovered[0][2]
        if name.endswith("_many"):  # a batch is a sequence of operations: each one done or not
            assert set(before) & set(after) <= set(used) <= set(before) | set(after), (name, k)
        else:
            assert used in (before, after), f"{name}, store {k}: neither before nor after: {used}"
    assert stops >= 2, f"{name}: only {stops} stores"
