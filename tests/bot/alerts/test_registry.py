"""build_sinks: built-in types from settings + env, other packages' factories by type."""

from __future__ import annotations

import pytest

from bot.alerts.registry import SinkConfigError, SinkContext, build_sinks
from bot.alerts.settings import AlertsConfig
from bot.alerts.sinks.discord_webhook import DiscordWebhookSink
from bot.alerts.sinks.email import EmailSink
from bot.alerts.sinks.log import LogSink
from bot.alerts.sinks.pagerduty import PagerDutySink
from bot.alerts.sinks.webhook import WebhookSink

SINKS = [
    {"id": "mods", "type": "discord-webhook", "url_env": "MODS_URL"},
    {"id": "siem", "type": "webhook", "url_env": "SIEM_URL", "secret_env": "SIEM_SECRET"},
    {"id": "pager", "type": "pagerduty", "routing_key_env": "PD_KEY"},
    {"id": "log", "type": "log"},
    {
        "id": "mail",
        "type": "email",
        "host": "smtp.example.org",
        "from_addr": "lw@example.org",
        "to": ["tns@example.org"],
        "username_env": "SMTP_USER",
        "password_env": "SMTP_PASSWORD",
    },
]
ENV = {
    "MODS_URL": "https://discord.com/api/webhooks/1/tok",
    "SIEM_URL": "https://siem/x",
    "SIEM_SECRET": "whsec_c2VjcmV0",
    "PD_KEY": "k" * 32,
    "SMTP_USER": "lw",
    "SMTP_PASSWORD": "hunter2-smtp",
}


def settings(*extra):
    return AlertsConfig.model_validate({"sinks": SINKS + list(extra)}).sinks


async def test_builds_every_builtin(session):
    sinks = build_sinks(settings(), SinkContext(session=session, env=ENV))
    assert {k: type(v) for k, v in sinks.items()} == {
        "mods": DiscordWebhookSink,
        "siem": WebhookSink,
        "pager": PagerDutySink,
        "log": LogSink,
        "mail": EmailSink,
    }
    assert not any(v in repr(sinks) for v in ENV.values())


async def test_missing_secret_names_the_sink_and_variable_only(session):
    env = {**ENV, "SIEM_SECRET": ""}
    with pytest.raises(SinkConfigError) as err:
        build_sinks(settings(), SinkContext(session=session, env=env))
    assert "'siem'" in str(err.value) and "SIEM_SECRET" in str(err.value)


async def test_bot_sinks_come_from_extra_factories(session):
    made = []

    class SlackBotSink:
        def __init__(self, s):
            self.id, self.channel = s.id, s.channel
            made.append(self)

        async def send(self, alert): ...

    bot = {"id": "secops", "type": "slack", "channel": "C0SECOPS"}
    with pytest.raises(SinkConfigError, match="no factory for type 'slack'"):
        build_sinks(settings(bot), SinkContext(session=session, env=ENV))
    sinks = build_sinks(
        settings(bot),
        SinkContext(session=session, env=ENV),
        {"slack": lambda s, ctx: SlackBotSink(s)},
    )
    assert sinks["secops"] is made[0] and made[0].channel == "C0SECOPS"
