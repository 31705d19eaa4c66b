"""The retry policy, as pure functions: when to try again, and when to give up."""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.domain.statuses import DeliveryStatus, Verdict


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in delay and in attempts."""

    base_seconds: float
    max_seconds: float
    max_attempts: int

    def backoff(self, attempts: int, jitter: float) -> float:
        """Seconds before attempt ``attempts + 1``: base·2^(n-1), capped, times 0.5-1.

        ``jitter`` is a random number in [0, 1); it spreads the retries of
        many deliveries that failed together, so they do not return together.
        """
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return float(ceiling * (0.5 + jitter / 2))


@dataclass(frozen=True)
class Decision:
    """What a failed attempt leads to: a status, and the delay before the next try."""

    status: DeliveryStatus
    delay: float | None = None  # seconds; None for a dead letter
    exhausted: bool = False  # dead because the attempts ran out


def after_failure(policy: RetryPolicy, verdict: Verdict, attempts: int, jitter: float) -> Decision:
    """Dead letter for permanent failures and exhausted retries; otherwise another try.

    An uncertain outcome (``Verdict.UNKNOWN``) is tried again like a
    temporary failure, but recorded as ``unknown`` until then.
    """
    if verdict is Verdict.PERMANENT:
        return Decision(DeliveryStatus.DEAD)
    if attempts >= policy.max_attempts:
        return Decision(DeliveryStatus.DEAD, exhausted=True)
    status = DeliveryStatus.UNKNOWN if verdict is Verdict.UNKNOWN else DeliveryStatus.RETRYING
    return Decision(status, policy.backoff(attempts, jitter))
