"""What the local Qwen simulator answers: output that fits each tool's schema and the input's rules.

The simulator recognises the tool from the `tool: <slug>` marker in the system prompt and reads the
tool input from the JSON object in the user message (both put there by `Tool.build_messages`). Answers
reflect the input (product name, features, channel, variant count, language) so tests and demos can
tell one run's output from another's. This is deterministic text assembly, not a language model.
"""

# Chinese and Japanese copy uses full-width punctuation on purpose.
# ruff: noqa: RUF001

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
_KB_SECTION = re.compile(
    r"^\[((?:kb|art)-\d+)\] (.*?)(?=\n\n\[(?:kb|art)-|\n\nAnswer with|\Z)", re.DOTALL | re.MULTILINE
)
_CS_LANGUAGE = re.compile(r"^Language:.*\b([a-z]{2}(?:-[A-Za-z]{2,4})?)\.?$", re.MULTILINE)
_TOOL_LANGUAGE = re.compile(r"^Language: write every field in ([A-Za-z-]+)\.?$", re.MULTILINE)
_WORD = re.compile(r"[^\W\d_]{3,}")
# Chinese, Japanese kana and Korean: a question written in them is answered in Chinese (Japanese kana: ja).
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")
# A customer who asks for a person gets one, whatever the knowledge base says.
HANDOFF_WORDS = (
    "human",
    "person",
    "agent",
    "manager",
    "speak to",
    "talk to",
    "人工",
    "真人",
    "客服人员",
    "经理",
)
STOP_WORDS = {
    "the", "and", "for", "you", "your", "with", "have", "does", "what", "when", "where", "which", "how", "can",
    "are", "this", "that", "there", "from", "about", "will", "would", "could", "please", "want", "need",
    "tell", "know", "any", "our", "its", "was", "not", "but", "all", "get", "did", "hello", "thanks",
}  # fmt: skip

# Each language's phrases; `{x}` is where the product, audience or detail goes. Enough of each language
# that an answer reads as copy written in it, not as English with a foreign word in front.
PHRASES: dict[str, dict[str, Any]] = {
    "en": {"discover": "Discover {x}", "for": "Made for {x}", "shop": "Shop now", "meet": "Meet {x}",
           "why": "Why you'll love {x}", "thanks": "Thanks for your message!",
           "handoff": "I'm passing this to our team; a person will reply soon.",
           "unknown": "I'm sorry, I don't have that information.",
           "fillers": ["Chosen with care for everyday use", "A thoughtful gift idea",
                       "Pairs well with the rest of your {x} collection",
                       "Questions before you buy? Our team is happy to help", "A simple way to treat yourself"]},
    "es": {"discover": "Descubre {x}", "for": "Pensado para {x}", "shop": "Compra ahora", "meet": "Conoce {x}",
           "why": "Por qué te encantará {x}", "thanks": "¡Gracias por tu mensaje!",
           "handoff": "Paso tu consulta a nuestro equipo; una persona te responderá pronto.",
           "unknown": "Lo siento, no tengo esa información.",
           "fillers": ["Elegido con cuidado para el día a día", "Una idea de regalo con detalle",
                       "Combina con el resto de tu colección de {x}",
                       "¿Dudas antes de comprar? Nuestro equipo te ayuda", "Un capricho sencillo para ti"]},
    "fr": {"discover": "Découvrez {x}", "for": "Conçu pour {x}", "shop": "Acheter", "meet": "Voici {x}",
           "why": "Pourquoi vous allez adorer {x}", "thanks": "Merci pour votre message !",
           "handoff": "Je transmets votre demande à notre équipe ; une personne vous répondra bientôt.",
           "unknown": "Désolé, je n'ai pas cette information.",
           "fillers": ["Choisi avec soin pour tous les jours", "Une idée cadeau attentionnée",
                       "S'accorde avec le reste de votre collection {x}",
                       "Une question avant d'acheter ? Notre équipe vous répond", "Un petit plaisir à s'offrir"]},
    "de": {"discover": "Entdecken Sie {x}", "for": "Gemacht für {x}", "shop": "Jetzt kaufen", "meet": "Das ist {x}",
           "why": "Darum lieben Sie {x}", "thanks": "Danke für Ihre Nachricht!",
           "handoff": "Ich gebe das an unser Team weiter; ein Mensch antwortet Ihnen bald.",
           "unknown": "Leider habe ich dazu keine Information.",
           "fillers": ["Mit Sorgfalt für den Alltag ausgewählt", "Eine durchdachte Geschenkidee",
                       "Passt zu Ihrer übrigen {x}-Sammlung",
                       "Fragen vor dem Kauf? Unser Team hilft gern", "Eine kleine Freude für Sie selbst"]},
    "pt": {"discover": "Descubra {x}", "for": "Feito para {x}", "shop": "Compre já", "meet": "Conheça {x}",
           "why": "Por que você vai amar {x}", "thanks": "Obrigado pela sua mensagem!",
           "handoff": "Vou passar isto à nossa equipa; uma pessoa responderá em breve.",
           "unknown": "Desculpe, não tenho essa informação.",
           "fillers": ["Escolhido com cuidado para o dia a dia", "Uma ideia de presente atenciosa",
                       "Combina com o resto da sua coleção de {x}",
                       "Dúvidas antes de comprar? A nossa equipa ajuda", "Um mimo simples para você"]},
    "zh": {"discover": "探索{x}", "for": "专为{x}打造", "shop": "立即购买", "meet": "全新{x}",
           "why": "爱上{x}的理由", "thanks": "感谢您的留言！",
           "handoff": "我会把您的问题转给我们的同事，稍后会有专人回复您。",
           "unknown": "抱歉，我暂时没有这方面的信息。",
           "fillers": ["精心挑选，适合日常使用", "送礼自用两相宜", "与您的{x}系列轻松搭配", "购买前有疑问？欢迎随时咨询客服", "犒劳自己的小确幸"]},
    "ja": {"discover": "{x}を発見しよう", "for": "{x}のために", "shop": "今すぐ購入", "meet": "新登場の{x}",
           "why": "{x}をおすすめする理由", "thanks": "メッセージありがとうございます！",
           "handoff": "担当者におつなぎします。まもなくスタッフがお返事します。",
           "unknown": "申し訳ありません、その情報は持ち合わせておりません。",
           "fillers": ["毎日使いやすいように厳選", "ギフトにもおすすめ", "お手持ちの{x}とも合わせやすい",
                       "ご購入前のご質問もお気軽にどうぞ", "自分へのちょっとしたご褒美に"]},
}  # fmt: skip


