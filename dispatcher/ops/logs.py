"""Log lines for operators: one per delivery step, as text or as JSON.

Every step of a delivery logs the event id, delivery id, group, kind and SMTP
code; never an address book, a message body or a secret.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

FIELDS_ATTRIBUTE = "dispatcher_fields"


def step(logger: logging.Logger, level: int, what: str, **fields: Any) -> None:
    """Log ``what`` with its fields: as key=value text, and as data for JSON logs."""
    shown = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
    logger.log(level, "%s %s", what, shown, extra={FIELDS_ATTRIBUTE: {"step": what, **fields}})


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the step's fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.processName,
        }
        fields = getattr(record, FIELDS_ATTRIBUTE, None)
        if isinstance(fields, dict):
            data.update(fields)
        elif record.name == "uvicorn.access" and isinstance(record.args, tuple):
            data.update(_access_fields(record.args))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def _access_fields(args: tuple[Any, ...]) -> dict[str, Any]:
    # uvicorn's access line: (client, method, path, HTTP version, status).
    if len(args) != 5:
        return {}
    client, method, path, version, status = args
    return {"client": client, "method": method, "path": path, "http": version, "status": status}


def use_json(logger: logging.Logger) -> None:
    """Switch every handler of ``logger`` to JSON lines."""
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())


# uvicorn's loggers (``dispatcher api`` configures their handlers), asyncio's.
API_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "asyncio")


def use_json_for_api(log_format: str) -> None:
    """In the API process with ``DISPATCHER_LOG_FORMAT=json``: every log line as JSON.

    uvicorn's own lines (start, stop, errors, one access line per request)
    turn into the workers' format; the product's loggers, which have no
    handler of their own, get one on the root logger.
    """
    if log_format != "json":
        return
    for name in API_LOGGERS:
        use_json(logging.getLogger(name))
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    product = logging.getLogger("dispatcher")
    if product.level == logging.NOTSET:
        product.setLevel(logging.INFO)
