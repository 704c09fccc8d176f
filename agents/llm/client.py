"""The only code that talks to the Qwen endpoint (OpenAI-compatible mode), through the openai SDK.

Calls are synchronous and thread-safe: a threads-pool worker runs many at once over one shared HTTP client
per endpoint. Nothing here retries (`max_retries=0`): a retryable failure is raised as `ModelBusy` and the
run engine retries it with backoff, so every attempt goes through the rate limiter and is counted.

Every call has a total deadline (`QWEN_CALL_DEADLINE_SECONDS`, `agents.llm.deadline`), not only a read
timeout. Whatever the endpoint answers becomes a `Completion` or one of our errors: the usage is checked
and, where it is missing or implausible for the text received, counted with the Qwen tokenizer (and said
so on the completion); text is cleaned of characters PostgreSQL cannot store.

LangChain builds the tools' prompts; the call itself uses the openai SDK and reads the JSON body directly,
which costs a fraction of the CPU of going through a chat-model wrapper on every call.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import httpx
import openai
from django.conf import settings

from agents.llm import ratelimit
from agents.llm.deadline import CallBudget, DeadlineTransport, call_budget
from agents.llm.errors import LLMError, ModelBusy, content_filtered, map_error
from agents.llm.tokens import count_prompt_tokens, count_tokens
from tokenhub.text import clean_text

logger = logging.getLogger(__name__)

# The openai SDK refuses to start without a key; the simulator accepts any bearer token.
SIMULATOR_API_KEY = "sk-simulator"
# A token is at most this many characters of text in any language the vocabulary covers: a provider count
# below len(text) / this is not a count of that text.
MAX_CHARS_PER_TOKEN = 16

Message = Mapping[str, Any]


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    model: str  # as the response names it: unpinned names move to new snapshots silently
    finish_reason: str | None  # "stop", or "length" when max_tokens cut the answer short
    response_id: str | None = None
    cached_tokens: int = 0  # prompt tokens the provider served from its context cache
    usage_note: str = ""  # set when we counted the usage ourselves, and why


# --- The HTTP client ------------------------------------------------------------------------------

_clients_lock = threading.Lock()
_clients: dict[tuple[str, str, float], openai.OpenAI] = {}


def _client(base_url: str, api_key: str, read_timeout: float) -> openai.OpenAI:
    """One client per endpoint and process, built once under a lock (a client built twice by racing
    threads would leave the loser's connection pool to be closed by the garbage collector mid-use)."""
    key = (base_url, api_key, read_timeout)
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                http = httpx.Client(
                    transport=DeadlineTransport(
                        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200)
                    ),
                    timeout=httpx.Timeout(read_timeout, connect=min(read_timeout, 10.0)),
                )
                # openai accepts an httpx.Client at runtime (its legacy-client check) but annotates httpx2's.
                client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, http_client=http)  # type: ignore[arg-type]
                _clients[key] = client
    return client


def client() -> openai.OpenAI:
    """The configured client, read from settings on each call so test overrides apply."""
    return _client(
        settings.QWEN_BASE_URL,
        settings.QWEN_API_KEY or SIMULATOR_API_KEY,
        float(settings.QWEN_TIMEOUT_SECONDS),
    )


def _request(
    *, model: str, messages: Sequence[Message], max_tokens: int, json_mode: bool, request_id: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": model,
        "messages": [dict(m) for m in messages],
        "max_tokens": max_tokens,
        # Qwen3.5 models think by default, and JSON mode works only with thinking off.
        "extra_body": {"enable_thinking": False},
    }
    if json_mode:
        # Qwen answers 400 InvalidParameter unless a message says "JSON"; the tools' prompts do.
        params["response_format"] = {"type": "json_object"}
    if request_id:
        params["extra_headers"] = {"X-Request-Id": request_id}
    return params


def _sent_body(params: dict[str, Any]) -> dict[str, Any]:
    """The JSON body `create(**params)` sends: its fields, with `extra_body` merged in."""
    body = {key: value for key, value in params.items() if not key.startswith("extra_")}
    body.update(params.get("extra_body", {}))
    return body


# --- Usage ----------------------------------------------------------------------------------------


