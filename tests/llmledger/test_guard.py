"""The guard in the app: budgets that block, downgrade and warn at the right call, that concurrent calls can't
overshoot; circuits that open, probe and close; pacing that avoids a 429; the collector down. The real SDK against
the local fake; budgets given to the guard as the collector's endpoint would (its JSON)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

import llmledger
from llmledger import pricing
from llmledger import semconv as sc
from llmledger.guard.budgets import BudgetBook, parse_budgets
from llmledger.testing.fake_openai import Reply
from tests.conftest import API_KEY, Spans

HI = [{"role": "user", "content": "hi"}]
HI_TOKENS = 8  # what OpenAI bills for [user: "hi"] (3 per message + "user" + "hi" + 3 for the reply)
MAX_TOKENS = 40


class BudgetsEndpoint:
    """The collector's `GET /v1/guard/budgets`, answering whatever document the test gives it."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"as_of": datetime.now(tz=UTC).isoformat(), "budgets": []}
        self.authorization: list[str | None] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.authorization.append(self.headers.get("Authorization"))
                body = json.dumps(endpoint.document).encode()
                self.send_response(200 if self.path == "/v1/guard/budgets" else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[BudgetsEndpoint]:
    served = BudgetsEndpoint()
    yield served
    served.close()


def guarded(spans: Spans, endpoint: BudgetsEndpoint | None = None, **settings: Any) -> llmledger.InstrumentHandle:
    url = endpoint.url if endpoint is not None else "http://127.0.0.1:9"  # nothing listens on the discard port
    return llmledger.instrument(
        tracer_provider=spans.provider,
        guard=llmledger.GuardSettings(collector_url=url, poll_interval_s=3600.0, **settings),
    )


def give(handle: llmledger.InstrumentHandle, endpoint: BudgetsEndpoint, *budgets: dict[str, Any]) -> None:
    """Budgets as `GET /v1/guard/budgets` returns them, read by the guard now."""
    now = datetime.now(tz=UTC)
    start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    endpoint.document = {
        "as_of": now.isoformat(),
        "budgets": [
            {"id": 1, "name": "daily", "window": "day", "window_start": start.isoformat(), "filters": {},
             "limit_usd": "1", "spent_usd": "0", "action": "block", "downgrade_to": None} | budget
            for budget in budgets
        ],
    }  # fmt: skip
    guard = handle.guard
    assert guard is not None
    guard.start()
    assert guard.poller is not None
    assert guard.poller.poll()


def chat(client: openai.OpenAI, model: str = "gpt-4o-mini") -> Any:
    return client.chat.completions.create(model=model, messages=HI, max_tokens=MAX_TOKENS)  # type: ignore[arg-type]


def cost_of(span: Any) -> Decimal:
    attrs = span.attributes
    rates = pricing.rates_for(attrs[sc.GEN_AI_RESPONSE_MODEL], None)
    assert rates is not None
    return rates.cost(pricing.Usage.from_attributes(attrs))


def worst_case(model: str = "gpt-4o-mini") -> Decimal:
    rates = pricing.rates_for(model, None)
    assert rates is not None
    return rates.cost(pricing.Usage(input_tokens=HI_TOKENS, output_tokens=MAX_TOKENS))


def one_call_cost(client: openai.OpenAI, spans: Spans) -> Decimal:
    with llmledger.instrument(tracer_provider=spans.provider):
        chat(client)
    (span,) = spans.finished()
    spans.exporter.clear()
    return cost_of(span)


# --- budgets ----------------------------------------------------------------------------------------------------


def test_ended_calls_hold_their_worst_case_until_settled_and_settle_at_once_near_a_limit() -> None:
    """The app's thread only ends a call; its real cost is worked out later (the finisher's thread) or, when a
    decision would be near a limit, right then: the books err early, never late, and never block one call early."""
    now = datetime.now(tz=UTC)
    day = datetime(now.year, now.month, now.day, tzinfo=UTC).isoformat()
    book = BudgetBook()
    book.apply(*parse_budgets({"as_of": now.isoformat(), "budgets": [
        {"id": 1, "name": "daily", "window": "day", "window_start": day, "filters": {}, "limit_usd": "1",
         "spent_usd": "0", "action": "block"}]}))  # fmt: skip
    (budget,) = book.budgets
    labels = {"service": "app", "model": "gpt-4o-mini"}
    worst, real = Decimal("0.40"), Decimal("0.10")
    first = book.decide(dict(labels), lambda model, exact: worst, now).reservation
    assert first is not None
    book.end(first, lambda: real, now.timestamp())
    second = book.decide(dict(labels), lambda model, exact: worst, now).reservation  # 0.40 + 0.40 fits
    assert second is not None
    assert first.settled_at is None  # far from the limit, the app's thread never works out a cost
    assert book.spent(budget, now) == 2 * worst
    book.end(second, lambda: real, now.timestamp())
    third = book.decide(dict(labels), lambda model, exact: worst, now).reservation  # 0.80 + 0.40 would not
    assert third is not None
    assert (first.settled_at, first.amount, second.amount) == (now, real, real)
    assert book.spent(budget, now) == 2 * real + worst
    book.end(third, lambda: 1 / 0, now.timestamp())  # a cost that can't be worked out keeps the worst case
    book.settle_ended(third)
    book.settle_ended(first)  # settling twice changes nothing
    assert book.spent(budget, now) == 2 * real + worst
    with pytest.raises(llmledger.BudgetExceeded):
        book.decide(dict(labels), lambda model, exact: Decimal("0.41"), now)


def test_a_budget_blocks_at_the_call_that_would_cross_it_and_not_one_earlier(fake, client, spans, endpoint) -> None:
    each = one_call_cost(client, spans)
    worst = worst_case()
    assert worst > each
    limit = 3 * each + worst - Decimal("0.000000001")  # three calls fit; the fourth's worst case doesn't
    sent_before = len(fake.requests)
    with guarded(spans, endpoint) as handle:
        give(handle, endpoint, {"limit_usd": str(limit)})
        for _ in range(3):
            chat(client)
        with pytest.raises(llmledger.BudgetExceeded, match=r"budget 'daily' \(rule 1\).*spent \$") as blocked:
            chat(client)
    assert len(fake.requests) == sent_before + 3  # the blocked call never left the process
    assert blocked.value.spent_usd == 3 * each
    assert blocked.value.limit_usd == limit
    *passed, stopped = spans.finished()
    assert [span.attributes.get(sc.GUARD_ACTION) for span in passed] == [None, None, None]
    assert all(span.attributes[sc.GUARD_ENABLED] for span in passed)
    assert stopped.attributes[sc.GUARD_ACTION] == "blocked"
    assert stopped.attributes[sc.GUARD_BUDGET_ID] == 1
    assert stopped.attributes[sc.ERROR_TYPE] == "BudgetExceeded"
    assert sc.GEN_AI_USAGE_COST_AMOUNT not in stopped.attributes


def test_a_budget_covers_only_the_calls_its_filters_match(fake, client, spans, endpoint) -> None:
    with guarded(spans, endpoint) as handle:
        give(handle, endpoint, {"limit_usd": "0", "filters": {"team": ["search"], "model": ["gpt-4o-mini"]}})
        chat(client)  # no team: not covered
        with llmledger.attributes(team="ads"):
            chat(client)
        with llmledger.attributes(team="search"):
            chat(client, "gpt-4o")  # another model: not covered
            with pytest.raises(llmledger.BudgetExceeded):
                chat(client)


def test_concurrent_threads_cannot_overshoot(fake, client, spans, endpoint) -> None:
    each = one_call_cost(client, spans)
    limit = 10 * each + worst_case() / 2
    blocked = []

    def work() -> None:
        for _ in range(10):
            try:
                chat(client)
            except llmledger.BudgetExceeded:
                blocked.append(1)
                return

    with guarded(spans, endpoint) as handle:
        give(handle, endpoint, {"limit_usd": str(limit)})
        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    spent = sum((cost_of(s) for s in spans.finished() if sc.GUARD_ACTION not in s.attributes), Decimal(0))
    assert len(blocked) == 6
    assert 9 * each <= spent <= limit


async def test_concurrent_tasks_cannot_overshoot(fake, async_client, spans, endpoint) -> None:
    with llmledger.instrument(tracer_provider=spans.provider):
        await async_client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=MAX_TOKENS)
    each = cost_of(spans.finished()[0])
    spans.exporter.clear()
    limit = 8 * each + worst_case() / 2

    async def work() -> int:
        done = 0
        for _ in range(10):
            try:
                await async_client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=MAX_TOKENS)
            except llmledger.BudgetExceeded:
                return done
            done += 1
        return done

    with guarded(spans, endpoint) as handle:
        give(handle, endpoint, {"limit_usd": str(limit)})
        await asyncio.gather(*(work() for _ in range(5)))
    spent = sum((cost_of(s) for s in spans.finished() if sc.GUARD_ACTION not in s.attributes), Decimal(0))
    assert 7 * each <= spent <= limit


