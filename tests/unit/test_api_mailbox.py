"""The local mail sink's mailbox over HTTP: the list, one message, no way out of its directory."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dispatcher.admin.access import AccessStore
from dispatcher.settings import Settings
from dispatcher.smtp.sink import SinkHandler
from tests.support.api_support import SCOPES, Api, RecordingPipeline, make_client

SECRET_MARKER = "outside-the-sink-4f1c"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    # The mailbox reads files, not the database; one backend is enough.
    return sqlite_url


def client(engine: Engine, directory: Path | None) -> Iterator[Api]:
    access = AccessStore(engine)
    tokens = {scope: access.create_token(scope, scope).secret for scope in SCOPES}
    pipeline = RecordingPipeline()
    config = Settings(database_url=str(engine.url), mailsink_dir=directory)
    with make_client(engine, pipeline, config=config) as test_client:
        yield Api(test_client, engine, pipeline, tokens)


@pytest.fixture
def mail_dir(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def api(engine: Engine, mail_dir: Path) -> Iterator[Api]:
    yield from client(engine, mail_dir)


@pytest.fixture
def no_sink(engine: Engine) -> Iterator[Api]:
    yield from client(engine, None)


def message(subject: str, *, html: str | None = None, text: str = "Hallo Anna") -> bytes:
    mail = EmailMessage()
    mail["From"] = "Kundenportal <portal@example.com>"
    mail["To"] = "Anna Schmidt <anna@example.com>"
    mail["Subject"] = subject
    mail["Date"] = "Fri, 27 Nov 2026 09:00:00 +0100"
    mail["Message-ID"] = f"<{subject.encode().hex()[:24]}@example.com>"
    mail.set_content(text)
    if html is not None:
        mail.add_alternative(html, subtype="html")
    return bytes(mail)


def store(directory: Path, subject: str, **kwargs: str | None) -> str:
    path = SinkHandler(directory).store(
        "bounce@example.com", ["anna@example.com"], message(subject, **kwargs)
    )
    return path.name


def test_without_a_sink_the_mailbox_answers_404_in_one_line(no_sink: Api) -> None:
    for path in ("/v1/mailbox", "/v1/mailbox/20261127T090000-1-000001.eml"):
        response = no_sink.get(path, "read")
        assert response.status_code == 404
        detail = response.json()["detail"]
        assert "DISPATCHER_MAILSINK_DIR is not set" in detail
        assert "\n" not in detail


def test_an_empty_sink_lists_nothing(api: Api) -> None:
    response = api.get("/v1/mailbox", "read")
    assert response.status_code == 200
    assert response.json() == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
        "next_offset": None,
    }


def test_messages_are_listed_newest_first_and_paged(api: Api, mail_dir: Path) -> None:
    names = [store(mail_dir, f"Nachricht {n}") for n in range(3)]
    page = api.get("/v1/mailbox?limit=2", "read").json()
    assert [item["file"] for item in page["items"]] == [names[2], names[1]]
    assert (page["total"], page["next_offset"]) == (3, 2)
    first = page["items"][0]
    assert first["subject"] == "Nachricht 2"
    assert first["from"] == "Kundenportal <portal@example.com>"
    assert first["to"] == "Anna Schmidt <anna@example.com>"
    assert first["mail_from"] == "bounce@example.com"
    assert first["rcpt_tos"] == ["anna@example.com"]
    assert first["received_at"].endswith(("Z", "+00:00"))
    last = api.get("/v1/mailbox?limit=2&offset=2", "read").json()
    assert [item["file"] for item in last["items"]] == [names[0]]
    assert last["next_offset"] is None
    assert api.get("/v1/mailbox?limit=0", "read").status_code == 422


def test_one_message_has_its_headers_text_and_html(api: Api, mail_dir: Path) -> None:
    html = "<p>Hallo <b>Anna</b></p><script>alert(1)</script>"
    name = store(mail_dir, "Passwort zurücksetzen", html=html, text="Hallo Anna,\nhier der Link.")
    response = api.get(f"/v1/mailbox/{name}", "read")
    assert response.status_code == 200
    body = response.json()
    assert body["file"] == name
    assert body["headers"]["subject"] == "Passwort zurücksetzen"
    assert body["headers"]["from"] == "Kundenportal <portal@example.com>"
    assert body["headers"]["to"] == "Anna Schmidt <anna@example.com>"
    assert body["headers"]["date"] == "Fri, 27 Nov 2026 09:00:00 +0100"
    assert body["headers"]["message_id"].endswith("@example.com>")
    assert body["text"].rstrip("\n") == "Hallo Anna,\nhier der Link."
    # The HTML is handed over as the message has it; the UI shows it only in a sandbox.
    assert body["html"].rstrip("\n") == html
    assert response.headers["content-type"] == "application/json"


def test_a_text_only_message_has_no_html(api: Api, mail_dir: Path) -> None:
    name = store(mail_dir, "Nur Text")
    body = api.get(f"/v1/mailbox/{name}", "read").json()
    assert body["html"] is None
    assert body["text"].startswith("Hallo Anna")


def test_a_damaged_index_line_is_skipped(api: Api, mail_dir: Path) -> None:
    name = store(mail_dir, "Ganz")
    with (mail_dir / "index.jsonl").open("a", encoding="utf-8") as index:
        index.write('{"file": "half-written')
    items = api.get("/v1/mailbox", "read").json()["items"]
    assert [item["file"] for item in items] == [name]


def test_the_mailbox_needs_a_read_token(api: Api) -> None:
    assert api.client.get("/v1/mailbox").status_code == 401
    assert api.get("/v1/mailbox", "publish").status_code == 403
    assert api.get("/v1/mailbox", "admin").status_code == 200


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the app reads with Path.read_bytes during the test."""
    seen: list[Path] = []
    real = pathlib.Path.read_bytes

    def spy(self: Path) -> bytes:
        seen.append(self)
        return real(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", spy)
    return seen


@pytest.mark.parametrize(
    "path",
    [
        "../x",
        "..",
        "..%2Fsecret.eml",
        "%2e%2e",
        "%2e%2e%2fsecret.eml",
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "..%5Csecret.eml",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "%2Ftmp%2Fsecret.eml",
        ".eml",
        ".hidden.eml",
        "unlisted.eml",
        "secret.eml%00.eml",
        "index.jsonl",
    ],
)
def test_no_name_outside_the_index_is_ever_read(
    api: Api, mail_dir: Path, reads: list[Path], path: str
) -> None:
    store(mail_dir, "Echt")
    (mail_dir / "unlisted.eml").write_text(SECRET_MARKER, "utf-8")
    (mail_dir.parent / "secret.eml").write_text(SECRET_MARKER, "utf-8")
    reads.clear()
    response = api.get(f"/v1/mailbox/{path}", "read")
    assert response.status_code in {404, 422}, response.text
    assert SECRET_MARKER not in response.text
    assert reads == []


def test_a_tampered_index_cannot_lead_out_of_the_directory(
    api: Api, mail_dir: Path, reads: list[Path]
) -> None:
    store(mail_dir, "Echt")
    outside = mail_dir.parent / "secret.eml"
    outside.write_text(SECRET_MARKER, "utf-8")
    # A link inside the directory that points out of it, listed in the index,
    # and index lines that name paths instead of file names.
    (mail_dir / "link.eml").symlink_to(outside)
    with (mail_dir / "index.jsonl").open("a", encoding="utf-8") as index:
        for name in ("link.eml", "../secret.eml", str(outside)):
            index.write(json.dumps({"file": name, "subject": "evil"}) + "\n")
    listed = [item["file"] for item in api.get("/v1/mailbox", "read").json()["items"]]
    assert "../secret.eml" not in listed
    assert str(outside) not in listed
    reads.clear()
    response = api.get("/v1/mailbox/link.eml", "read")
    assert response.status_code == 404
    assert SECRET_MARKER not in response.text
    assert reads == []
