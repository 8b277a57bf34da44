"""libtlsf_malloc.so against glibc, jemalloc, mimalloc and tcmalloc on real programs.

    python benchmarks/malloc/run.py [--rounds R] [--quick] [--json FILE]

Allocators. Each is put under the program the same way, by LD_PRELOAD of its
shared library: ``glibc`` preloads nothing; ``tlsf`` is tlsf.malloc_library()
(or --tlsf-library); jemalloc, mimalloc and tcmalloc are Debian's
(libjemalloc2, libmimalloc2.0, libtcmalloc-minimal4). One whose library is
missing is listed as "not installed". Rows named ``tlsf trim=off`` and
``tlsf trim=16M`` are tlsf with TLSF_MALLOC_TRIM=off and =16777216 (fixed
thresholds; the default starts at 1 MiB and rises to at most 64 MiB as
frees give pages back), on python-alloc and cpython-tests;
``tlsf trace`` is tlsf recording the allocation trace (TLSF_TRACE, written to
a temporary folder as FILE.<pid> and deleted), on python-alloc.

Workloads, each a process (a command line):

- cpython-tests: ``python -m test -q`` on a fixed selection of CPython's own
  tests, in one process (no -j: worker processes would split the memory).
- python-alloc: python_alloc.py beside this file (dicts, lists, strings, JSON,
  bytes of 16 B .. 4 MiB: the objects too large for pymalloc reach malloc).
- sqlite3: Debian's sqlite3 shell on an in-memory database: a generated
  script inserts 200,000 rows of random text and blobs in one transaction,
  builds two indexes, runs aggregates, a sort, a join and a self-join,
  deletes half the rows and vacuums.
- threads T=1, T=2, T=8: threads.c beside this file (built by make): T
  threads of random malloc/free of 16 B .. 4 KiB with 1 block in 8 freed by
  another thread. This machine has 2 cores: T=2 ÷ T=1 is the scaling, T=8 is
  oversubscribed.

Method. Every run goes through measure.c (built here by make with threads.c):
a small launcher that forks the program, times it from the fork to its exit
(CLOCK_MONOTONIC) and takes its peak resident memory from ru_maxrss of the
rusage that wait4 gives for that one child (with its own waited-for
children, if any). Not os.wait4 from this script: a child's ru_maxrss starts
at the resident size of the process it was forked from (exec records the
replaced address space's peak), so every program started from Python would
show at least this interpreter's ~15 MiB; from the launcher, about 1 MiB.
The launcher itself runs on glibc: LD_PRELOAD and the TLSF_* settings are
put into the program's environment only.
Rounds are interleaved, so that a slow patch of a shared machine hits every
allocator alike: round 1 runs every workload under every allocator, then
round 2, ...; within a round, the allocators' order is rotated by one each
round. Reported per allocator and workload: the median wall time over the
rounds, its min-max, its ratio to glibc's median, the median peak RSS and its
ratio to glibc's. The threads table gives the program's own ops/s (the
medians; its clock excludes process start and exit) and the scaling. Each
run's exit status is checked, and its stdout, with the lines that depend on
time and scheduling taken out, against glibc's first run of the same
workload; a failure or a difference is reported as a warning line, with the
command and stderr. Failed runs count in no median. Processes are not
pinned to a CPU (threads must be able to use both). Every run gets
PYTHONHASHSEED=0 and an environment without LD_PRELOAD or TLSF_* variables
other than its own. The load average before and after is printed: on a
shared machine, read the ratios within one run rather than absolute times.
Exit status 1 if any run failed or differed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
MEASURE = os.path.join(HERE, "measure")  # measure.c: runs one program, writes its figures
LIBDIR = "/usr/lib/x86_64-linux-gnu"
PEERS = (
    ("jemalloc", "libjemalloc.so.2"),
    ("mimalloc", "libmimalloc.so.2"),
    ("tcmalloc", "libtcmalloc_minimal.so.4"),
)
CPYTHON_TESTS = (
    "test_dict",
    "test_list",
    "test_set",
    "test_json",
    "test_re",
    "test_bytes",
    "test_unicode",
    "test_decimal",
    "test_array",
)
CPYTHON_TESTS_QUICK = ("test_dict", "test_list", "test_json")
THREADS_OPS = 5_000_000  # per thread
TRIM_ROWS = {"tlsf trim=off": "off", "tlsf trim=16M": str(16 << 20)}
TRACE_ROW = "tlsf trace"

SQL = """\
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, body BLOB, n REAL);
CREATE TABLE g(grp INTEGER PRIMARY KEY, label TEXT);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})
INSERT INTO t SELECT x, x * 7919 % 1000, hex(randomblob(4 + (x * 1103515245 + 12345) % 61)),
  randomblob(16 + x * 2654435761 % 1000), x % 997 * 0.5 FROM c;
WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 999)
INSERT INTO g SELECT x, printf('group %d', x) FROM c;
COMMIT;
CREATE INDEX t_name ON t(name);
CREATE INDEX t_grp ON t(grp, n);
SELECT count(*), sum(length(name)), sum(length(body)), sum(n) FROM t;
SELECT g.label, count(*), sum(t.n), max(length(t.body)) FROM t JOIN g USING (grp)
  GROUP BY grp ORDER BY sum(t.n) DESC, grp LIMIT 5;
SELECT count(*), sum(length(b)) FROM (SELECT body AS b FROM t ORDER BY body);
SELECT grp, length(group_concat(name, ',')) FROM t WHERE grp < 5 GROUP BY grp;
SELECT count(*) FROM t a JOIN t b ON a.id = b.id + 1 AND a.grp < b.grp;
DELETE FROM t WHERE id % 2 = 0;
VACUUM;
SELECT count(*), sum(length(name)), sum(length(body)) FROM t;
"""


# ----------------------------------------------------------------- allocators


@dataclass(frozen=True)
class Row:
    """One allocator configuration: a row of every table."""

    name: str
    library: str | None  # preloaded; None: glibc's malloc
    env: dict[str, str] = field(default_factory=dict)
    missing: str | None = None  # why it cannot run
    trace: bool = False  # TLSF_TRACE into a temporary folder
    variant: bool = False  # run only on the workloads that name it (Workload.extra_rows)
    source: str | None = None  # where `library` was copied from

    def shown(self) -> str:
        """The library as the reader knows it."""
        return self.source or self.library or self.missing or "-"


def tlsf_library(override: str | None) -> tuple[str | None, str | None]:
    """(path, None), or (None, why not) when there is no libtlsf_malloc.so."""
    if override:
        return (override, None) if os.path.exists(override) else (None, f"{override}: not found")
    try:
        import tlsf

        return tlsf.malloc_library(), None
    except (ImportError, FileNotFoundError, AttributeError) as e:
        return None, f"not installed ({e})"


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def allocator_rows(tlsf_override: str | None, tmp: str) -> list[Row]:
    """glibc, tlsf, the peers; then the tlsf variants.

    libtlsf_malloc.so is copied into tmp first and run from there: a rebuild
    of the original during the benchmark (an editable install being worked
    on) must not mix two builds in one table."""
    rows = [Row("glibc", None)]
    source, why = tlsf_library(tlsf_override)
    copy = None
    if source:
        copy = os.path.join(tmp, os.path.basename(source))
        shutil.copy2(source, copy)
    rows.append(Row("tlsf", copy, missing=why, source=source))
    for name, lib in PEERS:
        full = os.path.join(LIBDIR, lib)
        rows.append(Row(name, full) if os.path.exists(full) else Row(name, None, missing="not installed"))
    for name, trim in TRIM_ROWS.items():
        rows.append(Row(name, copy, {"TLSF_MALLOC_TRIM": trim}, missing=why, variant=True, source=source))
    rows.append(Row(TRACE_ROW, copy, missing=why, trace=True, variant=True, source=source))
    return rows


# ------------------------------------------------------------------ workloads


def drop_lines(*prefixes: str) -> Callable[[str], str]:
    """A normaliser that removes the lines beginning with any of prefixes."""

    def normalise(out: str) -> str:
        return "".join(line for line in out.splitlines(keepends=True) if not line.startswith(prefixes))

    return normalise


def normalise_regrtest(out: str) -> str:
    """regrtest's output without its seed, clock, load average and durations."""
    lines = []
    for line in out.splitlines(keepends=True):
        if line.startswith(("Using random seed", "Total duration")):
            continue
        line = re.sub(r"^\d+:\d\d:\d\d (load avg: [\d.]+ )?", "", line)
        lines.append(re.sub(r"\d+(\.\d+)? (sec|ms)\b", "<time>", line))
    return "".join(lines)


