"""Introspection: every public method and constructor of tlsf's classes has a
signature (inspect.signature) and a docstring, in both implementations; the
C core's signatures are the twin's (names, kinds, defaults; annotations
aside) and true (each parameter is accepted the way the signature says);
and walk() leads to the allocations (allocation_of).

The C types' signatures are the text signatures at the head of their
docstrings (binding/heap_methods.h, heap.c, flex.c, shared.c, offset.c,
block.c); the twin's are its Python definitions (tlsf/pure)."""

from __future__ import annotations

import inspect
import re
import types
import uuid

import pytest
from conftest import IMPLS, PURE_ONLY, both_classes, impl_class

import tlsf

P = inspect.Parameter
DUNDERS = ("__enter__", "__exit__")  # the dunder methods the classes define for their users
# C methods the twin has nowhere (its SharedHeap has only the ways to get one, which raise).
C_ONLY = {("SharedHeap", "unlink")}


def implementation_classes() -> list[str]:
    """The public classes of `tlsf` that each implementation has its own of
    (not the records and exceptions, which both share)."""
    names = [n for n in tlsf.__all__ if isinstance(getattr(tlsf, n), type)]
    return [n for n in names if getattr(tlsf, n).__module__.startswith(("tlsf._core", "tlsf.pure"))]


CLASSES = implementation_classes()


def test_the_classes_checked():
    assert set(CLASSES) >= {"Heap", "FlexHeap", "SharedHeap", "OffsetAllocator", "Block"}


def public_methods(cls) -> list[str]:
    """The names of cls's public callables: methods, class and static
    methods, and the dunders of DUNDERS (not properties)."""
    out = []
    for name in dir(cls):
        if name.startswith("_") and name not in DUNDERS:
            continue
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, (property, types.GetSetDescriptorType, types.MemberDescriptorType)):
            continue
        if callable(getattr(cls, name)):
            out.append(name)
    return out


def is_instance_method(cls, name: str) -> bool:
    return isinstance(inspect.getattr_static(cls, name), (types.FunctionType, types.MethodDescriptorType))


def shape(cls, name: str | None = None) -> list[tuple[str, str, str]]:
    """(name, kind, repr of the default) of each parameter of the constructor
    of cls, or of its method `name` without self; annotations ignored (the
    repr tells 1 from True)."""
    if name is None:
        params = list(inspect.signature(cls).parameters.values())
    else:
        params = list(inspect.signature(getattr(cls, name)).parameters.values())
        if is_instance_method(cls, name):
            assert params and params[0].kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD), name
            params = params[1:]
    return [(p.name, p.kind.name, repr(p.default)) for p in params]


# ------------------------------------------- signatures and docstrings exist


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", CLASSES)
def test_every_public_callable_has_a_signature_and_a_docstring(impl, name):
    cls = impl_class(impl, name)
    assert inspect.getdoc(cls), f"{impl} {name} has no docstring"
    inspect.signature(cls)  # ValueError when there is none
    methods = public_methods(cls)
    assert methods
    for m in methods:
        attr = getattr(cls, m)
        inspect.signature(attr)
        assert attr.__doc__ and attr.__doc__.strip(), f"{impl} {name}.{m} has no docstring"


@pytest.mark.parametrize("name", CLASSES)
def test_the_active_implementation_has_signatures(name):
    """The same through `tlsf` (the C core, or the twin with TLSF_PURE_PYTHON=1)."""
    cls = getattr(tlsf, name)
    inspect.signature(cls)
    for m in public_methods(cls):
        inspect.signature(getattr(cls, m))
        assert getattr(cls, m).__doc__


def test_the_c_module_has_nothing_public_without_a_signature():
    core = pytest.importorskip("tlsf._core", reason="C core not built")
    for n in dir(core):
        obj = getattr(core, n)
        if n.startswith("_") or not callable(obj):
            continue
        assert n in CLASSES, f"tlsf._core.{n} is not checked by this module"
        inspect.signature(obj)


# ------------------------------------------------ the C core agrees with the twin


