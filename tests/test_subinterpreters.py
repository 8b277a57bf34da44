"""tlsf._core in a subinterpreter: the module keeps its state per interpreter
(multi-phase init) and declares per-interpreter GIL support, so it is tested in
an isolated interpreter where the Python version makes one by default."""

from __future__ import annotations

import importlib
import textwrap

import pytest

import tlsf

pytestmark = pytest.mark.skipif(tlsf.IMPLEMENTATION != "c", reason="the C core only")

CODE = textwrap.dedent(
    """
    import tlsf._core as core
    from tlsf._errors import InvalidOffsetError, OutOfMemoryError
    h = core.Heap(1 << 16)
    offs = [h.alloc(n) for n in range(1, 200, 7)]
    assert len(set(offs)) == len(offs)
    for o in offs[::2]:
        h.free(o)
    h.check()
    try:
        h.free(offs[0])
    except InvalidOffsetError:
        pass
    else:
        raise AssertionError("no InvalidOffsetError")
    try:
        h.alloc(1 << 20)
    except OutOfMemoryError:
        pass
    else:
        raise AssertionError("no OutOfMemoryError")
    a = core.OffsetAllocator(1 << 20)
    x = a.alloc_many([1, 2, 3])
    a.free_many(x)
    a.check()
    assert h.stats().allocations == len(offs) - len(offs[::2])
    h.close()
    """
)


def _interpreters():
    for name in ("_interpreters", "_xxsubinterpreters"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    pytest.skip("no subinterpreter module in this Python")


def _run(interp, iid, code):
    if hasattr(interp, "exec"):  # 3.13: returns None, or what was raised
        err = interp.exec(iid, code)
        assert err is None, err
    else:
        interp.run_string(iid, code)


def test_import_and_use_in_a_subinterpreter():
    interp = _interpreters()
    iid = interp.create()  # isolated (own GIL) where the version makes one by default
    try:
        _run(interp, iid, CODE)
        _run(interp, iid, CODE)  # a second use of the module in the same interpreter
    finally:
        interp.destroy(iid)
    # the main interpreter's module is untouched
    h = tlsf.Heap(4096)
    h.free(h.alloc(16))
    h.check()


def test_two_subinterpreters_one_after_the_other():
    interp = _interpreters()
    for _ in range(2):
        iid = interp.create()
        try:
            _run(interp, iid, CODE)
        finally:
            interp.destroy(iid)
