"""Read a bounce: what a message sent to a return path says about the e-mail it returns.

``parse_bounce(raw)`` never raises. It reads, in this order:

1. a delivery status notification (RFC 3464: multipart/report with a
   message/delivery-status part), one entry per recipient with its status code;
2. out-of-office and other automatic replies (RFC 3834 and the usual headers
   and subjects), which say nothing about the address;
3. the non-standard formats (Exim, qmail, old Exchange, ...), through the
   detectors of GNU Mailman's ``flufl.bounce``, with the status code taken from
   the text next to each address where there is one.

Anything else, and anything too large or too deeply nested to read safely,
is ``unknown``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.errors import MessageError
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses
from enum import StrEnum
from itertools import islice
from typing import Literal

from flufl.bounce import all_failures

log = logging.getLogger(__name__)

MAX_BOUNCE_BYTES = 10 * 1024 * 1024
# The stdlib parser recurses once per nested multipart or message part and would
# reach Python's recursion limit near a thousand; real bounces nest fewer than
# ten, so a message that declares more than this many containers is refused
# before it is parsed.
MAX_CONTAINERS = 100
MAX_HEADER_BYTES = 1024 * 1024  # of the message's own header; real ones are a few kilobytes
MAX_DELIMITERS = 2000  # lines starting "--": an upper bound on the MIME parts
MAX_DEPTH = 12  # MIME levels this module follows
MAX_PARTS = 500  # MIME parts this module looks at
MAX_RECIPIENTS = 100  # recipients reported from one bounce
MAX_DIAGNOSTIC = 500  # characters of diagnostic text kept
MAX_FIELD = 2000  # characters of one report field looked at
MAX_TEXT = 256 * 1024  # characters of human-readable text searched
MAX_HOST = 255
MAX_MENTIONS = 20  # mentions of one address looked at for its reason
# flufl.bounce runs some fifty patterns over every line of the message; it is
# given the head of the message only. Every format puts its report before the
# returned copy, and a report is a few kilobytes.
MAX_HEURISTIC_BYTES = 128 * 1024


class Classification(StrEnum):
    """What the bounce means for the address; values match ``domain.statuses.BounceKind``."""

    HARD = "hard"  # permanent (5.x.x, failed): suppress the address
    SOFT = "soft"  # temporary (4.x.x, delayed) or mailbox full: note it only
    AUTO_REPLY = "auto_reply"  # out of office and the like: note it only
    UNKNOWN = "unknown"  # not a bounce, or nothing could be read from it


# Which reading gave the answer: the report, an automatic reply's markers, the
# text heuristics, nothing, or a message refused unread.
Source = Literal["dsn", "auto_reply", "text", "none", "refused"]


@dataclass(frozen=True)
class BouncedRecipient:
    """One recipient as the bounce reports it."""

    # None when the report names no usable address; the return path still names the delivery.
    address: str | None
    classification: Classification
    status: str | None = None  # RFC 3463 enhanced status code, e.g. "5.1.1"
    action: str | None = None  # RFC 3464 Action: failed, delayed, delivered, relayed, expanded
    smtp_code: int | None = None  # the remote server's reply code, e.g. 550
    diagnostic: str | None = None  # one line, at most MAX_DIAGNOSTIC characters
    remote_mta: str | None = None
    original_recipient: str | None = None  # RFC 3464 Original-Recipient, when given


@dataclass(frozen=True)
class Bounce:
    """The reading of one message sent to a return path."""

    classification: Classification
    recipients: tuple[BouncedRecipient, ...] = ()
    # The envelope sender the returned e-mail had, where the message shows it: the
    # returned copy's Return-Path, else the address the bounce itself was sent to.
    return_path: str | None = None
    envelope_id: str | None = None  # RFC 3461 ENVID, echoed as Original-Envelope-Id
    original_message_id: str | None = None  # Message-ID of the returned copy
    reporting_mta: str | None = None
    source: Source = "none"

    @property
    def status(self) -> str | None:
        """The first status code reported, if any."""
        return next((r.status for r in self.recipients if r.status), None)

    @property
    def diagnostic(self) -> str | None:
        """The first diagnostic reported, if any."""
        return next((r.diagnostic for r in self.recipients if r.diagnostic), None)

    @property
    def addresses(self) -> tuple[str, ...]:
        """The addresses reported, in order, without repeats."""
        return tuple(dict.fromkeys(r.address for r in self.recipients if r.address))


def parse_bounce(raw: bytes) -> Bounce:
    """Read a bounce message; anything unreadable is ``unknown``, nothing raises."""
    try:
        return _parse(raw)
    # A bounce is written by a stranger: whatever breaks in reading it, the
    # answer is "unknown" and the SMTP server goes on, never a failed session.
    except Exception:
        log.warning("bounce could not be read", exc_info=True)
        return Bounce(Classification.UNKNOWN, source="refused")


# --------------------------------------------------------------------------- the reading


def _parse(raw: bytes) -> Bounce:
    raw = bytes(raw)  # a bytearray or memoryview will do; anything else raises, and is refused
    if not raw.strip() or len(raw) > MAX_BOUNCE_BYTES:
        return Bounce(Classification.UNKNOWN, source="refused")
    if (
        _header_size(raw) > MAX_HEADER_BYTES
        or len(_CONTAINER.findall(raw)) > MAX_CONTAINERS
        # Every MIME part costs the parser a message object with parsed headers
        # (milliseconds each, policy.default): tens of thousands of tiny parts
        # would hold it for a minute. Each part starts on a line beginning "--".
        or len(_DELIMITER.findall(raw)) > MAX_DELIMITERS
    ):
        return Bounce(Classification.UNKNOWN, source="refused")
    # The parser turns each block of a delivery-status part into a message of its
    # own, which is slow by the hundred thousand; no genuine report lists that many.
    if len(_FINAL_RECIPIENT_BYTES.findall(raw)) > MAX_RECIPIENTS * 10:
        return Bounce(Classification.UNKNOWN, source="refused")
    # Bounces arrive over SMTP with CRLF, from files with LF, rarely with CR
    # alone; one line ending keeps every pattern below (and flufl.bounce's,
    # which compare whole lines) simple.
    raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    parts = _Parts.of(msg)
    found = _Found(
        return_path=parts.return_path or _first_address(_header(msg, "to")),
        original_message_id=parts.original_message_id,
    )

    reports = parts.reports or _loose_reports(parts.text)
    report_text = parts.report
    report = _read_reports(reports, report_text)
    if report is not None and report.recipients:
        return found.bounce(report.recipients, "dsn", report.envelope_id, report.reporting_mta)

    # Mail systems mark their bounces "Auto-Submitted: auto-replied" as well, so
    # the markers count only on a message that does not present itself as a
    # failure report.
    if report is None and not _looks_like_bounce(msg) and _auto_reply_marker(msg):
        return found.bounce((), "auto_reply")

    # Heuristics pick addresses out of text; the returned e-mail's own sender,
    # the bounce's sender and receiver and message ids are never its recipient,
    # and taking one for it would suppress our own sender address.
    not_recipients = {
        a.lower()
        for a in (
            *parts.senders,
            found.return_path,
            _first_address(_header(msg, "to")),
            _first_address(_header(msg, "from")),
        )
        if a
    }
    recipients = _read_text(msg, raw, report_text, not_recipients) or _read_last_resort(
        msg, report_text, not_recipients
    )
    return found.bounce(recipients, "text" if recipients else "none")


def _header_size(raw: bytes) -> int:
    """The length of the message's own header section (the whole message if it never ends)."""
    ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if i >= 0]
    return min(ends) if ends else len(raw)


