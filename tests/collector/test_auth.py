"""The collector's tokens: every endpoint, every kind of token, gRPC, the listen address, and no token leaks."""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx2
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from starlette.routing import Route

from collector.api.auth import Tokens, check_listen_address, is_loopback, scope_for
from collector.config import CollectorConfig
from collector.options import add_arguments
from collector.server import Collector
from llmledger import semconv as sc
from llmledger.testing.fake_openai import FakeOpenAI
from llmledger.testing.waiting import wait_until_ok
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with

ROOT = Path(__file__).resolve().parents[2]
TOKENS = Tokens(ingest="ingest-tok-1f6a", read="read-tok-93bd", admin="admin-tok-c07e")
PROTOBUF = {"content-type": "application/x-protobuf"}
RULE = {"name": "r", "metric": "errors", "window": "1h", "op": ">", "threshold": 1, "channels": []}
DIGEST = {"name": "d", "schedule": "weekly"}
ATTESTATION = {"service": "x", "item": "test.load", "by": "a", "link": "https://ci.example/run/1"}

# One request per endpoint (method, path, body), and which token kind each needs.
ENDPOINTS: list[tuple[str, str, object, str]] = [
    ("POST", "/v1/traces", request_with([chat_attributes()]).SerializeToString(), "ingest"),
    ("POST", "/v1/metrics", b"", "ingest"),
    ("POST", "/v1/logs", b"", "ingest"),
    ("GET", "/v1/guard/budgets", None, "ingest"),
    ("GET", "/healthz", None, "open"),
    ("GET", "/metrics", None, "read"),
    ("GET", "/api/v1/summary", None, "read"),
    ("GET", "/api/v1/timeseries?metric=requests", None, "read"),
    ("GET", "/api/v1/calls", None, "read"),
    ("GET", "/api/v1/breakdown?group_by=model", None, "read"),
    ("GET", "/api/v1/latency_histogram", None, "read"),
    ("GET", "/api/v1/values?group_by=model", None, "read"),
    ("GET", "/api/v1/export.csv", None, "read"),
    ("GET", "/api/v1/alert-rules", None, "read"),
    ("POST", "/api/v1/alert-rules", RULE, "admin"),
    ("POST", "/api/v1/alert-rules/preview", RULE, "read"),
    ("POST", "/api/v1/alert-rules/1/test", None, "admin"),
    ("GET", "/api/v1/alert-rules/1", None, "read"),
    ("PUT", "/api/v1/alert-rules/1", RULE, "admin"),
    ("DELETE", "/api/v1/alert-rules/1", None, "admin"),
    ("GET", "/api/v1/alert-events", None, "read"),
    ("GET", "/api/v1/notification-attempts", None, "read"),
    ("POST", "/api/v1/alert-events/1/ack", {"by": "ops"}, "admin"),
    ("GET", "/api/v1/silences", None, "read"),
    ("POST", "/api/v1/silences", {"rule_id": 1, "ends_at": "2100-01-01", "created_by": "ops", "reason": "x"}, "admin"),
    ("DELETE", "/api/v1/silences/1", None, "admin"),
    ("GET", "/api/v1/digests", None, "read"),
    ("POST", "/api/v1/digests", DIGEST, "admin"),
    ("POST", "/api/v1/digests/preview", DIGEST, "read"),
    ("GET", "/api/v1/digests/1", None, "read"),
    ("PUT", "/api/v1/digests/1", DIGEST, "admin"),
    ("POST", "/api/v1/digests/1/send", None, "admin"),
    ("GET", "/api/v1/digests/1/deliveries", None, "read"),
    ("DELETE", "/api/v1/digests/1", None, "admin"),
    ("GET", "/api/v1/guard/budgets", None, "read"),
    ("POST", "/api/v1/backup", {"to": "relative/folder"}, "admin"),
    ("POST", "/api/v1/reprice?from=2026-01-01&to=2026-01-02&dry_run=true", None, "admin"),
    ("GET", "/api/v1/reprice-runs", None, "read"),
    ("GET", "/api/v1/prices", None, "read"),
    ("GET", "/api/v1/export/focus?from=2026-01-01&to=2026-01-02", None, "read"),
    ("GET", "/api/v1/chargeback?month=2026-01", None, "read"),
    ("POST", "/api/v1/sql", {"sql": "SELECT count(*) FROM llm_calls"}, "read"),
    ("GET", "/api/v1/sql/saved", None, "read"),
    ("POST", "/api/v1/sql/saved", {"name": "calls", "sql": "SELECT count(*) FROM llm_calls"}, "admin"),
    ("DELETE", "/api/v1/sql/saved/1", None, "admin"),
    ("POST", "/api/v1/reconcile", None, "admin"),
    ("GET", "/api/v1/reconciliation", None, "read"),
    ("GET", "/api/v1/reconcile-runs", None, "read"),
    ("GET", "/api/v1/readiness?service=x", None, "read"),
    ("GET", "/api/v1/readiness/history?service=x", None, "read"),
    ("POST", "/api/v1/readiness/attest", ATTESTATION, "admin"),
    ("GET", "/api/v1/readiness/batch-features?service=x", None, "read"),
    ("PUT", "/api/v1/readiness/batch-features", {"service": "x", "features": ["nightly"]}, "admin"),
]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path_factory.mktemp("auth") / "auth.duckdb", tokens=TOKENS)
    yield running
    running.stop()


