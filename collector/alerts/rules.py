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
# What a rule watches: a metric against thresholds, a metric against its own history, or the absence of calls.
KINDS = ("threshold", "anomaly", "no_data")
# Per entity: each value of one of these has its own state, events and notifications (query/filters.py GROUPS).
GROUP_BY = ("service", "environment", "team", "feature", "end_user", "model", "provider")
DEFAULT_MAX_GROUPS = 50
MAX_GROUPS = 1000
SEVERITIES = ("warning", "critical")
ANOMALY_METRICS = ("cost", "requests", "error_rate", "latency_p95_ms")
BASELINES = ("hour_of_week", "rolling_median")  # collector/alerts/anomaly.py
DEFAULT_SENSITIVITY = 3.0
NO_DATA_WINDOWS = (timedelta(minutes=5), timedelta(hours=24))  # shortest, longest; whole multiples of 5 minutes
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
    kind: str = "threshold"
    group_by: str | None = None
    max_groups: int = DEFAULT_MAX_GROUPS
    warning_threshold: float | None = None
    baseline: str | None = None  # anomaly rules: one of BASELINES
    sensitivity: float | None = None  # anomaly rules: how many robust spreads from the baseline is unusual

    def holds(self, value: float | None, threshold: float | None = None) -> bool:
        """Whether the rule's condition is true for `value` against `threshold` (the critical one unless given; no
        value: not true)."""
        if value is None:
            return False
        limit = self.threshold if threshold is None else threshold
        return {">": value > limit, ">=": value >= limit, "<": value < limit, "<=": value <= limit}[self.op]

    def level(self, value: float | None) -> str | None:
        """A threshold rule's severity at `value`: critical past the threshold, warning past the warning threshold,
        else None."""
        if self.holds(value):
            return "critical"
        if self.warning_threshold is not None and self.holds(value, self.warning_threshold):
            return "warning"
        return None

    def threshold_of(self, severity: str | None) -> float:
        """The threshold a severity crossed (the critical one for anything but a warning)."""
        if severity == "warning" and self.warning_threshold is not None:
            return self.warning_threshold
        return self.threshold

    @property
    def no_data_seconds(self) -> int:
        """A no-data rule's window: how long without calls fires it."""
        return parse_duration(self.window)


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


RULE_FIELDS = frozenset({"name", "metric", "window", "op", "threshold", "for", "filters", "channels", "enabled",
                         "min_requests", "enforce", "kind", "group_by", "max_groups", "warning_threshold", "baseline",
                         "sensitivity"})  # fmt: skip
# What the API shows beside a rule's fields (collector/alerts/store.py): accepted back, and ignored.
SHOWN_FIELDS = frozenset({"id", "state", "value", "severity", "state_since", "created_at", "updated_at", "acked_by",
                          "acked_at", "groups", "groups_measured", "groups_left_out"})  # fmt: skip


def parse_rule(payload: Any) -> Rule:
    """A `Rule` from the API's JSON, or `RuleError` naming the first field that is wrong."""
    if not isinstance(payload, Mapping):
        raise RuleError("body", "must be a JSON object")
    if unknown := set(payload) - RULE_FIELDS - SHOWN_FIELDS:
        raise RuleError(sorted(unknown)[0], "is not a rule field")
    kind = payload.get("kind") or "threshold"
    if kind not in KINDS:
        raise RuleError("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    name = _text(payload, "name")
    if kind != "threshold":
        payload = _kind_defaults(kind, payload)
    metric = _text(payload, "metric", METRICS)
    window = (
        _no_data_window(payload)
        if kind == "no_data"
        else _text(payload, "window", (*ROLLING_WINDOWS, *CALENDAR_WINDOWS))
    )
    if metric == "cost_forecast_month" and window != "month":
        raise RuleError("window", "cost_forecast_month projects the calendar month: use window 'month'")
    if metric == "reconciliation_gap_pct" and payload.get("filters"):
        raise RuleError("filters", "reconciliation_gap_pct compares the whole organization's bill: no filters")
    op = _text(payload, "op", OPS)
    threshold = _number(payload, "threshold")
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
        kind=kind,
        group_by=_group_by(payload.get("group_by"), metric),
        max_groups=_max_groups(payload.get("max_groups")),
    )
    rule = _with_kind(rule, payload)
    enforce = parse_enforce(payload.get("enforce"))
    if enforce is not None:
        _check_enforceable(rule)
    return replace(rule, enforce=enforce)


