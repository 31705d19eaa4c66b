"""What the admin API and the web UI do, without HTTP: each change with its actor and diff.

The HTTP layer (``dispatcher.api.routes``) only decodes requests, calls one
method here and encodes the result; every rule lives here or below, so it can
be tested and reused without a web server.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from config_store.database import first_line, ping, redact, require_schema
from config_store.document import SettingsDocument, validate_document
from config_store.repository import (
    GroupInfo,
    SaveResult,
    SettingsRepository,
    VersionInfo,
    check_group_name,
    flatten,
)
from dispatcher.admin.access import AccessStore
from dispatcher.delivery.orchestrator import Dispatcher, FollowUp
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.replay import ReplaySummary, replay_dead_letters
from dispatcher.domain.addresses import parse_mailbox
from dispatcher.domain.events import Event, parse_event
from dispatcher.domain.fields import check_group_code
from dispatcher.domain.group_settings import effective_settings
from dispatcher.domain.kinds import Kind, lookup_kind
from dispatcher.domain.locales import locale_problem
from dispatcher.errors import (
    BrokerUnavailable,
    DispatcherError,
    FieldError,
    InvalidDocument,
    InvalidEvent,
    InvalidInput,
    NoSettings,
)
from dispatcher.mail.preview import Preview, preview
from dispatcher.settings import Settings

# Addresses a preview uses while the draft's own are not valid yet, so that
# typing a sender address does not blank out every preview on the page.
PLACEHOLDER_ADDRESS = "portal@example.com"
MAX_EVENTS_PER_REQUEST = 1000


class InvalidRequest(InvalidInput):
    """A request to the admin API was refused; nothing was changed."""

    what = "request"


@dataclass(frozen=True)
class Change:
    """One field of a settings document, before and after (None: absent)."""

    path: str
    old: Any
    new: Any


def document_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Change]:
    """Every changed leaf of two documents, by dotted path, in the documents' order."""
    before = flatten(old or {})
    after = flatten(new)
    # Canonical documents are in contract order (the help page's), and so is
    # their flattening: new fields first in that order, then removed ones.
    paths = list(after) + [path for path in before if path not in after]
    return [
        Change(path, before.get(path), after.get(path))
        for path in paths
        if before.get(path) != after.get(path)
    ]


@dataclass(frozen=True)
class VersionDiff:
    """A saved version and what it changed compared with the version before it."""

    version: VersionInfo
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class SaveOutcome:
    result: SaveResult
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class GroupDetails:
    group: GroupInfo
    saved_by: str | None
    saved_at: datetime | None


@dataclass(frozen=True)
class PreviewOutcome:
    preview: Preview
    # Problems elsewhere in the draft that the preview worked around.
    set_aside: tuple[FieldError, ...] = ()


@dataclass(frozen=True)
class Readiness:
    database: str  # "ok" or the problem
    broker: str

    @property
    def ready(self) -> bool:
        return self.database == "ok" and self.broker == "ok"


class Pipeline(Protocol):
    """How the admin side hands work to the workers."""

    def enqueue_event(self, event: Event) -> None: ...

    def enqueue_test_send(
        self, group: str, kind: str, address: str, locale: str | None, actor: str
    ) -> str: ...

    def schedule(self, follow_ups: Sequence[FollowUp]) -> None: ...

    def broker_problem(self) -> str | None: ...


class CeleryPipeline:
    """The real pipeline: Celery over the configured Redis."""

    def __init__(self, config: Settings) -> None:
        self.config = config

    def enqueue_event(self, event: Event) -> None:
        from dispatcher.broker.publisher import enqueue

        enqueue(event)

    def enqueue_test_send(
        self, group: str, kind: str, address: str, locale: str | None, actor: str
    ) -> str:
        from dispatcher.broker.publisher import publish_test_send

        return publish_test_send(group, kind, address, locale, actor)

    def schedule(self, follow_ups: Sequence[FollowUp]) -> None:
        from kombu.exceptions import OperationalError

        from dispatcher.worker.tasks import schedule

        try:
            schedule(follow_ups)
        except (OperationalError, OSError) as exc:
            raise BrokerUnavailable(
                f"the deliveries are queued again in the database, but the broker is not "
                f"reachable ({exc}); the sweeper sends them once Redis is back"
            ) from None

    def broker_problem(self) -> str | None:
        import redis

        from dispatcher.broker.queues import redis_client

        try:
            client = redis_client(self.config)
        except DispatcherError as exc:
            return str(exc)
        try:
            client.ping()
        except redis.RedisError as exc:
            from dispatcher.settings import redact_url

            return (
                f"cannot reach Redis at {redact_url(self.config.broker_url)}: {exc}; check "
                "DISPATCHER_BROKER_URL and that Redis is running"
            )
        finally:
            client.close()
        return None


