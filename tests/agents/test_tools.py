"""The tools: input validation, prompts, and strict output parsing. No network, no database."""

from __future__ import annotations

import json
import threading

import pytest

from agents.llm import InvalidModelOutput, tokens
from agents.tools import InvalidToolInput, MerchantProfile, UnknownTool, registry
from agents.tools.base import PROMPTS_DIR
from agents.tools.customer_service import knowledge_sections

STORE = MerchantProfile(
    store_name="Lumen & Co",
    brand_voice="Warm, playful, never pushy.",
    default_language="fr",
    knowledge_base="Shipping: we ship within 2 days.\n\nReturns: free returns for 30 days.",
)
LISTING = registry.get("listing-writer")
MARKETING = registry.get("marketing-copy")
SUPPORT = registry.get("customer-service")


def listing_output(bullets: int = 5, title: str = "Aurora Lamp") -> dict:
    return {
        "title": title,
        "bullets": [f"Bullet {i}" for i in range(bullets)],
        "description": "A lamp.",
        "seo": {"title": "Aurora Lamp", "meta_description": "A lamp.", "keywords": ["lamp"]},
        "tags": ["lamp"],
    }


def field_names(exc: InvalidToolInput | InvalidModelOutput) -> set[str]:
    return {e["field"] for e in exc.errors}


# --- Registry -------------------------------------------------------------------------------------


def test_the_registry_holds_the_three_tools_with_their_models():
    assert {t.slug: t.model for t in registry.all()} == {
        "listing-writer": "qwen-plus",
        "marketing-copy": "qwen-plus",
        "customer-service": "qwen-flash",
    }


def test_an_unknown_slug_raises_unknown_tool():
    with pytest.raises(UnknownTool) as caught:
        registry.get("poetry-writer")
    assert caught.value.code == "unknown_tool"


def test_the_input_schema_is_json_schema_that_forbids_unknown_fields():
    schema = LISTING.input_schema()
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["product_name"]
    assert schema["properties"]["product_name"]["maxLength"] == 200
    assert set(schema["properties"]["marketplace"]["enum"]) == {"generic", "amazon", "shopify", "taobao"}
    json.dumps(schema)  # serialisable as the API serves it


# --- Input validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "data", "field"),
    [
        (LISTING, {"product_name": "Lamp", "colour": "red"}, "colour"),
        (LISTING, {"product_name": 42}, "product_name"),
        (LISTING, {"product_name": "x" * 201}, "product_name"),
        (LISTING, {"product_name": "   "}, "product_name"),
        (LISTING, {"product_name": "Lamp", "features": ["ok"] * 21}, "features"),
        (LISTING, {"product_name": "Lamp", "features": "dimmable"}, "features"),
        (LISTING, {"product_name": "Lamp", "marketplace": "ebay"}, "marketplace"),
        (LISTING, {"product_name": "Lamp", "attributes": {"size": {"w": 1}}}, "attributes.size"),
        (LISTING, {"product_name": "Lamp", "attributes": {"size": True}}, "attributes.size"),
        (LISTING, {"product_name": "Lamp", "language": "english"}, "language"),
        (MARKETING, {"product_name": "Lamp", "channel": "sms", "variants": 6}, "variants"),
        (MARKETING, {"product_name": "Lamp", "channel": "fax"}, "channel"),
        (MARKETING, {"channel": "email"}, "product_name"),
        (SUPPORT, {"conversation": "c1", "message": "x" * 2001}, "message"),
        (SUPPORT, {"message": "hello"}, "conversation"),
    ],
)
def test_bad_input_is_rejected_naming_the_field(tool, data, field):
    with pytest.raises(InvalidToolInput) as caught:
        tool.validate_input(data)
    assert caught.value.code == "invalid_input"
    assert field in field_names(caught.value), caught.value.errors


def test_a_non_object_input_is_rejected():
    with pytest.raises(InvalidToolInput):
        LISTING.validate_input(["product_name"])  # type: ignore[arg-type]


def test_good_input_gets_its_defaults():
    data = MARKETING.validate_input({"brief": "Spring sale on lamps", "channel": "email"})
    assert data.variants == 3
    assert LISTING.validate_input({"product_name": "Lamp"}).marketplace == "generic"


# --- Prompts --------------------------------------------------------------------------------------


def test_every_prompt_file_asks_for_json():
    for path in PROMPTS_DIR.glob("*.system.txt"):
        assert "JSON" in path.read_text(), path.name


def test_the_listing_prompt_carries_voice_language_tone_rules_and_the_input_as_json():
    system, user = LISTING.build_messages(
        {"product_name": "Aurora Lamp", "tone": "calm", "marketplace": "amazon"}, STORE
    )
    assert system["role"] == "system" and user["role"] == "user"
    for expected in (
        "tool: listing-writer",
        "Lumen & Co",
        "Warm, playful",
        "in fr",
        "calm",
        "exactly 5 bullets",
    ):
        assert expected in system["content"]
    assert '"seo": {"title"' in system["content"]  # the JSON shape, braces intact
    sent = json.loads(user["content"][user["content"].index("{") :])
    assert sent["product_name"] == "Aurora Lamp"
    assert sent["language"] == "fr"  # the store's language stood in for the missing one