def test_downgrade_sends_the_cheaper_model_and_says_so(fake, client, spans, endpoint) -> None:
    with guarded(spans, endpoint) as handle:
        give(handle, endpoint, {"limit_usd": "0", "action": "downgrade", "downgrade_to": "gpt-4o-mini",
                      "filters": {"model": ["gpt-4o"]}})  # fmt: skip
        chat(client, "gpt-4o")
    assert fake.requests[-1].body["model"] == "gpt-4o-mini"
    attrs = spans.one().attributes
    assert attrs[sc.GUARD_ACTION] == "downgraded"
    assert attrs[sc.GUARD_ORIGINAL_MODEL] == "gpt-4o"
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert spans.one().name == "chat gpt-4o-mini"


def test_a_downgrade_over_its_own_budget_is_blocked(fake, client, spans, endpoint) -> None:
    with guarded(spans, endpoint) as handle:
        give(
            handle,
            endpoint,
            {"id": 1, "limit_usd": "0", "action": "downgrade", "downgrade_to": "gpt-4o-mini",
             "filters": {"model": ["gpt-4o"]}},
            {"id": 2, "name": "mini", "limit_usd": "0", "filters": {"model": ["gpt-4o-mini"]}},
        )  # fmt: skip
        with pytest.raises(llmledger.BudgetExceeded, match="mini"):
            chat(client, "gpt-4o")


