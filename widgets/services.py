"""Writes of the chat widget: widgets and their keys, visitors' conversations and messages (with the limits
that keep a hostile visitor from running up the store's bill), ratings, and knowledge articles.

A visitor's message becomes a paid run through `agents.conversations.services.message_post`, so the hold,
the charge and `InsufficientTokens` work exactly as for the API. Before that, in this order: the message's
size, the visitor's and the widget's rate limits (Redis, 429 with Retry-After), the conversation's token
cap and the widget's daily budget (checked under the widget's row lock, so concurrent messages cannot
both slip under it; a reply's run counts at its hold until it is settled). While a person has the
conversation, messages create no run and cost nothing, so none of the token limits apply.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.contrib.postgres.search import SearchVector
from django.db import connection, transaction
from django.db.models import Value
from django.utils import timezone
from django.utils.translation import gettext as _

from agents.conversations import services as conversations
from agents.models import Conversation, Message, Run
from agents.tools.customer_service import knowledge_sections
from merchants.actors import Actor
from merchants.models import Merchant
from merchants.rate_limits import hit
from tokenhub.errors import InvalidInput, NotFound, RateLimited
from tokenhub.text import find_forbidden
from widgets import retrieval, selectors
from widgets.errors import ConversationLimitReached, InvalidWidgetSettings, WidgetOffline
from widgets.models import Article, ArticleChunk, Rating, VisitorConversation, Widget

# Shipped limits (docs/widget.md). A visitor types far slower than this; a script flooding one
# conversation, or the whole widget, is cut off within a minute.
MESSAGE_MAX_CHARS = 2000
VISITOR_MESSAGES_PER_MINUTE = 6
WIDGET_MESSAGES_PER_MINUTE = 120
VISITOR_STARTS_PER_MINUTE = 5  # new conversations per visitor address
WIDGET_STARTS_PER_MINUTE = 60
MAX_ORIGINS = 20
ARTICLES_PER_IMPORT = 500

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
WIDGET_ACTOR = Actor.system("chat widget")


def origin_normalise(value: str) -> str:
    """`https://Shop.example/` as `https://shop.example`: what a browser sends in `Origin`."""
    raw = (value or "").strip().rstrip("/")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise InvalidWidgetSettings(
            _("%(origin)s is not a website origin; write it like https://shop.example.") % {"origin": raw},
            details={"origins": raw},
        )
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def _origins(values: Iterable[str]) -> list[str]:
    origins = list(dict.fromkeys(origin_normalise(v) for v in values if v and v.strip()))
    if not origins:
        raise InvalidWidgetSettings(
            _("Name at least one website origin that may show the widget."), details={"origins": ""}
        )
    if len(origins) > MAX_ORIGINS:
        raise InvalidWidgetSettings(
            _("A widget takes at most %(n)s origins.") % {"n": MAX_ORIGINS}, details={"origins": ""}
        )
    return origins


def _checked(fields: dict) -> dict:
    if "color" in fields and not _COLOR.match(fields["color"] or ""):
        raise InvalidWidgetSettings(_("Use a colour like #2563eb."), details={"color": fields["color"]})
    if "language" in fields and fields["language"] not in Merchant.Language.values:
        raise InvalidWidgetSettings(_("Choose one of the listed languages."), details={"language": ""})
    for name in ("daily_token_budget", "conversation_token_cap"):
        if name in fields and (not isinstance(fields[name], int) or not 0 <= fields[name] <= 100_000_000):
            raise InvalidWidgetSettings(_("Use a whole number of tokens."), details={name: fields[name]})
    if "origins" in fields:
        fields["allowed_origins"] = _origins(fields.pop("origins"))
    return fields


def widget_create(*, merchant: Merchant, origins: Iterable[str], **settings) -> Widget:
    """A new widget with a fresh public key (`pk_` and 24 random characters)."""
    fields = _checked({"origins": list(origins), **settings})
    fields.setdefault("language", merchant.default_language or "en")
    return Widget.objects.create(merchant=merchant, public_key=f"pk_{secrets.token_urlsafe(18)}", **fields)


def widget_update(*, widget: Widget, **settings) -> Widget:
    fields = _checked(dict(settings))
    for name, value in fields.items():
        setattr(widget, name, value)
    widget.save(update_fields=list(fields))
    return widget


def widget_revoke(*, widget: Widget) -> Widget:
    """Pages embedding the key stop working at once; their conversations stay in the inbox."""
    Widget.objects.filter(pk=widget.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    widget.refresh_from_db(fields=["revoked_at"])
    return widget


def _limit(ident: str, limit: int, message: str) -> None:
    decision = hit(ident, limit=limit)
    if not decision.allowed:
        raise RateLimited(message, retry_after=max(1, round(decision.retry_after)))


def visitor_start(*, widget: Widget, origin: str, client: str) -> tuple[VisitorConversation, str]:
    """A new conversation for a visitor, and its visitor token (returned once, kept only hashed)."""
    _limit(f"widget:{widget.pk}:starts", WIDGET_STARTS_PER_MINUTE, _("Too many new chats right now."))
    _limit(f"widget:{widget.pk}:starts:{client}", VISITOR_STARTS_PER_MINUTE, _("Too many new chats."))
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        conversation, _message, _run = conversations.conversation_start(
            merchant=widget.merchant, actor=WIDGET_ACTOR, customer_ref=f"widget: {widget.name}"[:120]
        )
        visitor = VisitorConversation.objects.create(
            conversation=conversation, widget=widget, token_hash=selectors.token_hash(token), origin=origin
        )
    return visitor, token


def visitor_message(
    *, visitor: VisitorConversation, content: str, idempotency_key: str | None = None
) -> tuple[Message, Run | None]:
    """Store the visitor's message and, while the bot has the conversation, the paid run answering it."""
    content = (content or "").strip()
    if not content or len(content) > MESSAGE_MAX_CHARS:
        raise InvalidInput(
            _("Write 1 to %(n)s characters.") % {"n": MESSAGE_MAX_CHARS},
            details={"message": _("Write 1 to %(n)s characters.") % {"n": MESSAGE_MAX_CHARS}},
        )
    widget = visitor.widget
    _limit(
        f"widget:{widget.pk}:visitor:{visitor.conversation_id}",
        VISITOR_MESSAGES_PER_MINUTE,
        _("You are sending messages too fast; wait a moment."),
    )
    _limit(f"widget:{widget.pk}:messages", WIDGET_MESSAGES_PER_MINUTE, _("The assistant is busy; try again."))
    conversation = visitor.conversation
    with transaction.atomic():
        Widget.objects.select_for_update().filter(pk=widget.pk).first()
        conversation.refresh_from_db(fields=["status"])
        if conversation.status == Conversation.Status.OPEN:
            if selectors.conversation_tokens(conversation=conversation) >= widget.conversation_token_cap:
                raise ConversationLimitReached(
                    details={"conversation_token_cap": widget.conversation_token_cap}
                )
            if selectors.widget_tokens_today(widget=widget) >= widget.daily_token_budget:
                raise WidgetOffline()
        return conversations.message_post(
            conversation=conversation,
            content=content,
            actor=WIDGET_ACTOR,
            idempotency_key=_visitor_key(visitor, idempotency_key),
        )


