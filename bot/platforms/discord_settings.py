"""`[discord]` settings (owned by the Discord adapter)."""

from pydantic import BaseModel, ConfigDict, Field


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
    backfill_page_size: int = Field(default=100, ge=1, le=100)
    max_attachment_bytes: int = Field(default=512 * 1024 * 1024, ge=0)
    download_retries: int = Field(default=3, ge=0)
    retry_backoff_seconds: float = Field(default=1.0, gt=0)  # first retry; doubles, capped at 30 s
    blind_after_empty_messages: int = Field(default=20, ge=1)
    modlog_channel: str | None = None  # channel id for the mod-log sink's embeds and buttons
    triage_permission: str = "manage_messages"  # a discord.Permissions flag the clicker needs
    guild_ready_timeout: float = Field(default=2.0, ge=0)  # wait for GUILD_CREATEs after READY
    identify_delay_seconds: float = Field(default=5.0, ge=0)  # pause before a re-IDENTIFY
