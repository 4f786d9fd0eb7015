"""Project rules that keep the wrapper light and the names in one place."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER_ONLY = ("duckdb", "streamlit", "starlette", "uvicorn", "pyarrow", "pandas", "altair")


def test_wrapper_and_command_line_never_import_server_packages() -> None:
    code = (
        "import sys, llmledger, llmledger.wrapper.instrument, llmledger.export.configure, llmledger_cli.main\n"
        f"print([name for name in {SERVER_ONLY!r} if name in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_attribute_names_are_spelled_only_in_semconv() -> None:
    literal = re.compile(r"""["'](gen_ai|llmledger|openai\.(api|request|response)|server|error|http)\.[a-z_.]+["']""")
    offenders = []
    # Not the collector: its logger names ("llmledger.collector") and dialect tables of other instrumentations' names.
    sources = [
        path for package in ("llmledger", "llmledger_cli", "sample_data") for path in (ROOT / package).rglob("*.py")
    ]
    for path in sources:
        if path.name == "semconv.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if literal.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