def test_warn_logs_once_calls_back_and_marks_the_span(fake, client, spans, endpoint, caplog) -> None:
    seen = []
    with guarded(spans, endpoint, on_warn=seen.append) as handle:
        give(handle, endpoint, {"id": 7, "name": "soft", "limit_usd": "0", "action": "warn"})
        with caplog.at_level(logging.WARNING, logger="llmledger"):
            chat(client)
            chat(client)
    first, second = spans.finished()
    assert [budget.id for budget in seen] == [7]
    assert sum("budget 'soft'" in record.getMessage() for record in caplog.records) == 1
    assert first.attributes[sc.GUARD_ACTION] == "warned"
    assert [event.name for event in first.events] == [sc.GUARD_WARNED_EVENT]
    assert sc.GUARD_ACTION not in second.attributes  # once per budget and window


def test_a_new_utc_day_starts_from_zero_before_the_next_poll(fake, client, spans, endpoint) -> None:
    with guarded(spans, endpoint) as handle:
        give(handle, endpoint, {"limit_usd": "0.0001", "spent_usd": "5",
                      "window_start": "2020-01-01T00:00:00+00:00"})  # fmt: skip
        chat(client)  # yesterday's spend is not today's


def test_the_collector_down_fails_open_by_default_and_closed_when_asked(fake, client, spans, endpoint) -> None:
    with guarded(spans, endpoint):  # never reached the collector: no budgets known, calls go through
        chat(client)
    with guarded(spans, fail_closed=True), pytest.raises(llmledger.BudgetExceeded, match="fails closed"):
        chat(client)