@pytest.mark.parametrize("name", CLASSES)
def test_c_signatures_are_the_twins(name):
    c, py = both_classes(name)
    assert shape(c) == shape(py), f"{name}()"
    c_methods, py_methods = set(public_methods(c)), set(public_methods(py))
    assert py_methods <= c_methods, f"{name}: the twin's {py_methods - c_methods} are not in C"
    fallback = impl_class("python", "FlexHeap") if name == "SharedHeap" else None
    for m in sorted(c_methods):
        if m in py_methods:
            twin = py
        elif fallback is not None and m in public_methods(fallback):
            twin = fallback  # SharedHeap is C only: its heap methods are FlexHeap's
        else:
            assert (name, m) in C_ONLY, f"{name}.{m} is C only"
            continue
        assert shape(c, m) == shape(twin, m), f"{name}.{m}"
        assert is_instance_method(c, m) == is_instance_method(twin, m), f"{name}.{m}: method kind"


def test_the_comparison_sees_differences():
    def f(self, size, align=1): ...

    def g(self, size, /, align=1): ...

    def h(self, size, align=True): ...

    holder = type("Holder", (), {"f": f, "g": g, "h": h})
    assert shape(holder, "f") != shape(holder, "g")
    assert shape(holder, "f") != shape(holder, "h")


# ---------------------------------------------- the signatures are true: calls


def _heap(cls, **kw):
    return cls(4096, **kw) if cls.__name__ in ("Heap", "OffsetAllocator") else cls(max_size=1 << 24, **kw)


def _values(obj, method: str, tmp_path) -> dict:
    """Arguments for a call of obj.method that succeeds (the parameters left
    out get their signature's default)."""
    if method in ("insert_free_block", "append_free_block", "add_range"):
        if method == "add_range":
            return {"offset": 4096, "size": 4096}
        if method == "insert_free_block":
            return {"offset": 0, "size": 2048}
        return {"offset": obj.insert_free_block(0, 2048), "size": 1024}
    if method in ("create", "open"):
        path = tmp_path / f"{uuid.uuid4().hex}.heap"
        if method == "open":
            type(obj).create(path, max_size=1 << 24).close()
        return {"path": path, "max_size": 1 << 24}
    live = obj.alloc(64)
    return {
        "size": 32,
        "offset": live,
        "sizes": [16, 32],
        "offsets": [live],
        "block": list(obj.walk())[0],
        "shape": 4,
        "dtype": "u1",
    }


def _call(method, values: dict, *, wrong: str | None = None):
    """Calls method with every parameter its signature has (values[name], or
    the default), each passed the way the signature says; wrong: the name of
    one passed the other way (keyword for positional only; positional for
    keyword only, after the others passed positionally, so that it lands in
    a place of its own)."""
    params = inspect.signature(method).parameters
    all_positional = wrong is not None and params[wrong].kind == P.KEYWORD_ONLY
    args, kwargs = [], {}
    for p in params.values():
        if p.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD):
            continue
        value = values[p.name] if p.name in values or p.default is P.empty else p.default
        positional = p.kind == P.POSITIONAL_ONLY or (all_positional and p.kind == P.POSITIONAL_OR_KEYWORD)
        if p.name == wrong:
            positional = not positional
        if positional:
            args.append(value)
        else:
            kwargs[p.name] = value
    return method(*args, **kwargs)


def _needs_missing_numpy(method: str) -> bool:
    if method not in ("ndarray", "ndarray_at"):
        return False
    try:
        import numpy  # noqa: F401
    except ImportError:
        return True
    return False


def _new_object(cls, method: str):
    if cls.__name__ == "Block":
        heap = impl_class("c" if cls.__module__ == "tlsf._core" else "python", "Heap")(4096)
        return heap.block(64)
    if method == "insert_free_block" or method == "append_free_block":
        return cls(4096, pool=False)
    return _heap(cls)


CALLS = [
    (impl, name)
    for impl in IMPLS
    for name in ("Heap", "FlexHeap", "OffsetAllocator", "Block")
    + (("SharedHeap",) if impl == "c" else ())
]


