"""FlexHeap in a file: create, reopen, bad files, and crash recovery.

Both implementations (the `FlexHeap` fixture) and across them (a file one
writes, the other reads). Crash recovery is tested by killing real processes
(`kill -9` at random moments of a random workload; TLSF_KILL_SOAK kills, 1,000
by default, a fifth of them for the twin) and, in the twin, by stopping an
operation after each of its stores (tests/test_crash.py does it for every
operation kind; tests/native/crash.c for the C core).
"""

from __future__ import annotations

import os
import random
import signal
import struct
import subprocess
import sys
import time
import traceback

import pytest
from conftest import GRAN, IMPLS, assert_consistent, both_classes, fill, impl_class, pattern, read
from conftest import IMAGE_FIELDS as FIELDS
from conftest import IMAGE_HEADER as HEADER

import tlsf

MIB = 1 << 20
KILLS = int(os.environ.get("TLSF_KILL_SOAK", "1000"))


@pytest.fixture(params=IMPLS)
def FlexHeap(request):  # noqa: N802 - it is a class
    return impl_class(request.param, "FlexHeap")


def populate(h, seed: int, n: int = 300) -> dict[int, bytes]:
    """Random allocations with their bytes, some freed, some reallocated."""
    rng = random.Random(seed)
    live: dict[int, bytes] = {}
    for serial in range(n):
        r = rng.random()
        if r < 0.6 or not live:
            size = rng.choice([rng.randrange(0, 100), rng.randrange(0, 5000), rng.randrange(0, 300_000)])
            off = h.alloc(size, rng.choice([1, 16, 256, 4096]))
            live[off] = pattern(serial, size)
            fill(h, off, live[off])
        elif r < 0.85:
            off = rng.choice(list(live))
            del live[off]
            h.free(off)
        else:
            off = rng.choice(list(live))
            data = live.pop(off)
            size = rng.randrange(0, 200_000)
            live[h.realloc(off, size)] = data[:size]  # what realloc keeps
    return live


def snapshot(h, live: dict[int, bytes]) -> tuple:
    return list(h.walk()), h.stats(), {off: read(h, off, len(data)) for off, data in live.items()}


# ------------------------------------------------------------ create, reopen


def test_create_then_reopen_gives_everything_back(FlexHeap, tmp_path):
    path = tmp_path / "heap.tlsf"
    h = FlexHeap.create(path, max_size=64 * MIB)
    assert h.path == os.fspath(path) and h.size == 64 << 10 and h.root == 0
    live = populate(h, 1)
    h.root = min(live)
    before = snapshot(h, live)
    size = h.size
    h.close()
    assert os.path.getsize(path) == HEADER.unpack(path.read_bytes()[: HEADER.size])[11] + size
    with FlexHeap.open(path) as h2:
        assert snapshot(h2, live) == before
        assert (h2.root, h2.size, h2.max_size, h2.sl_len) == (min(live), size, 64 * MIB, 32)
        for off, data in live.items():
            assert read(h2, off, len(data)) == data
        h2.check()


