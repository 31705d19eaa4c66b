"""Groups, settings, history, rollback, preview and test send over HTTP, on both databases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from config_store.document import canonical, dump, validate_document
from dispatcher.api.schemas import EffectiveSettings
from tests.support.api_support import Api
from tests.support.documents import addresses_only, full


@pytest.fixture
def group(api: Api) -> str:
    api.add_group()
    return "RETAIL"


def saved(api: Api, document: dict[str, Any] | None = None) -> int:
    response = api.save(document or full())
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


# Groups -------------------------------------------------------------------------


def test_groups_are_listed_added_and_shown(api: Api) -> None:
    assert api.get("/v1/groups", "read").json() == []
    created = api.post("/v1/groups", json={"code": "RETAIL", "name": "Retail customers"})
    assert created.status_code == 201
    assert created.json()["code"] == "RETAIL"
    assert created.json()["current_version"] is None
    assert created.json()["created_at"].endswith(("Z", "+00:00"))
    listed = api.get("/v1/groups", "read").json()
    assert [(g["code"], g["name"]) for g in listed] == [("RETAIL", "Retail customers")]
    shown = api.get("/v1/groups/RETAIL", "read").json()
    assert shown["saved_by"] is None
    saved(api)
    shown = api.get("/v1/groups/RETAIL", "read").json()
    assert (shown["current_version"], shown["saved_by"]) == (1, "admin")


def test_adding_a_group_twice_is_a_conflict(api: Api, group: str) -> None:
    response = api.post("/v1/groups", json={"code": group, "name": "Again"})
    assert response.status_code == 409
    assert "already set up" in response.json()["detail"]


def test_adding_a_bad_group_reports_every_field(api: Api) -> None:
    response = api.post("/v1/groups", json={"code": "no spaces", "name": " "})
    assert response.status_code == 422
    paths = [e["path"] for e in response.json()["detail"]]
    assert paths == ["code", "name"]
    missing = api.post("/v1/groups", json={"code": "X", "nmae": "typo"})
    assert missing.status_code == 422
    assert {e["path"] for e in missing.json()["detail"]} == {"name", "nmae"}
    assert api.get("/v1/groups").json() == []


def test_an_unknown_group_answers_404_saying_how_to_add_it(api: Api) -> None:
    for response in (
        api.get("/v1/groups/NOPE"),
        api.get("/v1/groups/NOPE/settings"),
        api.save(full(), code="NOPE"),
        api.get("/v1/groups/NOPE/settings/history"),
    ):
        assert response.status_code == 404
        assert "is not set up for the portal; add it first" in response.json()["detail"]


# Settings -----------------------------------------------------------------------


def test_a_group_without_settings_answers_404(api: Api, group: str) -> None:
    response = api.get(f"/v1/groups/{group}/settings")
    assert response.status_code == 404
    assert "has no portal e-mail settings yet" in response.json()["detail"]


def test_put_saves_a_version_and_get_returns_it(api: Api, group: str) -> None:
    response = api.save(full())
    assert response.status_code == 200
    body = response.json()
    assert (body["version"], body["created"], body["actor"]) == (1, True, "admin")
    assert response.headers["ETag"] == '"1"'
    assert {"path": "password_reset.subject", "old": None, "new": "Passwort zurücksetzen"} in body[
        "changes"
    ]
    current = api.get(f"/v1/groups/{group}/settings", "read")
    assert current.status_code == 200
    assert current.headers["ETag"] == '"1"'
    assert current.json() == canonical(validate_document(full()))
    again = api.save(full())
    assert (again.json()["version"], again.json()["created"], again.json()["changes"]) == (
        1,
        False,
        [],
    )


def test_settings_of_version_n_as_json_or_yaml(api: Api, group: str) -> None:
    saved(api, addresses_only())
    saved(api)
    first = api.get(f"/v1/groups/{group}/settings?version=1")
    assert first.json() == addresses_only()
    assert first.headers["ETag"] == '"1"'
    as_yaml = api.get(f"/v1/groups/{group}/settings?format=yaml")
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert as_yaml.text == dump(canonical(validate_document(full())), "yaml")
    missing = api.get(f"/v1/groups/{group}/settings?version=9")
    assert missing.status_code == 404
    assert "versions run from 1 to 2" in missing.json()["detail"]
    bad = api.get(f"/v1/groups/{group}/settings?version=0")
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["path"] == "version"


def test_effective_settings_per_locale(api: Api, group: str) -> None:
    saved(api)
    response = api.get(f"/v1/groups/{group}/settings?effective=true&locale=en", "read")
    assert response.status_code == 200
    view = EffectiveSettings.model_validate(response.json())
    assert view.password_reset.subject.value == "Reset your password"
    assert view.password_reset.subject.source.startswith("group translation")
    assert view.new_validation.language == "de"
    errors = api.get(f"/v1/groups/{group}/settings?effective=true&version=1&locale=xx-!!")
    assert errors.status_code == 422
    assert [e["path"] for e in errors.json()["detail"]] == ["version", "locale"]
    assert api.get(f"/v1/groups/{group}/settings?locale=en").status_code == 422


def test_a_bad_document_reports_every_error_with_its_path_and_saves_nothing(
    api: Api, group: str
) -> None:
    saved(api)
    document = full()
    document["internal_addresses"]["send_from"] = "not an address"
    document["password_reset"]["subject"] = "two\nlines"
    document["customer_access_request"]["send_to_customers_not_self_initiated"] = "yes"
    document["new_validation"]["body"] = "{{ reset_url }}"
    response = api.save(document)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [e["path"] for e in detail] == [
        "internal_addresses.send_from",
        "customer_access_request.send_to_customers_not_self_initiated",
        "new_validation.body",
        "password_reset.subject",
    ]
    assert all(isinstance(e["message"], str) and e["message"] for e in detail)
    assert "single line" in detail[-1]["message"]
    history = api.get(f"/v1/groups/{group}/settings/history").json()
    assert [v["version"] for v in history] == [1]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"{not json", "application/json", "not valid JSON at line 1, column 2"),
        (b"", "application/json", "the body is empty"),
        (b"\xff\xfe", "application/json", "not UTF-8"),
        (b'{"a": 1, "a": 2}', "application/json", "appears twice"),
        (b"internal_addresses: [", "application/yaml", "cannot read the settings"),
        (b"[1, 2]", "application/json", "must be a mapping"),
    ],
)
def test_unreadable_bodies_answer_422_with_one_line(
    api: Api, group: str, body: bytes, content_type: str, message: str
) -> None:
    response = api.put(
        f"/v1/groups/{group}/settings", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert message in problem["message"]
    assert "\n" not in problem["message"]


def test_put_accepts_yaml(api: Api, group: str) -> None:
    response = api.put(
        f"/v1/groups/{group}/settings",
        content=dump(full(), "yaml").encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 200
    assert response.json()["version"] == 1


def test_if_match_guards_against_lost_updates(api: Api, group: str) -> None:
    saved(api)
    changed = full()
    changed["password_reset"]["subject"] = "Neu"
    assert api.save(changed).status_code == 200
    stale = full()
    stale["password_reset"]["subject"] = "Meins"
    conflict = api.put(f"/v1/groups/{group}/settings", json=stale, headers={"If-Match": '"1"'})
    assert conflict.status_code == 409
    assert "changed meanwhile" in conflict.json()["detail"]
    by_query = api.put(f"/v1/groups/{group}/settings?expected_version=1", json=stale)
    assert by_query.status_code == 409
    ok = api.put(f"/v1/groups/{group}/settings", json=stale, headers={"If-Match": 'W/"2"'})
    assert (ok.status_code, ok.json()["version"]) == (200, 3)
    star = api.put(f"/v1/groups/{group}/settings", json=full(), headers={"If-Match": "*"})
    assert star.status_code == 200
    garbage = api.put(f"/v1/groups/{group}/settings", json=full(), headers={"If-Match": "abc"})
    assert garbage.status_code == 422
    assert garbage.json()["detail"][0]["path"] == "If-Match"


def test_history_shows_each_versions_changes_and_actor(api: Api, group: str) -> None:
    saved(api)
    changed = full()
    changed["password_reset"]["subject"] = "Neues Passwort"
    del changed["translations"]
    assert api.put(f"/v1/groups/{group}/settings", scope="admin", json=changed).status_code == 200
    history = api.get(f"/v1/groups/{group}/settings/history", "read").json()
    assert [(v["version"], v["current"], v["actor"]) for v in history] == [
        (2, True, "admin"),
        (1, False, "admin"),
    ]
    assert history[0]["changes"] == [
        {"path": "password_reset.subject", "old": "Passwort zurücksetzen", "new": "Neues Passwort"},
        {
            "path": "translations.en.password_reset.subject",
            "old": "Reset your password",
            "new": None,
        },
        {
            "path": "translations.en.password_reset.body",
            "old": "Link: {{ reset_url }}\n",
            "new": None,
        },
    ]
    assert history[0]["changed_fields"] == sorted(c["path"] for c in history[0]["changes"])
    assert all(c["old"] is None for c in history[1]["changes"])
    paged = api.get(f"/v1/groups/{group}/settings/history?limit=1&offset=1").json()
    assert [v["version"] for v in paged] == [1]


def test_every_change_is_in_the_audit_log_with_actor_and_diff(api: Api, group: str) -> None:
    saved(api)
    changed = full()
    changed["forgotten_username"]["subject"] = "Benutzername"
    api.save(changed)
    api.post(f"/v1/groups/{group}/settings/rollback", json={"version": 1})
    entries = api.get(f"/v1/audit?target={group}", "read").json()
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("settings.rollback", "admin"),
        ("settings.save", "admin"),
        ("settings.save", "admin"),
        ("group.add", "admin"),
    ]
    assert entries[1]["diff"] == {
        "version": 2,
        "changes": [
            {"path": "forgotten_username.subject", "old": "Ihr Benutzername", "new": "Benutzername"}
        ],
    }
    assert entries[0]["diff"]["restored_from"] == 1


def test_rollback_saves_a_new_version_equal_to_an_old_one(api: Api, group: str) -> None:
    saved(api, addresses_only())
    saved(api)
    response = api.post(f"/v1/groups/{group}/settings/rollback", json={"version": 1})
    assert response.status_code == 200
    body = response.json()
    assert (body["version"], body["restored_from"], body["created"]) == (3, 1, True)
    assert response.headers["ETag"] == '"3"'
    assert api.get(f"/v1/groups/{group}/settings").json() == addresses_only()
    missing = api.post(f"/v1/groups/{group}/settings/rollback", json={"version": 7})
    assert missing.status_code == 404
    invalid = api.post(f"/v1/groups/{group}/settings/rollback", json={"version": "one"})
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["path"] == "version"


# Preview ------------------------------------------------------------------------


def preview(api: Api, group: str, **body: Any) -> Any:
    return api.post(f"/v1/groups/{group}/preview", scope="read", json=body)


def test_preview_of_the_saved_settings(api: Api, group: str) -> None:
    saved(api)
    response = preview(api, group, kind="password.reset")
    assert response.status_code == 200
    body = response.json()
    assert body["subject"] == "Passwort zurücksetzen"
    assert body["from"] == "Kundenportal <portal@example.com>"
    assert body["sources"] == {"subject": "group", "body": "group"}
    assert "https://" in body["text"]
    assert body["html"].startswith("<!DOCTYPE html>")
    english = preview(api, group, kind="password_reset", locale="en").json()
    assert (english["subject"], english["language"]) == ("Reset your password", "en")


def test_preview_of_an_unsaved_draft_saves_nothing(api: Api, group: str) -> None:
    saved(api)
    draft = full()
    draft["password_reset"]["subject"] = "Entwurf für {{ contact.name }}"
    response = preview(api, group, kind="password.reset", document=draft)
    assert response.json()["subject"] == "Entwurf für Anna Schmidt"
    assert api.get(f"/v1/groups/{group}/settings").json()["password_reset"]["subject"] == (
        "Passwort zurücksetzen"
    )
    fresh = api.post("/v1/groups", json={"code": "NEW", "name": "New"})
    assert fresh.status_code == 201
    first_draft = preview(api, "NEW", kind="password.reset", document=addresses_only())
    assert first_draft.json()["sources"]["subject"] == "built-in (de)"


def test_preview_sets_aside_problems_in_other_sections(api: Api, group: str) -> None:
    draft = full()
    draft["internal_addresses"]["send_from"] = "kein-absender"
    draft["new_validation"]["subject"] = "{{ nope }}"
    response = preview(api, group, kind="password.reset", document=draft)
    assert response.status_code == 200
    body = response.json()
    assert body["subject"] == "Passwort zurücksetzen"
    assert body["from"] == "portal@example.com"
    assert [p["path"] for p in body["set_aside"]] == [
        "internal_addresses.send_from",
        "new_validation.subject",
    ]


def test_preview_reports_problems_in_its_own_section(api: Api, group: str) -> None:
    draft = full()
    draft["password_reset"]["subject"] = "{{ unknown_thing }}"
    draft["translations"]["en"]["password_reset"]["body"] = "{% if %}"
    response = preview(api, group, kind="password.reset", document=draft)
    assert response.status_code == 422
    paths = [e["path"] for e in response.json()["detail"]]
    assert paths == [
        "document.password_reset.subject",
        "document.translations.en.password_reset.body",
    ]


def test_preview_checks_kind_locale_and_event(api: Api, group: str) -> None:
    saved(api)
    bad = preview(api, group, kind="password.rest", locale="!!")
    assert bad.status_code == 422
    assert [e["path"] for e in bad.json()["detail"]] == ["kind", "locale"]
    assert "password.reset" in bad.json()["detail"][0]["message"]
    event = {
        "event_id": "e-1",
        "type": "password.reset",
        "customer_group": group,
        "contact": {"email": "not-an-address", "name": "Zoe"},
        "reset_url": "https://portal.example.com/r",
    }
    invalid = preview(api, group, kind="password.reset", event=event)
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["path"] == "event.contact.email"
    event["contact"] = {"email": "zoe@example.com", "name": "Zoe", "locale": "en-GB"}
    good = preview(api, group, kind="password.reset", event=event)
    assert good.status_code == 200
    assert good.json()["to"] == "Zoe <zoe@example.com>"
    assert good.json()["subject"] == "Reset your password"


def test_preview_without_a_draft_needs_saved_settings(api: Api, group: str) -> None:
    response = preview(api, group, kind="password.reset")
    assert response.status_code == 404


# Test send ----------------------------------------------------------------------


def test_test_send_hands_one_kind_to_the_pipeline(api: Api, group: str) -> None:
    saved(api)
    response = api.post(
        f"/v1/groups/{group}/test-send",
        json={"kind": "password_reset", "address": "admin@example.com", "locale": "en"},
    )
    assert response.status_code == 202
    event_id = response.json()["event_id"]
    assert api.pipeline.test_sends == [
        {
            "group": group,
            "kind": "password.reset",
            "address": "admin@example.com",
            "locale": "en",
            "actor": "admin",
            "event_id": event_id,
        }
    ]
    [entry] = [e for e in api.get("/v1/audit").json() if e["action"] == "test_send"]
    assert entry["diff"]["address"] == "admin@example.com"


def test_test_send_reports_every_bad_field(api: Api, group: str) -> None:
    saved(api)
    response = api.post(
        f"/v1/groups/{group}/test-send", json={"kind": "nope", "address": "x", "locale": "!"}
    )
    assert response.status_code == 422
    assert [e["path"] for e in response.json()["detail"]] == ["kind", "address", "locale"]
    assert api.pipeline.test_sends == []


def test_test_send_needs_settings_and_a_broker(api: Api, group: str) -> None:
    body = {"kind": "password.reset", "address": "admin@example.com"}
    assert api.post(f"/v1/groups/{group}/test-send", json=body).status_code == 404
    saved(api)
    api.pipeline.broker_down = True
    down = api.post(f"/v1/groups/{group}/test-send", json=body)
    assert down.status_code == 503
    assert "nothing was enqueued" in down.json()["detail"]


def test_json_bodies_of_documents_round_trip(api: Api, group: str) -> None:
    saved(api)
    exported = api.get(f"/v1/groups/{group}/settings").content
    response = api.put(
        f"/v1/groups/{group}/settings",
        content=exported,
        headers={"Content-Type": "application/json"},
    )
    assert response.json()["created"] is False
    assert json.loads(exported)["default_locale"] == "de"
