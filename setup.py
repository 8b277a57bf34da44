"""Builds the C extension `tlsf._core`, its optional companions, and the
process-wide allocator libtlsf_malloc.so (integrations/malloc; Linux).

TLSF_BUILD_EXT=1 makes a failed build fatal (CI); 0 skips the extension;
unset, a failed build falls back to the pure-Python twin with a warning. pip
shows a build's output only with -v, so a fallback of tlsf._core is also
recorded in the built package (FALLBACK_FILE, beside where _core would be: in
the wheel, or in src/tlsf for an editable install), and `import tlsf` warns
with its reason (src/tlsf/_build.py). A build that does not fall back removes it.
"""

import ast
import glob
import os
import re
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

MODE = os.environ.get("TLSF_BUILD_EXT", "auto")

# The record of a failed build of tlsf._core; the name is src/tlsf/_build.py's FALLBACK_FILE.
FALLBACK_FILE = "_build_fallback.txt"


MALLOC_LIBRARY = "libtlsf_malloc.so"


def remove_fallback_record(folder):
    path = os.path.join(folder, FALLBACK_FILE)
    if os.path.exists(path):
        os.remove(path)


def describe_failure(error):
    """The error on one line; a failed compiler command as its program, source and status
    (not its whole command line)."""
    text = " ".join(str(error).split()) or type(error).__name__
    m = re.match(r"Command '(\[.*\])' returned non-zero exit status (-?\d+)", text)
    if not m:
        return text
    try:
        argv = ast.literal_eval(m.group(1))
    except (ValueError, SyntaxError):
        return text
    source = f" on {argv[argv.index('-c') + 1]}" if "-c" in argv[:-1] else ""
    return f"the C compiler {argv[0]} failed{source} with exit status {m.group(2)}"


class OptionalBuildExt(build_ext):
    _core_error = None

    def run(self):
        self._core_error = None
        remove_fallback_record(self._package_dir())
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - any compiler failure
            self._fallback(e, "tlsf._core")
        if MODE != "0" and sys.platform.startswith("linux"):
            try:
                self._build_malloc_library()
            except Exception as e:  # noqa: BLE001
                self._fallback(e, MALLOC_LIBRARY)
        if self._core_error is not None:
            self._record_fallback(self._core_error)

    def _package_dir(self):
        """Where tlsf._core goes: the wheel's tlsf/ in build_lib, or src/tlsf in place (editable)."""
        return os.path.dirname(self.get_ext_fullpath("tlsf._core"))

    def _record_fallback(self, error):
        """The fallback, for `import tlsf` to warn about (tlsf/_build.py): one line, why."""
        os.makedirs(self._package_dir(), exist_ok=True)
        reason = describe_failure(error)
        with open(os.path.join(self._package_dir(), FALLBACK_FILE), "w", encoding="utf-8") as f:
            f.write(f"{reason}\n")

    def _malloc_library_path(self):
        return os.path.join(self._package_dir(), MALLOC_LIBRARY)

    def _build_malloc_library(self):
        """libtlsf_malloc.so: a plain shared library (no Python inside) in the
        package, with the flags of integrations/malloc/Makefile."""
        here = "integrations/malloc"
        sources = [f"{here}/malloc.c", f"{here}/trace.c"] + [
            os.path.join("csrc", name) for name in make_list(f"{here}/Makefile", "MALLOC_CORE")]
        flags = [f for f in make_list(f"{here}/Makefile", "MALLOC_CFLAGS") if not f.startswith("-I")]
        out = self._malloc_library_path()
        inputs = [*sources, f"{here}/Makefile", *glob.glob(f"{here}/*.h"), *glob.glob("csrc/*.h"),
                  *glob.glob("csrc/platform/*.h"), "src/tlsf/include/tlsf_trace.h"]
        if not self.force and os.path.exists(out) and all(os.path.getmtime(out) >= os.path.getmtime(f)
                                                          for f in inputs):
            return
        objects = self.compiler.compile(sources, output_dir=os.path.join(self.build_temp, "malloc"),
                                        include_dirs=["csrc", "src/tlsf/include"],
                                        extra_postargs=["-O2", *flags])
        self.compiler.link_shared_object(objects, out, extra_postargs=["-O2", *flags])

    def get_outputs(self):
        outputs = super().get_outputs()
        extra = [self._malloc_library_path(), os.path.join(self._package_dir(), FALLBACK_FILE)]
        return [*outputs, *(path for path in extra if os.path.exists(path))]

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001
            self._fallback(e, ext.name)

    def _fallback(self, error, name):
        if MODE == "1":
            raise error
        if name == "tlsf._core" and self._core_error is None:
            self._core_error = error
        banner = "*" * 72
        consequence = {
            "tlsf._numpy_handler": "tlsf.numpy.use() and handler() will be unavailable",
            "tlsf._floor": "the benchmark will have no floor",
            MALLOC_LIBRARY: "python -m tlsf run and tlsf.malloc_library() will be unavailable",
        }.get(name, "tlsf will use its pure-Python twin (slower; `import tlsf` will warn)")
        sys.stderr.write(
            f"\n{banner}\nWARNING: the C extension {name} could not be built ({error}).\n"
            f"{consequence}. Set TLSF_BUILD_EXT=1 to make this an error.\n{banner}\n\n"
        )


class BuildPy(build_py):
    """A build without extensions (TLSF_BUILD_EXT=0, or not CPython: build_ext
    does not run) chose the twin: it removes a fallback record an earlier build
    left in the same place."""

    def run(self):
        super().run()
        if not self.distribution.has_ext_modules():
            remove_fallback_record(os.path.join(self.build_lib, "tlsf"))
            if getattr(self, "editable_mode", False):
                remove_fallback_record(self.get_package_dir("tlsf"))


def make_list(path, name):
    """The words of `NAME := ...` in a Makefile (continued lines included), so
    that setup.py and the Makefiles build from one list."""
    with open(path) as f:
        text = f.read().replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith(name) and ":=" in line:
            return line.split(":=", 1)[1].split()
    raise RuntimeError(f"{path} has no {name}")


def core_sources():
    """The C core's sources, from csrc/sources.mk (the one list the Makefiles use too)."""
    return [os.path.join("csrc", name) for name in make_list("csrc/sources.mk", "TLSF_CORE_SOURCES")]


ext_modules = []
if MODE != "0" and sys.implementation.name == "cpython":
    flags = ["-O2", "-std=c11"] if os.name != "nt" else []
    headers = [*glob.glob("csrc/*.h"), *glob.glob("csrc/platform/*.h"), *glob.glob("binding/*.h"),
               *glob.glob("src/tlsf/include/*.h")]
    binding = sorted(f for f in glob.glob("binding/*.c") if os.path.basename(f) != "floor.c")
    ext_modules.append(
        Extension(
            "tlsf._core",
            sources=[*binding, *core_sources()],
            include_dirs=["csrc", "binding", "src/tlsf/include"],
            depends=headers,
            extra_compile_args=flags,
        )
    )
    # The numpy memory handler (tlsf.numpy), an integration over the C API.
    ext_modules.append(
        Extension(
            "tlsf._numpy_handler",
            sources=["integrations/numpy/handler.c"],
            include_dirs=["src/tlsf/include"],
            depends=["src/tlsf/include/tlsf_capi.h"],
            extra_compile_args=flags,
        )
    )
    # The benchmark's floor (python -m tlsf bench), a private module of its own.
    ext_modules.append(Extension("tlsf._floor", sources=["binding/floor.c"], extra_compile_args=flags))

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPy})
