"""`[[routes]]`: severity floor, rule ids, kinds, platforms, communities, default route."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.alerts.routing import sinks_for
from bot.alerts.settings import RouteSettings


@dataclass
class F:  # the Finding fields routing reads; severity as detectors' IntEnum or a name
    rule_id: str = "cn-larkspur"
    kind: str = "codename"
    severity: object = "high"


@dataclass
class M:
    platform: str = "discord"
    community_id: str = "g1"


ROUTES = [
    RouteSettings(min_severity="critical", sinks=["pager"]),
    RouteSettings(min_severity="medium", platforms=["discord"], sinks=["discord-mods"]),
    RouteSettings(rule_ids=["anthropic-key"], kinds=["pattern"], sinks=["secops", "pager"]),
    RouteSettings(communities=["T-LEGAL"], sinks=["legal"]),
    RouteSettings(default=True, sinks=["log"]),
]


@pytest.mark.parametrize(
    ("finding", "message", "expected"),
    [
        (F(severity="critical"), M(), ["pager", "discord-mods"]),
        (F(severity="medium"), M(), ["discord-mods"]),
        (F(severity="low"), M(), ["log"]),  # nothing matched: the default route
        (F(severity="high"), M(platform="slack"), ["log"]),
        (
            F(rule_id="anthropic-key", kind="pattern", severity="low"),
            M("slack"),
            ["secops", "pager"],
        ),
        (F(rule_id="anthropic-key", kind="codename", severity="low"), M("slack"), ["log"]),
        (F(severity="low"), M("slack", "T-LEGAL"), ["legal"]),
        (F(severity="high"), None, ["log"]),  # a file scan: platform routes cannot match
        (F(severity=4), None, ["pager"]),  # IntEnum-like severities compare by rank
    ],
)
def test_routes_table(finding, message, expected):
    assert sinks_for(finding, message, ROUTES) == expected


def test_no_routes_means_no_sinks():
    assert sinks_for(F(), M(), []) == []


def test_default_route_respects_its_own_conditions():
    routes = [RouteSettings(default=True, min_severity="high", sinks=["log"])]
    assert sinks_for(F(severity="low"), M(), routes) == []
    assert sinks_for(F(severity="high"), M(), routes) == ["log"]
