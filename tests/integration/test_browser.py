"""The web UI in headless Chromium against a real ``dispatcher api`` server.

Debian's chromium, driven by Playwright's Python package through
``executable_path`` (``playwright install`` downloads nothing here). Without
/usr/bin/chromium the tests skip, and with CI=true they fail.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from dispatcher.smtp.sink import SinkHandler
from tests.conftest import service_missing
from tests.support.api_server import SERVER_SECRET, ApiServer, dispatcher, prepare_site
from tests.support.documents import HELP_PAGE_SECTION_KEYS, HELP_PAGE_SECTIONS, full
from tests.support.harness import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
HELP_PAGE_LABELS = [
    "Zugriffsanforderungs-E-Mails senden an",
    "E-Mail-Nachrichten senden von",
    "E-Mail an Kunden senden, die den Portalzugriff nicht selbst initiiert haben",
    "Zugriffsanforderung (Betreff)",
    "Zugriffsanforderung (Inhalt)",
    "Neue Validierung (Betreff)",
    "Neue Validierung (Inhalt)",
    "Benutzername vergessen (Betreff)",
    "Benutzername vergessen (Inhalt)",
    "Passwort zurücksetzen (Betreff)",
    "Passwort zurücksetzen (Inhalt)",
]
TIMEOUT_MS = 15_000
# A message in the mail sink whose parts try to run code in the web UI.
HOSTILE_SUBJECT = 'Ihr Zugang <img src=x onerror="document.title=1">'
HOSTILE_HTML = (
    "<p>Hallo <b>Anna</b>, hier ist Ihr Link.</p>"
    "<script>parent.postMessage('script ran', '*')</script>"
    "<img src=\"x\" onerror=\"parent.postMessage('handler ran', '*')\">"
    '<form action="https://example.com/"><button>go</button></form>'
)


def announce(request: pytest.FixtureRequest, message: str) -> None:
    """Print to the terminal even while pytest captures output (it shows in CI logs)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(message, flush=True)
        return
    with capture.global_and_fixture_disabled():
        print(f"\n{message}", flush=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, dict[str, str]]]:
    if not CHROMIUM.exists():
        service_missing(
            "Chromium",
            f"{CHROMIUM} is missing; install it with: "
            "apt-get install -y --no-install-recommends chromium",
        )
    directory = tmp_path_factory.mktemp("browser-site")
    env = {
        "DISPATCHER_DATABASE_URL": f"sqlite:///{directory / 'ui.db'}",
        "DISPATCHER_API_SECRET": SERVER_SECRET,
        # What `dispatcher up` sets when it runs the local mail sink.
        "DISPATCHER_MAILSINK_DIR": str(directory / "mail"),
    }
    fill_mail_sink(directory / "mail")
    tokens = prepare_site(directory, env)
    server = ApiServer(directory, env).start()
    try:
        yield server, tokens
    finally:
        server.stop()


def fill_mail_sink(directory: Path) -> None:
    """Two messages, as the sink stores them: a plain one, then a hostile one."""
    sink = SinkHandler(directory)
    for subject, html in (("Willkommen im Portal", None), (HOSTILE_SUBJECT, HOSTILE_HTML)):
        mail = EmailMessage()
        mail["From"] = "Kundenportal <portal@example.com>"
        mail["To"] = "Anna Schmidt <anna@example.com>"
        mail["Subject"] = subject
        mail["Message-ID"] = f"<{len(subject)}@example.com>"
        mail.set_content("Hallo Anna,\nhier ist Ihr Link.")
        if html is not None:
            mail.add_alternative(html, subtype="html")
        sink.store("portal@example.com", ["anna@example.com"], bytes(mail))


@pytest.fixture
def page(site: tuple[ApiServer, dict[str, str]]) -> Iterator[Any]:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000},
                locale="de-DE",
            )
            context.set_default_timeout(TIMEOUT_MS)
            try:
                yield context.pages[0] if context.pages else context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def sign_in(page: Any, server: ApiServer, token: str) -> None:
    page.goto(f"{server.url}/")
    page.fill("#token", token)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#who-name")).to_be_visible()


def open_group(page: Any) -> None:
    page.click("#groups a:text-is('RETAIL')")
    expect(page.locator("#portal-emails")).to_be_visible()


def current_version(server: ApiServer, token: str) -> int | None:
    with server.client(token) as client:
        version: int | None = client.get("/v1/groups/RETAIL").json()["current_version"]
    return version


