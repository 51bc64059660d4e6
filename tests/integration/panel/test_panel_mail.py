"""Password reset and email verification through a real SMTP server (aiosmtpd on loopback),
on SQLite and PostgreSQL: the mail is parsed, its link followed, the new password used."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from stellarstack.panel.api.app import create_app
from stellarstack.panel.context import build_context
from stellarstack.panel.db.models import ActivityLog
from stellarstack.panel.services.mail import SmtpMailer
from support.panel import ADMIN_EMAIL, PASSWORD, Clock, Panel, create_user, panel_settings

NEW_PASSWORD = "a freshly chosen passphrase"


class Inbox:
    """What the SMTP server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.sessions: list[tuple[bool, bool]] = []
        """(over TLS, authenticated) for each message."""
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
            self.recipients.append(list(envelope.rcpt_tos))
            self.sessions.append((session.ssl is not None, bool(session.authenticated)))
        return "250 Message accepted for delivery"

    def only(self, to: str) -> EmailMessage:
        matching = [m for m in self.messages if m["To"] == to]
        assert len(matching) == 1, [m["To"] for m in self.messages]
        return matching[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def mail_panel(
    tmp_path: Path, panel_db_url: str, panel_clock: Clock, inbox: tuple[Inbox, int]
) -> Iterator[Panel]:
    settings = panel_settings(
        tmp_path,
        panel_db_url,
        smtp_host="127.0.0.1",
        smtp_port=inbox[1],
        smtp_starttls=False,
        mail_from="StellarStack <panel@stellarstack.test>",
    )
    context = build_context(settings)
    context.clock = panel_clock
    running = Panel(context=context, app=create_app(context), clock=panel_clock)
    yield running
    running.close()


def link_token(message: EmailMessage, page: str) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    line = next(word for word in text.split() if word.startswith("https://"))
    url = urlparse(line)
    assert url.netloc == "testserver"
    assert url.path == f"/{page}"
    token: str = parse_qs(url.query)["token"][0]
    return token


def test_password_reset_by_mail_end_to_end(mail_panel: Panel, inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    admin = mail_panel.setup_admin()
    laptop = mail_panel.login(ADMIN_EMAIL)
    anonymous = mail_panel.client()

    known = anonymous.post("/api/auth/password-reset", json={"email": ADMIN_EMAIL.upper()})
    unknown = anonymous.post("/api/auth/password-reset", json={"email": "ghost@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()

    message = received.only(ADMIN_EMAIL)
    assert len(received.messages) == 1
    assert received.recipients == [[ADMIN_EMAIL]]
    assert message["From"] == "StellarStack <panel@stellarstack.test>"
    assert "password" in message["Subject"].lower()
    assert message["Message-ID"].endswith("@stellarstack.test>")
    token = link_token(message, "reset-password")

    weak = anonymous.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": "short"}
    )
    assert weak.status_code == 422
    assert weak.json()["error"]["field"] == "body.password"
    # The weak attempt did not use the link up.
    done = anonymous.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert done.status_code == 204, done.text

    # Every session of the account ended; the old password is gone, the new one works.
    assert admin.get("/api/account").status_code == 401
    assert laptop.get("/api/account").status_code == 401
    old = anonymous.raw.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD})
    assert old.status_code == 401
    fresh = mail_panel.client()
    assert fresh.login(ADMIN_EMAIL, NEW_PASSWORD)["status"] == "ok"
    # The reset proved the address.
    assert fresh.get("/api/account").json()["email_verified"] is True

    reused = anonymous.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": "yet another one!"}
    )
    assert reused.status_code == 422
    assert reused.json()["error"]["field"] == "body.token"
    with mail_panel.context.sessions() as db:
        events = set(db.scalars(select(ActivityLog.event)))
    assert {"auth.password_reset.request", "auth.password_reset"} <= events


