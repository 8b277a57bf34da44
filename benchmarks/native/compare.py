"""Each engine against glibc in one run, and its instructions per operation.

    make -C benchmarks/native
    python benchmarks/native/compare.py [--traces mixed small rlsf-stress] [--runs 7] [--no-callgrind]

For each trace: the native bench's median ns per operation of every
allocator and its ratio to glibc's, measured in the same process (so a busy
or slow machine moves both); then, under callgrind, the instructions per
operation of each engine (the replay loop's own, the `null` allocator's,
subtracted) and optionally its last-level misses per operation (--cache,
a 1 MiB last level as the project's figures use). Pinned to one core with
taskset when the machine has it. The figures to judge a change of the core
against (issue 16's targets); they go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))

from tlsf.workloads import WORKLOADS, write_trace  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "bench")
ENGINES = ("tlsf", "offset")


def pinned(argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(os.cpu_count() - 1 if os.cpu_count() else 0), *argv] \
        if shutil.which("taskset") else argv


def times(trace: str, runs: int) -> dict[str, float]:
    """Median ns per operation of every allocator in one run of the bench."""
    out = subprocess.run(pinned([BENCH, trace, "--runs", str(runs)]), capture_output=True, text=True,
                         check=True).stdout
    found = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) == 9 and re.fullmatch(r"[\d.]+", words[1]):
            found[words[0]] = float(words[1])
    return found


def instructions(trace: str, allocator: str, cache: bool) -> tuple[int, int, int]:
    """(instructions, last-level misses, operations) of one instrumented replay."""
    with tempfile.TemporaryDirectory() as tmp:
        out_file = os.path.join(tmp, "callgrind.out")
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out_file}"]
        if cache:
            argv += ["--cache-sim=yes", "--LL=1048576,16,64"]
        run = subprocess.run([*argv, BENCH, trace, "--callgrind", allocator], capture_output=True, text=True,
                             check=True)
        ops = int(re.search(r"(\d+) operations replayed", run.stdout).group(1))  # type: ignore[union-attr]
        with open(out_file) as f:
            text = f.read()
    events = re.search(r"^events: (.*)$", text, re.M).group(1).split()  # type: ignore[union-attr]
    # "totals:" is what was collected; "summary:" can be 0 with --instr-atstart=no
    counts = re.search(r"^totals: (.*)$", text, re.M).group(1).split()  # type: ignore[union-attr]
    totals = dict(zip(events, map(int, counts)))
    return totals["Ir"], totals.get("DLmr", 0) + totals.get("DLmw", 0) + totals.get("ILmr", 0), ops


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--traces", nargs="+", default=["rlsf-stress", "small", "mixed"],
                   choices=sorted(WORKLOADS))
    p.add_argument("--runs", type=int, default=7, help="timed replays per allocator (median; at most 64)")
    p.add_argument("--no-callgrind", action="store_true", help="times only")
    p.add_argument("--cache", action="store_true", help="also last-level misses per operation (slower)")
    a = p.parse_args()
    if not os.access(BENCH, os.X_OK):
        p.error(f"{BENCH} is not built: make -C benchmarks/native")
    if not a.no_callgrind and not shutil.which("valgrind"):
        p.error("valgrind is not installed (apt-get install valgrind), or pass --no-callgrind")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.traces:
            trace = os.path.join(tmp, f"{name}.trc")
            write_trace(name, trace)
            t = times(trace, a.runs)
            row = {"trace": name, **{f"{k} ns": v for k, v in t.items()},
                   **{f"{e} / glibc": t[e] / t["glibc"] for e in ENGINES}}
            if not a.no_callgrind:
                base, base_misses, ops = instructions(trace, "null", a.cache)
                for e in ENGINES:
                    ir, misses, _ = instructions(trace, e, a.cache)
                    row[f"{e} instr/op"] = (ir - base) / ops
                    if a.cache:
                        row[f"{e} LL misses/op"] = (misses - base_misses) / ops
            rows.append(row)
            print(f"{name}: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in row.items() if k != "trace"), flush=True)
    columns = [k for k in rows[0] if k != "trace"]
    print("\n| trace | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for row in rows:
        print(f"| {row['trace']} | " + " | ".join(f"{row[c]:.3g}" if c.endswith("glibc") or "misses" in c
                                                 else f"{row[c]:.1f}" for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
