"""Hypothesis state machine: a heap against a shadow model of its live allocations.

The model maps offset -> (size asked, alignment, bytes written). After every step
the heap must pass check(), keep every allocation aligned, inside the buffer,
disjoint from the others and with its contents intact, and report stats that
agree with the model. Failed calls must leave the heap unchanged.

HYPOTHESIS_PROFILE=ci runs 2,000 examples per implementation.
"""

from __future__ import annotations

import mmap

import hypothesis.strategies as st
from conftest import GRAN, ArenaMemory, assert_consistent, impl_class, make_flex, pattern, snapshot
from hypothesis import settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import tlsf

STEPS = 30
HUGE = [2**32, 2**58, 2**63 - 1, 2**63, 2**64 - 16, 2**64 - 1, 2**64, 2**70]
ALIGNS = st.sampled_from([2**k for k in range(13)])


def sizes(capacity: int):
    return st.one_of(
        st.integers(0, 48),
        st.integers(0, 2048),
        st.integers(0, capacity + 64),
        st.sampled_from(HUGE),
    )


class HeapMachine(RuleBasedStateMachine):
    heap_cls = None  # set per implementation

    def __init__(self):
        super().__init__()
        self.model: dict[int, tuple[int, int, bytes]] = {}
        self.serial = 0

    @initialize(
        capacity=st.sampled_from([4096, 16384, 40_009, 65536]),
        sl_len=st.sampled_from([1, 4, 32, 64]),
    )
    def setup(self, capacity, sl_len):
        self.capacity = capacity
        self.mem = bytearray(capacity)
        self.heap = self.heap_cls(self.mem, sl_len=sl_len)

    def teardown(self):
        if hasattr(self, "heap"):
            self.heap.close()

    # -- helpers

    def write(self, off: int, size: int, via_view: bool) -> bytes:
        self.serial += 1
        data = pattern(self.serial, size)
        if via_view:
            with self.heap.view(off, size) as v:
                v[:] = data
        else:
            self.mem[off : off + size] = data
        return data

    def pick(self, data) -> int:
        return data.draw(st.sampled_from(sorted(self.model)), label="offset")

    # -- rules

    @rule(size=st.data(), align=ALIGNS, via_view=st.booleans())
    def alloc(self, size, align, via_view):
        size = size.draw(sizes(self.capacity), label="size")
        before = snapshot(self.heap, self.mem)
        try:
            off = self.heap.alloc(size, align)
        except tlsf.OutOfMemoryError:
            assert snapshot(self.heap, self.mem) == before
            if align <= GRAN:  # largest_free: what alloc can have now, 0 if not even alloc(0)
                largest = self.heap.stats().largest_free
                assert size > largest or largest == 0
            return
        assert off not in self.model
        assert off % align == 0
        self.model[off] = (size, align, self.write(off, size, via_view))

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def free(self, data):
        off = self.pick(data)
        self.heap.free(off)
        del self.model[off]

    @precondition(lambda self: self.model)
    @rule(data=st.data(), via_view=st.booleans())
    def realloc(self, data, via_view):
        off = self.pick(data)
        size = data.draw(st.one_of(st.just(0), sizes(self.capacity)), label="new size")
        self.do_realloc(off, size, via_view)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), grow=st.integers(1, 2048), via_view=st.booleans())
    def realloc_grow(self, data, grow, via_view):
        """Growing is what moves blocks: forwards, or back into a free previous block."""
        off = self.pick(data)
        self.do_realloc(off, self.model[off][0] + grow, via_view)

    def do_realloc(self, off, size, via_view):
        old_size, align, old = self.model[off]
        before = snapshot(self.heap, self.mem)
        try:
            new = self.heap.realloc(off, size)
        except tlsf.OutOfMemoryError:
            assert snapshot(self.heap, self.mem) == before
            if align <= GRAN:
                assert size > max(old_size, self.heap.stats().largest_free)
            return
        keep = min(old_size, size)
        assert self.mem[new : new + keep] == old[:keep]
        assert new % align == 0
        if size <= old_size:
            assert new == off  # shrinking never moves
        if new != off:
            assert new not in self.model
        del self.model[off]
        self.model[new] = (size, align, self.write(new, size, via_view))

    @precondition(lambda self: self.model)
    @rule(data=st.data(), via_view=st.booleans())
    def rewrite(self, data, via_view):
        off = self.pick(data)
        size, align, _ = self.model[off]
        self.model[off] = (size, align, self.write(off, size, via_view))

    @rule(
        off=st.integers(-32, 70_000) | st.sampled_from(HUGE),
        call=st.sampled_from(["free", "realloc", "usable_size", "view"]),
    )
    def invalid_offset(self, off, call):
        if off in self.model:
            return
        before = snapshot(self.heap, self.mem)
        args = (off, 10) if call == "realloc" else (off,)
        try:
            getattr(self.heap, call)(*args)
        except tlsf.InvalidOffsetError as e:
            assert str(off) in str(e)
        else:
            raise AssertionError(f"{call}{args} did not raise InvalidOffsetError")
        assert snapshot(self.heap, self.mem) == before

    @rule()
    def alloc_largest_free(self):
        largest = self.heap.stats().largest_free
        if largest:
            off = self.heap.alloc(largest)
            assert self.heap.usable_size(off) >= largest
            self.heap.free(off)

    # -- invariants

    @invariant()
    def consistent(self):
        if not hasattr(self, "heap"):
            return
        live = {off: size for off, (size, _, _) in self.model.items()}
        assert_consistent(self.heap, live, self.capacity)
        end = 0
        for off in sorted(self.model):
            size, align, data = self.model[off]
            usable = self.heap.usable_size(off)
            assert off >= end + GRAN, "allocations overlap (or lack a header)"
            assert off % GRAN == 0 and off % align == 0
            assert usable >= size
            end = off + usable
            assert end <= self.capacity
            assert self.mem[off : off + size] == data
        st_ = self.heap.stats()
        assert st_.allocations == len(self.model)
        assert st_.allocated_bytes == sum(self.heap.usable_size(o) for o in self.model)


