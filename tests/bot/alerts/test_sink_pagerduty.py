"""PagerDuty Events v2: dedup key per incident, triage mirrored as acknowledge/resolve."""

from __future__ import annotations

import json

import pytest

from bot.alerts.base import PermanentError
from bot.alerts.sinks.pagerduty import PagerDutySink

from .fakes import make_alert

ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"


@pytest.fixture
async def pagerduty(receiver, session):
    receiver.status, receiver.reply_json = 202, {"status": "success", "message": "Event processed"}
    base = receiver.url.split("/hook")[0]
    return PagerDutySink("pager", ROUTING_KEY, session, base_url=base + "/")


async def test_trigger_uses_the_incident_as_dedup_key(pagerduty, receiver):
    await pagerduty.send(make_alert(1, incident_id="inc-9", severity="critical"))
    await pagerduty.send(make_alert(2, incident_id="inc-9", is_update=True, count=2))
    first, second = (json.loads(r["body"]) for r in receiver.requests)
    assert receiver.requests[0]["path"] == "/v2/enqueue"
    assert first["dedup_key"] == second["dedup_key"] == "inc-9"
    assert first["event_action"] == "trigger"
    assert first["payload"]["severity"] == "critical"
    assert first["routing_key"] == ROUTING_KEY
    assert first["links"][0]["href"].startswith("https://discord.com/")


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
async def test_triage_is_mirrored(pagerduty, receiver, action):
    await pagerduty.send(make_alert(1, incident_id="inc-9", action=action))
    body = json.loads(receiver.requests[0]["body"])
    assert body == {"routing_key": ROUTING_KEY, "event_action": action, "dedup_key": "inc-9"}


async def test_invalid_event_is_permanent_and_key_stays_secret(pagerduty, receiver):
    receiver.status, receiver.reply_json = 400, {"status": "invalid event"}
    with pytest.raises(PermanentError) as err:
        await pagerduty.send(make_alert(1))
    assert ROUTING_KEY not in str(err.value) and ROUTING_KEY not in repr(pagerduty)
