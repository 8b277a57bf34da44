"""tlsf.workloads reproduces the project's trace generator, and every workload
replays cleanly through both implementations."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest
from conftest import assert_consistent, assert_offset_consistent

from tlsf.__main__ import replay
from tlsf.bench import realloc_by_resize
from tlsf.workloads import WORKLOADS, iter_ops, read_trace, write_trace

GEN_TRACE = Path(__file__).resolve().parents[2] / "shared" / "workloads" / "gen_trace.py"
N = 100_000


@pytest.fixture(scope="module")
def gen_trace():
    if not GEN_TRACE.exists():
        pytest.skip(f"compares tlsf.workloads with the reference trace generator gen_trace.py, which is not "
                    f"part of this repository: looked for in shared/workloads beside the checkout "
                    f"({GEN_TRACE}), not found")
    spec = importlib.util.spec_from_file_location("gen_trace", GEN_TRACE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_same_workloads(gen_trace):
    assert sorted(WORKLOADS) == sorted(gen_trace.WORKLOADS)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_same_records(gen_trace, name):
    ours = list(itertools.islice(iter_ops(name), N))
    theirs = list(itertools.islice(gen_trace.iter_ops(name), N))
    assert len(ours) == N
    assert ours == theirs


def test_trace_file_round_trip(gen_trace, tmp_path, monkeypatch):
    """Our file is byte-identical to the generator's and reads back the same."""
    records = list(itertools.islice(iter_ops("mixed"), 2000))
    short = {"short": ("first 2,000 records of mixed", lambda: iter(records))}
    monkeypatch.setattr("tlsf.workloads.WORKLOADS", short)
    monkeypatch.setattr(gen_trace, "WORKLOADS", short)
    write_trace("short", str(tmp_path / "ours.trc"))
    gen_trace.write("short", str(tmp_path / "theirs.trc"))
    assert (tmp_path / "ours.trc").read_bytes() == (tmp_path / "theirs.trc").read_bytes()
    assert list(read_trace(str(tmp_path / "ours.trc"))) == records


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_workload_replays(Heap, name):  # noqa: N803
    ops = list(itertools.islice(iter_ops(name), 20_000))
    heap = Heap(128 << 20)  # anonymous memory, committed only where touched
    result = replay(heap.alloc, heap.free, heap.realloc, ops)
    assert result["high_water"] >= result["peak_live"] > 0
    assert_consistent(heap)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_workload_replays_offset(OffsetAllocator, name):  # noqa: N803
    ops = list(itertools.islice(iter_ops(name), 20_000))
    oa = OffsetAllocator(128 << 20)
    result = replay(oa.alloc, oa.free, realloc_by_resize(oa), ops)
    assert result["high_water"] >= result["peak_live"] > 0
    assert_offset_consistent(oa)
