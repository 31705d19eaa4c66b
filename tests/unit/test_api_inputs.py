"""Odd input answers 4xx with the product's message, never 500, on SQLite and PostgreSQL.

Each case here is one the schemathesis run (``test_api_fuzz.py``) found or
could find; they stay here as plain regression tests on both databases.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api_support import Api

BIG = str(2**63)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/v1/groups/%00", None, "code"),
        ("GET", "/v1/groups/A%00B/settings", None, "code"),
        ("PUT", "/v1/groups/%00/settings", {}, "code"),
        ("POST", "/v1/groups/bad%20code/preview", {"kind": "password.reset"}, "code"),
        ("GET", "/v1/deliveries?event_id=%00", None, "event_id"),
        ("GET", "/v1/deliveries?group=%00", None, "group"),
        ("GET", "/v1/deliveries?recipient=a%00b", None, "recipient"),
        ("GET", "/v1/audit?target=%00", None, "target"),
        ("GET", f"/v1/deliveries?offset={BIG}", None, "offset"),
        ("GET", f"/v1/audit?offset={BIG}", None, "offset"),
        ("GET", f"/v1/groups/RETAIL/settings?version={BIG}", None, "version"),
        ("GET", f"/v1/groups/RETAIL/settings/history?offset={BIG}", None, "offset"),
        ("POST", "/v1/groups/RETAIL/settings/rollback", {"version": 2**63}, "version"),
        ("POST", "/v1/dead-letters/replay", {"ids": [2**63]}, "ids.0"),
    ],
)
def test_values_no_database_can_hold_are_refused_with_422(
    api: Api, method: str, path: str, body: Any, field: str
) -> None:
    # PostgreSQL refuses NUL in text and numbers beyond its integers; the
    # API refuses them first, naming the field.
    api.add_group()
    kwargs = {} if body is None else {"json": body}
    response = api.client.request(method, path, headers=api.auth("admin"), **kwargs)
    assert response.status_code == 422, response.text
    assert [e["path"] for e in response.json()["detail"]] == [field]


def test_an_invalid_group_code_names_the_rule(api: Api) -> None:
    response = api.get("/v1/groups/bad%20code")
    assert response.json() == {
        "detail": [
            {
                "path": "code",
                "message": "'bad code' is not a valid group code; use 1-64 letters, digits, "
                "'_', '.' or '-', starting with a letter or digit",
            }
        ]
    }
    assert api.get("/v1/groups/NOPE").status_code == 404


@pytest.mark.parametrize(
    "body",
    [{"ids": [False]}, {"ids": ["1"]}, {"all": "yes"}, {"ids": [1.5]}],
)
def test_request_bodies_must_have_their_documented_types(api: Api, body: Any) -> None:
    response = api.post("/v1/dead-letters/replay", json=body)
    assert response.status_code == 422, response.text
    assert api.pipeline.scheduled == []


def test_rollback_needs_a_number_not_a_string(api: Api) -> None:
    api.add_group()
    response = api.post("/v1/groups/RETAIL/settings/rollback", json={"version": "1"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["path"] == "version"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"version": "\xff"}', "the body is not UTF-8 JSON; send a JSON document"),
        (b'{"version": ', "the body is not valid JSON (Expecting value); send JSON"),
    ],
)
def test_a_body_that_is_not_json_answers_422_not_400(
    api: Api, content: bytes, message: str
) -> None:
    api.add_group()
    response = api.post(
        "/v1/groups/RETAIL/settings/rollback",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json() == {"detail": [{"path": "", "message": message}]}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/groups", "GET, POST"),
        ("DELETE", "/v1/groups/RETAIL/settings", "GET, PUT"),
        ("PATCH", "/ui/session", "DELETE, GET, POST"),
        ("POST", "/healthz", "GET"),
    ],
)
def test_a_wrong_method_names_every_allowed_one(
    api: Api, method: str, path: str, allowed: str
) -> None:
    response = api.client.request(method, path, headers=api.auth("admin"))
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.json() == {"detail": f"{method} is not allowed here; use {allowed}"}


def test_the_yaml_answer_is_documented_as_the_settings_document(api: Api) -> None:
    document = api.get("/openapi.json").json()
    get = document["paths"]["/v1/groups/{code}/settings"]["get"]["responses"]["200"]["content"]
    assert get["application/yaml"]["schema"] == get["application/json"]["schema"]
    put = document["paths"]["/v1/groups/{code}/settings"]["put"]["requestBody"]["content"]
    assert put["application/yaml"]["schema"] == {"$ref": "#/components/schemas/SettingsDocument"}
