"""The baseline a team writes first: one Celery task per e-mail, new SMTP connection each.

It renders with a plain Jinja2 environment, builds the message with the
standard library, opens a connection, sends, closes. Default Celery settings.
"""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage

import jinja2
from celery import Celery

app = Celery(
    "naive",
    broker=os.environ.get("NAIVE_BROKER_URL", "redis://127.0.0.1:6379/0"),
)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_default_queue=os.environ.get("NAIVE_QUEUE", "naive"),
    broker_transport_options={"global_keyprefix": os.environ.get("NAIVE_PREFIX", "")},
)


@app.task(name="naive.send_email")
def send_email(to: str, sender: str, subject: str, body: str, context: dict[str, object]) -> None:
    environment = jinja2.Environment(autoescape=False)
    # The built-in texts format dates with a filter of their own.
    environment.filters["datetime"] = str
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = environment.from_string(subject).render(context)
    message.set_content(environment.from_string(body).render(context))
    with smtplib.SMTP(os.environ["NAIVE_SMTP_HOST"], int(os.environ["NAIVE_SMTP_PORT"])) as smtp:
        smtp.send_message(message)