@dataclass(frozen=True)
class Workload:
    name: str
    argv: list[str]
    stdin: str | None = None  # a file fed as standard input
    normalise: Callable[[str], str] = lambda out: out
    extra_rows: tuple[str, ...] = ()  # the tlsf variants run on this one
    threads: int | None = None  # threads.c's T
    missing: str | None = None

    def has(self, row: Row) -> bool:
        """Whether row is one of this workload's rows."""
        return not row.variant or row.name in self.extra_rows


def workloads(python: str, tmp: str, quick: bool) -> list[Workload]:
    tests = CPYTHON_TESTS_QUICK if quick else CPYTHON_TESTS
    sql = os.path.join(tmp, "workload.sql")
    with open(sql, "w") as f:
        f.write(SQL.format(rows=50_000 if quick else 200_000))
    sqlite = shutil.which("sqlite3")
    threads_ops = THREADS_OPS // 5 if quick else THREADS_OPS
    out = [
        Workload(
            "cpython-tests",
            [python, "-m", "test", "-q", *tests],
            normalise=normalise_regrtest,
            extra_rows=tuple(TRIM_ROWS),
        ),
        Workload(
            "python-alloc",
            [python, os.path.join(HERE, "python_alloc.py"), "--scale", "0.3" if quick else "1"],
            extra_rows=(*TRIM_ROWS, TRACE_ROW),
        ),
        Workload(
            "sqlite3",
            [sqlite or "sqlite3", ":memory:"],
            stdin=sql,
            missing=None if sqlite else "sqlite3 not installed (apt-get install sqlite3)",
        ),
    ]
    threads = os.path.join(HERE, "threads")
    for t in (1, 2, 8):
        out.append(
            Workload(
                f"threads T={t}",
                [threads, str(t), str(threads_ops)],
                normalise=drop_lines("cross-thread frees", "seconds", "ops/s"),
                threads=t,
            )
        )
    return out


# ----------------------------------------------------------------------- runs


@dataclass
class Run:
    round: int
    workload: str
    row: str
    seconds: float
    maxrss_kib: int
    user_s: float
    sys_s: float
    status: int  # exit code, or -signal
    stdout_matches: bool | None = None  # against glibc's first run; None: not compared
    ops_per_s: float | None = None  # threads
    cross_thread_frees: int | None = None  # threads
    trace_bytes: int | None = None
    stderr_tail: str = ""
    stdout: str = field(default="", repr=False)  # normalised


def base_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("TLSF_")}
    env["PYTHONHASHSEED"] = "0"
    return env


