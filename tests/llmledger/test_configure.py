"""configure() in a real process: OTLP/HTTP protobuf to a receiver, resource, token, and the app's own provider."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmledger import semconv as sc
from llmledger.context import hash_user
from llmledger.testing.fake_openai import FakeOpenAI
from tests.otlp_sink import OtlpSink

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    receiver = OtlpSink()
    yield receiver
    receiver.close()


def _run(code_or_file: list[str], fake: FakeOpenAI, sink: OtlpSink, tmp_path: Path, **env: str) -> str:
    environment = {
        **os.environ,
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-proj-example",
        "LLMLEDGER_ENDPOINT": sink.endpoint,
        "LLMLEDGER_INGEST_TOKEN": "ingest-secret",
        "LLMLEDGER_SPOOL_DIR": str(tmp_path / "spool"),
        **env,
    }
    result = subprocess.run(
        [sys.executable, *code_or_file], env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_example_app_exports_to_the_collector(fake: FakeOpenAI, sink: OtlpSink, tmp_path: Path) -> None:
    stdout = _run(["examples/quickstart.py"], fake, sink, tmp_path)

    assert stdout.strip()
    ((headers, _request),) = sink.requests
    assert headers["authorization"] == "Bearer ingest-secret"
    assert headers["content-type"] == "application/x-protobuf"
    ((resource, attrs, name),) = sink.spans()
    assert resource[sc.SERVICE_NAME] == "quickstart"
    assert resource[sc.DEPLOYMENT_ENVIRONMENT_NAME] == "development"
    assert name == "chat gpt-4o-mini"
    assert attrs[sc.FEATURE] == "greeting"
    assert attrs[sc.END_USER] == hash_user("user-42")  # same LLMLEDGER_USER_SALT as this process
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] > 0
    assert "sk-proj-example" not in str(attrs)


APP_WITH_ITS_OWN_PROVIDER = """
import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import llmledger

mine = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(mine))
trace.set_tracer_provider(provider)

assert llmledger.configure(service_name="ignored") is provider
assert llmledger.configure() is provider
llmledger.instrument()
openai.OpenAI().embeddings.create(model="text-embedding-3-small", input="hi")
llmledger.flush()  # spans are emitted off the app's thread
print(len(mine.get_finished_spans()))
"""


def test_app_keeps_its_own_provider(fake: FakeOpenAI, sink: OtlpSink, tmp_path: Path) -> None:
    stdout = _run(["-c", APP_WITH_ITS_OWN_PROVIDER], fake, sink, tmp_path)
    assert stdout.strip() == "1"
    ((_resource, _attrs, name),) = sink.spans()
    assert name == "embeddings text-embedding-3-small"


def test_generated_salt_is_kept_beside_the_spool(fake: FakeOpenAI, sink: OtlpSink, tmp_path: Path) -> None:
    env = {"LLMLEDGER_USER_SALT": ""}
    _run(["examples/quickstart.py"], fake, sink, tmp_path, **env)
    _run(["examples/quickstart.py"], fake, sink, tmp_path, **env)
    salt_file = tmp_path / "spool" / "user_salt"
    assert len(salt_file.read_bytes()) == 64
    first, second = (attrs[sc.END_USER] for _resource, attrs, _name in sink.spans())
    assert first == second != hash_user("user-42")
