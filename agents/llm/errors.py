"""What a model call can end in, as one exception family under the project's error base.

`message` is always safe to show a merchant; `detail` and `provider_code` are for logs and staff. This is
the bottom of the LLM client package: the rate limiter and the client raise these, nothing here imports them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import openai
from django.utils.translation import gettext_noop

from tokenhub.errors import ApplicationError

logger = logging.getLogger("agents.llm")


class LLMError(ApplicationError):
    """A model call that did not produce a usable answer. `message` is safe to show a merchant."""

    code = "model_error"
    status = 502
    retryable = False
    default_message = gettext_noop("The AI model could not complete this request.")

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        provider_code: str | None = None,
        detail: str = "",
        errors: list[dict[str, str]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code:
            self.code = code
        self.provider_status = status  # the provider's HTTP status; `status` is the API's
        self.provider_code = provider_code  # e.g. "Throttling.RateQuota", for logs and staff
        self.detail = detail  # for logs and staff, not for merchants
        self.errors = errors or []
        self.retry_after = retry_after
        self.details = {}
        Exception.__init__(self, f"{self.code}: {detail or self.message}")


class ModelBusy(LLMError):
    """Try again later: throttled (429), provider error (5xx), timeout, connection failure, local rate limit."""

    code = "model_busy"
    retryable = True
    default_message = gettext_noop("The AI model is busy right now; the run will be retried shortly.")


class ModelRejected(LLMError):
    """The provider refused the request; retrying cannot help. `code`: moderation, invalid_request,
    auth, model_not_found."""

    code = "invalid_request"
    default_message = gettext_noop("The AI model could not process this request.")


class ProviderArrearage(ModelRejected):
    """The operator's provider account is overdue (`Arrearage`): every call fails until someone pays."""

    code = "provider_unavailable"
    default_message = gettext_noop("The AI service is temporarily unavailable. Our team has been alerted.")


class InvalidModelOutput(LLMError):
    """The model answered, but not with JSON that fits the tool's output schema."""

    code = "invalid_output"
    default_message = gettext_noop(
        "The AI model returned an answer in an unexpected format. Please try again."
    )


_REJECTION_MESSAGES = {
    "moderation": gettext_noop(
        "The AI provider's content filter flagged this request. Please rephrase it and try again."
    ),
    "auth": gettext_noop("The AI service is not configured correctly. Our team has been alerted."),
    "model_not_found": gettext_noop("The AI model for this tool is not available right now."),
    "invalid_request": ModelRejected.default_message,
}


def _provider_code(exc: openai.APIStatusError) -> str | None:
    if exc.code:
        return exc.code
    body = exc.body if isinstance(exc.body, Mapping) else {}
    return body.get("code") or body.get("type")


def _retry_after(exc: openai.APIStatusError) -> float | None:
    try:
        return float(exc.response.headers.get("retry-after", ""))
    except ValueError:
        return None


def content_filtered(where: str) -> ModelRejected:
    """The provider's content filter stopped the answer (finish_reason `content_filter`): a moderation
    refusal, worded as every other one so that it reads in the merchant's language too."""
    return ModelRejected(
        _REJECTION_MESSAGES["moderation"], code="moderation", detail=f"content_filter ({where})"
    )


def map_error(exc: Exception, *, model: str, request_id: str | None = None) -> LLMError:
    """The provider's error as our exception family (docs/architecture.md, "The model endpoint")."""
    where = f"model={model} request_id={request_id}"
    if isinstance(exc, openai.ContentFilterFinishReasonError):  # the answer itself was filtered
        return content_filtered(where)
    if isinstance(exc, openai.APITimeoutError):  # subclass of APIConnectionError: check it first
        return ModelBusy(code="timeout", detail=f"timed out ({where})")
    if isinstance(exc, openai.APIConnectionError):
        return ModelBusy(code="connection_error", detail=f"{exc} ({where})")
    if not isinstance(exc, openai.APIStatusError):
        return LLMError(detail=f"{exc!r} ({where})")
    status, provider_code = exc.status_code, _provider_code(exc) or ""
    detail = f"HTTP {status} {provider_code}: {exc.message} ({where})"
    fields: dict[str, Any] = {"status": status, "provider_code": provider_code, "detail": detail}
    if provider_code == "Arrearage":
        # Not the merchant's fault and not transient: page the operator, fail the run without charge.
        logger.critical("Qwen account is in arrears; every model call will fail until it is paid. %s", detail)
        return ProviderArrearage(**fields)
    if status == 429 or status >= 500 or status == 408:
        return ModelBusy(
            code="rate_limited" if status == 429 else "provider_error",
            retry_after=_retry_after(exc),
            **fields,
        )
    if provider_code == "data_inspection_failed":
        kind = "moderation"
    elif status in (401, 403):
        kind = "auth"
        logger.error("Qwen endpoint refused our credentials. %s", detail)
    elif status == 404:
        kind = "model_not_found"
        logger.error("Qwen endpoint does not know the model. %s", detail)
    else:
        kind = "invalid_request"
    return ModelRejected(_REJECTION_MESSAGES[kind], code=kind, **fields)
