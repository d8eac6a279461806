"""`[slack]` settings (owned by the Slack adapter)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict


class SlackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["socket", "http"] = "socket"
    bot_token_env: str = "SLACK_BOT_TOKEN"
    app_token_env: str = "SLACK_APP_TOKEN"
    api_base_url: str = "https://slack.com/api/"
