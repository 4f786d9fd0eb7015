from __future__ import annotations

import os
import tempfile

# Settings are read once per process: fix the ones tests rely on before llmledger reads them.
os.environ["LLMLEDGER_USER_SALT"] = "test-salt"
os.environ["LLMLEDGER_SPOOL_DIR"] = tempfile.mkdtemp(prefix="llmledger-test-spool-")
os.environ.pop("LLMLEDGER_CAPTURE_CONTENT", None)
os.environ.pop("LLMLEDGER_STREAM_USAGE", None)
# The fake OpenAI server on loopback stands in for api.openai.com (loopback is otherwise a self-hosted server); set
# here so that apps the tests start in other processes inherit it.
os.environ["LLMLEDGER_PROVIDERS"] = "127.0.0.1=openai"
# The tests' collectors decode on their receiving threads (no ingest pool: two processes to start per collector)
# unless the run asks for the pool (LLMLEDGER_INGEST_WORKERS=2); tests/collector/test_ingest_pool.py always has one.
os.environ.setdefault("LLMLEDGER_INGEST_WORKERS", "0")

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from streamlit import config as streamlit_config

import llmledger
from llmledger import diagnostics
from llmledger.testing.fake_openai import FakeOpenAI

if TYPE_CHECKING:
    from .lake_services import HAProxy, MotoS3, PostgresCluster

diagnostics.strict = True
# AppTest runs the dashboard in this process, where Streamlit's server address is unset (every interface): tests
# stand for a dashboard on loopback, which needs no sign-in.
streamlit_config.set_option("server.address", "127.0.0.1")
API_KEY = "sk-proj-test-key-0123456789"


@pytest.fixture(scope="session", autouse=True)
def _no_credentials_from_the_developer_environment() -> None:
    for name in ("INGEST_TOKEN", "READ_TOKEN", "ADMIN_TOKEN", "DASHBOARD_PASSWORD_HASH"):
        os.environ.pop(f"LLMLEDGER_{name}", None)
        os.environ.pop(f"LLMLEDGER_{name}_FILE", None)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeOpenAI) -> FakeOpenAI:
    fake_server.reset()
    return fake_server


class Spans:
    """Finished spans, read after any queued token estimates have landed."""

    def __init__(self) -> None:
        self.errors_before = sum(diagnostics.internal_error_counts().values())
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def finished(self) -> list[ReadableSpan]:
        assert llmledger.flush(timeout=30)
        # The finisher's thread can't raise into the test: its internal errors are counted instead.
        assert sum(diagnostics.internal_error_counts().values()) == self.errors_before, diagnostics.recent_errors()
        return list(self.exporter.get_finished_spans())

    def one(self) -> ReadableSpan:
        spans = self.finished()
        assert len(spans) == 1, [span.name for span in spans]
        return spans[0]


@pytest.fixture
def spans() -> Spans:
    return Spans()


@pytest.fixture
def instrumented(spans: Spans) -> Iterator[llmledger.InstrumentHandle]:
    handle = llmledger.instrument(tracer_provider=spans.provider)
    yield handle
    handle.uninstrument()


def make_client(fake: FakeOpenAI, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, **kwargs)


def make_async_client(fake: FakeOpenAI, **kwargs: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, **kwargs)


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with make_client(fake) as instance:
        yield instance


@pytest.fixture
async def async_client(fake: FakeOpenAI) -> Any:
    async with make_async_client(fake) as instance:
        yield instance


# The lake tests' services. Missing binaries fail rather than skip: CI installs them (.ci/run), so a skip would hide a
# broken setup.
@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    from .lake_services import PostgresCluster, find_postgres_bindir

    if find_postgres_bindir() is None:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql (.ci/run does)")
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def moto_s3() -> Iterator[MotoS3]:
    from .lake_services import MotoS3

    with MotoS3() as s3:
        yield s3


@pytest.fixture
def start_haproxy() -> Iterator[Callable[[Sequence[tuple[str, int]]], HAProxy]]:
    """Starts an HAProxy in front of the given (host, port) backends; all are stopped after the test."""
    from .lake_services import HAProxy, find_haproxy

    if find_haproxy() is None:
        pytest.fail("haproxy not found: apt-get install haproxy (.ci/run does)")
    started: list[HAProxy] = []

    def start(backends: Sequence[tuple[str, int]]) -> HAProxy:
        started.append(HAProxy(backends))
        return started[-1].start()

    yield start
    for proxy in started:
        proxy.stop()
