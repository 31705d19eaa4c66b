"""Queries of the configuration store; every result is a plain dataclass."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from config_store.database import require_schema, session_scope
from config_store.document import (
    CHECKBOXES,
    SECTION_MODELS,
    SettingsDocument,
    canonical,
    effective_settings,
    validate_document,
)
from config_store.models import CustomerGroup, SettingsText, SettingsVersion
from dispatcher.domain.fields import check_group_code, fold_group_code
from dispatcher.domain.group_settings import GroupSettings
from dispatcher.domain.textsafety import single_line_problem
from dispatcher.errors import (
    DispatcherError,
    GroupExists,
    NoSettings,
    UnknownGroup,
    UnknownVersion,
    VersionConflict,
)

# Checkbox columns of a version, by settings section.
_CHECKBOX_COLUMNS = {
    "customer_access_request": "send_to_customers_not_self_initiated",
    "notify_new_main_contact": "notify_new_main_contact",
    "notify_old_main_contact": "notify_old_main_contact",
}
BASE_LOCALE_KEY = ""


@dataclass(frozen=True)
class GroupInfo:
    code: str
    name: str
    created_at: datetime
    current_version: int | None


@dataclass(frozen=True)
class VersionInfo:
    group_code: str
    number: int
    actor: str
    created_at: datetime
    changed_fields: tuple[str, ...]
    restored_from: int | None
    is_current: bool


@dataclass(frozen=True)
class SaveResult:
    version: VersionInfo
    created: bool  # False when the document equalled the current version


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaf values by dotted path: ``{"password_reset.subject": "..."}``."""
    result: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            result.update(flatten(value, f"{path}."))
        else:
            result[path] = value
    return result


