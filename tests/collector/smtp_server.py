"""A loopback SMTP server (aiosmtpd) with STARTTLS on a self-signed certificate made here, and AUTH LOGIN/PLAIN."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOGIN, PASSWORD = "alerts@example.test", "correct horse battery"


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, its own CA: (certificate PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llmledger test SMTP")])
    now = datetime.now(tz=UTC)
    usage = x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)  # fmt: skip
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


class _Controller(Controller):
    """Counts open sessions, so stopping can wait for the last one to close (else its socket is left unclosed)."""

    open_sessions = 0

    def factory(self) -> SMTP:
        controller = self

        class Counted(SMTP):
            def connection_made(self, transport: Any) -> None:
                if self._original_transport is None:  # else STARTTLS made it again: the same session
                    controller.open_sessions += 1
                super().connection_made(transport)

            def connection_lost(self, error: Exception | None) -> None:
                super().connection_lost(error)
                controller.open_sessions -= 1

        return Counted(self.handler, **self.SMTP_kwargs)


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    over_tls: bool
    authenticated: bool


class SmtpServer:
    """Keeps every message it accepts and every AUTH attempt (mechanism, login, whether it succeeded)."""

    def __init__(self, folder: Path | None, *, mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN")) -> None:
        """`folder` given: STARTTLS (required) and AUTH (required, after TLS); None: plain, no AUTH."""
        self.received: list[Received] = []
        self.auths: list[tuple[str, str, bool]] = []
        kwargs: dict[str, Any] = {}
        if folder is not None:
            self.cert, key = self_signed_certificate(folder)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert, key)
            excluded = [m for m in ("LOGIN", "PLAIN") if m not in mechanisms]
            kwargs = {"tls_context": context, "require_starttls": True, "authenticator": self._authenticate,
                      "auth_required": True, "auth_require_tls": True, "auth_exclude_mechanism": excluded}  # fmt: skip
        with socket.socket() as probe:  # aiosmtpd needs its port up front
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = _Controller(self, hostname="127.0.0.1", port=self.port, server_hostname="localhost", **kwargs)
        self.controller.start()

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (LOGIN.encode(), PASSWORD.encode())
        self.auths.append((mechanism, data.login.decode() if isinstance(data, LoginPassword) else "", ok))
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's hook)
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message,
                                      session.ssl is not None, bool(session.authenticated)))  # fmt: skip
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received

    def close(self) -> None:
        deadline = time.monotonic() + 10
        while self.controller.open_sessions > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.controller.stop()
