"""A rule form's channels: each type's own fields (secrets as password inputs), and the widgets read back as the API's
channel list, where a secret left blank goes back masked so the collector keeps the one it holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from collector.alerts.rules import CHANNEL_TYPES
from dashboard.parts.alerts.draft import RuleForm
from dashboard.parts.alerts.errors import Beside


@dataclass(frozen=True)
class Field:
    """One field of a channel's config, as the API names it (collector/alerts/channels/<type>.py)."""

    name: str
    label: str
    secret: bool = False  # shown masked by the API: a password input, blank keeps the stored one
    kind: str = "text"  # text, port (a whole number), flag (true/false), list (comma-separated)
    placeholder: str = ""
    default: Any = ""


def _url(label: str, placeholder: str) -> Field:
    return Field("url", label, secret=True, placeholder=placeholder)


FIELDS: dict[str, tuple[Field, ...]] = {
    "webhook": (_url("URL", "https://example.com/hooks/alerts"),),
    "slack": (_url("Incoming webhook URL", "https://hooks.slack.com/services/…"),),
    "teams": (_url("Webhook URL (incoming webhook or Workflows)", "https://….webhook.office.com/…"),),
    "discord": (_url("Webhook URL", "https://discord.com/api/webhooks/…"),),
    "signed_webhook": (
        _url("URL", "https://example.com/hooks/alerts"),
        Field("secret", "Signing secret (16 to 1000 characters)", secret=True),
    ),
    "pagerduty": (
        Field("routing_key", "Routing key (Events API v2 integration key)", secret=True),
        Field("url", "Events URL (optional)", secret=True, placeholder="https://events.pagerduty.com/v2/enqueue"),
    ),
    "email": (
        Field("host", "SMTP host", placeholder="smtp.example.com"),
        Field("port", "Port", kind="port", default=587),
        Field("starttls", "STARTTLS", kind="flag", default=True),
        Field("username", "Username (optional)"),
        Field("password", "Password", secret=True),
        Field("from", "From", placeholder="llmledger <alerts@example.com>"),
        Field("to", "To (comma-separated)", kind="list", placeholder="oncall@example.com"),
        Field("tls_ca_file", "CA file (optional, PEM)", placeholder="/etc/ssl/private-ca.pem"),
    ),
}
COLUMNS = 3  # fields per row


def initial_values(channels: list[dict[str, Any]]) -> dict[str, Any]:
    """The channel widgets' values (by key suffix) for a rule's stored channels, as GET showed them (secrets masked,
    so their inputs start empty), and a blank one to add."""
    values: dict[str, Any] = {}
    for index, channel in enumerate(channels):
        values[f"channel_type_{index}"] = channel["type"]
        values[f"channel_remove_{index}"] = False
        for field in FIELDS.get(channel["type"], ()):
            stored = channel.get(field.name)
            values[f"channel_{field.name}_{index}"] = "" if field.secret else _shown(field, stored)
    values[f"channel_type_{len(channels)}"] = CHANNEL_TYPES[0]
    return values


def _shown(field: Field, value: Any) -> Any:
    if value is None:
        return field.default
    return ", ".join(value) if field.kind == "list" else value


def _value(field: Field, raw: Any) -> Any:
    """A widget's value as the API takes it; None when left empty."""
    if field.kind in ("port", "flag"):
        return raw
    if field.kind == "list":
        return [item.strip() for item in str(raw or "").split(",") if item.strip()] or None
    return str(raw or "").strip() or None


def _config(form: RuleForm, index: int, kind: str, stored: dict[str, Any] | None) -> dict[str, Any]:
    """One channel's config from its widgets. A blank secret of a stored channel of the same type is sent as the mask
    GET showed: the collector maps it back to the secret it holds (for the same server only)."""
    config: dict[str, Any] = {"type": kind}
    for field in FIELDS[kind]:
        value = _value(field, st.session_state.get(form.key(f"channel_{field.name}_{index}"), field.default))
        if value is None and field.secret and stored is not None and stored["type"] == kind:
            value = stored.get(field.name)
        if value is not None:
            config[field.name] = value
    return config


def _typed(form: RuleForm, index: int, kind: str) -> bool:
    """Whether anything was typed into a new channel's text fields (its defaults alone add no channel)."""
    state = st.session_state
    return any(_value(field, state.get(form.key(f"channel_{field.name}_{index}"))) is not None
               for field in FIELDS[kind] if field.kind in ("text", "list"))  # fmt: skip


def form_channels(form: RuleForm) -> list[dict[str, Any]]:
    """The channels to send: each stored one unless removed (its blank secrets kept), then the new one if typed."""
    state = st.session_state
    channels = []
    for index, stored in enumerate(form.stored):
        if not state.get(form.key(f"channel_remove_{index}")):
            kind = state.get(form.key(f"channel_type_{index}")) or stored["type"]
            channels.append(_config(form, index, kind, stored))
    added = len(form.stored)
    kind = state.get(form.key(f"channel_type_{added}")) or CHANNEL_TYPES[0]
    if _typed(form, added, kind):
        channels.append(_config(form, added, kind, None))
    return channels


def _field_input(form: RuleForm, index: int, field: Field, stored: dict[str, Any] | None, column: Any) -> None:
    key = form.key(f"channel_{field.name}_{index}")
    st.session_state.setdefault(key, field.default)  # set before drawing: a widget given a value too would warn
    if field.kind == "port":
        column.number_input(field.label, min_value=1, max_value=65535, step=1, key=key)
    elif field.kind == "flag":
        column.checkbox(field.label, key=key)
    elif field.secret:
        masked = (stored or {}).get(field.name)
        column.text_input(
            field.label + (" (stored)" if masked else ""),
            key=key,
            type="password",
            placeholder=f"{masked}: leave blank to keep it" if masked else field.placeholder,
        )
    else:
        column.text_input(field.label, key=key, placeholder=field.placeholder)


def _channel(form: RuleForm, index: int, stored: dict[str, Any] | None) -> None:
    """One channel's type (and, if stored, a remove box), then its type's fields."""
    kind_column, remove_column = st.columns([3, 1], vertical_alignment="bottom")
    kind = kind_column.selectbox(
        f"Channel {index + 1}" if stored else "Add a channel (optional)",
        CHANNEL_TYPES,
        key=form.key(f"channel_type_{index}"),
    )
    if stored is not None:
        remove_column.checkbox("Remove", key=form.key(f"channel_remove_{index}"))
    if stored is not None and kind != stored["type"]:
        st.caption(f"Was {stored['type']}: a new type needs its secrets typed in full.")
        stored = None
    fields = FIELDS[kind]
    for start in range(0, len(fields), COLUMNS):
        row = fields[start : start + COLUMNS]
        for field, column in zip(row, st.columns(COLUMNS), strict=False):
            _field_input(form, index, field, stored, column)


def channel_inputs(form: RuleForm, beside: Beside) -> None:
    """Every stored channel (kept, changed or removed), then one to add; the collector's refusal of a channel under
    it (it names the channel by its place in the list sent, which leaves out the removed ones)."""
    sent = 0
    for index, stored in enumerate(form.stored):
        with st.container(border=True):
            _channel(form, index, stored)
            if not st.session_state.get(form.key(f"channel_remove_{index}")):
                beside.show("channels", about=f"channel {sent}:")
                sent += 1
    with st.container(border=True):
        _channel(form, len(form.stored), None)
        beside.show("channels", about=f"channel {sent}:")
