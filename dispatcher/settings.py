"""One typed settings object, read from DISPATCHER_* environment variables."""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process configuration (CONTRACT §7); secrets never appear in its repr."""

    model_config = SettingsConfigDict(env_prefix="DISPATCHER_", extra="ignore")

    database_url: str = "sqlite:///dispatcher.db"
    broker_url: str = "redis://localhost:6379/0"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout: float = Field(default=30.0, gt=0)


@functools.cache
def get_settings() -> Settings:
    return Settings()