def language_code(language: str | None) -> str:
    code = (language or "en").split("-")[0].lower()
    return code if code in PHRASES else "en"


def phrases(language: str | None) -> dict[str, Any]:
    return PHRASES[language_code(language)]


def say(language: str | None, key: str, x: str = "") -> str:
    return str(phrases(language)[key]).replace("{x}", x)


def closes_sentences(language: str | None) -> tuple[str, str]:
    """The full stop and the space between sentences: Chinese and Japanese use 。 and no space."""
    return ("。", "") if language_code(language) in {"zh", "ja"} else (".", " ")


def sentence(text: str, language: str | None) -> str:
    """`text` ending in exactly one full stop: "this week only." stays as it is, never "only.."."""
    text = " ".join(text.split()).rstrip(" ,;:、，")
    if not text:
        return ""
    stop, _ = closes_sentences(language)
    return text if text[-1] in ".!?…。！？" else text + stop


def sentences(parts: Sequence[str], language: str | None) -> str:
    _, space = closes_sentences(language)
    return space.join(s for s in (sentence(p, language) for p in parts) if s)


def detect_language(text: str) -> str | None:
    """ "zh" or "ja" when `text` is written in Chinese or Japanese; None otherwise (follow the prompt)."""
    if _KANA.search(text):
        return "ja"
    if _CJK.search(text):
        return "zh"
    return None


def fit(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at a word boundary when there is one."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-|，、")


def tool_of(messages: Sequence[Mapping[str, Any]]) -> str | None:
    for message in messages:
        if message.get("role") == "system" and (match := TOOL_MARKER.search(str(message.get("content", "")))):
            return match.group(1)
    return None


def system_text(messages: Sequence[Mapping[str, Any]]) -> str:
    return next((str(m.get("content", "")) for m in messages if m.get("role") == "system"), "")


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


def copy_language(requested: str | None, data: Mapping[str, Any], system: str) -> str:
    """The language the copy is written in: the input's own, else Chinese for a Chinese input, else the
    one the prompt asks for (the store's default)."""
    if requested:
        return requested
    written = json.dumps(data, ensure_ascii=False)
    if detected := detect_language(written):
        return detected
    match = _TOOL_LANGUAGE.search(system)
    return match.group(1) if match else "en"


def listing(data: ListingInput, system: str = "") -> dict[str, Any]:
    rules = MARKETPLACE_RULES[data.marketplace]
    language = copy_language(data.language, data.model_dump(), system)
    comma = "，" if language_code(language) in {"zh", "ja"} else ", "
    name, features = data.product_name, list(data.features)
    subtitle = comma.join(f.rstrip(".!。！") for f in features[:2]) or (data.category or "")
    title = fit(f"{name} - {subtitle}" if subtitle else name, rules.title_max)
    attributes = [f"{key}: {value}" for key, value in data.attributes.items()]
    fillers = [say(language, "why", name)]
    if data.audience:
        fillers.append(say(language, "for", data.audience))
    # "Pairs well with your {category} collection" only reads well with a category.
    fillers += [
        str(f).replace("{x}", data.category or "")
        for f in phrases(language)["fillers"]
        if data.category or "{x}" not in f
    ]
    count = rules.bullets or min(max(3, len(features)), 7)
    bullets = [fit(b.rstrip(".。"), rules.bullet_max) for b in dict.fromkeys(features + attributes + fillers)]
    bullets = bullets[:count]
    description = sentences(
        [
            say(language, "discover", name),
            data.category or "",
            *features,
            *attributes,
            say(language, "for", data.audience) if data.audience else "",
        ],
        language,
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
        "tags": [
            fit(t, 100) for t in dict.fromkeys([*keywords, *([data.category] if data.category else [])])
        ][:10],
    }