def test_an_administrator_edits_previews_saves_and_sees_errors(
    page: Any, site: tuple[ApiServer, dict[str, str]], request: pytest.FixtureRequest
) -> None:
    server, tokens = site
    sign_in(page, server, tokens["admin"])
    expect(page.locator("#who-name")).to_have_text("admin-token (admin)")
    open_group(page)

    # The help page's sections, in its order, with its German labels.
    headings = page.locator("#portal-emails section.card > h3").all_inner_texts()
    assert headings[: len(HELP_PAGE_SECTIONS)] == HELP_PAGE_SECTIONS
    help_sections = page.locator("#portal-emails section.card:not(#section-languages)")
    for text in HELP_PAGE_LABELS:
        expect(help_sections.get_by_label(text, exact=True)).to_be_visible()
    expect(page.locator("#save")).to_have_text("Speichern")

    # The preview follows the edit, before anything is saved.
    subject = page.locator('[data-path="password_reset.subject"]')
    shown = page.locator('[data-preview="password_reset"] .preview-subject')
    expect(shown).to_have_text("Passwort zurücksetzen")
    subject.fill("Neues Passwort für {{ contact.name }}")
    expect(shown).to_have_text("Neues Passwort für Anna Schmidt")
    assert current_version(server, tokens["admin"]) == 1

    for section in HELP_PAGE_SECTION_KEYS:
        frame = page.frame_locator(f'[data-preview="{section}"] iframe.preview-html')
        expect(frame.locator("body")).not_to_be_empty()
    expect(
        page.frame_locator('[data-preview="password_reset"] iframe.preview-html').locator("body")
    ).to_contain_text("https://portal.example.com/reset")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "portal-emails.png"
    # Chromium does not paint sandboxed preview frames that are off screen, so
    # a full-page capture would show them empty: make the window as tall as
    # the page and let two animation frames pass before the capture.
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1400, "height": height})
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    page.screenshot(path=str(screenshot))
    page.set_viewport_size({"width": 1400, "height": 1000})
    assert screenshot.stat().st_size > 10_000
    announce(request, f"screenshot of the Portal-E-Mails page: {screenshot}")

    # Saving makes version 2, which the history shows with its change.
    page.click("#save")
    status = page.locator("#save-status")
    expect(status).to_have_attribute("data-state", "saved")
    expect(status).to_have_text("Gespeichert als Version 2.")
    assert current_version(server, tokens["admin"]) == 2
    page.click('[data-tab="history"]')
    latest = page.locator('[data-version="2"]')
    expect(latest).to_contain_text("admin-token")
    expect(latest.locator('tr[data-path="password_reset.subject"]')).to_contain_text(
        "Neues Passwort für {{ contact.name }}"
    )

    # Bad fields: each error next to its field, and nothing saved.
    page.click('[data-tab="emails"]')
    # The history's rows carry the same data-path as the form's fields; wait
    # until the form has replaced them.
    expect(page.locator("#history")).to_have_count(0)
    expect(page.locator("#portal-emails")).to_be_visible()
    page.locator('[data-path="internal_addresses.send_from"]').fill("kein-absender")
    page.locator('[data-path="forgotten_username.subject"]').fill("Hallo {{ nicht_da }}")
    page.click("#save")
    expect(status).to_have_attribute("data-state", "invalid")
    expect(status).to_contain_text("nichts wurde gespeichert")
    sender_error = page.locator('[data-error-for="internal_addresses.send_from"]')
    expect(sender_error).to_contain_text("is not a valid e-mail address")
    expect(page.locator('[data-error-for="forgotten_username.subject"]')).to_contain_text(
        "nicht_da"
    )
    expect(page.locator('[data-path="internal_addresses.send_from"]')).to_have_attribute(
        "aria-invalid", "true"
    )
    expect(page.locator('[data-error-for="password_reset.subject"]')).to_be_empty()
    assert current_version(server, tokens["admin"]) == 2
    page.screenshot(path=str(ARTIFACTS / "portal-emails-errors.png"))


