"""`[storage]` settings (owned by the store)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StorageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = "leakwarden.db"
    store_content: Literal["excerpt", "none"] = "excerpt"
    retention_days: int = Field(default=365, ge=1)
    # Hits of one rule and match this close in time join one incident.
    incident_window_hours: float = Field(default=24.0, gt=0)
    # "normal" survives a crash of the process (not of the machine) without fsync per commit.
    synchronous: Literal["normal", "full"] = "normal"
    # The environment variable holding the key of content digests (bot/store/digest.py); unset:
    # derived from the [sealed] key if there is one, else digests are unkeyed sha256.
    content_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
