"""The C core and the twin refuse the same calls with the same exception and
the same message (the differential tests compare messages too, on random
calls; these are the refusals random calls rarely reach).

Only what the interpreter words itself may differ: a wrong signature
(TypeError from argument parsing) and the type's qualified name.
"""

from __future__ import annotations

import array
import ctypes
from typing import Any, Callable

import pytest


def heap_with(*sizes: int) -> Callable[[Any], tuple[Any, list[int]]]:
    def make(cls: Any) -> tuple[Any, list[int]]:
        h = cls(4096)
        return h, [h.alloc(n) for n in sizes]

    return make


def close_with_views(cls: Any, n: int) -> None:
    h, offs = heap_with(*[10] * n)(cls)
    views = [h.view(p) for p in offs]
    try:
        h.close()
    finally:
        for v in views:
            v.release()


HEAP_CASES: dict[str, Callable[[Any], Any]] = {
    "alloc beyond the capacity": lambda c: c(4096).alloc(5000),
    "alloc 2**64": lambda c: c(4096).alloc(2**64),
    "alloc 2**64 - 1": lambda c: c(4096).alloc(2**64 - 1),
    "alloc aligned to 2**63": lambda c: c(4096).alloc(1, 2**63),
    "alloc aligned to 2**70": lambda c: c(4096).alloc(1, 2**70),
    "alloc negative": lambda c: c(4096).alloc(-1),
    "alignment 3": lambda c: c(4096).alloc(1, 3),
    "alignment 0": lambda c: c(4096).alloc(1, 0),
    "alloc_many: item 2": lambda c: c(4096).alloc_many([10, 10, 5000]),
    "alloc_many: item 1 huge": lambda c: c(4096).alloc_many([10, 2**64]),
    "alloc_many: alignment huge": lambda c: c(4096).alloc_many([10], 2**64),
    "alloc_many: negative": lambda c: c(4096).alloc_many([10, -1]),
    "alloc_many: floats": lambda c: c(4096).alloc_many(array.array("d", [1.0])),
    "realloc with no room to move": lambda c: (lambda h, o: h.realloc(o[0], 3000))(*heap_with(1000, 1000)(c)),
    "realloc beyond the capacity": lambda c: (lambda h, o: h.realloc(o[0], 5000))(*heap_with(10)(c)),
    "realloc 2**64": lambda c: (lambda h, o: h.realloc(o[0], 2**64))(*heap_with(10)(c)),
    "realloc of a bad offset": lambda c: c(4096).realloc(8, 10),
    "free of a bad offset": lambda c: c(4096).free(8),
    "free 2**70": lambda c: c(4096).free(2**70),
    "free -1": lambda c: c(4096).free(-1),
    "double free": lambda c: (lambda h, o: (h.free(o[0]), h.free(o[0])))(*heap_with(5)(c)),
    "free_many twice the same": lambda c: (lambda h, o: h.free_many([o[0], o[0]]))(*heap_with(5)(c)),
    "usable_size of a bad offset": lambda c: c(4096).usable_size(8),
    "view larger than the block": lambda c: (lambda h, o: h.view(o[0], 1000))(*heap_with(10)(c)),
    "view -1": lambda c: (lambda h, o: h.view(o[0], -1))(*heap_with(10)(c)),
    "view 2**70": lambda c: (lambda h, o: h.view(o[0], 2**70))(*heap_with(10)(c)),
    "Heap(-1)": lambda c: c(-1),
    "Heap(2**60)": lambda c: c(2**60),
    "Heap(2**70)": lambda c: c(2**70),
    "sl_len 3": lambda c: c(4096, sl_len=3),
    "sl_len 128": lambda c: c(4096, sl_len=128),
    "sl_len -1": lambda c: c(4096, sl_len=-1),
    "close with a view alive": lambda c: close_with_views(c, 1),
    "close with two views alive": lambda c: close_with_views(c, 2),
    "insert over a pool": lambda c: c(4096).insert_free_block(0, 100),
    "insert outside memory": lambda c: c(4096).insert_free_block(4000, 200),
    "append where no pool ends": lambda c: c(bytearray(8192), pool=False).append_free_block(64, 100),
    "insert negative": lambda c: c(4096).insert_free_block(-1, 10),
    "closed heap": lambda c: (lambda h: (h.close(), h.alloc(1)))(c(4096)),
    "object memory": lambda c: c((ctypes.py_object * 8)()),
    "pointer memory": lambda c: c((ctypes.c_char_p * 8)()),
    "read-only memory": lambda c: c(b"x" * 4096),
    "a str as memory": lambda c: c("abc"),
    "block beyond the capacity": lambda c: c(4096).block(5000),
    "block negative": lambda c: c(4096).block(-1),
    "block alignment 3": lambda c: c(4096).block(1, 3),
    "free of a viewed block": lambda c: (lambda b: (b.view(), b.free()))(c(4096).block(10)),
    "view of a freed block": lambda c: (lambda b: (b.free(), b.view()))(c(4096).block(10)),
    "close with a block viewed": lambda c: (lambda h: (h.block(10).view(), h.close()))(c(4096)),
    "view of a block of a closed heap": lambda c: (lambda h, b: (h.close(), b.view()))(
        *(lambda h: (h, h.block(8)))(c(4096))
    ),
    "ndarray_at beyond the allocation": lambda c: (lambda h, o: h.ndarray_at(o[0], 100))(*heap_with(10)(c)),
    "ndarray of objects": lambda c: c(4096).ndarray(3, object),
}

OFFSET_CASES: dict[str, Callable[[Any], Any]] = {
    "alloc beyond the capacity": lambda c: c(4096).alloc(5000, 64),
    "alloc 2**64": lambda c: c(4096).alloc(2**64),
    "alloc aligned to 2**64": lambda c: c(4096).alloc(1, 2**64),
    "alloc_many: item 2": lambda c: c(4096).alloc_many([1, 2, 4096]),
    "alloc_many: huge item after a failing one": lambda c: c(4096).alloc_many([5000, 1, 2**64]),
    "alloc_many: alignment huge": lambda c: c(4096).alloc_many([1, 2], 2**64),
    "free of a bad offset": lambda c: c(4096).free(8),
    "resize of a bad offset": lambda c: c(4096).resize(8, 10),
    "add_range over a range": lambda c: c(4096).add_range(0, 10),
    "capacity -1": lambda c: c(-1),
    "capacity 2**64": lambda c: c(2**64),
    "granularity 3": lambda c: c(4096, granularity=3),
    "sl_len 0": lambda c: c(4096, sl_len=0),
    "sl_len 2**70": lambda c: c(4096, sl_len=2**70),
}


def said(call: Callable[[Any], Any], cls: Any) -> tuple[str, str]:
    try:
        call(cls)
    except Exception as e:  # noqa: BLE001 - what is raised is what is compared
        return type(e).__name__, str(e)
    return "no error", ""


@pytest.mark.parametrize("name", HEAP_CASES)
def test_heap_refusals_read_the_same(both, name):
    c, py = (said(HEAP_CASES[name], cls) for cls in both)
    assert c[0] != "no error", name
    assert c == py


@pytest.mark.parametrize("name", OFFSET_CASES)
def test_offset_allocator_refusals_read_the_same(both_offset, name):
    c, py = (said(OFFSET_CASES[name], cls) for cls in both_offset)
    assert c[0] != "no error", name
    assert c == py
