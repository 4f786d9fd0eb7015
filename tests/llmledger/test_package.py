"""The package's names load on first use: the collector and the dashboard import a few of its modules without the
wrapper and the openai SDK behind it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import llmledger

ROOT = Path(__file__).parents[2]


def imported_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_the_collector_and_the_dashboard_start_without_the_openai_sdk() -> None:
    modules = imported_after("import collector.server, dashboard.data.client, dashboard.parts.ui")
    assert {"llmledger.semconv", "llmledger.credentials"} <= modules
    assert "openai" not in modules
    assert "llmledger.wrapper.instrument" not in modules


def test_every_public_name_is_there_when_asked_for() -> None:
    modules = imported_after("import llmledger\nassert llmledger.instrument and llmledger.CircuitOpen")
    assert {"openai", "llmledger.wrapper.instrument", "llmledger.guard.errors"} <= modules
    for name in llmledger.__all__:
        assert getattr(llmledger, name) is not None
        assert name in dir(llmledger)
    from llmledger import BudgetExceeded, GuardSettings, attributes, configure, flush, instrument  # noqa: F401


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'llmledger' has no attribute 'instrumnet'"):
        llmledger.instrumnet  # noqa: B018
    assert not hasattr(llmledger, "instrumnet")
