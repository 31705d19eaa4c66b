// The web UI of the portal e-mail dispatcher: a small app over the JSON API.
// Everything is built with DOM calls and textContent, never innerHTML, so
// that no text from the server or the user can turn into markup; e-mail HTML
// is shown only inside sandboxed frames.
"use strict";

(function () {
  const FORM = JSON.parse(document.getElementById("form-description").textContent);
  const TEXT_SECTIONS = FORM.sections.filter((s) => s.key !== "internal_addresses");
  const SECTION = Object.fromEntries(FORM.sections.map((s) => [s.key, s]));
  const KIND = Object.fromEntries(FORM.kinds.map((k) => [k.name, k]));
  const NAMES = {
    status: Object.fromEntries(FORM.statuses.map((x) => [x.name, x])),
    eventType: Object.fromEntries(FORM.event_types.map((x) => [x.name, x])),
    webhook: Object.fromEntries(FORM.webhook_states.map((x) => [x.name, x])),
    breaker: Object.fromEntries(FORM.breaker_states.map((x) => [x.name, x])),
    security: Object.fromEntries(FORM.security.map((x) => [x.name, x])),
  };
  const PAGE_SIZE = 50;
  // A delivery may be sent again once nothing moves on from its status.
  const FINAL_STATUSES = new Set(["sent", "dead", "suppressed", "bounced"]);
  const PREVIEW_DELAY_MS = 350;

  const TEXT = {
    de: {
      "nav.groups": "Kundengruppen",
      "nav.deliveries": "Zustellungen",
      "nav.dead": "Unzustellbare",
      "nav.mailbox": "Postfach",
      signout: "Abmelden",
      "signin.title": "Anmelden",
      "signin.intro":
        "Melden Sie sich mit einem API-Token an (Bereich read oder admin). Ein Token erstellen Sie mit:",
      "signin.token": "Token",
      "signin.submit": "Anmelden",
      "session.ended": "Die Sitzung ist abgelaufen. Bitte melden Sie sich erneut an.",
      "error.network": "Der Server ist nicht erreichbar.",
      readonly: "Nur Lesezugriff: Änderungen können mit diesem Token nicht gespeichert werden.",
      loading: "Wird geladen …",
      "groups.title": "Kundengruppen",
      "groups.empty": "Noch keine Kundengruppen eingerichtet.",
      "groups.code": "Code",
      "groups.name": "Name",
      "groups.version": "Version",
      "groups.none": "keine Einstellungen",
      "groups.add": "Kundengruppe hinzufügen",
      "groups.add.hint":
        "Eine Kundengruppe muss für das Portal eingerichtet sein, bevor E-Mail-Einstellungen gespeichert werden können.",
      "groups.add.submit": "Hinzufügen",
      "tab.emails": "Portal-E-Mails",
      "tab.history": "Versionen",
      "tab.test": "Testversand",
      "tab.raw": "Dokument (YAML)",
      "group.version": "Version {n}",
      "group.noversion": "Noch keine Einstellungen gespeichert",
      save: "Speichern",
      "save.saving": "Wird gespeichert …",
      "save.saved": "Gespeichert als Version {n}.",
      "save.unchanged": "Keine Änderungen; Version {n} bleibt aktuell.",
      "save.invalid": "{n} Fehler – nichts wurde gespeichert.",
      "save.reload": "Neu laden",
      "errors.general": "Fehler",
      "preview.title": "Vorschau",
      "preview.locale": "Sprache der Vorschau",
      "preview.locale.group": "Gruppensprache",
      "preview.subject": "Betreff",
      "preview.to": "An",
      "preview.from": "Von",
      "preview.text": "Textfassung",
      "preview.sources": "Sprache {lang}; Betreff aus {subject}, Inhalt aus {body}",
      "preview.aside": "Nicht berücksichtigt:",
      "preview.failed": "Vorschau nicht möglich:",
      "preview.loading": "Vorschau wird erstellt …",
      "lang.title": "Sprache und Übersetzungen",
      "lang.default": "Sprache der Texte oben (default_locale)",
      "lang.default.hint":
        "Leer lassen für Deutsch. Empfänger erhalten ihre Sprache, sonst diese; leere Felder nehmen den eingebauten Standardtext.",
      "lang.translation": "Übersetzung",
      "lang.tag": "Sprachkennung (z. B. en, fr, de-CH)",
      "lang.add": "Übersetzung hinzufügen",
      "lang.remove": "Übersetzung entfernen",
      "lang.duplicate": "Diese Sprache ist schon vorhanden; führen Sie beide zusammen.",
      "lang.missing": "Geben Sie eine Sprachkennung an, z. B. en.",
      "history.title": "Versionen",
      "history.empty": "Noch keine Versionen.",
      "history.current": "aktuell",
      "history.restores": "stellt Version {n} wieder her",
      "history.by": "von {actor}",
      "history.field": "Feld",
      "history.old": "Vorher",
      "history.new": "Nachher",
      "history.nochanges": "Keine Änderungen.",
      "history.rollback": "Diese Version wiederherstellen",
      "history.rolledback": "Version {old} wiederhergestellt als Version {n}.",
      "test.title": "Testversand",
      "test.intro":
        "Sendet eine E-Mail mit Beispieldaten über den echten Versandweg an eine Adresse; sie wird im Zustellprotokoll als Test markiert.",
      "test.kind": "E-Mail",
      "test.address": "An Adresse",
      "test.locale": "Sprache",
      "test.submit": "Test senden",
      "test.queued": "Eingereiht als {id}.",
      "test.log": "Im Zustellprotokoll ansehen",
      "raw.title": "Einstellungen als YAML",
      "raw.intro":
        "Das ganze Dokument, wie es `dispatcher settings export` zeigt; JSON geht auch. Speichern prüft alles und speichert nur, wenn alles stimmt.",
      "raw.save": "Dokument speichern",
      "deliveries.title": "Zustellungen",
      "deliveries.filter": "Filtern",
      "deliveries.event": "Ereignis-ID",
      "deliveries.group": "Gruppe",
      "deliveries.status": "Status",
      "deliveries.kind": "Art",
      "deliveries.recipient": "Empfänger",
      "deliveries.any": "alle",
      "deliveries.id": "Nr.",
      "deliveries.time": "Zeit",
      "deliveries.attempts": "Versuche",
      "deliveries.reply": "Letzte Antwort",
      "deliveries.test": "Test",
      "deliveries.empty": "Keine Zustellungen gefunden.",
      "deliveries.newer": "← Neuere",
      "deliveries.older": "Ältere →",
      "dead.title": "Unzustellbare Nachrichten",
      "dead.deliveries": "Endgültig gescheiterte Zustellungen",
      "dead.events": "Ereignisse, die nicht verarbeitet werden konnten",
      "dead.rejected": "Abgewiesene Nachrichten (keine gültigen Ereignisse; Absender korrigieren)",
      "dead.none": "Keine.",
      "dead.replaySelected": "Auswahl erneut senden",
      "dead.replayAll": "Alle erneut senden",
      "dead.replayEvent": "Erneut verarbeiten",
      "dead.replayed": "{d} Zustellungen und {e} Ereignisse erneut eingereiht.",
      "dead.reason": "Grund",
      "dead.type": "Typ",
      "mailbox.title": "Postfach",
      "mailbox.intro":
        "Jede E-Mail, die der lokale Mail-Sink angenommen hat, ist als .eml-Datei gespeichert; hier sehen Sie sie so, wie sie ankam.",
      "mailbox.empty": "Noch keine E-Mails angekommen.",
      "mailbox.time": "Empfangen",
      "mailbox.from": "Von",
      "mailbox.to": "An",
      "mailbox.subject": "Betreff",
      "mailbox.nosubject": "(ohne Betreff)",
      "mailbox.newer": "← Neuere",
      "mailbox.older": "Ältere →",
      "mailbox.back": "← Zurück zum Postfach",
      "mailbox.cc": "Kopie",
      "mailbox.date": "Datum",
      "mailbox.messageid": "Message-ID",
      "mailbox.envelope": "Umschlag",
      "mailbox.file": "Datei",
      "mailbox.html": "HTML-Fassung",
      "mailbox.html.note": "Abgeschirmt angezeigt: Skripte, Formulare und externe Inhalte der E-Mail bleiben aus.",
      "mailbox.text": "Textfassung",
      "mailbox.nopart": "Diese E-Mail hat keine solche Fassung.",
      "nav.suppressions": "Sperrliste",
      "nav.label": "Hauptmenü",
      "nav.menu": "Menü",
      "tabs.label": "Bereiche der Kundengruppe",
      skip: "Zum Inhalt springen",
      "nav.relays": "Relais",
      "confirm.cancel": "Abbrechen",
      "unsaved.status": "Ungespeicherte Änderungen",
      "unsaved.title": "Ungespeicherte Änderungen verwerfen?",
      "unsaved.text":
        "Die Portal-E-Mails von {code} haben Änderungen, die noch nicht gespeichert sind. Wenn Sie die Seite verlassen, gehen sie verloren.",
      "unsaved.leave": "Verwerfen und verlassen",
      "unsaved.stay": "Auf der Seite bleiben",
      "unsaved.replace.title": "Ungespeicherte Änderungen ersetzen?",
      "unsaved.replace.text":
        "Die Portal-E-Mails von {code} haben Änderungen, die noch nicht gespeichert sind. Diese Aktion ersetzt sie.",
      "unsaved.replace": "Änderungen verwerfen und fortfahren",
      "text.builtin": "Standardtext übernehmen",
      "text.builtin.hint": "Leer gelassen gilt der grau angezeigte Standardtext.",
      "vars.title": "Variablen dieser E-Mail",
      "vars.hint": "Ein Klick fügt die Variable an der Cursorposition in Betreff oder Inhalt ein.",
      "vars.optional": "kann leer sein",
      "preview.placeholder":
        "Eine Adresse unter „Interne E-Mail-Adressen“ ist noch ungültig; die Vorschau zeigt dafür eine Platzhalteradresse.",
      "path.title": "Versandweg",
      "path.domain": "Absenderdomain",
      "path.relays": "Relais (in Ausfallreihenfolge)",
      "path.dkim": "DKIM-Signatur",
      "path.dkim.signed": "signiert (Selektor {selector})",
      "path.dkim.unsigned": "nicht signiert: für {domain} ist kein Schlüssel hinterlegt",
      "path.none": "Wird mit den ersten gespeicherten Einstellungen (Absender) bestimmt.",
      "path.all": "Alle Relais",
      "path.suppressed":
        "Achtung: {address}, das Postfach für Zugriffsanforderungen dieser Gruppe, steht auf der Sperrliste. Zugriffsanforderungen erreichen das Team nicht.",
      "path.suppressed.link": "Zur Sperrliste",
      "deliveries.actions": "Aktionen",
      "deliveries.details": "Details",
      "deliveries.details.of": "Details zu Zustellung Nr. {id}",
      "deliveries.resend": "Erneut senden",
      "deliveries.resendOf": "erneut von Nr. {id}",
      "deliveries.via": "über {relay}",
      "deliveries.relay": "Relais",
      "deliveries.bounce": "Bounce {status}",
      "deliveries.bouncedAt": "Bounce erhalten",
      "deliveries.bounceStatus": "Bounce-Status",
      "deliveries.bounceText": "Meldung des Empfängerservers",
      "deliveries.feedback": "Rückmeldung",
      "deliveries.webhooks": "Webhooks",
      "deliveries.webhooks.none": "keine",
      "deliveries.message": "Message-ID",
      "deliveries.created": "Angelegt",
      "deliveries.sentAt": "Gesendet am",
      "deliveries.version": "Einstellungsversion",
      "deliveries.uncertain": "Ungewiss: kann angekommen sein",
      "deliveries.forced": "trotz Sperrliste gesendet",
      "deliveries.name": "Name des Empfängers",
      "resend.title": "E-Mail erneut senden?",
      "resend.text":
        "Die E-Mail „{kind}“ von Zustellung Nr. {id} geht noch einmal an {recipient}, als neue Zustellung mit den aktuellen Einstellungen der Gruppe.",
      "resend.done": "Als Zustellung Nr. {id} eingereiht.",
      "resend.suppressed.title": "Die Adresse steht auf der Sperrliste",
      "resend.suppressed.text":
        "{recipient} steht auf der Sperrliste, meist weil eine E-Mail dorthin unzustellbar war. Wenn die Adresse nicht mehr existiert, schadet ein weiterer Versand dem Ruf des Absenders. Ist sie wieder gültig, nehmen Sie sie besser zuerst von der Sperrliste.",
      "resend.force": "Trotzdem senden",
      "resend.suppressed.since": "Auf der Sperrliste seit {since}. Grund: {reason}",
      "supp.title": "Sperrliste",
      "supp.intro":
        "An diese Adressen wird nichts gesendet. Harte Bounces tragen Adressen selbst ein; hier fügen Sie Adressen von Hand hinzu oder nehmen sie wieder heraus.",
      "supp.search": "Suchen (Adresse oder Grund)",
      "supp.searchButton": "Suchen",
      "supp.address": "Adresse",
      "supp.reason": "Grund",
      "supp.since": "Seit",
      "supp.source": "Herkunft",
      "supp.source.delivery": "Bounce von Zustellung Nr. {id}",
      "supp.source.manual": "eingetragen von {actor}",
      "supp.empty": "Die Sperrliste ist leer.",
      "supp.nomatch": "Keine Einträge zu dieser Suche.",
      "supp.count": "{n} Einträge",
      "supp.internal": "Internes Postfach für Zugriffsanforderungen: {groups}",
      "supp.internal.warning":
        "Achtung: {n} gesperrte Adresse(n) sind Postfächer für Zugriffsanforderungen. Für die betroffenen Gruppen erhält das Team keine Zugriffsanforderungen mehr.",
      "supp.add": "Adresse sperren",
      "supp.add.submit": "Zur Sperrliste hinzufügen",
      "supp.add.title": "Adresse sperren?",
      "supp.add.text": "An {address} wird nichts mehr gesendet, bis die Adresse wieder entfernt wird. Grund: {reason}",
      "supp.add.confirm": "Sperren",
      "supp.added": "{address} steht jetzt auf der Sperrliste.",
      "supp.remove": "Entfernen",
      "supp.remove.label": "{address} von der Sperrliste nehmen",
      "supp.remove.title": "Adresse von der Sperrliste nehmen?",
      "supp.remove.text": "An {address} wird wieder gesendet. Tun Sie das nur, wenn die Adresse wieder E-Mails annimmt.",
      "supp.remove.confirm": "Von der Sperrliste nehmen",
      "supp.removed": "{address} wurde von der Sperrliste genommen.",
      "relays.title": "Relais",
      "relays.intro":
        "Über diese Relais verlassen die E-Mails das System. Routen wählen sie nach Absenderdomain oder Kundengruppe, in Ausfallreihenfolge.",
      "relays.single": "Keine Relais-Datei eingerichtet: ein Relais aus DISPATCHER_SMTP_* sendet alle E-Mails.",
      "relays.name": "Name",
      "relays.address": "Adresse",
      "relays.security": "Verschlüsselung",
      "relays.auth": "Anmeldung",
      "relays.state": "Zustand",
      "relays.result": "Ergebnis",
      "relays.check": "Verbindung testen",
      "relays.check.label": "Verbindung zu {name} testen",
      "relays.checking": "Wird getestet …",
      "relays.ok": "Verbindung in Ordnung ({ms} ms)",
      "relays.failed": "Verbindung fehlgeschlagen ({ms} ms)",
      "relays.routes": "Routen",
      "relays.match": "Bedingung",
      "relays.order": "Relais in Ausfallreihenfolge",
      "relays.default": "Alle anderen E-Mails",
      yes: "ja",
      no: "nein",
      absent: "—",
    },
    en: {
      "nav.groups": "Customer groups",
      "nav.deliveries": "Deliveries",
      "nav.dead": "Dead letters",
      "nav.mailbox": "Mailbox",
      signout: "Sign out",
      "signin.title": "Sign in",
      "signin.intro": "Sign in with an API token (scope read or admin). Create one with:",
      "signin.token": "Token",
      "signin.submit": "Sign in",
      "session.ended": "The session has ended. Please sign in again.",
      "error.network": "The server cannot be reached.",
      readonly: "Read-only: this token cannot save changes.",
      loading: "Loading …",
      "groups.title": "Customer groups",
      "groups.empty": "No customer groups set up yet.",
      "groups.code": "Code",
      "groups.name": "Name",
      "groups.version": "Version",
      "groups.none": "no settings",
      "groups.add": "Add a customer group",
      "groups.add.hint":
        "A customer group must be set up for the portal before e-mail settings can be saved for it.",
      "groups.add.submit": "Add",
      "tab.emails": "Portal e-mails",
      "tab.history": "Versions",
      "tab.test": "Test send",
      "tab.raw": "Document (YAML)",
      "group.version": "Version {n}",
      "group.noversion": "No settings saved yet",
      save: "Save",
      "save.saving": "Saving …",
      "save.saved": "Saved as version {n}.",
      "save.unchanged": "No changes; version {n} stays current.",
      "save.invalid": "{n} errors – nothing was saved.",
      "save.reload": "Reload",
      "errors.general": "Errors",
      "preview.title": "Preview",
      "preview.locale": "Preview language",
      "preview.locale.group": "Group language",
      "preview.subject": "Subject",
      "preview.to": "To",
      "preview.from": "From",
      "preview.text": "Plain text",
      "preview.sources": "Language {lang}; subject from {subject}, body from {body}",
      "preview.aside": "Left out:",
      "preview.failed": "No preview:",
      "preview.loading": "Rendering preview …",
      "lang.title": "Language and translations",
      "lang.default": "Language of the texts above (default_locale)",
      "lang.default.hint":
        "Leave empty for German. Recipients get their language, else this one; empty fields take the built-in text.",
      "lang.translation": "Translation",
      "lang.tag": "Language tag (e.g. en, fr, de-CH)",
      "lang.add": "Add a translation",
      "lang.remove": "Remove translation",
      "lang.duplicate": "This language exists already; merge the two.",
      "lang.missing": "Enter a language tag, e.g. en.",
      "history.title": "Versions",
      "history.empty": "No versions yet.",
      "history.current": "current",
      "history.restores": "restores version {n}",
      "history.by": "by {actor}",
      "history.field": "Field",
      "history.old": "Before",
      "history.new": "After",
      "history.nochanges": "No changes.",
      "history.rollback": "Restore this version",
      "history.rolledback": "Restored version {old} as version {n}.",
      "test.title": "Test send",
      "test.intro":
        "Sends one e-mail with sample data through the real pipeline to an address; the delivery log marks it as a test.",
      "test.kind": "E-mail",
      "test.address": "To address",
      "test.locale": "Language",
      "test.submit": "Send test",
      "test.queued": "Queued as {id}.",
      "test.log": "See it in the delivery log",
      "raw.title": "Settings as YAML",
      "raw.intro":
        "The whole document, as `dispatcher settings export` shows it; JSON works too. Saving checks everything and saves only if all of it is valid.",
      "raw.save": "Save document",
      "deliveries.title": "Deliveries",
      "deliveries.filter": "Filter",
      "deliveries.event": "Event ID",
      "deliveries.group": "Group",
      "deliveries.status": "Status",
      "deliveries.kind": "Kind",
      "deliveries.recipient": "Recipient",
      "deliveries.any": "any",
      "deliveries.id": "No.",
      "deliveries.time": "Time",
      "deliveries.attempts": "Attempts",
      "deliveries.reply": "Last reply",
      "deliveries.test": "Test",
      "deliveries.empty": "No deliveries found.",
      "deliveries.newer": "← Newer",
      "deliveries.older": "Older →",
      "dead.title": "Dead letters",
      "dead.deliveries": "Deliveries that failed for good",
      "dead.events": "Events that could not be processed",
      "dead.rejected": "Rejected messages (not valid events; fix the publisher)",
      "dead.none": "None.",
      "dead.replaySelected": "Send selected again",
      "dead.replayAll": "Send all again",
      "dead.replayEvent": "Process again",
      "dead.replayed": "Queued {d} deliveries and {e} events again.",
      "dead.reason": "Reason",
      "dead.type": "Type",
      "mailbox.title": "Mailbox",
      "mailbox.intro":
        "Every e-mail the local mail sink accepted is kept as an .eml file; here you see it as it arrived.",
      "mailbox.empty": "No e-mails have arrived yet.",
      "mailbox.time": "Received",
      "mailbox.from": "From",
      "mailbox.to": "To",
      "mailbox.subject": "Subject",
      "mailbox.nosubject": "(no subject)",
      "mailbox.newer": "← Newer",
      "mailbox.older": "Older →",
      "mailbox.back": "← Back to the mailbox",
      "mailbox.cc": "Cc",
      "mailbox.date": "Date",
      "mailbox.messageid": "Message-ID",
      "mailbox.envelope": "Envelope",
      "mailbox.file": "File",
      "mailbox.html": "HTML version",
      "mailbox.html.note": "Shown sandboxed: the e-mail's scripts, forms and external content stay off.",
      "mailbox.text": "Plain text",
      "mailbox.nopart": "This e-mail has no such version.",
      "nav.suppressions": "Suppression list",
      "nav.label": "Main menu",
      "nav.menu": "Menu",
      "tabs.label": "Parts of the customer group",
      skip: "Skip to content",
      "nav.relays": "Relays",
      "confirm.cancel": "Cancel",
      "unsaved.status": "Unsaved changes",
      "unsaved.title": "Discard unsaved changes?",
      "unsaved.text":
        "The portal e-mails of {code} have changes that are not saved yet. If you leave the page, they are lost.",
      "unsaved.leave": "Discard and leave",
      "unsaved.stay": "Stay on this page",
      "unsaved.replace.title": "Replace unsaved changes?",
      "unsaved.replace.text": "The portal e-mails of {code} have changes that are not saved yet. This replaces them.",
      "unsaved.replace": "Discard changes and continue",
      "text.builtin": "Use the built-in text",
      "text.builtin.hint": "Left empty, the built-in text shown in grey applies.",
      "vars.title": "Variables of this e-mail",
      "vars.hint": "A click inserts the variable at the cursor in the subject or body.",
      "vars.optional": "may be empty",
      "preview.placeholder":
        "An address under \u201cInternal e-mail addresses\u201d is not valid yet; the preview shows a placeholder address instead.",
      "path.title": "Delivery path",
      "path.domain": "Sender domain",
      "path.relays": "Relays (failover order)",
      "path.dkim": "DKIM signature",
      "path.dkim.signed": "signed (selector {selector})",
      "path.dkim.unsigned": "not signed: there is no key for {domain}",
      "path.none": "Known once the first settings (the sender) are saved.",
      "path.all": "All relays",
      "path.suppressed":
        "Warning: {address}, this group's inbox for access requests, is on the suppression list. Access requests do not reach the team.",
      "path.suppressed.link": "Open the suppression list",
      "deliveries.actions": "Actions",
      "deliveries.details": "Details",
      "deliveries.details.of": "Details of delivery no. {id}",
      "deliveries.resend": "Send again",
      "deliveries.resendOf": "resend of no. {id}",
      "deliveries.via": "via {relay}",
      "deliveries.relay": "Relay",
      "deliveries.bounce": "Bounce {status}",
      "deliveries.bouncedAt": "Bounce received",
      "deliveries.bounceStatus": "Bounce status",
      "deliveries.bounceText": "The recipient server's report",
      "deliveries.feedback": "Feedback",
      "deliveries.webhooks": "Webhooks",
      "deliveries.webhooks.none": "none",
      "deliveries.message": "Message-ID",
      "deliveries.created": "Created",
      "deliveries.sentAt": "Sent at",
      "deliveries.version": "Settings version",
      "deliveries.uncertain": "Uncertain: it may have arrived",
      "deliveries.forced": "sent despite the suppression list",
      "deliveries.name": "Recipient's name",
      "resend.title": "Send the e-mail again?",
      "resend.text":
        "The \u201c{kind}\u201d e-mail of delivery no. {id} goes to {recipient} once more, as a new delivery with the group's current settings.",
      "resend.done": "Queued as delivery no. {id}.",
      "resend.suppressed.title": "The address is on the suppression list",
      "resend.suppressed.text":
        "{recipient} is on the suppression list, usually because an e-mail to it bounced. If the address no longer exists, sending again harms the sender's reputation. If it works again, better take it off the suppression list first.",
      "resend.force": "Send anyway",
      "resend.suppressed.since": "On the suppression list since {since}. Reason: {reason}",
      "supp.title": "Suppression list",
      "supp.intro":
        "Nothing is sent to these addresses. Hard bounces add addresses by themselves; here you add addresses by hand or take them off again.",
      "supp.search": "Search (address or reason)",
      "supp.searchButton": "Search",
      "supp.address": "Address",
      "supp.reason": "Reason",
      "supp.since": "Since",
      "supp.source": "Source",
      "supp.source.delivery": "Bounce of delivery no. {id}",
      "supp.source.manual": "added by {actor}",
      "supp.empty": "The suppression list is empty.",
      "supp.nomatch": "No entries match this search.",
      "supp.count": "{n} entries",
      "supp.internal": "Internal inbox for access requests: {groups}",
      "supp.internal.warning":
        "Warning: {n} suppressed address(es) are inboxes for access requests. For those groups the team gets no access requests any more.",
      "supp.add": "Suppress an address",
      "supp.add.submit": "Add to the suppression list",
      "supp.add.title": "Suppress the address?",
      "supp.add.text": "Nothing more is sent to {address} until the address is taken off the list. Reason: {reason}",
      "supp.add.confirm": "Suppress",
      "supp.added": "{address} is now on the suppression list.",
      "supp.remove": "Remove",
      "supp.remove.label": "Take {address} off the suppression list",
      "supp.remove.title": "Take the address off the suppression list?",
      "supp.remove.text": "E-mails go to {address} again. Do this only when the address accepts e-mail again.",
      "supp.remove.confirm": "Take off the list",
      "supp.removed": "{address} was taken off the suppression list.",
      "relays.title": "Relays",
      "relays.intro":
        "E-mails leave through these relays. Routes choose them by sender domain or customer group, in failover order.",
      "relays.single": "No relays file set up: one relay from DISPATCHER_SMTP_* sends every e-mail.",
      "relays.name": "Name",
      "relays.address": "Address",
      "relays.security": "Security",
      "relays.auth": "Login",
      "relays.state": "State",
      "relays.result": "Result",
      "relays.check": "Test connection",
      "relays.check.label": "Test the connection to {name}",
      "relays.checking": "Testing …",
      "relays.ok": "Connection OK ({ms} ms)",
      "relays.failed": "Connection failed ({ms} ms)",
      "relays.routes": "Routes",
      "relays.match": "Condition",
      "relays.order": "Relays in failover order",
      "relays.default": "All other e-mails",
      yes: "yes",
      no: "no",
      absent: "—",
    },
  };

  const state = {
    lang: localStorage.getItem("dispatcher.lang") === "en" ? "en" : "de",
    session: null,
    // Whether this server has a local mail sink to show (null: not asked yet).
    mailbox: null,
    editor: null,
    ticket: 0,
  };
  const app = document.getElementById("app");

  // Helpers ------------------------------------------------------------------

  function t(key, vars) {
    let text = TEXT[state.lang][key] ?? TEXT.de[key] ?? key;
    for (const [name, value] of Object.entries(vars || {})) {
      text = text.replaceAll(`{${name}}`, String(value));
    }
    return text;
  }

  function label(item, base) {
    return item[`${base}_${state.lang}`] ?? item[`${base}_de`];
  }

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "on") {
        for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
      } else if (key === "class") {
        node.className = value;
      } else if (key === "text") {
        node.textContent = value;
      } else if (key === "value") {
        node.value = value;
      } else if (key === "checked" || key === "disabled" || key === "hidden") {
        node[key] = Boolean(value);
      } else {
        node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function mount(...nodes) {
    app.replaceChildren(...nodes.flat().filter(Boolean));
    wrapTables(app);
  }

  // Every table scrolls inside its own box, named by the heading above it,
  // so that narrow windows never scroll the whole page sideways.
  function wrapTables(root) {
    for (const table of root.querySelectorAll("table")) {
      if (table.parentElement.classList.contains("table-scroll")) continue;
      const holder = table.closest("section, article, form") || root;
      const heading = holder.querySelector("h1, h2, h3, strong") || root.querySelector("h1");
      const box = h("div", { class: "table-scroll", role: "region", tabindex: "0", "aria-label": heading ? heading.textContent : null });
      table.replaceWith(box);
      box.append(table);
    }
  }

  const enc = encodeURIComponent;

  function canAdmin() {
    return state.session !== null && state.session.scope === "admin";
  }

  function when(value) {
    if (!value) return t("absent");
    return new Date(value).toLocaleString(state.lang === "de" ? "de-DE" : "en-GB");
  }

  function problemText(data) {
    if (data && typeof data.detail === "string") return data.detail;
    if (data && Array.isArray(data.detail)) {
      return data.detail.map(problemLine).join("\n");
    }
    return typeof data === "string" && data ? data : "?";
  }

  function kindLabel(name) {
    const kind = KIND[name];
    return kind ? label(kind, "label") : name;
  }

  // An identifier of the record (a status, an event type, ...) in the page's
  // language; an unknown one shows as it is rather than not at all.
  function named(table, name) {
    const item = NAMES[table][name];
    return item ? label(item, "label") : name;
  }

  function namedHint(table, name) {
    const item = NAMES[table][name];
    return item ? label(item, "hint") || null : null;
  }

  // A document path ("password_reset.subject") as the form names it.
  function fieldName(path) {
    const parts = path.replace(/^document\./, "").split(".");
    if (parts[0] === "translations" && parts.length >= 3) {
      const section = SECTION[parts[2]];
      const field = section && section.fields.find((f) => f.key === parts[3]);
      const where = section ? label(section, "title") : parts[2];
      return `${t("lang.translation")} ${parts[1]} › ${where}${field ? ` › ${label(field, "label")}` : ""}`;
    }
    const section = SECTION[parts[0]];
    if (!section) return parts[0] === "default_locale" ? t("lang.default") : path;
    const field = section.fields.find((f) => f.key === parts[1]);
    return `${label(section, "title")}${field ? ` › ${label(field, "label")}` : ""}`;
  }

  function problemLine(error) {
    return error.path ? `${fieldName(error.path)}: ${error.message}` : error.message;
  }

  async function call(method, path, body, options) {
    const opts = options || {};
    // The server answers in the page's language (its messages, not just ours).
    const headers = {
      Accept: opts.accept || "application/json",
      "Accept-Language": state.lang,
      ...(opts.headers || {}),
    };
    let payload;
    if (body !== undefined) {
      headers["Content-Type"] = opts.contentType || "application/json";
      payload = opts.contentType ? body : JSON.stringify(body);
    }
    if (method !== "GET" && state.session) headers["X-CSRF-Token"] = state.session.csrf_token;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: payload,
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      return { status: 0, ok: false, data: { detail: t("error.network") }, headers: new Headers() };
    }
    const text = await response.text();
    let data = text;
    if ((response.headers.get("content-type") || "").includes("json") && text) {
      try {
        data = JSON.parse(text);
      } catch (error) {
        data = text;
      }
    }
    if (response.status === 401 && !opts.signIn && state.session !== null) {
      // The session ended (expired, or its token was revoked): pages still
      // loading must not draw over the sign-in form.
      state.session = null;
      state.editor = null;
      ticket();
      showSignIn(t("session.ended"));
    }
    return { status: response.status, ok: response.ok, data, headers: response.headers };
  }

  function errorBox(result) {
    return h("div", { class: "notice error", role: "alert", text: problemText(result.data) });
  }

  function ticket() {
    state.ticket += 1;
    return state.ticket;
  }

  // A modal question. Resolves true when confirmed; Escape and the cancel
  // button resolve false. The focus starts on the safe choice for dangerous
  // questions and returns where it was afterwards.
  function confirmDialog({ title, text, confirm, cancel, danger, extra, id }) {
    return new Promise((resolve) => {
      const before = document.activeElement;
      const titleId = `${id || "dialog"}-title`;
      const textId = `${id || "dialog"}-text`;
      const yes = h("button", { type: "submit", value: "ok", class: danger ? "primary danger-fill" : "primary", "data-dialog": "confirm", text: confirm });
      const no = h("button", { type: "submit", value: "cancel", "data-dialog": "cancel", text: cancel || t("confirm.cancel") });
      const dialog = h(
        "dialog",
        {
          class: `dialog${danger ? " dialog-danger" : ""}`,
          id: id || "dialog",
          role: danger ? "alertdialog" : null,
          "aria-labelledby": titleId,
          "aria-describedby": textId,
        },
        h(
          "form",
          { method: "dialog" },
          h("h2", { id: titleId, text: title }),
          h("p", { id: textId, text }),
          extra || null,
          h("div", { class: "actions dialog-actions" }, no, yes),
        ),
      );
      dialog.addEventListener("close", () => {
        dialog.remove();
        if (before && before.isConnected && typeof before.focus === "function") before.focus();
        resolve(dialog.returnValue === "ok");
      });
      document.body.append(dialog);
      dialog.showModal();
      (danger ? no : yes).focus();
    });
  }

  function confirmLeave() {
    return confirmDialog({
      id: "unsaved-dialog",
      title: t("unsaved.title"),
      text: t("unsaved.text", { code: state.editor.code }),
      confirm: t("unsaved.leave"),
      cancel: t("unsaved.stay"),
      danger: true,
    });
  }

  // Before an action that reloads the editor (restore, YAML save, reload).
  async function confirmReplace() {
    if (!isDirty(state.editor)) return true;
    return confirmDialog({
      id: "unsaved-dialog",
      title: t("unsaved.replace.title"),
      text: t("unsaved.replace.text", { code: state.editor.code }),
      confirm: t("unsaved.replace"),
      danger: true,
    });
  }

  // Frame: header, language, sign-in -----------------------------------------

  function updateFrame() {
    document.documentElement.lang = state.lang;
    for (const node of document.querySelectorAll("[data-i18n]")) {
      node.textContent = t(node.dataset.i18n);
    }
    for (const node of document.querySelectorAll("[data-i18n-label]")) {
      node.setAttribute("aria-label", t(node.dataset.i18nLabel));
    }
    for (const button of document.querySelectorAll("[data-lang]")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
    }
    const signedIn = state.session !== null;
    document.getElementById("nav").hidden = !signedIn;
    document.getElementById("menu-toggle").hidden = !signedIn;
    document.getElementById("nav-mailbox").hidden = !signedIn || state.mailbox !== true;
    document.getElementById("who").hidden = !signedIn;
    if (signedIn) {
      document.getElementById("who-name").textContent =
        `${state.session.name} (${state.session.scope})`;
    }
  }

  function markNav(current) {
    let name = "";
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (link.dataset.nav === current) {
        link.setAttribute("aria-current", "page");
        name = link.textContent;
      } else {
        link.removeAttribute("aria-current");
      }
    }
    document.getElementById("menu-current").textContent = name;
    showMenu(false);
  }

  // Below 1000 px the menu folds into a button, so that the bar stays one line.
  function showMenu(open) {
    const toggle = document.getElementById("menu-toggle");
    toggle.setAttribute("aria-expanded", String(open));
    document.querySelector(".topbar").classList.toggle("menu-open", open);
  }

  function showSignIn(message) {
    updateFrame();
    const error = h("p", { class: "field-error", id: "signin-error", role: "alert", text: message || "" });
    const input = h("input", {
      type: "password",
      id: "token",
      name: "token",
      autocomplete: "off",
      required: true,
      "aria-describedby": "signin-error",
    });
    const form = h(
      "form",
      { class: "card signin", id: "signin-form", on: { submit: signIn } },
      h("h1", { text: t("signin.title") }),
      h("p", { text: t("signin.intro") }),
      h("pre", { class: "command", text: "dispatcher tokens create --scope admin --name NAME" }),
      h("label", { for: "token", text: t("signin.token") }),
      input,
      error,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: t("signin.submit") })),
    );
    mount(form);
    input.focus();

    async function signIn(event) {
      event.preventDefault();
      error.textContent = "";
      const result = await call("POST", "/ui/session", { token: input.value }, { signIn: true });
      if (!result.ok) {
        error.textContent = problemText(result.data);
        return;
      }
      state.session = result.data;
      input.value = "";
      updateFrame();
      route();
      probeMailbox();
    }
  }

  async function signOut() {
    if (state.editor && isDirty(state.editor) && !(await confirmLeave())) return;
    await call("DELETE", "/ui/session", undefined, { signIn: true });
    state.session = null;
    state.mailbox = null;
    state.editor = null;
    history.replaceState(null, "", "#/groups");
    showSignIn();
  }

  // Routing ------------------------------------------------------------------

  // Whether a hash stays with the group whose e-mails are being edited: its
  // tabs keep the draft.
  function staysWithEditor(hash) {
    const parts = (hash.replace(/^#/, "").split("?")[0] || "").split("/").filter(Boolean).map(decodeURIComponent);
    return parts[0] === "groups" && state.editor !== null && parts[1] === state.editor.code;
  }

  async function hashChanged() {
    const target = location.hash;
    if (state.editor && isDirty(state.editor) && !staysWithEditor(target)) {
      // Stay until the person decides; the address bar shows where they are.
      history.replaceState(null, "", state.shownHash || "#/groups");
      if (!(await confirmLeave())) return;
      state.editor = null;
      history.pushState(null, "", target);
    }
    route();
  }

  function route() {
    state.shownHash = location.hash;
    updateFrame();
    if (state.session === null) {
      showSignIn();
      return;
    }
    const hash = location.hash.replace(/^#/, "") || "/groups";
    const [path, query] = hash.split("?");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    const params = new URLSearchParams(query || "");
    markNav(parts[0] || "groups");
    if (parts[0] === "groups" && parts[1]) {
      groupPage(parts[1], parts[2] || "emails");
    } else if (parts[0] === "deliveries") {
      deliveriesPage(params);
    } else if (parts[0] === "dead-letters") {
      deadLettersPage();
    } else if (parts[0] === "suppressions") {
      suppressionsPage(params);
    } else if (parts[0] === "relays") {
      relaysPage();
    } else if (parts[0] === "mailbox" && parts[1]) {
      mailMessagePage(parts[1]);
    } else if (parts[0] === "mailbox") {
      mailboxPage(params);
    } else {
      groupsPage();
    }
  }

  // Groups -------------------------------------------------------------------

  async function groupsPage() {
    const mine = ticket();
    mount(h("p", { class: "muted", text: t("loading") }));
    const result = await call("GET", "/v1/groups");
    if (mine !== state.ticket) return;
    if (!result.ok) {
      mount(errorBox(result));
      return;
    }
    const rows = result.data.map((group) =>
      h(
        "tr",
        { "data-group": group.code },
        h("td", {}, h("a", { href: `#/groups/${enc(group.code)}`, text: group.code })),
        h("td", { text: group.name }),
        h("td", {
          text: group.current_version ? t("group.version", { n: group.current_version }) : t("groups.none"),
        }),
      ),
    );
    const table = rows.length
      ? h(
          "table",
          { class: "list", id: "groups" },
          h(
            "thead",
            {},
            h("tr", {}, h("th", { text: t("groups.code") }), h("th", { text: t("groups.name") }), h("th", { text: t("groups.version") })),
          ),
          h("tbody", {}, rows),
        )
      : h("p", { class: "muted", text: t("groups.empty") });
    mount(h("h1", { text: t("groups.title") }), table, canAdmin() ? addGroupForm() : null);
  }

  function addGroupForm() {
    const fields = {
      code: simpleField("code", t("groups.code"), "input", { placeholder: "RETAIL" }),
      name: simpleField("name", t("groups.name"), "input", { placeholder: "Retail customers" }),
    };
    const general = h("div", { class: "notice error", hidden: true, role: "alert" });
    const form = h(
      "form",
      { class: "card", id: "add-group", on: { submit: add } },
      h("h2", { text: t("groups.add") }),
      h("p", { class: "muted", text: t("groups.add.hint") }),
      h("div", { class: "row" }, fields.code.node, fields.name.node),
      general,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: t("groups.add.submit") })),
    );
    return form;

    async function add(event) {
      event.preventDefault();
      clearFieldErrors(form);
      general.hidden = true;
      const code = fields.code.input.value.trim();
      const result = await call("POST", "/v1/groups", { code, name: fields.name.input.value });
      if (result.ok) {
        location.hash = `#/groups/${enc(code)}`;
      } else if (result.status === 422) {
        const rest = placeErrors(form, result.data.detail);
        if (rest.length) showGeneral(general, rest);
      } else {
        general.hidden = false;
        general.textContent = problemText(result.data);
      }
    }
  }

  // A labelled input with its error line; data-field names it for errors.
  function simpleField(path, text, tag, attrs) {
    const id = `f-${path.replace(/[^A-Za-z0-9_-]/g, "-")}`;
    const input = h(tag, { id, name: path, "aria-describedby": `${id}-error`, ...(attrs || {}) });
    const node = h(
      "div",
      { class: "field", "data-field": path },
      h("label", { for: id, text }),
      input,
      h("p", { class: "field-error", id: `${id}-error`, "data-error-for": path }),
    );
    return { node, input };
  }

  function clearFieldErrors(root) {
    for (const node of root.querySelectorAll(".field-error")) node.textContent = "";
    for (const node of root.querySelectorAll(".invalid")) node.classList.remove("invalid");
    for (const node of root.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  // Put each error next to its field; return the ones that match no field.
  function placeErrors(root, errors, locate) {
    const rest = [];
    let first = null;
    for (const error of errors) {
      const field = (locate || defaultLocate)(root, error.path);
      if (!field) {
        rest.push(error);
        continue;
      }
      const line = field.querySelector(":scope > .field-error");
      if (!line) {
        rest.push(error);
        continue;
      }
      line.textContent = line.textContent ? `${line.textContent}\n${error.message}` : error.message;
      field.classList.add("invalid");
      // A collapsed translation must open to show its error.
      const block = field.closest("details");
      if (block) block.open = true;
      const input = field.querySelector(
        ":scope > input, :scope > textarea, :scope > select, :scope > label > input",
      );
      if (input) {
        input.setAttribute("aria-invalid", "true");
        first = first || input;
      }
    }
    if (first) {
      first.focus({ preventScroll: true });
      first.scrollIntoView({ block: "center" });
    }
    return rest;
  }

  function defaultLocate(root, path) {
    let candidate = path;
    while (candidate) {
      const node = root.querySelector(`[data-field="${CSS.escape(candidate)}"]`);
      if (node) return node;
      const cut = candidate.lastIndexOf(".");
      candidate = cut > 0 ? candidate.slice(0, cut) : "";
    }
    return null;
  }

  function showGeneral(box, errors) {
    box.hidden = false;
    box.replaceChildren(
      h("strong", { text: t("errors.general") }),
      h("ul", {}, errors.map((e) => h("li", { text: problemLine(e) }))),
    );
  }

  // One group: header and tabs -------------------------------------------------

  const TABS = ["emails", "history", "test", "raw"];

  async function groupPage(code, tab) {
    const mine = ticket();
    const group = await call("GET", `/v1/groups/${enc(code)}`);
    if (mine !== state.ticket) return;
    if (!group.ok) {
      mount(errorBox(group));
      return;
    }
    if (!state.editor || state.editor.code !== code) {
      const loaded = await call("GET", `/v1/groups/${enc(code)}/settings`);
      if (mine !== state.ticket) return;
      if (loaded.ok) {
        state.editor = newEditor(code, etagVersion(loaded.headers), loaded.data);
      } else if (loaded.status === 404) {
        state.editor = newEditor(code, null, {});
      } else {
        mount(errorBox(loaded));
        return;
      }
    }
    const tablist = h(
      "div",
      { class: "tabs", role: "tablist", "aria-label": t("tabs.label"), on: { keydown: tabKeys } },
      TABS.map((key) =>
        h("a", {
          href: tabHref(code, key),
          role: "tab",
          id: `tab-${key}`,
          "data-tab": key,
          "aria-selected": String(key === tab),
          "aria-controls": "tabpanel",
          tabindex: key === tab ? "0" : "-1",
          text: t(`tab.${key}`),
        }),
      ),
    );
    const header = h(
      "div",
      { class: "group-head" },
      h("h1", {}, h("span", { class: "code", text: group.data.code }), " ", group.data.name),
      h("p", {
        class: "muted",
        id: "group-version",
        text: state.editor.version ? t("group.version", { n: state.editor.version }) : t("group.noversion"),
      }),
      deliveryPath(group.data),
      h("div", { id: "inbox-warning" }),
      tablist,
    );
    const readonly = canAdmin() ? null : h("p", { class: "notice", id: "readonly", text: t("readonly") });
    let content;
    if (tab === "history") content = await historyTab(code, mine);
    else if (tab === "test") content = testTab(code);
    else if (tab === "raw") content = await rawTab(code, mine);
    else content = emailsTab();
    if (mine !== state.ticket) return;
    mount(header, readonly, h("div", { role: "tabpanel", id: "tabpanel", "aria-labelledby": `tab-${tab}` }, content));
    if (state.focusTab) {
      const selected = document.getElementById(`tab-${state.focusTab}`);
      state.focusTab = null;
      if (selected) selected.focus();
    }
    if (tab === "emails") previewAll(0);
    inboxWarning(code, mine);

    // Arrow keys move between the tabs (and open them), Home and End jump.
    function tabKeys(event) {
      const index = TABS.indexOf(tab);
      const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: TABS.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      const next = TABS[(moves[event.key] + TABS.length) % TABS.length];
      if (next === tab) return;
      state.focusTab = next;
      location.hash = tabHref(code, next);
    }
  }

  function tabHref(code, key) {
    return `#/groups/${enc(code)}${key === "emails" ? "" : `/${key}`}`;
  }

  // Which relays the group's e-mails take, and whether they are signed.
  function deliveryPath(group) {
    const path = group.delivery_path;
    const item = (key, ...value) => [h("dt", { text: t(key) }), h("dd", {}, ...value)];
    return h(
      "section",
      { class: "path", id: "delivery-path", "aria-labelledby": "delivery-path-title" },
      h("h2", { id: "delivery-path-title", class: "path-title", text: t("path.title") }),
      path
        ? h(
            "dl",
            { class: "path-list" },
            item("path.domain", h("code", { text: path.sender_domain })),
            item(
              "path.relays",
              path.relays.map((name, index) => [index ? " → " : "", h("span", { class: "relay-name", "data-relay": name, text: name })]),
              " ",
              h("a", { href: "#/relays", class: "path-link", text: t("path.all") }),
            ),
            item(
              "path.dkim",
              path.dkim_selector
                ? h("span", { class: "badge good", id: "dkim-state", text: t("path.dkim.signed", { selector: path.dkim_selector }) })
                : h("span", { class: "badge warn", id: "dkim-state", text: t("path.dkim.unsigned", { domain: path.sender_domain }) }),
            ),
          )
        : h("p", { class: "muted", text: t("path.none") }),
    );
  }

  // A suppressed access-request inbox means staff miss access requests.
  async function inboxWarning(code, mine) {
    const address = state.editor && state.editor.saved.internal_addresses
      ? state.editor.saved.internal_addresses.access_requests_to
      : "";
    if (!address) return;
    const result = await call("GET", `/v1/suppressions?search=${enc(address)}&limit=20`);
    if (mine !== state.ticket || !result.ok) return;
    const hit = result.data.items.find((entry) => entry.internal_for_groups.includes(code));
    const box = document.getElementById("inbox-warning");
    if (!hit || !box) return;
    box.replaceChildren(
      h(
        "p",
        { class: "notice error", role: "alert" },
        t("path.suppressed", { address: hit.address }),
        " ",
        h("a", { href: `#/suppressions?search=${enc(hit.address)}`, text: t("path.suppressed.link") }),
      ),
    );
  }

  function etagVersion(headers) {
    const digits = (headers.get("ETag") || "").replace(/\D/g, "");
    return digits ? Number(digits) : null;
  }

  function setVersion(version) {
    state.editor.version = version;
    const line = document.getElementById("group-version");
    if (line) line.textContent = t("group.version", { n: version });
  }

  // The Portal-E-Mails form ------------------------------------------------------

  function newEditor(code, version, doc) {
    const values = {};
    for (const section of FORM.sections) {
      for (const field of section.fields) {
        const value = (doc[section.key] || {})[field.key];
        values[`${section.key}.${field.key}`] = field.type === "checkbox" ? value === true : (value ?? "");
      }
    }
    const translations = Object.entries(doc.translations || {}).map(([tag, sections]) => {
      const texts = {};
      for (const section of TEXT_SECTIONS) {
        for (const key of ["subject", "body"]) texts[`${section.key}.${key}`] = (sections[section.key] || {})[key] ?? "";
      }
      return { tag, values: texts };
    });
    const editor = {
      code,
      version,
      values,
      defaultLocale: doc.default_locale || "",
      translations,
      timers: {},
      sequence: {},
      locales: {},
      panels: {},
      // The text field of each section that had the focus last: variables go there.
      lastText: {},
      saved: doc,
      baseline: "",
    };
    editor.baseline = JSON.stringify(buildDocument(editor));
    return editor;
  }

  // Only changes that could be saved count: a read token may try texts out.
  function isDirty(editor) {
    return Boolean(editor) && canAdmin() && JSON.stringify(buildDocument(editor)) !== editor.baseline;
  }

  function refreshPlaceholders() {
    const editor = state.editor;
    for (const node of document.querySelectorAll("#portal-emails [data-path]")) {
      const [sectionKey, fieldKey] = node.dataset.path.split(".");
      if (fieldKey === "subject" || fieldKey === "body") {
        node.placeholder = builtinText(editor.defaultLocale, sectionKey, fieldKey);
      }
    }
  }

  function showDirty() {
    const flag = document.getElementById("unsaved");
    if (flag && state.editor) flag.hidden = !isDirty(state.editor);
  }

  // The language whose built-in texts apply to the group's own texts.
  function builtinLocale(tag) {
    const language = (tag || "de").toLowerCase().split(/[-_]/)[0];
    return FORM.builtin[language] ? language : "en";
  }

  function builtinText(locale, sectionKey, fieldKey) {
    const texts = FORM.builtin[builtinLocale(locale)][sectionKey];
    return texts ? texts[fieldKey] : "";
  }

  function buildDocument(editor) {
    const v = editor.values;
    const doc = {
      internal_addresses: {
        access_requests_to: v["internal_addresses.access_requests_to"],
        send_from: v["internal_addresses.send_from"],
      },
    };
    for (const section of TEXT_SECTIONS) {
      const entry = {};
      for (const field of section.fields) {
        const value = v[`${section.key}.${field.key}`];
        if (field.type === "checkbox") entry[field.key] = value === true;
        else if (value !== "") entry[field.key] = value;
      }
      if (Object.keys(entry).length) doc[section.key] = entry;
    }
    if (editor.defaultLocale.trim() !== "") doc.default_locale = editor.defaultLocale;
    const translations = {};
    for (const translation of editor.translations) {
      const sections = {};
      for (const section of TEXT_SECTIONS) {
        const entry = {};
        for (const key of ["subject", "body"]) {
          const value = translation.values[`${section.key}.${key}`];
          if (value !== "") entry[key] = value;
        }
        if (Object.keys(entry).length) sections[section.key] = entry;
      }
      if (translation.tag !== "" && !(translation.tag in translations)) translations[translation.tag] = sections;
    }
    if (Object.keys(translations).length) doc.translations = translations;
    return doc;
  }

  // Problems the server cannot see, because the document is a mapping.
  function localProblems(editor) {
    const problems = [];
    const seen = new Set();
    editor.translations.forEach((translation, index) => {
      if (translation.tag.trim() === "") problems.push({ path: `t${index}.tag`, message: t("lang.missing") });
      else if (seen.has(translation.tag)) problems.push({ path: `t${index}.tag`, message: t("lang.duplicate") });
      seen.add(translation.tag);
    });
    return problems;
  }

  function emailsTab() {
    const editor = state.editor;
    editor.panels = {};
    const general = h("div", { class: "notice error", id: "form-errors", hidden: true, role: "alert" });
    const status = h("span", { id: "save-status", role: "status", "data-state": "idle" });
    const form = h(
      "form",
      { class: "portal-form", id: "portal-emails", novalidate: true, on: { submit: save } },
      h("h2", { text: t("tab.emails") }),
      general,
      FORM.sections.map((section) => sectionCard(section)),
      languageCard(),
      h(
        "div",
        { class: "actions sticky" },
        canAdmin() ? h("button", { type: "submit", class: "primary", id: "save", text: t("save") }) : null,
        h("span", { class: "unsaved", id: "unsaved", hidden: !isDirty(editor), text: t("unsaved.status") }),
        status,
      ),
    );
    return form;

    async function save(event) {
      event.preventDefault();
      clearFieldErrors(form);
      general.hidden = true;
      const local = localProblems(editor);
      if (local.length) {
        placeErrors(form, local, locate);
        report("invalid", t("save.invalid", { n: local.length }));
        return;
      }
      const button = document.getElementById("save");
      button.disabled = true;
      report("saving", t("save.saving"));
      const headers = editor.version ? { "If-Match": `"${editor.version}"` } : {};
      const sent = buildDocument(editor);
      const result = await call("PUT", `/v1/groups/${enc(editor.code)}/settings`, sent, { headers });
      button.disabled = false;
      if (result.ok) {
        setVersion(result.data.version);
        editor.saved = sent;
        editor.baseline = JSON.stringify(sent);
        showDirty();
        report("saved", t(result.data.created ? "save.saved" : "save.unchanged", { n: result.data.version }));
      } else if (result.status === 422) {
        const rest = placeErrors(form, result.data.detail, locate);
        if (rest.length) showGeneral(general, rest);
        report("invalid", t("save.invalid", { n: result.data.detail.length }));
        // Each preview shows what it can of the draft now, with its own errors.
        previewAll(0);
      } else if (result.status === 409) {
        report("error", problemText(result.data));
        status.append(
          " ",
          h("button", {
            type: "button",
            text: t("save.reload"),
            on: {
              click: async () => {
                if (!(await confirmReplace())) return;
                state.editor = null;
                route();
              },
            },
          }),
        );
      } else {
        report("error", problemText(result.data));
      }
    }

    function report(kind, text) {
      status.dataset.state = kind;
      status.className = `status-${kind}`;
      status.textContent = text;
    }

    // Error paths name document fields; translations are found by their tag.
    function locate(root, path) {
      if (path.startsWith("translations.")) {
        const [, tag, ...rest] = path.split(".");
        const index = editor.translations.findIndex((item) => item.tag === tag);
        if (index >= 0) {
          const inner = rest.length >= 2 ? `t${index}.${rest[0]}.${rest[1]}` : `t${index}.tag`;
          return root.querySelector(`[data-field="${CSS.escape(inner)}"]`) || root.querySelector(`[data-field="t${index}.tag"]`);
        }
        return root.querySelector('[data-field="translations"]');
      }
      return defaultLocate(root, path);
    }
  }

  function sectionCard(section) {
    const editor = state.editor;
    const fields = section.fields.map((field) => fieldRow(section, field));
    const titleId = `section-${section.key}-title`;
    return h(
      "section",
      { class: "card", "data-section": section.key, id: `section-${section.key}`, "aria-labelledby": titleId },
      h("h3", { id: titleId, text: label(section, "title") }),
      h(
        "div",
        { class: "section-grid" },
        h(
          "div",
          { class: "fields", "data-field": section.key },
          fields,
          h("p", { class: "field-error", "data-error-for": section.key }),
          variableList(section),
        ),
        previewPanel(section, editor),
      ),
    );
  }

  // The e-mail's variables; a click inserts one where the cursor was in the
  // section's subject or body (the body when neither had the focus yet).
  function variableList(section) {
    if (!section.variables.length) return null;
    const id = `vars-${section.key}`;
    const help = h("p", { class: "hint variable-help", id: `${id}-help`, "aria-live": "polite", text: t("vars.hint") });
    const explain = (variable) => {
      help.textContent = `${variable.name}: ${label(variable, "label")}${variable.optional ? ` (${t("vars.optional")})` : ""}`;
    };
    // One tab stop for the whole list (a toolbar): the arrow keys move inside.
    const roving = (event) => {
      const buttons = [...event.currentTarget.querySelectorAll("button.variable")];
      const index = buttons.indexOf(document.activeElement);
      const moves = { ArrowRight: index + 1, ArrowDown: index + 1, ArrowLeft: index - 1, ArrowUp: index - 1, Home: 0, End: buttons.length - 1 };
      if (index < 0 || !(event.key in moves)) return;
      event.preventDefault();
      const next = buttons[(moves[event.key] + buttons.length) % buttons.length];
      for (const button of buttons) button.tabIndex = button === next ? 0 : -1;
      next.focus();
    };
    return h(
      "div",
      { class: "variables", "data-variables": section.key },
      h("p", { class: "variables-title", id: `${id}-title`, text: t("vars.title") }),
      h(
        "div",
        { class: "variable-list", role: "toolbar", "aria-labelledby": `${id}-title`, on: { keydown: roving } },
        section.variables.map((variable, index) =>
          h(
            "span",
            { class: "variable-item" },
            h(
              "button",
              {
                type: "button",
                class: "variable",
                tabindex: index === 0 ? "0" : "-1",
                "data-variable": variable.name,
                title: label(variable, "label"),
                "aria-describedby": `${id}-help`,
                on: {
                  // Keep the focus (and the selection) in the text field.
                  mousedown: (event) => event.preventDefault(),
                  focus: () => explain(variable),
                  mouseenter: () => explain(variable),
                  click: () => insertVariable(section, variable),
                },
              },
              h("code", { text: variable.name }),
              h("span", { class: "visually-hidden", text: ` – ${label(variable, "label")}` }),
            ),
          ),
        ),
      ),
      help,
    );
  }

  function insertVariable(section, variable) {
    const editor = state.editor;
    const target =
      document.getElementById(editor.lastText[section.key] || "") ||
      document.getElementById(`f-${section.key}-body`);
    if (!target || target.disabled) return;
    target.focus();
    const start = target.selectionStart ?? target.value.length;
    const end = target.selectionEnd ?? start;
    target.setSelectionRange(start, end);
    // insertText keeps the browser's undo history; setRangeText is the fallback.
    let inserted = false;
    try {
      inserted = document.execCommand("insertText", false, variable.insert);
    } catch (error) {
      inserted = false;
    }
    if (!inserted || target.value.slice(start, start + variable.insert.length) !== variable.insert) {
      target.setRangeText(variable.insert, start, end, "end");
      target.dispatchEvent(new Event("input", { bubbles: true }));
    }
  }

  function fieldRow(section, field) {
    const editor = state.editor;
    const path = `${section.key}.${field.key}`;
    const id = `f-${section.key}-${field.key}`;
    const describedBy = `${id}-hint ${id}-error`;
    const changed = (value) => {
      editor.values[path] = value;
      if (section.key === "internal_addresses") previewAll(PREVIEW_DELAY_MS);
      else schedulePreview(section.key, PREVIEW_DELAY_MS);
    };
    let control;
    let builtinRow = null;
    if (field.type === "checkbox") {
      control = h(
        "label",
        { class: "check" },
        h("input", {
          type: "checkbox",
          id,
          "data-path": path,
          checked: editor.values[path] === true,
          "aria-describedby": describedBy,
          on: { change: (event) => changed(event.target.checked) },
        }),
        h("span", { text: label(field, "label") }),
      );
    } else {
      const tag = field.type === "body" ? "textarea" : "input";
      const isText = field.type === "body" || field.type === "subject";
      const input = h(tag, {
        id,
        "data-path": path,
        type: tag === "input" ? "text" : null,
        rows: tag === "textarea" ? 8 : null,
        value: editor.values[path],
        spellcheck: isText ? "true" : "false",
        autocomplete: "off",
        "aria-describedby": isText ? `${describedBy} ${id}-builtin-hint` : describedBy,
        on: {
          input: (event) => {
            changed(event.target.value);
            if (builtinRow) builtinRow.hidden = event.target.value !== "";
          },
          focus: () => {
            if (isText) editor.lastText[section.key] = id;
          },
        },
      });
      control = [h("label", { for: id, text: label(field, "label") }), input];
      if (isText) {
        // Empty means the built-in text: it shows greyed out and can be taken
        // over as a start for the group's own.
        input.placeholder = builtinText(editor.defaultLocale, section.key, field.key);
        const takeOver = h("button", {
          type: "button",
          class: "take-over",
          "data-builtin": path,
          text: t("text.builtin"),
          on: {
            click: () => {
              input.value = builtinText(editor.defaultLocale, section.key, field.key);
              input.dispatchEvent(new Event("input", { bubbles: true }));
              input.focus();
              input.setSelectionRange(0, 0);
              input.scrollTop = 0;
            },
          },
        });
        builtinRow = h(
          "div",
          { class: "builtin-row", hidden: editor.values[path] !== "" },
          h("span", { class: "hint", id: `${id}-builtin-hint`, text: t("text.builtin.hint") }),
          takeOver,
        );
      }
    }
    return h(
      "div",
      { class: `field field-${field.type}`, "data-field": path },
      control,
      h("p", { class: "hint", id: `${id}-hint`, text: label(field, "hint") }),
      builtinRow,
      h("p", { class: "field-error", id: `${id}-error`, "data-error-for": path, "aria-live": "polite" }),
    );
  }

  function languageCard() {
    const editor = state.editor;
    const defaultField = simpleField("default_locale", t("lang.default"), "input", {
      value: editor.defaultLocale,
      list: "locale-options",
      autocomplete: "off",
    });
    defaultField.input.addEventListener("input", (event) => {
      editor.defaultLocale = event.target.value;
      refreshPlaceholders();
      previewAll(PREVIEW_DELAY_MS);
    });
    defaultField.node.insertBefore(h("p", { class: "hint", text: t("lang.default.hint") }), defaultField.node.lastChild);
    const card = h(
      "section",
      { class: "card", "data-section": "languages", id: "section-languages" },
      h("h3", { text: t("lang.title") }),
      h("datalist", { id: "locale-options" }, FORM.locales.map((tag) => h("option", { value: tag }))),
      defaultField.node,
      h(
        "div",
        { "data-field": "translations" },
        editor.translations.map((translation, index) => translationBlock(translation, index)),
        h("p", { class: "field-error", "data-error-for": "translations" }),
      ),
      h("button", {
        type: "button",
        id: "add-translation",
        text: t("lang.add"),
        on: {
          click: () => {
            editor.translations.push({ tag: "", values: {}, open: true });
            card.replaceWith(languageCard());
            const inputs = document.querySelectorAll("[data-tag-input]");
            if (inputs.length) inputs[inputs.length - 1].focus();
          },
        },
      }),
    );
    return card;
  }

  function translationBlock(translation, index) {
    const editor = state.editor;
    const summary = h("summary", { text: `${t("lang.translation")}: ${translation.tag || "?"}` });
    const tagId = `f-t${index}-tag`;
    const block = h(
      "details",
      {
        class: "translation",
        open: translation.open === true,
        "data-translation": index,
        on: {
          toggle: (event) => {
            translation.open = event.target.open;
          },
        },
      },
      summary,
      h(
        "div",
        { class: "field", "data-field": `t${index}.tag` },
        h("label", { for: tagId, text: t("lang.tag") }),
        h("input", {
          id: tagId,
          "data-tag-input": true,
          value: translation.tag,
          autocomplete: "off",
          "aria-describedby": `${tagId}-error`,
          on: {
            input: (event) => {
              translation.tag = event.target.value.trim();
              summary.textContent = `${t("lang.translation")}: ${translation.tag || "?"}`;
              for (const node of block.querySelectorAll("[data-translation-field]")) {
                const [sectionKey, fieldKey] = node.dataset.translationField.split(".");
                node.placeholder = builtinText(translation.tag || "en", sectionKey, fieldKey);
              }
              previewAll(PREVIEW_DELAY_MS);
            },
          },
        }),
        h("p", { class: "field-error", id: `${tagId}-error` }),
      ),
      TEXT_SECTIONS.map((section) =>
        h(
          "fieldset",
          { class: "translation-section" },
          h("legend", { text: label(section, "title") }),
          section.fields
            .filter((field) => field.type === "subject" || field.type === "body")
            .map((field) => {
              const key = `${section.key}.${field.key}`;
              const id = `f-t${index}-${section.key}-${field.key}`;
              const tag = field.type === "body" ? "textarea" : "input";
              return h(
                "div",
                { class: `field field-${field.type}`, "data-field": `t${index}.${key}` },
                h("label", { for: id, text: label(field, "label") }),
                h(tag, {
                  id,
                  rows: tag === "textarea" ? 5 : null,
                  type: tag === "input" ? "text" : null,
                  value: translation.values[key] ?? "",
                  placeholder: builtinText(translation.tag || "en", section.key, field.key),
                  "data-translation-field": `${section.key}.${field.key}`,
                  autocomplete: "off",
                  "aria-describedby": `${id}-error`,
                  on: {
                    input: (event) => {
                      translation.values[key] = event.target.value;
                      schedulePreview(section.key, PREVIEW_DELAY_MS);
                    },
                  },
                }),
                h("p", { class: "field-error", id: `${id}-error` }),
              );
            }),
        ),
      ),
      h("button", {
        type: "button",
        class: "danger",
        text: t("lang.remove"),
        on: {
          click: () => {
            editor.translations.splice(index, 1);
            document.getElementById("section-languages").replaceWith(languageCard());
            previewAll(0);
          },
        },
      }),
    );
    return block;
  }

  // Previews -----------------------------------------------------------------

  function previewLocales(editor) {
    const tags = new Set(FORM.locales);
    for (const translation of editor.translations) if (translation.tag) tags.add(translation.tag);
    return [...tags];
  }

  function previewPanel(section, editor) {
    const select = h(
      "select",
      {
        "aria-label": t("preview.locale"),
        "data-preview-locale": section.key,
        on: {
          change: (event) => {
            editor.locales[section.key] = event.target.value;
            schedulePreview(section.key, 0);
          },
        },
      },
      h("option", { value: "", text: t("preview.locale.group") }),
      previewLocales(editor).map((tag) => h("option", { value: tag, text: tag })),
    );
    select.value = editor.locales[section.key] || "";
    const parts = {
      subject: h("span", { class: "preview-subject" }),
      addresses: h("div", { class: "preview-addresses muted" }),
      frame: h("iframe", { class: "preview-html", sandbox: "", title: `${t("preview.title")}: ${label(section, "title")}` }),
      text: h("pre", { class: "preview-text" }),
      sources: h("p", { class: "preview-sources muted" }),
      note: h("p", { class: "preview-note muted", hidden: true, text: t("preview.placeholder") }),
      problems: h("div", { class: "preview-problems", role: "status" }),
    };
    // What was rendered; hidden while the section has errors, so that no old
    // preview stands beside them.
    parts.body = h(
      "div",
      { class: "preview-body" },
      h("div", { class: "preview-line" }, h("span", { class: "k", text: `${t("preview.subject")}: ` }), parts.subject),
      parts.addresses,
      parts.note,
      parts.frame,
      h("details", {}, h("summary", { text: t("preview.text") }), parts.text),
      parts.sources,
    );
    const titleId = `preview-${section.key}-title`;
    const panel = h(
      "aside",
      { class: "preview", "data-preview": section.key, "data-state": "pending", "aria-labelledby": titleId },
      h("div", { class: "preview-head" }, h("strong", { id: titleId, text: `${t("preview.title")}: ${label(section, "title")}` }), select),
      parts.problems,
      parts.body,
    );
    editor.panels[section.key] = { panel, parts };
    return panel;
  }

  function schedulePreview(key, delay) {
    const editor = state.editor;
    if (!editor || !editor.panels[key]) return;
    showDirty();
    clearTimeout(editor.timers[key]);
    editor.panels[key].panel.dataset.state = "pending";
    editor.timers[key] = setTimeout(() => runPreview(editor, key), delay);
  }

  function previewAll(delay) {
    for (const section of FORM.sections) schedulePreview(section.key, delay);
  }

  // Whether an error (its path in the document) belongs to a section's panel.
  function concerns(path, key) {
    const parts = (path || "").replace(/^document\.?/, "").split(".");
    if (parts[0] === "translations") return parts[2] === key;
    return parts[0] === key;
  }

  async function runPreview(editor, key) {
    const sequence = (editor.sequence[key] || 0) + 1;
    editor.sequence[key] = sequence;
    const section = SECTION[key];
    const body = { kind: section.kind, document: buildDocument(editor) };
    if (editor.locales[key]) body.locale = editor.locales[key];
    const result = await call("POST", `/v1/groups/${enc(editor.code)}/preview`, body);
    // Only the answer to the latest request for this section may show.
    if (editor !== state.editor || sequence !== editor.sequence[key] || !editor.panels[key]) return;
    const { panel, parts } = editor.panels[key];
    parts.problems.replaceChildren();
    if (!result.ok) {
      panel.dataset.state = "error";
      parts.body.hidden = true;
      const errors = Array.isArray(result.data && result.data.detail) ? result.data.detail : null;
      // The preview names the previewed section's own errors; those of other
      // sections belong to their own panels.
      const own = errors ? errors.filter((e) => concerns(e.path, key) || !e.path || e.path === "document") : null;
      parts.problems.append(
        h("p", { class: "field-error", text: t("preview.failed") }),
        own
          ? h("ul", { class: "problem" }, (own.length ? own : errors).map((e) => h("li", { "data-problem": e.path || "", text: problemLine(e) })))
          : h("p", { class: "problem", text: problemText(result.data) }),
      );
      return;
    }
    const data = result.data;
    parts.body.hidden = false;
    parts.subject.textContent = data.subject;
    parts.addresses.textContent = `${t("preview.from")}: ${data.from} · ${t("preview.to")}: ${data.to}`;
    parts.frame.srcdoc = data.html;
    parts.text.textContent = data.text;
    // The server names the sources in the page's language (Accept-Language).
    parts.sources.textContent = t("preview.sources", {
      lang: data.language,
      subject: data.source_labels.subject,
      body: data.source_labels.body,
    });
    // Problems set aside are other sections' business, except that a broken
    // address makes every preview use a placeholder.
    const own = data.set_aside.filter((e) => concerns(e.path, key));
    parts.note.hidden = key === "internal_addresses" || !data.set_aside.some((e) => concerns(e.path, "internal_addresses"));
    if (own.length) {
      panel.dataset.state = "error";
      parts.problems.append(
        h("p", { class: "field-error", text: t("preview.aside") }),
        h("ul", { class: "problem" }, own.map((e) => h("li", { "data-problem": e.path, text: problemLine(e) }))),
      );
      return;
    }
    panel.dataset.state = "ready";
  }

  // History ------------------------------------------------------------------

  function shown(value) {
    if (value === null || value === undefined) return t("absent");
    if (value === true) return t("yes");
    if (value === false) return t("no");
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  async function historyTab(code, mine) {
    const result = await call("GET", `/v1/groups/${enc(code)}/settings/history`);
    if (mine !== state.ticket) return null;
    if (!result.ok) return errorBox(result);
    const message = h("p", { id: "history-status", role: "status" });
    const versions = result.data.map((entry) =>
      h(
        "article",
        { class: "card version", "data-version": entry.version },
        h(
          "header",
          { class: "version-head" },
          h("strong", { text: t("group.version", { n: entry.version }) }),
          entry.current ? h("span", { class: "badge", text: t("history.current") }) : null,
          h("span", { class: "muted", text: `${when(entry.created_at)} · ${t("history.by", { actor: entry.actor })}` }),
          entry.restored_from ? h("span", { class: "muted", text: `· ${t("history.restores", { n: entry.restored_from })}` }) : null,
          canAdmin() && !entry.current
            ? h("button", {
                type: "button",
                class: "rollback",
                text: t("history.rollback"),
                on: { click: () => rollback(entry.version) },
              })
            : null,
        ),
        entry.changes.length
          ? h(
              "table",
              { class: "diff" },
              h("thead", {}, h("tr", {}, h("th", { text: t("history.field") }), h("th", { text: t("history.old") }), h("th", { text: t("history.new") }))),
              h(
                "tbody",
                {},
                entry.changes.map((change) =>
                  h(
                    "tr",
                    { "data-path": change.path },
                    h("td", {}, h("div", { text: fieldName(change.path) }), h("code", { class: "muted", text: change.path })),
                    h("td", { class: "old" }, h("pre", { text: shown(change.old) })),
                    h("td", { class: "new" }, h("pre", { text: shown(change.new) })),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted", text: t("history.nochanges") }),
      ),
    );
    return h(
      "section",
      { id: "history" },
      h("h2", { text: t("history.title") }),
      message,
      versions.length ? versions : h("p", { class: "muted", text: t("history.empty") }),
    );

    async function rollback(version) {
      if (!(await confirmReplace())) return;
      const answer = await call("POST", `/v1/groups/${enc(code)}/settings/rollback`, { version });
      if (!answer.ok) {
        message.textContent = problemText(answer.data);
        return;
      }
      state.editor = null;
      await groupPage(code, "history");
      const line = document.getElementById("history-status");
      if (line) line.textContent = t("history.rolledback", { old: version, n: answer.data.version });
    }
  }

  // Test send ----------------------------------------------------------------

  function testTab(code) {
    const kind = simpleField("kind", t("test.kind"), "select");
    for (const item of FORM.kinds) kind.input.append(h("option", { value: item.name, text: label(item, "label") }));
    kind.input.value = "password.reset";
    const address = simpleField("address", t("test.address"), "input", { type: "text", autocomplete: "email", placeholder: "name@example.com" });
    const locale = simpleField("locale", t("test.locale"), "select");
    locale.input.append(h("option", { value: "", text: t("preview.locale.group") }));
    for (const tag of state.editor ? previewLocales(state.editor) : FORM.locales) locale.input.append(h("option", { value: tag, text: tag }));
    const outcome = h("div", { id: "test-outcome", role: "status" });
    const form = h(
      "form",
      { class: "card", id: "test-send", on: { submit: send } },
      h("h2", { text: t("test.title") }),
      h("p", { class: "muted", text: t("test.intro") }),
      h("div", { class: "row" }, kind.node, address.node, locale.node),
      canAdmin() ? h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: t("test.submit") })) : null,
      outcome,
    );
    return form;

    async function send(event) {
      event.preventDefault();
      clearFieldErrors(form);
      outcome.replaceChildren();
      const body = { kind: kind.input.value, address: address.input.value };
      if (locale.input.value) body.locale = locale.input.value;
      const result = await call("POST", `/v1/groups/${enc(code)}/test-send`, body);
      if (result.ok) {
        const id = result.data.event_id;
        outcome.append(
          h("p", { class: "notice ok", text: t("test.queued", { id }) }),
          h("a", { href: `#/deliveries?event_id=${enc(id)}`, text: t("test.log") }),
        );
      } else if (result.status === 422) {
        const rest = placeErrors(form, result.data.detail);
        if (rest.length) outcome.append(errorBox({ data: { detail: rest } }));
      } else {
        outcome.append(errorBox(result));
      }
    }
  }

  // Raw document -------------------------------------------------------------

  async function rawTab(code, mine) {
    const result = await call("GET", `/v1/groups/${enc(code)}/settings?format=yaml`, undefined, { accept: "application/yaml" });
    if (mine !== state.ticket) return null;
    if (!result.ok && result.status !== 404) return errorBox(result);
    const version = result.ok ? etagVersion(result.headers) : null;
    const area = h("textarea", { id: "raw-document", rows: 30, spellcheck: "false", value: result.ok ? result.data : "" });
    const outcome = h("div", { id: "raw-outcome", role: "status" });
    return h(
      "form",
      { class: "card", id: "raw", on: { submit: save } },
      h("h2", { text: t("raw.title") }),
      h("p", { class: "muted", text: t("raw.intro") }),
      area,
      canAdmin() ? h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: t("raw.save") })) : null,
      outcome,
    );

    async function save(event) {
      event.preventDefault();
      outcome.replaceChildren();
      if (!(await confirmReplace())) return;
      const headers = version ? { "If-Match": `"${version}"` } : {};
      const answer = await call("PUT", `/v1/groups/${enc(code)}/settings`, area.value, {
        contentType: "application/yaml",
        headers,
      });
      if (answer.ok) {
        state.editor = null;
        await groupPage(code, "raw");
        const line = document.getElementById("raw-outcome");
        if (line) {
          line.append(
            h("p", {
              class: "notice ok",
              text: t(answer.data.created ? "save.saved" : "save.unchanged", { n: answer.data.version }),
            }),
          );
        }
      } else {
        outcome.append(errorBox(answer));
      }
    }
  }

  // Deliveries ---------------------------------------------------------------

  // A table inside its own scrolling box: the page never scrolls sideways.
  function scrollBox(name, table, id) {
    return h("div", { class: "table-scroll", role: "region", tabindex: "0", "aria-label": name, id: id || null }, table);
  }

  async function deliveriesPage(params, message) {
    const mine = ticket();
    const offset = Number(params.get("offset") || 0);
    const query = new URLSearchParams();
    for (const key of ["event_id", "group", "status", "kind", "recipient"]) {
      if (params.get(key)) query.set(key, params.get(key));
    }
    query.set("limit", String(PAGE_SIZE));
    query.set("offset", String(offset));
    const result = await call("GET", `/v1/deliveries?${query}`);
    if (mine !== state.ticket) return;
    const filters = deliveryFilters(params);
    if (!result.ok) {
      mount(h("h1", { text: t("deliveries.title") }), filters, errorBox(result));
      return;
    }
    const page = result.data;
    const link = (newOffset) => {
      const next = new URLSearchParams(query);
      next.delete("limit");
      next.set("offset", String(newOffset));
      return `#/deliveries?${next}`;
    };
    const outcome = h("div", { id: "delivery-outcome", role: "status" }, message ? h("p", { class: "notice ok", text: message }) : null);
    mount(
      h("h1", { text: t("deliveries.title") }),
      filters,
      outcome,
      page.items.length
        ? scrollBox(t("deliveries.title"), deliveryTable(page.items, { webhooks: page.webhooks, resend: canAdmin() ? resend : null }), "deliveries-box")
        : h("p", { class: "muted", text: t("deliveries.empty") }),
      h(
        "nav",
        { class: "pager" },
        offset > 0 ? h("a", { href: link(Math.max(0, offset - PAGE_SIZE)), text: t("deliveries.newer") }) : null,
        page.next_offset !== null ? h("a", { href: link(page.next_offset), text: t("deliveries.older") }) : null,
      ),
    );

    // Confirmed first; a suppressed address needs a second, explicit "send anyway".
    async function resend(d) {
      const ok = await confirmDialog({
        id: "resend-dialog",
        title: t("resend.title"),
        text: t("resend.text", { id: d.id, kind: kindLabel(d.kind), recipient: d.recipient }),
        confirm: t("deliveries.resend"),
      });
      if (!ok) return;
      let answer = await call("POST", `/v1/deliveries/${d.id}/resend`, { force: false });
      // The server says why as data: the address's entry on the suppression
      // list (since when, why), in the page's language.
      if (answer.status === 409 && answer.data && answer.data.code === "address_suppressed") {
        const refused = answer.data;
        const forced = await confirmDialog({
          id: "force-dialog",
          title: t("resend.suppressed.title"),
          text: t("resend.suppressed.text", { recipient: refused.address || d.recipient }),
          extra: h("p", {
            class: "notice",
            "data-suppressed-since": refused.since || "",
            text: t("resend.suppressed.since", { since: when(refused.since), reason: refused.reason || t("absent") }),
          }),
          confirm: t("resend.force"),
          danger: true,
        });
        if (!forced) return;
        answer = await call("POST", `/v1/deliveries/${d.id}/resend`, { force: true });
      }
      if (!answer.ok) {
        outcome.replaceChildren(errorBox(answer));
        outcome.scrollIntoView({ block: "nearest" });
        return;
      }
      deliveriesPage(params, t("resend.done", { id: answer.data.id }));
    }
  }

  function deliveryFilters(params) {
    const inputs = {};
    const field = (key, text, control) => {
      inputs[key] = control;
      control.id = `filter-${key}`;
      control.name = key;
      return h("div", { class: "field" }, h("label", { for: control.id, text }), control);
    };
    const select = (key, options) => {
      const node = h("select", {}, h("option", { value: "", text: t("deliveries.any") }), options);
      node.value = params.get(key) || "";
      return node;
    };
    const statusSelect = select("status", FORM.statuses.map((s) => h("option", { value: s.name, text: label(s, "label") })));
    statusSelect.value = params.get("status") || "";
    const kindSelect = select("kind", FORM.kinds.map((k) => h("option", { value: k.name, text: label(k, "label") })));
    kindSelect.value = params.get("kind") || "";
    return h(
      "form",
      {
        class: "card filters",
        id: "delivery-filters",
        on: {
          submit: (event) => {
            event.preventDefault();
            const next = new URLSearchParams();
            for (const [key, control] of Object.entries(inputs)) if (control.value.trim()) next.set(key, control.value.trim());
            location.hash = `#/deliveries?${next}`;
          },
        },
      },
      h(
        "div",
        { class: "row" },
        field("event_id", t("deliveries.event"), h("input", { value: params.get("event_id") || "" })),
        field("group", t("deliveries.group"), h("input", { value: params.get("group") || "" })),
        field("status", t("deliveries.status"), statusSelect),
        field("kind", t("deliveries.kind"), kindSelect),
        field("recipient", t("deliveries.recipient"), h("input", { value: params.get("recipient") || "" })),
      ),
      h("div", { class: "actions" }, h("button", { type: "submit", text: t("deliveries.filter") })),
    );
  }

  function webhookSummary(state) {
    if (!state) return null;
    return FORM.webhook_states
      .filter((s) => state[s.name])
      .map((s) => `${state[s.name]} ${label(s, "label")}`)
      .join(", ");
  }

  // One row per delivery; a details row below it (opened with its button)
  // holds the bounce, feedback, relay, webhooks and the rest.
  function deliveryTable(items, options) {
    const opts = options || {};
    const webhooks = opts.webhooks || {};
    const columns = 10 + (opts.selectable ? 1 : 0);
    const rows = items.flatMap((d) => {
      const detailsId = `delivery-${d.id}-details`;
      const hooks = webhooks[String(d.id)];
      const toggle = h("button", {
        type: "button",
        class: "small",
        "data-details": d.id,
        "aria-expanded": "false",
        "aria-controls": detailsId,
        "aria-label": t("deliveries.details.of", { id: d.id }),
        text: t("deliveries.details"),
      });
      const details = h(
        "tr",
        { class: "details-row", id: detailsId, "data-details-for": d.id, hidden: true },
        h("td", { colspan: String(columns) }, deliveryDetails(d, hooks)),
      );
      toggle.addEventListener("click", () => {
        details.hidden = !details.hidden;
        toggle.setAttribute("aria-expanded", String(!details.hidden));
      });
      const statusHint = namedHint("status", d.status);
      const main = h(
        "tr",
        { "data-delivery": d.id, class: `status-${d.status}` },
        opts.selectable ? h("td", {}, h("input", { type: "checkbox", "data-select": d.id, "aria-label": `#${d.id}` })) : null,
        h(
          "td",
          {},
          String(d.id),
          d.resend_of ? h("div", { class: "muted small-text", "data-resend-of": d.resend_of, text: t("deliveries.resendOf", { id: d.resend_of }) }) : null,
        ),
        h("td", { class: "nowrap", text: when(d.updated_at) }),
        h(
          "td",
          { class: "status-cell" },
          h("span", { class: `badge status-${d.status}`, "data-status": d.status, title: statusHint, text: named("status", d.status) }),
          d.test ? h("span", { class: "badge", text: t("deliveries.test") }) : null,
          d.bounce_status ? h("span", { class: "badge status-bounced", "data-bounce": d.bounce_status, text: t("deliveries.bounce", { status: d.bounce_status }) }) : null,
          d.feedback ? h("span", { class: "badge note", "data-feedback": "", title: d.feedback, text: t("deliveries.feedback") }) : null,
          hooks ? h("span", { class: `badge${hooks.failed ? " status-dead" : ""}`, "data-webhooks": "", title: webhookSummary(hooks), text: `${t("deliveries.webhooks")}: ${webhookSummary(hooks)}` }) : null,
        ),
        h("td", {}, h("a", { href: `#/groups/${enc(d.group)}`, text: d.group })),
        h("td", { text: kindLabel(d.kind) }),
        h("td", { class: "recipient", text: d.recipient }),
        h("td", { text: String(d.attempts) }),
        h(
          "td",
          { class: "reply" },
          [d.last_code, d.last_text].filter((x) => x !== null && x !== "").join(" ") || t("absent"),
          d.relay ? h("div", { class: "muted small-text", "data-relay": d.relay, text: t("deliveries.via", { relay: d.relay }) }) : null,
        ),
        h("td", { class: "event" }, h("a", { href: `#/deliveries?event_id=${enc(d.event_id)}`, text: d.event_id })),
        h(
          "td",
          { class: "row-actions" },
          toggle,
          opts.resend && FINAL_STATUSES.has(d.status)
            ? h("button", { type: "button", class: "small", "data-resend": d.id, text: t("deliveries.resend"), on: { click: () => opts.resend(d) } })
            : null,
        ),
      );
      return [main, details];
    });
    return h(
      "table",
      { class: "list deliveries" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          opts.selectable ? h("th", {}) : null,
          ["deliveries.id", "deliveries.time", "deliveries.status", "deliveries.group", "deliveries.kind", "deliveries.recipient", "deliveries.attempts", "deliveries.reply", "deliveries.event", "deliveries.actions"].map((key) => h("th", { scope: "col", text: t(key) })),
        ),
      ),
      h("tbody", {}, rows),
    );
  }

  function deliveryDetails(d, hooks) {
    const line = (key, value) => (value === null || value === undefined || value === "" ? null : [h("dt", { text: t(key) }), h("dd", {}, value)]);
    return h(
      "dl",
      { class: "details-list" },
      line("deliveries.status", `${named("status", d.status)}${namedHint("status", d.status) ? ` – ${namedHint("status", d.status)}` : ""}`),
      line("deliveries.bounceStatus", d.bounce_status ? h("span", { "data-detail": "bounce_status", text: d.bounce_status }) : null),
      line("deliveries.bounceText", d.bounce_text ? h("span", { "data-detail": "bounce_text", text: d.bounce_text }) : null),
      line("deliveries.bouncedAt", d.bounced_at ? when(d.bounced_at) : null),
      line("deliveries.feedback", d.feedback ? h("span", { "data-detail": "feedback", text: `${d.feedback}${d.feedback_at ? ` (${when(d.feedback_at)})` : ""}` }) : null),
      line("deliveries.relay", d.relay ? h("span", { "data-detail": "relay", text: d.relay }) : null),
      line("deliveries.resend", d.resend_of ? h("span", { "data-detail": "resend_of", text: t("deliveries.resendOf", { id: d.resend_of }) }) : null),
      line("deliveries.forced", d.ignore_suppression ? t("yes") : null),
      line("deliveries.webhooks", h("span", { "data-detail": "webhooks", text: webhookSummary(hooks) || t("deliveries.webhooks.none") })),
      line("deliveries.uncertain", d.uncertain ? t("yes") : null),
      line("deliveries.name", d.recipient_name),
      line("deliveries.created", when(d.created_at)),
      line("deliveries.sentAt", d.sent_at ? when(d.sent_at) : null),
      line("deliveries.version", d.settings_version ? String(d.settings_version) : null),
      line("deliveries.message", h("code", { text: d.message_id })),
    );
  }

  // Dead letters --------------------------------------------------------------

  async function deadLettersPage(message) {
    const mine = ticket();
    const result = await call("GET", "/v1/dead-letters");
    if (mine !== state.ticket) return;
    if (!result.ok) {
      mount(h("h1", { text: t("dead.title") }), errorBox(result));
      return;
    }
    const data = result.data;
    const outcome = h("div", { id: "replay-outcome", role: "status" }, message ? h("p", { class: "notice ok", text: message }) : null);
    const deliveries = data.deliveries.length
      ? scrollBox(t("dead.deliveries"), deliveryTable(data.deliveries, { selectable: canAdmin() }))
      : h("p", { class: "muted", text: t("dead.none") });
    mount(
      h("h1", { text: t("dead.title") }),
      outcome,
      h(
        "section",
        { class: "card", id: "dead-deliveries" },
        h("h2", { text: t("dead.deliveries") }),
        deliveries,
        canAdmin() && data.deliveries.length
          ? h(
              "div",
              { class: "actions" },
              h("button", {
                type: "button",
                id: "replay-selected",
                text: t("dead.replaySelected"),
                on: {
                  click: () => {
                    const ids = [...document.querySelectorAll("[data-select]:checked")].map((node) => Number(node.dataset.select));
                    if (ids.length) replay({ ids });
                  },
                },
              }),
              h("button", { type: "button", id: "replay-all", text: t("dead.replayAll"), on: { click: () => replay({ all: true }) } }),
            )
          : null,
      ),
      h(
        "section",
        { class: "card", id: "failed-events" },
        h("h2", { text: t("dead.events") }),
        data.events.length
          ? h(
              "table",
              { class: "list" },
              h("thead", {}, h("tr", {}, [t("deliveries.event"), t("dead.type"), t("deliveries.group"), t("deliveries.time"), t("dead.reason"), ""].map((text) => h("th", { text })))),
              h(
                "tbody",
                {},
                data.events.map((e) =>
                  h(
                    "tr",
                    { "data-event": e.event_id },
                    h("td", { text: e.event_id }),
                    h("td", { "data-type": e.type, text: named("eventType", e.type) }),
                    h("td", { text: e.group }),
                    h("td", { text: when(e.received_at) }),
                    h("td", { class: "reply", text: e.reason || "" }),
                    h("td", {}, canAdmin() ? h("button", { type: "button", text: t("dead.replayEvent"), on: { click: () => replay({ events: [e.event_id] }) } }) : null),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted", text: t("dead.none") }),
      ),
      h(
        "section",
        { class: "card", id: "rejected" },
        h("h2", { text: t("dead.rejected") }),
        data.rejected.length
          ? h(
              "table",
              { class: "list" },
              h("thead", {}, h("tr", {}, ["#", t("deliveries.time"), t("deliveries.event"), t("dead.reason")].map((text) => h("th", { text })))),
              h(
                "tbody",
                {},
                data.rejected.map((r) =>
                  h("tr", {}, h("td", { text: String(r.id) }), h("td", { text: when(r.received_at) }), h("td", { text: r.event_id || t("absent") }), h("td", { class: "reply", text: r.reason })),
                ),
              ),
            )
          : h("p", { class: "muted", text: t("dead.none") }),
      ),
    );

    async function replay(body) {
      const answer = await call("POST", "/v1/dead-letters/replay", body);
      if (!answer.ok) {
        outcome.replaceChildren(errorBox(answer));
        return;
      }
      deadLettersPage(t("dead.replayed", { d: answer.data.deliveries.length, e: answer.data.events.length }));
    }
  }

  // Suppression list ("Sperrliste") -----------------------------------------------

  async function suppressionsPage(params, message) {
    const mine = ticket();
    const search = params.get("search") || "";
    const offset = Math.max(0, Number(params.get("offset") || 0) || 0);
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(offset) });
    if (search) query.set("search", search);
    const result = await call("GET", `/v1/suppressions?${query}`);
    if (mine !== state.ticket) return;
    const title = h("h1", { text: t("supp.title") });
    const outcome = h("div", { id: "suppression-outcome", role: "status" }, message ? h("p", { class: "notice ok", text: message }) : null);
    const searchInput = h("input", { id: "supp-search", name: "search", type: "search", value: search, autocomplete: "off" });
    const searchForm = h(
      "form",
      {
        class: "card filters",
        id: "suppression-search",
        role: "search",
        on: {
          submit: (event) => {
            event.preventDefault();
            const value = searchInput.value.trim();
            location.hash = value ? `#/suppressions?search=${enc(value)}` : "#/suppressions";
          },
        },
      },
      h(
        "div",
        { class: "row" },
        h("div", { class: "field" }, h("label", { for: "supp-search", text: t("supp.search") }), searchInput),
      ),
      h("div", { class: "actions" }, h("button", { type: "submit", text: t("supp.searchButton") })),
    );
    if (!result.ok) {
      mount(title, h("p", { class: "muted", text: t("supp.intro") }), searchForm, errorBox(result));
      return;
    }
    const page = result.data;
    const internal = page.items.filter((entry) => entry.internal_for_groups.length);
    const rows = page.items.map((entry) =>
      h(
        "tr",
        { "data-suppression": entry.address, class: entry.internal_for_groups.length ? "internal" : null },
        h(
          "td",
          { class: "recipient" },
          h("span", { class: "address", text: entry.address }),
          entry.internal_for_groups.length
            ? h("div", {}, h("span", { class: "badge status-dead", "data-internal": entry.internal_for_groups.join(","), text: t("supp.internal", { groups: entry.internal_for_groups.join(", ") }) }))
            : null,
        ),
        h("td", { class: "reply", text: entry.reason }),
        h("td", { class: "nowrap", text: when(entry.since) }),
        h(
          "td",
          {},
          entry.source_delivery_id
            ? h("a", { href: `#/deliveries?recipient=${enc(entry.address)}`, text: t("supp.source.delivery", { id: entry.source_delivery_id }) })
            : t("supp.source.manual", { actor: entry.created_by }),
        ),
        h(
          "td",
          { class: "row-actions" },
          canAdmin()
            ? h("button", {
                type: "button",
                class: "small danger",
                "data-remove": entry.address,
                "aria-label": t("supp.remove.label", { address: entry.address }),
                text: t("supp.remove"),
                on: { click: () => remove(entry) },
              })
            : null,
        ),
      ),
    );
    const pagerLink = (value) => {
      const next = new URLSearchParams();
      if (search) next.set("search", search);
      next.set("offset", String(value));
      return `#/suppressions?${next}`;
    };
    mount(
      title,
      h("p", { class: "muted", text: t("supp.intro") }),
      internal.length
        ? h(
            "div",
            { class: "notice error warning-strong", id: "internal-warning", role: "alert" },
            h("strong", { text: t("supp.internal.warning", { n: internal.length }) }),
            h("ul", {}, internal.map((entry) => h("li", { text: `${entry.address} – ${t("supp.internal", { groups: entry.internal_for_groups.join(", ") })}` }))),
          )
        : null,
      outcome,
      searchForm,
      h("p", { class: "muted", id: "suppression-count", text: t("supp.count", { n: page.total }) }),
      rows.length
        ? h(
            "section",
            { class: "card" },
            h("h2", { class: "visually-hidden", text: t("supp.title") }),
            h(
              "table",
              { class: "list", id: "suppressions" },
              h("thead", {}, h("tr", {}, ["supp.address", "supp.reason", "supp.since", "supp.source", "deliveries.actions"].map((key) => h("th", { scope: "col", text: t(key) })))),
              h("tbody", {}, rows),
            ),
          )
        : h("p", { class: "muted", id: "suppressions-empty", text: t(search ? "supp.nomatch" : "supp.empty") }),
      h(
        "nav",
        { class: "pager" },
        offset > 0 ? h("a", { href: pagerLink(Math.max(0, offset - PAGE_SIZE)), text: t("deliveries.newer") }) : null,
        offset + page.items.length < page.total ? h("a", { href: pagerLink(offset + PAGE_SIZE), text: t("deliveries.older") }) : null,
      ),
      canAdmin() ? addSuppressionForm(params) : null,
    );

    async function remove(entry) {
      const ok = await confirmDialog({
        id: "remove-dialog",
        title: t("supp.remove.title"),
        text: t("supp.remove.text", { address: entry.address }),
        confirm: t("supp.remove.confirm"),
      });
      if (!ok) return;
      const answer = await call("DELETE", `/v1/suppressions/${enc(entry.address)}`);
      if (!answer.ok) {
        outcome.replaceChildren(errorBox(answer));
        return;
      }
      suppressionsPage(params, t("supp.removed", { address: entry.address }));
    }
  }

  function addSuppressionForm(params) {
    const address = simpleField("address", t("supp.address"), "input", { type: "email", autocomplete: "off", placeholder: "name@example.com" });
    const reason = simpleField("reason", t("supp.reason"), "input", { type: "text", autocomplete: "off" });
    const general = h("div", { class: "notice error", hidden: true, role: "alert" });
    const form = h(
      "form",
      { class: "card", id: "add-suppression", novalidate: true, on: { submit: add } },
      h("h2", { text: t("supp.add") }),
      h("div", { class: "row" }, address.node, reason.node),
      general,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: t("supp.add.submit") })),
    );
    return form;

    async function add(event) {
      event.preventDefault();
      clearFieldErrors(form);
      general.hidden = true;
      const body = { address: address.input.value.trim(), reason: reason.input.value.trim() };
      const ok = await confirmDialog({
        id: "add-dialog",
        title: t("supp.add.title"),
        text: t("supp.add.text", { address: body.address || "?", reason: body.reason || "?" }),
        confirm: t("supp.add.confirm"),
        danger: true,
      });
      if (!ok) return;
      const result = await call("POST", "/v1/suppressions", body);
      if (result.ok) {
        suppressionsPage(params, t("supp.added", { address: result.data.address }));
      } else if (result.status === 422 && Array.isArray(result.data.detail)) {
        const rest = placeErrors(form, result.data.detail);
        if (rest.length) showGeneral(general, rest);
      } else {
        general.hidden = false;
        general.textContent = problemText(result.data);
      }
    }
  }

  // Relays ---------------------------------------------------------------------

  async function relaysPage() {
    const mine = ticket();
    const result = await call("GET", "/v1/relays");
    if (mine !== state.ticket) return;
    const title = h("h1", { text: t("relays.title") });
    if (!result.ok) {
      mount(title, errorBox(result));
      return;
    }
    const data = result.data;
    const rows = data.relays.map((relay) => {
      const outcome = h("div", { class: "check-result", "data-check-result": relay.name, role: "status" });
      const button = canAdmin()
        ? h("button", {
            type: "button",
            class: "small",
            "data-check": relay.name,
            "aria-label": t("relays.check.label", { name: relay.name }),
            text: t("relays.check"),
            on: { click: () => check(relay, button, outcome) },
          })
        : null;
      return h(
        "tr",
        { "data-relay-row": relay.name },
        h("th", { scope: "row" }, h("code", { text: relay.name })),
        h("td", { class: "nowrap" }, h("code", { text: `${relay.host}:${relay.port}` })),
        h("td", { text: named("security", relay.security) }),
        h("td", { text: relay.authenticates ? t("yes") : t("no") }),
        h("td", {}, h("span", { class: `badge breaker-${relay.breaker}`, "data-breaker": relay.breaker, title: namedHint("breaker", relay.breaker), text: named("breaker", relay.breaker) })),
        h("td", { class: "row-actions" }, button, outcome),
      );
    });
    const routeRows = [
      // The server describes each route in the page's language.
      ...data.routes.map((route) => [route.label, route.relays]),
      [t("relays.default"), data.default],
    ].map(([condition, relays]) => h("tr", {}, h("td", { text: condition }), h("td", {}, h("code", { text: relays.join(" → ") }))));
    mount(
      title,
      h("p", { class: "muted", text: t("relays.intro") }),
      data.from_file ? null : h("p", { class: "notice", id: "relays-single", text: t("relays.single") }),
      h(
        "section",
        { class: "card", id: "relays" },
        h("h2", { text: t("relays.title") }),
        h(
          "table",
          { class: "list" },
          h("thead", {}, h("tr", {}, ["relays.name", "relays.address", "relays.security", "relays.auth", "relays.state", "relays.result"].map((key) => h("th", { scope: "col", text: t(key) })))),
          h("tbody", {}, rows),
        ),
      ),
      h(
        "section",
        { class: "card", id: "routes" },
        h("h2", { text: t("relays.routes") }),
        h(
          "table",
          { class: "list" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col", text: t("relays.match") }), h("th", { scope: "col", text: t("relays.order") }))),
          h("tbody", {}, routeRows),
        ),
      ),
    );

    async function check(relay, button, outcome) {
      button.disabled = true;
      outcome.replaceChildren(h("span", { class: "muted", text: t("relays.checking") }));
      const answer = await call("POST", `/v1/relays/${enc(relay.name)}/check`, {});
      button.disabled = false;
      if (!answer.ok) {
        outcome.replaceChildren(errorBox(answer));
        return;
      }
      const r = answer.data;
      outcome.dataset.ok = String(r.ok);
      outcome.replaceChildren(
        ...[
          h("p", { class: r.ok ? "status-saved" : "status-error", text: t(r.ok ? "relays.ok" : "relays.failed", { ms: r.milliseconds }) }),
          r.steps.length ? h("ol", { class: "steps small-text" }, r.steps.map((step) => h("li", { text: step }))) : null,
          r.problem ? h("p", { class: "problem", text: r.problem }) : null,
        ].filter(Boolean),
      );
    }
  }

  // Mailbox (the local mail sink) ----------------------------------------------

  // The menu shows the mailbox only where the server keeps one (dispatcher up).
  async function probeMailbox() {
    const result = await call("GET", "/v1/mailbox?limit=1");
    if (state.session === null) return;
    state.mailbox = result.ok;
    updateFrame();
  }

  async function mailboxPage(params) {
    const mine = ticket();
    const offset = Math.max(0, Number(params.get("offset") || 0) || 0);
    const result = await call("GET", `/v1/mailbox?limit=${PAGE_SIZE}&offset=${offset}`);
    if (mine !== state.ticket) return;
    const title = h("h1", { text: t("mailbox.title") });
    if (!result.ok) {
      mount(title, errorBox(result));
      return;
    }
    const page = result.data;
    const rows = page.items.map((m) =>
      h(
        "tr",
        { "data-mail": m.file },
        h("td", { text: when(m.received_at) }),
        h("td", { text: m.from || m.mail_from }),
        h("td", { text: m.to || m.rcpt_tos.join(", ") }),
        h("td", {}, h("a", { href: `#/mailbox/${enc(m.file)}`, text: m.subject || t("mailbox.nosubject") })),
      ),
    );
    mount(
      title,
      h("p", { class: "muted", text: t("mailbox.intro") }),
      rows.length
        ? h(
            "table",
            { class: "list", id: "mailbox" },
            h("thead", {}, h("tr", {}, ["mailbox.time", "mailbox.from", "mailbox.to", "mailbox.subject"].map((key) => h("th", { text: t(key) })))),
            h("tbody", {}, rows),
          )
        : h("p", { class: "muted", text: t("mailbox.empty") }),
      h(
        "nav",
        { class: "pager" },
        offset > 0 ? h("a", { href: `#/mailbox?offset=${Math.max(0, offset - PAGE_SIZE)}`, text: t("mailbox.newer") }) : null,
        page.next_offset !== null ? h("a", { href: `#/mailbox?offset=${page.next_offset}`, text: t("mailbox.older") }) : null,
      ),
    );
  }

  async function mailMessagePage(file) {
    const mine = ticket();
    const result = await call("GET", `/v1/mailbox/${enc(file)}`);
    if (mine !== state.ticket) return;
    const back = h("p", {}, h("a", { href: "#/mailbox", text: t("mailbox.back") }));
    if (!result.ok) {
      mount(back, errorBox(result));
      return;
    }
    const m = result.data;
    const line = (key, value) => (value ? [h("dt", { text: t(key) }), h("dd", { text: value })] : null);
    // The message's HTML is untrusted: it goes only into a frame whose empty
    // sandbox gives it a unique origin and allows no scripts, forms, popups
    // or navigation of this page; the page's CSP also applies inside it.
    const frame = h("iframe", { class: "mail-html", id: "mail-html", sandbox: "", referrerpolicy: "no-referrer", title: t("mailbox.html") });
    if (m.html !== null) frame.srcdoc = m.html;
    mount(
      back,
      h("h1", { id: "mail-subject", text: m.headers.subject || t("mailbox.nosubject") }),
      h(
        "dl",
        { class: "mail-headers card", id: "mail-headers" },
        line("mailbox.from", m.headers.from),
        line("mailbox.to", m.headers.to),
        line("mailbox.cc", m.headers.cc),
        line("mailbox.date", m.headers.date),
        line("mailbox.messageid", m.headers.message_id),
        line("mailbox.envelope", `${m.mail_from || "<>"} → ${m.rcpt_tos.join(", ")}`),
        line("mailbox.time", when(m.received_at)),
        line("mailbox.file", m.file),
      ),
      h(
        "section",
        { class: "card", id: "mail-html-part" },
        h("h2", { text: t("mailbox.html") }),
        m.html !== null ? [h("p", { class: "muted", text: t("mailbox.html.note") }), frame] : h("p", { class: "muted", text: t("mailbox.nopart") }),
      ),
      h(
        "section",
        { class: "card", id: "mail-text-part" },
        h("h2", { text: t("mailbox.text") }),
        m.text !== null ? h("pre", { class: "preview-text", id: "mail-text", text: m.text }) : h("p", { class: "muted", text: t("mailbox.nopart") }),
      ),
    );
  }

  // Start --------------------------------------------------------------------

  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => {
      state.lang = button.dataset.lang;
      localStorage.setItem("dispatcher.lang", state.lang);
      route();
    });
  }
  document.getElementById("sign-out").addEventListener("click", signOut);
  document.getElementById("menu-toggle").addEventListener("click", (event) => {
    const open = event.currentTarget.getAttribute("aria-expanded") !== "true";
    showMenu(open);
    if (open) document.querySelector("#nav a").focus();
  });
  document.getElementById("nav").addEventListener("click", (event) => {
    if (event.target.closest("a")) showMenu(false);
  });
  document.addEventListener("keydown", (event) => {
    const toggle = document.getElementById("menu-toggle");
    if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
      showMenu(false);
      toggle.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".topbar")) showMenu(false);
  });
  document.getElementById("skip").addEventListener("click", (event) => {
    // The hash is the router's; the link only moves the focus.
    event.preventDefault();
    app.focus();
  });
  window.addEventListener("hashchange", hashChanged);
  window.addEventListener("beforeunload", (event) => {
    if (state.editor && isDirty(state.editor)) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  (async function start() {
    const result = await call("GET", "/ui/session", undefined, { signIn: true });
    state.session = result.ok ? result.data : null;
    route();
    if (state.session !== null) probeMailbox();
  })();
})();
