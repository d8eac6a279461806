"""AlertService: settings -> sinks + relay; routing for the pipeline; triage mirrored."""

from __future__ import annotations

import json

from bot.alerts.service import AlertService
from bot.alerts.settings import AlertsConfig
from detectors import Finding, Severity

from .fakes import make_alert, run_simulated


def finding(rule_id="cn-larkspur", severity=Severity.HIGH, kind="codename"):
    return Finding(rule_id, kind, severity, "text", 0, 8, "Larkspur", "Larkspur ships")


def config(receiver_url: str, pd_base: str) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "sinks": [
                {
                    "id": "siem",
                    "type": "webhook",
                    "url_env": "SIEM_URL",
                    "secret_env": "SIEM_SECRET",
                },
                {
                    "id": "pager",
                    "type": "pagerduty",
                    "routing_key_env": "PD_KEY",
                    "base_url": pd_base,
                },
                {"id": "log", "type": "log", "health": True},
            ],
            "routes": [
                {"min_severity": "critical", "sinks": ["pager", "siem"]},
                {"kinds": ["codename"], "sinks": ["siem"]},
                {"default": True, "sinks": ["log"]},
            ],
        }
    )


async def test_routing_delivery_and_triage(outbox, clock, make_receiver, session):
    siem = await make_receiver()
    pd = await make_receiver(status=202, reply_json={"status": "success"})
    env = {"SIEM_URL": siem.url, "SIEM_SECRET": "whsec_c2VjcmV0", "PD_KEY": "k" * 32}
    cfg = config(siem.url, pd.url.split("/hook")[0])
    service = AlertService.from_settings(
        outbox, cfg.sinks, cfg.routes, session=session, env=env, clock=clock
    )
    assert service.sinks_for([finding()], None) == ["siem"]
    assert service.sinks_for([finding(severity=Severity.CRITICAL)], None) == ["pager", "siem"]
    assert service.sinks_for([finding(kind="pattern", severity=Severity.LOW)], None) == ["log"]
    assert service.sinks_for(
        [finding(), finding(kind="digest", severity=Severity.CRITICAL)], None
    ) == ["siem", "pager"]

    for sink in service.sinks_for([finding(severity=Severity.CRITICAL)], None):
        outbox.add(sink, make_alert(1, sink=sink, incident_id="inc-1", severity="critical"))
    await service.start()
    try:
        service.notify()
        await run_simulated(clock, service.relay, 2)
        assert list(siem.applied) == ["hit-1:siem"]
        assert json.loads(pd.requests[0]["body"])["dedup_key"] == "inc-1"

        # A triage in the store queues acknowledge/resolve rows for the incident-keeping sinks.
        assert service.triage_sinks() == ["siem", "pager"]
        for sink in service.triage_sinks():
            outbox.add(sink, make_alert("t1", sink=sink, incident_id="inc-1", kind="triage",
                                        action="resolve"))
        service.notify()
        await run_simulated(clock, service.relay, 2)
        resolve = json.loads(pd.requests[1]["body"])
        assert (resolve["event_action"], resolve["dedup_key"]) == ("resolve", "inc-1")
        assert json.loads(siem.requests[1]["body"])["type"] == "leakwarden.incident.resolve"
    finally:
        await service.stop()


async def test_a_blind_monitor_alerts_the_health_sinks_once(outbox, clock, make_receiver, session):
    siem = await make_receiver()
    env = {"SIEM_URL": siem.url, "SIEM_SECRET": "whsec_c2VjcmV0", "PD_KEY": "k" * 32}
    cfg = config(siem.url, "http://127.0.0.1:9")
    cfg.sinks[0].health = True
    service = AlertService.from_settings(
        outbox, cfg.sinks, cfg.routes, session=session, env=env, clock=clock
    )
    await service.start()
    try:
        listener = service.health_listener("discord")
        for state in ("ready", "blind", "blind", "ready"):
            listener(state, "detail of " + state)
        await run_simulated(clock, service.relay, 2)
    finally:
        await service.stop()
    rules = [json.loads(r["body"])["data"]["rule_id"] for r in siem.requests]
    assert rules == ["leakwarden.monitor-blind", "leakwarden.monitor-recovered"]
