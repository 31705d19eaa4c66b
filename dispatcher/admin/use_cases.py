"""What administrators do, without HTTP or a terminal: each change with its actor and diff.

Both front doors call this: the HTTP layer (``dispatcher.api``) and the
command line (``dispatcher.cli``) only decode input, call one method here and
encode the result. Every change therefore lands in the audit log the same
way, whichever door it came through.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from config_store.document import effective_settings
from config_store.repository import (
    GroupInfo,
    SaveResult,
    SettingsRepository,
    VersionInfo,
    check_group_name,
)
from dispatcher.admin.access import AccessStore, AuditRecord, IssuedToken, TokenInfo
from dispatcher.admin.changes import Change, document_changes
from dispatcher.admin.drafts import lenient_draft
from dispatcher.admin.pipeline import Pipeline
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.replay import DeadLetters, ReplaySummary, replay_dead_letters
from dispatcher.delivery.suppressions import SuppressionList, SuppressionView, normalize
from dispatcher.delivery.views import DeliveryView
from dispatcher.delivery.webhooks import WebhookOutbox
from dispatcher.domain.addresses import parse_mailbox
from dispatcher.domain.events import parse_event, validate_all
from dispatcher.domain.fields import check_group_code
from dispatcher.domain.follow_ups import FollowUp
from dispatcher.domain.kinds import Kind, lookup_kind
from dispatcher.domain.locales import locale_problem
from dispatcher.domain.statuses import FINAL
from dispatcher.domain.textsafety import single_line_problem
from dispatcher.errors import (
    AddressSuppressed,
    DispatcherError,
    FieldError,
    InvalidDocument,
    InvalidEvent,
    InvalidInput,
    NoSettings,
    StillUnderWay,
    UnknownDelivery,
)
from dispatcher.mail.preview import Preview, preview
from dispatcher.settings import Settings

MAX_EVENTS_PER_REQUEST = 1000


def utcnow() -> datetime:
    return datetime.now(UTC)


class InvalidRequest(InvalidInput):
    """A request to the admin API was refused; nothing was changed."""

    what = "request"


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
    suppressions: SuppressionList = field(init=False)
    webhooks: WebhookOutbox = field(init=False)

    def __post_init__(self) -> None:
        self.settings = SettingsRepository(self.engine)
        self.records = DeliveryRecords(self.engine)
        self.access = AccessStore(self.engine)
        self.suppressions = SuppressionList(self.engine)
        self.webhooks = WebhookOutbox(self.engine)

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
        # The group's code as stored: audit entries name it so, whatever case was typed.
        self.access.record(actor, action, version.group_code, diff)
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
            settings = effective_settings(document, group.code, group.name, None)
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
            raise NoSettings(group.code)
        event_id = self.pipeline.enqueue_test_send(group.code, kind.name, address, locale, actor)
        self.access.record(
            actor,
            "test_send",
            group.code,
            {"kind": kind.name, "address": address, "locale": locale, "event_id": event_id},
        )
        return event_id

    def publish(self, body: object) -> list[str]:
        """Validate one event or a list of them, then enqueue all; return their ids.

        A list travels the way ``publish_many()`` sends it: in batches per lane.
        """
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
            events = validate_all(body)
            self.pipeline.enqueue_events(events)
        else:
            events = [parse_event(body)]
            self.pipeline.enqueue_event(events[0])
        return [event.event_id for event in events]

    def replay(
        self,
        actor: str,
        *,
        deliveries: Sequence[int] = (),
        events: Sequence[str] = (),
        everything: bool = False,
        report: Callable[[ReplaySummary], None] | None = None,
    ) -> ReplaySummary:
        """Send dead deliveries again and re-plan failed events (all of them with ``everything``).

        Each replay that moved something is recorded in the audit log before
        anything goes to the broker; ``report`` sees the summary then too.
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
            if report is not None:
                report(summary)

        return replay_dead_letters(
            DeadLetters(self.records, self.settings),
            self.pipeline.schedule,
            self.pipeline.enqueue_event,
            deliveries=deliveries,
            events=events,
            everything=everything,
            before_sending=audit,
        )

    # Access -----------------------------------------------------------------

    def create_token(self, actor: str, name: str, scope: str) -> IssuedToken:
        """Make a token (its secret is returned once), with its audit entry."""
        issued = self.access.create_token(name, scope)
        self.access.record(actor, "token.create", f"token:{name}", {"scope": scope})
        return issued

    def revoke_token(self, actor: str, name: str) -> TokenInfo:
        info = self.access.revoke(name)
        self.access.record(actor, "token.revoke", f"token:{name}", {"scope": info.scope})
        return info

    def audit(
        self, target: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[AuditRecord]:
        """The audit log, newest first; ``target`` is a group code or e.g. ``token:NAME``."""
        if target is not None:
            # Not every target is a group: tokens and dead letters are targets too.
            with contextlib.suppress(DispatcherError):
                target = self.settings.get_group(target).code
        return self.access.audit(target, limit, offset)

    # Feedback ---------------------------------------------------------------

    def suppress(self, actor: str, address: str, reason: str) -> SuppressionView:
        """Put an address on the suppression list by hand, with its audit entry."""
        errors: list[FieldError] = []
        try:
            normalize(address)
        except ValueError as exc:
            errors.append(FieldError("address", str(exc)))
        problem = single_line_problem(reason) if reason.strip() else "must not be empty"
        if problem:
            errors.append(FieldError("reason", f"{problem}; say why, e.g. 'asked to stop'"))
        if errors:
            raise InvalidRequest(errors)
        entry, created = self.suppressions.add(address, reason.strip(), actor, utcnow())
        if created:
            self.access.record(actor, "suppression.add", entry.address, {"reason": entry.reason})
        return entry

    def unsuppress(self, actor: str, address: str) -> SuppressionView:
        """Take an address off the suppression list, with its audit entry."""
        try:
            normalize(address)
        except ValueError as exc:
            raise InvalidRequest([FieldError("address", str(exc))]) from None
        entry = self.suppressions.remove(address)
        self.access.record(
            actor,
            "suppression.remove",
            entry.address,
            {"reason": entry.reason, "since": entry.since.isoformat()},
        )
        return entry

    def internal_addresses(self) -> dict[str, list[str]]:
        """Per address, the groups whose access requests go to it (staff inboxes)."""
        found: dict[str, list[str]] = {}
        for group in self.settings.list_groups():
            if group.current_version is None:
                continue
            address = self.settings.snapshot(group.code).access_requests_to.lower()
            found.setdefault(address, []).append(group.code)
        return found

    def resend(self, actor: str, delivery_id: int, *, force: bool = False) -> DeliveryView:
        """Send a delivery's e-mail again as a new delivery linked to it; audited.

        Refused for a suppressed address unless ``force``: the list exists so
        that nobody mails a dead address by accident.
        """
        original = self.records.delivery(delivery_id)
        if original is None:
            raise UnknownDelivery(delivery_id)
        if original.status not in FINAL:
            raise StillUnderWay(delivery_id, original.status)
        entry = self.suppressions.get(original.recipient)
        if entry is not None and not force:
            raise AddressSuppressed(original.recipient, entry.since, entry.reason)
        version: int | None = None
        with contextlib.suppress(DispatcherError):
            version = self.settings.snapshot(original.group).version
        copy = self.records.resend(
            delivery_id, utcnow(), version, ignore_suppression=force and entry is not None
        )
        self.access.record(
            actor,
            "delivery.resend",
            original.group,
            {
                "delivery": delivery_id,
                "resend": copy.id,
                "kind": original.kind,
                "recipient": original.recipient,
                "force": force,
            },
        )
        self.pipeline.schedule([FollowUp(copy.id, copy.lane, 0.0)])
        return copy

    def replay_webhooks(
        self, actor: str, ids: Sequence[int] = (), *, everything: bool = False
    ) -> list[int]:
        """Make failed webhooks pending again (by id, or all); audited, then sent soon."""
        replayed = self.webhooks.replay(None if everything else list(ids), utcnow())
        if replayed:
            self.access.record(
                actor, "webhooks.replay", "webhooks", {"ids": replayed, "all": everything}
            )
            self.pipeline.send_webhooks()
        return replayed

    # Retention --------------------------------------------------------------

    def purge(self, actor: str, cutoff: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """Delete finished records older than ``cutoff``; a real purge is audited."""
        counts = self.records.purge(cutoff, dry_run=dry_run)
        if not dry_run:
            self.access.record(
                actor, "records.purge", "records", {"before": cutoff.isoformat(), **counts}
            )
        return counts