def run_once(w: Workload, row: Row, rnd: int, tmp: str) -> Run:
    child_env = dict(row.env)  # set by measure.c in the program's environment only
    if row.library:
        child_env["LD_PRELOAD"] = row.library
    trace_dir = None
    if row.trace:
        trace_dir = tempfile.mkdtemp(prefix="trace-", dir=tmp)
        child_env["TLSF_TRACE"] = os.path.join(trace_dir, "trace")
    settings = [a for k, v in child_env.items() for a in ("-e", f"{k}={v}")]
    work = os.path.join(tmp, "cwd")
    os.makedirs(work, exist_ok=True)
    out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
    figures_path = os.path.join(tmp, "figures")
    if os.path.exists(figures_path):
        os.remove(figures_path)
    with open(w.stdin or os.devnull, "rb") as stdin, open(out_path, "wb") as out, open(err_path, "wb") as err:
        subprocess.run(
            [MEASURE, figures_path, *settings, *w.argv],
            stdin=stdin,
            stdout=out,
            stderr=err,
            env=base_environment(),
            cwd=work,
        )
    with open(figures_path) as f:  # written by measure.c (missing: the launcher itself failed)
        figures = {key: float(value) for key, value in (line.split() for line in f)}
    with open(out_path, encoding="utf-8", errors="replace") as f:
        stdout = f.read()
    with open(err_path, encoding="utf-8", errors="replace") as f:
        stderr = f.read()
    trace_bytes = None
    if trace_dir:
        trace_bytes = sum(os.path.getsize(os.path.join(trace_dir, n)) for n in os.listdir(trace_dir))
        shutil.rmtree(trace_dir)
    r = Run(
        rnd,
        w.name,
        row.name,
        figures["seconds"],
        int(figures["maxrss_kib"]),
        figures["user_s"],
        figures["sys_s"],
        int(figures["status"]),
        trace_bytes=trace_bytes,
        stderr_tail=stderr[-4000:],
        stdout=w.normalise(stdout),
    )
    if w.threads is not None:
        m = re.search(r"^ops/s (\d+)", stdout, re.M)
        r.ops_per_s = float(m.group(1)) if m else None
        m = re.search(r"^cross-thread frees (\d+)", stdout, re.M)
        r.cross_thread_frees = int(m.group(1)) if m else None
    return r


def describe_status(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name} ({status})"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def command_line(w: Workload, row: Row) -> str:
    env = ([f"LD_PRELOAD={row.shown()}"] if row.library else []) + [f"{k}={v}" for k, v in row.env.items()]
    if row.trace:
        env.append("TLSF_TRACE=<tmp>/trace")
    cmd = " ".join([*env, *w.argv])
    return cmd + (f" < {w.stdin}" if w.stdin else "")


def check(ws: list[Workload], rows: list[Row], runs: list[Run]) -> list[str]:
    """Sets each run's stdout_matches; a warning for each failed or differing run."""
    warnings = []
    row_of = {row.name: row for row in rows}
    for w in ws:
        mine = [r for r in runs if r.workload == w.name]
        ref = next((r for r in mine if r.row == "glibc" and r.status == 0), None)
        shown: set[tuple[str, str]] = set()  # (row, stderr) already printed
        for r in mine:
            if ref is not None and r.status == 0:
                r.stdout_matches = r.stdout == ref.stdout
            if r.status == 0 and r.stdout_matches is not False:
                continue
            what = describe_status(r.status) if r.status != 0 else "stdout differs from glibc's"
            text = f"WARNING: {w.name} under {r.row}, round {r.round}: {what}\n"
            text += f"  command: {command_line(w, row_of[r.row])}\n"
            if (r.row, r.stderr_tail) in shown:
                text += "  (the same stderr as above)\n"
            else:
                shown.add((r.row, r.stderr_tail))
                tail = r.stderr_tail.splitlines()[-20:]
                text += "".join(f"  stderr| {line}\n" for line in tail) if tail else "  (no stderr)\n"
            warnings.append(text)
    return warnings


# -------------------------------------------------------------------- reports


