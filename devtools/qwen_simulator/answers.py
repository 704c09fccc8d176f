"""What the local Qwen simulator answers: output that fits each tool's schema and the input's rules.

The simulator recognises the tool from the `tool: <slug>` marker in the system prompt and reads the
tool input from the JSON object in the user message (both put there by `Tool.build_messages`). Answers
reflect the input (product name, features, channel, variant count, language) so tests and demos can
tell one run's output from another's. This is deterministic text assembly, not a language model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from agents.tools import customer_service, listing_writer, marketing_copy
from agents.tools.listing_writer import MARKETPLACE_RULES, ListingInput
from agents.tools.marketing_copy import CHANNEL_RULES, MarketingInput

TOOL_MARKER = re.compile(r"\btool: ([a-z][a-z-]*)")
_KB_SECTION = re.compile(r"^\[(kb-\d+)\] (.*?)(?=\n\n|\Z)", re.DOTALL | re.MULTILINE)
_CS_LANGUAGE = re.compile(r"^Language:.*\b([a-z]{2})\.?$", re.MULTILINE)
_WORD = re.compile(r"\w{4,}")
HANDOFF_WORDS = ("human", "person", "agent", "manager", "refund", "complaint", "speak to", "talk to")

# Just enough of each language that an answer visibly follows the requested one.
PHRASES: dict[str, dict[str, str]] = {
    "en": {"discover": "Discover", "for": "Made for", "shop": "Shop now", "meet": "Meet", "why": "Why you'll love",
           "thanks": "Thanks for your message!", "handoff": "I'm passing this to our team; a person will reply soon."},
    "es": {"discover": "Descubre", "for": "Pensado para", "shop": "Compra ahora", "meet": "Conoce", "why": "Por qué te encantará",
           "thanks": "¡Gracias por tu mensaje!", "handoff": "Paso tu consulta a nuestro equipo; una persona te responderá pronto."},
    "fr": {"discover": "Découvrez", "for": "Conçu pour", "shop": "Acheter", "meet": "Voici", "why": "Pourquoi vous allez adorer",
           "thanks": "Merci pour votre message !", "handoff": "Je transmets votre demande à notre équipe ; une personne vous répondra bientôt."},
    "de": {"discover": "Entdecken Sie", "for": "Gemacht für", "shop": "Jetzt kaufen", "meet": "Das ist", "why": "Darum lieben Sie",
           "thanks": "Danke für Ihre Nachricht!", "handoff": "Ich gebe das an unser Team weiter; ein Mensch antwortet Ihnen bald."},
    "pt": {"discover": "Descubra", "for": "Feito para", "shop": "Compre já", "meet": "Conheça", "why": "Por que você vai amar",
           "thanks": "Obrigado pela sua mensagem!", "handoff": "Vou passar isto à nossa equipa; uma pessoa responderá em breve."},
    "zh": {"discover": "探索", "for": "专为", "shop": "立即购买", "meet": "全新", "why": "爱上它的理由",
           "thanks": "感谢您的留言！", "handoff": "我会把您的问题转给我们的同事，稍后会有专人回复您。"},  # noqa: RUF001
    "ja": {"discover": "発見しよう", "for": "対象", "shop": "今すぐ購入", "meet": "新登場", "why": "おすすめの理由",
           "thanks": "メッセージありがとうございます！", "handoff": "担当者におつなぎします。まもなくスタッフがお返事します。"},  # noqa: RUF001
}  # fmt: skip


def phrases(language: str | None) -> dict[str, str]:
    return PHRASES.get((language or "en").split("-")[0], PHRASES["en"])


def fit(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at a word boundary when there is one."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-|")


def tool_of(messages: Sequence[Mapping[str, Any]]) -> str | None:
    for message in messages:
        if message.get("role") == "system" and (match := TOOL_MARKER.search(str(message.get("content", "")))):
            return match.group(1)
    return None


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def input_object(text: str) -> dict[str, Any]:
    """The first JSON object in a user message (the tool input)."""
    start = text.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return {}


def listing(data: ListingInput) -> dict[str, Any]:
    rules = MARKETPLACE_RULES[data.marketplace]
    p = phrases(data.language)
    name, features = data.product_name, list(data.features)
    subtitle = ", ".join(features[:2]) or (data.category or "")
    title = fit(f"{name} - {subtitle}" if subtitle else name, rules.title_max)
    attributes = [f"{key}: {value}" for key, value in data.attributes.items()]
    fillers = [f"{p['why']} {name}", f"{p['for']} {data.audience or data.category or name}"]
    fillers += [f"{name} ({data.category or data.marketplace}) #{i}" for i in range(1, 6)]
    count = rules.bullets or min(max(3, len(features)), 7)
    bullets = [fit(b, rules.bullet_max) for b in (features + attributes + fillers)[:count]]
    description = " ".join(
        part
        for part in (
            f"{p['discover']} {name}.",
            f"{data.category}." if data.category else "",
            " ".join(f"{f}." for f in features),
            " ".join(f"{a}." for a in attributes),
            f"{p['for']} {data.audience}." if data.audience else "",
        )
        if part
    )
    keywords = list(data.keywords) or [w.lower() for w in name.split()][:5]
    return {
        "title": title,
        "bullets": bullets,
        "description": fit(description, 5000),
        "seo": {
            "title": fit(f"{name} | {data.category}" if data.category else name, rules.seo_title_max),
            "meta_description": fit(description, rules.meta_description_max),
            "keywords": keywords[:10],
        },
        "tags": [fit(t, 100) for t in [*keywords, *([data.category] if data.category else [])][:10]],
    }


def marketing(data: MarketingInput) -> dict[str, Any]:
    rules = CHANNEL_RULES[data.channel]
    p = phrases(data.language)
    subject = data.product_name or " ".join((data.brief or "").split()[:6])
    detail = data.brief or subject
    audience = f" {p['for']} {data.audience}." if data.audience else ""
    headlines = [f"{p['meet']} {subject}", f"{subject}!", f"{p['why']} {subject}", f"{subject}: {p['discover']}",
                 f"{p['shop']}: {subject}"]  # fmt: skip
    bodies = [f"{p['discover']} {detail}.{audience}", f"{detail}.{audience} {p['shop']}.",
              f"{p['why']} {detail}.{audience}", f"{subject} - {detail}.{audience}",
              f"{audience.strip()} {p['discover']} {subject}."]  # fmt: skip
    cta = fit(data.call_to_action or p["shop"], rules.cta_max)
    variants = []
    for i in range(data.variants):
        headline = "" if not rules.headline_required else fit(headlines[i % 5], rules.headline_max)
        variants.append({"headline": headline, "body": fit(bodies[i % 5], rules.body_max), "cta": cta})
    return {"variants": variants}


def support(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    system = next((str(m.get("content", "")) for m in messages if m.get("role") == "system"), "")
    question = last_user_text(messages)
    language = match.group(1) if (match := _CS_LANGUAGE.search(system)) else "en"
    p = phrases(language)
    asked = {w.lower() for w in _WORD.findall(question)}
    scored = [(len(asked & {w.lower() for w in _WORD.findall(text)}), label, text)
              for label, text in _KB_SECTION.findall(system)]  # fmt: skip
    score, label, text = max(scored, default=(0, "", ""))
    wants_person = any(word in question.lower() for word in HANDOFF_WORDS)
    if score == 0:
        return {"reply": p["handoff"], "needs_human": True, "sources": []}
    reply = f"{p['thanks']} {text}" + (f" {p['handoff']}" if wants_person else "")
    return {"reply": fit(reply, 4000), "needs_human": wants_person, "sources": [label]}


def answer(messages: Sequence[Mapping[str, Any]]) -> str:
    """The simulated model's reply to a chat, as the text of the assistant message."""
    tool = tool_of(messages)
    # The tool input is the first user message's JSON; later turns (a "fix your JSON" follow-up) may have none.
    data = next(
        (found for m in messages if m.get("role") == "user" and (found := input_object(str(m["content"])))),
        {},
    )
    try:
        if tool == listing_writer.TOOL.slug:
            result = listing(ListingInput.model_validate(data))
        elif tool == marketing_copy.TOOL.slug:
            result = marketing(MarketingInput.model_validate(data))
        elif tool == customer_service.TOOL.slug:
            result = support(messages)
        else:
            result = {"answer": f"Simulated answer to: {fit(last_user_text(messages), 200)}"}
    except ValidationError as exc:
        # A real model would muddle through a bad input too; say what was wrong, in JSON.
        result = {"error": "the input did not fit the tool", "details": exc.errors(include_url=False)}
    return json.dumps(result, ensure_ascii=False, default=str)
