"""SharedHeap: one heap in POSIX shared memory, used by many real processes.

Names and lifecycle, the attach matrix (each bad segment a clear exception),
pickling through multiprocessing with every start method, a stress of
processes stamping their allocations, and a soak of `kill -9`s of worker
processes, a part of them while they hold the heap's lock
(TLSF_SHARED_KILLS, 1,000 by default; TLSF_SHARED_STRESS_OPS, 100,000 per
process by default). The Heap contract suites run against a SharedHeap too
(conftest.heap_and_flex_fixture, test_stateful).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings

import pytest
from conftest import IMAGE_FIELDS as FIELDS
from conftest import IMAGE_HEADER as HEADER
from conftest import fill, pattern, read

import tlsf

pytestmark = pytest.mark.skipif(tlsf.IMPLEMENTATION != "c", reason="SharedHeap is C only")

MIB = 1 << 20
SHM = "/dev/shm"
KILLS = int(os.environ.get("TLSF_SHARED_KILLS", "1000"))
STRESS_OPS = int(os.environ.get("TLSF_SHARED_STRESS_OPS", "100000"))


def segments() -> set[str]:
    return set(os.listdir(SHM))


def gone(h) -> None:
    """h, closed, left no segment behind."""
    assert h.closed and h.name not in segments()


@contextlib.contextmanager
def held_elsewhere(h, seconds: float):
    """Another process holds h's lock for `seconds`, from just before the
    body runs; the body runs while it does."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, b"x")
        h._hold(seconds)
        os._exit(0)
    try:
        os.read(r, 1)
        time.sleep(0.1)  # it is asleep in the lock
        yield
    finally:
        os.waitpid(pid, 0)
        os.close(r)
        os.close(w)


def patch_header(name: str, **fields) -> None:
    with open(os.path.join(SHM, name), "r+b") as f:
        values = dict(zip(FIELDS, HEADER.unpack(f.read(HEADER.size))))
        values.update(fields)
        f.seek(0)
        f.write(HEADER.pack(*[values[n] for n in FIELDS]))


# ------------------------------------------------------------- one process


def test_the_twin_has_no_shared_heap():
    import tlsf.pure

    for make in (tlsf.pure.SharedHeap.create, lambda: tlsf.pure.SharedHeap.attach("x"), tlsf.pure.SharedHeap):
        with pytest.raises(NotImplementedError, match="C extension"):
            make()


def test_two_objects_one_heap():
    with tlsf.SharedHeap.create(max_size=64 * MIB) as h:
        g = tlsf.SharedHeap.attach(h.name)
        assert g.name == h.name and g.max_size == h.max_size == 64 * MIB and g.sl_len == h.sl_len
        a = h.alloc(100)
        fill(h, a, b"hello")
        assert read(g, a, 5) == b"hello"
        b = g.alloc(8 * MIB)  # grows the pool: h sees it
        assert h.size == g.size > 8 * MIB
        assert h.usable_size(b) >= 8 * MIB
        h.free(b)
        with pytest.raises(tlsf.InvalidOffsetError):
            g.free(b)
        g.root = a
        assert h.root == a
        assert h.stats() == g.stats() and list(h.walk()) == list(g.walk())
        h.check()
        g.close()
        assert g.closed and not h.closed
        with pytest.raises(ValueError, match="closed"):
            g.alloc(1)
        h.free(a)
    gone(h)


def test_names():
    with pytest.raises(TypeError, match="create"):
        tlsf.SharedHeap()
    h = tlsf.SharedHeap.create("/test-names", max_size=MIB)
    assert h.name == "test-names" and "test-names" in segments()
    with pytest.raises(FileExistsError):
        tlsf.SharedHeap.create("test-names")
    g = tlsf.SharedHeap.attach("/test-names")
    assert g.name == "test-names"
    g.close()
    h.close()
    assert "test-names" not in segments()
    for bad in ("", "/", "a/b", "x" * 241, "a\0b", "é" * 121):  # 241 characters, or 242 bytes
        with pytest.raises(ValueError, match="name"):
            tlsf.SharedHeap.create(bad)
    with pytest.raises(TypeError):
        tlsf.SharedHeap.attach(b"name")
    long = tlsf.SharedHeap.create("é" * 120, max_size=MIB)  # 240 bytes
    assert long.name == "é" * 120
    long.close()
    name = tlsf.SharedHeap.create(max_size=MIB).name  # the object is gone at once: collected
    assert name.startswith("tlsf-") and name not in segments()


