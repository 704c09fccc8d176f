"""The Qwen simulator, spoken to over real HTTP as the provider would be."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import httpx
import pytest
from django.core.management import call_command

from agents.llm.tokens import count_prompt_tokens, count_tokens
from agents.tools import MerchantProfile, registry

STORE = MerchantProfile(
    store_name="Lumen & Co",
    brand_voice="Warm and clear.",
    default_language="en",
    knowledge_base="Shipping: orders ship within 2 business days.\n\nReturns: free returns within 30 days.",
)
AUTH = {"Authorization": "Bearer sk-test"}


def chat(sim, messages, *, headers=None, **params) -> httpx.Response:
    body = {"model": "qwen-plus", "messages": messages, "response_format": {"type": "json_object"}, **params}
    return httpx.post(
        f"{sim.base_url}/chat/completions", json=body, headers={**AUTH, **(headers or {})}, timeout=30
    )


def run_tool(sim, slug, data, history=(), **params) -> dict:
    tool = registry.get(slug)
    response = chat(sim, tool.build_messages(data, STORE, history), max_tokens=tool.max_tokens, **params)
    assert response.status_code == 200, response.text
    text = response.json()["choices"][0]["message"]["content"]
    tool.parse_output(text, data)  # the answer always fits the tool's schema and the input's rules
    return json.loads(text)


def test_listing_reflects_the_product_name_and_features(qwen_simulator):
    listing = run_tool(
        qwen_simulator,
        "listing-writer",
        {"product_name": "Aurora Desk Lamp", "features": ["Dimmable warm light", "USB-C charging port"]},
    )
    assert "Aurora Desk Lamp" in listing["title"]
    assert "Dimmable warm light" in listing["bullets"]
    assert "USB-C charging port" in listing["description"]


def test_an_amazon_listing_has_exactly_five_bullets(qwen_simulator):
    listing = run_tool(
        qwen_simulator, "listing-writer", {"product_name": "Aurora Lamp", "marketplace": "amazon"}
    )
    assert len(listing["bullets"]) == 5


def test_a_taobao_title_fits_sixty_characters_however_long_the_name(qwen_simulator):
    data = {"product_name": "Aurora " * 25, "features": ["x" * 100], "marketplace": "taobao"}
    assert len(run_tool(qwen_simulator, "listing-writer", data)["title"]) <= 60


def test_the_listing_follows_the_requested_language(qwen_simulator):
    listing = run_tool(qwen_simulator, "listing-writer", {"product_name": "Lampe Aurora", "language": "es"})
    assert listing["description"].startswith("Descubre Lampe Aurora")


@pytest.mark.parametrize("channel", ["email", "social", "sms", "ad"])
@pytest.mark.parametrize("variants", [1, 5])
def test_marketing_copy_has_the_asked_number_of_variants_within_channel_limits(
    qwen_simulator, channel, variants
):
    data = {"brief": "Spring sale: every lamp and shade " * 10, "channel": channel, "variants": variants}
    copy = run_tool(qwen_simulator, "marketing-copy", data)
    assert len(copy["variants"]) == variants  # run_tool also checked each channel limit


def test_support_answers_from_the_knowledge_base_and_cites_the_section(qwen_simulator):
    answer = run_tool(
        qwen_simulator, "customer-service", {"conversation": "c1", "message": "How fast do orders ship?"}
    )
    assert "2 business days" in answer["reply"]
    assert answer["sources"] == ["kb-1"]
    assert answer["needs_human"] is False


def test_support_hands_over_when_the_knowledge_base_has_no_answer(qwen_simulator):
    answer = run_tool(
        qwen_simulator, "customer-service", {"conversation": "c1", "message": "Is the CEO single?"}
    )
    assert answer["needs_human"] is True
    assert answer["sources"] == []


def test_usage_is_counted_with_the_qwen_tokenizer(qwen_simulator):
    messages = [{"role": "system", "content": "Reply in JSON."}, {"role": "user", "content": "Hello there"}]
    body = chat(qwen_simulator, messages).json()
    usage = body["usage"]
    assert usage["prompt_tokens"] == count_prompt_tokens(messages)
    assert usage["completion_tokens"] == count_tokens(body["choices"][0]["message"]["content"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_max_tokens_cuts_the_answer_and_says_so(qwen_simulator):
    tool = registry.get("listing-writer")
    body = chat(qwen_simulator, tool.build_messages({"product_name": "Lamp"}, STORE), max_tokens=10).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 10


def test_json_mode_without_the_word_json_is_an_invalid_parameter(qwen_simulator):
    response = chat(qwen_simulator, [{"role": "user", "content": "Write a poem"}])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidParameter"


def test_a_request_without_a_bearer_token_is_refused(qwen_simulator):
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(f"{qwen_simulator.base_url}/chat/completions", json=body).status_code == 401


def test_streaming_sends_chunks_then_usage_then_done(qwen_simulator):
    tool = registry.get("listing-writer")
    body = {
        "model": "qwen-plus",
        "messages": tool.build_messages({"product_name": "Aurora Lamp"}, STORE),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream(
        "POST", f"{qwen_simulator.base_url}/chat/completions", json=body, headers=AUTH
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert "Aurora Lamp" in json.loads(text)["title"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == count_tokens(text)


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("429", 429, "Throttling.RateQuota"),
        ("429-tokens", 429, "Throttling.AllocationQuota"),
        ("500", 500, "InternalError"),
        ("moderation", 400, "data_inspection_failed"),
        ("arrearage", 400, "Arrearage"),
        ("404", 404, "model_not_found"),
    ],
)
def test_a_fault_header_answers_with_qwens_error_body(qwen_simulator, fault, status, code):
    response = chat(
        qwen_simulator, [{"role": "user", "content": "JSON please"}], headers={"X-Simulator-Fault": fault}
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def test_a_malformed_fault_returns_broken_json(qwen_simulator):
    response = chat(
        qwen_simulator,
        [{"role": "user", "content": "JSON please"}],
        headers={"X-Simulator-Fault": "malformed"},
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.json()["choices"][0]["message"]["content"])


def test_queued_faults_hit_only_matching_requests_in_order(qwen_simulator):
    qwen_simulator.fault(["429", "500"], match="Aurora Lamp")
    other = [{"role": "user", "content": "JSON for Boreal Chair"}]
    mine = [{"role": "user", "content": "JSON for Aurora Lamp"}]
    assert chat(qwen_simulator, other).status_code == 200
    assert [chat(qwen_simulator, mine).status_code for _ in range(3)] == [429, 500, 200]
    assert qwen_simulator.stats()["faults_served"] == {"429": 1, "500": 1}


def test_the_timeout_fault_hangs_past_the_client_timeout(qwen_simulator):
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": "JSON"}]}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{qwen_simulator.base_url}/chat/completions",
            json=body,
            headers={**AUTH, "X-Simulator-Fault": "timeout"},
            timeout=0.5,
        )


def test_latency_can_be_set_per_request(qwen_simulator):
    started = time.monotonic()
    chat(qwen_simulator, [{"role": "user", "content": "JSON"}], headers={"X-Simulator-Latency-Ms": "300"})
    assert time.monotonic() - started >= 0.3


def test_reset_clears_queued_faults_and_counters(qwen_simulator):
    qwen_simulator.fault("429")
    chat(qwen_simulator, [{"role": "user", "content": "JSON"}], headers={"X-Simulator-Fault": "500"})
    qwen_simulator.reset()
    assert chat(qwen_simulator, [{"role": "user", "content": "JSON"}]).status_code == 200
    stats = qwen_simulator.stats()
    assert (stats["requests"], stats["queued_faults"], stats["faults_served"]) == (1, 0, {})


def test_a_hundred_slow_requests_are_served_at_once(qwen_simulator):
    qwen_simulator.set_latency(1000)
    messages = [{"role": "user", "content": "Answer in JSON"}]
    body = {"model": "qwen-plus", "messages": messages, "response_format": {"type": "json_object"}}
    limits = httpx.Limits(max_connections=200)
    with httpx.Client(base_url=qwen_simulator.base_url, headers=AUTH, timeout=30, limits=limits) as client:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=100) as pool:
            statuses = list(
                pool.map(lambda _: client.post("/chat/completions", json=body).status_code, range(100))
            )
        elapsed = time.monotonic() - started
    assert statuses == [200] * 100
    assert elapsed < 5, f"100 calls of 1 s took {elapsed:.1f} s: they were not concurrent"
    # Client threads share the GIL with the in-process server, so not all 100 are always out at once.
    assert qwen_simulator.stats()["max_in_flight"] >= 50


def test_an_idle_connection_stays_open_past_the_clients_own_keep_alive_expiry(qwen_simulator):
    # httpx gives up an idle connection after 5 s; a server closing it at that same moment resets calls.
    expiry = httpx.Limits().keepalive_expiry
    assert expiry is not None
    listing = [{"role": "user", "content": "Return JSON for Idle Lamp"}]
    with httpx.Client(limits=httpx.Limits(keepalive_expiry=expiry * 3), timeout=30) as client:
        first = client.post(f"{qwen_simulator.base_url}/chat/completions", headers=AUTH,
                            json={"model": "qwen-plus", "messages": listing})  # fmt: skip
        time.sleep(expiry + 1)
        second = client.post(f"{qwen_simulator.base_url}/chat/completions", headers=AUTH,
                             json={"model": "qwen-plus", "messages": listing})  # fmt: skip
    assert first.status_code == second.status_code == 200
    # The same connection answered both: the server had not closed it.
    assert first.extensions["network_stream"] is second.extensions["network_stream"]


def test_the_management_command_serves_on_the_configured_port(settings):
    settings.QWEN_SIMULATOR_PORT = 9911
    with mock.patch("devtools.management.commands.qwen_simulator.serve") as serve:
        call_command("qwen_simulator", "--latency-ms", "50")
    serve.assert_called_once_with(host="127.0.0.1", port=9911, latency_ms=50)


MARKDOWN_STORE = MerchantProfile(
    store_name="Bamboo Goods",
    default_language="en",
    knowledge_base=(
        "## Shipping\n- We ship to **Canada** and the United States.\n- Delivery takes 5 to 7 days.\n\n"
        "## Returns\nUnused items can be returned within [30 days](https://example.com/returns).\n\n"
        "退货：未使用的商品可在30天内退货。"  # noqa: RUF001
    ),
)


def ask(sim, message: str, store: MerchantProfile = MARKDOWN_STORE) -> dict:
    tool = registry.get("customer-service")
    data = {"conversation": "c1", "message": message}
    response = chat(sim, tool.build_messages(data, store), max_tokens=tool.max_tokens)
    text = response.json()["choices"][0]["message"]["content"]
    tool.parse_output(text, data)
    return json.loads(text)


def test_a_chinese_question_gets_a_chinese_answer_from_the_knowledge_base(qwen_simulator):
    answer = ask(qwen_simulator, "未使用的商品可以退货吗？")  # noqa: RUF001
    assert answer["reply"].startswith("感谢您的留言")
    assert "30天内退货" in answer["reply"]
    assert answer["needs_human"] is False


def test_a_chinese_question_the_knowledge_base_cannot_answer_is_handed_over_in_chinese(qwen_simulator):
    answer = ask(qwen_simulator, "你们的老板是谁？")  # noqa: RUF001
    assert answer["needs_human"] is True and answer["sources"] == []
    assert "专人回复" in answer["reply"]
    assert not any(letter.isascii() and letter.isalpha() for letter in answer["reply"])


def test_the_answer_uses_the_knowledge_bases_words_not_its_markup(qwen_simulator):
    answer = ask(qwen_simulator, "Do you ship to Canada?")
    assert "We ship to Canada and the United States." in answer["reply"]
    for markup in ("##", "**", "- ", "](", "http"):
        assert markup not in answer["reply"]
    assert ask(qwen_simulator, "How many days to return an item?")["reply"].endswith("within 30 days.")


def test_an_answer_the_knowledge_base_gives_is_not_handed_over(qwen_simulator):
    answer = ask(qwen_simulator, "How long does delivery take?")
    assert "5 to 7 days" in answer["reply"]
    assert (answer["needs_human"], answer["sources"]) == (False, ["kb-1"])


def test_a_listing_reads_as_copy_without_doubled_stops_or_numbered_fillers(qwen_simulator):
    data = {"product_name": "Linen apron", "features": ["Sale this week only."], "marketplace": "amazon",
            "audience": "home cooks"}  # fmt: skip
    listing = run_tool(qwen_simulator, "listing-writer", data)
    text = json.dumps(listing)
    assert ".." not in text and "#1" not in text and "(amazon)" not in text
    assert "Sale this week only. Made for home cooks." in listing["description"]
    assert len(set(listing["bullets"])) == 5


def test_marketing_copy_after_a_brief_ending_in_a_stop_has_one_stop(qwen_simulator):
    data = {"product_name": "Linen apron", "brief": "Sale this week only.", "channel": "email", "variants": 5}
    copy = run_tool(qwen_simulator, "marketing-copy", data)
    assert all(".." not in variant["body"] for variant in copy["variants"])


def test_a_chinese_listing_uses_chinese_punctuation(qwen_simulator):
    data = {"product_name": "亚麻围裙", "features": ["本周特价"], "category": "厨房用品", "language": "zh-CN"}
    listing = run_tool(qwen_simulator, "listing-writer", data)
    assert listing["description"] == "探索亚麻围裙。厨房用品。本周特价。"