@dataclass(frozen=True)
class _Found:
    """What was learned about the returned e-mail, whatever the bounce turns out to be."""

    return_path: str | None
    original_message_id: str | None

    def bounce(
        self,
        recipients: tuple[BouncedRecipient, ...],
        source: Source,
        envelope_id: str | None = None,
        reporting_mta: str | None = None,
    ) -> Bounce:
        if source == "auto_reply":
            classification = Classification.AUTO_REPLY
        else:
            kinds = {r.classification for r in recipients}
            # One e-mail has one recipient here; should a report list several, the
            # worst news decides, and each recipient keeps its own verdict.
            classification = next(
                (c for c in (Classification.HARD, Classification.SOFT) if c in kinds),
                Classification.UNKNOWN,
            )
        return Bounce(
            classification=classification,
            recipients=recipients,
            return_path=self.return_path,
            envelope_id=envelope_id,
            original_message_id=self.original_message_id,
            reporting_mta=reporting_mta,
            source=source,
        )


# --------------------------------------------------------------------------- MIME parts


@dataclass
class _Parts:
    """The parts of a bounce that matter, found without recursion."""

    reports: list[list[dict[str, str]]]
    text: str
    return_path: str | None
    original_message_id: str | None
    senders: frozenset[str]  # addresses that name a sender or a message, never a recipient

    @property
    def report(self) -> str:
        """The text before the returned copy: what the reporting server wrote."""
        return _MARKER.split(self.text, maxsplit=1)[0]

    @classmethod
    def of(cls, msg: Message) -> _Parts:
        reports: list[list[dict[str, str]]] = []
        texts: list[str] = []
        html: list[str] = []
        originals: list[dict[str, str]] = []
        for part in _walk(msg):
            ctype = part.get_content_type()
            if ctype in _REPORT_TYPES:
                reports.append(_report_blocks(part))
            elif ctype == "message/rfc822":
                payload = part.get_payload()
                if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                    originals.append(_fields(payload[0]))
            elif ctype in {"text/rfc822-headers", "text/rfc822-header"}:
                originals.append(_parse_fields(_text_of(part)))
            elif sum(map(len, texts + html)) >= MAX_TEXT:
                continue
            elif ctype == "text/plain":
                texts.append(_text_of(part))
            elif ctype == "text/html":
                html.append(_TAG.sub(" ", _text_of(part)))
        if not texts and not html and not msg.is_multipart():
            # A multipart whose boundary is missing or wrong arrives as one text:
            # read it as such rather than not at all.
            texts.append(_text_of(msg))
        # Microsoft's NDRs sometimes explain only in HTML; plain text wins where both exist.
        text = "\n\n".join(texts or html)[:MAX_TEXT]
        return_path = next(
            (a for o in originals if (a := _first_address(o.get("return-path", "")))), None
        )
        if return_path is None:
            # Exim, qmail and Exchange quote the returned headers in the text.
            match = _RETURN_PATH_LINE.search(text)
            return_path = _address(match[1]) if match else None
        message_id = next(
            (_clean(o["message-id"], 255) for o in originals if o.get("message-id")), None
        )
        if message_id is None:
            found = _MESSAGE_ID_LINE.search(text)
            message_id = found[1] if found else None
        senders = {
            a
            for o in originals
            for name in _SENDER_FIELDS
            for _, raw_address in getaddresses([o.get(name, "")])
            if (a := _address(raw_address))
        }
        for line in _SENDER_LINE.finditer(text):
            senders.update(a for m in _ADDRESS_IN_TEXT.finditer(line[0]) if (a := _address(m[0])))
        return cls(reports, text, return_path, message_id or None, frozenset(senders))