def test_bad_arguments():
    for kw in ({"max_size": 0}, {"max_size": 16}, {"max_size": 2**59}, {"sl_len": 3}, {"trim_threshold": -1}):
        with pytest.raises(ValueError):
            tlsf.SharedHeap.create(**kw)


def test_who_removes_the_name():
    h = tlsf.SharedHeap.create(max_size=MIB)
    name = h.name
    g = tlsf.SharedHeap.attach(name)
    g.close()  # an attached object never removes it
    assert name in segments()
    h.close()  # the creator's does
    assert name not in segments()
    with pytest.raises(FileNotFoundError):
        tlsf.SharedHeap.attach(name)

    h = tlsf.SharedHeap.create(max_size=MIB, persist=True)
    h.close()
    assert h.name in segments()
    g = tlsf.SharedHeap.attach(h.name)
    g.unlink()
    assert h.name not in segments()
    with pytest.raises(FileNotFoundError):
        g.unlink()
    g.alloc(10)  # still mapped: works until closed
    g.check()
    g.close()
    with pytest.raises(FileNotFoundError):
        tlsf.SharedHeap.remove(h.name)


def test_a_name_reused_is_not_removed_by_the_old_owner():
    old = tlsf.SharedHeap.create("test-reuse", max_size=MIB)
    tlsf.SharedHeap.remove("test-reuse")
    new = tlsf.SharedHeap.create("test-reuse", max_size=MIB, persist=True)
    old.close()  # the name now names another segment: left alone
    assert "test-reuse" in segments()
    new.close()
    tlsf.SharedHeap.remove("test-reuse")


def test_repr_and_pickle_of_a_closed_heap():
    import pickle

    h = tlsf.SharedHeap.create(max_size=MIB)
    assert f"name='{h.name}'" in repr(h) and "allocations=0" in repr(h)
    g = pickle.loads(pickle.dumps(h))
    assert type(g) is tlsf.SharedHeap and g.name == h.name
    g.close()
    h.close()
    assert "closed" in repr(h)
    with pytest.raises(ValueError, match="closed"):
        pickle.dumps(h)


def test_views_keep_it_open():
    h = tlsf.SharedHeap.create(max_size=MIB)
    v = h.view(h.alloc(10))
    with pytest.raises(BufferError):
        h.close()
    v.release()
    h.close()


