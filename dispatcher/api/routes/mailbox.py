"""The local mail sink's mailbox (``dispatcher up``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from dispatcher.api import schemas
from dispatcher.api.routes.common import AUTH, Offset, Reader, problems
from dispatcher.api.runtime import runtime_of
from dispatcher.smtp.mailbox import FILE_NAME, MailSummary, list_messages, read_message

router = APIRouter()


NO_MAILBOX: dict[int | str, dict[str, Any]] = {
    404: {
        "model": schemas.Problem,
        "description": "No local mail sink here (DISPATCHER_MAILSINK_DIR is unset), "
        "or no such message.",
    }
}


def _mail_summary(summary: MailSummary) -> schemas.MailSummary:
    return schemas.MailSummary(
        file=summary.file,
        received_at=summary.received_at,
        mail_from=summary.mail_from,
        rcpt_tos=list(summary.rcpt_tos),
        message_id=summary.message_id,
        subject=summary.subject,
        sender=summary.sender,
        to=summary.to,
    )


@router.get(
    "/v1/mailbox",
    tags=["mailbox"],
    response_model=schemas.MailboxPage,
    responses={**problems(*AUTH), **NO_MAILBOX},
)
def mailbox(
    request: Request,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> schemas.MailboxPage:
    """The messages the local mail sink of `dispatcher up` kept, newest first."""
    page = list_messages(runtime_of(request).config.mailsink_dir, limit, offset)
    return schemas.MailboxPage(
        items=[_mail_summary(item) for item in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
        next_offset=offset + limit if offset + limit < page.total else None,
    )


@router.get(
    "/v1/mailbox/{file}",
    tags=["mailbox"],
    response_model=schemas.MailMessage,
    responses={**problems(*AUTH), **NO_MAILBOX},
)
def mail_message(
    request: Request,
    file: Annotated[
        str,
        Path(
            pattern=f"^{FILE_NAME.pattern}$",
            description="A file name from GET /v1/mailbox; no other name is ever opened.",
        ),
    ],
    _: Reader,
) -> schemas.MailMessage:
    """One message of the local mail sink: its headers, its text part and its HTML part."""
    message = read_message(runtime_of(request).config.mailsink_dir, file)
    summary = message.summary
    return schemas.MailMessage(
        file=summary.file,
        received_at=summary.received_at,
        mail_from=summary.mail_from,
        rcpt_tos=list(summary.rcpt_tos),
        headers=schemas.MailHeaders(
            sender=message.sender,
            to=message.to,
            cc=message.cc,
            subject=message.subject,
            date=message.date,
            message_id=message.message_id,
        ),
        text=message.text,
        html=message.html,
    )
