"""Hypothesis state machine: an OffsetAllocator against a shadow model.

The model keeps the ranges given to the allocator and the live allocations
{offset: (size asked, alignment)}. After every step the allocator must pass
check(), keep every allocation aligned, inside one range, disjoint from the
others, and report stats, walk and capacity that agree with the model. Failed
calls leave the allocator unchanged.

HYPOTHESIS_PROFILE=ci runs 2,000 examples per implementation.
"""

from __future__ import annotations

import hypothesis.strategies as st
from conftest import assert_offset_consistent
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

STEPS = 40
HUGE = [2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70]
ALIGNS = st.sampled_from([2**k for k in range(14)] + [2**40, 2**63])


def state(oa) -> tuple:
    return list(oa.walk()), oa.stats(), oa.capacity


class OffsetMachine(RuleBasedStateMachine):
    cls = None  # set per implementation

    def __init__(self):
        super().__init__()
        self.model: dict[int, tuple[int, int]] = {}
        self.ranges: list[tuple[int, int]] = []  # merged, sorted [start, end)

    @initialize(
        units=st.sampled_from([0, 1, 7, 64, 4096, 40_009]),
        sl_len=st.sampled_from([1, 2, 32, 64]),
        granularity=st.sampled_from([1, 16, 256]),
    )
    def setup(self, units, sl_len, granularity):
        self.g = granularity
        self.oa = self.cls(units * granularity, sl_len=sl_len, granularity=granularity)
        if units:
            self.ranges = [(0, units * granularity)]

    def sizes(self):
        cap = max(self.oa.capacity, 1)
        return st.one_of(st.integers(0, 3 * self.g), st.integers(0, cap + self.g), st.sampled_from(HUGE))

    def pick(self, data) -> int:
        return data.draw(st.sampled_from(sorted(self.model)), label="offset")

    def add_model_range(self, start: int, end: int) -> None:
        merged = []
        for s, e in sorted(self.ranges + [(start, end)]):
            if merged and s == merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
            else:
                merged.append((s, e))
        self.ranges = merged

    # -- rules

    @rule(data=st.data(), align=ALIGNS)
    def alloc(self, data, align):
        size = data.draw(self.sizes(), label="size")
        before = state(self.oa)
        try:
            off = self.oa.alloc(size, align)
        except tlsf.OutOfMemoryError:
            assert state(self.oa) == before
            if align <= self.g:  # no padding: the largest free block must be too small
                assert max(-(-size // self.g), 1) * self.g > self.oa.stats().largest_free
            return
        assert off not in self.model
        self.model[off] = (size, align)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def free(self, data):
        off = self.pick(data)
        self.oa.free(off)
        del self.model[off]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def resize(self, data):
        off = self.pick(data)
        size = data.draw(st.one_of(st.integers(0, 4 * self.g), self.sizes()), label="new size")
        old = self.oa.usable_size(off)
        before = state(self.oa)
        if self.oa.resize(off, size):
            assert self.oa.usable_size(off) == max(1, -(-size // self.g)) * self.g
            self.model[off] = (size, self.model[off][1])
        else:
            assert size > old
            assert state(self.oa) == before

    @rule(start=st.integers(0, 2**20), size=st.integers(0, 2**16), far=st.booleans())
    def add_range(self, start, size, far):
        start = start * self.g + (2**60 if far else 0)
        size = size * self.g
        end = start + size
        overlaps = any(s < end and start < e for s, e in self.ranges) and size > 0
        before = state(self.oa)
        try:
            self.oa.add_range(start, size)
        except ValueError:
            assert overlaps
            assert state(self.oa) == before
            return
        assert not overlaps
        if size:
            self.add_model_range(start, end)

    @rule()
    def reset(self):
        self.oa.reset()
        self.model.clear()
        assert [(b.offset, b.offset + b.size) for b in self.oa.walk()] == self.ranges

    @rule(sizes=st.lists(st.integers(0, 5000), max_size=8), align=ALIGNS)
    def alloc_many(self, sizes, align):
        before = state(self.oa)
        try:
            offs = self.oa.alloc_many(sizes, align)
        except tlsf.OutOfMemoryError:
            # every block back where alloc took it, to the order inside the free
            # lists (largest_free names the head of the highest one)
            assert state(self.oa) == before
            return
        assert len(set(offs)) == len(offs) and not set(offs) & set(self.model)
        self.model.update((off, (size, align)) for off, size in zip(offs, sizes))

    @precondition(lambda self: self.model)
    @rule(data=st.data(), bad=st.booleans())
    def free_many(self, data, bad):
        offs = data.draw(st.lists(st.sampled_from(sorted(self.model)), unique=True, max_size=8))
        if bad:
            offs.append(data.draw(st.sampled_from(offs or [3]) | st.integers(-4, 2**64 + 4)))
            if offs[-1] in self.model and offs.count(offs[-1]) == 1:
                offs.pop()
        before = state(self.oa)
        try:
            self.oa.free_many(offs)
        except tlsf.InvalidOffsetError:
            assert bad
            assert state(self.oa) == before
            return
        for off in offs:
            del self.model[off]

    @rule(
        off=st.integers(-16, 70_000) | st.sampled_from(HUGE),
        call=st.sampled_from(["free", "resize", "usable_size"]),
    )
    def invalid_offset(self, off, call):
        if off in self.model:
            return
        before = state(self.oa)
        args = (off, 10) if call == "resize" else (off,)
        try:
            getattr(self.oa, call)(*args)
        except tlsf.InvalidOffsetError as e:
            assert str(off) in str(e)
        else:
            raise AssertionError(f"{call}{args} did not raise InvalidOffsetError")
        assert state(self.oa) == before

    @rule()
    def alloc_largest_free(self):
        largest = self.oa.stats().largest_free
        if largest:
            off = self.oa.alloc(largest)
            assert self.oa.usable_size(off) >= largest
            self.oa.free(off)

    # -- invariants

    @invariant()
    def consistent(self):
        if not hasattr(self, "oa"):
            return
        assert_offset_consistent(self.oa, {off: size for off, (size, _) in self.model.items()})
        assert self.oa.capacity == sum(e - s for s, e in self.ranges)
        end = None
        for off in sorted(self.model):
            size, align = self.model[off]
            usable = self.oa.usable_size(off)
            assert off % align == 0 and off % self.g == 0
            assert usable >= size and usable % self.g == 0
            assert end is None or off >= end, "allocations overlap"
            end = off + usable
            assert any(s <= off and end <= e for s, e in self.ranges), "outside every range"


def test_offset_state_machine(OffsetAllocator):  # noqa: N803
    name = "OffsetMachine_" + OffsetAllocator.__module__.replace(".", "_")
    machine = type(name, (OffsetMachine,), {"cls": OffsetAllocator})
    run_state_machine_as_test(machine, settings=settings(stateful_step_count=STEPS))
