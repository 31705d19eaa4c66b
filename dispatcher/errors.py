"""One base error for everything a user can get wrong; subclasses carry the data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


class DispatcherError(Exception):
    """Base of every error the product reports to a person.

    ``str(error)`` is a single line that says what is wrong and how to fix it,
    so the CLI and the API can show it as it is.
    """


@dataclass(frozen=True, order=True)
class FieldError:
    """One problem with one field, addressed by its dotted path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidInput(DispatcherError):
    """A document or event failed validation; ``errors`` lists every problem."""

    what = "input"

    def __init__(self, errors: Iterable[FieldError], subject: str = "") -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        self.subject = subject
        super().__init__(self.summary())

    def summary(self) -> str:
        count = len(self.errors)
        first = str(self.errors[0]) if self.errors else "no details"
        where = f" {self.subject}" if self.subject else ""
        more = f" (and {count - 1} more)" if count > 1 else ""
        return f"invalid {self.what}{where}: {first}{more}"


class InvalidDocument(InvalidInput):
    """A settings document was refused; nothing was saved."""

    what = "settings"


class InvalidEvent(InvalidInput):
    """An event was refused before anything was enqueued or sent."""

    what = "event"


class UnknownGroup(DispatcherError):
    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(
            f"customer group {code!r} is not set up for the portal; add it first with: "
            f'dispatcher groups add {code} --name "..."'
        )


class GroupExists(DispatcherError):
    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(
            f"customer group {code!r} is already set up; see it with: dispatcher groups show {code}"
        )


class NoSettings(DispatcherError):
    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(
            f"customer group {code!r} has no portal e-mail settings yet; save some with: "
            f"dispatcher settings import {code} FILE"
        )


class UnknownVersion(DispatcherError):
    def __init__(self, code: str, number: int, latest: int | None) -> None:
        self.code = code
        self.number = number
        hint = f"versions run from 1 to {latest}" if latest else "it has no versions yet"
        super().__init__(
            f"customer group {code!r} has no settings version {number}; {hint} "
            f"(see: dispatcher settings history {code})"
        )


class VersionConflict(DispatcherError):
    def __init__(self, code: str, expected: int | None, current: int | None) -> None:
        self.code = code
        self.expected = expected
        self.current = current
        super().__init__(
            f"settings of {code!r} changed meanwhile (you edited version {expected}, "
            f"the current one is {current}); reload them and apply your change again"
        )


class SchemaNotReady(DispatcherError):
    """The database has no schema, or an older one than this code needs."""


class TemplateProblem(DispatcherError):
    """A template could not be compiled or rendered within its limits."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        self.detail = message
        super().__init__(f"line {line}: {message}" if line else message)


class StoreUnavailable(DispatcherError):
    """The database could not be reached; the work is retried, not dropped."""


class BrokerUnavailable(DispatcherError):
    """The broker (Redis) could not be reached in time; nothing was enqueued."""


class PartlyEnqueued(BrokerUnavailable):
    """The broker failed after some events of a list were enqueued."""

    def __init__(self, done: int, total: int, cause: str) -> None:
        self.done = done
        self.total = total
        super().__init__(
            f"{done} of {total} events were enqueued before the broker failed ({cause}); "
            "publish the whole list again, event_id keeps that safe"
        )


class UnknownDelivery(DispatcherError):
    def __init__(self, delivery_id: int) -> None:
        self.delivery_id = delivery_id
        super().__init__(
            f"there is no delivery {delivery_id}; list them with: dispatcher deliveries"
        )


class CannotResend(DispatcherError):
    """A resend was refused: the delivery is still under way, or its address is suppressed."""


class AddressSuppressed(CannotResend):
    """A resend to an address on the suppression list, without force.

    Carries the list's entry, so that the API can answer with it as data
    (the web UI's "send anyway" dialog shows since when and why).
    """

    def __init__(self, address: str, since: datetime, reason: str) -> None:
        self.address = address
        self.since = since
        self.reason = reason
        super().__init__(
            f"{address} is on the suppression list since {since:%Y-%m-%d} ({reason}); "
            "take it off the list first, or pass --force to send anyway"
        )


class StillUnderWay(CannotResend):
    """A resend of a delivery that has not reached a final status yet."""

    def __init__(self, delivery_id: int, status: str) -> None:
        self.delivery_id = delivery_id
        self.status = status
        # The record refuses the same in the same words (a race past this check).
        super().__init__(
            f"delivery {delivery_id} is still {status}; a delivery is sent again "
            "only once it is sent, dead, bounced or suppressed"
        )