def _walk(msg: Message) -> Iterator[Message]:
    """Each part down to MAX_DEPTH, without descending into a returned message."""
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        yield part
        # message/rfc822 is the returned e-mail: its text is ours, not the report.
        if depth >= MAX_DEPTH or part.get_content_maintype() != "multipart":
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            children = [p for p in payload if isinstance(p, Message)]
            stack.extend((child, depth + 1) for child in reversed(children))


def _text_of(part: Message) -> str:
    """A text part's content as str, whatever its charset claims."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    # Four bytes a character at most: the clipped text still fills MAX_TEXT.
    payload = payload[: MAX_TEXT * 4]
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")[:MAX_TEXT]
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", errors="replace")[:MAX_TEXT]


def _fields(block: Message) -> dict[str, str]:
    """A header block as lowercase name -> unfolded value; the first of a name wins."""
    fields: dict[str, str] = {}
    # raw_items(): the values as sent; policy.default's structured header classes
    # would have to understand every malformed field before we could read it.
    for name, value in block.raw_items():
        fields.setdefault(str(name).strip().lower(), _unfold(str(value)))
    return fields


def _parse_fields(text: str) -> dict[str, str]:
    """Header fields from text (a report block written out, or returned headers)."""
    # Pieces are joined at the end: appending to a string held in a dict copies
    # it every time, which turns a value folded over many lines quadratic.
    fields: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line[:1] in {" ", "\t"}:
            if current is not None:
                current.append(line.strip())
            continue
        key, colon, value = line.partition(":")
        key = key.strip().lower()
        # The first of a name wins, as in _fields.
        if not colon or not key or " " in key or key in fields:
            current = None
            continue
        current = fields[key] = [value.strip()]
    return {k: " ".join(v)[:MAX_FIELD] for k, v in fields.items()}


def _report_blocks(part: Message) -> list[dict[str, str]]:
    """The header blocks of a delivery-status part: per-message first, then per-recipient."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        # text/delivery-status from old MTAs: split the blocks ourselves.
        return _text_blocks(_text_of(part))
    blocks: list[dict[str, str]] = []
    for block in payload[: MAX_RECIPIENTS + 1]:
        if not isinstance(block, Message):
            continue
        blocks.append(_fields(block))
        # The parser splits message/delivery-status into blocks, but reads
        # message/global-delivery-status (RFC 6533) as one message whose body
        # holds the per-recipient blocks.
        body = block.get_payload()
        if isinstance(body, str) and body.strip():
            body = body.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            blocks.extend(_text_blocks(body))
    return blocks[: MAX_RECIPIENTS + 1]


