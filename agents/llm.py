"""The only code that talks to the Qwen endpoint (OpenAI-compatible mode), through LangChain's ChatOpenAI.

Calls are synchronous and thread-safe: a threads-pool worker runs many at once over one shared HTTP
client per (endpoint, model). Nothing here retries (`max_retries=0`): a retryable failure is raised as
`ModelBusy` and the Celery task retries it with backoff, so one slow provider never ties up a worker
thread in hidden retry loops, and every attempt goes through the rate limiter.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import openai
from django.conf import settings
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from agents.tokens import count_prompt_tokens, count_tokens

logger = logging.getLogger(__name__)

# The openai SDK refuses to start without a key; the simulator accepts any bearer token.
SIMULATOR_API_KEY = "sk-simulator"

Message = Mapping[str, Any]


# --- Errors ---------------------------------------------------------------------------------------


class LLMError(Exception):
    """A model call that did not produce a usable answer. `message` is safe to show a merchant."""

    code = "model_error"
    retryable = False
    default_message = "The AI model could not complete this request."

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
        self.status = status
        self.provider_code = provider_code  # e.g. "Throttling.RateQuota", for logs and staff
        self.detail = detail  # for logs and staff, not for merchants
        self.errors = errors or []
        self.retry_after = retry_after
        super().__init__(f"{self.code}: {detail or self.message}")


class ModelBusy(LLMError):
    """Try again later: throttled (429), provider error (5xx), timeout, connection failure, local rate limit."""

    code = "model_busy"
    retryable = True
    default_message = "The AI model is busy right now; the run will be retried shortly."


class ModelRejected(LLMError):
    """The provider refused the request; retrying cannot help. `code`: moderation, invalid_request,
    auth, model_not_found."""

    code = "invalid_request"
    default_message = "The AI model could not process this request."


class ProviderArrearage(ModelRejected):
    """The operator's provider account is overdue (`Arrearage`): every call fails until someone pays."""

    code = "provider_unavailable"
    default_message = "The AI service is temporarily unavailable. Our team has been alerted."


class InvalidModelOutput(LLMError):
    """The model answered, but not with JSON that fits the tool's output schema."""

    code = "invalid_output"
    default_message = "The AI model returned an answer in an unexpected format. Please try again."


_REJECTION_MESSAGES = {
    "moderation": "The AI provider's content filter flagged this request. Please rephrase it and try again.",
    "auth": "The AI service is not configured correctly. Our team has been alerted.",
    "model_not_found": "The AI model for this tool is not available right now.",
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


def map_error(exc: Exception, *, model: str, request_id: str | None = None) -> LLMError:
    """The provider's error as our exception family (see DESIGN.md "The Qwen endpoint")."""
    where = f"model={model} request_id={request_id}"
    if isinstance(exc, openai.ContentFilterFinishReasonError):  # the answer itself was filtered
        return ModelRejected(
            _REJECTION_MESSAGES["moderation"], code="moderation", detail=f"content_filter ({where})"
        )
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


# --- Calls ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    model: str  # as the response names it: unpinned names move to new snapshots silently
    finish_reason: str | None  # "stop", or "length" when max_tokens cut the answer short
    response_id: str | None = None


@lru_cache(maxsize=64)
def _chat_model(base_url: str, api_key: str, timeout: float, model: str) -> ChatOpenAI:
    return ChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=SecretStr(api_key),
        timeout=timeout,
        max_retries=0,
        stream_usage=True,  # streams send stream_options={"include_usage": true}
    )


def chat_model(model: str) -> ChatOpenAI:
    """The configured client for `model`, read from settings on each call so test overrides apply."""
    return _chat_model(
        settings.QWEN_BASE_URL,
        settings.QWEN_API_KEY or SIMULATOR_API_KEY,
        float(settings.QWEN_TIMEOUT_SECONDS),
        model,
    )


def _call_kwargs(
    *, max_tokens: int, json_mode: bool, request_id: str | None, extra_headers: Mapping[str, str] | None
) -> dict[str, Any]:
    # `max_tokens` goes in the body as Qwen documents it: ChatOpenAI would rename its own max_tokens to
    # OpenAI's newer `max_completion_tokens`, which the compatible mode does not promise to honour.
    kwargs: dict[str, Any] = {"extra_body": {"enable_thinking": False, "max_tokens": max_tokens}}
    if json_mode:
        # Qwen answers 400 InvalidParameter unless a message says "JSON"; the tools' prompts do.
        kwargs["response_format"] = {"type": "json_object"}
    headers = dict(extra_headers or {})
    if request_id:
        headers["X-Request-Id"] = request_id
    if headers:
        kwargs["extra_headers"] = headers
    return kwargs


def _usage(message: BaseMessage) -> tuple[int, int] | None:
    usage = getattr(message, "usage_metadata", None)
    if usage:
        return usage["input_tokens"], usage["output_tokens"]
    token_usage = (message.response_metadata or {}).get("token_usage")
    if token_usage:
        return token_usage["prompt_tokens"], token_usage["completion_tokens"]
    return None


def _cut_off(exc: openai.LengthFinishReasonError, *, model: str, messages: Sequence[Message]) -> Completion:
    """The answer max_tokens cut short, which the provider bills like any other.

    With response_format set, LangChain reads answers through the openai SDK's parse helpers, and they
    raise instead of returning a cut-off answer. We return it (finish_reason "length"); the tool's
    parse_output then rejects the broken JSON, and the caller still knows the usage.
    """
    raw = exc.completion
    text = (raw.choices[0].message.content or "") if raw.choices else ""
    if raw.usage is not None:
        input_tokens, output_tokens = raw.usage.prompt_tokens, raw.usage.completion_tokens
    else:  # a stream's snapshot may lack usage: count as the provider would
        input_tokens, output_tokens = count_prompt_tokens(messages, model), count_tokens(text)
    return Completion(text, input_tokens, output_tokens, raw.model or model, "length", raw.id)


