"""Structured logs: one JSON object per line, each carrying the request id of its request.

The request id lives in a context variable set by the request middleware; a logging
filter copies it onto every record, including those of the generation worker threads
(they run in a copy of the request's context). ``fonti serve`` installs the config
through uvicorn's ``log_config``; tests and library use leave logging alone.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("fonti_request_id", default=None)

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Copies the current request id onto the record (``None`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", ...extra fields, "exc"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            out["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Plain lines with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [{request_id}]" if request_id else line


def log_config(level: str = "info", fmt: str = "json") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``fonti serve`` (passed to uvicorn as ``log_config``).

    uvicorn's own access log is off: the request middleware writes one line per request
    (``fonti.access``) with the request id, method, path, status and latency.
    """
    formatter = "fonti_json" if fmt == "json" else "fonti_text"
    handler = {
        "class": "logging.StreamHandler",
        "formatter": formatter,
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "fonti_json": {"()": JsonFormatter},
            "fonti_text": {"()": TextFormatter},
        },
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": "WARNING"},
        "loggers": {
            "service": {"level": lvl},
            "ingest": {"level": lvl},
            "fonti": {"level": lvl},
            "uvicorn": {"handlers": ["default"], "level": lvl, "propagate": False},
            "uvicorn.error": {"level": lvl},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
