"""Shared fixtures and helpers of the tlsf test suite.

Every test that takes the `Heap` (or `OffsetAllocator`) fixture runs once per
implementation: the C core `tlsf._core` ("c", skipped when the extension is not
built) and the pure-Python twin `tlsf.pure` ("python"). With TLSF_PURE_PYTHON=1
only the twin runs.

Hypothesis profiles, chosen with HYPOTHESIS_PROFILE: "default" (fast local
runs) and "ci" (the stateful test runs 2,000 examples).
"""

from __future__ import annotations

import os
import random
import struct

import pytest
from hypothesis import HealthCheck, settings

import tlsf

PURE_ONLY = os.environ.get("TLSF_PURE_PYTHON", "") not in ("", "0")
IMPLS = ["python"] if PURE_ONLY else ["c", "python"]

# The heap image's header (csrc/tlsf_image.h: tlsf_image_header_t), written
# out here rather than taken from the twin, so that tests check both.
IMAGE_HEADER = struct.Struct("=8s6I5Q")
IMAGE_FIELDS = (
    "magic version word_size order sl_len flags recoveries max_size size root control_off arena_off"
).split()

GRAN = 16  # granularity and header size
MIN_BLOCK = 32  # smallest block, header included; also the size of a pool's sentinel

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("default", max_examples=150, **_common)
settings.register_profile("ci", max_examples=2000, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def impl_class(name: str, cls: str = "Heap"):
    """Class `cls` of implementation `name` ("c" or "python"); skips a missing C core."""
    if name == "c":
        return getattr(pytest.importorskip("tlsf._core", reason="C core not built"), cls)
    import tlsf.pure

    return getattr(tlsf.pure, cls)


@pytest.fixture(params=IMPLS)
def Heap(request):  # noqa: N802 - it is a class
    """The Heap class of each implementation in turn."""
    return impl_class(request.param, "Heap")


@pytest.fixture(params=IMPLS)
def OffsetAllocator(request):  # noqa: N802 - it is a class
    """The OffsetAllocator class of each implementation in turn."""
    return impl_class(request.param, "OffsetAllocator")


def both_classes(cls: str) -> tuple:
    """(C class, pure class) named `cls`; skips unless the C core is built and allowed."""
    if PURE_ONLY:
        pytest.skip("TLSF_PURE_PYTHON=1: C-vs-Python comparisons run in the normal run")
    return impl_class("c", cls), impl_class("python", cls)


@pytest.fixture
def both():
    """(C Heap class, pure Heap class)."""
    return both_classes("Heap")


@pytest.fixture
def both_offset():
    """(C OffsetAllocator class, pure OffsetAllocator class)."""
    return both_classes("OffsetAllocator")


# ----------------------------------------------------------------- helpers


def round_up(x: int, a: int = GRAN) -> int:
    return -(-x // a) * a


def round_down(x: int, a: int = GRAN) -> int:
    return x // a * a


def heap_and_flex_fixture():
    """A `Heap` fixture for a module whose tests hold for FlexHeap and
    SharedHeap too: each implementation's Heap, then its FlexHeap (ids
    c-flex, python-flex), then the C SharedHeap (c-shared). Such tests make
    their heaps with new_heap."""
    kinds = {"flex": "FlexHeap", "shared": "SharedHeap"}
    params = IMPLS + [f"{impl}-flex" for impl in IMPLS] + (["c-shared"] if "c" in IMPLS else [])

    @pytest.fixture(params=params, name="Heap")
    def heap_fixture(request):
        impl, _, kind = request.param.partition("-")
        return impl_class(impl, kinds.get(kind, "Heap"))

    return heap_fixture


def is_flex(cls) -> bool:
    """Whether heaps of cls make their own growing pool (FlexHeap, SharedHeap)."""
    return cls.__name__ in ("FlexHeap", "SharedHeap")


class ArenaMemory:
    """The bytes of a FlexHeap's pool as a bytearray-like object for tests
    that read or scribble on a heap's memory: each access takes the arena
    view (FlexHeap._arena) and releases it."""

    def __init__(self, heap):
        self.heap = heap

    def _do(self, f):
        v = self.heap._arena()
        try:
            return f(v)
        finally:
            v.release()

    def __len__(self):
        return self._do(len)

    def __bytes__(self):
        return self._do(lambda v: v.tobytes())

    def __getitem__(self, key):
        return self._do(lambda v: v[key].tobytes() if isinstance(key, slice) else v[key])

    def __setitem__(self, key, value):
        def store(v):
            v[key] = value

        self._do(store)


def make_flex(Heap, max_size: int, **kw):  # noqa: N803
    """A new FlexHeap or SharedHeap (a new segment) of max_size bytes."""
    return Heap.create(max_size=max_size, **kw) if Heap.__name__ == "SharedHeap" else Heap(max_size, **kw)


def new_heap(Heap, capacity: int, **kw):  # noqa: N803
    """A heap over a fresh bytearray; returns (heap, memory). For a FlexHeap
    or a SharedHeap (max_size=capacity): its pool grown to the whole capacity
    first, so that it is laid out as Heap(capacity) is, and an ArenaMemory."""
    if not is_flex(Heap):
        mem = bytearray(capacity)
        return Heap(mem, **kw), mem
    if not kw.pop("pool", True):
        pytest.skip(f"a {Heap.__name__} makes its own pool")
    h = make_flex(Heap, capacity, **kw)
    offs = []
    while h.size < capacity - capacity % GRAN:
        offs.append(h.alloc(min(4096, h.stats().largest_free)))
    h.free_many(offs)
    return h, ArenaMemory(h)


def fill(h, off: int, data: bytes) -> None:
    """Writes data at the start of allocation off, through a view released at once."""
    v = h.view(off, len(data))
    v[:] = data
    v.release()


def read(h, off: int, n: int) -> bytes:
    """The first n bytes of allocation off, through a view released at once."""
    v = h.view(off, n)
    try:
        return v.tobytes()
    finally:
        v.release()


def snapshot(heap, mem) -> tuple:
    """Everything observable about a heap without changing it."""
    return bytes(mem), list(heap.walk()), heap.stats()


def pattern(serial: int, n: int) -> bytes:
    """n bytes unique to `serial` (deterministic)."""
    return random.Random(serial).randbytes(n)


def assert_consistent(heap, live: dict | None = None, capacity: int | None = None) -> None:
    """check() passes; walk(), stats() and the live allocations {offset: size asked} agree."""
    heap.check()
    blocks = list(heap.walk())
    st = heap.stats()
    assert all(type(b) is tlsf.BlockInfo for b in blocks)
    assert type(st) is tlsf.Stats
    used = [b for b in blocks if b.used]
    free = [b for b in blocks if not b.used]
    assert st.allocations == len(used)
    assert st.allocated_bytes == sum(b.size - GRAN for b in used)
    assert st.free_blocks == len(free)
    assert st.free_bytes == sum(b.size for b in free)
    if free:
        assert 0 < st.largest_free <= max(b.size for b in free) - GRAN
    else:
        assert st.largest_free == 0
    prev_end, prev_free = -1, False
    for b in blocks:
        assert b.offset % GRAN == 0 and b.size % GRAN == 0 and b.size >= MIN_BLOCK
        assert b.offset >= prev_end  # address order, no overlap
        if b.offset == prev_end:
            assert not (prev_free and not b.used), f"free blocks touch at {b.offset}"
        else:  # a new pool: the previous one ended with its 32-byte sentinel
            assert prev_end == -1 or b.offset >= prev_end + MIN_BLOCK
        prev_end, prev_free = b.offset + b.size, not b.used
    if capacity is not None:
        assert prev_end + MIN_BLOCK <= capacity or not blocks
    if live is not None:
        assert sorted(b.offset + GRAN for b in used) == sorted(live)
        for b in used:
            off = b.offset + GRAN
            assert heap.usable_size(off) == b.size - GRAN >= live[off]


def assert_offset_consistent(oa, live: dict | None = None) -> None:
    """check() passes; walk(), stats(), capacity and the live allocations
    {offset: size asked} of an OffsetAllocator agree."""
    oa.check()
    blocks = list(oa.walk())
    st = oa.stats()
    g = oa.granularity
    assert all(type(b) is tlsf.BlockInfo for b in blocks)
    assert type(st) is tlsf.Stats
    used = [b for b in blocks if b.used]
    free = [b for b in blocks if not b.used]
    assert st.allocations == len(used)
    assert st.allocated_bytes == sum(b.size for b in used)
    assert st.free_blocks == len(free)
    assert st.free_bytes == sum(b.size for b in free)
    assert st.allocated_bytes + st.free_bytes == oa.capacity == sum(b.size for b in blocks)
    if free:
        assert 0 < st.largest_free <= max(b.size for b in free)
    else:
        assert st.largest_free == 0
    prev_end, prev_free = -1, False
    for b in blocks:
        assert b.offset % g == 0 and b.size % g == 0 and b.size > 0
        assert b.offset >= prev_end  # address order, no overlap
        if b.offset == prev_end:  # the same range: free blocks never touch
            assert not (prev_free and not b.used), f"free blocks touch at {b.offset}"
        prev_end, prev_free = b.offset + b.size, not b.used
    if live is not None:
        assert sorted(b.offset for b in used) == sorted(live)
        for b in used:
            assert oa.usable_size(b.offset) == b.size >= live[b.offset]


def outcome(method, *args):
    """The result, or the class and message of an expected error: the C core
    and the twin must say the same thing, not only raise the same class."""
    try:
        return method(*args)
    except (tlsf.OutOfMemoryError, tlsf.InvalidOffsetError, ValueError) as e:
        return type(e), str(e)


class Lockstep:
    """Calls the same method on both heaps and insists on the same outcome."""

    def __init__(self, c, py):
        self.c, self.py = c, py
        self.calls = 0

    def __call__(self, name, *args):
        self.calls += 1
        a = outcome(getattr(self.c, name), *args)
        b = outcome(getattr(self.py, name), *args)
        assert a == b, f"call #{self.calls}: {name}{args}: C -> {a!r}, Python -> {b!r}"
        return a

    def compare(self):
        assert list(self.c.walk()) == list(self.py.walk()), f"walk differs after {self.calls}"
        assert self.c.stats() == self.py.stats(), f"stats differ after {self.calls} calls"


def random_align(rng: random.Random) -> int:
    return 1 if rng.random() < 0.7 else 2 ** rng.randrange(0, 13)


class Sneaky:
    """An integer whose conversion runs code against the heap (__index__)."""

    def __init__(self, value, action):
        self.value, self.action = value, action

    def __index__(self):
        self.action()
        return self.value
