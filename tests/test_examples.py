"""The runnable examples in examples/ do what their docstrings say."""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

import tlsf

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NEEDS_NUMPY = "this example needs numpy (its docstring says so): pip install 'tlsf[numpy]'"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def records_disjoint(store) -> None:
    """Records and the stored index lie apart, after the header, inside the file."""
    g = 64
    spans = sorted((off, off + -(-max(n, 1) // g) * g) for off, n, _ in store.index.values())
    end = 4096
    for start, stop in spans:
        assert start >= end, "records overlap"
        end = stop
    assert end <= store.end == os.path.getsize(store.file.name)


def test_record_store(tmp_path):
    rs = load("record_store")
    path = str(tmp_path / "records.tlsf")
    rng = random.Random(7)
    expect = {}
    with rs.RecordStore(path, grow=64 << 10) as store:
        for i in range(300):
            expect[f"k{i}"] = rng.randbytes(rng.randrange(0, 3000))
            store.put(f"k{i}", expect[f"k{i}"])
        for i in range(0, 300, 3):
            store.delete(f"k{i}")
            del expect[f"k{i}"]
        for i in range(1, 300, 7):  # updates: in place when they fit
            expect[f"k{i}"] = rng.randbytes(rng.randrange(0, 3000))
            store.put(f"k{i}", expect[f"k{i}"])
        records_disjoint(store)
        store.space.check()
    size_before = os.path.getsize(path)

    with rs.RecordStore(path, grow=64 << 10) as store:  # the allocator rebuilt from the index
        assert store.keys() == sorted(expect)
        assert all(store.get(k) == v for k, v in expect.items())
        free_before = store.space.stats().free_bytes
        assert free_before > 0  # the deleted records' space is known to be free
        # deleting records found in the file gives their space back to the allocator
        for k in list(expect)[::5]:
            store.delete(k)
            del expect[k]
        store.space.check()
        assert store.space.stats().free_bytes > free_before
        # new records reuse free space: the file does not grow
        for i in range(60):
            expect[f"n{i}"] = rng.randbytes(rng.randrange(0, 1000))
            store.put(f"n{i}", expect[f"n{i}"])
        records_disjoint(store)
        store.space.check()
    assert os.path.getsize(path) == size_before

    with rs.RecordStore(path) as store:
        assert {k: store.get(k) for k in store.keys()} == expect
        records_disjoint(store)


def test_record_store_rejects_other_files(tmp_path):
    rs = load("record_store")
    path = tmp_path / "not-a-store"
    path.write_bytes(b"x" * 5000)
    with pytest.raises(ValueError):
        rs.RecordStore(str(path))


def test_record_store_main(tmp_path, capsys):
    load("record_store").main(str(tmp_path / "r.tlsf"))
    assert "records" in capsys.readouterr().out


def test_device_buffer():
    np = pytest.importorskip("numpy", reason=NEEDS_NUMPY)
    db = load("device_buffer")
    gpu = db.DeviceBuffer(1 << 20)
    rng = np.random.default_rng(1)
    arrays = [rng.random(int(n), dtype=np.float32) for n in rng.integers(1, 5000, 40)]
    bindings = [gpu.upload(a) for a in arrays]
    assert all(b.offset % 256 == 0 for b in bindings)
    for a, b in zip(arrays, bindings):
        np.testing.assert_array_equal(gpu.read(b, np.float32), a)
    spans = sorted((b.offset, b.offset + b.size) for b in bindings)
    assert all(s2 >= e1 for (_, e1), (s2, _) in zip(spans, spans[1:]))
    before = gpu.space.stats()
    with pytest.raises(tlsf.OutOfMemoryError):  # all or nothing
        gpu.upload_many([np.zeros(100, np.uint8), np.zeros(2 << 20, np.uint8)])
    assert gpu.space.stats() == before
    for b in bindings:
        gpu.release(b)
    assert [blk.used for blk in gpu.space.walk()] == [False]
    db.main()


def test_persistent_cache_main(tmp_path):
    """The script counts its own runs in the file."""
    path = str(tmp_path / "cache.tlsf")
    for run in (1, 2):
        out = subprocess.run([sys.executable, str(EXAMPLES / "persistent_cache.py"), path],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert f"run {run}, {run + 1} keys" in out.stdout


def test_persistent_cache_survives_restart_and_kill(tmp_path):
    pc = load("persistent_cache")
    path = str(tmp_path / "cache.tlsf")
    with pc.Store(path) as store:
        for i in range(500):  # the table grows three times
            store[f"k{i}".encode()] = bytes([i % 256]) * (i % 300)
        del store[b"k7"]
        store[b"k8"] = b"new"
    code = (
        "import sys, importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('pc', {str(EXAMPLES / 'persistent_cache.py')!r})\n"
        "pc = importlib.util.module_from_spec(spec); spec.loader.exec_module(pc)\n"
        "s = pc.Store(sys.argv[1]); print(len(s), s[b'k8'], s[b'k499'][:3], b'k7' in s); s.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["499", "b'new'", "b'\\xf3\\xf3\\xf3'", "False"]

    # killed while writing: the keys written are a prefix, each with its value
    if not hasattr(os, "fork"):
        return
    import signal
    import time

    for round_ in range(20):
        pid = os.fork()
        if pid == 0:
            try:
                with pc.Store(path) as store:
                    for i in range(10**9):
                        store[f"r{round_}.{i}".encode()] = str(i).encode() * (i % 50 + 1)
            finally:
                os._exit(1)
        time.sleep(random.uniform(0.005, 0.05))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with pc.Store(path) as store:  # recover=True
            store.heap.check()
            done = [k for k in store.keys() if k.startswith(f"r{round_}.".encode())]
            ids = sorted(int(k.split(b".")[1]) for k in done)
            assert ids == list(range(len(ids))), "the keys written are not a prefix"
            for i in ids:
                assert store[f"r{round_}.{i}".encode()] == str(i).encode() * (i % 50 + 1)
            assert store[b"k8"] == b"new" and len([k for k in store.keys() if k.startswith(b"k")]) == 499


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_shared_arrays(method, monkeypatch):
    import importlib
    import multiprocessing

    np = pytest.importorskip("numpy", reason=NEEDS_NUMPY)
    if tlsf.IMPLEMENTATION != "c":
        pytest.skip("SharedHeap needs the C extension")
    if method not in multiprocessing.get_all_start_methods() or not os.path.isdir("/dev/shm"):
        pytest.skip(f"needs the {method} start method and /dev/shm")
    # imported by name from a folder on sys.path, so that spawned workers import it too
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sa = importlib.import_module("shared_arrays")

    name = f"tlsf-example-{os.getpid()}-{method}"
    a = sa.fill_in_parallel(10_007, workers=3, method=method, name=name)
    np.testing.assert_array_equal(a, np.sqrt(np.arange(10_007, dtype=np.float64)))
    assert name not in os.listdir("/dev/shm")

    if method == "spawn":  # the script: a clean run, nothing on stderr, nothing left behind
        out = subprocess.run(
            [sys.executable, str(EXAMPLES / "shared_arrays.py"), "20000", "2"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "2 spawn workers filled 20000 float64 in shared memory: ok" in out.stdout
        assert ": removed" in out.stdout  # the script checks that its segment's name is gone
        assert out.stderr == ""  # no resource-tracker warning, no leak reported


def test_numpy_flex():
    """The simulation in a FlexHeap gives numpy's own numbers, every temporary
    from the heap (the handler: C only), and only the state is left in it."""
    pytest.importorskip("numpy", reason=NEEDS_NUMPY)
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "numpy_flex.py"), "60", "10"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "same result as numpy's default allocator: True" in out.stdout
    assert "live allocations after the loop: 2 (pos and vel)" in out.stdout
    if tlsf.IMPLEMENTATION == "c":
        assert "0 arrays went elsewhere" in out.stdout
    assert out.stderr == ""
