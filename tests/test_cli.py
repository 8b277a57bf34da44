"""python -m tlsf and its subcommands: each runs, --json files hold what they
say, and a bad argument is one line on stderr and exit status 2, before any
work is done."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import tlsf
from tlsf.__main__ import SUBCOMMANDS, main
from tlsf.workloads import write_trace


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tlsf", *args], capture_output=True, text=True, timeout=600)


def test_help_lists_every_subcommand_and_version() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for name in SUBCOMMANDS:
        assert f"\n  {name} " in out.stdout, name
    version = run_cli("--version")
    assert version.returncode == 0
    assert version.stdout.startswith(f"tlsf {tlsf.__version__} ({tlsf.IMPLEMENTATION})")


@pytest.mark.parametrize("args", [
    ["--ops", "-5"], ["--ops", "0"], ["--capacity", "100"], ["--ops", "x"], ["--workload", "nosuch"],
    ["bench", "--ops", "-5"], ["bench", "--rounds", "0"], ["bench", "--capacity", "100", "--ops", "1000"],
    ["bench", "--json", "/nonexistent/x.json"], ["bench", "--trace", "/nonexistent.trc"],
    ["bench", "--shared", "0"], ["bench", "--numpy", "-1"], ["bench", "--trim", "0"],
    ["replay", "nosuch"], ["replay", "mixed", "--ops", "0"], ["replay", "mixed", "--allocator", "nosuch"],
    ["replay", "mixed", "--json", "/nonexistent/x.json"], ["replay", "mixed", "--capacity", "1000"],
    ["replay", "mixed", "--native", "/nonexistent/bench"],
    ["map", "small", "--width", "0"], ["map", "small", "--at", "-1"],
    ["map", "small", "--plot", "/nonexistent/m.png"],
])
def test_bad_arguments_are_one_line_and_status_2(args: list[str]) -> None:
    out = run_cli(*args)
    assert out.returncode == 2, out
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and ": error: " in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_self_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--ops", "2000"]) == 0
    out = capsys.readouterr().out
    assert "replaying 2,000 operations of workload 'mixed'" in out
    assert out.count("check(): passed") == 3


def test_capacity_too_small_for_the_overhead_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Enough for the live bytes, not for the heap's headers and holes: an error, not a traceback.
    with pytest.raises(SystemExit) as e:
        main(["--ops", "3000", "--capacity", str(_peak("mixed", 3000))])
    assert e.value.code == 2
    assert "too small for this workload" in capsys.readouterr().err


def _peak(workload: str, n: int) -> int:
    from itertools import islice

    from tlsf.bench import max_live_bytes, records
    from tlsf.workloads import iter_ops

    return max_live_bytes(records(islice(iter_ops(workload), n), None))


def test_bench_counts_rounds_and_ops_and_writes_json(tmp_path, capsys) -> None:
    path = tmp_path / "b.json"
    assert main(["bench", "--ops", "3000", "--rounds", "1", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert ", 1 round, " in out
    assert "3,000 operations" in out and "1M" not in out
    assert " 0." not in "".join(line.split(":")[1] for line in out.splitlines() if "faster" in line
                                or "slower" in line)  # ratios below 1 are said as "slower"
    doc = json.loads(path.read_text())
    assert doc["tlsf"] == tlsf.__version__ and doc["implementation"] == tlsf.IMPLEMENTATION
    assert doc["python"] == ".".join(map(str, sys.version_info[:3]))
    assert doc["rounds"] == 1 and doc["ops"] == {"mixed": 3000}
    names = {r["allocator"] for r in doc["results"]["mixed"]}
    assert ("tlsf.Heap (C)" if tlsf.IMPLEMENTATION == "c" else "tlsf.pure.Heap") in names
    for missing in doc["not_measured"]:
        assert missing in out  # said, not left out silently


def test_bench_trace(tmp_path, capsys) -> None:
    trace = tmp_path / "small.trc"
    write_trace("small", str(trace))
    assert main(["bench", "--trace", str(trace), "--ops", "2000", "--rounds", "1"]) == 0
    assert f"trace {trace}: 2,000 operations" in capsys.readouterr().out


def test_replay_prints_latency_and_writes_json(tmp_path, capsys) -> None:
    path = tmp_path / "r.json"
    trace = tmp_path / "mixed.trc"
    write_trace("mixed", str(trace))
    assert main(["replay", str(trace), "--ops", "4000", "--allocator", "heap", "--allocator", "offset",
                 "--allocator", "multiprocessing", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "p99.99" in out and "4,000 operations" in out
    doc = json.loads(path.read_text())
    assert doc["ops"] == 4000 and doc["tlsf"] == tlsf.__version__
    runs = {r["allocator"]: r for r in doc["runs"]}
    assert len(runs) == 3
    for r in runs.values():
        assert r["operations"] == 4000
        lat = r["latency_ns"]
        assert 0 <= lat["p50"] <= lat["p99"] <= lat["p99.99"] <= lat["max"]
        assert r["high_water"] >= r["peak_live"] > 0
        assert r["timeline"][-1][0] == 4000
        assert max(live for _, live, _ in r["timeline"]) <= r["peak_live"]
    heaps = [r for name, r in runs.items() if "tlsf" in name]
    assert all(r["heap_at_peak"]["used"] >= r["peak_live"] for r in heaps)
    assert runs["multiprocessing.heap"]["heap_at_peak"] is None  # it cannot walk


def test_map_text(capsys) -> None:
    assert main(["map", "small", "--ops", "5000", "--width", "40", "--rows", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.endswith("|") and " |" in line]
    assert len(rows) == 5 and all(len(r.split("|")[1]) == 40 for r in rows)
    assert any("size class" in line for line in out)


def test_run_is_listed_and_dispatched() -> None:
    out = run_cli("run", "--help")
    assert out.returncode == 0 and "COMMAND" in out.stdout


def test_replay_with_the_native_bench(tmp_path, capsys) -> None:
    """--native: the C replay's percentiles beside Python's, from the native
    bench built here (benchmarks/native/bench.c over the core's sources)."""
    import os
    import shutil
    import sysconfig

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bench_c = os.path.join(root, "benchmarks", "native", "bench.c")
    cc = sysconfig.get_config_var("CC") or "cc"
    if not os.path.exists(bench_c) or not shutil.which(cc.split()[0]):
        pytest.skip("needs a C compiler and benchmarks/native (a source checkout)")
    with open(os.path.join(root, "csrc", "sources.mk")) as f:
        core = next(line.split(":=")[1].split() for line in f if line.startswith("TLSF_CORE_SOURCES"))
    exe = tmp_path / "bench"
    subprocess.run([*cc.split(), "-O2", "-std=c11", "-D_GNU_SOURCE", f"-I{root}/csrc",
                    f"-I{root}/src/tlsf/include", "-o", str(exe), bench_c,
                    *(os.path.join(root, "csrc", s) for s in core)], check=True)
    path = tmp_path / "r.json"
    assert main(["replay", "small", "--ops", "3000", "--native", str(exe), "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "native tlsf: p50 " in out and "native glibc: p50 " in out
    native = json.loads(path.read_text())["native"]
    for figures in native.values():
        assert list(figures) == ["p50", "p99", "p99.99", "max"]
        assert figures["p50"] <= figures["p99"] <= figures["p99.99"] <= figures["max"]
