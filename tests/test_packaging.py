"""Packaging: one version source, and the console script is the CLI's main()."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from conftest import run_textlrp

import textlrp

REPO = Path(__file__).resolve().parents[1]


def test_version_is_written_once_and_the_metadata_agrees():
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"^version\s*=", project, re.MULTILINE), "pyproject writes a version"
    assert re.search(r'^dynamic\s*=\s*\[\s*"version"\s*\]', project, re.MULTILINE)
    assert 'input = "python/textlrp/__init__.py"' in pyproject
    init = (REPO / "python" / "textlrp" / "__init__.py").read_text(encoding="utf-8")
    assert len(re.findall(r"^__version__\s*=", init, re.MULTILINE)) == 1
    # The installed metadata was built from that one line (reinstall after changing it).
    assert metadata.version("textlrp") == textlrp.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+([a-z]+\d*)?", textlrp.__version__)


def _console_script_target() -> str:
    eps = metadata.entry_points()
    scripts = (eps.select(group="console_scripts") if hasattr(eps, "select")
               else eps.get("console_scripts", []))  # Python 3.9
    return next(ep.value for ep in scripts if ep.name == "textlrp")


def test_console_script_and_python_dash_m_run_the_same_main():
    assert _console_script_target() == "textlrp.cli:main"
    script = run_textlrp("--version")
    module = subprocess.run([sys.executable, "-m", "textlrp", "--version"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert script.returncode == module.returncode == 0
    assert script.stdout == module.stdout == f"textlrp {textlrp.__version__}\n"


def test_incremental_developer_builds_are_configured_and_documented():
    # A fixed build folder is what lets `pip install --no-build-isolation -e .` rebuild only
    # what changed (an isolated build gets new paths every time and recompiles everything).
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^build-dir = "build/\{wheel_tag\}"$', pyproject, re.MULTILINE)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "pip install --no-build-isolation -e ." in readme
    for requirement in ("scikit-build-core", "pybind11", "cmake", "ninja"):
        assert requirement in readme.split("## Development", 1)[1], requirement
    # The README's two commands stay as they are.
    assert "pip install . && textlrp explain \"don't waste your money\"" in readme
    assert "pip install '.[test]' && pytest" in readme