def test_the_guard_off_changes_nothing_and_records_nothing(fake, client, spans, instrumented) -> None:
    chat(client)
    assert sc.GUARD_ENABLED not in spans.one().attributes


# --- circuit breaker --------------------------------------------------------------------------------------------

ERROR_500 = Reply(500, '{"error": {"message": "boom", "type": "server_error"}}')


def test_a_circuit_opens_fails_fast_probes_and_closes(fake, spans) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    with client, guarded(spans, budgets=False, failure_threshold=3, cool_down_s=0.3) as handle:
        fake.enqueue(ERROR_500, ERROR_500, ERROR_500)
        for _ in range(3):
            with pytest.raises(openai.InternalServerError):
                chat(client)
        sent = len(fake.requests)
        with pytest.raises(llmledger.CircuitOpen, match="openai/gpt-4o-mini"):
            chat(client)
        assert len(fake.requests) == sent  # failed fast
        assert handle.guard is not None
        assert handle.guard.breakers is not None
        assert handle.guard.breakers.state("openai/gpt-4o-mini") == "open"
        threading.Event().wait(0.35)
        fake.enqueue(ERROR_500)
        with pytest.raises(openai.InternalServerError):
            chat(client)  # the half-open probe fails: open again
        with pytest.raises(llmledger.CircuitOpen):
            chat(client)
        threading.Event().wait(0.35)
        chat(client)  # the probe succeeds
        assert handle.guard.breakers.state("openai/gpt-4o-mini") == "closed"
        chat(client)
    actions = [span.attributes.get(sc.GUARD_ACTION) for span in spans.finished()]
    assert actions == [None, None, None, "circuit_open", None, "circuit_open", None, None]


def test_4xx_the_app_caused_never_open_a_circuit(fake, spans) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    bad = Reply(400, '{"error": {"message": "bad", "type": "invalid_request_error"}}')
    with client, guarded(spans, budgets=False, failure_threshold=2):
        fake.enqueue(bad, bad, bad)
        for _ in range(3):
            with pytest.raises(openai.BadRequestError):
                chat(client)
        chat(client)


def test_an_open_circuit_reroutes_to_its_fallback(fake, spans) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    with client, guarded(spans, budgets=False, failure_threshold=1, fallbacks={"gpt-4o": "gpt-4o-mini"}):
        fake.enqueue(ERROR_500)
        with pytest.raises(openai.InternalServerError):
            chat(client, "gpt-4o")
        chat(client, "gpt-4o")
    assert fake.requests[-1].body["model"] == "gpt-4o-mini"
    rerouted = spans.finished()[-1].attributes
    assert (rerouted[sc.GUARD_ACTION], rerouted[sc.GUARD_BREAKER]) == ("rerouted", "openai/gpt-4o")
    assert rerouted[sc.GUARD_ORIGINAL_MODEL] == "gpt-4o"


# --- pacing -----------------------------------------------------------------------------------------------------


def status(client: openai.OpenAI) -> int:
    try:
        chat(client)
    except openai.RateLimitError:
        return 429
    return 200


def test_pacing_avoids_the_429_an_unpaced_run_hits(fake, spans) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    with client:
        fake.limit_requests(3, 0.5)
        with llmledger.instrument(tracer_provider=spans.provider, guard=llmledger.GuardSettings(budgets=False)):
            unpaced = [status(client) for _ in range(6)]
        assert 429 in unpaced
        threading.Event().wait(0.6)
        spans.exporter.clear()
        fake.limit_requests(3, 0.5)
        with guarded(spans, budgets=False, pace=True, pace_max_wait_s=1.0):
            paced_run = [status(client) for _ in range(6)]
    assert paced_run == [200] * 6
    paced = [s.attributes for s in spans.finished() if s.attributes.get(sc.GUARD_ACTION) == "paced"]
    assert paced
    assert all(0 < attrs[sc.GUARD_WAIT_MS] <= 1000 for attrs in paced)


