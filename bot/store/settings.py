"""`[storage]` settings (owned by the store)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StorageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = "leakwarden.db"
    store_content: Literal["excerpt", "none"] = "excerpt"
    retention_days: int = Field(default=365, ge=1)