def _placeholder_addresses(document: dict[str, Any], key: str | None) -> None:
    addresses = document.get("internal_addresses")
    if key in {"access_requests_to", "send_from"} and isinstance(addresses, dict):
        addresses[key] = PLACEHOLDER_ADDRESS
    else:
        document["internal_addresses"] = {
            "access_requests_to": PLACEHOLDER_ADDRESS,
            "send_from": PLACEHOLDER_ADDRESS,
        }


def _concerns(parts: list[str], section: str | None) -> bool:
    """Whether an error at ``parts`` affects the preview of ``section``."""
    if not parts:
        return True
    if parts[0] == "translations":
        return len(parts) >= 3 and parts[2] == section
    return parts[0] == section


def _set_aside(document: dict[str, Any], parts: list[str]) -> bool:
    """Remove or replace the part of ``document`` an error points at; say if it changed."""
    top = parts[0]
    if top == "internal_addresses":
        _placeholder_addresses(document, parts[1] if len(parts) > 1 else None)
        return True
    if top == "translations" and len(parts) >= 2:
        translations = document.get("translations")
        if isinstance(translations, dict):
            texts = translations.get(parts[1])
            if len(parts) >= 3 and isinstance(texts, dict) and parts[2] in texts:
                del texts[parts[2]]
                return True
            if parts[1] in translations:
                del translations[parts[1]]
                return True
    if top in document:
        del document[top]
        return True
    return False


def lenient_draft(
    raw: object, section: str | None, subject: str = ""
) -> tuple[SettingsDocument, tuple[FieldError, ...]]:
    """Validate a draft for previewing one section; problems elsewhere are set aside.

    Returns the document to preview and the problems that were set aside.
    Problems in the previewed section itself raise ``InvalidDocument``.
    """
    if not isinstance(raw, dict):
        return validate_document(raw, subject), ()
    draft: dict[str, Any] = copy.deepcopy(raw)
    aside: list[FieldError] = []
    # Each round removes at least one faulty part; a document has few parts.
    for _ in range(16):
        try:
            return validate_document(draft, subject), tuple(aside)
        except InvalidDocument as exc:
            errors = exc.errors
        blocking = [e for e in errors if _concerns(e.path.split(".") if e.path else [], section)]
        if blocking:
            raise InvalidDocument(blocking, subject)
        changed = False
        for error in errors:
            changed = _set_aside(draft, error.path.split(".")) or changed
            aside.append(error)
        if not changed:
            raise InvalidDocument(errors, subject)
    return validate_document(draft, subject), tuple(aside)


def _check_kind(name: str, errors: list[FieldError]) -> Kind | None:
    try:
        return lookup_kind(name)
    except DispatcherError as exc:
        errors.append(FieldError("kind", str(exc)))
        return None


def _check_locale(locale: str | None, errors: list[FieldError]) -> None:
    if locale is not None:
        problem = locale_problem(locale)
        if problem:
            errors.append(FieldError("locale", problem))


def _change_list(changes: Sequence[Change]) -> list[dict[str, Any]]:
    return [asdict(change) for change in changes]