# --- bad settings -----------------------------------------------------------------------------------------------


def test_unusable_settings_are_refused_when_set(monkeypatch) -> None:
    with pytest.raises(ValueError, match="fallback model 'gpt-nonexistent'"):
        llmledger.GuardSettings(fallbacks={"gpt-4o": "gpt-nonexistent"})
    with pytest.raises(ValueError, match="pace_max_wait_s"):
        llmledger.GuardSettings(pace_max_wait_s=-1)
    from llmledger import config

    monkeypatch.setenv("LLMLEDGER_GUARD", "true,maybe")
    config.settings.cache_clear()
    try:
        with pytest.raises(ValueError, match="LLMLEDGER_GUARD: maybe"):
            llmledger.instrument(tracer_provider=Spans().provider)
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()


def test_a_malformed_budgets_document_changes_nothing(fake, client, spans, endpoint) -> None:
    with guarded(spans, endpoint) as handle:
        give(handle, endpoint, {"limit_usd": "0"})
        with pytest.raises(ValueError, match="action"):
            parse_budgets({"as_of": "2026-12-07T00:00:00Z", "budgets": [{"id": 1, "action": "explode"}]})
        with pytest.raises(llmledger.BudgetExceeded):
            chat(client)


def test_the_readme_example_runs() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "examples/guard.py"], cwd=root, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "rerouted: answered by gpt-4o-mini" in result.stdout
    assert "the fake was asked for gpt-4o-mini" in result.stdout


def test_a_stream_is_never_cut_and_the_next_call_is_decided(fake, client, spans, endpoint) -> None:
    each = one_call_cost(client, spans)
    with guarded(spans, endpoint) as handle:
        give(handle, endpoint, {"limit_usd": str(worst_case() + each / 2)})
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=HI,
            max_tokens=MAX_TOKENS,
            stream=True,  # type: ignore[arg-type]
        )
        chunks = list(stream)  # admitted before it started: read to the end whatever the spend meanwhile
        assert chunks
        with pytest.raises(llmledger.BudgetExceeded):
            chat(client)
    streamed, blocked = spans.finished()
    assert sc.GUARD_ACTION not in streamed.attributes
    assert blocked.attributes[sc.GUARD_ACTION] == "blocked"


def test_raw_responses_are_guarded_and_settled_when_parsed(fake, client, spans, endpoint) -> None:
    each = one_call_cost(client, spans)
    with guarded(spans, endpoint) as handle:
        give(handle, endpoint, {"limit_usd": str(each + worst_case() + each / 2)})  # two calls fit, not three
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=HI,
            max_tokens=MAX_TOKENS,  # type: ignore[arg-type]
        )
        raw.parse()  # settles the first call to its real cost: the second still fits
        client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=HI, max_tokens=MAX_TOKENS
        ).parse()  # type: ignore[arg-type]
        with pytest.raises(llmledger.BudgetExceeded):
            client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI, max_tokens=MAX_TOKENS)  # type: ignore[arg-type]


def test_a_budget_for_a_service_covers_the_calls_of_the_app_named_so(fake, client, endpoint) -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: "support-bot"}))
    settings = llmledger.GuardSettings(collector_url=endpoint.url, poll_interval_s=3600.0)
    with llmledger.instrument(tracer_provider=provider, guard=settings) as handle:
        give(handle, endpoint, {"id": 1, "limit_usd": "0", "filters": {"service": ["billing-worker"]}})
        chat(client)  # another app's budget
        give(handle, endpoint, {"id": 2, "limit_usd": "0", "filters": {"service": ["support-bot"]}})
        with pytest.raises(llmledger.BudgetExceeded):
            chat(client)


# --- what the guard reads of a request itself (before the request leaves; the span's attributes come later) -----


