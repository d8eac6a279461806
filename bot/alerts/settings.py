"""`[[sinks]]` and `[[routes]]` settings (owned by the alerts package)."""

from pydantic import BaseModel, ConfigDict, Field


class SinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    type: str  # slack | discord | webhook | pagerduty | email | log
    channel: str | None = None
    url_env: str | None = None  # env var holding a webhook URL (URLs with tokens are secrets)


class RouteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_severity: str = "low"
    sinks: list[str] = Field(default_factory=list)
