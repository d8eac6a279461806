"""`[[routes]]`: which sinks get a finding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.alerts.settings import RouteSettings, severity_rank


def route_matches(route: RouteSettings, finding: Any, message: Any | None) -> bool:
    """True when every condition the route sets holds for this finding and message."""
    if severity_rank(finding.severity) < severity_rank(route.min_severity):
        return False
    if route.rule_ids and finding.rule_id not in route.rule_ids:
        return False
    if route.kinds and finding.kind not in route.kinds:
        return False
    # A route that names platforms or communities never matches a hit without a message
    # (a file scan): better unrouted than sent to the wrong team.
    if route.platforms and (message is None or message.platform not in route.platforms):
        return False
    return not (
        route.communities and (message is None or message.community_id not in route.communities)
    )


def sinks_for(finding: Any, message: Any | None, routes: Sequence[RouteSettings]) -> list[str]:
    """Sink ids for a finding: the union of all matching routes in config order, else the default."""
    chosen: dict[str, None] = {}  # an ordered set
    for route in routes:
        if not route.default and route_matches(route, finding, message):
            chosen.update(dict.fromkeys(route.sinks))
    if not chosen:
        for route in routes:
            if route.default and route_matches(route, finding, message):
                chosen.update(dict.fromkeys(route.sinks))
    return list(chosen)
