"""The C API (tlsf_capi.h, capsule tlsf._core._C_API), used from a small test
extension (tests/capi/capi_user.c) built here with setuptools.

Without a compiler the tests skip, unless TLSF_BUILD_EXT=1 (CI), where a failed
build fails them. Only for the C core.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

import tlsf

pytestmark = pytest.mark.skipif(tlsf.IMPLEMENTATION != "c", reason="the C API is the C core's")

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def capi(tmp_path_factory):
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    tmp = tmp_path_factory.mktemp("capi")
    src = tmp / "capi_user.c"
    shutil.copy(HERE / "capi" / "capi_user.c", src)
    ext = Extension(
        "capi_user",
        sources=[str(src)],
        include_dirs=[tlsf.get_include()],
        extra_compile_args=["-std=c11"] if os.name != "nt" else [],
    )
    dist = Distribution({"name": "capi_user", "ext_modules": [ext]})
    cmd = build_ext(dist)
    cmd.build_lib = str(tmp / "lib")
    cmd.build_temp = str(tmp / "temp")
    cmd.ensure_finalized()
    try:
        cmd.run()
    except Exception as e:  # noqa: BLE001 - any compiler failure
        if os.environ.get("TLSF_BUILD_EXT") == "1":
            raise
        pytest.skip(f"cannot build the test extension: {e}")
    path = cmd.get_ext_fullpath("capi_user")
    spec = importlib.util.spec_from_file_location("capi_user", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules.setdefault("capi_user", mod)
    return mod


def test_the_table_names_its_version_and_the_heap_type(capi):
    version, size, heap_type = capi.info()
    assert version == 1
    assert size > 0
    assert heap_type is tlsf.Heap


def test_alloc_gives_live_offsets_and_free_frees_them(capi):
    heap = tlsf.Heap(1 << 16)
    rc, off = capi.raw_alloc(heap, 100, 64)
    assert rc == capi.OK
    assert off % 64 == 0
    assert heap.usable_size(off) >= 100
    assert heap.stats().allocations == 1
    rc, size = capi.raw_usable_size(heap, off)
    assert (rc, size) == (capi.OK, heap.usable_size(off))
    rc, off2 = capi.raw_realloc(heap, off, 1000)
    assert rc == capi.OK
    assert heap.usable_size(off2) >= 1000
    assert capi.raw_free(heap, off2) == capi.OK
    assert heap.stats().allocations == 0
    with pytest.raises(tlsf.InvalidOffsetError):
        heap.usable_size(off2)
    assert capi.raw_free(heap, off2) == capi.EINVAL
    heap.check()


def test_python_and_the_c_api_share_one_heap(capi):
    heap = tlsf.Heap(1 << 16)
    rc, off = capi.raw_alloc(heap, 64)
    assert rc == capi.OK
    heap.free(off)  # freed from Python
    off = heap.alloc(64)
    assert capi.raw_free(heap, off) == capi.OK  # and from C
    assert heap.stats().allocations == 0


def test_out_of_memory_is_a_code(capi):
    heap = tlsf.Heap(4096)
    rc, _ = capi.raw_alloc(heap, 1 << 20)
    assert rc == capi.ENOMEM
    heap.check()


def test_closed_heap_is_a_clean_error(capi):
    heap = tlsf.Heap(1 << 16)
    rc, off = capi.raw_alloc(heap, 64)
    assert rc == capi.OK
    heap.close()
    assert capi.raw_alloc(heap, 64)[0] == capi.ECLOSED
    assert capi.raw_free(heap, off) == capi.ECLOSED
    assert capi.raw_usable_size(heap, off)[0] == capi.ECLOSED
    assert capi.raw_realloc(heap, off, 8)[0] == capi.ECLOSED
    with pytest.raises(ValueError, match="heap is closed"):
        capi.core(heap)
    with pytest.raises(ValueError, match="heap is closed"):
        capi.pairs(heap, 10, 16)


@pytest.mark.parametrize("obj", [object(), bytearray(64), 3, None])
def test_a_non_heap_is_refused(capi, obj):
    with pytest.raises(TypeError, match="tlsf._core.Heap, FlexHeap or SharedHeap is needed"):
        capi.core(obj)
    with pytest.raises(TypeError):
        capi.pairs(obj, 1, 16)
    with pytest.raises(TypeError):
        capi.lock_unlock(obj)
    assert capi.raw_alloc(obj, 16)[0] == capi.ENOTHEAP
    assert capi.raw_free(obj, 0) == capi.ENOTHEAP


def test_a_flex_heap_grows_through_the_c_api(capi):
    heap = tlsf.FlexHeap(trim_threshold=None)
    rc, off = capi.raw_alloc(heap, 10 << 20)
    assert rc == capi.OK and heap.size > 10 << 20
    rc, off2 = capi.raw_realloc(heap, off, 30 << 20)
    assert rc == capi.OK and heap.size > 30 << 20
    assert capi.raw_free(heap, off2) == capi.OK
    assert capi.core(heap) == heap.capacity
    done, errors, mismatches = capi.pairs(heap, 10_000, 48)
    assert (done, errors, mismatches) == (10_000, 0, 0)
    assert heap.stats().allocations == 0
    heap.check()
    heap.close()


def test_an_offset_allocator_is_not_a_heap(capi):
    with pytest.raises(TypeError):
        capi.core(tlsf.OffsetAllocator(1 << 16))


def test_get_core_and_the_lock(capi):
    heap = tlsf.Heap(1 << 16)
    assert capi.core(heap) == 1 << 16
    capi.lock_unlock(heap)
    heap.alloc(10)  # the lock was released
    heap.check()


def test_pairs_without_the_gil(capi):
    heap = tlsf.Heap(1 << 20)
    done, errors, mismatches = capi.pairs(heap, 10_000, 48)
    assert (done, errors, mismatches) == (10_000, 0, 0)
    assert heap.stats().allocations == 0
    heap.check()


def test_a_shared_heap_through_the_c_api(capi):
    heap = tlsf.SharedHeap.create(max_size=1 << 26, trim_threshold=None)
    other = tlsf.SharedHeap.attach(heap.name)
    rc, off = capi.raw_alloc(heap, 10 << 20)  # grows the segment's pool
    assert rc == capi.OK and other.size > 10 << 20
    assert other.usable_size(off) >= 10 << 20
    assert capi.raw_free(other, off) == capi.OK
    assert capi.core(heap) == heap.capacity
    capi.lock_unlock(heap)
    capi.lock_unlock(other)
    done, errors, mismatches = capi.pairs(other, 10_000, 48)
    assert (done, errors, mismatches) == (10_000, 0, 0)
    assert heap.stats().allocations == 0
    heap.check()
    other.close()
    heap.close()


@pytest.mark.parametrize("kind", ["Heap", "SharedHeap"])
def test_the_lock_serialises_a_python_thread_and_a_c_thread(capi, kind):
    """A thread in C without the GIL and the main thread in Python hammer one
    heap: every block keeps its pattern, every call succeeds, and the heap
    checks clean after. A SharedHeap's Python thread waits for the lock
    without the GIL."""
    heap = tlsf.Heap(1 << 22) if kind == "Heap" else tlsf.SharedHeap.create(max_size=1 << 22)
    result: list[tuple[int, int, int]] = []
    rounds = 200_000
    t = threading.Thread(target=lambda: result.append(capi.pairs(heap, rounds, 40)))
    t.start()
    live: list[tuple[int, int]] = []
    i = 0
    while t.is_alive() or i < 2000:
        off = heap.alloc(24 + i % 200)
        v = heap.view(off, 8)
        v[:] = (i & 0xFF).to_bytes(1, "little") * 8
        v.release()
        live.append((off, i & 0xFF))
        if len(live) > 32:
            o, b = live.pop(0)
            w = heap.view(o, 8)
            assert bytes(w) == bytes([b]) * 8
            w.release()
            heap.free(o)
        i += 1
    t.join()
    assert result == [(rounds, 0, 0)]
    for o, _ in live:
        heap.free(o)
    assert heap.stats().allocations == 0
    heap.check()
