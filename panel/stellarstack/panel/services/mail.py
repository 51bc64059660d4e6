"""Outgoing mail: one `Mailer` interface, an SMTP implementation, and a development one that
writes each message to the log instead of sending it.

Mail is delivered after the request's transaction has committed (as a background task of the
response), so a slow or failing SMTP server neither delays the answer nor reveals through
timing or errors whether an account exists.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Protocol

from stellarstack.panel.settings import PanelSettings

log = logging.getLogger("stellarstack.panel.mail")


class MailNotConfiguredError(RuntimeError):
    """Raised by the mailer of a panel that has no SMTP server (outside development)."""


class Mailer(Protocol):
    """Sends one message; raises on failure (callers decide whether that is fatal)."""

    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpMailer:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    """Upgrade the connection with STARTTLS (certificate checked) before logging in."""
    timeout: float = 10.0
    ca_file: str | None = None
    """Certificates to trust instead of the system's (an internal relay's private CA)."""

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


class LoggingMailer:
    """Development: the whole message goes to the log, links included, and nowhere else."""

    def send(self, message: EmailMessage) -> None:
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        # A warning, so it shows under any logging set-up: the link is only here.
        log.warning(
            "mail not sent (development mode, no SMTP server): to=%s subject=%r\n%s",
            message["To"],
            message["Subject"],
            text,
        )


class UnconfiguredMailer:
    """Production without `smtp_host`: every send fails, and features that need mail say so."""

    def send(self, message: EmailMessage) -> None:
        raise MailNotConfiguredError(
            "no SMTP server is configured (set STELLARSTACK_PANEL_SMTP_HOST)"
        )


def mailer_for(settings: PanelSettings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=(
                settings.smtp_password.get_secret_value() if settings.smtp_password else None
            ),
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
            ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        )
    if settings.is_development:
        return LoggingMailer()
    return UnconfiguredMailer()


def can_send(mailer: Mailer) -> bool:
    return not isinstance(mailer, UnconfiguredMailer)


def compose(settings: PanelSettings, *, to: str, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(text)
    return message


def deliver(mailer: Mailer, message: EmailMessage) -> None:
    """Send after the response; a failure is logged, never raised (nobody is left to tell)."""
    try:
        mailer.send(message)
    except MailNotConfiguredError as exc:
        log.warning("mail to %s not sent: %s", message["To"], exc)
    except (smtplib.SMTPException, OSError) as exc:
        log.error("mail to %s failed: %s: %s", message["To"], type(exc).__name__, exc)
