"""The distributions: the sdist holds everything the test suite needs (its
tests run from the unpacked sdist), the license is declared as PEP 639 says,
and the wheel holds no C source. Built with the setuptools of this
environment (the test extra), through its PEP 517 hooks as pip and build call
them, from a copy of the files git tracks, so the checkout is left untouched."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What the test suite needs from the sdist, besides the sources of the build.
NEEDED = ("tests/", "examples/", "fuzz/", "src/", "csrc/", "binding/", "integrations/")
NEEDED_FILES = ("TESTING.md", "LICENSE", "README.md", "setup.py", "pyproject.toml", "MANIFEST.in")


def tracked_files() -> list[str]:
    """The files git tracks in this checkout, and those it would (new, not ignored), that exist."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the files the sdist must hold are those git tracks")
    top = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"],
                         capture_output=True, text=True)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT:
        pytest.skip(f"{ROOT} is not a git checkout (an unpacked sdist?): the files the sdist must hold "
                    "are those git tracks")
    listing = ["ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    out = subprocess.run(["git", "-C", str(ROOT), *listing], capture_output=True, check=True)
    return sorted({f for f in out.stdout.decode().split("\0") if f and (ROOT / f).is_file()})


def build(hook: str, source: Path, out: Path, **env: str) -> Path:
    """Runs setuptools.build_meta.<hook>(out) in `source`; the built file."""
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__} cannot read pyproject.toml's license "
                    "expression (PEP 639): needs setuptools>=77.0.3 (the test extra)")
    out.mkdir(parents=True, exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if k not in ("TLSF_BUILD_EXT", "TLSF_PURE_PYTHON")}
    code = f"import sys; from setuptools import build_meta; print(build_meta.{hook}(sys.argv[1]))"
    r = subprocess.run([sys.executable, "-c", code, str(out)], cwd=source, capture_output=True, text=True,
                       env={**environ, **env}, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> tuple[list[str], Path]:
    """(the tracked files, the sdist built from a copy of them)."""
    files = tracked_files()
    tmp = tmp_path_factory.mktemp("packaging")
    for f in files:
        (tmp / "src" / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, tmp / "src" / f)
    return files, build("build_sdist", tmp / "src", tmp / "dist")


def sdist_names(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    prefix = members[0].name.split("/")[0] + "/"
    return {m.name[len(prefix):]: m for m in members if m.isfile()}


def test_sdist_holds_what_the_tests_need(sdist):
    files, path = sdist
    names = sdist_names(path)
    wanted = [f for f in files if f.startswith(NEEDED) or f in NEEDED_FILES]
    assert "tests/conftest.py" in wanted and "LICENSE" in wanted and "TESTING.md" in wanted
    missing = [f for f in wanted if f not in names]
    assert not missing, f"tracked files missing from the sdist (MANIFEST.in): {missing}"
    stray = [n for n in names if n.endswith((".pyc", ".so", ".o")) or "__pycache__" in n]
    assert not stray, f"build products in the sdist: {stray}"


def test_license_metadata(sdist):
    """PEP 639: an SPDX expression and the license file, in the sdist's metadata."""
    _, path = sdist
    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"))
        extracted = tar.extractfile(member)
        assert extracted is not None
        pkg_info = extracted.read().decode()
    assert "License-Expression: MIT" in pkg_info.splitlines()
    assert "License-File: LICENSE" in pkg_info.splitlines()
    assert "Copyright (c) 2026 the tlsf developers" in (ROOT / "LICENSE").read_text()


def test_examples_say_what_they_need(sdist):
    """Every example names what it needs in its docstring, and any extra it names exists;
    tests/test_examples.py runs each of them."""
    _, path = sdist
    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"))
        extracted = tar.extractfile(member)
        assert extracted is not None
        extras = set(re.findall(r"^Provides-Extra: (\S+)$", extracted.read().decode(), re.M))
    assert {"numpy", "examples", "plot", "test", "bench"} <= extras
    tested = (ROOT / "tests" / "test_examples.py").read_text()
    examples = sorted((ROOT / "examples").glob("*.py"))
    assert examples
    for example in examples:
        text = example.read_text()
        needs = re.search(r"^Needs: (.*)$", text, re.M)
        assert needs, f"{example.name}: no 'Needs:' line in its docstring"
        for extra in re.findall(r"tlsf\[(\w+)\]|'\.\[(\w+)\]'", needs.group(1)):
            assert set(extra) - {""} <= extras, f"{example.name} names an extra that does not exist: {extra}"
        if re.search(r"^import numpy|^from numpy", text, re.M):
            assert "numpy" in needs.group(1), f"{example.name} imports numpy but does not say so"
        assert example.stem in tested, f"tests/test_examples.py does not run {example.name}"


def test_wheel_holds_no_c_source(sdist, tmp_path):
    """Built from the unpacked sdist (as pip does from PyPI) with a C file planted in the
    package and named by MANIFEST.in, as src/tlsf/_core.c once was: not in the wheel.
    TLSF_BUILD_EXT=0: the package data does not depend on the extension, and no compiler runs."""
    _, path = sdist
    with tarfile.open(path) as tar:
        top = tar.getmembers()[0].name.split("/")[0]
        if sys.version_info >= (3, 12):
            tar.extractall(tmp_path, filter="data")
        else:
            tar.extractall(tmp_path)
    src = tmp_path / top
    (src / "src" / "tlsf" / "_core.c").write_text("/* a C source in the package */\n")
    with open(src / "MANIFEST.in", "a") as f:
        f.write("include src/tlsf/*.c\n")
    wheel = build("build_wheel", src, tmp_path / "wheel", TLSF_BUILD_EXT="0")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert not [n for n in names if n.endswith(".c")], names
    assert {"tlsf/__init__.py", "tlsf/py.typed", "tlsf/_core.pyi", "tlsf/include/tlsf_capi.h"} <= set(names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert not [n for n in names if "_build_fallback" in n], "a build without extensions records no fallback"
