"""Settings of the admin API process, from DISPATCHER_API_* environment variables."""

from __future__ import annotations

import secrets

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 32


class ApiSettings(BaseSettings):
    """How the API signs web UI sessions and whom it lets call it from other origins."""

    model_config = SettingsConfigDict(env_prefix="DISPATCHER_API_", extra="ignore")

    # Signs the web UI's session cookies. Without it every process makes its
    # own, so sessions end when the process restarts and do not carry over
    # between several API processes behind one load balancer.
    secret: SecretStr | None = None
    # Comma-separated origins allowed to call the API with bearer tokens from
    # a browser; empty means no CORS headers at all.
    cors_origins: str = ""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # Send the session cookie only over HTTPS. It is sent that way anyway
    # when the request arrived over HTTPS; set this behind a TLS proxy that
    # does not pass the scheme on.
    cookie_secure: bool = False

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"is shorter than {MIN_SECRET_LENGTH} characters; generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @property
    def origins(self) -> list[str]:
        return [item.strip() for item in self.cors_origins.split(",") if item.strip()]

    def signing_key(self) -> bytes:
        if self.secret is not None:
            return self.secret.get_secret_value().encode("utf-8")
        return secrets.token_bytes(32)
