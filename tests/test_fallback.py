"""The pure-Python twin, when nobody chose it, is announced: `import tlsf` gives
one RuntimeWarning, pointing at the importer, that says why (the build's
recorded failure, or the error importing tlsf._core), how much slower the twin
is, how to get the C core and how to choose the twin without the warning.
Nothing is said when the twin was chosen (TLSF_PURE_PYTHON=1 at run time,
TLSF_BUILD_EXT=0 at build time) or when the C core is in use.

Every case runs in a fresh interpreter: copies of the installed package with
the C core removed, broken or recorded as failed, and real builds of the
source tree (setup.py through setuptools' PEP 517 hooks, as pip runs them)
with a compiler that fails (CC=false), a working one, and no extension."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import tlsf

PACKAGE = Path(tlsf.__file__).resolve().parent
ROOT = Path(__file__).resolve().parents[1]
FALLBACK_FILE = "_build_fallback.txt"  # setup.py's and tlsf/_build.py's
SCRIPT = "import tlsf\nprint(tlsf.IMPLEMENTATION)\n"


def run(pythonpath: Path | None, tmp_path: Path, *, error: bool = False, **env: str):
    """Runs SCRIPT from a file (the importer the warning must point at) in a fresh
    interpreter, with every RuntimeWarning shown (or made an error)."""
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    environ = {k: v for k, v in os.environ.items() if k not in ("TLSF_PURE_PYTHON", "PYTHONWARNINGS")}
    if pythonpath is not None:  # the copy or build under test, before the installed package
        environ["PYTHONPATH"] = str(pythonpath)
    flag = "error::RuntimeWarning" if error else "always::RuntimeWarning"
    return subprocess.run([sys.executable, "-W", flag, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, env={**environ, **env}, timeout=120)


def copy_package(tmp_path: Path) -> Path:
    """A copy of the installed package without its C core; the folder to put on the path."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "tlsf", ignore=shutil.ignore_patterns("__pycache__", FALLBACK_FILE))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        (site / "tlsf" / f"_core{suffix}").unlink(missing_ok=True)
    return site


def assert_fallback_warning(out, *, reason: str) -> None:
    """One warning, at the importer's line, with `reason` (a regular expression) and the advice."""
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["python"]
    assert out.stderr.count("RuntimeWarning") == 1, out.stderr
    assert "user_script.py:1: RuntimeWarning: tlsf is running on its pure-Python twin" in out.stderr
    assert re.search(reason, out.stderr), out.stderr
    for advice in ("times slower", "pip install --no-cache-dir --force-reinstall tlsf", "TLSF_PURE_PYTHON=1"):
        assert advice in out.stderr


def assert_quiet(out, implementation: str) -> None:
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [implementation]
    assert out.stderr == ""


def test_c_core_in_use_says_nothing(tmp_path):
    if importlib.util.find_spec("tlsf._core") is None:
        pytest.skip("the C core is not built here")
    assert_quiet(run(None, tmp_path, error=True), "c")


def test_chosen_twin_says_nothing(tmp_path):
    assert_quiet(run(None, tmp_path, error=True, TLSF_PURE_PYTHON="1"), "python")


def test_recorded_build_failure_warns_once(tmp_path):
    site = copy_package(tmp_path)
    reason = "the C compiler cc failed on binding/args.c with exit status 1"
    (site / "tlsf" / FALLBACK_FILE).write_text(f"{reason}\n")
    out = run(site, tmp_path)
    assert_fallback_warning(out, reason=re.escape(f"not built when tlsf was installed ({reason};"))
    out = run(site, tmp_path, error=True)  # the warning can fail a program that asks for it
    assert out.returncode != 0 and "RuntimeWarning" in out.stderr
    assert_quiet(run(site, tmp_path, error=True, TLSF_PURE_PYTHON="1"), "python")


def test_core_not_built_by_choice_says_nothing(tmp_path):
    """TLSF_BUILD_EXT=0 (or a Python for which no extension is built): no record, no warning."""
    assert_quiet(run(copy_package(tmp_path), tmp_path, error=True), "python")


def test_core_that_fails_to_import_warns_with_its_error(tmp_path):
    site = copy_package(tmp_path)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (site / "tlsf" / f"_core{suffix}").write_bytes(b"not a shared library")
    out = run(site, tmp_path)
    error = r"tlsf\._core is installed but cannot be imported \(ImportError: \S*/_core\S*: .+\)\."
    assert_fallback_warning(out, reason=error)
    assert_quiet(run(site, tmp_path, error=True, TLSF_PURE_PYTHON="1"), "python")


# ---- real builds of the source tree -------------------------------------------------------------------

SOURCES = ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "src", "csrc", "binding",
           "integrations")


@pytest.fixture
def source(tmp_path) -> Path:
    if not all((ROOT / name).exists() for name in SOURCES):
        pytest.skip(f"needs the source tree ({', '.join(SOURCES)} beside tests/)")
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__} cannot read pyproject.toml (PEP 639 license): "
                    "needs setuptools>=77.0.3 (the test extra)")
    tree = tmp_path / "tree"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.so", "*.o", FALLBACK_FILE, "*.egg-info"))
        else:
            tree.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, tree / name)
    return tree


# CC=false's failure as setup.py records it (the words of the setuptools in use differ)
CC_FALSE_FAILED = r"not built when tlsf was installed \((the C compiler false failed|command '\S*false' fail)"


def build(hook: str, tree: Path, **env: str) -> Path:
    """setuptools.build_meta.<hook>, as pip calls it, in `tree`; the wheel it wrote."""
    environ = {k: v for k, v in os.environ.items() if k not in ("TLSF_BUILD_EXT", "TLSF_PURE_PYTHON")}
    out = tree / "out"
    code = f"import sys; from setuptools import build_meta; print(build_meta.{hook}(sys.argv[1]))"
    r = subprocess.run([sys.executable, "-c", code, str(out)], cwd=tree, capture_output=True, text=True,
                       env={**environ, **env}, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / r.stdout.strip().splitlines()[-1]


def test_failed_build_lands_in_the_wheel(source, tmp_path):
    """pip install without a compiler: the wheel records the failure, and its import warns."""
    import zipfile

    wheel = build("build_wheel", source, CC="false")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        z.extractall(tmp_path / "site")
    assert f"tlsf/{FALLBACK_FILE}" in names
    assert not [n for n in names if "/_core." in n and not n.endswith(".pyi")], names
    assert_fallback_warning(run(tmp_path / "site", tmp_path), reason=CC_FALSE_FAILED)
    assert_quiet(run(tmp_path / "site", tmp_path, error=True, TLSF_PURE_PYTHON="1"), "python")


def test_editable_build_records_and_clears_the_failure(source, tmp_path):
    """pip install -e: the record is in the source tree while the build fails, and a later
    build that does not fail (a compiler, or TLSF_BUILD_EXT=0) removes it."""
    record = source / "src" / "tlsf" / FALLBACK_FILE
    build("build_editable", source, CC="false")
    assert record.exists()
    assert_fallback_warning(run(source / "src", tmp_path), reason=CC_FALSE_FAILED)

    build("build_editable", source, TLSF_BUILD_EXT="0")  # the twin chosen: no record
    assert not record.exists()
    assert_quiet(run(source / "src", tmp_path, error=True), "python")

    cc = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return  # no compiler here: the build with one is not tried
    build("build_editable", source, CC="false")
    assert record.exists()
    build("build_editable", source)  # a compiler: the C core, no record
    assert not record.exists()
    assert_quiet(run(source / "src", tmp_path, error=True), "c")