def _text_blocks(text: str) -> list[dict[str, str]]:
    blocks = _PARAGRAPH_END.split(text[:MAX_TEXT].strip())
    return [f for f in (_parse_fields(b) for b in blocks[: MAX_RECIPIENTS + 1]) if f]


def _loose_reports(text: str) -> list[list[dict[str, str]]]:
    """Report blocks found in the text of a message whose MIME structure is broken."""
    if not _FINAL_RECIPIENT_LINE.search(text):
        return []
    blocks = [_parse_fields(b) for b in _PARAGRAPH_END.split(text)]
    kept = [b for b in blocks if "final-recipient" in b or "reporting-mta" in b]
    return [kept] if any("final-recipient" in b for b in kept) else []


# --------------------------------------------------------------------------- RFC 3464


@dataclass(frozen=True)
class _Report:
    recipients: tuple[BouncedRecipient, ...]
    envelope_id: str | None
    reporting_mta: str | None


def _read_reports(reports: list[list[dict[str, str]]], report_text: str) -> _Report | None:
    """The recipients of every delivery-status part, or None when there is none."""
    if not reports:
        return None
    recipients: list[BouncedRecipient] = []
    envelope_id = reporting_mta = None
    for blocks in reports:
        for block in blocks:
            if "final-recipient" not in block and "action" not in block:
                # The per-message block (or an unknown one): Reporting-MTA and ENVID live here.
                envelope_id = envelope_id or _clean(
                    block.get("original-envelope-id") or block.get("x-original-envelope-id"),
                    255,
                )
                reporting_mta = reporting_mta or _typed_value(block.get("reporting-mta"))
                continue
            if len(recipients) < MAX_RECIPIENTS:
                recipients.append(_recipient_of(block, report_text))
    return _Report(tuple(recipients), envelope_id or None, reporting_mta)


def _recipient_of(block: dict[str, str], report_text: str) -> BouncedRecipient:
    # Validated as sent: dropping a control character could make another address.
    address = _address(_typed(block.get("final-recipient"))[1])
    original = _address(_typed(block.get("original-recipient"))[1])
    address = address or original
    action = _clean(block.get("action"), 40)
    action = action.split()[0].lower().rstrip(";") if action else None
    diagnostic_type, diagnostic_text = _typed(block.get("diagnostic-code"))
    diagnostic = _clean(diagnostic_text)
    status = _status(block.get("status"))
    # Only an SMTP diagnostic quotes a reply code; "X-Unix; 255" is an exit status.
    smtp_code = _smtp_code(diagnostic) if diagnostic_type in {"", "smtp"} else None
    if (not diagnostic or not status) and address:
        # Exchange and Office 365 put the remote server's words in the text part
        # ("Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound'");
        # a paragraph that quotes no code is prose, not a diagnostic.
        context = _context(report_text, address)
        if context.status or context.smtp_code:
            diagnostic = diagnostic or context.diagnostic
            smtp_code = smtp_code or context.smtp_code
            status = status or context.status
    status = _refine(status, diagnostic)
    return BouncedRecipient(
        address=address,
        classification=_classify(action, status, smtp_code) or Classification.UNKNOWN,
        status=status,
        action=action,
        smtp_code=smtp_code,
        diagnostic=diagnostic,
        remote_mta=_typed_value(block.get("remote-mta")),
        original_recipient=original,
    )