def test_trim_gives_pages_back_for_every_process():
    """One process frees, another trims: the segment's storage falls, for both."""
    h = tlsf.SharedHeap.create(max_size=256 * MIB)
    assert h.trim_threshold is None  # the default: only trim() gives pages back
    path = os.path.join(SHM, h.name)
    off = h.alloc(64 * MIB)
    fill(h, off, b"\xff" * (64 * MIB))
    used = os.stat(path).st_blocks * 512
    assert used >= 64 * MIB
    h.free(off)
    assert os.stat(path).st_blocks * 512 == used
    pid = os.fork()
    if pid == 0:
        g = tlsf.SharedHeap.attach(h.name)
        os._exit(0 if g.trim() >= 60 * MIB else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert os.stat(path).st_blocks * 512 <= used - 60 * MIB
    arena = h._arena()
    assert arena[off + 4096 : off + 8192] == bytes(4096)  # this process sees the hole
    arena.release()
    h.check()
    h.close()
    gone(h)


# ------------------------------------------------------------- the attach matrix


@pytest.fixture
def segment():
    h = tlsf.SharedHeap.create("test-matrix", max_size=4 * MIB, persist=True)
    fill(h, h.alloc(100), b"x" * 100)
    h.close()
    yield "test-matrix"
    if "test-matrix" in segments():
        tlsf.SharedHeap.remove("test-matrix")


def test_attach_unknown_name():
    with pytest.raises(FileNotFoundError):
        tlsf.SharedHeap.attach("test-no-such-segment")


def test_attach_a_segment_that_is_not_a_heap(segment):
    with open(os.path.join(SHM, segment), "r+b") as f:
        f.write(b"NOTAHEAP")
    with pytest.raises(ValueError, match="is not a tlsf shared heap segment"):
        tlsf.SharedHeap.attach(segment)
    os.truncate(os.path.join(SHM, segment), 0)
    with pytest.raises(ValueError, match="is not a tlsf shared heap segment"):
        tlsf.SharedHeap.attach(segment)


def test_attach_a_heap_file_segment_is_refused(segment):
    """A FlexHeap file's magic is not a segment's."""
    patch_header(segment, magic=b"TLSFHEAP")
    with pytest.raises(ValueError, match="is not a tlsf shared heap segment"):
        tlsf.SharedHeap.attach(segment)


def test_attach_a_newer_version(segment):
    patch_header(segment, version=99)
    with pytest.raises(ValueError, match="version 99 is newer"):
        tlsf.SharedHeap.attach(segment)


def test_attach_a_foreign_segment(segment):
    patch_header(segment, word_size=4)
    with pytest.raises(ValueError, match="another word size"):
        tlsf.SharedHeap.attach(segment)


def test_attach_a_truncated_segment(segment):
    arena = HEADER.unpack(open(os.path.join(SHM, segment), "rb").read(HEADER.size))[-1]
    os.truncate(os.path.join(SHM, segment), arena + 1000)
    with pytest.raises(tlsf.CorruptionError, match="truncated"):
        tlsf.SharedHeap.attach(segment)


@pytest.mark.parametrize("change", ["longer", "header"])
def test_attach_a_segment_whose_header_disagrees_with_its_size(segment, change):
    path = os.path.join(SHM, segment)
    if change == "longer":
        os.truncate(path, os.path.getsize(path) + 4096)
    else:
        patch_header(segment, max_size=8 * MIB)
    with pytest.raises(tlsf.CorruptionError, match="inconsistent"):
        tlsf.SharedHeap.attach(segment)


def test_attach_after_unlink(segment):
    tlsf.SharedHeap.remove(segment)
    with pytest.raises(FileNotFoundError):
        tlsf.SharedHeap.attach(segment)


# ------------------------------------------------------------- processes

LIFECYCLE = r"""
import concurrent.futures, multiprocessing as mp, sys
import tlsf

def work(heap, i):
    off = heap.alloc(1000 + i)
    v = heap.view(off, 8)
    v[:] = i.to_bytes(8, "little")
    v.release()
    return off

if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    with tlsf.SharedHeap.create(max_size=1 << 26) as heap:
        with ctx.Pool(2) as pool:
            offs = pool.starmap(work, [(heap, i) for i in range(40)])
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
            offs += list(ex.map(work, [heap] * 40, range(40, 80)))
        for i, off in enumerate(offs):
            v = heap.view(off, 8)
            assert int.from_bytes(v, "little") == i, (i, off)
            v.release()
            heap.free(off)
        heap.check()
        assert heap.stats().allocations == 0
    print("ok", heap.name)
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_pool_and_executor_lifecycle(tmp_path, method):
    """A heap pickled to Pool and ProcessPoolExecutor workers: their
    allocations reach the parent; no resource-tracker warning, no segment
    left behind."""
    script = tmp_path / "lifecycle.py"
    script.write_text(LIFECYCLE)
    r = subprocess.run([sys.executable, str(script), method], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    name = r.stdout.split()[1]
    assert r.stdout.startswith("ok") and name not in segments()


CREATOR = r"""
import sys, tlsf
h = tlsf.SharedHeap.create(max_size=1 << 24)
fill = h.view(h.alloc(16)); fill[:] = b"from the creator"; fill.release()
print(h.name, flush=True)
sys.stdin.readline()
"""


def test_the_creator_exits_and_attached_processes_go_on():
    p = subprocess.Popen(
        [sys.executable, "-c", CREATOR], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    name = p.stdout.readline().strip()
    h = tlsf.SharedHeap.attach(name)
    p.communicate("\n", timeout=60)
    assert p.returncode == 0
    assert name not in segments()  # its exit removed the name
    (block,) = [b.offset for b in h.walk() if b.used]
    assert read(h, block + 16, 16) == b"from the creator"
    h.free(block + 16)
    h.free(h.alloc(5 * MIB))
    h.check()
    h.close()


LEAKER = r"""
import ctypes, os, sys, tlsf
h = tlsf.SharedHeap.create(sys.argv[1], max_size=1 << 20)
ctypes.pythonapi.Py_IncRef(ctypes.py_object(h))  # never deallocated
if os.fork() == 0:
    sys.exit(0)  # a child's exit leaves the parent's name alone
os.wait()
print(sys.argv[1] in os.listdir("/dev/shm"))
"""


def test_the_name_goes_at_exit_even_if_the_heap_never_does():
    r = subprocess.run(
        [sys.executable, "-c", LEAKER, "test-leaked"], capture_output=True, text=True, timeout=60
    )
    assert (r.returncode, r.stdout, r.stderr) == (0, "True\n", "")
    assert "test-leaked" not in segments()


def test_a_thread_waits_for_the_lock_without_the_gil():
    """While another process holds the lock, a thread of this process waits
    for it and the other threads run Python code meanwhile."""
    h = tlsf.SharedHeap.create(max_size=MIB)
    with held_elsewhere(h, 1.0):
        t = threading.Thread(target=h.alloc, args=(10,))
        t.start()
        time.sleep(0.1)  # t waits for the lock
        t0 = time.monotonic()
        time.sleep(0.05)  # returns only when this thread gets the GIL back
        slept = time.monotonic() - t0
        assert t.is_alive()  # still waiting: the lock is held for ~0.8 s more
        t.join()
    assert slept < 0.5, slept  # not held up until the other process let go
    h.check()
    h.close()


def test_close_waits_for_a_thread_inside_a_call():
    """close() while a thread waits for the lock (another process holds it):
    the thread's call completes, then the heap closes."""
    h = tlsf.SharedHeap.create(max_size=MIB)
    got: list[int] = []
    with held_elsewhere(h, 0.5):
        t = threading.Thread(target=lambda: got.append(h.alloc(10)))
        t.start()
        time.sleep(0.1)  # t is waiting for the lock
        h.close()
        t.join()
    assert len(got) == 1 and h.closed
    with pytest.raises(ValueError, match="closed"):
        h.alloc(10)
    gone(h)


def test_calls_made_while_close_waits_wait_for_its_outcome():
    """While close() waits for a call in progress, a new call waits too (it
    neither touches the segment nor fails at once): closed, it gets
    "heap is closed"; refused (a numpy handler's array still uses the heap),
    it goes on as if nothing happened. A live view's exporter, or a Block,
    keeps close() from starting at all."""
    np = pytest.importorskip("numpy")
    import tlsf.numpy

    h = tlsf.SharedHeap.create(max_size=MIB)
    v = h.view(h.alloc(64))
    exporter = v.obj
    v.release()
    with pytest.raises(BufferError, match="views"):
        h.close()  # the exporter lives on after its buffer's release
    del exporter
    b = h.block(8)
    with pytest.raises(BufferError, match="blocks"):
        h.close()
    b.free()
    with tlsf.numpy.use(h):
        array = np.zeros(4)

    results: dict[str, object] = {}

    def call(key, f, *args):
        try:
            results[key] = f(*args)
        except Exception as e:  # noqa: BLE001 - compared below
            results[key] = e

    for outcome in ("refused", "closed"):
        results.clear()
        with held_elsewhere(h, 1.0):
            t = threading.Thread(target=call, args=("inside", h.alloc, 10))
            t.start()
            time.sleep(0.1)  # t waits for the lock, inside a call
            closer = threading.Thread(target=call, args=("close", h.close))
            closer.start()
            time.sleep(0.1)  # close() waits for t, without the GIL
            assert closer.is_alive()
            late = threading.Thread(target=call, args=("late", h.alloc, 20))
            late.start()
            time.sleep(0.1)
            assert late.is_alive()  # it waits for close()'s outcome
            for x in (closer, t, late):
                x.join()
        assert isinstance(results["inside"], int)
        if outcome == "refused":
            assert isinstance(results["close"], BufferError) and not h.closed
            assert isinstance(results["late"], int)  # went on
            h.free(results["inside"])
            h.free(results["late"])
            del array  # the next round's close() succeeds
        else:
            assert results["close"] is None and h.closed
            assert isinstance(results["late"], ValueError) and "closed" in str(results["late"])
    gone(h)


def test_a_child_forked_while_a_thread_is_inside_a_call_can_close():
    """The count of threads inside a call is the parent's; a forked child
    has none (only the forking thread), so its close() does not wait."""
    h = tlsf.SharedHeap.create(max_size=MIB)
    with held_elsewhere(h, 1.0):
        t = threading.Thread(target=h.alloc, args=(10,))
        t.start()
        time.sleep(0.1)  # t waits for the lock, inside a call
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads
            child = os.fork()
        if child == 0:
            code = 1
            try:
                h.close()
                code = 0
            finally:
                os._exit(code)
        t0 = time.monotonic()
        while not (done := os.waitpid(child, os.WNOHANG))[0]:
            assert time.monotonic() - t0 < 10, "the child's close() hangs"
            time.sleep(0.01)
        assert os.waitstatus_to_exitcode(done[1]) == 0
        t.join()
    h.check()
    h.close()
    gone(h)


# ------------------------------------------------------------- stress


def stamp(owner: int, seq: int, size: int) -> bytes:
    """The size bytes of allocation `seq` of `owner`: its identity at both ends."""
    tag = struct.pack("<II", owner, seq)
    if size < 16:
        return (tag + tag)[:size]
    return tag + pattern(owner * 1_000_003 + seq, size - 16) + tag


def stress_worker(h, owner: int, ops: int, out) -> None:
    rng = random.Random(owner)
    live: dict[int, tuple[int, int]] = {}  # offset -> (seq, size)
    for seq in range(ops):
        r = rng.random()
        if r < 0.5 or len(live) < 8:
            size = rng.choice([rng.randrange(8, 64), rng.randrange(64, 1024), rng.randrange(1024, 20000)])
            off = h.alloc(size, rng.choice([1, 16, 64]))
            fill(h, off, stamp(owner, seq, size))
            live[off] = (seq, size)
        elif r < 0.6:
            off = rng.choice(list(live))
            s, size = live.pop(off)
            new_size = rng.randrange(8, 4000)
            new = h.realloc(off, new_size)
            keep = min(size, new_size)
            assert read(h, new, keep) == stamp(owner, s, size)[:keep], "realloc lost bytes"
            fill(h, new, stamp(owner, seq, new_size))
            live[new] = (seq, new_size)
        else:
            off = rng.choice(list(live))
            s, size = live.pop(off)
            assert read(h, off, size) == stamp(owner, s, size), f"stamp of {owner}/{s} damaged"
            h.free(off)
    out.send([(off, seq, size) for off, (seq, size) in live.items()])
    out.close()


def test_stress_four_processes():
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    h = tlsf.SharedHeap.create(max_size=1 << 30)
    pipes, procs = [], []
    for owner in range(4):
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=stress_worker, args=(h, owner, STRESS_OPS, send))
        p.start()
        pipes.append(recv)
        procs.append(p)
    lives = [recv.recv() for recv in pipes]
    for p in procs:
        p.join()
        assert p.exitcode == 0
    h.check()
    spans = sorted((off, off + h.usable_size(off)) for live in lives for off, _, _ in live)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "live allocations overlap"
    for owner, live in enumerate(lives):
        for off, seq, size in live:
            assert read(h, off, size) == stamp(owner, seq, size)
    st = h.stats()
    assert st.allocations == sum(len(live) for live in lives)
    assert st.allocated_bytes == sum(h.usable_size(off) for live in lives for off, _, _ in live)
    h.close()
    gone(h)


