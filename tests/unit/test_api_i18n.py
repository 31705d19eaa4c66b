"""The API speaks German or English, as Accept-Language asks; never command-line advice."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.api_support import Api
from tests.support.documents import full

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
    assert german["labels"]["status.dead"] == "endgültig fehlgeschlagen"
    assert english["labels"]["status.dead"] == "failed for good"
    assert german["labels"]["source.built-in (de)"] == "Standardtext (Deutsch)"
    assert german["labels"]["event_type.password.reset"] == "Passwort zurückgesetzt"
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