def test_reopen_across_implementations_and_processes(tmp_path):
    c_cls, py_cls = both_classes("FlexHeap")
    for writer, reader in (("c", "python"), ("python", "c")):
        path = tmp_path / f"{writer}.tlsf"
        h = impl_class(writer, "FlexHeap").create(path, max_size=64 * MIB, sl_len=16)
        live = populate(h, 2)
        expect = snapshot(h, live)
        h.close()
        with impl_class(reader, "FlexHeap").open(path) as h2:
            assert snapshot(h2, live) == expect
        # and in another process
        code = (
            "import sys, tlsf.pure, tlsf._core as c\n"
            f"cls = {'c' if reader == 'c' else 'tlsf.pure'}.FlexHeap\n"
            "h = cls.open(sys.argv[1]); print(repr((list(h.walk()), h.stats()))); h.close()\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == repr((expect[0], expect[1]))


def test_file_grows_with_the_pool_and_views_survive(FlexHeap, tmp_path):
    path = tmp_path / "grow.tlsf"
    with FlexHeap.create(path, max_size=256 * MIB) as h:
        a = h.alloc(1000)
        v = h.view(a)
        v[:4] = b"abcd"
        sizes = [os.path.getsize(path)]
        for _ in range(6):
            h.alloc(h.stats().largest_free + 1)
            sizes.append(os.path.getsize(path))
        assert all(b > a for a, b in zip(sizes, sizes[1:]))  # the file grew at each growth
        assert v[:4] == b"abcd"  # a view from before every growth
        v[4:8] = b"efgh"
        v.release()
        assert read(h, a, 8) == b"abcdefgh"
        h.check()


def test_second_open_is_refused(FlexHeap, tmp_path):
    path = tmp_path / "busy.tlsf"
    h = FlexHeap.create(path)
    for other in {FlexHeap, *[impl_class(i, "FlexHeap") for i in IMPLS]}:
        with pytest.raises(BlockingIOError, match="is open in another FlexHeap"):
            other.open(path)
    h.close()
    FlexHeap.open(path).close()


def test_create_existing(FlexHeap, tmp_path):
    path = tmp_path / "x.tlsf"
    FlexHeap.create(path, max_size=8 * MIB).close()
    with pytest.raises(FileExistsError):
        FlexHeap.create(path)
    with FlexHeap.create(path, exist_ok=True) as h:  # opens what is there
        assert h.max_size == 8 * MIB


def test_root_flush_and_repr(FlexHeap, tmp_path):
    path = tmp_path / "r.tlsf"
    with FlexHeap.create(path, max_size=8 * MIB) as h:
        h.root = 2**64 - 1
        assert h.root == 2**64 - 1
        for bad in (-1, 2**64):
            with pytest.raises(ValueError, match="root must be in 0..2"):
                h.root = bad
        with pytest.raises(TypeError):
            h.root = 1.5
        h.flush()
        assert repr(h).endswith(
            f"path={os.fspath(path)!r} size=65536 max_size=8388608 sl_len=32 allocations=0>"
        )
    with FlexHeap.open(path) as h:
        assert h.root == 2**64 - 1
    anon = FlexHeap(MIB)
    anon.root = 5
    assert anon.root == 5 and anon.path is None
    anon.flush()
    anon.close()


def test_trim_punches_holes(FlexHeap, tmp_path):
    path = tmp_path / "t.tlsf"
    with FlexHeap.create(path, max_size=256 * MIB, trim_threshold=None) as h:
        big = h.alloc(64 * MIB)
        h.alloc(10)
        fill(h, big, b"\x5a" * (64 * MIB))
        h.flush()
        used = os.stat(path).st_blocks * 512
        h.free(big)
        assert h.trim() >= 60 * MIB
        assert os.stat(path).st_blocks * 512 <= used - 60 * MIB  # storage given back
        again = h.alloc(64 * MIB)
        assert read(h, again, 12288)[8192:] == bytes(4096)  # holes read as zeros (past the header's page)
        h.check()


# ------------------------------------------------------------------ bad files


def make_file(cls, path, **kw):
    h = cls.create(path, max_size=8 * MIB, **kw)
    live = populate(h, 3, 60)
    h.close()
    return live


def patch_header(path, **fields):
    raw = bytearray(path.read_bytes())
    values = dict(zip(FIELDS, HEADER.unpack(raw[: HEADER.size])))
    values.update(fields)
    HEADER.pack_into(raw, 0, *[values[n] for n in FIELDS])
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "damage, error, message",
    [
        ("empty", ValueError, "is not a tlsf heap file"),
        ("text", ValueError, "is not a tlsf heap file"),
        ("newer", ValueError, "heap file format version 2 is newer than this tlsf reads (1)"),
        ("word_size", ValueError, "made on a machine of another word size or byte order"),
        ("order", ValueError, "made on a machine of another word size or byte order"),
        ("sl_len", tlsf.CorruptionError, "heap file header is inconsistent"),
        ("max_size", tlsf.CorruptionError, "heap file header is inconsistent"),
        ("arena_off", tlsf.CorruptionError, "heap file header is inconsistent"),
        ("size_beyond_file", tlsf.CorruptionError, "heap file is truncated"),
        ("truncated", tlsf.CorruptionError, "heap file is truncated"),
        ("truncated_header", ValueError, "is not a tlsf heap file"),
        ("scribbled_header_word", tlsf.CorruptionError, "the heap is corrupt at offset"),
        ("scribbled_free_link", None, None),  # links are derived: rebuilt, no error
    ],
)
def test_bad_files(FlexHeap, tmp_path, damage, error, message):
    path = tmp_path / "bad.tlsf"
    live = make_file(FlexHeap, path)
    raw = path.read_bytes()
    fields = HEADER.unpack(raw[: HEADER.size])
    arena = fields[11]
    first = min(live) - GRAN
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "text":
        path.write_bytes(b"hello, world\n" * 1000)
    elif damage == "newer":
        patch_header(path, version=2)
    elif damage == "word_size":
        patch_header(path, word_size=4)
    elif damage == "order":
        patch_header(path, order=0x04030201)
    elif damage == "sl_len":
        patch_header(path, sl_len=3)
    elif damage == "max_size":
        patch_header(path, max_size=2**60)
    elif damage == "arena_off":
        patch_header(path, arena_off=arena + 65536)
    elif damage == "size_beyond_file":
        patch_header(path, size=len(raw) - arena + 65536)
    elif damage == "truncated":
        path.write_bytes(raw[: arena + 1000])
    elif damage == "truncated_header":
        path.write_bytes(raw[:40])
    elif damage == "scribbled_header_word":
        path.write_bytes(raw[: arena + first] + struct.pack("=Q", 0x12345670) + raw[arena + first + 8 :])
    elif damage == "scribbled_free_link":
        with FlexHeap.open(path) as h:
            free = [b for b in h.walk() if not b.used][0]
        off = arena + free.offset + 16
        path.write_bytes(raw[:off] + b"\xee" * 16 + raw[off + 16 :])
    if error is None:
        with FlexHeap.open(path) as h:
            h.check()
            assert {off for off in live} <= {b.offset + GRAN for b in h.walk() if b.used}
        return
    with pytest.raises(error) as e:
        FlexHeap.open(path)
    assert message in str(e.value)
    assert repr(os.fspath(path)) in str(e.value)