def _whole(value: Any) -> int | None:
    """A usage count as whole tokens: a fraction is rounded up (a provider never bills part of a token,
    and rounding down would make a run cheaper than its usage); anything not a finite number ≥ 0 is None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return math.ceil(value) if value >= 0 else None


def _prompt_chars(messages: Sequence[Message]) -> int:
    return sum(len(str(m.get("content") or "")) for m in messages)


def checked_usage(
    usage: Any, *, messages: Sequence[Message], text: str, model: str
) -> tuple[int, int, int, str]:
    """(input, output, cached, note): the provider's usage where it is plausible, our count where not."""
    usage = usage if isinstance(usage, Mapping) else {}
    prompt = _whole(usage.get("prompt_tokens"))
    output = _whole(usage.get("completion_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _whole(details.get("cached_tokens")) if isinstance(details, Mapping) else None
    notes = []
    if prompt is None or prompt == 0 or prompt * MAX_CHARS_PER_TOKEN < _prompt_chars(messages):
        notes.append("input" if usage else "usage")
        prompt = count_prompt_tokens(messages, model)
    if output is None or (text and output == 0) or output * MAX_CHARS_PER_TOKEN < len(text):
        if usage:
            notes.append("output")
        output = count_tokens(text)
    note = ""
    if notes:
        logger.warning("Model %s reported unusable usage %r; counted with the tokenizer.", model, dict(usage))
        note = (
            "The AI provider did not report usable token counts for this answer, "
            "so Tokenhub counted them with the Qwen tokenizer."
        )
    return prompt, output, min(cached or 0, prompt), note


# --- Calls ----------------------------------------------------------------------------------------


def _reserve(model: str, messages: Sequence[Message], max_tokens: int, prompt_tokens: int | None) -> Any:
    if not ratelimit.enabled_for(model):
        return None
    if prompt_tokens is None:
        prompt_tokens = count_prompt_tokens(messages, model)
    return ratelimit.acquire(model, prompt_tokens + max_tokens)


def _settle(reservation: Any, used_tokens: int) -> None:
    if reservation is not None:
        ratelimit.settle(reservation, used_tokens)


def _deadline_seconds() -> float:
    return float(settings.QWEN_CALL_DEADLINE_SECONDS)


def _transport_error(exc: Exception, budget: CallBudget, *, model: str, request_id: str | None) -> LLMError:
    """A failure below HTTP (reset, cut stream, our own deadline) as ModelBusy with an honest code."""
    if budget.aborted:
        return ModelBusy(code="handed_back", detail=f"call stopped by the worker ({model} {request_id})")
    if budget.expired or isinstance(exc, httpx.TimeoutException | openai.APITimeoutError):
        return ModelBusy(
            code="timeout",
            detail=f"no complete answer within {_deadline_seconds():.0f}s ({model} {request_id})",
        )
    return ModelBusy(code="connection_error", detail=f"{exc!r} ({model} {request_id})")


def complete(
    *,
    model: str,
    messages: Sequence[Message],
    max_tokens: int,
    request_id: str | None = None,
    json_mode: bool = True,
    prompt_tokens: int | None = None,
    budget: CallBudget | None = None,
) -> Completion:
    """One chat completion within the call deadline. Waits for the per-model rate limiter first.

    Raises ModelBusy (retry later), ModelRejected / ProviderArrearage (do not retry).
    `prompt_tokens`, if the caller already counted them, saves counting again for the rate limiter;
    `budget` lets the caller stop the call from another thread.
    """
    reservation = _reserve(model, messages, max_tokens, prompt_tokens)
    params = _request(
        model=model, messages=messages, max_tokens=max_tokens, json_mode=json_mode, request_id=request_id
    )
    with call_budget(_deadline_seconds(), budget) as active:
        try:
            # The SDK's own POST (its retries off, its errors, auth and timeouts kept) with the body as sent:
            # `create()` would first walk every message through its type-directed transform, which changes
            # nothing in a chat of plain strings and was the largest part of the call's CPU.
            raw = client().post(
                "/chat/completions",
                cast_to=httpx.Response,
                body=_sent_body(params),
                options={"headers": params.get("extra_headers", {})},
            )
            body = json.loads(raw.content)
        except openai.APIStatusError as exc:
            raise map_error(exc, model=model, request_id=request_id) from exc
        except (openai.APIConnectionError, httpx.HTTPError) as exc:
            raise _transport_error(exc, active, model=model, request_id=request_id) from exc
        except ValueError as exc:  # the body is not JSON
            raise ModelBusy(
                code="provider_error", detail=f"answer is not JSON ({model} {request_id})"
            ) from exc
    choices = body.get("choices") if isinstance(body, Mapping) else None
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else {}
    message = (
        cast(Mapping[str, Any], choice.get("message")) if isinstance(choice.get("message"), Mapping) else {}
    )
    finish_reason = choice.get("finish_reason")
    if finish_reason == "content_filter":  # the answer itself was filtered: a moderation refusal
        raise content_filtered(f"{model} {request_id}")
    content = message.get("content")
    text = clean_text(content if isinstance(content, str) else "")
    input_tokens, output_tokens, cached, note = checked_usage(
        body.get("usage"), messages=messages, text=text, model=model
    )
    _settle(reservation, input_tokens + output_tokens)
    return Completion(
        text=text,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        model=str(body.get("model") or model),
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        response_id=body.get("id") if isinstance(body.get("id"), str) else None,
        cached_tokens=cached,
        usage_note=note,
    )


class CompletionStream:
    """Iterate for the answer's text pieces; afterwards `.completion` holds the whole text and usage.

    Errors are raised from the iteration as our exception family, before or after pieces were yielded. A
    stream that ends without its usage chunk is counted with the tokenizer; one cut off mid-answer (the
    connection dropped, or the deadline passed) is ModelBusy, so the run retries it.
    """

    def __init__(
        self,
        *,
        model: str,
        messages: Sequence[Message],
        max_tokens: int,
        request_id: str | None = None,
        json_mode: bool = True,
        prompt_tokens: int | None = None,
        budget: CallBudget | None = None,
    ) -> None:
        self._model = model
        self._messages = [dict(m) for m in messages]
        self._max_tokens = max_tokens
        self._request_id = request_id
        self._json_mode = json_mode
        self._prompt_tokens = prompt_tokens
        self._budget = budget
        self._completion: Completion | None = None

    @property
    def completion(self) -> Completion:
        if self._completion is None:
            raise RuntimeError("The stream has not been read to the end yet.")
        return self._completion

    def __iter__(self) -> Iterator[str]:
        model, request_id = self._model, self._request_id
        reservation = _reserve(model, self._messages, self._max_tokens, self._prompt_tokens)
        params = _request(
            model=model,
            messages=self._messages,
            max_tokens=self._max_tokens,
            json_mode=self._json_mode,
            request_id=request_id,
        )
        pieces: list[str] = []
        usage: Any = None
        model_name, finish_reason, response_id = model, None, None
        with call_budget(_deadline_seconds(), self._budget) as active:
            try:
                stream = client().chat.completions.create(
                    **params, stream=True, stream_options={"include_usage": True}
                )
                with stream:
                    for chunk in stream:
                        # The usage chunk has no choices; take the last one seen, never a sum.
                        if getattr(chunk, "usage", None) is not None:
                            usage = chunk.usage.model_dump() if hasattr(chunk.usage, "model_dump") else None
                        model_name = getattr(chunk, "model", None) or model_name
                        response_id = getattr(chunk, "id", None) or response_id
                        for choice in chunk.choices or []:
                            finish_reason = choice.finish_reason or finish_reason
                            text = clean_text(getattr(choice.delta, "content", None) or "")
                            if text:
                                pieces.append(text)
                                yield text
            except openai.APIStatusError as exc:
                raise map_error(exc, model=model, request_id=request_id) from exc
            except (openai.APIConnectionError, httpx.HTTPError) as exc:
                raise _transport_error(exc, active, model=model, request_id=request_id) from exc
        if finish_reason == "content_filter":
            raise content_filtered(f"{model} {request_id}")
        text = "".join(pieces)
        if finish_reason is None and usage is None:
            raise ModelBusy(code="provider_error", detail=f"stream ended mid-answer ({model} {request_id})")
        input_tokens, output_tokens, cached, note = checked_usage(
            usage, messages=self._messages, text=text, model=model
        )
        self._completion = Completion(
            text=text,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            model=str(model_name),
            finish_reason=finish_reason,
            response_id=response_id,
            cached_tokens=cached,
            usage_note=note,
        )
        _settle(reservation, input_tokens + output_tokens)


def stream(**options: Any) -> CompletionStream:
    """A streamed chat completion (same options as `complete`). Nothing is sent until it is iterated."""
    return CompletionStream(**options)