def _classify(
    action: str | None, status: str | None, smtp_code: int | None
) -> Classification | None:
    """The verdict on one recipient, or None when the report says it was delivered."""
    # "delayed" means the reporting server still tries: whatever code it quotes,
    # nothing is final yet.
    if action and action.startswith("delay"):
        return Classification.SOFT
    if action and action.startswith(("deliver", "relay", "expand")):
        return None
    if status:
        # Mailbox full (X.2.2) is soft even as 5.2.2: the address is real and its
        # owner can make room, and a suppression here is permanent and
        # installation-wide, so one full mailbox would silently cut a customer off
        # from every invoice and reminder. Many servers send 5.2.2 for a condition
        # that ends as soon as mail is read or deleted; repeated soft bounces are
        # the delivery policy's to weigh, not this parser's.
        if status == "5.2.2":
            return Classification.SOFT
        if status[0] == "5":
            return Classification.HARD
        if status[0] == "4":
            # Also when Action says "failed": the server gave up on a temporary
            # condition (a queue timeout), which says nothing against the address.
            return Classification.SOFT
        return None
    if smtp_code is not None:
        # Without an enhanced code, 552 is "exceeded storage allocation" (RFC 5321),
        # the old way of saying mailbox full: soft, as above.
        if smtp_code == 552:
            return Classification.SOFT
        if 500 <= smtp_code < 600:
            return Classification.HARD
        if 400 <= smtp_code < 500:
            return Classification.SOFT
    if action and action.startswith(("fail", "error")):  # OpenSMTPD writes "error"
        return Classification.HARD
    if action and action.startswith("expire"):
        # Non-standard (SendGrid): the queue timed out on a temporary condition.
        return Classification.SOFT
    return None


# --------------------------------------------------------------------------- automatic replies


def _auto_reply_marker(msg: Message) -> str | None:
    """The header that marks the message as automatic, or None."""
    submitted = _header(msg, "auto-submitted").split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return "auto-submitted"
    precedence = _header(msg, "precedence").strip().lower()
    if precedence == "auto_reply":
        return "precedence"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        value = _header(msg, name).strip().lower()
        if value and value not in {"no", "false", "0"}:
            return name
    if _header(msg, "x-apple-action").strip().lower() == "vacation":
        return "x-apple-action"
    if _AUTO_REPLY_SUBJECT.search(_header(msg, "subject")):
        return "subject"
    return None


def _looks_like_bounce(msg: Message) -> bool:
    """Whether the message presents itself as a delivery failure (for auto-reply markers)."""
    # Exchange's marker counts when present, even empty (as Exchange sends it).
    if _header(msg, "x-failed-recipients") or "x-ms-exchange-message-is-ndr" in msg:
        return True
    # The sender's local part alone: some systems send as a bare "mailer-daemon".
    sender = _header(msg, "from")
    try:
        addresses = [a for _, a in getaddresses([sender])]
    except (ValueError, IndexError, TypeError):
        addresses = []
    if any(a.split("@")[0].strip().lower() in _DAEMONS for a in addresses):
        return True
    return bool(_BOUNCE_SUBJECT.search(_header(msg, "subject")))


# --------------------------------------------------------------------------- text bounces


def _read_text(
    msg: Message, raw: bytes, report: str, not_recipients: set[str]
) -> tuple[BouncedRecipient, ...]:
    """Recipients from a non-standard bounce: flufl.bounce's detectors and Exim's header."""
    temporary, permanent = _flufl(raw)
    # Exim names the failed recipients in a header of its own.
    failed = [
        a for _, x in getaddresses([_header(msg, "x-failed-recipients")]) if (a := _address(x))
    ][:MAX_RECIPIENTS]
    found = dict.fromkeys(
        (a, verdict)
        for a, verdict in [
            *((a, Classification.HARD) for a in permanent),
            *((a, Classification.HARD) for a in failed),
            *((a, Classification.SOFT) for a in temporary),
        ]
        if a.lower() not in not_recipients
    )
    alone = len({a.lower() for a, _ in found}) == 1
    recipients: dict[str, BouncedRecipient] = {}
    for address, default in found:
        key = address.lower()
        if key in recipients or len(recipients) >= MAX_RECIPIENTS:
            continue
        context = _context(report, address)
        if alone and not (context.status or context.smtp_code):
            # Gmail writes the address, then a paragraph, then the server's reply:
            # with one recipient, the report's only reply code is that recipient's.
            context = _first_reply(report)
        # The code next to the address, where there is one, says more than which
        # of flufl.bounce's two sets the address came back in.
        verdict = _classify(None, context.status, context.smtp_code) or default
        recipients[key] = BouncedRecipient(
            address=address,
            classification=verdict,
            status=context.status,
            action="failed" if verdict is Classification.HARD else "delayed",
            smtp_code=context.smtp_code,
            diagnostic=context.diagnostic,
            remote_mta=context.remote_mta,
        )
    return tuple(recipients.values())


