"""The API speaks German or English, as Accept-Language asks; never command-line advice."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from dispatcher.admin.access import AccessStore
from dispatcher.admin.pipeline import CeleryPipeline
from dispatcher.api.form import LABEL_TABLES, form_description
from dispatcher.delivery.feedback import FeedbackRecorder
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.suppressions import SuppressionList
from dispatcher.delivery.views import AttemptResult, NewDelivery
from dispatcher.domain.kinds import KINDS, EventType
from dispatcher.domain.samples import sample_event
from dispatcher.domain.statuses import DeliveryStatus
from dispatcher.i18n import label
from dispatcher.mail.bounces import parse_bounce
from dispatcher.settings import Settings
from tests.support.api_support import Api, make_client
from tests.support.documents import full
from tests.support.harness import free_port
from tests.unit.test_feedback_record import NOW, delivered, dsn

DE = {"Accept-Language": "de"}
EN = {"Accept-Language": "en"}
CLI_ADVICE = re.compile(r"dispatcher [a-z]|--[a-z]|\brun:|see it with", re.IGNORECASE)


def save(api: Api, document: dict[str, Any], headers: dict[str, str]) -> Any:
    return api.put("/v1/groups/RETAIL/settings", json=document, headers=headers)


def invalid_document() -> dict[str, Any]:
    document = full()
    document["internal_addresses"]["access_requests_to"] = "portal"
    document["internal_addresses"]["send_from"] = "Müller, Hans <portal@example.com>"
    document["password_reset"]["subjct"] = "x"
    document["password_reset"]["body"] = "{{ unknown_thing }}"
    document["new_validation"]["subject"] = "Zeile\nzwei"
    return document


def test_the_same_422_in_german_and_in_english(api: Api) -> None:
    api.add_group()
    german = save(api, invalid_document(), DE)
    english = save(api, invalid_document(), EN)
    assert german.status_code == english.status_code == 422
    de, en = german.json()["detail"], english.json()["detail"]
    # The same problems at the same paths, in two languages.
    assert [p["path"] for p in de] == [p["path"] for p in en]
    by_path_de = {p["path"]: p["message"] for p in de}
    by_path_en = {p["path"]: p["message"] for p in en}
    assert by_path_en["internal_addresses.access_requests_to"] == (
        "is not a valid e-mail address (An email address must have an @-sign); "
        "write it as name@example.com"
    )
    assert by_path_de["internal_addresses.access_requests_to"] == (
        "ist keine gültige E-Mail-Adresse (eine E-Mail-Adresse braucht ein @-Zeichen); "
        "schreiben Sie sie als name@example.com"
    )
    assert by_path_de["internal_addresses.send_from"].startswith(
        "Der Anzeigename enthält ',' und braucht deshalb Anführungszeichen"
    )
    assert by_path_de["password_reset.subjct"] == (
        "unbekannter Schlüssel 'subjct' in password_reset; meinten Sie 'subject'?"
    )
    assert by_path_de["password_reset.body"].startswith(
        "Zeile 1: {{ unknown_thing }} gibt es in der E-Mail „Passwort zurücksetzen“ nicht"
    )
    assert by_path_de["new_validation.subject"] == (
        "muss einzeilig sein; entfernen Sie den Zeilenumbruch"
    )
    for path, message in by_path_de.items():
        assert message != by_path_en[path], path


def test_without_accept_language_the_api_answers_in_english(api: Api) -> None:
    api.add_group()
    plain = api.save(invalid_document()).json()["detail"]
    english = save(api, invalid_document(), EN).json()["detail"]
    assert plain == english
    preferred = save(
        api, invalid_document(), {"Accept-Language": "fr-CH, de;q=0.8, en;q=0.5"}
    ).json()["detail"]
    assert preferred == save(api, invalid_document(), DE).json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "german"),
    [
        ("GET", "/v1/groups/NOPE", None, 404, "Die Kundengruppe 'NOPE' ist für das Portal"),
        ("POST", "/v1/groups", {"code": "retail", "name": "x"}, 409, "bereits eingerichtet"),
        ("GET", "/v1/groups/RETAIL/settings", None, 404, "noch keine Einstellungen"),
        ("POST", "/v1/groups", {"code": "X", "name": " "}, 422, "darf nicht leer sein"),
        ("POST", "/v1/groups", {"code": "X"}, 422, "ist erforderlich"),
        ("GET", "/v1/deliveries?status=nope", None, 422, "möglich sind: queued"),
        ("DELETE", "/v1/groups", None, 405, "ist hier nicht erlaubt"),
        ("GET", "/v1/nothing-here", None, 404, "Nicht gefunden"),
        ("POST", "/v1/suppressions", {"address": "a@b.example", "reason": " "}, 422, "Grund"),
        ("DELETE", "/v1/suppressions/x@example.com", None, 404, "nicht auf der Sperrliste"),
        ("POST", "/v1/deliveries/999/resend", {}, 404, "Es gibt keine Zustellung 999"),
        ("POST", "/v1/relays/nope/check", {}, 404, "Es gibt kein Relais 'nope'"),
    ],
)
def test_errors_come_in_german_without_command_line_advice(
    api: Api, method: str, path: str, body: Any, status: int, german: str
) -> None:
    api.add_group()
    answers = {}
    for language in ("de", "en"):
        kwargs = {} if body is None else {"json": body}
        response = api.client.request(
            method,
            path,
            headers={**api.auth("admin"), "Accept-Language": language},
            **kwargs,
        )
        assert response.status_code == status, response.text
        answers[language] = response.text
        assert not CLI_ADVICE.search(response.text), response.text
    assert german in answers["de"]
    assert answers["de"] != answers["en"]


def test_sign_in_errors_come_in_german(api: Api) -> None:
    response = api.client.get("/v1/groups", headers={"Authorization": "Bearer nope", **DE})
    assert response.status_code == 401
    assert response.json()["detail"] == "Das Token ist ungültig oder wurde widerrufen."
    response = api.client.get("/v1/groups", headers={"Authorization": "Bearer nope", **EN})
    assert response.json()["detail"] == "the token is not valid or was revoked"
    response = api.client.get("/v1/groups", headers={**api.auth("publish"), **DE})
    assert response.status_code == 403
    assert response.json()["detail"].startswith("Das Token 'publish' hat den Bereich 'publish'")


def test_labels_name_statuses_kinds_and_sources(api: Api) -> None:
    german = api.get("/v1/labels", scope="publish", headers=DE).json()
    english = api.get("/v1/labels", scope="read", headers=EN).json()
    assert german["language"] == "de"
    assert english["language"] == "en"
    assert german["labels"]["status.dead"] == "Endgültig fehlgeschlagen"
    assert english["labels"]["status.dead"] == "Failed for good"
    assert german["labels"]["source.built-in (de)"] == "Standardtext (Deutsch)"
    assert german["labels"]["event_type.password.reset"] == "Passwort zurücksetzen"
    assert german["labels"]["breaker.open"] == "Gestört, wird übersprungen"
    assert english["labels"]["security.none"] == "Unencrypted"
    assert german["labels"]["kind.password.reset"] == "Passwort zurücksetzen"
    assert german["labels"].keys() == english["labels"].keys()


def test_preview_set_aside_problems_come_in_german(api: Api) -> None:
    api.add_group()
    draft = full()
    draft["new_validation"]["subject"] = "Zeile\nzwei"
    response = api.post(
        "/v1/groups/RETAIL/preview",
        json={"kind": "password.reset", "document": draft},
        headers=DE,
    )
    assert response.status_code == 200, response.text
    [problem] = response.json()["set_aside"]
    assert problem["message"] == "muss einzeilig sein; entfernen Sie den Zeilenumbruch"


# The web UI and GET /v1/labels: one source of words -------------------------


def test_the_page_and_the_api_name_every_identifier_alike(api: Api) -> None:
    description = form_description()
    for language in ("de", "en"):
        answer = api.get("/v1/labels", headers={"Accept-Language": language}).json()["labels"]
        compared = 0
        for table, prefix in LABEL_TABLES.items():
            assert description[table], table
            for item in description[table]:
                key = f"{prefix}.{item['name']}"
                assert item[f"label_{language}"] == answer[key], (language, key)
                if item.get(f"hint_{language}"):
                    assert item[f"hint_{language}"] == answer[f"hint.{key}"], (language, key)
                compared += 1
        assert compared >= 30
    # The sections carry the help page's titles; the kinds' labels are the same words.
    for kind in KINDS:
        assert label(f"kind.{kind.name}", "de") == kind.label_de
        assert label(f"kind.{kind.name}", "en") == kind.label_en


def test_the_labels_use_the_help_pages_and_the_pages_words() -> None:
    assert label("status.suppressed", "de") == "Gesperrt"  # the page "Sperrliste"
    assert label("status.bounced", "de") == "Unzustellbar (Bounce)"
    assert label("event_type.password.reset", "de") == "Passwort zurücksetzen"
    assert label("event_type.access.requested", "de") == "Zugriffsanforderung"
    for table, prefix in LABEL_TABLES.items():
        for language in ("de", "en"):
            texts = [
                label(f"{prefix}.{item['name']}", language) for item in form_description()[table]
            ]
            assert len(texts) == len(set(texts)), (table, language, texts)


# Answers the UI shows besides validation --------------------------------------


def _queued(api: Api, address: str) -> int:
    raw = sample_event(EventType.PASSWORD_RESET)
    raw.update(event_id=f"e-{uuid.uuid4().hex[:8]}", customer_group="RETAIL")
    new = NewDelivery(
        "password.reset", address, "Kim", "de", f"<{uuid.uuid4().hex}@x>", "interactive"
    )
    accepted = DeliveryRecords(api.engine).record_accepted(raw, "interactive", [new], 1, NOW)
    return accepted.deliveries[0].id


def test_a_refused_resend_says_why_as_data_and_in_the_readers_language(api: Api) -> None:
    sent = delivered(api.engine, "kim@example.com")
    added = api.post(
        "/v1/suppressions", json={"address": "kim@example.com", "reason": "asked to stop"}
    )
    assert added.status_code == 201, added.text
    answers = {}
    for language in ("de", "en"):
        response = api.post(
            f"/v1/deliveries/{sent.id}/resend",
            json={"force": False},
            headers={"Accept-Language": language},
        )
        assert response.status_code == 409, response.text
        answers[language] = body = response.json()
        assert body["code"] == "address_suppressed"
        assert body["address"] == "kim@example.com"
        assert body["since"] == added.json()["since"]
        assert body["reason"] == "asked to stop"  # typed by an administrator: as typed
        assert not CLI_ADVICE.search(response.text), response.text
    assert answers["de"]["detail"].startswith("kim@example.com steht seit ")
    assert "auf der Sperrliste (asked to stop)" in answers["de"]["detail"]
    assert answers["en"]["detail"].endswith("take it off the list first, or send anyway")

    queued = _queued(api, "lee@example.com")
    response = api.post(f"/v1/deliveries/{queued}/resend", json={}, headers=DE)
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Die Zustellung {queued} hat noch den Status „Wird gesendet“; erneut "
        "gesendet werden kann sie erst, wenn sie gesendet, endgültig fehlgeschlagen, "
        "unzustellbar oder gesperrt ist.",
        "code": "not_finished",
    }


def test_bounces_suppressions_and_replies_come_in_the_readers_language(api: Api) -> None:
    bounced = delivered(api.engine, "gone@example.com")
    delayed = delivered(api.engine, "slow@example.com")
    recorder = FeedbackRecorder(api.engine)
    recorder.record([bounced.id], parse_bounce(dsn("gone@example.com", "5.1.1")), NOW)
    recorder.record([delayed.id], parse_bounce(dsn("slow@example.com", "4.4.7", "delayed")), NOW)
    suppressed = _queued(api, "gone@example.com")
    records = DeliveryRecords(api.engine)
    [entry] = SuppressionList(api.engine).entries(None, 10, 0)[0]
    records.finish(
        [
            AttemptResult(
                suppressed,
                DeliveryStatus.SUPPRESSED,
                None,
                f"the address is on the suppression list: {entry.reason}",
            )
        ],
        NOW,
    )
    assert entry.reason.startswith("hard bounce 5.1.1: ")

    german = api.get("/v1/suppressions", headers=DE).json()["items"]
    # The product's words translated, the remote server's kept.
    assert german[0]["reason"] == "Harter Bounce 5.1.1: 5.1.1 550 5.1.1 refused"
    english = api.get("/v1/suppressions", headers=EN).json()["items"]
    assert english[0]["reason"] == entry.reason

    by_id = {d["id"]: d for d in api.get("/v1/deliveries", headers=DE).json()["items"]}
    assert by_id[bounced.id]["bounce_text"] == "5.1.1 550 5.1.1 refused"
    assert by_id[delayed.id]["feedback"].startswith("Verzögert: ")
    assert by_id[suppressed]["last_text"].startswith(
        "Die Adresse steht auf der Sperrliste: Harter Bounce 5.1.1: "
    )
    # A relay's own reply stays as the relay wrote it.
    assert by_id[delayed.id]["last_text"] == "2.0.0 Ok"
    english_ids = {d["id"]: d for d in api.get("/v1/deliveries", headers=EN).json()["items"]}
    assert english_ids[suppressed]["last_text"] == (
        f"the address is on the suppression list: {entry.reason}"
    )
    for response in (
        api.get("/v1/deliveries", headers=DE),
        api.get("/v1/suppressions", headers=DE),
        api.get("/v1/dead-letters", headers=DE),
    ):
        assert not CLI_ADVICE.search(response.text), response.text


def test_the_preview_names_its_sources_in_the_readers_language(api: Api) -> None:
    api.add_group()
    draft = full()
    draft["password_reset"]["subject"] = ""
    for language, builtin, group in (
        ("de", "Standardtext (Deutsch)", "Gruppe"),
        ("en", "built-in text (German)", "the group"),
    ):
        response = api.post(
            "/v1/groups/RETAIL/preview",
            json={"kind": "password.reset", "document": draft, "locale": "de"},
            headers={"Accept-Language": language},
        )
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["sources"] == {"subject": "built-in (de)", "body": "group"}
        assert data["source_labels"] == {"subject": builtin, "body": group}


@pytest.fixture
def relay_server() -> Iterator[int]:
    """A live SMTP server that takes nothing but a session's greeting and EHLO."""
    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


class Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def test_relays_routes_and_checks_come_in_the_readers_language(
    engine: Engine, relay_server: int, tmp_path: Path
) -> None:
    relays = tmp_path / "relays.yaml"
    relays.write_text(
        "relays:\n"
        f"  primary: {{host: 127.0.0.1, port: {relay_server}, security: none}}\n"
        "  backup: {host: 127.0.0.1, port: 1, security: none}\n"
        "routes:\n"
        "  - match: {sender_domain: partner.example}\n"
        "    relays: [backup]\n"
        "  - match: {group: RETAIL}\n"
        "    relays: [primary, backup]\n"
        "default: [primary]\n",
        "utf-8",
    )
    # No Redis: the breakers fail open (closed), which is all this test reads.
    config = Settings(
        database_url=str(engine.url), broker_url="redis://127.0.0.1:1/0", relays_file=relays
    )
    token = AccessStore(engine).create_token("admin", "admin").secret
    with make_client(engine, config=config) as client:

        def call(method: str, path: str, language: str) -> Any:
            headers = {"Authorization": f"Bearer {token}", "Accept-Language": language}
            return client.request(method, path, headers=headers)

        routes = call("GET", "/v1/relays", "de").json()["routes"]
        assert [(r["match"], r["label"]) for r in routes] == [
            ("sender domain partner.example", "Absenderdomain partner.example"),
            ("group RETAIL", "Kundengruppe RETAIL"),
        ]
        assert (routes[0]["sender_domain"], routes[1]["group"]) == ("partner.example", "RETAIL")
        english = call("GET", "/v1/relays", "en").json()["routes"]
        assert [r["label"] for r in english] == [
            "Sender domain partner.example",
            "Customer group RETAIL",
        ]

        good = call("POST", "/v1/relays/primary/check", "de").json()
        assert good["ok"] is True
        assert good["steps"] == [f"Verbunden mit 127.0.0.1:{relay_server}", "EHLO beantwortet"]
        bad = call("POST", "/v1/relays/backup/check", "de").json()
        assert bad["ok"] is False
        assert bad["problem"] == (
            "Die Verbindung zu 127.0.0.1:1 wurde abgelehnt; prüfen Sie Host und Port."
        )
        assert call("POST", "/v1/relays/backup/check", "en").json()["problem"] == (
            "the connection to 127.0.0.1:1 was refused; check the host and the port"
        )
        unknown = call("POST", "/v1/relays/nope/check", "de")
        assert unknown.status_code == 404
        assert (
            unknown.json()["detail"]
            == "Es gibt kein Relais 'nope'; die Relais sind: primary, backup"
        )


def test_readiness_details_come_in_the_readers_language(engine: Engine) -> None:
    pipeline = CeleryPipeline(
        Settings(database_url=str(engine.url), broker_url="redis://127.0.0.1:1/0")
    )
    token = AccessStore(engine).create_token("read", "read").secret
    with make_client(engine, pipeline) as client:  # type: ignore[arg-type]
        for language, start in (
            ("de", "Redis unter redis://127.0.0.1:1/0 ist nicht erreichbar: "),
            ("en", "cannot reach Redis at redis://127.0.0.1:1/0: "),
        ):
            response = client.get(
                "/readyz",
                headers={"Authorization": f"Bearer {token}", "Accept-Language": language},
            )
            assert response.status_code == 503
            body = response.json()
            assert (body["status"], body["database"]) == ("unavailable", "ok")
            assert body["broker"].startswith(start), body
        # Without a token: up or down, nothing more, in any language.
        anonymous = client.get("/readyz", headers=DE).json()
        assert anonymous["status"] == "unavailable"
        assert anonymous.get("database") is None
        assert anonymous.get("broker") is None
