"""Email sink against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import socket

import pytest
from aiosmtpd.controller import Controller

from bot.alerts.base import PermanentError, RetryableError
from bot.alerts.sinks.email import EmailSink

from .fakes import make_alert


class Inbox:
    def __init__(self):
        self.messages = []
        self.reply = "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.reply.startswith("250"):
            self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
        return self.reply


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def sink(port: int) -> EmailSink:
    return EmailSink(
        "mail",
        host="127.0.0.1",
        port=port,
        starttls=False,
        from_addr="leakwarden@example.org",
        to=["tns@example.org"],
        timeout=5,
    )


async def test_alert_arrives_as_plain_text_with_its_key(smtp):
    inbox, port = smtp
    alert = make_alert(1, excerpt="see\r\nBcc: victim@example.org \u202e", author_name="a\nb")
    await sink(port).send(alert)
    [(rcpts, msg)] = inbox.messages
    assert rcpts == ["tns@example.org"]
    assert msg["X-Leakwarden-Key"] == alert.idempotency_key
    assert msg["Message-ID"] == "<hit-1-hook@example.org>"
    assert msg["Bcc"] is None  # no header injection from chat text
    body = msg.get_payload()
    assert "\\u202e" in body and "\u202e" not in body
    assert alert.hit_id in body


async def test_an_incidents_emails_are_one_thread(smtp):
    inbox, port = smtp
    mail = sink(port)
    await mail.send(make_alert(1, incident_id="inc-1"))
    await mail.send(make_alert(2, incident_id="inc-1", is_update=True, count=2))
    await mail.send(make_alert("t", incident_id="inc-1", kind="triage", action="resolve"))
    await mail.send(make_alert(3, incident_id="inc 3\r\nBcc: x"))
    headers = [(m["References"], m["In-Reply-To"]) for _, m in inbox.messages]
    root = "<incident-inc-1@example.org>"
    assert headers == [(root, None), (root, root), (root, root),
                       ("<incident-inc-3--Bcc--x@example.org>", None)]


@pytest.mark.parametrize(
    ("reply", "error"), [("550 no such user", PermanentError), ("451 try later", RetryableError)]
)
async def test_smtp_errors(smtp, reply, error):
    inbox, port = smtp
    inbox.reply = reply
    with pytest.raises(error):
        await sink(port).send(make_alert(1))


async def test_server_down_is_retryable():
    with pytest.raises(RetryableError):
        await sink(free_port()).send(make_alert(1))
