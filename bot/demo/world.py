"""A sandbox Discord and Slack with a few channels and people, and a config that points at them.

The demo, the end-to-end benchmark and the runtime tests all build the same world:

    world = await SandboxWorld().start()
    text = world.config_toml(storage="hits.db", watchlist=DEMO_WATCHLIST)
    env = world.env()                      # sandbox tokens under the config's env var names
    ...
    await world.stop()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.demo.receiver import WebhookReceiver
from bot.sandbox.discord import DiscordSandbox
from bot.sandbox.slack.server import SlackSandbox

TOKEN_ENV = {
    "discord": "LEAKWARDEN_DEMO_DISCORD_TOKEN",
    "slack_bot": "LEAKWARDEN_DEMO_SLACK_BOT_TOKEN",
    "slack_app": "LEAKWARDEN_DEMO_SLACK_APP_TOKEN",
    "webhook_url": "LEAKWARDEN_DEMO_SIEM_URL",
    "webhook_secret": "LEAKWARDEN_DEMO_SIEM_SECRET",
}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def table(name: str, values: dict[str, Any], *, array: bool = False) -> str:
    """One TOML table (or array-of-tables entry) from a dict of plain values."""
    head = f"[[{name}]]" if array else f"[{name}]"
    return "\n".join([head, *(f"{k} = {_toml(v)}" for k, v in values.items())]) + "\n"


@dataclass
class SandboxWorld:
    """Both sandboxes, a webhook receiver, and the people and channels of the story."""

    discord: DiscordSandbox = field(default_factory=DiscordSandbox)
    slack: SlackSandbox = field(default_factory=SlackSandbox)
    receiver: WebhookReceiver = field(default_factory=WebhookReceiver)
    names: dict[str, Any] = field(default_factory=dict)

    async def start(self) -> SandboxWorld:
        """Start the servers and create the guild, channels and users."""
        await self.discord.start()
        await self.slack.start()
        await self.receiver.start()
        d, s = self.discord, self.slack
        guild = d.add_guild("Acme Research")
        self.names.update(
            guild=guild,
            general=d.add_channel(guild, "general"),
            modlog=d.add_channel(guild, "mod-log"),
            leaker=d.add_user("mallory"),
            moderator=d.add_user("morgan"),
            s_general=s.add_channel("general"),
            s_secops=s.add_channel("secops-alerts"),
            s_leaker=s.add_user("eve"),
        )
        return self

    async def stop(self) -> None:
        """Stop every server."""
        await self.receiver.stop()
        await self.slack.stop()
        await self.discord.stop()

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["names"][name]
        except KeyError:
            raise AttributeError(name) from None

    def env(self) -> dict[str, str]:
        """The sandbox tokens and the receiver's address, under the config's env var names."""
        return {
            TOKEN_ENV["discord"]: self.discord.token,
            TOKEN_ENV["slack_bot"]: self.slack.bot_token,
            TOKEN_ENV["slack_app"]: self.slack.app_token,
            TOKEN_ENV["webhook_url"]: self.receiver.url,
            TOKEN_ENV["webhook_secret"]: self.receiver.secret,
        }

    def config_toml(self, *, storage: str, watchlist: str, fingerprints: list[str] | None = None,
                    pipeline: dict[str, Any] | None = None, jobs: dict[str, Any] | None = None,
                    discord: dict[str, Any] | None = None, slack: dict[str, Any] | None = None,
                    sinks: str | None = None, listen: str = "127.0.0.1:0",
                    log_format: str = "json",
                    platforms: tuple[str, ...] = ("discord", "slack")) -> str:
        """A complete config: the watchlist given, both platforms on the sandboxes, and sinks
        (by default: every hit to the Discord mod-log and the Slack #secops-alerts channel,
        high and above also to the webhook receiver)."""
        d, s = self.discord, self.slack
        parts = [
            "# Generated for the sandboxes: tokens come from the environment.\n",
            table("storage", {"path": storage}),
            watchlist,
        ]
        if fingerprints:
            parts.append(table("weights", {"fingerprints": fingerprints}))
        if "discord" in platforms:
            parts.append(table("discord", {
                "token_env": TOKEN_ENV["discord"], "api_base_url": d.api_base_url,
                "gateway_url": d.gateway_url, "modlog_channel": str(self.modlog.id),
                "guild_ready_timeout": 0.05, "identify_delay_seconds": 0.0,
                "retry_backoff_seconds": 0.05, "backfill_days": 1, "sync_commands": False,
                **(discord or {}),
            }))
        if "slack" in platforms:
            parts.append(table("slack", {
                "bot_token_env": TOKEN_ENV["slack_bot"], "app_token_env": TOKEN_ENV["slack_app"],
                "api_base_url": s.api_base_url, "file_hosts": ["files.slack.com", s.file_host],
                "alert_channel": self.s_secops.id, "ping_interval_seconds": 1.0,
                "retry_backoff_seconds": 0.05, "backfill_days": 1, **(slack or {}),
            }))
        parts += [
            sinks if sinks is not None else self.default_sinks(),
            table("server", {"listen": listen}),
            table("logging", {"format": log_format}),
        ]
        if pipeline:
            parts.append(table("pipeline", pipeline))
        if jobs:
            parts.append(table("jobs", jobs))
        return "\n".join(parts)

    def webhook_sinks(self) -> str:
        """Only the webhook "SIEM", for every hit (no platform needed to deliver)."""
        return "\n".join([
            table("sinks", {"id": "siem", "type": "webhook", "url_env": TOKEN_ENV["webhook_url"],
                            "secret_env": TOKEN_ENV["webhook_secret"]}, array=True),
            table("routes", {"min_severity": "low", "sinks": ["siem"]}, array=True),
        ])

    def default_sinks(self) -> str:
        """Mod-log and #secops-alerts for every hit, the webhook "SIEM" for high and above."""
        return "\n".join([
            table("sinks", {"id": "modlog", "type": "discord"}, array=True),
            table("sinks", {"id": "secops", "type": "slack", "health": True}, array=True),
            table("sinks", {"id": "siem", "type": "webhook", "url_env": TOKEN_ENV["webhook_url"],
                            "secret_env": TOKEN_ENV["webhook_secret"]}, array=True),
            table("routes", {"min_severity": "low", "sinks": ["modlog", "secops"]}, array=True),
            table("routes", {"min_severity": "high", "sinks": ["siem"]}, array=True),
        ])