# ------------------------------------------------------------- deaths


def victim(h, seed: int, hold: bool, ready: int) -> None:
    """A worker to be killed: random batches of allocations and frees (most
    of its time inside the lock), or, with hold, sleeping holding it."""
    rng = random.Random(seed)
    if hold:
        os.write(ready, b"h")
        h._hold(10.0)
    os.write(ready, b"r")
    live: list[int] = []
    while True:
        if len(live) > 48 or (live and rng.random() < 0.4):
            k = rng.randrange(1, len(live) + 1)
            h.free_many(live[:k])
            del live[:k]
        elif rng.random() < 0.2 and live:
            i = rng.randrange(len(live))
            live[i] = h.realloc(live[i], rng.randrange(1, 3000))
        else:
            live.extend(h.alloc_many([rng.randrange(1, 2000) for _ in range(rng.randrange(1, 16))]))


def survivor(h, stop: int, report: int) -> None:
    """A process that goes on through every death: its allocations keep their bytes."""
    rng = random.Random(99)
    live: dict[int, bytes] = {}
    seq = 0
    errors = 0
    os.set_blocking(stop, False)
    while True:
        try:
            if os.read(stop, 1):
                break
        except BlockingIOError:
            pass
        if len(live) < 64 and rng.random() < 0.6:
            data = pattern(seq, rng.randrange(1, 500))
            off = h.alloc(len(data))
            fill(h, off, data)
            live[off] = data
            seq += 1
        elif live:
            off = rng.choice(list(live))
            data = live.pop(off)
            errors += read(h, off, len(data)) != data
            h.free(off)
    errors += sum(read(h, off, len(data)) != data for off, data in live.items())
    os.write(report, struct.pack("<QQ", seq, errors))


