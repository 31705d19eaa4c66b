"""What the web UI shows for the API's identifiers, in the language asked for.

Statuses, event types, e-mail kinds, scopes, bounce kinds, webhook states,
relay breaker states and security, lanes and the sources of effective values
are identifiers in the API's answers (``dead``, ``password.reset``,
``built-in (de)``); programs keep reading those. People read these labels,
from the one message catalogue (``dispatcher.i18n``), chosen by
``Accept-Language`` like every other text; ``hint.status.dead`` explains
``status.dead`` in a sentence. The web UI's page carries the same words
(``dispatcher.api.form``), and tests/unit/test_api_i18n.py holds them equal.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from dispatcher.api.routes.common import AUTH, AnyToken, language_of, problems
from dispatcher.i18n import catalogue

router = APIRouter()

LABEL_PREFIXES = (
    "status.",
    "event_status.",
    "event_type.",
    "kind.",
    "scope.",
    "bounce.",
    "webhook.",
    "breaker.",
    "security.",
    "lane.",
    "source.",
    "hint.",
)


class Labels(BaseModel):
    language: str = Field(description='"de" or "en", from Accept-Language (English by default).')
    labels: dict[str, str] = Field(
        description="Text per identifier, keyed by kind and value: status.dead, "
        "event_type.password.reset, kind.password.reset, breaker.open, security.tls, "
        "source.built-in (de), ...; hint.status.dead and the like explain one in a sentence. "
        'A key with {tag} ("source.group translation ({tag})") stands for every language tag.'
    )


@router.get("/v1/labels", tags=["labels"], response_model=Labels, responses=problems(*AUTH))
def labels(request: Request, _: AnyToken) -> Labels:
    """Labels of the API's identifiers for people, in the language of Accept-Language."""
    language = language_of(request)
    strings = catalogue(language).strings
    return Labels(
        language=language,
        labels={key: text for key, text in strings.items() if key.startswith(LABEL_PREFIXES)},
    )
