"""The dashboard's process is Streamlit's own command line, with the pages' libraries imported first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import streamlit

ROOT = Path(__file__).parents[2]


def test_it_runs_streamlits_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dashboard.serve", "version"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"Streamlit, version {streamlit.__version__}"