def test_kill_soak():
    """KILLS workers killed with SIGKILL at random moments (every fourth while
    it sleeps holding the lock); this process and a survivor process go on
    after each: the next operation succeeds (timed), check() passes, every
    allocation of a survivor is live with its bytes."""
    h = tlsf.SharedHeap.create(max_size=1 << 31)
    stop_r, stop_w = os.pipe()
    rep_r, rep_w = os.pipe()
    survivor_pid = os.fork()
    if survivor_pid == 0:
        code = 1
        try:
            survivor(h, stop_r, rep_w)
            code = 0
        finally:
            os._exit(code)
    rng = random.Random(2026)
    ready_r, ready_w = os.pipe()
    mine: dict[int, bytes] = {}
    waits: list[float] = []
    held = 0
    for k in range(KILLS):
        hold = k % 4 == 0
        pid = os.fork()
        if pid == 0:
            try:
                victim(h, k, hold, ready_w)
            finally:
                os._exit(1)
        os.read(ready_r, 1)
        time.sleep(0.003 if hold else rng.uniform(0, 0.004))
        held += hold
        data = pattern(k, rng.randrange(1, 300))
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # its death, and the kernel's release of its lock
        off = h.alloc(len(data))
        waits.append(time.perf_counter() - t0)  # from the kill to the next operation done
        fill(h, off, data)
        mine[off] = data
        if len(mine) > 32:
            off = rng.choice(list(mine))
            assert read(h, off, len(mine[off])) == mine.pop(off)
            h.free(off)
        if k % 50 == 0:
            h.check()
    os.write(stop_w, b"s")
    _, status = os.waitpid(survivor_pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    seq, errors = struct.unpack("<QQ", os.read(rep_r, 16))
    for fd in (stop_r, stop_w, rep_r, rep_w, ready_r, ready_w):
        os.close(fd)
    h.check()
    for off, data in mine.items():
        assert read(h, off, len(data)) == data
    assert errors == 0 and seq > 0, (seq, errors)
    # at least the deaths while sleeping in the lock were recoveries (each
    # victim held the lock 3 ms after saying it would take it)
    assert h.recoveries >= held * 9 // 10, (h.recoveries, held)
    waits.sort()
    print(
        f"\n{KILLS} kills, {h.recoveries} inside the lock; next operation after a kill: "
        f"median {waits[len(waits) // 2] * 1e3:.2f} ms, p99 {waits[len(waits) * 99 // 100] * 1e3:.2f} ms, "
        f"max {waits[-1] * 1e3:.2f} ms; {h.stats().allocations} allocations live (the dead's leak)"
    )
    assert waits[-1] < 5.0  # nothing hangs
    h.close()
    gone(h)


def test_a_broken_chain_is_corruption_everywhere_never_a_crash():
    """A process scribbles over a block header, then dies holding the lock:
    recovery finds the chain broken, and every later call in every process
    is CorruptionError (close still works)."""
    h = tlsf.SharedHeap.create(max_size=4 * MIB)
    offs = [h.alloc(100) for _ in range(10)]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        arena = h._arena()
        # block 4's size word: a used block running off the pool
        arena[offs[4] - 16 : offs[4] - 8] = (2**40 | 1).to_bytes(8, "little")
        arena.release()
        os.write(w, b"x")
        h._hold(10.0)
        os._exit(0)
    os.read(r, 1)
    time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(r)
    os.close(w)
    g = tlsf.SharedHeap.attach(h.name)
    for heap in (h, g):
        calls = [
            (heap.alloc, 10), (heap.free, offs[0]), (heap.realloc, offs[0], 50), (heap.usable_size, offs[0]),
            (heap.view, offs[0]), (heap.alloc_many, [1, 2]), (heap.free_many, [offs[0]]), (heap.stats,),
            (heap.walk,), (heap.check,), (heap.trim,), (heap._arena,), (setattr, heap, "root", 5),
            (getattr, heap, "root"), (getattr, heap, "size"),
        ]  # fmt: skip
        for call, *args in calls:
            with pytest.raises(tlsf.CorruptionError):
                call(*args)
        assert heap.recoveries == 1 and not heap.closed and heap.max_size == 4 * MIB
        assert repr(heap).endswith("broken>")
    g.close()
    h.close()
    gone(h)
