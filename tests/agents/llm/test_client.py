"""agents.llm against the simulator over real HTTP: answers, usage, streaming, and the error family."""

from __future__ import annotations

import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from agents import llm
from agents.llm import InvalidModelOutput, ModelBusy, ModelRejected, ProviderArrearage
from agents.llm.tokens import count_prompt_tokens
from agents.tools import MerchantProfile, registry

STORE = MerchantProfile(
    store_name="Lumen & Co",
    brand_voice="Warm and clear.",
    default_language="en",
    knowledge_base="Shipping: orders ship within 2 business days.\n\nReturns: free returns within 30 days.",
)
INPUTS = {
    "listing-writer": {"product_name": "Aurora Lamp", "features": ["Dimmable"], "marketplace": "amazon"},
    "marketing-copy": {"product_name": "Aurora Lamp", "channel": "sms", "variants": 4},
    "customer-service": {"conversation": "c1", "message": "When do orders ship?"},
}


def call(slug: str, **options) -> llm.Completion:
    tool = registry.get(slug)
    messages = tool.build_messages(INPUTS[slug], STORE)
    return llm.complete(model=tool.model, messages=messages, max_tokens=tool.max_tokens, **options)


@pytest.mark.parametrize("slug", sorted(INPUTS))
def test_complete_returns_an_answer_that_parses_with_usage_and_model(llm_endpoint, slug):
    tool = registry.get(slug)
    completion = call(slug)
    tool.parse_output(completion.text, INPUTS[slug])
    assert completion.model == tool.model
    assert completion.finish_reason == "stop"
    assert completion.input_tokens == count_prompt_tokens(tool.build_messages(INPUTS[slug], STORE))
    assert completion.output_tokens > 0


def test_calls_send_max_tokens_json_mode_thinking_off_and_the_request_id(llm_endpoint):
    call("customer-service", request_id="run-42")
    sent = llm_endpoint.stats()["last_request"]
    assert sent["max_tokens"] == registry.get("customer-service").max_tokens
    assert "max_completion_tokens" not in sent
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["enable_thinking"] is False
    assert sent["request_id"] == "run-42"


def test_stream_yields_pieces_then_the_whole_text_and_usage(llm_endpoint):
    tool = registry.get("customer-service")
    messages = tool.build_messages(INPUTS["customer-service"], STORE)
    result = llm.stream(model=tool.model, messages=messages, max_tokens=tool.max_tokens)
    pieces = list(result)
    assert len(pieces) > 1
    assert result.completion.text == "".join(pieces)
    assert result.completion.input_tokens == count_prompt_tokens(messages)
    assert result.completion.output_tokens > 0
    assert llm_endpoint.stats()["last_request"]["stream_options"] == {"include_usage": True}
    assert "2 business days" in tool.parse_output(result.completion.text, INPUTS["customer-service"]).reply


def test_the_completion_is_unavailable_before_the_stream_is_read(llm_endpoint):
    result = llm.stream(model="qwen-flash", messages=[{"role": "user", "content": "JSON"}], max_tokens=5)
    with pytest.raises(RuntimeError):
        _ = result.completion


def test_a_stream_cut_short_by_max_tokens_still_reports_usage(llm_endpoint):
    tool = registry.get("listing-writer")
    messages = tool.build_messages(INPUTS["listing-writer"], STORE)
    result = llm.stream(model=tool.model, messages=messages, max_tokens=8)
    text = "".join(result)
    assert (result.completion.finish_reason, result.completion.output_tokens) == ("length", 8)
    assert result.completion.text == text


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        ("429", ModelBusy, "rate_limited"),
        ("429-tokens", ModelBusy, "rate_limited"),
        ("500", ModelBusy, "provider_error"),
        ("503", ModelBusy, "provider_error"),
        ("moderation", ModelRejected, "moderation"),
        ("arrearage", ProviderArrearage, "provider_unavailable"),
        ("401", ModelRejected, "auth"),
        ("404", ModelRejected, "model_not_found"),
    ],
)
def test_each_provider_fault_maps_to_its_exception(llm_endpoint, fault, error, code):
    llm_endpoint.fault(fault, match="Aurora Lamp")
    with pytest.raises(error) as caught:
        call("listing-writer")
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.retryable is (error is ModelBusy)
    assert caught.value.message  # safe to show a merchant
    assert llm_endpoint.stats()["requests"] == 1  # no hidden retries: the task layer retries


def test_arrearage_alerts_the_operator(llm_endpoint, caplog):
    llm_endpoint.fault("arrearage")
    with caplog.at_level(logging.CRITICAL, logger="agents.llm"), pytest.raises(ProviderArrearage):
        call("customer-service")
    assert any(r.levelno == logging.CRITICAL and "arrears" in r.getMessage() for r in caplog.records)


def test_a_timeout_is_model_busy(llm_endpoint, settings):
    settings.QWEN_TIMEOUT_SECONDS = 0.5
    llm_endpoint.fault("timeout")
    started = time.monotonic()
    with pytest.raises(ModelBusy) as caught:
        call("customer-service")
    assert caught.value.code == "timeout"
    assert time.monotonic() - started < 5


def test_a_refused_connection_is_model_busy(settings):
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.QWEN_BASE_URL = f"http://127.0.0.1:{port}/v1"
    settings.QWEN_RATE_LIMITS = {}
    with pytest.raises(ModelBusy) as caught:
        call("customer-service")
    assert caught.value.code == "connection_error"


def test_a_fault_in_a_stream_maps_to_its_exception(llm_endpoint):
    llm_endpoint.fault("429")
    with pytest.raises(ModelBusy):
        list(llm.stream(model="qwen-flash", messages=[{"role": "user", "content": "JSON"}], max_tokens=50))


def test_malformed_model_output_is_invalid_model_output(llm_endpoint):
    llm_endpoint.fault("malformed", match="Aurora Lamp")
    completion = call("listing-writer")
    with pytest.raises(InvalidModelOutput) as caught:
        registry.get("listing-writer").parse_output(completion.text, INPUTS["listing-writer"])
    assert caught.value.retryable is False


def test_a_truncated_answer_reports_finish_reason_length(llm_endpoint):
    tool = registry.get("listing-writer")
    messages = tool.build_messages(INPUTS["listing-writer"], STORE)
    completion = llm.complete(model=tool.model, messages=messages, max_tokens=8)
    assert (completion.finish_reason, completion.output_tokens) == ("length", 8)
    with pytest.raises(InvalidModelOutput):
        tool.parse_output(completion.text, INPUTS["listing-writer"])


def test_the_rate_limiter_is_consulted_before_each_call(llm_endpoint, settings):
    settings.REDIS_URL = ""  # in-process limiter; the Redis one has its own tests
    settings.QWEN_RATE_LIMITS = {"qwen-flash": {"rpm": 1}}
    settings.QWEN_RATE_LIMIT_MAX_WAIT_SECONDS = 0
    call("customer-service")
    with pytest.raises(ModelBusy) as caught:
        call("customer-service")
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after > 0
    assert llm_endpoint.stats()["requests"] == 1  # the refused call never reached the provider


def test_a_hundred_concurrent_completions_take_about_one_latency(llm_endpoint):
    llm_endpoint.set_latency(1000)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=100) as pool:
        completions = list(pool.map(lambda _: call("customer-service"), range(100)))
    elapsed = time.monotonic() - started
    assert len(completions) == 100 and all(c.output_tokens for c in completions)
    assert elapsed < 6, f"100 calls of 1 s took {elapsed:.1f} s"