def test_reset_link_expires_after_an_hour(mail_panel: Panel, inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    mail_panel.setup_admin()
    anonymous = mail_panel.client()
    assert (
        anonymous.post("/api/auth/password-reset", json={"email": ADMIN_EMAIL}).status_code == 202
    )
    token = link_token(received.only(ADMIN_EMAIL), "reset-password")
    mail_panel.clock.advance(hours=1, seconds=1)
    late = anonymous.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert late.status_code == 422
    assert "expired" in late.json()["error"]["message"]


def test_only_the_newest_reset_link_works(mail_panel: Panel, inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    mail_panel.setup_admin()
    anonymous = mail_panel.client()
    for _ in range(2):
        assert (
            anonymous.post("/api/auth/password-reset", json={"email": ADMIN_EMAIL}).status_code
            == 202
        )
    first, second = (link_token(m, "reset-password") for m in received.messages)
    stale = anonymous.post(
        "/api/auth/password-reset/confirm", json={"token": first, "password": NEW_PASSWORD}
    )
    assert stale.status_code == 422
    newest = anonymous.post(
        "/api/auth/password-reset/confirm", json={"token": second, "password": NEW_PASSWORD}
    )
    assert newest.status_code == 204


def test_reset_requests_are_rate_limited_per_address(
    mail_panel: Panel, inbox: tuple[Inbox, int]
) -> None:
    received, _ = inbox
    mail_panel.setup_admin()
    anonymous = mail_panel.client()
    limit = mail_panel.context.settings.mail_requests_per_account
    for email_address in (ADMIN_EMAIL, "ghost@example.com"):
        for _ in range(limit):
            response = anonymous.post("/api/auth/password-reset", json={"email": email_address})
            assert response.status_code == 202
        # Refused the same way whether or not the account exists.
        blocked = anonymous.post("/api/auth/password-reset", json={"email": email_address})
        assert blocked.status_code == 429
        assert blocked.headers["retry-after"]
    assert len(received.messages) == limit


def test_reset_requests_are_rate_limited_per_client(
    mail_panel: Panel, inbox: tuple[Inbox, int]
) -> None:
    mail_panel.setup_admin()
    anonymous = mail_panel.client()
    limit = mail_panel.context.settings.mail_requests_per_ip
    for index in range(limit):
        response = anonymous.post(
            "/api/auth/password-reset", json={"email": f"ghost{index}@example.com"}
        )
        assert response.status_code == 202
    blocked = anonymous.post("/api/auth/password-reset", json={"email": "other@example.com"})
    assert blocked.status_code == 429
    assert "ip" in blocked.json()["error"]["message"]


def test_user_created_by_admin_gets_a_verification_mail(
    mail_panel: Panel, inbox: tuple[Inbox, int]
) -> None:
    received, _ = inbox
    admin = mail_panel.setup_admin()
    create_user(mail_panel, admin, "player@example.com")
    message = received.only("player@example.com")
    assert "confirm" in message["Subject"].lower()
    token = link_token(message, "verify-email")
    player = mail_panel.login("player@example.com")
    assert player.get("/api/account").json()["email_verified"] is False
    verified = mail_panel.client().post("/api/auth/verify-email", json={"token": token})
    assert verified.status_code == 204, verified.text
    assert player.get("/api/account").json()["email_verified"] is True
    # A verification token is no reset token.
    wrong_purpose = mail_panel.client().post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert wrong_purpose.status_code == 422


def test_verification_mail_on_demand(mail_panel: Panel, inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    admin = mail_panel.setup_admin()
    sent = admin.post("/api/account/email/verification")
    assert sent.status_code == 202, sent.text
    token = link_token(received.only(ADMIN_EMAIL), "verify-email")
    bogus = admin.post("/api/auth/verify-email", json={"token": "x" * 43})
    assert bogus.status_code == 422
    assert bogus.json()["error"]["field"] == "body.token"
    assert admin.post("/api/auth/verify-email", json={"token": token}).status_code == 204
    assert admin.get("/api/account").json()["email_verified"] is True
    again = admin.post("/api/account/email/verification")
    assert again.status_code == 409


def test_a_failing_smtp_server_does_not_fail_the_request(
    mail_panel: Panel, inbox: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    mail_panel.setup_admin()
    # Nothing listens on this port: delivery fails after the answer was given, and says so.
    mail_panel.context.mailer = SmtpMailer(host="127.0.0.1", port=free_port(), starttls=False)
    with caplog.at_level(logging.ERROR, logger="stellarstack.panel.mail"):
        response = mail_panel.client().post("/api/auth/password-reset", json={"email": ADMIN_EMAIL})
    assert response.status_code == 202
    assert any(
        "failed" in record.getMessage() and ADMIN_EMAIL in record.getMessage()
        for record in caplog.records
    )


def test_development_mailer_logs_the_message(
    tmp_path: Path, panel_db_url: str, panel_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = panel_settings(tmp_path, panel_db_url, environment="development")
    context = build_context(settings)
    context.clock = panel_clock
    dev = Panel(context=context, app=create_app(context), clock=panel_clock)
    try:
        dev.setup_admin()
        with caplog.at_level(logging.INFO, logger="stellarstack.panel.mail"):
            response = dev.client().post("/api/auth/password-reset", json={"email": ADMIN_EMAIL})
        assert response.status_code == 202
        logged = [r.getMessage() for r in caplog.records if r.name == "stellarstack.panel.mail"]
        assert len(logged) == 1
        assert "development" in logged[0]
        assert ADMIN_EMAIL in logged[0]
        assert "https://testserver/reset-password?token=" in logged[0]
    finally:
        dev.close()


def test_production_without_smtp_refuses_mail_features(panel: Panel) -> None:
    admin = panel.setup_admin()
    reset = panel.client().post("/api/auth/password-reset", json={"email": ADMIN_EMAIL})
    assert reset.status_code == 503
    assert reset.json()["error"]["code"] == "mail_unavailable"
    assert admin.post("/api/account/email/verification").status_code == 503
    # Creating users still works; the verification mail is simply not sent.
    create_user(panel, admin, "player@example.com")


# --- STARTTLS with a certificate from a private CA, and SMTP AUTH ---------------------------

SMTP_USER = "panel"
SMTP_SECRET = "mail-relay-secret"


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None, signer: Any, ca: bool
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture
def tls_inbox(tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    """An SMTP server that requires STARTTLS and a login; its certificate is signed by a CA
    that only the returned `ca.pem` holds."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("StellarStack test CA", ca_key, None, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _certificate("127.0.0.1", server_key, ca_cert.subject, ca_key, ca=False)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain = tmp_path / "server.pem"
    chain.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + server_cert.public_bytes(serialization.Encoding.PEM)
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        ok = isinstance(auth, LoginPassword) and (auth.login, auth.password) == (
            SMTP_USER.encode(),
            SMTP_SECRET.encode(),
        )
        return AuthResult(success=ok)

    handler = Inbox()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        yield handler, port, ca_file
    finally:
        controller.stop()


def test_mail_goes_over_starttls_with_a_login(
    tmp_path: Path,
    panel_db_url: str,
    panel_clock: Clock,
    tls_inbox: tuple[Inbox, int, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    received, port, ca_file = tls_inbox
    common = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": True,
        "smtp_username": SMTP_USER,
        "smtp_password": SMTP_SECRET,
    }
    trusted = build_context(panel_settings(tmp_path, panel_db_url, smtp_ca_file=ca_file, **common))
    trusted.clock = panel_clock
    panel = Panel(context=trusted, app=create_app(trusted), clock=panel_clock)
    try:
        panel.setup_admin()
        sent = panel.client().post("/api/auth/password-reset", json={"email": ADMIN_EMAIL})
        assert sent.status_code == 202
        assert received.sessions == [(True, True)]
        assert link_token(received.only(ADMIN_EMAIL), "reset-password")

        # The same server with only the system's trust store: its certificate is refused and
        # nothing is sent in the clear; the request is answered all the same.
        panel.context.mailer = SmtpMailer(
            host="127.0.0.1", port=port, username=SMTP_USER, password=SMTP_SECRET
        )
        with caplog.at_level(logging.ERROR, logger="stellarstack.panel.mail"):
            again = panel.client().post("/api/auth/password-reset", json={"email": ADMIN_EMAIL})
        assert again.status_code == 202
        assert len(received.messages) == 1
        assert any("CERTIFICATE_VERIFY_FAILED" in r.getMessage() for r in caplog.records)
    finally:
        panel.close()
