"""Generic webhook: Standard Webhooks signature, Idempotency-Key, escaped payload."""

from __future__ import annotations

import json
import time

import pytest

from bot.alerts.base import PermanentError
from bot.alerts.sinks.webhook import WebhookSink, sign, verify

from .fakes import make_alert

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_signature_matches_the_standard_webhooks_reference_vector():
    # The example from the Standard Webhooks specification.
    body = b'{"test": 2432232314}'
    assert sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


async def test_delivery_is_signed_and_keyed(receiver, session):
    alert = make_alert(1, excerpt="ping @everyone \u202eevil")
    await WebhookSink("siem", receiver.url, SECRET, session).send(alert)
    [req] = receiver.requests
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert headers["idempotency-key"] == headers["webhook-id"] == alert.idempotency_key
    assert verify(SECRET, headers, req["body"], now=time.time())
    assert not verify(SECRET, headers, req["body"] + b" ", now=time.time())  # tamper
    assert not verify(SECRET, headers, req["body"], now=time.time() + 3600)  # replay window
    doc = json.loads(req["body"])
    assert doc["type"] == "leakwarden.alert"
    assert doc["data"]["hit_id"] == "hit-1"
    assert doc["data"]["excerpt"] == "ping @everyone \\u202eevil"  # JSON keeps text; bidi shown


@pytest.mark.parametrize(
    ("fields", "event"),
    [
        ({}, "leakwarden.alert"),
        ({"is_update": True, "count": 3}, "leakwarden.alert.update"),
        ({"action": "resolve"}, "leakwarden.incident.resolve"),
        ({"action": "acknowledge", "kind": "triage"}, "leakwarden.incident.acknowledge"),
        ({"kind": "triage"}, "leakwarden.incident.reopen"),  # a reopen is mirrored as a trigger
    ],
)
async def test_event_types(receiver, session, fields, event):
    await WebhookSink("siem", receiver.url, SECRET, session).send(make_alert(1, **fields))
    assert json.loads(receiver.requests[0]["body"])["type"] == event


async def test_secrets_never_in_repr_or_errors(receiver, session):
    receiver.status = 401
    sink = WebhookSink("siem", receiver.url, SECRET, session)
    assert "secret-token" not in repr(sink) and SECRET not in repr(sink)
    with pytest.raises(PermanentError) as err:
        await sink.send(make_alert(1))
    assert "secret-token" not in str(err.value) and SECRET not in str(err.value)
