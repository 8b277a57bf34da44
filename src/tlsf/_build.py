"""The warning `import tlsf` gives when it runs on the pure-Python twin that
nobody chose: the C core `tlsf._core` was not built when tlsf was installed
(setup.py fell back, typically for want of a compiler, and recorded why in
FALLBACK_FILE beside where `_core` would be), or it is there but cannot be
imported. pip shows the build's own warning only with -v, and a wheel built
without the C core can be reused from pip's cache after a compiler is
installed: the import is where a user sees it.

No warning when the twin was chosen: TLSF_PURE_PYTHON=1 at run time (the C
core is not even imported), TLSF_BUILD_EXT=0 at build time, or a Python for
which setup.py builds no extension (nothing is recorded then).
"""

from __future__ import annotations

import os
import warnings

# setup.py's FALLBACK_FILE: one line, why the build of tlsf._core failed.
FALLBACK_FILE = "_build_fallback.txt"

_SLOWER = "about 20-60 times slower per call than the C core"
_REINSTALL = (
    "pip install --no-cache-dir --force-reinstall tlsf (from a source tree: its path in place of tlsf)"
)
_CHOOSE = "To use the twin without this warning, set TLSF_PURE_PYTHON=1 (or install with TLSF_BUILD_EXT=0)."


def build_fallback_reason() -> str | None:
    """Why the build of tlsf._core failed, as setup.py recorded it; None if it did not fail."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), FALLBACK_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or "no reason recorded"
    except OSError:
        return None


def fallback_message(error: ImportError) -> str | None:
    """The warning for a failed `import tlsf._core`, or None when the twin was chosen."""
    if isinstance(error, ModuleNotFoundError) and error.name == "tlsf._core":
        reason = build_fallback_reason()
        if reason is None:
            return None  # built without extensions on purpose (or not built at all: a source tree)
        return (
            f"tlsf is running on its pure-Python twin, {_SLOWER}: the C extension tlsf._core was "
            f"not built when tlsf was installed ({reason}; pip install -v shows the build's output). "
            f"To get the C core, install a C compiler and the Python headers, then reinstall tlsf "
            f"without pip's cached wheel: {_REINSTALL}. {_CHOOSE}"
        )
    return (
        f"tlsf is running on its pure-Python twin, {_SLOWER}: the C extension tlsf._core is "
        f"installed but cannot be imported ({type(error).__name__}: {error}). Reinstall tlsf for "
        f"this Python: {_REINSTALL}. {_CHOOSE}"
    )


def warn_fallback(error: ImportError) -> None:
    """Called by tlsf/__init__.py when `from tlsf._core import ...` failed:
    one RuntimeWarning pointing at the user's `import tlsf`, unless the twin was chosen."""
    message = fallback_message(error)
    if message is not None:
        # 1: here, 2: tlsf/__init__.py, 3: the importer (the import system's frames are skipped)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
