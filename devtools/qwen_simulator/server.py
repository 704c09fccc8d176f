"""A local Qwen-compatible endpoint (OpenAI `/v1/chat/completions`), for development, tests and benchmarks.

An async Starlette app under uvicorn: a simulated call mostly waits, so hundreds can be in flight on one
event loop, as against the real endpoint. Answers come from `agents.simulator_answers`; usage is
counted with the Qwen tokenizer, as the provider bills.

Latency and faults are set globally (`--latency-ms`), per request (headers `X-Simulator-Latency-Ms`,
`X-Simulator-Fault`), or queued over HTTP for the next matching requests:

    POST /_sim/faults {"faults": ["429", "ok"], "match": "Aurora Lamp", "latency_ms": 0}
    POST /_sim/reset        GET /_sim/stats

`match` is a substring of the prompt, so concurrent tests can fault only their own run. Fault kinds:
ok, 429, 429-tokens, 500, 503, timeout, malformed, moderation, arrearage, 401, 404, and odd answers a
real endpoint has sent: no-usage, negative-usage, float-usage, zero-usage, string-usage, nul (a NUL
character in the text), stream-no-usage (a stream without its usage chunk), stream-cut (a stream that
stops mid-answer), reset (the connection drops before an answer), trickle (one byte at a time, slowly),
429-retry-after (429 with a Retry-After header).
All state lives on the event loop's thread, so it needs no locks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agents.llm.tokens import count_prompt_tokens, count_tokens, get_tokenizer
from devtools.qwen_simulator import answers as simulator_answers

logger = logging.getLogger(__name__)

# (status, Qwen error code, type, message), as the compatible mode answers them.
ERRORS: dict[str, tuple[int, str, str, str]] = {
    "429": (429, "Throttling.RateQuota", "Throttling", "Requests rate limit exceeded, please try again later."),
    "429-tokens": (429, "Throttling.AllocationQuota", "Throttling", "Allocated quota exceeded, please try again later."),
    "500": (500, "InternalError", "internal_error", "An internal error has occured, please try again later."),
    "503": (503, "ServiceUnavailable", "service_unavailable", "The service is temporarily unavailable."),
    "moderation": (400, "data_inspection_failed", "data_inspection_failed", "Input data may contain inappropriate content."),
    "arrearage": (400, "Arrearage", "Arrearage", "Access denied, please make sure your account is in good standing."),
    "401": (401, "invalid_api_key", "invalid_request_error", "Incorrect API key provided."),
    "404": (404, "model_not_found", "invalid_request_error", "The model does not exist or you do not have access to it."),
}  # fmt: skip
USAGE_FAULTS = {"no-usage", "negative-usage", "float-usage", "zero-usage", "string-usage"}
ODD_FAULTS = {"nul", "stream-no-usage", "stream-cut", "reset", "trickle", "429-retry-after", *USAGE_FAULTS}
FAULTS = {"ok", "timeout", "malformed", *ERRORS, *ODD_FAULTS}
TRICKLE_SECONDS_PER_BYTE = 30.0  # like the provider that sent one byte every 30 s
STREAM_CHUNK_CHARS = 24


KEEP_ALIVE_SECONDS = 75


@dataclass
class FaultRule:
    faults: deque[str]
    match: str | None = None
    latency_ms: int | None = None


@dataclass
class SimulatorState:
    latency_ms: int = 0
    hang_seconds: float = 600.0  # how long a "timeout" fault waits: longer than any client timeout
    rules: list[FaultRule] = field(default_factory=list)
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    by_tool: Counter[str] = field(default_factory=Counter)
    faults_served: Counter[str] = field(default_factory=Counter)
    last_request: dict[str, Any] = field(default_factory=dict)  # the last call's parameters, for tests

    def take_fault(self, prompt: str) -> tuple[str | None, int | None]:
        """The next queued fault whose `match` occurs in the prompt, oldest rule first."""
        for rule in self.rules:
            if rule.faults and (rule.match is None or rule.match in prompt):
                fault = rule.faults.popleft()
                if not rule.faults:
                    self.rules.remove(rule)
                return fault, rule.latency_ms
        return None, None

    def reset(self) -> None:
        self.rules.clear()
        self.requests = 0
        self.max_in_flight = self.in_flight  # calls still running will decrement in_flight as they end
        self.by_tool.clear()
        self.faults_served.clear()
        self.last_request = {}

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "by_tool": dict(self.by_tool),
            "faults_served": dict(self.faults_served),
            "queued_faults": sum(len(r.faults) for r in self.rules),
            "last_request": self.last_request,
        }


def error_response(kind: str, *, message: str | None = None) -> JSONResponse:
    status, code, kind_type, default = ERRORS.get(kind, (400, kind, "invalid_request_error", kind))
    body = {
        "error": {"code": code, "message": message or default, "type": kind_type, "param": None},
        "request_id": str(uuid.uuid4()),
    }
    return JSONResponse(body, status_code=status)


def invalid_parameter(message: str) -> JSONResponse:
    body = {
        "error": {
            "code": "InvalidParameter",
            "message": message,
            "type": "invalid_request_error",
            "param": None,
        }
    }
    return JSONResponse(body, status_code=400)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multi-part content
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return ""


def _validate(body: Any, headers: Mapping[str, str]) -> JSONResponse | None:
    """The 4xx the real endpoint answers before it runs the model."""
    if not headers.get("authorization", "").startswith("Bearer "):
        return error_response("401")
    if not isinstance(body, dict):
        return invalid_parameter("The request body must be a JSON object.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return invalid_parameter("'messages' must be a non-empty list of message objects.")
    model = body.get("model")
    if not isinstance(model, str) or not model.startswith("qwen"):
        return error_response("404")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        return invalid_parameter("'max_tokens' must be a positive integer.")
    response_format = body.get("response_format") or {}
    wants_json = response_format.get("type") == "json_object"
    if wants_json and not any("json" in _text(m.get("content")).lower() for m in messages):
        # Qwen's rule: json_object mode needs the word "json" somewhere in the messages.
        return invalid_parameter(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'."
        )
    return None


def _truncate(text: str, max_tokens: int | None) -> tuple[str, str]:
    """The answer cut to `max_tokens` tokens, and the finish reason, as the real model would stop."""
    if max_tokens is None:
        return text, "stop"
    tokenizer = get_tokenizer()
    tokens = tokenizer.encode(text)
    if len(tokens) <= max_tokens:
        return text, "stop"
    return tokenizer.decode(tokens[:max_tokens]), "length"  # type: ignore[attr-defined]


async def _hang(request: Request, seconds: float) -> None:
    """Wait like a stuck upstream, but stop as soon as the client gives up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not await request.is_disconnected():
        await asyncio.sleep(0.05)