# How the FlexHeap and SharedHeap machines start.
FLEX_SETUP = dict(
    capacity=st.sampled_from([65536, 200_000, 1 << 20]),
    sl_len=st.sampled_from([1, 4, 32, 64]),
    trim_threshold=st.sampled_from([None, 0, 4096, 1 << 20]),
)


class FlexHeapMachine(HeapMachine):
    """The same model over a FlexHeap (max_size = capacity), plus growth and
    trim steps: growth never moves an allocation or changes its bytes, and
    after trim() the whole pages inside every free block read as zeros."""

    @initialize(**FLEX_SETUP)
    def setup(self, capacity, sl_len, trim_threshold):
        self.capacity = capacity
        self.heap = make_flex(self.heap_cls, capacity, sl_len=sl_len, trim_threshold=trim_threshold)
        self.mem = ArenaMemory(self.heap)

    @rule(extra=st.integers(1, 300_000), align=ALIGNS)
    def grow(self, extra, align):
        """A request beyond the largest free block: the pool grows, or nothing changes."""
        size_before = self.heap.size
        largest = self.heap.stats().largest_free
        try:
            off = self.heap.alloc(largest + extra, align)
        except tlsf.OutOfMemoryError:
            assert self.heap.size == size_before
            return
        assert size_before <= self.heap.size <= self.capacity  # grown if it had to, never shrunk
        self.model[off] = (largest + extra, align, self.write(off, largest + extra, False))

    @rule()
    def trim(self):
        self.heap.trim()
        page = mmap.PAGESIZE
        for b in self.heap.walk():
            if not b.used:
                lo = -(-(b.offset + 32) // page) * page
                hi = (b.offset + b.size) // page * page
                if hi > lo:
                    assert self.mem[lo:hi] == bytes(hi - lo), f"free block {b} kept bytes after trim()"


class SharedHeapMachine(FlexHeapMachine):
    """The FlexHeap model over a SharedHeap, through two objects attached to
    one segment (as two processes have): a step may switch which one the
    rules use, and neither sees anything but the one heap."""

    @initialize(**FLEX_SETUP)
    def setup(self, capacity, sl_len, trim_threshold):
        super().setup(capacity, sl_len, trim_threshold)
        self.other = self.heap_cls.attach(self.heap.name, trim_threshold=trim_threshold)

    @rule()
    def switch(self):
        self.heap, self.other = self.other, self.heap

    def teardown(self):
        if hasattr(self, "other"):
            self.other.close()
        super().teardown()


def test_heap_state_machine(Heap):
    name = "HeapMachine_" + Heap.__module__.replace(".", "_")
    machine = type(name, (HeapMachine,), {"heap_cls": Heap})
    run_state_machine_as_test(machine, settings=settings(stateful_step_count=STEPS))


def test_flex_heap_state_machine(Heap):
    flex = impl_class("python" if Heap.__module__.startswith("tlsf.pure") else "c", "FlexHeap")
    name = "FlexHeapMachine_" + flex.__module__.replace(".", "_")
    machine = type(name, (FlexHeapMachine,), {"heap_cls": flex})
    run_state_machine_as_test(machine, settings=settings(stateful_step_count=STEPS))


def test_shared_heap_state_machine():
    shared = impl_class("c", "SharedHeap")
    machine = type("SharedHeapMachine_c", (SharedHeapMachine,), {"heap_cls": shared})
    run_state_machine_as_test(machine, settings=settings(stateful_step_count=STEPS))
