"""Builds the C extension `tlsf._core`.

TLSF_BUILD_EXT=1 makes a failed build fatal (CI); 0 skips the extension;
unset, a failed build falls back to the pure-Python twin with a warning.
"""

import glob
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

MODE = os.environ.get("TLSF_BUILD_EXT", "auto")


class OptionalBuildExt(build_ext):
    def run(self):
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - any compiler failure
            self._fallback(e, "tlsf._core")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001
            self._fallback(e, ext.name)

    def _fallback(self, error, name):
        if MODE == "1":
            raise error
        banner = "*" * 72
        consequence = {
            "tlsf._numpy_handler": "tlsf.numpy.use() and handler() will be unavailable",
            "tlsf._floor": "the benchmark will have no floor",
        }.get(name, "tlsf will use its pure-Python twin (slower)")
        sys.stderr.write(
            f"\n{banner}\nWARNING: the C extension {name} could not be built ({error}).\n"
            f"{consequence}. Set TLSF_BUILD_EXT=1 to make this an error.\n{banner}\n\n"
        )


def core_sources():
    """The C core's sources, from csrc/sources.mk (the one list the Makefiles use too)."""
    with open(os.path.join("csrc", "sources.mk")) as f:
        for line in f:
            if line.startswith("TLSF_CORE_SOURCES"):
                return [os.path.join("csrc", name) for name in line.split(":=", 1)[1].split()]
    raise RuntimeError("csrc/sources.mk lists no TLSF_CORE_SOURCES")


ext_modules = []
if MODE != "0" and sys.implementation.name == "cpython":
    flags = ["-O2", "-std=c11"] if os.name != "nt" else []
    headers = glob.glob("csrc/*.h") + glob.glob("csrc/platform/*.h") + glob.glob("binding/*.h") + glob.glob("src/tlsf/include/*.h")
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

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
