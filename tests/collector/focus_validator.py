"""The FinOps Foundation's FOCUS validator (`focus-validator` on PyPI), in a venv of its own.

It needs Python 3.12+ and a dependency set (pandas 2, numpy 1.26, polars, ...) that has nothing to do with ours, so
it gets its own venv, made once from a pyenv (or system) Python 3.12/3.13 under the repository's git-ignored .cache/
and reused while its pin is unchanged. Its 2.x releases carry the FOCUS 1.2 rules in the package; `--block-download`
keeps it from asking GitHub for newer ones.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

VERSION = "2.2.1"  # the version these tests ran; FOCUS 1.2 rules offline
# It pins numpy 1.26 but not pyarrow, whose releases since 21 need numpy 2: the newest that imports with it.
PINS = (f"focus-validator=={VERSION}", "pyarrow==20.0.0")
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".cache" / f"focus-validator-{VERSION}-pyarrow-20"
_CANDIDATES = ("3.12", "3.13")


def _python() -> str | None:
    """A Python 3.12 or 3.13 (the validator pins numpy 1.26, which has wheels for 3.12 and builds slowly for 3.13)."""
    if sys.version_info[:2] in ((3, 12), (3, 13)):
        return sys.executable
    for version in _CANDIDATES:
        for pyenv in sorted(Path.home().glob(f".pyenv/versions/{version}.*"), reverse=True):
            if (pyenv / "bin" / "python").exists():
                return str(pyenv / "bin" / "python")
        if found := shutil.which(f"python{version}"):
            return found
    return None


def executable() -> Path:
    """The validator's command, installing it on first use (a venv is complete once its marker is written)."""
    command, marker = VENV / "bin" / "focus-validator", VENV / ".installed"
    if marker.exists():
        return command
    python = _python()
    if python is None:
        raise RuntimeError("focus-validator needs Python 3.12+ (none found under pyenv or on PATH)")
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *PINS], check=True, timeout=900)
    marker.write_text(VERSION)
    return command


def _site_packages() -> Path:
    """Where it must run: it opens its currency code list by a path relative to its package's folder."""
    return next(VENV.glob("lib/python3.*/site-packages"))


@dataclass
class Report:
    passed: int
    failed: list[str]  # "rule id: message"
    output: str


def validate(data_file: Path, report_file: Path) -> Report:
    """Run the FOCUS 1.2 rules on `data_file` (CSV or Parquet) and read the JUnit report it writes."""
    result = subprocess.run(
        [
            str(executable()),
            "--data-file", str(data_file), "--validate-version", "1.2", "--block-download",
            "--output-type", "unittest", "--output-destination", str(report_file),
        ],
        capture_output=True, text=True, timeout=600, cwd=_site_packages(),
    )  # fmt: skip
    output = result.stdout + result.stderr
    if not report_file.exists():
        raise RuntimeError(f"focus-validator wrote no report (exit {result.returncode}):\n{output[-4000:]}")
    failed, passed = [], 0
    for case in ET.parse(report_file).getroot().iter("testcase"):
        problems = case.findall("failure") + case.findall("error")
        if problems:
            failed.append(f"{case.get('name')}: {problems[0].get('message') or problems[0].text or ''}".strip())
        elif case.find("skipped") is None:
            passed += 1
    return Report(passed, failed, output)
