"""libtlsf_malloc (integrations/malloc): real programs run on it with the
same output as on glibc's malloc; invalid frees abort like glibc's; sizes
that overflow fail cleanly; traces recorded by ``python -m tlsf run --trace``
replay through tlsf.Heap.

Every program runs in a subprocess with the library preloaded. The C calls
are made through ctypes inside such a subprocess, where malloc is the
library's. (Under the sanitizer pass, whose runtime owns malloc, nothing
here runs: .ci/sanitize preloads libasan; nor in the twin's run, as the
library does not depend on the implementation Python uses.)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

import tlsf
from tlsf.bench import records, trace_capacity
from tlsf.malloc import environment
from tlsf.workloads import ALLOC, FREE, HEADER, MAGIC, RECORD, read_trace

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libtlsf_malloc is built on Linux"),
    pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                       reason="the sanitizer's runtime owns malloc"),  # fmt: skip
    pytest.mark.skipif(os.environ.get("TLSF_PURE_PYTHON", "") not in ("", "0"),
                       reason="the library is the same whichever implementation Python uses: "
                              "tested in the C run"),  # fmt: skip
]


@pytest.fixture(scope="module")
def library() -> str:
    try:
        return tlsf.malloc_library()
    except FileNotFoundError as e:
        if os.environ.get("TLSF_BUILD_EXT") == "1":  # built as CI builds: it must be installed
            raise
        pytest.skip(str(e))


def on_tlsf(cmd: list[str], library: str, *, env: dict[str, str] | None = None,
            input: str | None = None, cwd: str | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """cmd with libtlsf_malloc preloaded (and `env` added)."""
    full = environment()
    assert full["LD_PRELOAD"].startswith(library)
    full.update(env or {})
    return subprocess.run(cmd, env=full, input=input, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def same_as_glibc(cmd: list[str], library: str, **kw) -> str:
    """Runs cmd normally and on tlsf: both succeed with the same output."""
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                           input=kw.get("input"), cwd=kw.get("cwd"))  # fmt: skip
    ours = on_tlsf(cmd, library, **kw)
    assert plain.returncode == 0, plain.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout
    return ours.stdout


# The C calls, through ctypes in a program on tlsf (code run by c_calls).
PRELUDE = textwrap.dedent("""\
    import ctypes
    from ctypes import c_void_p, c_size_t, c_int
    libc = ctypes.CDLL(None, use_errno=True)
    for name, res, args in [("malloc", c_void_p, [c_size_t]), ("free", None, [c_void_p]),
                            ("calloc", c_void_p, [c_size_t, c_size_t]),
                            ("realloc", c_void_p, [c_void_p, c_size_t]),
                            ("reallocarray", c_void_p, [c_void_p, c_size_t, c_size_t]),
                            ("posix_memalign", c_int, [ctypes.POINTER(c_void_p), c_size_t, c_size_t]),
                            ("aligned_alloc", c_void_p, [c_size_t, c_size_t]),
                            ("memalign", c_void_p, [c_size_t, c_size_t]),
                            ("valloc", c_void_p, [c_size_t]), ("pvalloc", c_void_p, [c_size_t]),
                            ("malloc_usable_size", c_size_t, [c_void_p]),
                            ("malloc_trim", c_int, [c_size_t])]:
        f = getattr(libc, name)
        f.restype, f.argtypes = res, args
    """)


def c_calls(code: str, library: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Python code run on tlsf, with `libc` (ctypes, use_errno) and `c_void_p`, `c_size_t` in scope."""
    return on_tlsf([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], library, env=env)


# ------------------------------------------------------------ real programs

PYTHON_WORKLOADS = {
    "dicts and lists": """
        d = {i: [str(i)] * (i % 7) for i in range(200_000)}
        for i in range(0, 200_000, 3):
            del d[i]
        print(len(d), sum(len(v) for v in d.values()))
    """,
    "strings and bytes": """
        parts = [("x%d" % i) * (i % 50) for i in range(50_000)]
        s = "-".join(parts)
        b = bytearray()
        for p in parts[:5000]:
            b += p.encode() * 3
        print(len(s), s.count("x1"), len(b), bytes(b).upper()[:40])
    """,
    "json": """
        import json
        doc = {"k%d" % i: {"v": list(range(i % 30)), "s": "é" * (i % 11)} for i in range(30_000)}
        text = json.dumps(doc, sort_keys=True)
        assert json.loads(text) == doc
        print(len(text), hash(text) & 0xFFFF == hash(json.dumps(json.loads(text), sort_keys=True)) & 0xFFFF)
    """,
    "threads": """
        import threading, queue
        q = queue.Queue()
        def work(k):
            blobs = [bytes(range(256)) * (1 + (i * k) % 300) for i in range(3000)]
            q.put(sum(len(b) for b in blobs))
        ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in ts: t.start()
        for t in ts: t.join()
        print(sorted(q.get() for _ in ts))
    """,
}


