"""E-mail over SMTP (stdlib `smtplib` and `email`): STARTTLS (verified against the system's CAs, or only the CA in
`tls_ca_file`) and AUTH, a plain-text and an HTML part, and a report's chart as an inline PNG. The password is the
secret; it is sent only after STARTTLS."""

from __future__ import annotations

import html
import re
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from collector.alerts.channels.base import (
    ChannelConfigError,
    ChannelKind,
    Config,
    Outcome,
    clip,
    masked_position,
    only_fields,
    text,
)
from collector.alerts.channels.message import Message

MAX_RECIPIENTS = 50
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_COLOURS = {"critical": "#d62728", "warning": "#ff9900"}
FIELDS = ("host", "port", "username", "password", "from", "to", "starttls", "tls_ca_file")


def _address(value: Any, name: str) -> str:
    """An address, optionally with a display name (`Alerts <alerts@example.com>`)."""
    if isinstance(value, str) and not _CONTROL.search(value) and len(value) <= 320:
        _, address = parseaddr(value)
        if _ADDRESS.match(address):
            return value.strip()
    raise ChannelConfigError(f"{name} must be an e-mail address, not {str(value)[:100]!r}")


def parse(raw: Mapping[str, Any]) -> Config:
    only_fields(raw, FIELDS)
    starttls = raw.get("starttls", True)
    if not isinstance(starttls, bool):
        raise ChannelConfigError("starttls must be true or false")
    port = raw.get("port", 587 if starttls else 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ChannelConfigError("port must be a whole number from 1 to 65535")
    recipients = raw.get("to")
    recipients = [recipients] if isinstance(recipients, str) else recipients
    if not isinstance(recipients, list) or not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise ChannelConfigError(f"to must be a list of 1 to {MAX_RECIPIENTS} e-mail addresses")
    config: Config = {
        "type": "email",
        "host": text(raw, "host", limit=253),
        "port": port,
        "username": text(raw, "username", required=False),
        "password": raw.get("password") or None,
        "from": _address(raw.get("from"), "from"),
        "to": [_address(value, "to") for value in recipients],
        "starttls": starttls,
        "tls_ca_file": _ca_file(raw.get("tls_ca_file")),
    }
    password = config["password"]
    if password is not None and masked_position(password) is None and not isinstance(password, str):
        raise ChannelConfigError("password must be a string")
    if (config["username"] is None) != (password is None):
        raise ChannelConfigError("username and password go together: give both (AUTH) or neither")
    if not starttls and (config["username"] is not None or config["tls_ca_file"] is not None):
        raise ChannelConfigError("starttls is false: no username/password (they would cross unencrypted), no CA")
    return config


def _ca_file(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not Path(value).is_absolute() or not Path(value).is_file():
        raise ChannelConfigError("tls_ca_file must be the absolute path of a PEM file on the collector's machine")
    return value


def host(config: Config) -> str | None:
    return config["host"]


def compose(config: Config, message: Message) -> EmailMessage:
    """The e-mail: a plain-text part and an HTML one (with the image inline, if any)."""
    email = EmailMessage()
    email["Subject"] = clip(_CONTROL.sub(" ", f"[llmledger] {message.headline}: {message.title}"), 250)
    email["From"] = config["from"]
    email["To"] = ", ".join(config["to"])
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = make_msgid(domain="llmledger")
    email.set_content(message.plain_text())
    image_id = make_msgid(domain="llmledger") if message.image else None
    email.add_alternative(_html(message, image_id), subtype="html")
    if message.image and image_id:
        html_part = email.get_payload()[1]
        html_part.add_related(message.image.png, "image", "png", cid=image_id, filename=message.image.filename,
                              disposition="inline")  # fmt: skip
    return email


def _html(message: Message, image_id: str | None) -> str:
    colour = "#2ca02c" if message.state == "resolved" else _COLOURS.get(message.severity, "#1f77b4")
    parts = [
        f'<p style="color:{colour};font-weight:bold">{html.escape(message.headline)}</p>',
        f"<h2>{html.escape(message.title)}</h2>",
        f"<p>{html.escape(message.summary)}</p>",
    ]
    if message.facts:
        rows = "".join(f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
                       for name, value in message.facts)  # fmt: skip
        parts.append(f"<table>{rows}</table>")
    if message.html:
        parts.append(message.html)
    elif message.body:
        parts.append(f"<pre>{html.escape(message.body)}</pre>")
    if message.image and image_id:
        parts.append(f'<p><img src="cid:{image_id[1:-1]}" alt="{html.escape(message.image.alt)}"></p>')
    if message.link:
        parts.append(f'<p><a href="{html.escape(message.link)}">Open the dashboard</a></p>')
    return '<html><body style="font-family:sans-serif">' + "".join(parts) + "</body></html>\n"


def send(config: Config, message: Message, timeout_s: float) -> Outcome:
    """One SMTP session. Errors keep the exception's type and the server's code only (never the password)."""
    email = compose(config, message)
    try:
        context = ssl.create_default_context(cafile=config.get("tls_ca_file"))
        with smtplib.SMTP(config["host"], config["port"], timeout=timeout_s) as smtp:
            if config["starttls"]:
                smtp.starttls(context=context)  # no STARTTLS offered: SMTPNotSupportedError, never plain text
            if config.get("username"):
                smtp.login(config["username"], config["password"])
            refused = smtp.send_message(email)
    except smtplib.SMTPResponseException as exc:
        return Outcome(False, None, f"{type(exc).__name__} {exc.smtp_code}")
    except (smtplib.SMTPException, OSError) as exc:  # refused connection, TLS failure, timeout, all recipients refused
        return Outcome(False, None, type(exc).__name__)
    # Some recipients took it: a retry would send it to them again, so it counts as delivered, with a note.
    return Outcome(True, None, f"{len(refused)} recipient(s) refused" if refused else None)


KIND = ChannelKind("email", parse, secrets=("password",), host=host, send=send, bound=("host", "username"))
