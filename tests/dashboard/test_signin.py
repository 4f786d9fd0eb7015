"""Dashboard sign-in: the operator password hash, the refusal to serve beyond loopback without sign-in, and
the sign-in form in AppTest and in a real browser."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from streamlit.testing.v1 import AppTest

from dashboard import password, signin
from dashboard.launch import start_dashboard, stop
from llmledger.testing.waiting import wait_until_ok
from tests.collector_harness import RunningCollector

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
SECRET = "correct horse battery staple"


@pytest.fixture(scope="module")
def stored_hash() -> str:
    return password.hash_password(SECRET)


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path_factory.mktemp("signin") / "empty.duckdb")
    yield running
    running.stop()


def test_password_hash_round_trip(stored_hash: str) -> None:
    assert stored_hash.startswith("scrypt$16384$8$1$")
    assert SECRET not in stored_hash
    assert password.verify(SECRET, stored_hash)
    assert not password.verify(SECRET + " ", stored_hash)
    assert password.hash_password(SECRET) != stored_hash  # salted
    for not_a_hash in (SECRET, "scrypt$1$2$3$!!$!!", "scrypt$x$8$1$a$b"):
        with pytest.raises(ValueError, match="llmledger hash-password"):
            password.check_hash_format(not_a_hash)


def test_sign_in_is_required_beyond_loopback(stored_hash: str) -> None:
    assert signin.mode("127.0.0.1", oidc=False, password_hash=None) == "none"
    assert signin.mode("127.0.0.1", oidc=False, password_hash=stored_hash) == "password"
    assert signin.mode("0.0.0.0", oidc=False, password_hash=stored_hash) == "password"
    assert signin.mode("0.0.0.0", oidc=True, password_hash=None) == "oidc"
    with pytest.raises(SystemExit, match=r"refusing to listen on 192\.168\.1\.9 without sign-in"):
        signin.mode("192.168.1.9", oidc=False, password_hash=None)


def test_the_hash_comes_from_a_variable_or_a_file_and_must_be_a_hash(stored_hash: str, tmp_path: Path) -> None:
    (tmp_path / "hash").write_text(stored_hash + "\n")
    assert signin.password_hash({"LLMLEDGER_DASHBOARD_PASSWORD_HASH_FILE": str(tmp_path / "hash")}) == stored_hash
    assert signin.password_hash({}) is None
    with pytest.raises(SystemExit, match="not an llmledger password hash"):
        signin.password_hash({"LLMLEDGER_DASHBOARD_PASSWORD_HASH": "hunter2"})


def test_oidc_is_detected_from_streamlit_secrets(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    assert not signin.oidc_configured([secrets])
    secrets.write_text('[auth]\nredirect_uri = "http://x/oauth2callback"\ncookie_secret = "s"\n')
    assert signin.oidc_configured([tmp_path / "missing.toml", secrets])


def test_launch_refuses_a_public_address_without_sign_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, empty: RunningCollector
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("LLMLEDGER_DASHBOARD_PASSWORD_HASH", raising=False)
    with pytest.raises(SystemExit, match="without sign-in"):
        start_dashboard(empty.url, "0.0.0.0", 1)


def test_apptest_shows_only_the_form_until_signed_in(
    monkeypatch: pytest.MonkeyPatch, stored_hash: str, empty: RunningCollector
) -> None:
    monkeypatch.setenv("LLMLEDGER_API_URL", empty.url)
    monkeypatch.setenv("LLMLEDGER_DASHBOARD_PASSWORD_HASH", stored_hash)
    monkeypatch.setattr(signin, "FAILED_SIGN_IN_DELAY_S", 0)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.text_input[0].label == "Operator password"
    assert not at.info  # no page content (the empty-state message) before sign-in
    at.text_input[0].input("wrong")
    at.button[0].click().run()
    assert [error.value for error in at.error] == ["Wrong password."]
    at.text_input[0].input(SECRET)
    at.button[0].click().run()
    assert not at.exception
    assert any("No LLM calls have reached this collector" in item.value for item in at.info)


def test_apptest_on_every_interface_without_sign_in_shows_nothing(
    monkeypatch: pytest.MonkeyPatch, empty: RunningCollector
) -> None:
    from streamlit import config

    monkeypatch.setenv("LLMLEDGER_API_URL", empty.url)
    monkeypatch.delenv("LLMLEDGER_DASHBOARD_PASSWORD_HASH", raising=False)
    monkeypatch.setattr(signin, "_secrets_have_auth", lambda: False)
    previous = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(APP, default_timeout=60).run()
    finally:
        config.set_option("server.address", previous)
    assert any("without sign-in" in error.value for error in at.error)
    assert not at.info
    assert not at.metric


def test_browser_sign_in(monkeypatch: pytest.MonkeyPatch, stored_hash: str, empty: RunningCollector) -> None:
    monkeypatch.setenv("LLMLEDGER_DASHBOARD_PASSWORD_HASH", stored_hash)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dashboard = start_dashboard(empty.url, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_ok(f"{url}/_stcore/health", 60), "dashboard did not start"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(url)
            box = page.get_by_label("Operator password")
            box.wait_for(timeout=30_000)
            box.fill("not it")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("Wrong password.").wait_for(timeout=30_000)
            assert page.get_by_text("No LLM calls have reached this collector").count() == 0
            box.fill(SECRET)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("No LLM calls have reached this collector").wait_for(timeout=30_000)
            browser.close()
    finally:
        stop(dashboard)
