"""Structured logs: every record carries the request, merchant and run it belongs to.

`log_context(...)` binds ids for the enclosed code (a contextvar, so threads and tasks each have their
own); `ContextFilter` copies them onto each record; with LOG_FORMAT=json the formatter writes one JSON
object per line (python-json-logger), ready for a log pipeline. `RequestIdMiddleware` binds the request's
`X-Request-Id` (or a new one) and echoes it back.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse

FIELDS = ("request_id", "merchant_id", "run_id")
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "tokenhub_log_context", default=None
)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@contextlib.contextmanager
def log_context(**ids: str) -> Iterator[None]:
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in ids.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**ids: str) -> None:
    """Add ids to the current context (e.g. the merchant, once authentication has found it)."""
    _context.set({**(_context.get() or {}), **{k: v for k, v in ids.items() if v}})


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get() or {}
        for name in FIELDS:
            setattr(record, name, context.get(name, ""))
        return True


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-Id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = _context.set({"request_id": request_id})
        try:
            response = self.get_response(request)
        finally:
            _context.reset(token)
        response["X-Request-Id"] = request_id
        return response


def logging_config(*, level: str, json_format: bool) -> dict[str, Any]:
    fields = " ".join(f"%({name})s" for name in FIELDS)
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": f"%(asctime)s %(levelname)s %(name)s %(message)s {fields}",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
        if json_format
        else {
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s [run=%(run_id)s merchant=%(merchant_id)s req=%(request_id)s]"
        }
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "tokenhub.logs.ContextFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["context"]}
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {name: {"level": "WARNING"} for name in ("httpx", "httpx2", "httpcore", "openai", "axes")},
    }