def marketing(data: MarketingInput, system: str = "") -> dict[str, Any]:
    rules = CHANNEL_RULES[data.channel]
    language = copy_language(data.language, data.model_dump(), system)
    subject = data.product_name or fit(" ".join((data.brief or "").split()[:6]), 60)
    detail = data.brief or subject
    audience = say(language, "for", data.audience) if data.audience else ""
    shop = say(language, "shop")
    headlines = [say(language, "meet", subject), sentence(subject, language).rstrip(".。") + ("！" if closes_sentences(language)[1] == "" else "!"),
                 say(language, "why", subject), say(language, "discover", subject), f"{shop}: {subject}"]  # fmt: skip
    # With only a brief, the brief is the detail and "Shop now" the close: "Discover Spring sale" is not copy.
    discover = say(language, "discover", data.product_name) if data.product_name else shop
    bodies = [
        sentences([discover, detail, audience] if data.product_name else [detail, audience, shop], language),
        sentences([detail, audience, shop], language),
        sentences([say(language, "why", subject), detail, audience], language),
        sentences([detail, discover], language),
        sentences([audience, detail, discover], language),
    ]
    cta = fit(data.call_to_action or shop, rules.cta_max)
    variants = []
    for i in range(data.variants):
        headline = "" if not rules.headline_required else fit(headlines[i % 5], rules.headline_max)
        variants.append({"headline": headline, "body": fit(bodies[i % 5], rules.body_max), "cta": cta})
    return {"variants": variants}


_MARKDOWN = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images: their alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links: their text
    (re.compile(r"^\s{0,3}#{1,6}\s*(.+?)\s*#*\s*$", re.MULTILINE), r"\1:"),  # headings: a lead-in
    (re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.MULTILINE), ""),  # list markers
    (re.compile(r"^\s*>\s?", re.MULTILINE), ""),  # quotes
    (re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # emphasis and code
    (re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,})\s*$", re.MULTILINE), ""),  # rules
    (re.compile(r"^\s*\|?(?:\s*:?-+:?\s*\|)+\s*$", re.MULTILINE), ""),  # table separators
    (re.compile(r"\s*\|\s*"), " "),  # table cells
]


def plain_text(markdown: str) -> str:
    """The knowledge base's words without its markup: headings become lead-ins, lists sentences."""
    text = markdown
    for pattern, replacement in _MARKDOWN:
        text = pattern.sub(replacement, text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out: list[str] = []
    for line in (line for line in lines if line):
        if out and not out[-1].endswith((":", ".", "!", "?", "。", "！", "？", "：")):
            out[-1] += "."  # a list item or a line of its own is a sentence of its own
        out.append(line)
    return " ".join(out).replace(":.", ":")


def _stem(word: str) -> str:
    word = word.lower()
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def terms(text: str) -> set[str]:
    """What a text is about, to match a question with a section: word stems, and for Chinese or Japanese
    (written without spaces) every pair of adjacent characters."""
    found = {_stem(w) for w in _WORD.findall(text) if w.lower() not in STOP_WORDS and not _CJK.search(w)}
    for run in re.findall(r"[\u3040-\u30ff\u3400-\u9fff]+", text):
        found.update(run[i : i + 2] for i in range(len(run) - 1))
    return found


def support(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    system = system_text(messages)
    question = last_user_text(messages)
    match = _CS_LANGUAGE.search(system)
    language = detect_language(question) or (match.group(1) if match else "en")
    asked = terms(question)
    scored = []
    for label, text in _KB_SECTION.findall(system):
        content = plain_text(text)
        scored.append((len(asked & terms(content)), label, content))
    score, label, content = max(scored, default=(0, "", ""), key=lambda item: item[0])
    wants_person = any(word in question.lower() for word in HANDOFF_WORDS)
    if score == 0:
        # The knowledge base has no answer: say so, and hand over rather than guess.
        reply = sentences([say(language, "unknown"), say(language, "handoff")], language)
        return {"reply": reply, "needs_human": True, "sources": []}
    # Answer with the sentences of the section that speak to the question, the whole section if none does.
    parts = [s for s in _SENTENCE_END.split(content) if s.strip()]
    relevant = [s for s in parts if asked & terms(s)] or parts
    answer_text = sentences(relevant, language)
    reply = sentences([say(language, "thanks"), answer_text, say(language, "handoff") if wants_person else ""],
                      language)  # fmt: skip
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
            result = listing(ListingInput.model_validate(data), system_text(messages))
        elif tool == marketing_copy.TOOL.slug:
            result = marketing(MarketingInput.model_validate(data), system_text(messages))
        elif tool == customer_service.TOOL.slug:
            result = support(messages)
        else:
            result = {"answer": f"Simulated answer to: {fit(last_user_text(messages), 200)}"}
    except ValidationError as exc:
        # A real model would muddle through a bad input too; say what was wrong, in JSON.
        result = {"error": "the input did not fit the tool", "details": exc.errors(include_url=False)}
    return json.dumps(result, ensure_ascii=False, default=str)