def test_a_file_heap_holds_at_least_one_pool(FlexHeap, tmp_path):
    with pytest.raises(ValueError, match="max_size of a heap file must be at least 64 bytes, not 63"):
        FlexHeap.create(tmp_path / "tiny.tlsf", max_size=63)
    assert not (tmp_path / "tiny.tlsf").exists()
    with FlexHeap.create(tmp_path / "small.tlsf", max_size=64) as h:
        assert h.size == 64 and h.alloc(0) == GRAN
        with pytest.raises(tlsf.OutOfMemoryError):
            h.alloc(0)


def test_open_errors_from_the_system(FlexHeap, tmp_path):
    with pytest.raises(FileNotFoundError):
        FlexHeap.open(tmp_path / "missing.tlsf")
    with pytest.raises(FileNotFoundError):
        FlexHeap.create(tmp_path / "no" / "such" / "dir.tlsf")
    with pytest.raises(IsADirectoryError):
        FlexHeap.open(tmp_path)
    with pytest.raises(TypeError):
        FlexHeap.open(3.5)


def test_errors_are_identical_in_both_implementations(tmp_path):
    c_cls, py_cls = both_classes("FlexHeap")
    path = tmp_path / "same.tlsf"
    path.write_bytes(b"x" * 100)
    outcomes = []
    for cls in (c_cls, py_cls):
        try:
            cls.open(path)
        except Exception as e:  # noqa: BLE001 - compared below
            outcomes.append((type(e), str(e)))
    assert outcomes[0] == outcomes[1]


# ------------------------------------------------------------ crash recovery

# The workload of the kill -9 soak: allocations recorded, once their bytes
# are written, in a table inside the heap that `root` points to (one slot per
# allocation: offset, size, serial); a slot is cleared before its block is
# freed. What the table holds when the process dies is what must survive.
SLOTS = 64
SLOT = struct.Struct("=QQQ")