def _flufl(raw: bytes) -> tuple[list[str], list[str]]:
    """flufl.bounce's temporary and permanent failures, as valid addresses."""
    # flufl.bounce is written for Mailman's compat32 messages; a second parse in
    # that policy gives it the strings it expects.
    try:
        head = raw[:MAX_HEURISTIC_BYTES]
        if len(raw) > MAX_HEURISTIC_BYTES:
            head = head[: head.rfind(b"\n") + 1] or head
        msg = message_from_bytes(head)
        if msg.get("from") is None:
            # Its Yale detector indexes the From header's first address and
            # raises without one, which ends the whole scan before the detectors
            # for Postfix, qmail and the rest have run.
            msg["From"] = "<>"
        temporary, permanent = all_failures(msg)
    # Its heuristics meet the same strangers' messages; a detector that breaks
    # means "no addresses found", not a failed bounce.
    except Exception:
        log.info("flufl.bounce could not read a bounce", exc_info=True)
        return [], []

    def valid(found: frozenset[bytes]) -> list[str]:
        decoded = (b.decode("ascii", errors="replace") for b in sorted(found))
        return [a for a in (_address(d) for d in decoded) if a][:MAX_RECIPIENTS]

    return valid(temporary), valid(permanent)


def _read_last_resort(
    msg: Message, report: str, not_recipients: set[str]
) -> tuple[BouncedRecipient, ...]:
    """A failure report no detector knows: the reply code it quotes, if it quotes one."""
    if not _looks_like_bounce(msg):
        return ()
    context = _first_reply(report)
    verdict = _classify(None, context.status, context.smtp_code)
    if verdict is None:
        return ()
    # The recipient is the one address the report mentions that is none of the
    # senders; with more or none, the return path alone names the delivery.
    candidates = {
        a.lower(): a
        for m in _ADDRESS_IN_TEXT.finditer(report)
        if (a := _address(m[0]))
        and a.lower() not in not_recipients
        and a.split("@")[0].lower() not in _DAEMONS
    }
    address = next(iter(candidates.values())) if len(candidates) == 1 else None
    return (
        BouncedRecipient(
            address=address,
            classification=verdict,
            status=context.status,
            action="failed" if verdict is Classification.HARD else "delayed",
            smtp_code=context.smtp_code,
            diagnostic=context.diagnostic,
            remote_mta=context.remote_mta,
        ),
    )


def _first_reply(report: str) -> _Context:
    """The paragraph of a report from its first quoted reply code on."""
    for pattern in (_REPLY_AND_STATUS, _REPLY_AFTER_WORD, _REPLY_AT_LINE_START, _STATUS_FAILED):
        match = pattern.search(report)
        if match:
            line_start = report.rfind("\n", 0, match.start()) + 1
            paragraph = _PARAGRAPH_END.split(report[line_start : line_start + 2000], maxsplit=1)
            return _context_of(paragraph[0])
    return _Context()


@dataclass(frozen=True)
class _Context:
    status: str | None = None
    smtp_code: int | None = None
    diagnostic: str | None = None
    remote_mta: str | None = None


def _context(report: str, address: str) -> _Context:
    """What a report says next to an address: the paragraph that follows it."""
    if not report or not address:
        return _Context()
    first: str | None = None
    # Where an address is repeated, the first few mentions are enough; a text
    # that repeats it thousands of times is not a report.
    for match in islice(re.finditer(re.escape(address), report, re.I), MAX_MENTIONS):
        following = report[match.end() : match.end() + 2000]
        paragraph = _PARAGRAPH_END.split(following, maxsplit=1)[0].lstrip(">:]) \t\r\n")
        if _status_in(paragraph) or _smtp_code(paragraph):
            return _context_of(paragraph)
        first = paragraph if first is None else first
    return _context_of(first) if first is not None else _Context()


def _context_of(paragraph: str) -> _Context:
    diagnostic = _clean(paragraph)
    status = _status_in(paragraph)
    smtp_code = _smtp_code(paragraph)
    host = _HOST.search(paragraph)
    return _Context(
        status=status,
        smtp_code=smtp_code,
        diagnostic=diagnostic,
        remote_mta=host[1].lower() if host else None,
    )


# --------------------------------------------------------------------------- small readers