def _kind_defaults(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The fields an anomaly or no-data rule fixes: a no-data rule counts calls (`requests <= 0`); an anomaly rule's
    band comes from its baseline, not a threshold (stored as 0). Given otherwise, they are refused."""
    fixed: dict[str, Any] = {"threshold": 0}
    if kind == "no_data":
        fixed.update(metric="requests", op="<=")
    given = {name: value for name, value in payload.items() if value is not None}
    for name, value in fixed.items():
        if name in given and given[name] != value:
            raise RuleError(name, f"a {kind} rule's {name} is always {value!r}")
    defaults = {"window": "1h", "op": ">"} if kind == "anomaly" else {}
    return {**defaults, **fixed, **given}


def _number(payload: Mapping[str, Any], name: str) -> float:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RuleError(name, "must be a finite number")
    return float(value)


def _no_data_window(payload: Mapping[str, Any]) -> str:
    """A no-data rule's window: how long without calls, a whole number of 5 minutes from 5m to 24h."""
    text = _text(payload, "window")
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise RuleError("window", str(exc)) from None
    shortest, longest = NO_DATA_WINDOWS
    if not shortest.total_seconds() <= seconds <= longest.total_seconds() or seconds % 300:
        raise RuleError("window", "a no-data window is a whole number of 5 minutes, from 5m to 24h")
    return text


def _group_by(value: Any, metric: str) -> str | None:
    if value in (None, ""):
        return None
    if value not in GROUP_BY:
        raise RuleError("group_by", f"{value!r} is not one of {', '.join(GROUP_BY)}")
    if metric == "reconciliation_gap_pct":
        raise RuleError("group_by", "reconciliation_gap_pct compares the whole organization's bill: no groups")
    return value


def _max_groups(value: Any) -> int:
    if value is None:
        return DEFAULT_MAX_GROUPS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_GROUPS:
        raise RuleError("max_groups", f"must be a whole number from 1 to {MAX_GROUPS}")
    return value


def _with_kind(rule: Rule, payload: Mapping[str, Any]) -> Rule:
    """The fields only some kinds have, checked against the rule's kind."""
    warning = payload.get("warning_threshold")
    if rule.kind != "threshold":
        for name in ("warning_threshold",) if rule.kind == "anomaly" else ("warning_threshold", "baseline",
                                                                             "sensitivity"):  # fmt: skip
            if payload.get(name) is not None:
                raise RuleError(name, f"a {rule.kind} rule has no {name} (only threshold rules have a warning level)")
    if rule.kind == "threshold":
        for name in ("baseline", "sensitivity"):
            if payload.get(name) is not None:
                raise RuleError(name, "only an anomaly rule has a baseline and a sensitivity")
        if warning is None:
            return rule
        level = _number(payload, "warning_threshold")
        if not rule.holds(rule.threshold, level) or level == rule.threshold:
            side = "below" if rule.op in (">", ">=") else "above"
            raise RuleError("warning_threshold", f"must be {side} the critical threshold {rule.threshold:g} for op "
                                                 f"{rule.op!r}: a warning comes before the critical level")  # fmt: skip
        return replace(rule, warning_threshold=level)
    if rule.kind == "no_data":
        return rule
    if rule.metric not in ANOMALY_METRICS:
        raise RuleError("metric", f"an anomaly rule watches one of {', '.join(ANOMALY_METRICS)}")
    if rule.window != "1h":
        raise RuleError("window", "an anomaly rule compares the last hour with its baseline: window '1h'")
    baseline = payload.get("baseline") or BASELINES[0]
    if baseline not in BASELINES:
        raise RuleError("baseline", f"{baseline!r} is not one of {', '.join(BASELINES)}")
    sensitivity = DEFAULT_SENSITIVITY if payload.get("sensitivity") is None else _number(payload, "sensitivity")
    if not 0 < sensitivity <= 100:
        raise RuleError("sensitivity", "must be more than 0 and at most 100 (robust spreads from the baseline)")
    return replace(rule, baseline=baseline, sensitivity=sensitivity)


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
    if rule.kind != "threshold":
        raise RuleError("kind", f"only a threshold rule can be enforced (a budget), not a {rule.kind} rule")
    if rule.group_by is not None:
        raise RuleError("group_by", "an enforced budget is one limit for the calls its filters match: no group_by")
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


# The same filters and channels, checked the same way, for digests (collector/digests/spec.py).
parse_filters = _filters
parse_channels = _channels


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