def soak_child(cls_name: str, path: str, seed: int) -> None:
    cls = impl_class(cls_name, "FlexHeap")
    h = cls.open(path, recover=True)
    table = h.root
    rng = random.Random(seed)
    tv = h.view(table, SLOTS * SLOT.size)
    # What a killed predecessor allocated but had not recorded yet is
    # unreachable: found by a walk and freed, as such a program would.
    recorded = {table} | {SLOT.unpack_from(tv, k * SLOT.size)[0] for k in range(SLOTS)}
    h.free_many([b.offset + GRAN for b in h.walk() if b.used and b.offset + GRAN not in recorded])
    serial = seed * 1_000_000
    while True:
        k = rng.randrange(SLOTS)
        off, size, _ = SLOT.unpack_from(tv, k * SLOT.size)
        if off:
            SLOT.pack_into(tv, k * SLOT.size, 0, 0, 0)
            if rng.random() < 0.3:
                h.free(off)
                continue
            new = h.realloc(off, rng.choice([0, 100, 5000, 70_000, 400_000]))
            data = pattern(serial, h.usable_size(new))
        else:
            new = h.alloc(rng.choice([0, 30, 1000, 20_000, 300_000]), rng.choice([1, 64, 4096]))
            data = pattern(serial, rng.randrange(0, h.usable_size(new) + 1))
        fill(h, new, data)
        SLOT.pack_into(tv, k * SLOT.size, new, len(data), serial)
        serial += 1


def verify(cls, path: str) -> int:
    """Opens after a crash: recover=True succeeds, check() passes, every
    recorded allocation is live with its bytes. Returns how many."""
    with cls.open(path, recover=True) as h:
        h.check()
        table = h.root
        tv = h.view(table, SLOTS * SLOT.size)
        recorded = 0
        for k in range(SLOTS):
            off, size, serial = SLOT.unpack_from(tv, k * SLOT.size)
            if off:
                assert h.usable_size(off) >= size, f"slot {k}: {off} not live"
                assert read(h, off, size) == pattern(serial, size), f"slot {k}: bytes of {off} differ"
                recorded += 1
        tv.release()
        return recorded


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_kill_9_soak(FlexHeap, tmp_path):
    impl = "python" if FlexHeap.__module__.startswith("tlsf.pure") else "c"
    kills = KILLS if impl == "c" else max(1, KILLS // 5)
    path = str(tmp_path / "soak.tlsf")
    with FlexHeap.create(path, max_size=256 * MIB) as h:
        table = h.alloc(SLOTS * SLOT.size)
        fill(h, table, bytes(SLOTS * SLOT.size))
        h.root = table
    rng = random.Random(7)
    recorded = 0
    for i in range(kills):
        pid = os.fork()
        if pid == 0:  # the child works until it is killed
            try:
                soak_child(impl, path, i + 1)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.001, 0.03))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), f"the child ended by itself ({status}) at kill {i}"
        recorded += verify(FlexHeap, path)
    assert recorded > kills  # the workload got going between kills


def test_unclean_file_opens_when_consistent_and_says_recover_when_not(FlexHeap, tmp_path):
    path = tmp_path / "u.tlsf"
    live = make_file(FlexHeap, path)
    raw = bytearray(path.read_bytes())
    fields = HEADER.unpack(raw[: HEADER.size])
    patch_header(path, flags=fields[5] & ~1)  # as if killed between two operations
    with FlexHeap.open(path) as h:
        assert {off for off in live} == {b.offset + GRAN for b in h.walk() if b.used}
    # killed in the middle of a free: the block after the freed one is free too
    h = FlexHeap.open(path)
    blocks = list(h.walk())
    arena = fields[11]
    h.close()
    k = next(i for i in range(len(blocks) - 1) if blocks[i].used and not blocks[i + 1].used)
    b = blocks[k]
    raw = bytearray(path.read_bytes())
    struct.pack_into("=Q", raw, arena + b.offset, b.size)  # free, not merged, not relinked
    path.write_bytes(bytes(raw))
    patch_header(path, flags=0)
    with pytest.raises(tlsf.CorruptionError, match=r"was not closed cleanly.*recover=True\) repairs it"):
        FlexHeap.open(path)
    with FlexHeap.open(path, recover=True) as h:
        h.check()
        assert not any(x.used and x.offset == b.offset for x in h.walk())  # the freed block stays freed
        assert_consistent(h)
    # a broken chain of sizes cannot be repaired
    raw = bytearray(path.read_bytes())
    struct.pack_into("=Q", raw, arena, 0x7777770)
    path.write_bytes(bytes(raw))
    with pytest.raises(tlsf.CorruptionError, match="broken at offset 0; recover=True cannot repair it"):
        FlexHeap.open(path, recover=True)