def _visitor_key(visitor: VisitorConversation, key: str | None) -> str | None:
    """A visitor's Idempotency-Key in its own namespace: run keys are unique per store, and a visitor must
    not be able to take a key the store's own API calls will use."""
    if key is None:
        return None
    return "widget:" + hashlib.sha256(f"{visitor.conversation_id}:{key}".encode()).hexdigest()


def visitor_hand_over(*, visitor: VisitorConversation) -> Conversation:
    conversations.conversation_hand_over(conversation=visitor.conversation)
    return visitor.conversation


def rating_set(*, visitor: VisitorConversation, message_id, helpful: bool) -> Rating:
    """The visitor's rating of one of the bot's replies in their own conversation (NotFound otherwise)."""
    try:
        pk = int(message_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    message = Message.objects.filter(
        pk=pk, conversation_id=visitor.conversation_id, role=Message.Role.ASSISTANT
    ).first()
    if message is None:
        raise NotFound()
    rating, _created = Rating.objects.update_or_create(
        message=message, defaults={"helpful": helpful, "created_at": timezone.now()}
    )
    return rating


# --- Knowledge articles ---------------------------------------------------------------------------


def _article_fields(title: str, body: str, url: str) -> tuple[str, str, str]:
    title, body, url = (title or "").strip(), (body or "").strip(), (url or "").strip()
    # Pasted and uploaded text bypasses the request edge's check: the same rule, here.
    if (field := find_forbidden({"title": title, "body": body, "url": url})) is not None:
        raise InvalidInput(
            _("The article contains characters that cannot be saved (a NUL character or a broken Unicode "
              "sequence). Remove them and try again."),
            details={field: ""},
        )  # fmt: skip
    if not title or len(title) > 200:
        raise InvalidInput(
            _("Give the article a title of 1 to 200 characters."), details={"title": title[:50]}
        )
    if not body or len(body) > 100_000:
        raise InvalidInput(_("Write the article's text (at most 100,000 characters)."), details={"body": ""})
    if url and urlsplit(url).scheme not in ("http", "https"):
        raise InvalidInput(_("The link must start with https:// or http://."), details={"url": url[:100]})
    return title, body, url[:500]


def _chunks_rebuild(article: Article) -> None:
    article.chunks.all().delete()
    ArticleChunk.objects.bulk_create(
        ArticleChunk(article=article, merchant_id=article.merchant_id, position=i, text=text)
        for i, text in enumerate(retrieval.chunk_text(article.body))
    )
    if connection.vendor == "postgresql":
        # The title weighs more than the text: a question naming the topic finds its article first.
        ArticleChunk.objects.filter(article=article).update(
            search=SearchVector(Value(article.title), weight="A", config="simple")
            + SearchVector("text", weight="B", config="simple")
        )


def article_save(
    *, merchant: Merchant, title: str, body: str, url: str = "", article: Article | None = None
) -> Article:
    """Create (or, with `article`, replace) an article and its chunks."""
    title, body, url = _article_fields(title, body, url)
    with transaction.atomic():
        if article is None:
            article = Article.objects.create(merchant=merchant, title=title, body=body, url=url)
        else:
            article.title, article.body, article.url, article.updated_at = title, body, url, timezone.now()
            article.save(update_fields=["title", "body", "url", "updated_at"])
        _chunks_rebuild(article)
    return article


def article_delete(*, article: Article) -> None:
    article.delete()


def _import(merchant: Merchant, rows: list[tuple[str, str, str]]) -> list[Article]:
    if len(rows) > ARTICLES_PER_IMPORT:
        raise InvalidInput(
            _("Import at most %(n)s articles at a time.") % {"n": ARTICLES_PER_IMPORT}, details={"file": ""}
        )
    with transaction.atomic():
        return [article_save(merchant=merchant, title=t, body=b, url=u) for t, b, u in rows]


def articles_import_csv(*, merchant: Merchant, text: str) -> list[Article]:
    """A CSV with a header row naming `title`, `body` and optionally `url`; one article per row."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    names = {name.strip().lower(): name for name in reader.fieldnames or []}
    if "title" not in names or "body" not in names:
        raise InvalidInput(
            _("The CSV needs a header row with the columns title and body (and optionally url)."),
            details={"file": ""},
        )
    rows = []
    try:
        for row in reader:
            rows.append(
                (
                    row.get(names["title"]) or "",
                    row.get(names["body"]) or "",
                    row.get(names.get("url", ""), "") or "",
                )
            )
    except csv.Error as exc:  # a cell past the csv module's field limit, a NUL byte
        raise InvalidInput(
            _("This CSV could not be read (line %(line)s): each cell must be plain text of reasonable size.")
            % {"line": reader.line_num},
            details={"file": ""},
        ) from exc
    return _import(merchant, [r for r in rows if r[0].strip() or r[1].strip()])


_HEADING = re.compile(r"^#{1,2}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def articles_import_markdown(*, merchant: Merchant, text: str, default_title: str = "") -> list[Article]:
    """Markdown: each `#` or `##` heading starts an article titled by it; text before the first heading
    becomes an article titled `default_title`."""
    rows: list[tuple[str, str, str]] = []
    headings = list(_HEADING.finditer(text))
    lead = text[: headings[0].start()] if headings else text
    if lead.strip():
        rows.append((default_title or _("Store information"), lead, ""))
    for i, heading in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        body = text[heading.end() : end]
        if body.strip():
            rows.append((heading.group(1)[:200], body, ""))
    return _import(merchant, rows)


def articles_import_knowledge_base(*, merchant: Merchant) -> list[Article]:
    """The store profile's knowledge base as articles: one per blank-line-separated section, titled by
    its first words (the bot answers from articles from then on)."""
    rows = []
    for section in knowledge_sections(merchant.knowledge_base):
        first_line = section.text.splitlines()[0]
        title = first_line.split(":", 1)[0] if ":" in first_line[:80] else first_line[:60]
        rows.append((title.strip()[:200] or section.label, section.text, ""))
    return _import(merchant, rows)
