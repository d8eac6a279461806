"""Monitor health -> health alerts: one per bad state entered, one when it clears."""

from __future__ import annotations

import logging

import pytest

from bot.alerts.health import MonitorHealthAlerts, health_alert


@pytest.mark.parametrize(
    ("states", "rules"),
    [
        (["ready"], []),
        (["ready", "blind"], ["leakwarden.monitor-blind"]),
        (["blind", "blind", "blind"], ["leakwarden.monitor-blind"]),  # not one per message
        (["blind", "ready"], ["leakwarden.monitor-blind", "leakwarden.monitor-recovered"]),
        (["ready", "disconnected", "ready"], []),  # reconnects are routine
        (["fatal"], ["leakwarden.monitor-stopped"]),
        (["blind", "fatal"], ["leakwarden.monitor-blind", "leakwarden.monitor-stopped"]),
        (["ready", "down", "down", "ready"],  # a long Socket Mode outage, once, then cleared
         ["leakwarden.monitor-down", "leakwarden.monitor-recovered"]),
    ],
)
def test_state_changes_to_alerts(states, rules):
    sent = []
    listener = MonitorHealthAlerts(sent.append).listener("discord")
    for state in states:
        listener(state, f"because {state}")
    assert [a.rule_id for a in sent] == rules
    assert all(a.kind == "health" and a.matched == "discord" for a in sent)


def test_platforms_are_tracked_apart_and_the_log_always_hears(caplog):
    sent = []
    health = MonitorHealthAlerts(sent.append)
    caplog.set_level(logging.ERROR, "leakwarden.alerts.health")
    health.report("discord", "blind", "enable the MESSAGE CONTENT intent")
    health.report("slack", "blind", "x")
    assert [a.detail["platform"] for a in sent] == ["discord", "slack"]
    assert sent[0].severity == "high" and "MESSAGE CONTENT" in sent[0].excerpt
    assert "discord monitor is blind" in caplog.text


def test_health_alert_keys_differ_by_subject():
    a = health_alert("leakwarden.monitor-blind", "discord", "x")
    b = health_alert("leakwarden.monitor-blind", "slack", "x")
    assert a.idempotency_key != b.idempotency_key and a.incident_id is None