@pytest.mark.parametrize(("impl", "name"), CALLS)
def test_each_parameter_is_accepted_as_the_signature_says(impl, name, tmp_path):
    cls = impl_class(impl, name)
    if name == "SharedHeap":
        _shared_calls(cls)
        return
    if name == "Block":  # made by heap.block() only
        with pytest.raises(TypeError):
            _call(cls, {})
    else:  # the constructor, by its signature
        ctor_values = {"memory": 4096, "capacity": 4096, "max_size": 1 << 24}
        _call(cls, ctor_values)
        for p in inspect.signature(cls).parameters.values():
            if p.kind == P.KEYWORD_ONLY:
                with pytest.raises(TypeError, match="positional"):
                    _call(cls, ctor_values, wrong=p.name)
    for m in public_methods(cls):
        if _needs_missing_numpy(m):
            continue
        for wrong in [None] + _one_way_parameters(cls, m):
            obj = _new_object(cls, m)
            method = getattr(obj, m) if is_instance_method(cls, m) else getattr(cls, m)
            values = {} if name == "Block" else _values(obj, m, tmp_path)
            if wrong is None:
                result = _call(method, values)
                if type(result).__name__ == "FlexHeap":  # create, open
                    result.close()
            else:  # a parameter passed the other way is refused
                with pytest.raises(TypeError, match="positional|keyword"):
                    _call(method, values, wrong=wrong)


def _one_way_parameters(cls, m: str) -> list[str]:
    """The parameters of method m (self aside) that only one way of passing takes."""
    params = list(inspect.signature(getattr(cls, m)).parameters.values())
    if is_instance_method(cls, m):
        params = params[1:]
    return [p.name for p in params if p.kind in (P.POSITIONAL_ONLY, P.KEYWORD_ONLY)]


def _shared_calls(cls):
    """SharedHeap's own calls (a segment each); its heap methods are checked on FlexHeap."""
    values = {"max_size": 1 << 24}
    h = _call(cls.create, values)
    try:
        g = _call(cls.attach, {"name": h.name})
        g.close()
        for m in ("trim", "unlink", "allocation_of", "walk"):
            method = getattr(h, m)
            _call(method, {"block": next(h.walk())})
    finally:
        h.close()
    h = cls.create(max_size=1 << 24, persist=True)
    h.close()
    _call(cls.remove, {"name": h.name})
    with pytest.raises(TypeError):
        _call(cls.remove, {"name": h.name}, wrong="name")
    with pytest.raises(TypeError):
        _call(cls.create, values, wrong="max_size")
    with pytest.raises(TypeError):
        cls()


# ------------------------------------------------------------------ docstrings


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("name", "typecode"), [("Heap", "q"), ("OffsetAllocator", "Q")])
def test_alloc_many_says_what_it_returns(impl, name, typecode):
    cls = impl_class(impl, name)
    doc = cls.alloc_many.__doc__
    assert re.findall(r"array\('(\w)'\)", doc) == [typecode]
    assert "int64" in doc if typecode == "q" else "uint64" in doc
    assert _heap(cls).alloc_many([1, 2]).typecode == typecode


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["Heap", "FlexHeap", "Block"] + (["SharedHeap"] if "c" in IMPLS else []))
def test_with_methods_say_what_they_do(impl, name):
    if name == "SharedHeap" and impl == "python":
        pytest.skip("the twin has no SharedHeap")
    cls = impl_class(impl, name)
    enter, exit_ = (" ".join(f.__doc__.split()) for f in (cls.__enter__, cls.__exit__))
    assert "itself" in enter
    assert ("free()" if name == "Block" else "close()") in exit_
    if name != "Block":  # what closing releases, for this type
        first = " ".join(cls.close.__doc__.split()).split(".")[0]
        assert first in exit_


def test_walk_docstrings_name_allocation_of():
    for impl in IMPLS:
        for name in ("Heap", "FlexHeap", "OffsetAllocator"):
            assert "allocation_of" in impl_class(impl, name).walk.__doc__


# ------------------------------------------- walk() leads to the allocations


def _fill(heap) -> list[int]:
    """Allocations of assorted sizes and alignments, a few freed (free blocks between)."""
    requests = [(1, 1), (100, 64), (17, 16), (300, 256), (5, 1), (64, 8)]
    offs = [heap.alloc(size, align) for size, align in requests]
    for off in offs[1::3]:
        heap.free(off)
    return [off for k, off in enumerate(offs) if k % 3 != 1]