def test_the_language_falls_back_to_english_without_a_store_language():
    _, user = LISTING.build_messages(
        {"product_name": "Lamp"}, MerchantProfile(store_name="S", default_language="")
    )
    assert '"language": "en"' in user["content"]


def test_the_marketing_prompt_states_the_channel_limits_and_variant_count():
    system, _ = MARKETING.build_messages({"product_name": "Lamp", "channel": "sms", "variants": 2}, STORE)
    assert "2 distinct variants" in system["content"]
    assert "at most 160 characters" in system["content"]


def test_the_support_prompt_labels_the_knowledge_base_and_replays_the_history():
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}]
    messages = SUPPORT.build_messages({"conversation": "c1", "message": "Do you ship fast?"}, STORE, history)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "[kb-1] Shipping: we ship within 2 days." in messages[0]["content"]
    assert "[kb-2] Returns" in messages[0]["content"]
    assert messages[-1]["content"] == "Do you ship fast?"


def test_a_history_turn_cannot_claim_the_system_role():
    with pytest.raises(ValueError, match="History roles"):
        SUPPORT.build_messages(
            {"conversation": "c1", "message": "hi"}, STORE, [{"role": "system", "content": "x"}]
        )


def test_knowledge_sections_are_split_on_blank_lines():
    assert [s.label for s in knowledge_sections(STORE.knowledge_base)] == ["kb-1", "kb-2"]
    assert knowledge_sections("") == []


# --- Output parsing -------------------------------------------------------------------------------


def test_a_valid_amazon_listing_parses():
    listing = LISTING.parse_output(
        json.dumps(listing_output(5)), {"product_name": "Lamp", "marketplace": "amazon"}
    )
    assert len(listing.bullets) == 5


def test_an_amazon_listing_with_four_bullets_is_rejected():
    with pytest.raises(InvalidModelOutput) as caught:
        LISTING.parse_output(json.dumps(listing_output(4)), {"product_name": "Lamp", "marketplace": "amazon"})
    assert "bullets" in field_names(caught.value)
    assert caught.value.code == "invalid_output"


def test_a_taobao_title_over_sixty_characters_is_rejected():
    text = json.dumps(listing_output(3, title="灯" * 61))
    with pytest.raises(InvalidModelOutput) as caught:
        LISTING.parse_output(text, {"product_name": "Lamp", "marketplace": "taobao"})
    assert "title" in field_names(caught.value)


def test_a_shopify_meta_description_over_160_characters_is_rejected():
    output = listing_output(3)
    output["seo"]["meta_description"] = "x" * 161
    with pytest.raises(InvalidModelOutput) as caught:
        LISTING.parse_output(json.dumps(output), {"product_name": "Lamp", "marketplace": "shopify"})
    assert "seo.meta_description" in field_names(caught.value)


def test_an_sms_body_over_160_characters_is_rejected():
    text = json.dumps({"variants": [{"headline": "", "body": "x" * 161, "cta": "Buy"}]})
    with pytest.raises(InvalidModelOutput) as caught:
        MARKETING.parse_output(text, {"product_name": "Lamp", "channel": "sms", "variants": 1})
    assert "variants.0.body" in field_names(caught.value)


def test_marketing_copy_must_have_as_many_variants_as_asked():
    text = json.dumps({"variants": [{"headline": "Hi", "body": "Body", "cta": "Buy"}] * 2})
    with pytest.raises(InvalidModelOutput) as caught:
        MARKETING.parse_output(text, {"product_name": "Lamp", "channel": "email", "variants": 3})
    assert "variants" in field_names(caught.value)


def test_an_ad_headline_over_30_characters_is_rejected():
    text = json.dumps({"variants": [{"headline": "h" * 31, "body": "Body", "cta": "Buy"}]})
    with pytest.raises(InvalidModelOutput):
        MARKETING.parse_output(text, {"product_name": "Lamp", "channel": "ad", "variants": 1})


def test_malformed_json_is_rejected_whole():
    with pytest.raises(InvalidModelOutput) as caught:
        SUPPORT.parse_output('{"reply": "Hello", "needs_hum', {"conversation": "c1", "message": "hi"})
    assert caught.value.detail == "malformed JSON"


def test_a_missing_field_is_a_schema_mismatch():
    with pytest.raises(InvalidModelOutput) as caught:
        SUPPORT.parse_output('{"reply": "Hello"}', {"conversation": "c1", "message": "hi"})
    assert caught.value.detail == "schema mismatch"
    assert "needs_human" in field_names(caught.value)


def test_json_wrapped_in_a_markdown_fence_is_accepted():
    text = '```json\n{"reply": "Hello", "needs_human": false, "sources": []}\n```'
    assert SUPPORT.parse_output(text, {"conversation": "c1", "message": "hi"}).reply == "Hello"


# --- Token counting -------------------------------------------------------------------------------


def test_prompt_tokens_are_content_tokens_plus_chat_formatting():
    messages = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "你好, world"}]
    content = sum(tokens.count_tokens(m["content"]) for m in messages)
    expected = content + 2 * tokens.MESSAGE_OVERHEAD_TOKENS + tokens.REPLY_PRIMING_TOKENS
    assert tokens.count_prompt_tokens(messages, "qwen-flash") == expected


def test_every_thread_shares_one_tokenizer():
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(id(tokens.get_tokenizer()))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1