def _header(msg: Message, name: str) -> str:
    """A header's value as one line of text, "" when absent or unreadable."""
    try:
        value = msg.get(name)
    except (MessageError, ValueError, IndexError, TypeError, AttributeError):
        # policy.default parses structured headers on access; a malformed one
        # is read as if it were absent.
        return ""
    return _unfold(str(value))[:MAX_FIELD] if value is not None else ""


def _unfold(value: str) -> str:
    # Non-ASCII bytes in raw headers arrive as surrogate escapes; make them text.
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return re.sub(r"\r?\n[ \t]*", " ", value).strip()[:MAX_FIELD]


def _typed_value(value: str | None) -> str | None:
    """The value of a typed report field ("dns; mx.example.net"), cleaned."""
    return _clean(_typed(value)[1], MAX_HOST)


def _typed(value: str | None) -> tuple[str, str]:
    """A typed report field's type in lowercase ("" when untyped) and its value."""
    if not value:
        return "", ""
    kind, semicolon, rest = value.partition(";")
    if semicolon and _TYPE.fullmatch(kind.strip()):
        return kind.strip().lower(), rest
    return "", value


def _clean(value: str | None, limit: int = MAX_DIAGNOSTIC) -> str | None:
    """One line of printable text: controls dropped, whitespace collapsed, clipped."""
    if not value:
        return None
    value = value[: limit * 4]
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in value
        # Cc: C0/C1 controls; Cf: format characters such as bidi overrides that
        # could disguise the text where an administrator reads it; Cs: lone surrogates.
        if ch.isspace() or unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co"}
    )
    kept = " ".join(kept.split())[:limit].strip()
    return kept or None


def _address(value: str | None) -> str | None:
    """A plain address (domain in lowercase), or None for anything else."""
    if not value:
        return None
    value = value.strip().strip("<>").strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    if len(value) > 254 or _ADDRESS.fullmatch(value) is None:
        return None
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def _first_address(value: str) -> str | None:
    if not value:
        return None
    try:
        pairs = getaddresses([value[:MAX_FIELD]])
    except (ValueError, IndexError, TypeError):
        return None
    return next((a for _, addr in pairs if (a := _address(addr))), None)


def _status(value: str | None) -> str | None:
    """An RFC 3463 code at the start of a Status field ("5.1.1 (user unknown)" -> "5.1.1")."""
    if not value:
        return None
    match = _STATUS_START.match(value.strip())
    return _canonical(match) if match else None


def _status_in(text: str) -> str | None:
    """The first RFC 3463 code in free text, preferring one that follows a reply code."""
    match = _REPLY_AND_STATUS.search(text)
    if match:
        return _canonical(match, 2)
    match = _STATUS_ANYWHERE.search(text)
    return _canonical(match) if match else None


def _canonical(match: re.Match[str], group: int = 1) -> str:
    return ".".join(str(int(n)) for n in match[group].split("."))


def _refine(status: str | None, diagnostic: str | None) -> str | None:
    """The Status field, or the remote server's own code where it says more."""
    found = _status_in(diagnostic or "")
    if status is None or found is None or found[0] != status[0]:
        return status or found
    # Sendmail maps every rejection at RCPT to 5.1.1, while the server's reply it
    # quotes ("550 5.7.1 IP address blacklisted", "552 5.2.2 Over quota") is
    # the true reason; a generic X.0.0 gives way to anything more specific.
    strong = _REPLY_AND_STATUS.search(diagnostic or "")
    if status.endswith(".0.0") or strong:
        return found
    return status


def _smtp_code(text: str | None) -> int | None:
    """The remote server's three-digit reply code in a diagnostic, if one is quoted."""
    if not text:
        return None
    # Only where a reply code stands: before an enhanced code, at the start, or
    # after "said:" and the like; a bare number elsewhere may be a port or a size.
    for pattern in (_REPLY_AND_STATUS, _REPLY_AT_START, _REPLY_AFTER_WORD):
        match = pattern.search(text)
        if match:
            return int(match[1])
    return None


# --------------------------------------------------------------------------- patterns

