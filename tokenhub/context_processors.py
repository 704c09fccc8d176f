"""Template context every page shares that belongs to no app."""

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}  # noqa: S104 - a host name compared, not bound


def answers_are_simulated() -> bool:
    """Whether the tools answer from the local simulator rather than a real model.

    QWEN_SIMULATED says so outright; unset, an endpoint on this machine is taken to be the simulator (the
    real Qwen endpoint is never on loopback).
    """
    if settings.QWEN_SIMULATED is not None:
        return bool(settings.QWEN_SIMULATED)
    return (urlsplit(settings.QWEN_BASE_URL).hostname or "") in _LOOPBACK


def simulated_answers(request: HttpRequest) -> dict[str, Any]:
    return {"simulated_answers": answers_are_simulated()}