@pytest.mark.parametrize("name", sorted(PYTHON_WORKLOADS))
def test_python_workloads_run_on_tlsf_with_the_same_output(library, name):
    out = same_as_glibc([sys.executable, "-c", textwrap.dedent(PYTHON_WORKLOADS[name])], library)
    assert out.strip()


def test_malloc_is_the_librarys_in_the_program(library):
    # the preloaded library answers: its statistics, and mallinfo2's arena is its pool
    r = c_calls("""
        p = libc.malloc(1 << 20)
        print(libc.malloc_usable_size(p) >= 1 << 20)
        libc.malloc_stats()
    """, library)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True"]
    assert "tlsf_malloc statistics" in r.stderr


def test_sqlite3_runs_on_tlsf(library):
    if not shutil.which("sqlite3"):
        pytest.skip("sqlite3 is not installed")
    script = textwrap.dedent("""\
        CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, blob BLOB);
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000)
        INSERT INTO t(name, blob) SELECT printf('row-%d', x), zeroblob(x % 700) FROM c;
        CREATE INDEX t_name ON t(name);
        SELECT count(*), sum(length(blob)), max(name) FROM t;
        DELETE FROM t WHERE id % 3 = 0;
        VACUUM;
        SELECT count(*), min(name) FROM t WHERE name LIKE 'row-1%';
        """)
    out = same_as_glibc(["sqlite3", ":memory:"], library, input=script)
    assert "50000|" in out


@pytest.mark.parametrize("tool", ["gzip", "xz"])
def test_compressors_round_trip_on_tlsf(library, tmp_path, tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")
    data = tmp_path / "data.txt"
    data.write_bytes(b"".join(b"line %d of the test file, %s\n" % (i, b"ab" * (i % 40))
                              for i in range(200_000)))  # fmt: skip
    packed = on_tlsf([tool, "-k", "-9", str(data)], library)
    assert packed.returncode == 0, packed.stderr
    suffix = {"gzip": ".gz", "xz": ".xz"}[tool]
    listed = same_as_glibc([tool, "-dc", str(data) + suffix], library)
    assert listed.encode() == data.read_bytes()


def test_git_runs_on_tlsf(library, tmp_path):
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
           "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z", "HOME": str(tmp_path)}  # fmt: skip
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "one"]):
        for k in range(20):
            (repo / f"f{k}.txt").write_text("\n".join(f"{k} {i}" for i in range(200 * (len(args) + k))))
        r = on_tlsf(["git", *args], library, env=env, cwd=str(repo))
        assert r.returncode == 0, r.stderr
    full_env = {**os.environ, **env}
    for args in (["log", "--stat"], ["fsck", "--strict"], ["gc", "-q"], ["log", "-p"]):
        plain = subprocess.run(["git", *args], env=full_env, cwd=str(repo), capture_output=True, text=True)
        ours = on_tlsf(["git", *args], library, env=env, cwd=str(repo))
        assert ours.returncode == plain.returncode == 0, ours.stderr
        assert ours.stdout == plain.stdout


# ------------------------------------------------------------------ errors

INVALID_FREES = {
    "double free": "p = libc.malloc(100); libc.free(p); libc.free(p)",
    "interior pointer": "p = libc.malloc(100); libc.free(p + 16)",
    "never allocated": "b = ctypes.create_string_buffer(64); libc.free(ctypes.addressof(b) + 16)",
    "misaligned": "p = libc.malloc(100); libc.free(p + 1)",
    "far outside": "libc.free(0x10)",
    "realloc of a freed block": "p = libc.malloc(100); libc.free(p); libc.realloc(p, 200)",
}


@pytest.mark.parametrize("case", sorted(INVALID_FREES))
def test_an_invalid_free_aborts_like_glibc(library, case):
    r = c_calls(INVALID_FREES[case] + "\nprint('not reached')", library)
    assert r.returncode == -signal.SIGABRT, (r.returncode, r.stderr)
    call = "realloc" if "realloc" in case else "free"
    assert f"{call}(): invalid pointer" in r.stderr
    assert "not reached" not in r.stdout


@pytest.mark.parametrize("case", sorted(INVALID_FREES))
def test_an_invalid_free_is_ignored_with_the_check_off(library, case):
    r = c_calls(INVALID_FREES[case] + "\nq = libc.malloc(64); libc.free(q); print('went on')", library,
                env={"TLSF_MALLOC_CHECK": "0"})  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "went on"


