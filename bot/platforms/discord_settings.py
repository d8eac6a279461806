"""`[discord]` settings (owned by the Discord adapter)."""

from typing import Annotated, Any, Literal, Self

import discord
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator


def _snowflake(value: Any) -> str:
    # TOML users write ids as numbers or strings; both mean the same Discord id.
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise ValueError(f"a Discord id is digits only, got {value!r}")
    return text


Snowflake = Annotated[str, BeforeValidator(_snowflake)]


class DiscordSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token_env: str = "DISCORD_TOKEN"  # name of the env var holding the bot token (never the token)
    api_base_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    guilds_allow: list[Snowflake] = Field(default_factory=list)  # empty = every server joined
    guilds_deny: list[Snowflake] = Field(default_factory=list)
    channels_include: list[Snowflake] = Field(default_factory=list)  # channel/thread/category ids
    channels_exclude: list[Snowflake] = Field(default_factory=list)
    direct_messages: bool = False  # also read messages people send the bot directly
    join_threads: bool = True  # join new threads (private threads send nothing to non-members)
    ignore_bots: bool = True  # other bots' messages (our own are always ignored)
    backfill_days: int = Field(default=7, ge=0)
    checkpoint_interval_seconds: float = Field(default=2.0, ge=0)  # live checkpoint writes
    backfill_page_size: int = Field(default=100, ge=1, le=100)
    max_attachment_bytes: int = Field(default=512 * 1024 * 1024, ge=0)
    download_retries: int = Field(default=3, ge=0)
    retry_backoff_seconds: float = Field(default=1.0, gt=0)  # first retry; doubles, capped at 30 s
    backlog_limit: int = Field(default=1000, ge=1)  # message events in flight; then stop reading
    login_retry_seconds: float = Field(default=2.0, gt=0)  # first login retry; doubles, capped at 60 s
    blind_after_empty_messages: int = Field(default=20, ge=1)
    modlog_channel: Snowflake | None = None  # channel for the mod-log sink's embeds and buttons
    enforce_delete_min_severity: Literal["low", "medium", "high", "critical"] | None = None
    triage_permission: str = "manage_messages"  # a discord.Permissions flag the clicker needs
    sync_commands: bool = True  # register /leakwarden (status) with Discord at start
    heartbeat_timeout_seconds: float = Field(default=60.0, gt=0)  # silence before reconnecting
    guild_ready_timeout: float = Field(default=2.0, ge=0)  # wait for GUILD_CREATEs after READY
    identify_delay_seconds: float = Field(default=5.0, ge=0)  # pause before a re-IDENTIFY
    shard_count: int | None = Field(default=None, ge=1)  # shards the servers are split into
    shard_ids: list[int] = Field(default_factory=list)  # this process's shards (empty = all)

    @field_validator("triage_permission")
    @classmethod
    def _known_permission(cls, value: str) -> str:
        if value not in discord.Permissions.VALID_FLAGS:
            raise ValueError(f"unknown Discord permission {value!r} (e.g. manage_messages)")
        return value

    @model_validator(mode="after")
    def _shards(self) -> Self:
        if self.shard_ids and self.shard_count is None:
            raise ValueError("[discord] shard_ids needs shard_count")
        if len(set(self.shard_ids)) != len(self.shard_ids):
            raise ValueError("[discord] shard_ids: each shard once")
        if any(not 0 <= s < (self.shard_count or 0) for s in self.shard_ids):
            raise ValueError("[discord] shard_ids must be in 0 .. shard_count - 1")
        return self

    def shards(self) -> list[int | None]:
        """The shards this process runs: [None] when unsharded."""
        if self.shard_count is None:
            return [None]
        return list(self.shard_ids) or list(range(self.shard_count))
