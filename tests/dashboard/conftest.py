"""Fixtures of the dashboard's tests: a real collector for the Alerts page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

from tests.collector_harness import RunningCollector
from tests.dashboard.alerts_page import send


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningCollector]:
    """A collector that evaluates alerts only when asked, holding a few successful calls."""
    collector = RunningCollector(tmp_path / "x.duckdb", "--alert-interval", "3600")
    monkeypatch.setenv("LLMLEDGER_API_URL", collector.url)
    monkeypatch.delenv("LLMLEDGER_READ_TOKEN", raising=False)
    monkeypatch.delenv("LLMLEDGER_READ_TOKEN_FILE", raising=False)
    st.cache_data.clear()
    try:
        send(collector, 2)
        yield collector
    finally:
        st.cache_data.clear()
        collector.stop()