def test_a_scribbled_header_aborts(library):
    # the program writes past its block over the next one's header: found at the next free
    r = c_calls("""
        blocks = sorted(libc.malloc(40) for _ in range(100))
        # two neighbours: p's 48 bytes, then q's 16-byte header
        p, q = next((p, q) for p, q in zip(blocks, blocks[1:]) if q - p == 64)
        ctypes.memset(p, 0x5A, q - p)
        libc.free(q)
        print("not reached")
    """, library, env={"TLSF_MALLOC_CHECK": "0"})
    assert r.returncode == -signal.SIGABRT, (r.returncode, r.stderr)
    assert "tlsf_malloc: heap corruption detected" in r.stderr


def test_sizes_that_overflow_fail_cleanly(library):
    r = c_calls("""
        import errno
        big = 1 << 63
        def fails(p, want=errno.ENOMEM):
            err = ctypes.get_errno()
            ctypes.set_errno(0)
            return p is None and err == want
        ctypes.set_errno(0)
        print(fails(libc.calloc(big, 4)), fails(libc.calloc(3, big // 2 + 1)))
        p = libc.malloc(64)
        print(fails(libc.reallocarray(p, big, 2)), libc.malloc_usable_size(p) >= 64)
        print(fails(libc.malloc(big)), fails(libc.realloc(p, big)), fails(libc.pvalloc(2**64 - 100)))
        out = c_void_p(7)
        print(libc.posix_memalign(ctypes.byref(out), 24, 100),
              libc.posix_memalign(ctypes.byref(out), 4, 100),
              libc.posix_memalign(ctypes.byref(out), 64, big), out.value)
        print(fails(libc.aligned_alloc(48, 96), errno.EINVAL),
              fails(libc.memalign(2**63 + 1, 8), errno.EINVAL))
        libc.free(p)
    """, library)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["True True", "True True", "True True True"]
    assert lines[3] == "22 22 12 7"  # EINVAL, EINVAL, ENOMEM; *out untouched
    assert lines[4] == "True True"


def test_the_malloc_family_keeps_its_promises(library):
    r = c_calls("""
        page = 4096
        ok = []
        p = libc.malloc(0); ok.append(p is not None); libc.free(p)
        for align in (16, 64, 4096, 1 << 16):
            out = c_void_p()
            ok.append(libc.posix_memalign(ctypes.byref(out), align, 1000) == 0 and out.value % align == 0)
            libc.free(out)
            q = libc.aligned_alloc(align, 3 * align); ok.append(q % align == 0); libc.free(q)
        q = libc.memalign(48, 10); ok.append(q % 64 == 0); libc.free(q)  # rounded up, as glibc does
        q = libc.valloc(10); ok.append(q % page == 0); libc.free(q)
        q = libc.pvalloc(10); ok.append(q % page == 0 and libc.malloc_usable_size(q) >= page); libc.free(q)
        # realloc keeps the contents, growing and shrinking; realloc(p, 0) frees
        q = libc.malloc(100); ctypes.memmove(q, b"x" * 100, 100)
        q = libc.realloc(q, 100_000); ok.append(ctypes.string_at(q, 100) == b"x" * 100)
        q = libc.realloc(q, 10); ok.append(ctypes.string_at(q, 10) == b"x" * 10)
        ok.append(libc.realloc(q, 0) is None)
        ok.append(libc.realloc(None, 10) is not None)
        # calloc zeroes memory that held other bytes
        blocks = [libc.malloc(n) for n in range(1, 20_000, 97)]
        for b, n in zip(blocks, range(1, 20_000, 97)):
            ctypes.memset(b, 0xAB, n)
        for b in blocks:
            libc.free(b)
        for n in range(1, 20_000, 89):
            c = libc.calloc(1, n); ok.append(ctypes.string_at(c, n) == bytes(n))
        print("failed:", [i for i, v in enumerate(ok) if not v])
    """, library)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "failed: []"