def median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def summarise(ws: list[Workload], rows: list[Row], runs: list[Run]) -> dict[str, Any]:
    """Per workload and row: the medians and ranges of the successful runs."""
    out: dict[str, Any] = {}
    for w in ws:
        per: dict[str, Any] = {}
        for row in rows:
            mine = [r for r in runs if r.workload == w.name and r.row == row.name]
            ok = [r for r in mine if r.status == 0]
            secs = [r.seconds for r in ok]
            ops = [r.ops_per_s for r in ok if r.ops_per_s is not None]
            per[row.name] = {
                "runs": len(mine),
                "failed": len(mine) - len(ok),
                "mismatched": sum(r.stdout_matches is False for r in mine),
                "median_s": median(secs),
                "min_s": min(secs) if secs else None,
                "max_s": max(secs) if secs else None,
                "median_maxrss_mib": median([r.maxrss_kib / 1024 for r in ok]),
                "median_ops_per_s": median(ops),
                "median_cpus_busy": median([(r.user_s + r.sys_s) / r.seconds for r in ok if r.seconds > 0]),
                "median_trace_mib": median([r.trace_bytes / 2**20 for r in ok if r.trace_bytes is not None]),
            }
        out[w.name] = per
    return out


def report(ws: list[Workload], rows: list[Row], summary: dict[str, Any], rounds: int) -> str:
    parts = []
    for w in ws:
        if w.missing:
            parts.append(f"== {w.name}: skipped, {w.missing}")
            continue
        s = summary[w.name]
        base = s["glibc"]
        lines = []
        for row in rows:
            if not w.has(row):
                continue
            if row.missing:
                lines.append([row.name, row.missing, "", "", "", "", ""])
                continue
            x = s[row.name]
            notes = []
            if x["failed"]:
                notes.append(f"{x['failed']}/{x['runs']} FAILED")
            if x["mismatched"]:
                notes.append(f"{x['mismatched']}/{x['runs']} stdout differs")
            if x["median_trace_mib"] is not None:
                notes.append(f"trace {x['median_trace_mib']:.0f} MiB")
            rng = f"{x['min_s']:.2f}-{x['max_s']:.2f}" if x["min_s"] is not None else "-"
            med = f"{x['median_s']:.2f}" if x["median_s"] is not None else "-"
            rss = x["median_maxrss_mib"]
            lines.append(
                [
                    row.name,
                    med,
                    rng,
                    ratio(x["median_s"], base["median_s"]),
                    f"{rss:.1f}" if rss is not None else "-",
                    ratio(rss, base["median_maxrss_mib"]),
                    ", ".join(notes),
                ]
            )
        parts.append(
            f"== {w.name} ({rounds} rounds): {' '.join(w.argv)}"
            + (f" < {os.path.basename(w.stdin)}" if w.stdin else "")
        )
        parts.append(
            table(
                ["allocator", "median s", "min-max s", "x glibc", "peak RSS MiB", "RSS x glibc", "notes"],
                lines,
            )
        )

    tw = [w for w in ws if w.threads is not None]
    if tw:
        lines = []
        for row in rows:
            if row.variant:
                continue
            if row.missing:
                lines.append([row.name, row.missing] + [""] * (len(tw) + 1))
                continue
            ops = {w.threads: summary[w.name][row.name]["median_ops_per_s"] for w in tw}
            cells = [f"{ops[w.threads] / 1e6:.2f}" if ops[w.threads] else "-" for w in tw]
            busy = [summary[w.name][row.name]["median_cpus_busy"] for w in tw if w.threads != 1]
            lines.append(
                [
                    row.name,
                    *cells,
                    ratio(ops.get(2), ops.get(1)),
                    ratio(ops.get(8), ops.get(1)),
                    *(f"{b:.2f}" if b is not None else "-" for b in busy),
                ]
            )
        parts.append(
            f"== threads: millions of malloc+free per second (median over {rounds} rounds; "
            f"{tw[0].argv[2]} operations per thread)"
        )
        header = ["allocator", *(f"T={w.threads}" for w in tw), "T=2 / T=1", "T=8 / T=1"]
        header += [f"CPUs busy T={w.threads}" for w in tw if w.threads != 1]
        parts.append(table(header, lines))
        parts.append(
            "CPUs busy: (user + sys CPU time) / wall time of the whole process; below 2 at T=2, the two "
            "threads did not run side by side all the time (another load on the machine, or a lock)."
        )

    pa = summary.get("python-alloc", {})
    if "tlsf" in pa and TRACE_ROW in pa and pa["tlsf"]["median_s"] and pa[TRACE_ROW]["median_s"]:
        a, b = pa[TRACE_ROW], pa["tlsf"]
        parts.append(
            f"== trace overhead (python-alloc): tlsf with TLSF_TRACE {a['median_s']:.2f} s / "
            f"tlsf {b['median_s']:.2f} s = {a['median_s'] / b['median_s']:.2f}x time, "
            f"{ratio(a['median_maxrss_mib'], b['median_maxrss_mib'])}x peak RSS, "
            f"trace file {a['median_trace_mib']:.0f} MiB"
        )
    return "\n\n".join(parts)