def changed_fields(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """The dotted paths whose value was added, changed or removed."""
    before = flatten(old or {})
    after = flatten(new)
    return sorted(
        path for path in before.keys() | after.keys() if before.get(path) != after.get(path)
    )


def check_group_name(name: str) -> str:
    if not name or not name.strip():
        raise DispatcherError('the group name must not be empty; pass --name "Retail customers"')
    problem = single_line_problem(name)
    if problem:
        raise DispatcherError(f"the group name {problem}")
    if len(name) > 200:
        raise DispatcherError("the group name is longer than 200 characters; shorten it")
    return name


def check_actor(actor: str) -> str:
    problem = single_line_problem(actor) if actor else "must not be empty"
    if problem or len(actor) > 200:
        raise DispatcherError(f"the actor name {problem or 'is too long'}; give a short name")
    return actor


class SettingsRepository:
    """Customer groups and their versioned "Portal e-mails" settings."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._snapshots: dict[str, tuple[int, GroupSettings]] = {}
        self._versions: dict[tuple[str, int], GroupSettings] = {}
        self._checked: dict[str, float] = {}
        self._lock = threading.Lock()
        require_schema(engine)

    # Groups -----------------------------------------------------------------

    def add_group(self, code: str, name: str) -> GroupInfo:
        try:
            check_group_code(code)
        except ValueError as exc:
            raise DispatcherError(str(exc)) from None
        check_group_name(name)
        folded = fold_group_code(code)
        try:
            with session_scope(self.engine) as session:
                existing = session.scalar(
                    select(CustomerGroup.code).where(CustomerGroup.code_folded == folded)
                )
                if existing is not None:
                    raise GroupExists(existing)
                group = CustomerGroup(code=code, code_folded=folded, name=name)
                session.add(group)
                session.flush()
                return _group_info(group, None)
        except IntegrityError:
            raise GroupExists(code) from None

    def list_groups(self) -> list[GroupInfo]:
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(CustomerGroup, SettingsVersion.number)
                .outerjoin(SettingsVersion, CustomerGroup.current_version_id == SettingsVersion.id)
                .order_by(CustomerGroup.code)
            ).all()
            return [_group_info(group, number) for group, number in rows]

    def get_group(self, code: str) -> GroupInfo:
        with session_scope(self.engine) as session:
            group = _load_group(session, code)
            current = group.current_version.number if group.current_version else None
            return _group_info(group, current)

    # Settings ---------------------------------------------------------------

    def save_settings(
        self,
        code: str,
        raw: object,
        actor: str,
        *,
        expected_version: int | None = None,
        restored_from: int | None = None,
    ) -> SaveResult:
        """Validate and save a whole document as a new version (all or nothing)."""
        check_actor(actor)
        self.get_group(code)  # An unknown group is refused before any validation.
        document = validate_document(raw, f"for group {code!r}")
        return self._store(code, document, actor, expected_version, restored_from)

    def _store(
        self,
        code: str,
        document: SettingsDocument,
        actor: str,
        expected_version: int | None,
        restored_from: int | None,
    ) -> SaveResult:
        new = canonical(document)
        with session_scope(self.engine) as session:
            group = _load_group(session, code, for_update=True)
            current = group.current_version
            current_number = current.number if current else None
            if expected_version is not None and expected_version != current_number:
                raise VersionConflict(group.code, expected_version, current_number)
            old = _document_of(current) if current else None
            changes = changed_fields(old, new)
            if current is not None and not changes:
                return SaveResult(_version_info(group.code, current, True), created=False)
            number = (
                session.scalar(
                    select(func.max(SettingsVersion.number)).where(
                        SettingsVersion.group_id == group.id
                    )
                )
                or 0
            ) + 1
            version = _version_row(document, group.id, number, actor, changes, restored_from)
            session.add(version)
            session.flush()
            group.current_version_id = version.id
            return SaveResult(_version_info(group.code, version, True), created=True)

    def document(self, code: str, version: int | None = None) -> dict[str, Any]:
        """The saved document (current or version N) in canonical form."""
        with session_scope(self.engine) as session:
            return _document_of(_load_version(session, code, version))

    def history(self, code: str) -> list[VersionInfo]:
        with session_scope(self.engine) as session:
            group = _load_group(session, code)
            versions = session.scalars(
                select(SettingsVersion)
                .where(SettingsVersion.group_id == group.id)
                .order_by(SettingsVersion.number.desc())
            ).all()
            return [
                _version_info(group.code, v, v.id == group.current_version_id) for v in versions
            ]

    def rollback(self, code: str, number: int, actor: str) -> SaveResult:
        """Save a new version whose content equals version ``number``."""
        check_actor(actor)
        old = self.document(code, number)
        # Stored versions were valid when saved; they are validated again so
        # that a rollback never brings back something today's rules refuse.
        document = validate_document(old, f"for group {code!r} (version {number})")
        return self._store(code, document, actor, None, number)

    def snapshot(self, code: str, max_age: float = 0.0) -> GroupSettings:
        """The group's effective settings; cached per version, one small query.

        With ``max_age`` a snapshot checked that recently is returned without
        asking the database at all: workers trade that many seconds of delay
        in seeing a new version for no settings query per event.
        """
        key = fold_group_code(code)
        if max_age > 0:
            checked = self._checked.get(key)
            cached = self._snapshots.get(key)
            if checked is not None and cached and time.monotonic() - checked < max_age:
                return cached[1]
        with session_scope(self.engine) as session:
            row = session.execute(
                select(
                    CustomerGroup.code, CustomerGroup.name, CustomerGroup.current_version_id
                ).where(CustomerGroup.code_folded == key)
            ).first()
            if row is None:
                raise UnknownGroup(code)
            stored_code, name, version_id = row
            if version_id is None:
                raise NoSettings(stored_code)
            cached = self._snapshots.get(key)
            self._checked[key] = time.monotonic()
            if (
                cached
                and cached[0] == version_id
                and cached[1].group_name == name
                and cached[1].group_code == stored_code
            ):
                return cached[1]
            version = session.get(
                SettingsVersion, version_id, options=[selectinload(SettingsVersion.texts)]
            )
            assert version is not None
            settings = _snapshot_of(version, stored_code, name)
        with self._lock:
            self._snapshots[key] = (version_id, settings)
            self._versions[(key, version.number)] = settings
        return settings

    def snapshot_version(self, code: str, number: int) -> GroupSettings:
        """The effective settings of one saved version; versions never change."""
        key = fold_group_code(code)
        cached = self._versions.get((key, number))
        if cached is not None:
            return cached
        with session_scope(self.engine) as session:
            version = _load_version(session, code, number)
            settings = _snapshot_of(version, version.group.code, version.group.name)
        with self._lock:
            self._versions[(key, number)] = settings
        return settings


def _snapshot_of(version: SettingsVersion, code: str, name: str) -> GroupSettings:
    document = SettingsDocument.model_validate(_document_of(version), context={"trusted": True})
    return effective_settings(document, code, name, version.number)


def _load_group(session: Session, code: str, *, for_update: bool = False) -> CustomerGroup:
    query = select(CustomerGroup).where(CustomerGroup.code_folded == fold_group_code(code))
    if for_update:
        query = query.with_for_update()
    group = session.scalar(query)
    if group is None:
        raise UnknownGroup(code)
    return group


def _load_version(session: Session, code: str, number: int | None) -> SettingsVersion:
    group = _load_group(session, code)
    if number is None:
        if group.current_version is None:
            raise NoSettings(group.code)
        return group.current_version
    version = session.scalar(
        select(SettingsVersion).where(
            SettingsVersion.group_id == group.id, SettingsVersion.number == number
        )
    )
    if version is None:
        latest = session.scalar(
            select(func.max(SettingsVersion.number)).where(SettingsVersion.group_id == group.id)
        )
        raise UnknownVersion(group.code, number, latest)
    return version


def _group_info(group: CustomerGroup, current: int | None) -> GroupInfo:
    return GroupInfo(group.code, group.name, group.created_at, current)


def _version_info(code: str, version: SettingsVersion, is_current: bool) -> VersionInfo:
    return VersionInfo(
        group_code=code,
        number=version.number,
        actor=version.actor,
        created_at=version.created_at,
        changed_fields=tuple(version.changed_fields or ()),
        restored_from=version.restored_from,
        is_current=is_current,
    )


def _version_row(
    document: SettingsDocument,
    group_id: int,
    number: int,
    actor: str,
    changes: list[str],
    restored_from: int | None,
) -> SettingsVersion:
    version = SettingsVersion(
        group_id=group_id,
        number=number,
        actor=actor,
        changed_fields=changes,
        restored_from=restored_from,
        access_requests_to=document.internal_addresses.access_requests_to,
        send_from=document.internal_addresses.send_from,
        default_locale=document.default_locale,
    )
    for section in SECTION_MODELS:
        part = getattr(document, section)
        if part is None:
            continue
        if section in CHECKBOXES:
            setattr(version, _CHECKBOX_COLUMNS[section], getattr(part, CHECKBOXES[section]))
        version.texts.append(
            SettingsText(
                locale=BASE_LOCALE_KEY, section=section, subject=part.subject, body=part.body
            )
        )
    for tag, translation in (document.translations or {}).items():
        for section in SECTION_MODELS:
            part = getattr(translation, section)
            if part is not None:
                version.texts.append(
                    SettingsText(locale=tag, section=section, subject=part.subject, body=part.body)
                )
    return version


def _document_of(version: SettingsVersion) -> dict[str, Any]:
    """Rebuild the canonical document from a version's rows."""
    document: dict[str, Any] = {
        "internal_addresses": {
            "access_requests_to": version.access_requests_to,
            "send_from": version.send_from,
        }
    }
    translations: dict[str, dict[str, Any]] = {}
    sections: dict[str, dict[str, Any]] = {}
    for text in version.texts:
        entry = {
            key: value
            for key, value in (("subject", text.subject), ("body", text.body))
            if value is not None
        }
        if text.locale == BASE_LOCALE_KEY:
            sections[text.section] = entry
        else:
            translations.setdefault(text.locale, {})[text.section] = entry
    for section in SECTION_MODELS:
        checkbox_column = _CHECKBOX_COLUMNS.get(section)
        ticked = getattr(version, checkbox_column) if checkbox_column else None
        if section not in sections and ticked is None:
            continue
        entry = {CHECKBOXES[section]: ticked} if ticked is not None else {}
        entry.update(sections.get(section, {}))
        document[section] = entry
    if version.default_locale is not None:
        document["default_locale"] = version.default_locale
    if translations:
        document["translations"] = {
            tag: {s: translations[tag][s] for s in SECTION_MODELS if s in translations[tag]}
            for tag in sorted(translations)
        }
    return document
