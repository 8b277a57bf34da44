"""The process-wide allocator: libtlsf_malloc.so, tlsf's C core as the
malloc of any program (integrations/malloc), and ``python -m tlsf run``.

    python -m tlsf run [--trace FILE] [--stats] -- COMMAND ARGS...

runs COMMAND with the library preloaded (LD_PRELOAD), in place of this
process (the exit status is COMMAND's). With --trace, every allocation of the
program is recorded in the project's trace format (tlsf.workloads.read_trace):
the program writes FILE, each other process it starts writes FILE.<pid>; then
``python -m tlsf bench --trace FILE`` replays it through every allocator.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

LIBRARY = "libtlsf_malloc.so"


def malloc_library() -> str:
    """The path of libtlsf_malloc.so, built with the package (Linux).

    Raises FileNotFoundError when this installation has none (not Linux, or
    the library could not be compiled; pip install -v says why)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: tlsf was installed without its malloc library "
                                "(it is built on Linux, with a C compiler)")  # fmt: skip
    return path


def environment(*, trace: str | None = None, stats: bool = False, check: bool = True,
                trim: str | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment that runs a program on libtlsf_malloc (os.environ by default).

    With `trace`, the calling process's pid is the one that writes FILE
    itself: right for a program this process execs (as ``run`` does); a
    program started as a child process writes FILE.<pid>, as every other
    process does."""
    env = dict(os.environ if base is None else base)
    preload = env.get("LD_PRELOAD")
    env["LD_PRELOAD"] = malloc_library() + (f":{preload}" if preload else "")
    if trace is not None:
        env["TLSF_TRACE"] = os.path.abspath(trace)
        env["TLSF_TRACE_PID"] = str(os.getpid())  # the exec'd program keeps this pid
    if stats:
        env["TLSF_MALLOC_STATS"] = "1"
    if not check:
        env["TLSF_MALLOC_CHECK"] = "0"
    if trim is not None:
        env["TLSF_MALLOC_TRIM"] = trim
    return env


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m tlsf run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trace", metavar="FILE", help="record every allocation into FILE")
    p.add_argument("--stats", action="store_true", help="print the allocator's statistics at exit")
    p.add_argument("--no-check", action="store_true",
                   help="ignore invalid frees instead of aborting (TLSF_MALLOC_CHECK=0)")
    p.add_argument("--trim", metavar="BYTES",
                   help="free pages given back from this many (default 1048576), or 'off'")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    a = p.parse_args(argv)
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        p.error("no command to run (python -m tlsf run -- COMMAND ARGS...)")
    if a.trim is not None and a.trim != "off" and not a.trim.isdigit():
        p.error(f"--trim: a number of bytes or 'off', not {a.trim!r}")
    try:
        env = environment(trace=a.trace, stats=a.stats, check=not a.no_check, trim=a.trim)
    except FileNotFoundError as e:
        p.error(str(e))
    sys.stdout.flush()
    try:
        os.execvpe(command[0], command, env)
    except OSError as e:
        sys.stderr.write(f"python -m tlsf run: {command[0]}: {e.strerror}\n")
        return 127
    return 0  # not reached: exec replaced this process


__all__ = ["environment", "malloc_library", "main"]
