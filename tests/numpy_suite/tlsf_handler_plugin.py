"""A pytest plugin that runs numpy's own tests with tlsf's memory handler
installed for the whole session: every array numpy makes gets its data from
one tlsf.FlexHeap (.ci/numpy-suite runs it).

    python -m pytest -p tlsf_handler_plugin --pyargs numpy._core.tests.test_multiarray

(with this folder on PYTHONPATH). At the end it prints what the heap served
(allocations left at the end are arrays numpy's test modules keep), checks
the heap, and fails the session if the heap served nothing (the handler was
not in use)."""

from __future__ import annotations

from typing import Any

import tlsf
import tlsf.numpy

_session: dict[str, Any] = {}


def pytest_configure(config: Any) -> None:
    heap = tlsf.FlexHeap()
    use = tlsf.numpy.use(heap)
    _session.update(heap=heap, use=use, handler=use.__enter__(), peak=0, live=0)


def pytest_runtest_teardown(item: Any) -> None:
    """Samples the heap's counters after each test (what arrays outlive it)."""
    s = _session["heap"].stats()
    _session["peak"] = max(_session["peak"], s.allocated_bytes)
    _session["live"] = max(_session["live"], s.allocations)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    import gc

    use, heap, handler = _session["use"], _session["heap"], _session["handler"]
    use.__exit__(None, None, None)
    gc.collect()
    heap.check()
    s = heap.stats()
    print(
        f"\ntlsf handler: heap grew to {heap.size:,} bytes, peak {_session['peak']:,} bytes allocated "
        f"after a test, up to {_session['live']:,} live allocations after a test, "
        f"{tlsf.numpy.fallbacks(handler):,} fallbacks to the C library, {s.allocations:,} allocations "
        "left at the end"
    )
    if not heap.size:  # the heap grows only when it serves an allocation
        print("tlsf handler: the heap served no allocation: the handler was not in use")
        session.exitstatus = 1
