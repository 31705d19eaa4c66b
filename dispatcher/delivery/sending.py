"""How a process sends: the single relay, or relays by route with breakers; DKIM keys.

Built once per process from the settings (``DISPATCHER_RELAYS_FILE``,
``DISPATCHER_DKIM_KEYS_DIR``, ``DISPATCHER_SMTP_*``). A broken relays file or
key is refused when the process starts, with one line per problem.
"""

from __future__ import annotations

from dispatcher.broker.queues import redis_for_settings
from dispatcher.delivery.orchestrator import MailSender
from dispatcher.mail.dkim import DkimKeys
from dispatcher.ops import metrics
from dispatcher.settings import Settings
from dispatcher.smtp.breaker import (
    BreakerPolicy,
    BreakerStore,
    CircuitBreaker,
    MemoryBreakerStore,
    RedisBreakerStore,
)
from dispatcher.smtp.relays import RelayPlan, RelaysSource
from dispatcher.smtp.router import RelayRouter
from dispatcher.smtp.transport import SmtpConfig, SmtpTransport


def single_plan(config: Settings) -> RelayPlan:
    """The plan without a relays file: ``DISPATCHER_SMTP_*`` for every e-mail."""
    return RelayPlan.single(
        config.smtp_host,
        config.smtp_port,
        config.smtp_security,
        config.smtp_username,
        config.smtp_password.get_secret_value() if config.smtp_password else None,
        None,
    )


def relay_source(config: Settings) -> RelaysSource:
    """The relays in force, read again when the file changes; raise ``RelaysFileError``."""
    return RelaysSource(config.relays_file, single_plan(config))


def breaker_store(config: Settings) -> BreakerStore:
    """Breakers shared by every process through the broker's Redis (in-process without it)."""
    policy = BreakerPolicy(
        failure_threshold=config.relay_breaker_failures,
        open_seconds=config.relay_breaker_pause_seconds,
        probe_lease_seconds=max(60.0, 3 * config.smtp_timeout),
        key_ttl_seconds=max(
            3600.0, 2 * (config.relay_breaker_pause_seconds + 60 + 3 * config.smtp_timeout)
        ),
    )
    client = redis_for_settings(config)
    if client is None:
        return MemoryBreakerStore(policy)
    return RedisBreakerStore(client, config.broker_prefix, policy)


def _observe(relay: str, outcome: str, seconds: float) -> None:
    metrics.RELAY_ATTEMPTS.labels(relay=relay, outcome=outcome).inc()
    metrics.RELAY_SECONDS.labels(relay=relay).observe(seconds)


def mail_sender(config: Settings) -> MailSender:
    """The single relay as today, or relays by route with failover (a relays file)."""
    if config.relays_file is None:
        return SmtpTransport(SmtpConfig.from_settings(config))
    return RelayRouter(
        relay_source(config),
        default_timeout=config.smtp_timeout,
        max_messages_per_connection=config.smtp_max_messages_per_connection,
        breaker=CircuitBreaker(breaker_store(config)),
        observe=_observe,
    )


def dkim_keys(config: Settings) -> DkimKeys | None:
    """The DKIM keys, loaded and checked once; None when no directory is set."""
    if config.dkim_keys_dir is None:
        return None
    return DkimKeys.load(config.dkim_keys_dir)