@dataclass
class Admin:
    """The admin side of the product over one database and one pipeline."""

    engine: Engine
    config: Settings
    pipeline: Pipeline
    settings: SettingsRepository = field(init=False)
    records: DeliveryRecords = field(init=False)
    access: AccessStore = field(init=False)
    _dispatcher: Dispatcher | None = field(init=False, default=None)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.settings = SettingsRepository(self.engine)
        self.records = DeliveryRecords(self.engine)
        self.access = AccessStore(self.engine)

    # Groups -----------------------------------------------------------------

    def add_group(self, actor: str, code: str, name: str) -> GroupInfo:
        errors: list[FieldError] = []
        try:
            check_group_code(code)
        except ValueError as exc:
            errors.append(FieldError("code", str(exc)))
        try:
            check_group_name(name)
        except DispatcherError as exc:
            errors.append(FieldError("name", str(exc).removeprefix("the group name ")))
        if errors:
            raise InvalidRequest(errors)
        group = self.settings.add_group(code, name)
        self.access.record(
            actor, "group.add", code, {"changes": [{"path": "name", "old": None, "new": name}]}
        )
        return group

    def group(self, code: str) -> GroupDetails:
        group = self.settings.get_group(code)
        if group.current_version is None:
            return GroupDetails(group, None, None)
        latest = self.settings.history(code)[0]
        return GroupDetails(group, latest.actor, latest.created_at)

    # Settings ---------------------------------------------------------------

    def save_settings(
        self, actor: str, code: str, raw: object, expected_version: int | None = None
    ) -> SaveOutcome:
        """Validate and save a whole document (all or nothing), with its audit entry."""
        result = self.settings.save_settings(code, raw, actor, expected_version=expected_version)
        return self._recorded(actor, "settings.save", code, result)

    def rollback(self, actor: str, code: str, number: int) -> SaveOutcome:
        result = self.settings.rollback(code, number, actor)
        return self._recorded(actor, "settings.rollback", code, result)

    def _recorded(self, actor: str, action: str, code: str, result: SaveResult) -> SaveOutcome:
        if not result.created:
            return SaveOutcome(result, ())
        version = result.version
        changes = tuple(self._changes_of(code, version.number, {}))
        diff: dict[str, Any] = {"version": version.number, "changes": _change_list(changes)}
        if version.restored_from is not None:
            diff["restored_from"] = version.restored_from
        self.access.record(actor, action, code, diff)
        return SaveOutcome(result, changes)

    def _changes_of(self, code: str, number: int, cache: dict[int, dict[str, Any]]) -> list[Change]:
        # Every save makes the new highest number current, so the version
        # before N is always N - 1.
        def document(n: int) -> dict[str, Any]:
            if n not in cache:
                cache[n] = self.settings.document(code, n)
            return cache[n]

        return document_changes(document(number - 1) if number > 1 else None, document(number))

    def history(self, code: str, limit: int = 50, offset: int = 0) -> list[VersionDiff]:
        """Versions newest first, each with its changes against the one before."""
        versions = self.settings.history(code)[offset : offset + limit]
        cache: dict[int, dict[str, Any]] = {}
        return [
            VersionDiff(version, tuple(self._changes_of(code, version.number, cache)))
            for version in versions
        ]

    def preview(
        self,
        code: str,
        kind_name: str,
        locale: str | None = None,
        draft: object = None,
        event: object = None,
    ) -> PreviewOutcome:
        """Render one e-mail of the saved settings, or of an unsaved draft."""
        errors: list[FieldError] = []
        kind = _check_kind(kind_name, errors)
        _check_locale(locale, errors)
        if errors or kind is None:
            raise InvalidRequest(errors)
        group = self.settings.get_group(code)
        aside: tuple[FieldError, ...] = ()
        if draft is None:
            settings = self.settings.snapshot(code)
        else:
            try:
                document, aside = lenient_draft(draft, kind.section, f"for group {code!r}")
            except InvalidDocument as exc:
                raise InvalidRequest(
                    [
                        FieldError(f"document.{e.path}" if e.path else "document", e.message)
                        for e in exc.errors
                    ]
                ) from None
            settings = effective_settings(document, code, group.name, None)
        try:
            result = preview(settings, kind, locale, event)
        except InvalidEvent as exc:
            raise InvalidRequest(
                [
                    FieldError(f"event.{e.path}" if e.path else "event", e.message)
                    for e in exc.errors
                ]
            ) from None
        except DispatcherError as exc:  # A template that fails with the given event.
            raise InvalidRequest(
                [FieldError("event" if event else kind.section or "", str(exc))]
            ) from None
        return PreviewOutcome(result, aside)

    # Pipeline ---------------------------------------------------------------

    def test_send(
        self, actor: str, code: str, kind_name: str, address: str, locale: str | None
    ) -> str:
        """Send one e-mail kind with sample data to ``address``; return the event_id."""
        errors: list[FieldError] = []
        kind = _check_kind(kind_name, errors)
        try:
            parse_mailbox(address)
        except ValueError as exc:
            errors.append(FieldError("address", str(exc)))
        _check_locale(locale, errors)
        if errors or kind is None:
            raise InvalidRequest(errors)
        group = self.settings.get_group(code)
        if group.current_version is None:
            raise NoSettings(code)
        event_id = self.pipeline.enqueue_test_send(code, kind.name, address, locale, actor)
        self.access.record(
            actor,
            "test_send",
            code,
            {"kind": kind.name, "address": address, "locale": locale, "event_id": event_id},
        )
        return event_id

    def publish(self, body: object) -> list[str]:
        """Validate one event or a list of them, then enqueue all; return their ids."""
        if isinstance(body, list):
            if not body:
                raise InvalidEvent([FieldError("", "the list is empty; send at least one event")])
            if len(body) > MAX_EVENTS_PER_REQUEST:
                raise InvalidEvent(
                    [
                        FieldError(
                            "",
                            f"{len(body)} events in one request; send at most "
                            f"{MAX_EVENTS_PER_REQUEST} at a time",
                        )
                    ]
                )
            events = list(_validate_all(body))
        else:
            events = [parse_event(body)]
        for index, event in enumerate(events):
            try:
                self.pipeline.enqueue_event(event)
            except BrokerUnavailable as exc:
                if index == 0:
                    raise
                raise BrokerUnavailable(
                    f"{index} of {len(events)} events were enqueued before the broker failed "
                    f"({exc}); publish the whole list again, event_id keeps that safe"
                ) from None
        return [event.event_id for event in events]

    def replay(
        self,
        actor: str,
        *,
        deliveries: Sequence[int] = (),
        events: Sequence[str] = (),
        everything: bool = False,
    ) -> ReplaySummary:
        """Send dead deliveries again and re-plan failed events (all of them with ``everything``).

        The same function does ``dispatcher dead-letters replay``; here each
        replay that moved something is also recorded in the audit log.
        """

        def audit(summary: ReplaySummary) -> None:
            if summary.deliveries or summary.events:
                self.access.record(
                    actor,
                    "dead_letters.replay",
                    "dead-letters",
                    {
                        "deliveries": list(summary.deliveries),
                        "events": list(summary.events),
                        "all": everything,
                    },
                )

        return replay_dead_letters(
            self._replayer(),
            self.pipeline.schedule,
            self.pipeline.enqueue_event,
            deliveries=deliveries,
            events=events,
            everything=everything,
            before_sending=audit,
        )

    def _replayer(self) -> Dispatcher:
        # Replaying only moves records and enqueues work; the SMTP transport
        # is never opened here, but the service needs one to be built.
        with self._lock:
            if self._dispatcher is None:
                from dispatcher.smtp.transport import SmtpConfig, SmtpTransport

                self._dispatcher = Dispatcher(
                    self.settings,
                    self.records,
                    SmtpTransport(SmtpConfig.from_settings(self.config)),
                    self.config,
                )
            return self._dispatcher


def _validate_all(events: list[object]) -> list[Event]:
    from dispatcher.broker.publisher import validate_all

    return validate_all(events)


def readiness(engine: Engine, pipeline: Pipeline) -> Readiness:
    """Whether the database (with this code's schema) and the broker can be reached."""
    try:
        ping(engine)
        require_schema(engine)
        database = "ok"
    except DispatcherError as exc:
        database = str(exc)
    except SQLAlchemyError as exc:
        database = (
            f"cannot reach the database {redact(str(engine.url))}: {first_line(exc)}; check "
            "DISPATCHER_DATABASE_URL and that the database server is running"
        )
    broker = pipeline.broker_problem() or "ok"
    return Readiness(database, broker)
