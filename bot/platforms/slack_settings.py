"""`[slack]` settings (owned by the Slack adapter). Secrets only as env var NAMES (`*_env`)."""

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"  # refusing anything else catches a pasted token early


class SlackWorkspaceSettings(BaseModel):
    """One more workspace (its own bot install); unset keys fall back to the `[slack]` ones."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)  # for logs and errors only
    bot_token_env: str = Field(pattern=ENV_NAME)
    app_token_env: str | None = Field(default=None, pattern=ENV_NAME)
    signing_secret_env: str | None = Field(default=None, pattern=ENV_NAME)
    admin_token_env: str | None = Field(default=None, pattern=ENV_NAME)


class SlackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["socket", "http"] = "socket"
    bot_token_env: str = Field(default="SLACK_BOT_TOKEN", pattern=ENV_NAME)
    app_token_env: str = Field(default="SLACK_APP_TOKEN", pattern=ENV_NAME)
    api_base_url: str = "https://slack.com/api/"
    signing_secret_env: str = Field(default="SLACK_SIGNING_SECRET", pattern=ENV_NAME)
    admin_token_env: str | None = Field(default=None, pattern=ENV_NAME)
    workspaces: list[SlackWorkspaceSettings] = Field(default_factory=list)
    http_listen: str = Field(default="127.0.0.1:3000", pattern=r"^[\w.\-\[\]:]+:\d{1,5}$")
    events_path: str = Field(default="/slack/events", pattern=r"^/")
    interactivity_path: str = Field(default="/slack/interactivity", pattern=r"^/")
    commands_path: str = Field(default="/slack/commands", pattern=r"^/")  # /leakwarden (HTTP mode)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    replay_window_seconds: int = Field(default=300, ge=1, le=3600)
    backlog_limit: int = Field(default=1000, ge=1)  # events in flight; beyond: the store's spill
    file_hosts: list[str] = Field(default_factory=lambda: ["files.slack.com"])
    max_file_bytes: int = Field(default=512 * 1024 * 1024, ge=0)
    ignore_bots: bool = True
    auto_join: bool = False
    backfill_days: int = Field(default=7, ge=0)
    backfill_page_size: int = Field(default=200, ge=1, le=999)
    alert_channel: str | None = None
    command_channels: list[str] = Field(default_factory=list)  # /leakwarden answers here only
    ping_interval_seconds: float = Field(default=5.0, gt=0)
    outage_alert_seconds: float = Field(default=60.0, gt=0)  # Socket Mode down this long: alert
    retry_max: int = Field(default=3, ge=0)
    retry_backoff_seconds: float = Field(default=0.5, gt=0)

    @field_validator("api_base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack-sdk joins base_url + method with no separator.
        return value if value.endswith("/") else value + "/"

    @field_validator("file_hosts")
    @classmethod
    def _lower_hosts(cls, value: list[str]) -> list[str]:
        return [h.strip().lower() for h in value if h.strip()]

    @model_validator(mode="after")
    def _unique_workspaces(self) -> Self:
        names = [w.name for w in self.workspaces]
        if len(names) != len(set(names)):
            raise ValueError("[slack] workspaces: names must be unique")
        return self
