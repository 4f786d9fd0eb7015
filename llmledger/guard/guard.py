"""One process's guard: the circuit breakers, the budgets and the pacer, decided on the app's thread before a
request leaves (`admit`) and told how the call ended (`release`). Off, it isn't there: the call path checks for it
once. Only `BudgetExceeded` and `CircuitOpen` ever reach the app; any other failure of ours lets the call through."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from llmledger import config, diagnostics, pricing
from llmledger import semconv as sc
from llmledger.context import hash_user
from llmledger.guard.breaker import Breakers
from llmledger.guard.budgets import LABELS, BudgetBook, Reservation
from llmledger.guard.errors import BudgetExceeded, CircuitOpen
from llmledger.guard.pacer import Pacer
from llmledger.guard.poller import BudgetPoller
from llmledger.guard.prompt_bound import prompt_token_bound
from llmledger.guard.settings import GuardSettings
from llmledger.wrapper import extract, tokens
from llmledger.wrapper.providers import client_provider

log = logging.getLogger("llmledger")
# A settled call stays in the local totals until a snapshot this much younger than it has arrived: the export delay
# (LLMLEDGER_EXPORT_DELAY_MS) plus the collector's commit, with room to spare. Until then the collector may count it
# too: the guard errs early (up to this long of the process's own spend), never late.
_COMMIT_MARGIN_S = 2.0


@dataclass(slots=True)
class Ticket:
    """What `admit` decided, for `release`."""

    breaker: str
    probe: bool
    reservation: Reservation | None
    model: str
    provider: str


class Call(Protocol):
    """What `release` reads of a call (the wrapper's `CallRecorder`), when its cost is worked out: its attributes
    then (the span's, once the finisher has built them), not those when it ended."""

    attrs: dict[str, Any]
    endpoint: extract.Endpoint
    body: Mapping[str, Any]
    result: Any
    error: BaseException | None


class Guard:
    def __init__(self, settings: GuardSettings, resource: Mapping[str, Any]) -> None:
        self.settings = settings
        # The tracer provider's resource names the app; before configure() there is none yet: the settings do.
        self.service = resource.get(sc.SERVICE_NAME) or config.resolve("service_name")
        self.environment = resource.get(sc.DEPLOYMENT_ENVIRONMENT_NAME) or config.resolve("environment")
        self.book = (
            BudgetBook(_export_margin_s(), settings.fail_closed, stale_after_s=3 * settings.poll_interval_s)
            if settings.budgets
            else None
        )
        self.breakers = Breakers(settings) if settings.breaker else None
        self.pacer = Pacer(settings.pace_max_wait_s) if settings.pace else None
        self.poller: BudgetPoller | None = None
        self._rates_seen: dict[tuple[str, str | None, str], pricing.Rates | None] = {}  # the price list is fixed
        self._last_client: tuple[weakref.ref[Any], Mapping[str, str], str] | None = None  # see _provider
        parts = (("budgets", self.book), ("breaker", self.breakers), ("pace", self.pacer))
        self.features = ",".join(name for name, part in parts if part is not None)

    def start(self) -> None:
        """Begin reading budgets from the collector (at the first call; `instrument()` does no I/O)."""
        if self.book is None or self.poller is not None:
            return
        from llmledger.export.configure import collector_target

        base, headers = collector_target()
        base = (self.settings.collector_url or base).rstrip("/")
        self.poller = BudgetPoller(self.book, f"{base}/v1/guard/budgets", headers, self.settings.poll_interval_s)
        self.poller.start()

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.stop()

    def admit(self, attrs: dict[str, Any], body: Mapping[str, Any], api_type: str, client: Any,
              providers: Mapping[str, str], scope: Mapping[str, Any]) -> tuple[Ticket, float, str | None]:  # fmt: skip
        """Decide a call: (ticket, seconds to hold it, the model to send instead or None). Raises the guard's two
        exceptions, with the decision already on `attrs` (the call's span attributes so far) for its span.
        It reads what it needs of the request itself (model, output cap, service tier, who bills `client`, the
        `attributes()` labels in `scope`), as `CallRecorder.prepare` will: the rest of the request's attributes are
        worked out later, on the finisher's thread."""
        attrs[sc.GUARD_ENABLED] = True
        attrs[sc.GUARD_FEATURES] = self.features
        asked = body.get("model")
        if not isinstance(asked, str):
            asked = ""
        provider = self._provider(client, providers)
        model, breaker, probe = self._circuit(attrs, provider, asked)
        output = extract.request_max_tokens(body)
        if output is None or output <= 0:
            output = self.settings.default_max_output_tokens
        try:
            reservation, model = self._budgets(attrs, body, api_type, provider, model, output, scope)
            wait = 0.0
            if self.pacer is not None:
                wait = self.pacer.wait_for(breaker, output)
                if wait > 0:
                    attrs[sc.GUARD_ACTION] = attrs.get(sc.GUARD_ACTION) or "paced"
                    attrs[sc.GUARD_WAIT_MS] = wait * 1000
        except BaseException:
            if probe and self.breakers is not None:
                self.breakers.release_probe(breaker)
            raise
        if model != asked:
            attrs[sc.GUARD_ORIGINAL_MODEL] = asked
            return Ticket(breaker, probe, reservation, model, provider), wait, model
        return Ticket(breaker, probe, reservation, model, provider), wait, None

    def release(self, ticket: Ticket, call: Call, headers: Any) -> None:
        """The call ended (on the app's thread): tell its circuit and the pacer, and end its reservation; what it
        really cost is worked out in `settle`, on the finisher's thread."""
        if self.breakers is not None:
            self.breakers.record(ticket.breaker, call.error, ticket.probe)
        if self.pacer is not None and headers is not None:
            self.pacer.observe(ticket.breaker, headers)
        if ticket.reservation is not None and self.book is not None:
            self.book.end(ticket.reservation, functools.partial(self._cost, ticket, call), time.time())

    def settle(self, ticket: Ticket) -> None:
        """After the call's span is out (the finisher's thread): its reservation becomes its real cost."""
        if ticket.reservation is not None and self.book is not None:
            self.book.settle_ended(ticket.reservation)

    # --- the three parts ----------------------------------------------------------------------------------------

    def _circuit(self, attrs: dict[str, Any], provider: str, model: str) -> tuple[str, str, bool]:
        breaker = f"{provider}/{model}"
        if self.breakers is None:
            return model, breaker, False
        try:
            return model, breaker, self.breakers.admit(breaker)
        except CircuitOpen:
            fallback = self.settings.fallbacks.get(model)
            if fallback is None:
                attrs[sc.GUARD_ACTION], attrs[sc.GUARD_BREAKER] = "circuit_open", breaker
                raise
            attrs[sc.GUARD_ACTION], attrs[sc.GUARD_BREAKER] = "rerouted", breaker
            rerouted = f"{provider}/{fallback}"
            try:
                return fallback, rerouted, self.breakers.admit(rerouted)
            except CircuitOpen:
                attrs[sc.GUARD_ACTION], attrs[sc.GUARD_BREAKER] = "circuit_open", rerouted
                raise

    def _budgets(self, attrs: dict[str, Any], body: Mapping[str, Any], api_type: str, provider: str,
                 model: str, output: int, scope: Mapping[str, Any]) -> tuple[Reservation | None, str]:  # fmt: skip
        book = self.book
        if book is None:
            return None, model
        if self.poller is None:
            self.start()
        may_fail_closed = self.settings.fail_closed and book.stale()
        if not book.budgets and not may_fail_closed:
            return None, model
        key = (self.service, self.environment, scope.get(sc.TEAM), scope.get(sc.FEATURE), _end_user(scope, body), model)
        cover = book.cover(key)
        if not cover.budgets and not may_fail_closed:  # nothing covers the call (its model's budgets downgrade)
            return None, model
        tier = body.get("service_tier")
        if not isinstance(tier, str):
            tier = None
        rates = self._rates(model, tier, provider)
        counted: dict[bool, int] = {}
        costs: dict[tuple[str, bool], Decimal | None] = {}
        if rates is not None and cover.budgets:  # far from every limit, this is all (BudgetBook.reserve_if_far)
            bound = prompt_token_bound(body)
            worst = rates.text_cost(bound, output)
            reservation = book.reserve_if_far(cover, worst)
            if reservation is not None:
                return reservation, model
            counted[False], costs[(model, False)] = bound, worst

        def worst_case(candidate: str, exact: bool) -> Decimal | None:
            key = (candidate, exact)
            if key in costs:
                return costs[key]
            rates = self._rates(candidate, tier, provider)
            if rates is not None and exact not in counted:
                bound = tokens.count_prompt_tokens(candidate, body, api_type) if exact else prompt_token_bound(body)
                counted[exact] = bound or 0
            costs[key] = cost = rates.text_cost(counted.get(exact, 0), output) if rates is not None else None
            return cost

        labels = dict(zip(LABELS, key, strict=True))
        try:
            decision = book.decide(labels, worst_case)
        except BudgetExceeded as exc:
            attrs[sc.GUARD_ACTION] = "blocked"
            if exc.budget_id is not None:
                attrs[sc.GUARD_BUDGET_ID] = exc.budget_id
            raise
        if decision.action is not None:
            attrs[sc.GUARD_ACTION] = decision.action
            if decision.budget_id is not None:
                attrs[sc.GUARD_BUDGET_ID] = decision.budget_id
        for budget in decision.warned:
            log.warning("llmledger budget %r (rule %s) reached its %s limit of $%s", budget.name, budget.id,
                        budget.window, budget.limit_usd)  # fmt: skip
            if self.settings.on_warn is not None:
                try:
                    self.settings.on_warn(budget)
                except Exception as exc:  # noqa: BLE001 - the app's callback never breaks the app's call
                    diagnostics.internal_error("guard on_warn callback", exc, reraise=False)
        return decision.reservation, decision.model

    def _provider(self, client: Any, providers: Mapping[str, str]) -> str:
        """Who bills the client's calls (`gen_ai.provider.name`, decided once per client by `client_provider`),
        remembered for the last client: most apps have one, and this saves a weak dictionary's lookup per call."""
        last = self._last_client
        if last is not None and last[0]() is client and last[1] is providers:
            return last[2]
        provider = client_provider(client, providers).get(sc.GEN_AI_PROVIDER_NAME) or sc.PROVIDER_OPENAI
        with contextlib.suppress(TypeError):  # a client that can't be weakly referenced is looked up each time
            self._last_client = (weakref.ref(client), providers, provider)
        return provider

    def _rates(self, model: str, tier: str | None, provider: str) -> pricing.Rates | None:
        key = (model, tier, provider)
        rates = self._rates_seen.get(key, _UNSEEN)
        if rates is _UNSEEN:
            if len(self._rates_seen) >= 1000:
                self._rates_seen.clear()
            rates = self._rates_seen[key] = pricing.rates_for(model, tier, provider=provider)
        return rates  # type: ignore[return-value]

    def _cost(self, ticket: Ticket, call: Call) -> Decimal | None:
        """What the call cost, for its reservation: 0 when it failed without usage (OpenAI bills nothing), None
        (keep the worst case) when its tokens aren't known yet (a stream left early is counted later)."""
        result, endpoint = call.result, call.endpoint
        usage_attrs: Mapping[str, Any] = call.attrs
        if result is not None:
            usage = getattr(result, "usage", None)
            if usage is not None and endpoint.usage_style in ("chat", "responses"):
                # Only the counts: the finisher thread extracts the rest later.
                usage_attrs = extract.usage_attributes(usage, endpoint.usage_style)
                model = getattr(result, "model", None)
                if isinstance(model, str):
                    usage_attrs = {**usage_attrs, sc.GEN_AI_RESPONSE_MODEL: model}
            else:
                usage_attrs = extract.response_attributes(endpoint, result, call.body)
        if sc.GEN_AI_USAGE_INPUT_TOKENS not in usage_attrs:
            return Decimal(0) if call.error is not None else None
        model = usage_attrs.get(sc.GEN_AI_RESPONSE_MODEL) or ticket.model
        rates = pricing.rates_for(model, usage_attrs.get(sc.OPENAI_RESPONSE_SERVICE_TIER), provider=ticket.provider)
        return rates.cost(pricing.Usage.from_attributes(usage_attrs)) if rates is not None else None


_UNSEEN = object()


def _end_user(scope: Mapping[str, Any], body: Mapping[str, Any]) -> str | None:
    """The call's end user as its span will name it: the `attributes()` block's, else the one the request names
    (hashed), as `CallRecorder.prepare` works it out."""
    end_user = scope.get(sc.END_USER)  # a hash: never None nor empty when the block names one
    if end_user is None:
        user = extract.request_end_user(body)
        return hash_user(user) if user is not None else None
    return end_user


def _export_margin_s() -> float:
    return config.resolve("export_delay_ms") / 1000 + _COMMIT_MARGIN_S
