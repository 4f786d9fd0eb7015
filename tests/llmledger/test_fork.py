"""A forked child's calls become spans too, though the parent's finisher thread is not copied by `fork()`."""

from __future__ import annotations

import json
import os
import traceback

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmledger
from llmledger.testing.fake_openai import FakeOpenAI
from tests.conftest import make_client

MESSAGES = [{"role": "user", "content": "hi"}]


def _in_child(fake: FakeOpenAI, parent_handle: llmledger.InstrumentHandle) -> dict[str, object]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    parent_handle.uninstrument()  # the parent's spans go to the parent's exporter; the child's come here
    with (
        llmledger.instrument(tracer_provider=provider),
        make_client(fake) as client,
    ):  # not the parent's sockets
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        flushed = llmledger.flush(timeout=5)
    return {"flushed": flushed, "spans": [span.name for span in exporter.get_finished_spans()]}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings(  # Python 3.12+ warns on forking a process with threads (the fake server's, ours)
    r"ignore:This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead to deadlocks:DeprecationWarning"
)
def test_a_forked_child_emits_its_own_spans(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented: llmledger.InstrumentHandle
) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # starts the finisher thread
    assert spans.one().name == "chat gpt-4o-mini"

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            with os.fdopen(write_end, "w") as out:
                out.write(json.dumps(_in_child(fake, instrumented)))
            code = 0
        except BaseException:  # noqa: BLE001 - the child reports any failure, then exits
            traceback.print_exc()
        finally:
            os._exit(code)

    os.close(write_end)
    with os.fdopen(read_end) as answer:
        seen = answer.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert json.loads(seen) == {"flushed": True, "spans": ["chat gpt-4o-mini"]}

    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # the parent carries on as before
    assert [span.name for span in spans.finished()] == ["chat gpt-4o-mini"] * 2