def test_an_end_user_budget_covers_the_user_the_request_names_unless_the_block_names_one(
    fake, client, spans, endpoint
) -> None:
    from llmledger.context import hash_user

    def chat_as(user: str) -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=MAX_TOKENS, user=user)  # type: ignore[arg-type]

    with guarded(spans, endpoint) as handle:
        give(handle, endpoint, {"limit_usd": "0", "filters": {"end_user": [hash_user("mallory")]}})
        chat_as("alice")
        with pytest.raises(llmledger.BudgetExceeded):
            chat_as("mallory")
        with llmledger.attributes(user="alice"):
            chat_as("mallory")  # the block's end user is the call's (and its span's)
        with llmledger.attributes(user="mallory"), pytest.raises(llmledger.BudgetExceeded):
            chat(client)
    users = [span.attributes[sc.END_USER] for span in spans.finished()]
    assert users == [hash_user(name) for name in ("alice", "mallory", "alice", "mallory")]


@pytest.mark.parametrize("cap", ["max_tokens", "max_completion_tokens"])
def test_the_worst_case_uses_the_output_cap_the_request_sets(fake, client, spans, endpoint, cap: str) -> None:
    with guarded(spans, endpoint) as handle:
        give(handle, endpoint, {"limit_usd": str(worst_case())})  # exactly one capped call fits (">")
        with pytest.raises(llmledger.BudgetExceeded):
            client.chat.completions.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]  # 4096 out
        client.chat.completions.create(model="gpt-4o-mini", messages=HI, **{cap: MAX_TOKENS})  # type: ignore[call-overload]
    assert spans.finished()[-1].attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] == MAX_TOKENS


def test_the_worst_case_is_priced_at_the_service_tier_the_request_asks(fake, client, spans, endpoint) -> None:
    priority = pricing.rates_for("gpt-4o-mini", "priority")
    assert priority is not None
    assert priority.cost(pricing.Usage(input_tokens=HI_TOKENS, output_tokens=MAX_TOKENS)) > worst_case()
    with guarded(spans, endpoint) as handle:
        give(handle, endpoint, {"limit_usd": str(worst_case())})
        with pytest.raises(llmledger.BudgetExceeded):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=HI, max_tokens=MAX_TOKENS, service_tier="priority"
            )  # type: ignore[arg-type]
        chat(client)  # the default tier's worst case fits exactly


def test_a_circuit_is_the_provider_each_client_is_billed_by(fake, spans) -> None:
    acme = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    own = openai.OpenAI(base_url=fake.base_url.replace("127.0.0.1", "localhost"), api_key=API_KEY, max_retries=0)
    settings = llmledger.GuardSettings(budgets=False, failure_threshold=1)
    with (
        acme,
        own,
        llmledger.instrument(tracer_provider=spans.provider, providers={"127.0.0.1": "acme"}, guard=settings),
    ):
        chat(own)  # the guard remembers the last client's provider: the next client is not this one
        fake.enqueue(ERROR_500)
        with pytest.raises(openai.InternalServerError):
            chat(acme)
        chat(own)  # a circuit of its own (self_hosted/gpt-4o-mini), closed
        with pytest.raises(llmledger.CircuitOpen, match="acme/gpt-4o-mini"):
            chat(acme)
    providers = [span.attributes[sc.GEN_AI_PROVIDER_NAME] for span in spans.finished()]
    assert providers == [sc.PROVIDER_SELF_HOSTED, "acme", sc.PROVIDER_SELF_HOSTED, "acme"]
    assert spans.finished()[-1].attributes[sc.GUARD_BREAKER] == "acme/gpt-4o-mini"


def test_a_guarded_stream_settles_at_its_real_cost(fake, client, spans, endpoint) -> None:
    each = one_call_cost(client, spans)
    with guarded(spans, endpoint) as handle:
        give(handle, endpoint, {"limit_usd": str(each + worst_case() + each / 2)})  # two calls fit, not three
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=MAX_TOKENS, stream=True)  # type: ignore[arg-type]
        assert list(stream)
        chat(client)  # fits only if the stream's reservation settled to its usage
        with pytest.raises(llmledger.BudgetExceeded):
            chat(client)
