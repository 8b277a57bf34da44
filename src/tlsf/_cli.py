"""What every `python -m tlsf` subcommand shares: an argument parser whose
errors are one line and exit status 2, argument types that refuse
meaningless values before anything runs, the run's description for --json
files, and the wording of counts and speed ratios."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from typing import Any, NoReturn

import tlsf


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: "python -m tlsf bench: error: ...",
    exit status 2 (argparse's own status for a bad argument)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    """An argument that counts something: a whole number of at least 1."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def output_file(text: str) -> str:
    """A file to write at the end of a run, checked before the run starts:
    its folder exists and is writable, and it is not itself a folder."""
    folder = os.path.dirname(os.path.abspath(text))
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder")
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(text) and not os.access(text, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{text} is not writable")
    return text


def environment(**run: Any) -> dict[str, Any]:
    """What a --json file says about the run that made it: the package, the
    interpreter, the machine, and the run's own arguments."""
    return {
        "tlsf": tlsf.__version__,
        "implementation": tlsf.IMPLEMENTATION,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "system": platform.system(),
        **run,
    }


def plural(n: int, word: str) -> str:
    """ "1 round", "5 rounds", "1,000,000 operations"."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def speed(time: float, other: float) -> str:
    """How one time compares with another, in words to put before the
    other's name: "3.20x faster than", "2.00x slower than", "as fast as"
    (within 1%); never a ratio below 1 called faster."""
    if abs(time - other) < 0.01 * max(time, other):
        return "as fast as"
    if time < other:
        return f"{other / time:.2f}x faster than"
    return f"{time / other:.2f}x slower than"


def clear_progress() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")
