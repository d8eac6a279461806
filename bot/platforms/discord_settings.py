"""`[discord]` settings (owned by the Discord adapter)."""

from pydantic import BaseModel, ConfigDict


class DiscordSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token_env: str = "DISCORD_TOKEN"
    api_base_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
