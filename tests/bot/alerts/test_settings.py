"""`[[sinks]]` / `[[routes]]` validation: a discriminated union by `type`, unknown keys refused."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import ValidationError

from bot.alerts.settings import (
    AlertsConfig,
    DiscordWebhookSinkSettings,
    PagerDutySinkSettings,
    RouteSettings,
    WebhookSinkSettings,
    alert_problems,
    unrouted_severities,
)

EXAMPLE = """
[[sinks]]
id = "secops"
type = "slack"
channel = "C0SECOPS"

[[sinks]]
id = "mods"
type = "discord-webhook"
url_env = "MODS_WEBHOOK_URL"
rate_limit = { per_minute = 30, burst = 5 }

[[sinks]]
id = "siem"
type = "webhook"
url_env = "SIEM_URL"
secret_env = "SIEM_SECRET"
digest_below = "medium"
digest_cron = "0 9 * * *"

[[sinks]]
id = "pager"
type = "pagerduty"
routing_key_env = "PD_ROUTING_KEY"

[[sinks]]
id = "log"
type = "log"
health = true

[[routes]]
min_severity = "critical"
sinks = ["pager"]

[[routes]]
min_severity = "medium"
platforms = ["discord"]
sinks = ["mods", "siem"]

[[routes]]
default = true
sinks = ["log", "siem"]
"""


def test_example_parses_into_typed_sinks():
    config = AlertsConfig.model_validate(tomllib.loads(EXAMPLE))
    types = [type(s).__name__ for s in config.sinks]
    assert types[1:4] == [
        DiscordWebhookSinkSettings.__name__,
        WebhookSinkSettings.__name__,
        PagerDutySinkSettings.__name__,
    ]
    assert config.sinks[1].rate_limit.burst == 5
    assert config.routes[2].default


def _with(sink_patch: dict | None = None, route_patch: dict | None = None) -> dict:
    doc = tomllib.loads(EXAMPLE)
    if sink_patch is not None:
        doc["sinks"][2] = {**doc["sinks"][2], **sink_patch}
    if route_patch is not None:
        doc["routes"][1] = {**doc["routes"][1], **route_patch}
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_with({"colour": "red"}), "colour"),  # unknown key
        (_with({"type": "carrier-pigeon"}), "carrier-pigeon"),
        (_with({"url_env": "https://hooks.example/T0/B0/xyz"}), "url_env"),  # a value, not a name
        (_with({"digest_below": "urgent"}), "urgent"),
        (_with({"digest_cron": "every day"}), "crontab"),
        (_with({"secret_env": None}), "secret_env"),
        (_with({"id": "mods"}), "used twice"),
        (_with(route_patch={"sinks": ["nope"]}), "unknown sink 'nope'"),
        (_with(route_patch={"min_severity": "severe"}), "severe"),
        (_with(route_patch={"default": True}), "only one route"),
        (_with(route_patch={"sinks": []}), "sinks"),
        (_with({"rate_limit": {"per_minute": 0}}), "per_minute"),
        (_with(route_patch={"kinds": ["codenme"]}), "unknown kind 'codenme'"),
        (_with(route_patch={"platforms": ["file"]}), "offline scans (scan --record) are recorded"),
    ],
)
def test_invalid_config_is_refused_with_a_message_naming_the_key(doc, message):
    with pytest.raises(ValidationError) as err:
        AlertsConfig.model_validate(doc)
    assert message in str(err.value)


def test_settings_hold_env_var_names_only():
    sink = WebhookSinkSettings(id="x", type="webhook", url_env="X_URL", secret_env="X_SECRET")
    assert "X_URL" in repr(sink)  # names are fine to show; values never reach settings


def test_route_rule_ids_are_checked_when_the_known_ids_are_given():
    config = AlertsConfig.model_validate(_with(route_patch={"rule_ids": ["cn-a", "cn-typo"]}))
    assert alert_problems(config.sinks, config.routes) == []  # nothing to check against
    [problem] = alert_problems(config.sinks, config.routes, rule_ids={"cn-a"})
    assert (problem.section, problem.index, problem.key) == ("routes", 1, "rule_ids")
    assert "'cn-typo'" in problem.message


@pytest.mark.parametrize(
    ("min_severities", "unrouted"),
    [
        ([], ["low", "medium", "high", "critical"]),
        (["critical"], ["low", "medium", "high"]),
        (["critical", "medium"], ["low"]),
        (["low"], []),
    ],
)
def test_unrouted_severities(min_severities, unrouted):
    routes = [RouteSettings(min_severity=s, kinds=["codename"], sinks=["x"])
              for s in min_severities]
    assert unrouted_severities(routes) == unrouted