_CONTAINER = re.compile(rb"(?im)^content-type:[ \t]*(?:\r?\n[ \t]+)?(?:multipart|message)/")
_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]{0,30}")
_SENDER_FIELDS = ("from", "sender", "reply-to", "return-path", "message-id")
_SENDER_LINE = re.compile(
    r"(?im)^[ \t]*(?:from|sender|reply-to|return-path|message-id|references|in-reply-to)"
    r"[ \t]*:.{0,1000}$"
)
_REPORT_TYPES = {
    "message/delivery-status",
    "message/global-delivery-status",
    "text/delivery-status",
}
# No "<" inside a tag, so a run of "<" costs one step each, not a scan to the end.
_TAG = re.compile(r"<[^<>]{0,2000}>")
_MESSAGE_ID_LINE = re.compile(r"(?im)^[ \t]*message-id:[ \t]*(<[^<>\s]{3,250}>)[ \t]*$")
_RETURN_PATH_LINE = re.compile(r"(?im)^[ \t]*return-path:[ \t]*<?([^\s<>]{3,254})>?[ \t]*$")
# Printable ASCII without specials in the local part, a host name or literal after
# the @: what an SMTP envelope can carry and a suppression list can hold.
_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f.:IPv]{2,60}\])"
)
_CODE = r"[245]\.\d{1,3}\.\d{1,3}"
# Not inside an IP address or a version number: "10.5.1.1" holds no "5.1.1".
_STATUS_START = re.compile(rf"({_CODE})(?![\w.]*\d)")
_STATUS_ANYWHERE = re.compile(rf"(?<![\w.])({_CODE})(?!\.?\d)")
_REPLY_AND_STATUS = re.compile(rf"(?<![\w.])([245]\d\d)[ \t-]+#?({_CODE})(?!\.?\d)")
_REPLY_AT_START = re.compile(r"\A[ \t]*(?:smtp[ \t]*;[ \t]*)?([245][0-5]\d)(?![\w.])", re.I)
_REPLY_AFTER_WORD = re.compile(
    r"\b(?:said|returned|reply|response|responsecode|code|error|answered|replied|responded)\b"
    r"[^0-9\n]{0,40}?(?<![\w.])([45][0-5]\d)(?![\w.])",
    re.I,
)
_HOST = re.compile(
    r"\bhost[ \t]+([A-Za-z0-9](?:[A-Za-z0-9.-]{0,250})\.[A-Za-z]{2,63})\.?[ \t]*\[", re.I
)
_STATUS_FAILED = re.compile(r"(?<![\w.])([45]\.\d{1,3}\.\d{1,3})(?!\.?\d)")
_REPLY_AT_LINE_START = re.compile(r"(?m)^[ \t]*([45][0-5]\d)[ \t-]+\S")
_DELIMITER = re.compile(rb"(?m)^--")
_FINAL_RECIPIENT_BYTES = re.compile(rb"(?im)^final-recipient[ \t]*:")
_FINAL_RECIPIENT_LINE = re.compile(r"(?im)^final-recipient[ \t]*:")
_ADDRESS_IN_TEXT = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}"
)
_PARAGRAPH_END = re.compile(r"\r?\n[ \t]*\r?\n")
# Where the returned copy starts in a text bounce: what follows is the e-mail, not the report.
_MARKER = re.compile(
    r"(?im)^[ \t]*(?:-{2,}[ \t]*This is a copy of|-{2,}[ \t]*Below this line is a copy"
    r"|-{2,}[ \t]*Original message|Original message headers:|-{2,}[ \t]*The header of the original"
    r"|-{2,}[ \t]*Original Message Header|-{2,}[ \t]*Unsent message follows"
    r"|[ \t]*Below is a copy of the original message|Message headers follow)"
)
_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "maildaemon", "mailerdaemon"}
_AUTO_REPLY_SUBJECT = re.compile(
    r"(?i)^\s*auto(?:matic)?[ _-]?(?:reply|response|answer)\b|^\s*auto:"
    r"|\bout[ -]of[ -](?:the[ -])?office\b|\bautomatic reply\b|\bauto[ -]?reply\b"
    r"|\babwesenheitsnotiz\b|\bautomatische antwort\b|\babwesenheit\b"
    r"|\br[ée]ponse automatique\b|\bautomatisch antwoord\b|\brisposta automatica\b"
    r"|\brespuesta autom[áa]tica\b|\bvacation (?:reply|notice)\b|\bon vacation\b"
)
_BOUNCE_SUBJECT = re.compile(
    r"(?i)undeliver|delivery status notification|mail delivery (?:failed|subsystem|system)"
    r"|returned mail|failure notice|delivery (?:failure|has failed|failed|delay|notification)"
    r"|delayed mail|warning: message .{0,80} delayed|could not be delivered"
    r"|error sending your mail|nicht zustellbar|unzustellbar|non[- ]?remis"
)
