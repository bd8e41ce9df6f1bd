"""Structured logs: one JSON object per line, fit for any log shipper.

Only what the service chooses to log is written (model, version, status, timings);
block secrets never reach a log call, and URIs are logged in their redacted form.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else was passed with ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time, level, logger, message and extras.

    Examples:
        >>> record = logging.makeLogRecord({"msg": "hi %s", "args": ("there",),
        ...                                 "levelname": "INFO", "name": "x", "status": 200})
        >>> payload = json.loads(JsonFormatter().format(record))
        >>> payload["message"], payload["status"]
        ('hi there', 200)
    """

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the service and uvicorn, all in JSON.

    Examples:
        >>> log_config()["formatters"]["json"]["()"]
        'knot_prefect.serving.logs.JsonFormatter'
    """
    handler = {"class": "logging.StreamHandler", "formatter": "json",
               "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "knot_prefect.serving.logs.JsonFormatter"}},
        "handlers": {"json": handler},
        "loggers": {
            name: {"handlers": ["json"], "level": level.upper(), "propagate": False}
            for name in ("knot_prefect.serving", "uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
