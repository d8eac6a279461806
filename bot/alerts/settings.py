"""`[[sinks]]` and `[[routes]]` settings (owned by the alerts package).

Secrets (webhook URLs, signing secrets, routing keys, SMTP passwords) never appear here: only the
NAMES of the environment variables that hold them (`*_env`), resolved when the sinks are built.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.alerts.digest import valid_crontab
from detectors import FINDING_KINDS

SEVERITIES = ("low", "medium", "high", "critical")
# Where routed hits come from. Offline scans (`scan --record`) are recorded without alerts, so
# no hit is ever routed from a file: a route naming "file" would match nothing, and is refused.
PLATFORMS = ("discord", "slack")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES, start=1)}

# Env var names are plain identifiers; refusing anything else catches a pasted secret early.
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def severity_rank(value: object) -> int:
    """1..4 for low..critical from a name, an int or an IntEnum such as detectors' Severity."""
    if isinstance(value, int):
        if 1 <= int(value) <= 4:
            return int(value)
        raise ValueError(f"unknown severity {value!r}")
    name = str(value).strip().lower()
    if name not in SEVERITY_RANK:
        raise ValueError(f"unknown severity {value!r} (expected one of: {', '.join(SEVERITIES)})")
    return SEVERITY_RANK[name]


def _check_severity(value: str | None) -> str | None:
    if value is None:
        return None
    severity_rank(value)
    return value.strip().lower()


class RateLimit(BaseModel):
    """A token bucket: `per_minute` sustained, `burst` at once."""

    model_config = ConfigDict(extra="forbid")

    per_minute: float = Field(gt=0)
    burst: int = Field(default=1, ge=1)


class _SinkBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    rate_limit: RateLimit | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Hits below this severity wait for the scheduled digest instead of alerting one by one.
    digest_below: str | None = None
    digest_cron: str = "0 * * * *"
    # This sink also carries health alerts (dead letters of other sinks).
    health: bool = False

    _severity = field_validator("digest_below")(_check_severity)

    _cron = field_validator("digest_cron")(valid_crontab)


class SlackBotSinkSettings(_SinkBase):
    """Slack bot message with buttons (built by bot/platforms, not here)."""

    type: Literal["slack"]
    # Unset: the adapter's own alert channel ([slack] settings).
    channel: str | None = Field(default=None, min_length=1)


class DiscordBotSinkSettings(_SinkBase):
    """Discord bot channel message with buttons (built by bot/platforms, not here)."""

    type: Literal["discord"]
    # Unset: the adapter's own mod-log channel ([discord] settings).
    channel: str | None = Field(default=None, min_length=1)


class SlackWebhookSinkSettings(_SinkBase):
    type: Literal["slack-webhook"]
    url_env: str = Field(pattern=ENV_NAME)


class DiscordWebhookSinkSettings(_SinkBase):
    type: Literal["discord-webhook"]
    url_env: str = Field(pattern=ENV_NAME)
    username: str | None = Field(default=None, min_length=1, max_length=80)


class WebhookSinkSettings(_SinkBase):
    """Generic JSON webhook signed the Standard Webhooks way."""

    type: Literal["webhook"]
    url_env: str = Field(pattern=ENV_NAME)
    secret_env: str = Field(pattern=ENV_NAME)


class PagerDutySinkSettings(_SinkBase):
    type: Literal["pagerduty"]
    routing_key_env: str = Field(pattern=ENV_NAME)
    base_url: str = "https://events.pagerduty.com"
    source: str = "leakwarden"


class EmailSinkSettings(_SinkBase):
    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username_env: str | None = Field(default=None, pattern=ENV_NAME)
    password_env: str | None = Field(default=None, pattern=ENV_NAME)
    from_addr: str = Field(min_length=3)
    to: list[str] = Field(min_length=1)


class LogSinkSettings(_SinkBase):
    type: Literal["log"]
    level: Literal["info", "warning", "error"] = "warning"


SinkSettings = Annotated[
    SlackBotSinkSettings
    | DiscordBotSinkSettings
    | SlackWebhookSinkSettings
    | DiscordWebhookSinkSettings
    | WebhookSinkSettings
    | PagerDutySinkSettings
    | EmailSinkSettings
    | LogSinkSettings,
    Field(discriminator="type"),
]


