"""`[discord]` settings (owned by the Discord adapter)."""

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DiscordSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token_env: str = "DISCORD_TOKEN"  # name of the env var holding the bot token (never the token)
    api_base_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    guilds_allow: list[str] = Field(default_factory=list)  # empty = every server the bot is in
    guilds_deny: list[str] = Field(default_factory=list)
    channels_include: list[str] = Field(default_factory=list)  # empty = every channel
    channels_exclude: list[str] = Field(default_factory=list)
    ignore_bots: bool = True  # other bots' messages (our own are always ignored)
    backfill_days: int = Field(default=7, ge=0)
    checkpoint_interval_seconds: float = Field(default=2.0, ge=0)  # live checkpoint writes
    backfill_page_size: int = Field(default=100, ge=1, le=100)
    max_attachment_bytes: int = Field(default=512 * 1024 * 1024, ge=0)
    download_retries: int = Field(default=3, ge=0)
    retry_backoff_seconds: float = Field(default=1.0, gt=0)  # first retry; doubles, capped at 30 s
    blind_after_empty_messages: int = Field(default=20, ge=1)
    modlog_channel: str | None = None  # channel id for the mod-log sink's embeds and buttons
    enforce_delete_min_severity: Literal["low", "medium", "high", "critical"] | None = None
    triage_permission: str = "manage_messages"  # a discord.Permissions flag the clicker needs
    sync_commands: bool = True  # register /leakwarden (status) with Discord at start
    guild_ready_timeout: float = Field(default=2.0, ge=0)  # wait for GUILD_CREATEs after READY
    identify_delay_seconds: float = Field(default=5.0, ge=0)  # pause before a re-IDENTIFY
    shard_id: int | None = Field(default=None, ge=0)  # this process's shard (with shard_count)
    shard_count: int | None = Field(default=None, ge=1)  # processes splitting the servers

    @model_validator(mode="after")
    def _shard_pair(self) -> Self:
        if (self.shard_id is None) != (self.shard_count is None):
            raise ValueError("[discord] shard_id and shard_count go together")
        if self.shard_id is not None and self.shard_count is not None and self.shard_id >= self.shard_count:
            raise ValueError("[discord] shard_id must be below shard_count")
        return self
