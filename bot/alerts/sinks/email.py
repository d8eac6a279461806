"""Email over SMTP (stdlib smtplib in a worker thread, so the event loop never blocks)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage

from bot.alerts import render
from bot.alerts.base import Alert, PermanentError, RetryableError
from bot.alerts.escape import display

SUBJECT_LIMIT = 200


def build_message(alert: Alert, from_addr: str, to: list[str]) -> EmailMessage:
    """A plain-text email; the idempotency key doubles as the Message-ID's left part."""
    msg = EmailMessage()
    msg["From"] = from_addr
    msg["To"] = ", ".join(to)
    # display() spells out CR/LF, so untrusted text cannot inject headers.
    msg["Subject"] = display(render.title(alert), SUBJECT_LIMIT)
    domain = from_addr.rsplit("@", 1)[-1] or "leakwarden.invalid"
    msg["Message-ID"] = f"<{_id_part(alert.idempotency_key)}@{domain}>"
    if alert.incident_id:
        # Every email of one incident names the same thread root, so mail clients show the
        # first alert, its updates and its triage outcomes as one conversation.
        thread = f"<incident-{_id_part(alert.incident_id)}@{domain}>"
        msg["References"] = thread
        if alert.is_update or alert.action != "trigger":
            msg["In-Reply-To"] = thread
    msg["X-Leakwarden-Key"] = display(alert.idempotency_key, 200)
    msg.set_content(render.plain_text(alert))
    return msg


def _id_part(value: str) -> str:
    """`value` usable left of the @ in a Message-ID (untrusted characters become dashes)."""
    return "".join(c if c.isalnum() or c in "-._" else "-" for c in value)


class EmailSink:
    """Send each alert as one email; 5xx SMTP replies are permanent, 4xx and network retryable."""

    def __init__(
        self,
        id: str,
        *,
        host: str,
        port: int,
        from_addr: str,
        to: list[str],
        starttls: bool = True,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ):
        self.id = id
        self._host, self._port, self._starttls = host, port, starttls
        self._username, self._password = username, password
        self._from, self._to = from_addr, to
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"EmailSink(id={self.id!r}, host={self._host!r})"

    def _send_blocking(self, msg: EmailMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._username and self._password:
                smtp.login(self._username, self._password)
            smtp.send_message(msg)

    async def send(self, alert: Alert) -> None:
        """Deliver one alert by SMTP."""
        msg = build_message(alert, self._from, self._to)
        try:
            await asyncio.to_thread(self._send_blocking, msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(
                f"email sink {self.id}: authentication failed ({exc.smtp_code})"
            ) from None
        except smtplib.SMTPResponseException as exc:
            kind = PermanentError if 500 <= exc.smtp_code < 600 else RetryableError
            raise kind(f"email sink {self.id}: SMTP {exc.smtp_code}") from None
        except smtplib.SMTPRecipientsRefused:
            raise PermanentError(f"email sink {self.id}: recipients refused") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise RetryableError(f"email sink {self.id}: {type(exc).__name__}") from None