def send(collector: RunningCollector, method: str, path: str, body: object, token: str | None) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if isinstance(body, bytes):
        return collector.http.request(method, path, content=body, headers={**headers, **PROTOBUF})
    return collector.http.request(method, path, json=body, headers=headers)


def test_every_route_is_covered(guarded: RunningCollector) -> None:
    routes = {
        (method, route.path)
        for route in guarded.collector.app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    ids = {"alert-rules": "rule_id", "alert-events": "event_id", "silences": "silence_id", "digests": "digest_id",
           "saved": "query_id"}  # fmt: skip
    covered = {
        (method, re.sub(r"/([a-z-]+)/1\b", lambda found: f"/{found[1]}/{{{ids[found[1]]}:int}}", path.split("?")[0]))
        for method, path, _, _ in ENDPOINTS
    }
    assert routes == covered
    for method, path, _, kind in ENDPOINTS:
        assert scope_for(method, path.split("?")[0]) == kind


@pytest.mark.parametrize(("method", "path", "body", "kind"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_each_endpoint_wants_its_token(
    guarded: RunningCollector, method: str, path: str, body: object, kind: str
) -> None:
    if kind == "open":
        assert send(guarded, method, path, body, None).status_code == 200
        return
    missing = send(guarded, method, path, body, None)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert f"Bearer <{kind} token>" in missing.json()["error"]
    assert send(guarded, method, path, body, "not-a-token").status_code == 401
    for other in ("ingest", "read"):
        if other != kind:
            refused = send(guarded, method, path, body, getattr(TOKENS, other))
            assert refused.status_code == 403, refused.text
            assert f"needs the {kind} token" in refused.json()["error"]
    for allowed in {kind, "admin"}:
        answer = send(guarded, method, path, body, getattr(TOKENS, allowed))
        assert answer.status_code not in (401, 403), (allowed, answer.text)
        assert answer.status_code < 500, answer.text


def test_an_ingested_call_is_readable_with_the_read_token(guarded: RunningCollector) -> None:
    body = request_with([chat_attributes(**{sc.REQUEST_ID: "req_auth"})], service="auth-app").SerializeToString()
    assert send(guarded, "POST", "/v1/traces", body, TOKENS.ingest).status_code == 200
    answer = send(guarded, "GET", "/api/v1/calls?service=auth-app", None, TOKENS.read)
    assert [call["request_id"] for call in answer.json()["calls"]] == ["req_auth"]
    for token in ("Basic " + TOKENS.read, TOKENS.read):  # the scheme matters, and so does its presence
        headers = {"Authorization": token}
        assert guarded.http.get("/api/v1/summary", headers=headers).status_code == 401


def test_grpc_wants_the_ingest_token(guarded: RunningCollector) -> None:
    request = request_with([chat_attributes(**{sc.REQUEST_ID: "req_grpc_auth"})], service="grpc-auth")
    with grpc.insecure_channel(guarded.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for metadata, code in (
            ((), grpc.StatusCode.UNAUTHENTICATED),
            ((("authorization", "Bearer nope"),), grpc.StatusCode.UNAUTHENTICATED),
            ((("authorization", f"Bearer {TOKENS.read}"),), grpc.StatusCode.PERMISSION_DENIED),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                stub.Export(request, metadata=metadata, timeout=10)
            assert refused.value.code() == code
        stub.Export(request, metadata=(("authorization", f"Bearer {TOKENS.ingest}"),), timeout=10)
    answer = send(guarded, "GET", "/api/v1/calls?service=grpc-auth", None, TOKENS.admin)
    assert len(answer.json()["calls"]) == 1


def collector_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_no_listening_beyond_loopback_without_tokens(tmp_path: Path) -> None:
    assert [is_loopback(host) for host in ("127.0.0.1", "::1", "localhost")] == [True] * 3
    assert [is_loopback(host) for host in ("0.0.0.0", "10.1.2.3", "example.com")] == [False] * 3
    args = collector_args("--db", str(tmp_path / "x.duckdb"), "--host", "0.0.0.0")
    with pytest.raises(SystemExit, match=r"refusing to listen on 0\.0\.0\.0 without tokens") as refused:
        Collector(CollectorConfig.from_args(args, tokens=Tokens(admin="only-admin")))
    assert "LLMLEDGER_INGEST_TOKEN, LLMLEDGER_READ_TOKEN" in str(refused.value)
    assert "only-admin" not in str(refused.value)
    assert not (tmp_path / "x.duckdb").exists()  # refused before opening anything
    check_listen_address("0.0.0.0", TOKENS)
    check_listen_address("127.0.0.1", Tokens())


def test_tokens_come_from_variables_or_files(tmp_path: Path) -> None:
    (tmp_path / "read").write_text("from-a-file\n")
    tokens = Tokens.from_env(
        {"LLMLEDGER_INGEST_TOKEN": "from-env", "LLMLEDGER_READ_TOKEN_FILE": str(tmp_path / "read")}
    )
    assert tokens == Tokens(ingest="from-env", read="from-a-file", admin=None)
    with pytest.raises(SystemExit, match="cannot read the token file"):
        Tokens.from_env({"LLMLEDGER_ADMIN_TOKEN_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SystemExit, match="is empty"):
        Tokens.from_env({"LLMLEDGER_ADMIN_TOKEN_FILE": str(tmp_path / "empty")})


def test_cli_collector_on_all_addresses_with_token_files_never_logs_them(fake: FakeOpenAI, tmp_path: Path) -> None:
    """The real CLI on 0.0.0.0 with tokens from files; a real app sends through configure() with its ingest
    token; no token appears in the collector's output or the app's, nor in the database file."""
    for kind in ("ingest", "read", "admin"):
        (tmp_path / kind).write_text(getattr(TOKENS, kind))
    token_files = {f"LLMLEDGER_{kind.upper()}_TOKEN_FILE": str(tmp_path / kind) for kind in ("ingest", "read", "admin")}
    env = {**os.environ, **token_files}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = tmp_path / "cli.duckdb"
    argv = ["collector", "--db", str(db), "--host", "0.0.0.0", "--port", str(port), "--grpc-port", "-1"]
    collector = subprocess.Popen(
        [sys.executable, "-m", "llmledger_cli", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until_ok(f"{url}/healthz", 30), "collector did not start"
        app_env = {
            **os.environ,
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": "sk-proj-example",
            "LLMLEDGER_ENDPOINT": url,
            "LLMLEDGER_INGEST_TOKEN": TOKENS.ingest,
            "LLMLEDGER_SPOOL_DIR": str(tmp_path / "spool"),
        }
        quickstart = [sys.executable, "examples/quickstart.py"]
        app = subprocess.run(quickstart, env=app_env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert app.returncode == 0, app.stderr
        assert httpx2.get(f"{url}/api/v1/calls", headers={"Authorization": "Bearer wrong"}).status_code == 401
        calls = httpx2.get(f"{url}/api/v1/calls", headers={"Authorization": f"Bearer {TOKENS.read}"}).json()["calls"]
        assert [call["service"] for call in calls] == ["quickstart"]
        collector.terminate()
        output, _ = collector.communicate(timeout=30)
    finally:
        if collector.poll() is None:
            collector.kill()
    assert "0.0.0.0" in output
    for token in (TOKENS.ingest, TOKENS.read, TOKENS.admin):
        assert token not in output
        assert token not in app.stdout + app.stderr
        assert token.encode() not in db.read_bytes()


def test_the_wrapper_and_the_other_clients_pick_the_same_ingest_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmledger import config
    from llmledger.credentials import client_token

    (tmp_path / "ingest").write_text("from-the-file\n")
    monkeypatch.setenv("LLMLEDGER_INGEST_TOKEN_FILE", str(tmp_path / "ingest"))
    setting = next(setting for setting in config.SETTINGS if setting.name == "ingest_token")
    assert config._read_env(setting) == client_token("ingest") == "from-the-file"
    monkeypatch.setenv("LLMLEDGER_INGEST_TOKEN", "from-the-variable")
    assert config._read_env(setting) == client_token("ingest") == "from-the-variable"
