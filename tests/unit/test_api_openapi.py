"""The OpenAPI document describes every route with its request and response schemas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api_support import Api, api_routes
from tests.support.documents import HELP_PAGE_SECTION_KEYS

OPEN = {("get", "/healthz"), ("get", "/readyz"), ("post", "/ui/session")}


@pytest.fixture
def document(api: Api) -> dict[str, Any]:
    response = api.get("/openapi.json", "publish")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_every_route_is_documented(document: dict[str, Any]) -> None:
    expected = {
        (method.lower(), route.path)
        for route in api_routes()
        if route.include_in_schema
        for method in route.methods
    }
    documented = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }
    assert documented == expected
    assert len(expected) >= 19


def test_every_operation_has_response_and_request_schemas(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            assert operation.get("description"), where
            successes = {code: r for code, r in operation["responses"].items() if code < "300"}
            assert successes, where
            for code, response in successes.items():
                if code == "204":
                    continue
                content = response.get("content", {})
                assert content, where
                assert all(media.get("schema") for media in content.values()), where
            if method in {"post", "put"}:
                body = operation.get("requestBody", {})
                assert body.get("content"), where
                assert all(media.get("schema") for media in body["content"].values()), where
            if operation.get("parameters") or "requestBody" in operation:
                problem = operation["responses"]["422"]["content"]["application/json"]["schema"]
                assert problem == {"$ref": "#/components/schemas/ValidationProblem"}, where
            if (method, path) not in OPEN and path not in {"/healthz", "/readyz"}:
                assert operation.get("security"), where
                assert "401" in operation["responses"], where


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for ref in set(refs(document)):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_the_settings_document_and_events_have_their_real_schemas(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    settings = schemas["SettingsDocument"]
    assert settings["required"] == ["internal_addresses"]
    assert list(settings["properties"]) == [
        *HELP_PAGE_SECTION_KEYS,
        "default_locale",
        "translations",
    ]
    assert settings["additionalProperties"] is False
    put = document["paths"]["/v1/groups/{code}/settings"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SettingsDocument"
    }
    event = schemas["Event"]
    variants = event.get("oneOf") or event.get("anyOf")
    assert len(variants) == 5
    assert "access_request.internal" in schemas["EffectiveSettings"]["properties"]


def test_models_of_the_same_name_keep_their_own_schemas(document: dict[str, Any]) -> None:
    # The settings section and the event are both called PasswordReset.
    schemas = document["components"]["schemas"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref = next(r for r in refs(node) if "PasswordReset" in r)
        found: dict[str, Any] = schemas[ref.removeprefix("#/components/schemas/")]
        return found

    section = resolve(schemas["SettingsDocument"]["properties"]["password_reset"])
    assert set(section["properties"]) == {"subject", "body"}
    event = resolve(schemas["Event"])
    assert "reset_url" in event["properties"]
    assert document["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
