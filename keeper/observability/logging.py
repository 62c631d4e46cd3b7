"""Log formats: one JSON object per line for machines, `key=value` text for people.

Records may carry structured fields in `record.fields` (a dict, passed as
`logger.info(..., extra={"fields": {...}})`): JSON lines hold them as top-level keys,
text lines append them as `key=value`. Every line logged while a request is handled
carries its request id (see keeper.observability.middleware).

Only the standard library here: keeper/settings.py and gunicorn's master import this module
before Django is set up.
"""

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

JSON, TEXT = "json", "text"
LOG_FORMATS = (JSON, TEXT)

# The id of the request being handled by this thread or context, for every line logged meanwhile.
current_request_id: ContextVar[str | None] = ContextVar("keeper_request_id", default=None)


def default_log_format(stream: Any = None) -> str:
    """Text for a person at a terminal, JSON everywhere else (docker, systemd, CI, files)."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return TEXT if isatty is not None and isatty() else JSON


def iso_time(timestamp: float) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. 2026-01-31T12:00:00.123Z."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, the record's fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a stray object in a message's fields must not lose the line.
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time level logger message key=value ...` for development."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, style: str = "%", **kwargs: Any):
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s %(message)s", datefmt, style, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if not isinstance(fields, dict) or not fields:
            return text
        head, newline, rest = text.partition("\n")  # keep a traceback below the line
        pairs = " ".join(f"{name}={value}" for name, value in fields.items() if value is not None)
        return f"{head} {pairs}{newline}{rest}"


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == JSON else TextFormatter()


def logging_config(*, log_format: str, sql: bool) -> dict[str, Any]:
    """Django's LOGGING: everything to stderr in `log_format`; SQL at debug level when `sql`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "keeper.observability.logging.RequestIdFilter"}},
        "formatters": {
            "json": {"()": "keeper.observability.logging.JsonFormatter"},
            "text": {"()": "keeper.observability.logging.TextFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["request_id"]},
        },
        "root": {"handlers": ["console"], "level": "INFO"},
        "loggers": {
            "django.db.backends": {"level": "DEBUG" if sql else "WARNING"},
            # keeper.requests has one line per request; Django's own per-request lines (runserver's,
            # and "Not Found: /x" for every 4xx) would repeat it. 5xx stay, with their traceback.
            "django.request": {"level": "ERROR"},
            "django.server": {"level": "ERROR"},
            # sparecores-data logs its download URL and retries; keep them at warning.
            "sc_data": {"level": "WARNING"},
        },
    }
