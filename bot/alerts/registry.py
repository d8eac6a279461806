"""Build sink objects from `[[sinks]]` settings; other packages add factories for their types."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.alerts.base import Sink
from bot.alerts.posted import RefStore
from bot.alerts.sinks.discord_webhook import DiscordWebhookSink
from bot.alerts.sinks.log import LogSink
from bot.alerts.sinks.pagerduty import PagerDutySink
from bot.alerts.sinks.slack_webhook import SlackWebhookSink
from bot.alerts.sinks.webhook import WebhookSink


class SinkConfigError(ValueError):
    """A sink cannot be built: names the sink id and the missing env var or type, never a value."""


@dataclass
class SinkContext:
    """What factories get besides their settings: a shared HTTP session, the environment, and
    the store (where editing sinks keep their alerts' messages; None: updates post anew)."""

    session: aiohttp.ClientSession | None = None
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    store: RefStore | None = None

    def secret(self, settings: Any, key: str) -> str:
        """The value of the env var named by `settings.<key>`; SinkConfigError when unset."""
        name = getattr(settings, key)
        value = self.env.get(name) if name else None
        if not value:
            raise SinkConfigError(
                f"sink {settings.id!r}: environment variable {name!r} (from {key}) is not set"
            )
        return value

    def http(self, settings: Any) -> aiohttp.ClientSession:
        """The shared session (HTTP sinks need one)."""
        if self.session is None:
            raise SinkConfigError(f"sink {settings.id!r}: needs an aiohttp session")
        return self.session


SinkFactory = Callable[[Any, SinkContext], Sink]


def _slack_webhook(s: Any, ctx: SinkContext) -> Sink:
    return SlackWebhookSink(s.id, ctx.secret(s, "url_env"), ctx.http(s), timeout=s.timeout_seconds)


def _discord_webhook(s: Any, ctx: SinkContext) -> Sink:
    return DiscordWebhookSink(
        s.id, ctx.secret(s, "url_env"), ctx.http(s), username=s.username, timeout=s.timeout_seconds,
        store=ctx.store,
    )


def _webhook(s: Any, ctx: SinkContext) -> Sink:
    return WebhookSink(
        s.id,
        ctx.secret(s, "url_env"),
        ctx.secret(s, "secret_env"),
        ctx.http(s),
        timeout=s.timeout_seconds,
    )


def _pagerduty(s: Any, ctx: SinkContext) -> Sink:
    return PagerDutySink(
        s.id,
        ctx.secret(s, "routing_key_env"),
        ctx.http(s),
        base_url=s.base_url,
        source=s.source,
        timeout=s.timeout_seconds,
    )


def _email(s: Any, ctx: SinkContext) -> Sink:
    from bot.alerts.sinks.email import EmailSink

    password = ctx.secret(s, "password_env") if s.password_env else None
    username = ctx.secret(s, "username_env") if s.username_env else None
    return EmailSink(
        s.id,
        host=s.host,
        port=s.port,
        starttls=s.starttls,
        username=username,
        password=password,
        from_addr=s.from_addr,
        to=list(s.to),
        timeout=s.timeout_seconds,
    )


def _log(s: Any, ctx: SinkContext) -> Sink:
    return LogSink(s.id, s.level)


BUILTIN_FACTORIES: dict[str, SinkFactory] = {
    "slack-webhook": _slack_webhook,
    "discord-webhook": _discord_webhook,
    "webhook": _webhook,
    "pagerduty": _pagerduty,
    "email": _email,
    "log": _log,
}


def build_sinks(
    settings: Iterable[Any],
    context: SinkContext,
    extra_factories: Mapping[str, SinkFactory] | None = None,
) -> dict[str, Sink]:
    """Sink id -> Sink. `extra_factories` (e.g. {"slack": ..., "discord": ...}) add or override types."""
    factories = {**BUILTIN_FACTORIES, **(extra_factories or {})}
    sinks: dict[str, Sink] = {}
    for s in settings:
        factory = factories.get(s.type)
        if factory is None:
            raise SinkConfigError(
                f"sink {s.id!r}: no factory for type {s.type!r} (the bot adapters provide "
                "'slack' and 'discord' when they run)"
            )
        sink = factory(s, context)
        if getattr(sink, "id", None) != s.id:
            raise SinkConfigError(f"sink {s.id!r}: factory for {s.type!r} returned id {sink.id!r}")
        sinks[s.id] = sink
    return sinks