def test_english_rollback_test_send_and_sign_out(
    page: Any, site: tuple[ApiServer, dict[str, str]]
) -> None:
    server, tokens = site
    sign_in(page, server, tokens["admin"])
    page.click('[data-lang="en"]')
    open_group(page)
    expect(page.locator("#portal-emails > h2")).to_have_text("Portal e-mails")
    expect(page.locator('[data-section="password_reset"] > h3')).to_have_text("Password reset")
    expect(page.locator("#save")).to_have_text("Save")

    # The preview's locale switch shows the English translation.
    page.select_option('[data-preview-locale="password_reset"]', "en")
    shown = page.locator('[data-preview="password_reset"] .preview-subject')
    expect(shown).to_have_text("Reset your password")

    # Rolling back to version 1 saves a new version equal to it.
    changed = full()
    changed["forgotten_username"]["subject"] = "Benutzername (geändert)"
    with server.client(tokens["admin"]) as client:
        before = client.put("/v1/groups/RETAIL/settings", json=changed).json()["version"]
    assert before > 1
    page.click('[data-tab="history"]')
    page.click('[data-version="1"] button.rollback')
    expect(page.locator("#history-status")).to_contain_text(f"as version {before + 1}")
    assert current_version(server, tokens["admin"]) == before + 1

    # The test send form puts the error next to its field.
    page.click('[data-tab="test"]')
    page.fill("#f-address", "not an address")
    page.click("#test-send button[type=submit]")
    expect(page.locator('[data-error-for="address"]')).to_contain_text("not a valid e-mail address")

    page.click("#sign-out")
    expect(page.locator("#signin-form")).to_be_visible()
    assert page.evaluate("fetch('/v1/groups').then((r) => r.status)") == 401


def test_a_read_token_sees_but_cannot_save(
    page: Any, site: tuple[ApiServer, dict[str, str]]
) -> None:
    server, tokens = site
    sign_in(page, server, tokens["read"])
    page.click('[data-lang="de"]')
    open_group(page)
    expect(page.locator(".notice").first).to_contain_text("Nur Lesezugriff")
    expect(page.locator("#save")).to_have_count(0)
    expect(page.locator('[data-preview="password_reset"]')).to_have_attribute("data-state", "ready")
    page.goto(f"{server.url}/#/deliveries")
    expect(page.locator("h1")).to_have_text("Zustellungen")
    page.goto(f"{server.url}/#/dead-letters")
    expect(page.locator("h1")).to_have_text("Unzustellbare Nachrichten")


def test_a_revoked_token_ends_the_session_in_the_browser(
    page: Any, site: tuple[ApiServer, dict[str, str]]
) -> None:
    server, _ = site
    token = dispatcher(
        server.directory, server.env, "tokens", "create", "--scope", "read", "--name", "short-lived"
    ).out.strip()
    sign_in(page, server, token)
    page.click('[data-lang="de"]')
    expect(page.locator("#groups")).to_be_visible()
    dispatcher(server.directory, server.env, "tokens", "revoke", "short-lived")
    page.click("#groups a:text-is('RETAIL')")
    expect(page.locator("#signin-form")).to_be_visible()
    expect(page.locator("#signin-error")).to_have_text(
        "Die Sitzung ist abgelaufen. Bitte melden Sie sich erneut an."
    )


def test_the_mailbox_shows_the_sink_and_runs_nothing_from_a_message(
    page: Any, site: tuple[ApiServer, dict[str, str]]
) -> None:
    server, tokens = site
    sign_in(page, server, tokens["read"])
    page.click('[data-lang="de"]')
    page.evaluate(
        "window.__frameMessages = [];"
        "addEventListener('message', (event) => window.__frameMessages.push(event.data))"
    )
    page.click("#nav-mailbox")
    rows = page.locator("#mailbox tbody tr")
    expect(rows).to_have_count(2)
    # Newest first; the hostile subject is text, never markup.
    expect(rows.first.locator("a")).to_have_text(HOSTILE_SUBJECT)
    expect(rows.nth(1)).to_contain_text("Willkommen im Portal")
    expect(page.locator("#mailbox img")).to_have_count(0)

    rows.first.locator("a").click()
    expect(page.locator("#mail-subject")).to_have_text(HOSTILE_SUBJECT)
    expect(page.locator("#mail-headers")).to_contain_text("Anna Schmidt <anna@example.com>")
    expect(page.locator("#mail-text")).to_contain_text("hier ist Ihr Link.")
    frame = page.locator("#mail-html")
    expect(frame).to_have_attribute("sandbox", "")
    expect(page.frame_locator("#mail-html").locator("body")).to_contain_text(
        "Hallo Anna, hier ist Ihr Link."
    )
    page.evaluate("new Promise((done) => setTimeout(done, 300))")
    assert page.evaluate("window.__frameMessages") == []
    assert page.title() == "Portal-E-Mails"
    assert page.locator("#app img").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "mailbox-message.png"), full_page=True)

    page.click("text=← Zurück zum Postfach")
    expect(rows).to_have_count(2)
    rows.nth(1).locator("a").click()
    expect(page.locator("#mail-html-part")).to_contain_text("keine solche Fassung")