class RouteSettings(BaseModel):
    """Which sinks get a hit. Every condition given must hold; an empty list means any."""

    model_config = ConfigDict(extra="forbid")

    min_severity: str = "low"
    rule_ids: list[str] = Field(default_factory=list)
    kinds: list[str] = Field(default_factory=list)
    platforms: list[str] = Field(default_factory=list)
    communities: list[str] = Field(default_factory=list)
    sinks: list[str] = Field(min_length=1)
    # Used only when no other route matched the hit.
    default: bool = False

    _severity = field_validator("min_severity")(_check_severity)

    @field_validator("platforms")
    @classmethod
    def _known_platforms(cls, value: list[str]) -> list[str]:
        # A typo here would silently never match: refuse it.
        unknown = [p for p in value if p not in PLATFORMS]
        if "file" in unknown:
            raise ValueError("'file' routes nothing: offline scans (scan --record) are recorded "
                             "in the history without alerts")
        if unknown:
            raise ValueError(f"unknown platform {unknown[0]!r} (expected {', '.join(PLATFORMS)})")
        return value

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        unknown = [k for k in value if k not in FINDING_KINDS]
        if unknown:
            raise ValueError(f"unknown kind {unknown[0]!r} (expected one of: "
                             f"{', '.join(FINDING_KINDS)})")
        return value


class AlertsConfig(BaseModel):
    """Sinks and routes checked together: ids unique, every route names a known sink."""

    model_config = ConfigDict(extra="forbid")

    sinks: list[SinkSettings] = Field(default_factory=list)
    routes: list[RouteSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_check(self) -> AlertsConfig:
        check_sinks_and_routes(self.sinks, self.routes)
        return self


@dataclass(frozen=True, slots=True)
class AlertProblem:
    """One cross-entry mistake: `[section #index] key: message` (index 0-based)."""

    section: str  # "sinks" | "routes"
    index: int
    key: str
    message: str
    entry_id: str | None = None


def alert_problems(
    sinks: list, routes: list[RouteSettings], *, platforms: Mapping[str, Any] | None = None,
    rule_ids: Collection[str] | None = None,
) -> list[AlertProblem]:
    """Every mistake across entries: duplicate sink id, unknown sink in a route, two defaults,
    (with `platforms`, the [discord]/[slack] settings or None) a bot sink with nowhere to post,
    and (with `rule_ids`, every rule id a finding can carry) a route naming an unknown rule."""
    problems: list[AlertProblem] = []
    seen: set[str] = set()
    for index, sink in enumerate(sinks):
        if sink.id in seen:
            problems.append(AlertProblem("sinks", index, "id", f"{sink.id!r} is used twice", sink.id))
        seen.add(sink.id)
        if platforms is None or sink.type not in _BOT_SINK_HOME:
            continue
        section, fallback = _BOT_SINK_HOME[sink.type]
        home = platforms.get(section)
        if home is None:
            problems.append(AlertProblem(
                "sinks", index, "type", f"a {sink.type!r} sink needs a [{section}] section "
                "(it posts through that bot)", sink.id))
        elif sink.channel is None and getattr(home, fallback, None) is None:
            problems.append(AlertProblem(
                "sinks", index, "channel", f"set channel here or [{section}] {fallback}",
                sink.id))
    defaults = 0
    for index, route in enumerate(routes):
        for name in route.sinks:
            if name not in seen:
                problems.append(AlertProblem("routes", index, "sinks", f"names unknown sink {name!r}"))
        for rule in route.rule_ids if rule_ids is not None else ():
            if rule not in rule_ids:
                problems.append(AlertProblem(
                    "routes", index, "rule_ids", f"names unknown rule {rule!r} (no watchlist "
                    "entry, fingerprint or built-in detector has this id)"))
        defaults += route.default
        if route.default and defaults > 1:
            problems.append(AlertProblem("routes", index, "default",
                                         "only one route may have default = true"))
    return problems


def unrouted_severities(routes: list[RouteSettings]) -> list[str]:
    """Severities no route reaches at all: their hits are stored but alert nobody."""
    lowest = min((severity_rank(r.min_severity) for r in routes), default=len(SEVERITIES) + 1)
    return [s for s in SEVERITIES if SEVERITY_RANK[s] < lowest]


# Bot sinks post through an adapter: (its section, the setting naming its own channel).
_BOT_SINK_HOME = {"slack": ("slack", "alert_channel"), "discord": ("discord", "modlog_channel")}


def check_sinks_and_routes(sinks: list, routes: list[RouteSettings]) -> None:
    """Raise ValueError naming the first offender (see `alert_problems`)."""
    for p in alert_problems(sinks, routes):
        where = f"[[{p.section}]] #{p.index + 1}"
        if p.section == "sinks":
            raise ValueError(f"[[sinks]] id {p.entry_id!r}: key {p.key!r}: {p.message}")
        raise ValueError(f"{where}: key {p.key!r} {p.message}")
