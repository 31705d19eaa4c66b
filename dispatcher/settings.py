"""One typed settings object, read from DISPATCHER_* environment variables."""

from __future__ import annotations

import base64
import functools
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 32
REDIS_URL_SCHEMES = ("redis://", "rediss://", "unix://", "redis+socket://", "sentinel://")


class Settings(BaseSettings):
    """Process configuration (CONTRACT §7); secrets never appear in its repr."""

    # Errors never repeat the input: URLs carry passwords, and a worker that
    # refuses its settings prints the error to its log.
    model_config = SettingsConfigDict(
        env_prefix="DISPATCHER_", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = "sqlite:///dispatcher.db"
    broker_url: str = "redis://localhost:6379/0"
    # With a sentinel:// broker URL: the name of the Redis primary the
    # sentinels watch (their "monitor" name).
    broker_sentinel_master: str | None = None
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout: float = Field(default=20.0, gt=0, le=300)
    # A relay may cap how many messages one connection carries; reconnecting
    # now and then also spreads load over a pool of relays behind one name.
    smtp_max_messages_per_connection: int = Field(default=100, ge=1)
    # The envelope sender (bounce address); the group's send_from when unset.
    smtp_envelope_from: str | None = None
    # Prepended to every Redis key, so that several installations or test runs
    # can share one Redis server.
    broker_prefix: str = ""
    retry_base_seconds: float = Field(default=10.0, gt=0)
    retry_max_seconds: float = Field(default=900.0, gt=0)
    retry_max_attempts: int = Field(default=8, ge=1, le=100)
    sweep_interval_seconds: float = Field(default=10.0, gt=0)
    # The sweeper enqueues again an event publish() accepted that the database
    # does not hold after this long, once its lane's queue is empty (journal.py).
    journal_grace_seconds: float = Field(default=60.0, ge=5)
    # At most this many password-reset (and, separately, forgotten-user-name)
    # e-mails to one address per window; the excess is suppressed. 0: no limit.
    cooldown_limit: int = Field(default=5, ge=0)
    cooldown_window_seconds: float = Field(default=3600.0, gt=0)
    # Bulk e-mails per group and minute, shared by all workers; 0: no limit.
    group_rate_per_minute: int = Field(default=0, ge=0)
    # Redis redelivers a message a worker took but did not acknowledge after
    # this long; every retry countdown and task time limit stays below it.
    visibility_timeout_seconds: int = Field(default=90, ge=30, le=3600)
    # Workers look up a group's current settings version at most this often;
    # a saved change reaches every worker within this many seconds.
    settings_cache_seconds: float = Field(default=2.0, ge=0, le=300)
    log_format: Literal["text", "json"] = "text"
    # A worker takes up to this many single-event messages that wait while
    # its processes are busy and handles them as one batch (one transaction);
    # 1 handles every message on its own. 25 rather than 10: a tenth less
    # worker CPU per event in bench.throughput's per-event run; outcomes are
    # still written every ten e-mails (orchestrator.FINISH_EVERY).
    event_batch_size: int = Field(default=25, ge=1, le=100)
    # Port of a worker's own /metrics endpoint (all its processes); 0 turns it off.
    worker_metrics_port: int = Field(default=9808, ge=0, le=65535)
    # The address it listens on: this machine only, unless a scraper elsewhere
    # needs it (0.0.0.0 in a container); it has no authentication.
    worker_metrics_host: str = "127.0.0.1"
    # The local mail sink's directory, which the web UI shows as a mailbox;
    # `dispatcher up` sets it when it runs the sink. Unset: no mailbox.
    mailsink_dir: Path | None = None
    # Feedback from the mail world (CONTRACT §8). With a bounce domain, every
    # e-mail's envelope sender is bounces+TOKEN@DOMAIN, TOKEN naming the
    # delivery, signed with the secret key.
    bounce_domain: str | None = None
    secret_key: SecretStr | None = None
    # Webhooks to the portal backend: receivers (comma-separated) and the
    # Standard Webhooks secret ("whsec_" + base64).
    webhook_url: str = ""
    webhook_secret: SecretStr | None = None
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # A webhook is retried with backoff for this long after its outcome.
    webhook_retry_hours: float = Field(default=24.0, gt=0, le=24 * 14)
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=1800.0, gt=0)
    # Relays by route (CONTRACT §9); without the file, the single relay above.
    relays_file: Path | None = None
    # A relay's breaker opens after this many failures in a row and lets one
    # probe through after the pause.
    relay_breaker_failures: int = Field(default=3, ge=1, le=100)
    relay_breaker_pause_seconds: float = Field(default=30.0, gt=0, le=3600)
    # DKIM keys: <dir>/<domain>/<selector>.key; without it nothing is signed.
    dkim_keys_dir: Path | None = None

    @field_validator(
        "mailsink_dir",
        "bounce_domain",
        "secret_key",
        "webhook_secret",
        "relays_file",
        "dkim_keys_dir",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty variable would otherwise name the working directory, or a
        # bounce domain called "".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("bounce_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        domain = value.strip().lower().rstrip(".")
        labels = domain.split(".")
        if len(labels) < 2 or not all(label and len(label) <= 63 for label in labels):
            raise ValueError("is not a domain name; use e.g. bounces.example.com")
        return domain

    @field_validator("secret_key")
    @classmethod
    def _long_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"is shorter than {MIN_SECRET_LENGTH} characters; generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _standard_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        try:
            key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
        except ValueError:
            key = b""
        if not text.startswith("whsec_") or len(key) < 24:
            raise ValueError(
                "must be 'whsec_' followed by at least 24 bytes in base64 (Standard Webhooks); "
                'generate one with: python -c "import base64, secrets; '
                "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
            )
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_receivers(cls, value: str) -> str:
        # Signed payloads name people: a mistyped scheme must not send them
        # anywhere, least of all unencrypted to port 80.
        for url in _receivers(value):
            try:
                parts = urlsplit(url)
            except ValueError:  # "http://[::1/hooks": an unclosed IPv6 bracket.
                shown = url.rpartition("@")[2]
            else:
                if parts.scheme in ("http", "https") and parts.hostname:
                    continue
                shown = redact_url(url)
            raise ValueError(
                f"{shown!r} is not an http:// or https:// URL with a host; "
                "use e.g. https://portal.example.com/hooks (comma-separated for several)"
            )
        return value

    @field_validator("broker_url")
    @classmethod
    def _redis_broker(cls, value: str) -> str:
        # The journal, the limits, the breakers and the queue status all live
        # in the broker's Redis: another broker would switch them off silently.
        if not value.startswith(REDIS_URL_SCHEMES):
            raise ValueError(
                "must be a Redis URL (redis://, rediss://, unix://, or sentinel://host:26379;"
                "sentinel://host2:26379 with DISPATCHER_BROKER_SENTINEL_MASTER)"
            )
        return value

    @model_validator(mode="after")
    def _sentinel_needs_its_master(self) -> Settings:
        if self.broker_url.startswith("sentinel://") and not self.broker_sentinel_master:
            raise ValueError(
                "a sentinel:// DISPATCHER_BROKER_URL needs DISPATCHER_BROKER_SENTINEL_MASTER, "
                "the name the sentinels monitor the primary under"
            )
        return self

    @model_validator(mode="after")
    def _feedback_needs_its_secrets(self) -> Settings:
        if self.bounce_domain and self.secret_key is None:
            raise ValueError(
                "DISPATCHER_BOUNCE_DOMAIN needs DISPATCHER_SECRET_KEY to sign return paths; "
                "set it (at least 32 characters) on every worker and the bounce server"
            )
        if self.webhook_url.strip() and self.webhook_secret is None:
            raise ValueError(
                "DISPATCHER_WEBHOOK_URL needs DISPATCHER_WEBHOOK_SECRET to sign the webhooks; "
                "set it to the receiver's whsec_... secret"
            )
        return self

    @property
    def webhook_endpoints(self) -> tuple[str, ...]:
        """The receivers' URLs; none: webhooks off."""
        return _receivers(self.webhook_url)

    @property
    def sending_lease_seconds(self) -> float:
        """How long a delivery may stay "sending" before it counts as abandoned."""
        return 3 * self.smtp_timeout


def _receivers(setting: str) -> tuple[str, ...]:
    """DISPATCHER_WEBHOOK_URL's comma-separated URLs, blanks dropped."""
    return tuple(url.strip() for url in setting.split(",") if url.strip())


@functools.cache
def get_settings() -> Settings:
    return Settings()


def redact_url(url: str) -> str:
    """A URL with any password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
