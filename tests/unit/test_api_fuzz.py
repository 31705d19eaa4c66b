"""The HTTP API fuzzed with schemathesis against its own OpenAPI document (issue 6).

Every operation gets generated requests, valid and invalid, and every answer
is checked: no server error, a documented status code and content type, and a
body that matches the documented schema. The app runs in-process on a migrated
database (SQLite, then PostgreSQL) with a group set up, and publishes to the
real Redis under a prefix of its own, which is purged afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis
import schemathesis
from fastapi import FastAPI
from schemathesis import Case

from config_store.database import make_engine
from config_store.repository import SettingsRepository
from dispatcher.admin.access import AccessStore
from dispatcher.admin.pipeline import CeleryPipeline
from dispatcher.api import create_app
from dispatcher.api.config import ApiSettings
from dispatcher.broker.publisher import use_broker
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.settings import Settings, get_settings
from dispatcher.smtp.sink import SinkHandler
from tests.conftest import fresh_database, require_redis
from tests.support.api_support import SECRET, RecordingPipeline
from tests.support.documents import full

pytestmark = pytest.mark.redis

# Enough to reach every documented answer of each operation, few enough that
# the file runs in well under three minutes; derandomized, so a failure
# found once is found again.
MAX_EXAMPLES = 30
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


class AppUnderTest:
    """An ASGI app that hands every request to the app the ``site`` fixture built."""

    target: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.target is not None, "the site fixture sets the app up"
        await self.target(scope, receive, send)


APP = AppUnderTest()


@dataclass
class Site:
    app: FastAPI
    admin: str
    publisher: str
    mail_file: str


def _failed_event(records: DeliveryRecords) -> None:
    """A failed event, so that listing and replaying dead letters has something to show."""
    failed = sample_event(EventType.USERNAME_FORGOTTEN)
    failed.update(event_id="fuzz-failed", customer_group="UNKNOWN")
    records.record_failed(failed, "interactive", "customer group 'UNKNOWN' is not set up", NOW)


def _mail(directory: Path) -> str:
    mail = EmailMessage()
    mail["From"] = "Kundenportal <portal@example.com>"
    mail["To"] = "anna@example.com"
    mail["Subject"] = "Passwort zurücksetzen"
    mail.set_content("Hallo Anna")
    mail.add_alternative("<p>Hallo Anna</p>", subtype="html")
    path = SinkHandler(directory).store("portal@example.com", ["anna@example.com"], bytes(mail))
    return path.name


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """The app on a migrated database with group RETAIL set up, publishing to real Redis."""
    require_redis()

    directory = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    url, drop = fresh_database(request.param, directory)
    engine = make_engine(url)
    access = AccessStore(engine)
    admin = access.create_token("fuzz-admin", "admin").secret
    publisher = access.create_token("fuzz-publisher", "publish").secret
    repository = SettingsRepository(engine)
    repository.add_group("RETAIL", "Retail customers")
    repository.save_settings("RETAIL", full(), "fuzz")
    _failed_event(DeliveryRecords(engine))
    mail_file = _mail(directory / "mail")

    # The events, test sends and replays the fuzzer makes land in the real
    # Redis under a prefix of their own, which nothing consumes.
    broker = os.environ["DISPATCHER_BROKER_URL"]
    prefix = f"fuzz-{uuid.uuid4().hex[:10]}:"
    config = Settings(
        database_url=url, broker_url=broker, broker_prefix=prefix, mailsink_dir=directory / "mail"
    )
    APP.target = create_app(
        engine=engine,
        config=config,
        api_settings=ApiSettings(secret=SECRET),
        pipeline=CeleryPipeline(config),
    )
    use_broker(broker, prefix)
    try:
        yield Site(APP.target, admin, publisher, mail_file)
    finally:
        APP.target = None
        original = get_settings()
        use_broker(original.broker_url, original.broker_prefix)
        client = redis.Redis.from_url(broker)
        try:
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
        finally:
            client.close()
        engine.dispose()
        drop()  # type: ignore[operator]


def _document() -> dict[str, Any]:
    """The OpenAPI document, from an app that never opens its database to build it."""
    app = create_app(
        config=Settings(database_url="sqlite://"),
        api_settings=ApiSettings(secret=SECRET),
        pipeline=RecordingPipeline(),
    )
    document: dict[str, Any] = app.openapi()
    return document


# Loaded when the module is imported, so that every operation becomes a test
# of its own. (schemathesis.pytest.from_fixture would build the app in a
# fixture instead, but fails on pytest 9.2: it sets Node._nodeid, which pytest
# renamed.) The requests, and the checks' own probes, go to APP.
schema = schemathesis.openapi.from_dict(_document())
schema.app = APP
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
# Every check but one: a request the schema allows may still be refused with
# 422, because the server checks what a schema cannot say (that an address
# exists as syntax, that a template compiles, that locale goes with
# effective=true). That the server refuses what the schema forbids, and
# answers everything else as documented, is checked.
schema.config.checks.update(excluded_check_names=["positive_data_acceptance"])


@schema.parametrize()
def test_the_api_keeps_its_openapi_promises(case: Case, site: Site) -> None:
    # An admin token may not publish events (scopes stay apart); the portal
    # backend's publish token may do nothing else.
    publishing = case.operation.method.upper() == "POST" and case.operation.path == "/v1/events"
    token = site.publisher if publishing else site.admin
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"})


def _event(event_type: EventType, event_id: str) -> dict[str, Any]:
    event = sample_event(event_type)
    event.update(event_id=event_id, customer_group="RETAIL")
    return event


RETAIL = {"code": "RETAIL"}
# Requests that succeed, which generated data rarely builds (a valid address,
# a whole settings document, a listed mail file): their answers, published
# to real Redis where they enqueue, must match the document too.
GOOD_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "PUT",
        "/v1/groups/{code}/settings",
        {"path_parameters": RETAIL, "body": full(), "media_type": "application/json"},
    ),
    (
        "PUT",
        "/v1/groups/{code}/settings",
        {"path_parameters": RETAIL, "body": full(), "media_type": "application/yaml"},
    ),
    ("GET", "/v1/groups/{code}/settings", {"path_parameters": RETAIL}),
    ("GET", "/v1/groups/{code}/settings", {"path_parameters": RETAIL, "query": {"format": "yaml"}}),
    (
        "GET",
        "/v1/groups/{code}/settings",
        {"path_parameters": RETAIL, "query": {"effective": True, "locale": "en"}},
    ),
    ("GET", "/v1/groups/{code}/settings/history", {"path_parameters": RETAIL}),
    (
        "POST",
        "/v1/groups/{code}/settings/rollback",
        {"path_parameters": RETAIL, "body": {"version": 1}},
    ),
    (
        "POST",
        "/v1/groups/{code}/preview",
        {"path_parameters": RETAIL, "body": {"kind": "password.reset", "locale": "en"}},
    ),
    (
        "POST",
        "/v1/groups/{code}/preview",
        {
            "path_parameters": RETAIL,
            "body": {"kind": "password_reset", "document": {"password_reset": {"subject": "Hi"}}},
        },
    ),
    (
        "POST",
        "/v1/groups/{code}/test-send",
        {"path_parameters": RETAIL, "body": {"kind": "password.reset", "address": "a@example.com"}},
    ),
    ("POST", "/v1/events", {"body": _event(EventType.PASSWORD_RESET, "fuzz-good-1")}),
    (
        "POST",
        "/v1/events",
        {
            "body": [
                _event(EventType.USERNAME_FORGOTTEN, "fuzz-good-2"),
                _event(EventType.CUSTOMER_VALIDATED, "fuzz-good-3"),
            ]
        },
    ),
    ("POST", "/v1/dead-letters/replay", {"body": {"all": True}}),
    ("GET", "/v1/deliveries", {"query": {"group": "RETAIL", "status": "dead"}}),
    ("GET", "/v1/audit", {"query": {"target": "RETAIL"}}),
]


@pytest.mark.parametrize(
    ("method", "path", "data"), GOOD_REQUESTS, ids=[f"{m} {p}" for m, p, _ in GOOD_REQUESTS]
)
def test_requests_that_succeed_answer_as_documented(
    site: Site, method: str, path: str, data: dict[str, Any]
) -> None:
    token = site.publisher if path == "/v1/events" else site.admin
    case = schema[path][method].Case(**data)
    response = case.call_and_validate(headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 300, response.text


def test_a_mail_of_the_sink_answers_as_documented(site: Site) -> None:
    case = schema["/v1/mailbox/{file}"]["GET"].Case(path_parameters={"file": site.mail_file})
    response = case.call_and_validate(headers={"Authorization": f"Bearer {site.admin}"})
    assert response.status_code == 200
    assert response.json()["html"].strip() == "<p>Hallo Anna</p>"