def test_threads_whose_arena_cannot_be_made_use_another(library):
    # address space for one arena only: the other threads' arenas cannot be
    # reserved, and their allocations come from the one that exists
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))

    code = PRELUDE + textwrap.dedent("""
        import threading
        got = []
        def work():
            got.append(all(libc.malloc(100) for _ in range(100)))
        ts = [threading.Thread(target=work) for _ in range(8)]
        for t in ts: t.start()
        for t in ts: t.join()
        print(got.count(True))
    """)
    full = environment()
    r = subprocess.run([sys.executable, "-c", code], env=full, preexec_fn=limit, capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "8"


def test_malloc_trim_gives_free_pages_back(library):
    # with the threshold off a free keeps its pages; malloc_trim gives them back, once
    r = c_calls("""
        p = libc.malloc(8 << 20)
        ctypes.memset(p, 1, 8 << 20)
        libc.free(p)
        print(libc.malloc_trim(0), libc.malloc_trim(0))
    """, library, env={"TLSF_MALLOC_TRIM": "off"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "0"]


def test_statistics_at_exit(library):
    r = on_tlsf([sys.executable, "-c", "x = [bytes(1000) for _ in range(10000)]"], library,
                env={"TLSF_MALLOC_STATS": "1"})  # fmt: skip
    assert r.returncode == 0
    figures = {line.split()[0]: line.split() for line in r.stderr.splitlines()[1:]}
    # the list's bytes objects (too large for pymalloc) were live at once: their mallocs and frees
    assert int(figures["peak"][2]) >= 10000 * 1000
    assert int(figures["operations"][1]) >= 20000
    assert "fragmentation" in figures


def test_fork_children_keep_allocating(library):
    r = on_tlsf([sys.executable, "-c", textwrap.dedent("""
        import os, threading
        stop = False
        def churn():
            while not stop:
                [bytes(1000 + i) for i in range(200)]
        ts = [threading.Thread(target=churn) for _ in range(3)]
        for t in ts: t.start()
        codes = []
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                os._exit(0 if len({i: str(i) * 50 for i in range(20000)}) == 20000 else 1)
            codes.append(os.waitpid(pid, 0)[1])
        stop = True
        for t in ts: t.join()
        print(codes == [0] * 20)
    """)], library)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True"]


# ----------------------------------------------------------------- traces


def test_a_recorded_trace_replays_through_a_heap(library, tmp_path):
    trace = tmp_path / "prog.trc"
    # 5,000 blocks too large for pymalloc, half of them freed; a list that grows by realloc
    code = "x = [bytes(600 + i % 1000) for i in range(5000)]; del x[::2]; print(sum(map(len, x)))"
    r = subprocess.run([sys.executable, "-m", "tlsf", "run", "--trace", str(trace), "--",
                        sys.executable, "-c", code], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout == plain.stdout
    with open(trace, "rb") as f:
        magic, n_ops, n_ids = HEADER.unpack(f.read(HEADER.size))
    assert magic == MAGIC
    assert os.path.getsize(trace) == HEADER.size + n_ops * RECORD.size
    ops = records(read_trace(str(trace)), None)
    assert len(ops) == n_ops
    assert max(op[1] for op in ops) < n_ids
    # replayed through a Heap: every free and realloc names a live id, every call succeeds
    heap = tlsf.Heap(bytearray(trace_capacity(ops)))
    live: dict[int, int] = {}
    done = {ALLOC: 0, FREE: 0, 2: 0}
    for op, ident, size, align in ops:
        if op == ALLOC:
            assert ident not in live
            live[ident] = heap.alloc(size, align)
        elif op == FREE:
            heap.free(live.pop(ident))
        else:
            live[ident] = heap.realloc(live[ident], size)
        done[op] += 1
    assert sum(done.values()) == n_ops
    assert done[ALLOC] >= 5000 and done[FREE] >= 2500 and done[2] > 0
    heap.check()
    # and the bench replays it through every allocator
    r = subprocess.run([sys.executable, "-m", "tlsf", "bench", "--trace", str(trace), "--rounds", "1",
                        "--ops", "5000"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"trace {trace}: 5,000 operations" in r.stdout


def test_each_process_writes_its_own_trace(library, tmp_path):
    trace = tmp_path / "t.trc"
    code = ("import os, subprocess, sys\n"
            "pid = os.fork()\n"
            "if pid == 0:\n    x = [bytes(i) for i in range(3000)]; os._exit(0)\n"
            "os.waitpid(pid, 0)\n"
            "subprocess.run([sys.executable, '-c', 'print(len(str(list(range(9999)))))'], check=True)\n"
            "print(pid)")  # fmt: skip
    r = subprocess.run([sys.executable, "-m", "tlsf", "run", "--trace", str(trace), "--",
                        sys.executable, "-c", code], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    child = r.stdout.split()[-1]
    names = sorted(os.listdir(tmp_path))
    assert "t.trc" in names and f"t.trc.{child}" in names and len(names) == 3, names
    for name in names:
        ops = records(read_trace(str(tmp_path / name)), None)
        live: set[int] = set()
        for op, ident, _, _ in ops:  # each file is a whole trace: frees name ids it allocated
            if op == ALLOC:
                assert ident not in live
                live.add(ident)
            elif op == FREE:
                live.remove(ident)
            else:
                assert ident in live


def test_run_reports_its_errors(library):
    r = subprocess.run([sys.executable, "-m", "tlsf", "run"], capture_output=True, text=True)
    assert r.returncode == 2 and "no command" in r.stderr
    r = subprocess.run([sys.executable, "-m", "tlsf", "run", "--", "/nonexistent/program"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 127 and "/nonexistent/program" in r.stderr
    r = subprocess.run([sys.executable, "-m", "tlsf", "run", "--trim", "lots", "--", "true"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2 and "--trim" in r.stderr
    r = subprocess.run([sys.executable, "-m", "tlsf", "run", "--", "sh", "-c", "exit 3"])
    assert r.returncode == 3
