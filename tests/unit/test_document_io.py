"""Import and export of settings documents: YAML and JSON, lossless."""

from __future__ import annotations

import json

import pytest

from config_store.document import canonical, dump, load, validate_document
from dispatcher.errors import DispatcherError
from tests.support.documents import FULL, full


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_round_trip_is_lossless(fmt: str) -> None:
    text = dump(canonical(validate_document(full())), fmt)
    assert load(text) == FULL
    # Exporting what was imported gives the very same text again.
    assert dump(canonical(validate_document(load(text))), fmt) == text


def test_yaml_export_writes_bodies_as_block_text() -> None:
    text = dump(canonical(validate_document(full())), "yaml")
    assert "body: |\n" in text
    assert "Ihr Zugang wurde beantragt." in text


def test_json_and_yaml_inputs_mean_the_same() -> None:
    assert load(json.dumps(FULL)) == load(dump(FULL, "yaml")) == FULL


def test_canonical_order_follows_the_help_page() -> None:
    shuffled = dict(reversed(list(full().items())))
    assert list(canonical(validate_document(shuffled))) == list(FULL)


def test_duplicate_keys_are_refused_not_silently_merged() -> None:
    text = "password_reset:\n  subject: a\n  subject: b\n"
    with pytest.raises(DispatcherError, match="the key 'subject' appears twice"):
        load(text, "doc.yaml")


def test_syntax_errors_name_the_line() -> None:
    with pytest.raises(DispatcherError, match=r"doc.yaml: cannot read the settings at line 2"):
        load("a: 1\n b: [\n", "doc.yaml")


def test_null_leaves_are_dropped() -> None:
    document = full()
    document["password_reset"]["body"] = None
    assert "body" not in canonical(validate_document(document))["password_reset"]
