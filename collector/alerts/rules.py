"""Alert rules: what a rule may say, checked field by field (pure; the API answers 422 with the field)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from collector.alerts import channels
from llmledger import pricing

METRICS = (
    "cost",
    "error_rate",
    "errors",
    "requests",
    "latency_p95_ms",
    "latency_p99_ms",
    "ttft_p95_ms",
    "ratelimit_headroom_requests_pct",
    "ratelimit_headroom_tokens_pct",
    "cost_forecast_month",
    "reconciliation_gap_pct",  # |OpenAI's cost - ours| per UTC day, % (collector/reconcile/compare.py)
    "unpriced_requests",  # calls the price book couldn't price (a model its list doesn't know yet)
)
ROLLING_WINDOWS = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1), "24h": timedelta(hours=24)}
CALENDAR_WINDOWS = ("day", "month")  # UTC
OPS = (">", ">=", "<", "<=")
FILTERS = ("service", "environment", "team", "feature", "model", "end_user")
MAX_FILTER_VALUES = 1000
MAX_FILTER_TEXT = 500
# An end user is stored only as the wrapper's salted hash (llmledger/context.py hash_user): 32 hex characters.
_END_USER = re.compile(r"^[0-9a-f]{32}$")
# What the guard does in the app when a budget (a cost rule over a UTC day or month) is spent (llmledger/guard/).
ENFORCE_ACTIONS = ("warn", "block", "downgrade")
ENFORCE_WINDOWS = CALENDAR_WINDOWS
ENFORCE_OPS = (">", ">=")
CHANNEL_TYPES = channels.TYPES  # collector/alerts/channels/registry.py
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Enforce:
    """A budget the guard enforces in the app: warn, block, or downgrade calls to a cheaper model."""

    action: str
    downgrade_to: str | None = None


class RuleError(ValueError):
    """An invalid rule: which field, and why."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    window: str
    op: str
    threshold: float
    for_seconds: int = 0
    filters: dict[str, list[str]] = field(default_factory=dict)
    channels: list[dict[str, str]] = field(default_factory=list)
    enabled: bool = True
    min_requests: int = 0
    enforce: Enforce | None = None

    def holds(self, value: float | None) -> bool:
        """Whether the rule's condition is true for `value` (no value: not true)."""
        if value is None:
            return False
        return {">": value > self.threshold, ">=": value >= self.threshold, "<": value < self.threshold,
                "<=": value <= self.threshold}[self.op]  # fmt: skip


def parse_duration(text: str) -> int:
    """`90s`, `5m`, `2h`, `1d` → seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 90s, 5m, 2h or 1d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _text(payload: Mapping[str, Any], name: str, allowed: tuple[str, ...] | None = None) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise RuleError(name, "is required and must be a non-empty string")
    if allowed is not None and value not in allowed:
        raise RuleError(name, f"{value!r} is not one of {', '.join(allowed)}")
    return value.strip()


def parse_rule(payload: Any) -> Rule:
    """A `Rule` from the API's JSON, or `RuleError` naming the first field that is wrong."""
    if not isinstance(payload, Mapping):
        raise RuleError("body", "must be a JSON object")
    unknown = set(payload) - {"name", "metric", "window", "op", "threshold", "for", "filters", "channels", "enabled",
                              "min_requests", "enforce", "id", "state", "value"}  # fmt: skip
    if unknown:
        raise RuleError(sorted(unknown)[0], "is not a rule field")
    name = _text(payload, "name")
    metric = _text(payload, "metric", METRICS)
    window = _text(payload, "window", (*ROLLING_WINDOWS, *CALENDAR_WINDOWS))
    if metric == "cost_forecast_month" and window != "month":
        raise RuleError("window", "cost_forecast_month projects the calendar month: use window 'month'")
    if metric == "reconciliation_gap_pct" and payload.get("filters"):
        raise RuleError("filters", "reconciliation_gap_pct compares the whole organization's bill: no filters")
    op = _text(payload, "op", OPS)
    threshold = payload.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise RuleError("threshold", "must be a finite number")
    for_seconds = 0
    if payload.get("for") not in (None, "", 0):
        try:
            for_seconds = parse_duration(str(payload["for"]))
        except ValueError as exc:
            raise RuleError("for", str(exc)) from None
    rule = Rule(
        name=name,
        metric=metric,
        window=window,
        op=op,
        threshold=float(threshold),
        for_seconds=for_seconds,
        filters=_filters(payload.get("filters")),
        channels=_channels(payload.get("channels")),
        enabled=_boolean(payload, "enabled", True),
        min_requests=_count(payload, "min_requests"),
    )
    enforce = parse_enforce(payload.get("enforce"))
    if enforce is not None:
        _check_enforceable(rule)
    return replace(rule, enforce=enforce)