# ----------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 5, 2 with --quick)")
    p.add_argument("--quick", action="store_true", help="smaller workloads, fewer tests")
    p.add_argument("--json", metavar="FILE", help="write every run's figures and the summary here")
    p.add_argument("--python", default=sys.executable, help="the interpreter of the Python workloads")
    p.add_argument("--tlsf-library", metavar="PATH", help="libtlsf_malloc.so (default tlsf.malloc_library())")
    p.add_argument(
        "--only",
        metavar="NAME",
        action="append",
        help="run only this workload (repeatable; 'threads' for all three)",
    )
    args = p.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)

    subprocess.run(["make", "-s", "-C", HERE], check=True)
    load_before = os.getloadavg()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="malloc-bench-") as tmp:
        rows = allocator_rows(args.tlsf_library, tmp)
        tlsf_row = rows[1]
        tlsf_build = (
            f"{tlsf_row.source} (sha256 {sha256(tlsf_row.library)[:16]}, built "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(os.path.getmtime(tlsf_row.library)))})"
            if tlsf_row.library
            else tlsf_row.shown()
        )
        ws = workloads(args.python, tmp, args.quick)
        if args.only:
            ws = [w for w in ws if w.name in args.only or (w.threads and "threads" in args.only)]
        print(
            "allocators: " + ", ".join(f"{r.name}={r.shown()}" for r in rows),
            file=sys.stderr,
        )
        runs: list[Run] = []
        for rnd in range(rounds):
            for w in ws:
                if w.missing:
                    continue
                active = [r for r in rows if w.has(r) and not r.missing]
                k = rnd % len(active)
                for row in active[k:] + active[:k]:
                    r = run_once(w, row, rnd + 1, tmp)
                    runs.append(r)
                    print(
                        f"round {rnd + 1}/{rounds}  {w.name:14} {row.name:14} {r.seconds:7.2f} s "
                        f"{r.maxrss_kib / 1024:8.1f} MiB"
                        + ("" if r.status == 0 else f"  {describe_status(r.status)}"),
                        file=sys.stderr,
                        flush=True,
                    )

    warnings = check(ws, rows, runs)

    summary = summarise(ws, rows, runs)
    load_after = os.getloadavg()
    print()
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"{(time.time() - started) / 60:.1f} minutes"
    )
    print(f"tlsf: {tlsf_build}")
    for line in warnings:
        print(line)
    print(report(ws, rows, summary, rounds))
    if args.json:
        data = {
            "rounds": rounds,
            "quick": args.quick,
            "python": args.python,
            "cpus": os.cpu_count(),
            "load_average": {"before": load_before, "after": load_after},
            "allocators": [asdict(r) for r in rows],
            "tlsf_build": tlsf_build,
            "workloads": [{"name": w.name, "argv": w.argv, "missing": w.missing} for w in ws],
            "runs": [{k: v for k, v in asdict(r).items() if k != "stdout"} for r in runs],
            "summary": summary,
            "warnings": warnings,
        }
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    return 1 if warnings else 0


if __name__ == "__main__":
    sys.exit(main())