def _reserve(model: str, messages: Sequence[Message], max_tokens: int, prompt_tokens: int | None) -> Any:
    # Imported here: ratelimit raises this module's ModelBusy, so it imports us.
    from agents import ratelimit

    if not ratelimit.enabled_for(model):
        return None
    if prompt_tokens is None:
        prompt_tokens = count_prompt_tokens(messages, model)
    return ratelimit.acquire(model, prompt_tokens + max_tokens)


def _settle(reservation: Any, used_tokens: int) -> None:
    if reservation is not None:
        from agents import ratelimit

        ratelimit.settle(reservation, used_tokens)


def complete(
    *,
    model: str,
    messages: Sequence[Message],
    max_tokens: int,
    request_id: str | None = None,
    json_mode: bool = True,
    extra_headers: Mapping[str, str] | None = None,
    prompt_tokens: int | None = None,
) -> Completion:
    """One chat completion. Waits for the per-model rate limiter first (which may raise ModelBusy).

    Raises ModelBusy (retry later), ModelRejected / ProviderArrearage (do not retry).
    `prompt_tokens`, if the caller already counted them, saves counting again for the rate limiter.
    """
    reservation = _reserve(model, messages, max_tokens, prompt_tokens)
    kwargs = _call_kwargs(
        max_tokens=max_tokens, json_mode=json_mode, request_id=request_id, extra_headers=extra_headers
    )
    try:
        response = chat_model(model).invoke([dict(m) for m in messages], **kwargs)
    except openai.LengthFinishReasonError as exc:
        completion = _cut_off(exc, model=model, messages=messages)
        _settle(reservation, completion.input_tokens + completion.output_tokens)
        return completion
    except (openai.APIError, openai.ContentFilterFinishReasonError) as exc:
        raise map_error(exc, model=model, request_id=request_id) from exc
    usage = _usage(response)
    if usage is None:  # an OpenAI-compatible endpoint that omits usage would make every run free
        raise ModelBusy(code="provider_error", detail=f"response without usage (model={model})")
    metadata = response.response_metadata or {}
    completion = Completion(
        text=response.content if isinstance(response.content, str) else str(response.text),
        input_tokens=usage[0],
        output_tokens=usage[1],
        model=metadata.get("model_name") or model,
        finish_reason=metadata.get("finish_reason"),
        response_id=metadata.get("id"),
    )
    _settle(reservation, completion.input_tokens + completion.output_tokens)
    return completion


class CompletionStream:
    """Iterate for the answer's text pieces; afterwards `.completion` holds the whole text and usage.

    Errors are raised from the iteration as our exception family, before or after pieces were yielded.
    """

    def __init__(self, *, model: str, messages: Sequence[Message], max_tokens: int, **options: Any) -> None:
        self._model = model
        self._messages = [dict(m) for m in messages]
        self._max_tokens = max_tokens
        self._options = options
        self._completion: Completion | None = None

    @property
    def completion(self) -> Completion:
        if self._completion is None:
            raise RuntimeError("The stream has not been read to the end yet.")
        return self._completion

    def __iter__(self) -> Iterator[str]:
        request_id = self._options.get("request_id")
        reservation = _reserve(
            self._model, self._messages, self._max_tokens, self._options.get("prompt_tokens")
        )
        kwargs = _call_kwargs(
            max_tokens=self._max_tokens,
            json_mode=self._options.get("json_mode", True),
            request_id=request_id,
            extra_headers=self._options.get("extra_headers"),
        )
        pieces: list[str] = []
        usage: tuple[int, int] | None = None
        model_name, finish_reason, response_id = self._model, None, None
        try:
            for chunk in chat_model(self._model).stream(self._messages, **kwargs):
                assert isinstance(chunk, AIMessageChunk)  # noqa: S101 - ChatOpenAI's stream contract
                # The usage chunk has no choices and no text. With response_format set, LangChain also
                # replays the final completion's usage in an extra empty chunk: take the last, never sum.
                usage = _usage(chunk) or usage
                metadata = chunk.response_metadata or {}
                model_name = metadata.get("model_name") or model_name
                finish_reason = metadata.get("finish_reason") or finish_reason
                response_id = metadata.get("id") or response_id
                if text := chunk.text:
                    pieces.append(text)
                    yield text
        except openai.LengthFinishReasonError as exc:
            cut = _cut_off(exc, model=self._model, messages=self._messages)
            self._completion = replace(cut, text="".join(pieces))
            _settle(reservation, cut.input_tokens + cut.output_tokens)
            return
        except (openai.APIError, openai.ContentFilterFinishReasonError) as exc:
            raise map_error(exc, model=self._model, request_id=request_id) from exc
        if usage is None:
            raise ModelBusy(code="provider_error", detail=f"stream without usage (model={self._model})")
        self._completion = Completion(
            text="".join(pieces),
            input_tokens=usage[0],
            output_tokens=usage[1],
            model=model_name,
            finish_reason=finish_reason,
            response_id=response_id,
        )
        _settle(reservation, usage[0] + usage[1])


def stream(
    *,
    model: str,
    messages: Sequence[Message],
    max_tokens: int,
    request_id: str | None = None,
    json_mode: bool = True,
    extra_headers: Mapping[str, str] | None = None,
    prompt_tokens: int | None = None,
) -> CompletionStream:
    """A streamed chat completion. Nothing is sent until the result is iterated."""
    return CompletionStream(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        request_id=request_id,
        json_mode=json_mode,
        extra_headers=extra_headers,
        prompt_tokens=prompt_tokens,
    )
