"""The platform-neutral reading of an alert: a title, labelled facts and an excerpt.

Every value here is plain text that already went through `escape.display`; sinks apply their
own markup escaping on top.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.alerts.base import Alert
from bot.alerts.escape import display

_SAFE_URL = re.compile(r"^https?://[^\s<>|\"'`\\]+$")
_NAME_LIMIT = 100  # author, channel, location: enough to recognise, too short to abuse
# Channel ids as each platform writes them: only these become native mentions.
_CHANNEL_IDS = {"discord": re.compile(r"[0-9]{15,21}"), "slack": re.compile(r"[CGD][A-Z0-9]{2,20}")}


def safe_url(url: str | None) -> str | None:
    """The URL when it is a plain http(s) link without characters that break markup, else None."""
    if url and len(url) <= 2000 and _SAFE_URL.match(url):
        return url
    return None


def title(alert: Alert) -> str:
    """One line: severity, kind, rule, and whether this is an update or a triage outcome."""
    head = f"[{alert.severity.upper()}] {display(alert.kind, 40)} {display(alert.rule_id, 80)}"
    if alert.action == "resolve":
        return f"Resolved: {head}"
    if alert.action == "acknowledge":
        return f"Acknowledged: {head}"
    if alert.kind == "triage":  # a triage mirrored as a trigger: the incident was reopened
        return f"Reopened: {head}"
    if alert.is_update:
        return f"Update ({alert.count} hits): {head}"
    if alert.kind == "digest":
        return f"Digest: {display(alert.matched, 200)}"
    return head


def where(alert: Alert) -> str | None:
    """ "platform · community · #channel" from whatever the alert knows."""
    parts = [display(p, _NAME_LIMIT) for p in (alert.platform, alert.community_id) if p]
    if alert.channel_id:
        parts.append("#" + display(alert.channel_id, _NAME_LIMIT))
    return " · ".join(parts) or None


def where_linked(alert: Alert, platform: str, escape: Callable[[str], str]) -> str | None:
    """`where` for a sink on `platform` when the hit comes from that platform too: the channel
    as its native mention (`<#id>`: the client shows the channel's name as a link; a channel
    mention pings nobody), the rest escaped with `escape`. None otherwise: the sink shows the
    plain `where`, ids and all (a Slack channel means nothing to Discord)."""
    pattern = _CHANNEL_IDS.get(platform)
    if alert.platform != platform or pattern is None or not pattern.fullmatch(alert.channel_id or ""):
        return None
    head = [escape(display(p, _NAME_LIMIT)) for p in (alert.platform, alert.community_id) if p]
    return " · ".join([*head, f"<#{alert.channel_id}>"])


def facts(alert: Alert) -> list[tuple[str, str]]:
    """Labelled values for the alert body, in reading order."""
    rows: list[tuple[str, str | None]] = [
        ("Where", where(alert)),
        ("Author", display(alert.author_name, _NAME_LIMIT) if alert.author_name else None),
        ("Location", display(alert.location, _NAME_LIMIT)),
        ("Matched", display(alert.matched, 120) if alert.matched else None),
        ("Triage", display(alert.triage, 200) if alert.triage else None),
        ("Hits", str(alert.count) if alert.count > 1 or alert.is_update else None),
        ("Last seen", display(alert.last_seen, 40) if alert.last_seen else None),
        ("Incident", display(alert.incident_id, 80) if alert.incident_id else None),
        ("Hit", display(alert.hit_id, 80)),
    ]
    return [(label, value) for label, value in rows if value]


# What a file finding's detail shows first: the verdict, then the figures behind it.
VERDICT_FIRST = ("verdict", "coverage", "score", "r", "limit", "fingerprint_id")
VERDICT_FIGURES = 6


def attachment_verdict(alert: Alert) -> str | None:
    """ "attachment:a.zip/model.safetensors: verdict=derived, coverage=0.93, ..." or None."""
    if alert.location == "text":
        return None
    scalars = {k: v for k, v in alert.detail.items()
               if isinstance(v, str | int | float) and not isinstance(v, bool)}
    order = [k for k in VERDICT_FIRST if k in scalars] + sorted(set(scalars) - set(VERDICT_FIRST))
    figures = ", ".join(f"{k}={scalars[k]}" for k in order[:VERDICT_FIGURES])
    return display(alert.location + (f": {figures}" if figures else ""), 300)


def excerpt(alert: Alert) -> str:
    """The excerpt, at most 300 code points, invisible characters spelled out."""
    return display(alert.excerpt)


def plain_text(alert: Alert) -> str:
    """The whole alert as plain text (log and email bodies)."""
    lines = [title(alert)]
    lines += [f"{label}: {value}" for label, value in facts(alert)]
    if alert.excerpt:
        lines.append(f"Excerpt: {excerpt(alert)}")
    if url := safe_url(alert.permalink):
        lines.append(f"Link: {url}")
    lines.append(f"Key: {display(alert.idempotency_key, 120)}")
    return "\n".join(lines)