def parse_enforce(value: Any) -> Enforce | None:
    """The rule's `enforce` part (None or absent: not enforced), or `RuleError` naming `enforce`."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise RuleError("enforce", 'must be an object like {"action": "block"} or null')
    if unknown := set(value) - {"action", "downgrade_to"}:
        raise RuleError("enforce", f"{sorted(unknown)[0]!r} is not an enforce field (action, downgrade_to)")
    action = value.get("action")
    if action not in ENFORCE_ACTIONS:
        raise RuleError("enforce", f"action {action!r} is not one of {', '.join(ENFORCE_ACTIONS)}")
    model = value.get("downgrade_to")
    if action != "downgrade":
        if model not in (None, ""):
            raise RuleError("enforce", "downgrade_to is only for action 'downgrade'")
        return Enforce(action)
    if not isinstance(model, str) or not model.strip():
        raise RuleError("enforce", "action 'downgrade' needs downgrade_to: the model to use instead")
    model = model.strip()
    if len(model) > MAX_FILTER_TEXT or pricing.rates_for(model, None) is None:
        raise RuleError("enforce", f"unknown model for downgrade: {model[:100]!r} (the price book can't price it)")
    return Enforce(action, model)


def _check_enforceable(rule: Rule) -> None:
    """Only a spend budget can be enforced: the guard compares a UTC day's or month's cost with a limit."""
    if rule.metric != "cost":
        raise RuleError("enforce", f"only a cost rule can be enforced (a budget), not {rule.metric}")
    if rule.window not in ENFORCE_WINDOWS:
        raise RuleError("enforce", f"a budget is per UTC day or month: window 'day' or 'month', not {rule.window!r}")
    if rule.op not in ENFORCE_OPS:
        raise RuleError("enforce", f"a budget is a limit on spend: op '>' or '>=', not {rule.op!r}")
    if rule.threshold < 0:
        raise RuleError("enforce", "a budget's limit (threshold) can't be negative")


def _filters(value: Any) -> dict[str, list[str]]:
    if value in (None, {}):
        return {}
    if not isinstance(value, Mapping):
        raise RuleError("filters", 'must be an object like {"team": ["search"]}')
    filters: dict[str, list[str]] = {}
    for key, values in value.items():
        if key not in FILTERS:
            raise RuleError("filters", f"{key!r} is not one of {', '.join(FILTERS)}")
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise RuleError("filters", f"{key} must be a string or a list of strings")
        if len(values) > MAX_FILTER_VALUES or any(len(v) > MAX_FILTER_TEXT for v in values):
            raise RuleError("filters", f"{key}: at most {MAX_FILTER_VALUES} values of {MAX_FILTER_TEXT} characters")
        if key == "end_user" and not all(_END_USER.match(v) for v in values):
            raise RuleError("filters", "end_user values are the stored hashes (32 hex characters), never raw user ids")
        filters[key] = values
    return filters


def _channels(value: Any) -> list[dict[str, Any]]:
    if value in (None, []):
        return []
    if not isinstance(value, list):
        raise RuleError("channels", 'must be a list like [{"type": "webhook", "url": "https://..."}]')
    parsed = []
    for index, channel in enumerate(value):
        try:
            parsed.append(channels.parse(channel))
        except channels.ChannelConfigError as exc:
            raise RuleError("channels", f"channel {index}: {exc}") from None
    return parsed


def _boolean(payload: Mapping[str, Any], name: str, default: bool) -> bool:
    value = payload.get(name, default)
    if not isinstance(value, bool):
        raise RuleError(name, "must be true or false")
    return value


def _count(payload: Mapping[str, Any], name: str) -> int:
    value = payload.get(name) or 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
        raise RuleError(name, "must be a whole number from 0")
    return value


def masked(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Channels as the API shows them: every secret masked with the channel's position (a URL keeps its scheme and
    host: `https://hooks.slack.com/•••1`), which is what a mask sent back stands for (collector/alerts/channels/)."""
    return [channels.masked(channel, position) for position, channel in enumerate(stored, start=1)]


def with_stored_urls(rule: Rule, stored: list[dict[str, Any]]) -> Rule:
    """A rule sent back as it was read keeps its channels' secrets (URLs, keys, passwords): a mask stands for the
    stored channel at its position (same type, same mask, same server). A mask that stands for nothing is refused,
    so a mask is never stored."""
    kept = []
    for index, channel in enumerate(rule.channels):
        try:
            kept.append(channels.keep_stored_secrets(channel, stored))
        except channels.ChannelConfigError as exc:
            raise RuleError("channels", f"channel {index}: {exc}") from None
    return replace(rule, channels=kept)