def _check_walk_to_allocations(heap, header: int) -> None:
    live = _fill(heap)
    blocks = list(heap.walk())
    assert all(type(b) is tlsf.BlockInfo for b in blocks)  # the records are unchanged
    used = [b for b in blocks if b.used]
    assert sorted(heap.allocation_of(b) for b in used) == sorted(live)
    for b in used:
        offset, size, is_used = b  # still a 3-tuple
        assert (offset, size, is_used) == (b.offset, b.size, True)
        at = heap.allocation_of(b)
        assert at == offset + header
        assert heap.usable_size(at) == size - header
        if hasattr(heap, "view"):
            with heap.view(at) as v:
                assert v.nbytes == size - header
    for b in used:
        heap.free(heap.allocation_of(b))
    assert heap.stats().allocations == 0
    heap.check()


def test_heap_walk_to_allocations(Heap):  # noqa: N803
    _check_walk_to_allocations(Heap(1 << 16), 16)


def test_offset_allocator_walk_to_allocations(OffsetAllocator):  # noqa: N803
    _check_walk_to_allocations(OffsetAllocator(1 << 16), 0)


@pytest.mark.parametrize("impl", IMPLS)
def test_flex_heap_walk_to_allocations(impl):
    with impl_class(impl, "FlexHeap")(max_size=1 << 24) as h:
        _check_walk_to_allocations(h, 16)


def test_shared_heap_walk_to_allocations():
    if PURE_ONLY:
        pytest.skip("the twin has no SharedHeap")
    with impl_class("c", "SharedHeap").create(max_size=1 << 24) as h:
        _check_walk_to_allocations(h, 16)


def test_the_header_is_the_engines():
    """The 16 of the heaps is the in-band engine's header (one constant, HEADER_SIZE)."""
    import tlsf.pure

    assert tlsf.pure.HEADER_SIZE == 16
    if not PURE_ONLY:
        assert pytest.importorskip("tlsf._core", reason="C core not built").HEADER_SIZE == 16


def test_allocation_of_a_free_block_is_where_alloc_puts_it(Heap, OffsetAllocator):  # noqa: N803
    for heap in (Heap(4096), OffsetAllocator(4096)):
        (free,) = heap.walk()
        assert not free.used
        assert heap.alloc(100) == heap.allocation_of(free)


def test_allocation_of_takes_a_block_info_only(Heap, OffsetAllocator):  # noqa: N803
    for heap in (Heap(4096), OffsetAllocator(4096)):
        for bad in (16, (0, 32, True), None):
            with pytest.raises(TypeError, match=r"^allocation_of\(\) argument must be a tlsf\.BlockInfo"):
                heap.allocation_of(bad)
        with pytest.raises(TypeError):
            heap.allocation_of(block=next(heap.walk()))  # positional only
        assert heap.allocation_of(tlsf.BlockInfo(4096, 32, True)) == 4096 + (16 if type(heap) is Heap else 0)


def test_allocation_of_agrees(both, both_offset):
    for c_cls, py_cls in (both, both_offset):
        c, py = c_cls(1 << 16), py_cls(1 << 16)
        assert _fill(c) == _fill(py)
        c_blocks, py_blocks = list(c.walk()), list(py.walk())
        assert c_blocks == py_blocks
        assert [hash(b) for b in c_blocks] == [hash(b) for b in py_blocks]
        assert [repr(b) for b in c_blocks] == [repr(b) for b in py_blocks]
        assert [c.allocation_of(b) for b in c_blocks] == [py.allocation_of(b) for b in py_blocks]
        for bad in (16, (0, 32, True)):
            messages = []
            for heap in (c, py):
                with pytest.raises(TypeError) as e:
                    heap.allocation_of(bad)
                messages.append(str(e.value))
            assert messages[0] == messages[1]


@pytest.mark.parametrize("impl", IMPLS)
def test_ndarray_dtype_none_is_the_default(impl):
    """The signatures say dtype=None (a text signature cannot say float): the
    same float64 as tlsf.numpy's default."""
    np = pytest.importorskip("numpy")
    heap = impl_class(impl, "Heap")(1 << 16)
    a, b, c = heap.ndarray(3), heap.ndarray(3, None), heap.ndarray(3, float)
    assert a.dtype == b.dtype == c.dtype == np.float64
    off = heap.alloc(64)
    assert heap.ndarray_at(off, 2).dtype == heap.ndarray_at(off, 2, None).dtype == np.float64