async def chat_completions(request: Request) -> Response:
    state: SimulatorState = request.app.state.sim
    state.requests += 1
    state.in_flight += 1
    state.max_in_flight = max(state.max_in_flight, state.in_flight)
    streaming = False
    try:
        try:
            body = await request.json()
        except ValueError:
            return invalid_parameter("The request body is not valid JSON.")
        if (refusal := _validate(body, request.headers)) is not None:
            return refusal
        messages = [{"role": m.get("role"), "content": _text(m.get("content"))} for m in body["messages"]]
        state.last_request = {k: v for k, v in body.items() if k != "messages"}
        state.last_request["request_id"] = request.headers.get("x-request-id")
        prompt = "\n".join(m["content"] for m in messages)
        tool = simulator_answers.tool_of(messages) or "other"
        state.by_tool[tool] += 1

        fault, rule_latency = state.take_fault(prompt)
        fault = request.headers.get("x-simulator-fault") or fault or "ok"
        if fault not in FAULTS:
            return invalid_parameter(f"Unknown simulator fault {fault!r}; use one of {sorted(FAULTS)}.")
        if fault != "ok":
            state.faults_served[fault] += 1
        latency_ms = int(request.headers.get("x-simulator-latency-ms") or rule_latency or state.latency_ms)
        if fault == "timeout":
            await _hang(request, state.hang_seconds)
            return error_response("503", message="Upstream timed out.")
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        if fault in ERRORS:
            return error_response(fault)
        if fault == "429-retry-after":
            response = error_response("429")
            response.headers["Retry-After"] = "3"
            return response

        text = simulator_answers.answer(messages)
        if fault == "malformed":
            text = text[: max(1, len(text) // 2)]  # cut mid-object, like a model losing its way
        finish_reason: str | None  # None when a stream is cut before it finishes
        text, finish_reason = _truncate(text, body.get("max_tokens", body.get("max_completion_tokens")))
        if fault == "nul":
            text = text.replace('"', '"\u0000', 1)  # a NUL inside the first JSON string
        model = body["model"]
        usage: dict[str, Any] | None  # None when the fault drops usage
        usage = {
            "prompt_tokens": count_prompt_tokens(messages, model),
            "completion_tokens": count_tokens(text),
            "prompt_tokens_details": {"cached_tokens": 0},
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        usage = _odd_usage(fault, usage)
        completion_id = f"chatcmpl-{uuid.uuid4()}"
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            streaming = True
            if fault == "stream-no-usage":
                include_usage = False
            if fault == "stream-cut":
                text, finish_reason, include_usage = text[: len(text) // 2], None, False
            chunks = _sse(state, completion_id, model, text, finish_reason, usage if include_usage else None)
            return StreamingResponse(chunks, media_type="text/event-stream")
        if fault == "reset":
            streaming = True
            whole = json.dumps(_completion_body(completion_id, model, text, finish_reason, usage)).encode()
            return StreamingResponse(_reset(state, whole), media_type="application/json")
        if fault == "trickle":
            streaming = True
            whole = json.dumps(_completion_body(completion_id, model, text, finish_reason, usage)).encode()
            return StreamingResponse(_trickle(state, whole), media_type="application/json")
        return JSONResponse(_completion_body(completion_id, model, text, finish_reason, usage))
    finally:
        if not streaming:  # a stream leaves flight when its last chunk is sent
            state.in_flight -= 1


def _completion_body(
    completion_id: str, model: str, text: str, finish_reason: str | None, usage: Any
) -> dict:
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def _odd_usage(fault: str, usage: dict[str, Any]) -> dict[str, Any] | None:
    if fault == "no-usage":
        return None
    if fault == "negative-usage":
        return {**usage, "prompt_tokens": -5, "completion_tokens": -7}
    if fault == "float-usage":
        return {
            **usage,
            "prompt_tokens": usage["prompt_tokens"] + 0.7,
            "completion_tokens": usage["completion_tokens"] + 0.2,
        }
    if fault == "zero-usage":
        return {**usage, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    if fault == "string-usage":
        return {**usage, "prompt_tokens": "many", "completion_tokens": None}
    return usage


async def _reset(state: SimulatorState, body: bytes) -> AsyncIterator[bytes]:
    """Part of the answer, then the connection drops (the server raises mid-body)."""
    try:
        yield body[: len(body) // 3]
        raise ConnectionResetError("simulated connection reset")
    finally:
        state.in_flight -= 1


async def _trickle(state: SimulatorState, body: bytes) -> AsyncIterator[bytes]:
    try:
        for index in range(len(body)):
            yield body[index : index + 1]
            await asyncio.sleep(TRICKLE_SECONDS_PER_BYTE)
    finally:
        state.in_flight -= 1


async def _sse(
    state: SimulatorState,
    completion_id: str,
    model: str,
    text: str,
    finish_reason: str | None,
    usage: dict | None,
) -> AsyncIterator[str]:
    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
                 "model": model, "choices": choices, **extra}  # fmt: skip
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    try:
        yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        for start in range(0, len(text), STREAM_CHUNK_CHARS):
            piece = text[start : start + STREAM_CHUNK_CHARS]
            yield event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
            await asyncio.sleep(0)  # let other streams interleave, as a real token stream would
        yield event([{"index": 0, "delta": {}, "finish_reason": finish_reason}])
        if usage is not None:  # Qwen sends usage last, in a chunk whose choices are empty
            yield event([], usage=usage)
        yield "data: [DONE]\n\n"
    finally:
        state.in_flight -= 1


async def queue_faults(request: Request) -> JSONResponse:
    body = await request.json()
    faults = body.get("faults")
    if isinstance(faults, str):
        faults = [faults]
    if not isinstance(faults, list) or not all(f in FAULTS for f in faults):
        return JSONResponse({"error": f"faults must be a list of {sorted(FAULTS)}"}, status_code=400)
    rule = FaultRule(deque(faults), match=body.get("match") or None, latency_ms=body.get("latency_ms"))
    request.app.state.sim.rules.append(rule)
    return JSONResponse(request.app.state.sim.stats())


async def reset(request: Request) -> JSONResponse:
    request.app.state.sim.reset()
    return JSONResponse(request.app.state.sim.stats())


async def stats(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.sim.stats())


async def list_models(request: Request) -> JSONResponse:
    names = ["qwen-flash", "qwen-plus", "qwen-max", "qwen3-max"]
    return JSONResponse(
        {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "simulator"} for n in names]}
    )


def create_app(*, latency_ms: int = 0, hang_seconds: float = 600.0) -> Starlette:
    get_tokenizer()  # load the vocabulary before the first request, not during it
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/_sim/faults", queue_faults, methods=["POST"]),
            Route("/_sim/reset", reset, methods=["POST"]),
            Route("/_sim/stats", stats, methods=["GET"]),
        ]
    )
    app.state.sim = SimulatorState(latency_ms=latency_ms, hang_seconds=hang_seconds)
    return app


def serve(*, host: str = "127.0.0.1", port: int = 8765, latency_ms: int = 0) -> None:
    import uvicorn

    # One event loop holds every simulated call; raise the backlog so a burst of connects is not refused.
    # Idle connections stay open as long as a provider's gateway keeps them (75 s, nginx's default), not
    # uvicorn's 5 s: that equals httpx's own keep-alive expiry, and the two closing a connection at the
    # same moment made a run's call fail on a reset now and then, which no provider does that often.
    uvicorn.run(
        create_app(latency_ms=latency_ms),
        host=host,
        port=port,
        backlog=2048,
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
