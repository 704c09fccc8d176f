"""Tenant-scoped reads of widgets, visitor conversations, articles and support outcomes. A widget is found
by its public key only while active; a visitor's conversation only with its own token."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from agents.models import Conversation, Message, Run
from agents.selectors import as_uuid
from merchants.models import Merchant
from widgets.models import Article, ArticleChunk, Rating, VisitorConversation, Widget

# A conversation the bot answered counts as resolved by the bot when nobody asked for a person and the
# customer wrote nothing more for this long after its last reply (docs/widget.md, "Outcomes").
RESOLUTION_WINDOW = timedelta(hours=24)
OUTCOME_DAYS = 30


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def widget_by_public_key(public_key: str) -> Widget | None:
    """The active widget with this public key, or None (unknown or revoked: both answer 401)."""
    if not public_key or not public_key.startswith("pk_") or len(public_key) > 40:
        return None
    return (
        Widget.objects.filter(public_key=public_key, revoked_at__isnull=True)
        .select_related("merchant")
        .first()
    )


def widgets_of(*, merchant: Merchant) -> QuerySet[Widget]:
    return Widget.objects.filter(merchant=merchant).order_by("revoked_at", "-created_at")


def widget_of(*, merchant: Merchant, widget_id) -> Widget | None:
    try:
        pk = int(widget_id)
    except (TypeError, ValueError):
        return None
    return Widget.objects.filter(merchant=merchant, pk=pk).first()


def visitor_conversation_of(
    *, widget: Widget, conversation_id, token: str | None
) -> VisitorConversation | None:
    """The widget's conversation whose visitor token is `token`; None for anything else (404)."""
    if not token or (pk := as_uuid(conversation_id)) is None:
        return None
    return (
        VisitorConversation.objects.filter(widget=widget, conversation_id=pk, token_hash=token_hash(token))
        .select_related("conversation", "conversation__merchant", "widget")
        .first()
    )


def _tokens_of_runs(runs: QuerySet[Run]) -> int:
    """Charged tokens, plus the holds of runs still unfinished (what they may still cost)."""
    charged = runs.filter(status=Run.Status.SUCCEEDED).aggregate(t=Coalesce(Sum("cost"), 0))["t"]
    held = runs.exclude(status__in=Run.TERMINAL).aggregate(t=Coalesce(Sum("held"), 0))["t"]
    return int(charged) + int(held)


def conversation_tokens(*, conversation: Conversation) -> int:
    return _tokens_of_runs(
        # One filter() call: one join, so each run (one customer message) is counted once.
        Run.objects.filter(
            merchant_id=conversation.merchant_id,
            messages__conversation=conversation,
            messages__role=Message.Role.CUSTOMER,
        )
    )


def widget_tokens_today(*, widget: Widget, now: datetime | None = None) -> int:
    """What the widget's conversations cost since 00:00 UTC today (unfinished runs at their hold)."""
    now = now or timezone.now()
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return _tokens_of_runs(
        Run.objects.filter(
            merchant_id=widget.merchant_id,
            created_at__gte=start,
            messages__role=Message.Role.CUSTOMER,
            messages__conversation__visitor__widget=widget,
        )
    )


def articles_of(*, merchant: Merchant) -> QuerySet[Article]:
    return Article.objects.filter(merchant=merchant).annotate(chunk_count=Count("chunks"))


def article_of(*, merchant: Merchant, article_id) -> Article | None:
    try:
        pk = int(article_id)
    except (TypeError, ValueError):
        return None
    return Article.objects.filter(merchant=merchant, pk=pk).first()


def citations_of(*, merchant: Merchant, labels: list[str]) -> list[dict[str, str]]:
    """The articles behind a reply's `sources` labels (`art-<chunk id>`), once each, in citing order;
    labels of the old knowledge base (kb-1) or of another store's chunks name nothing."""
    ids = []
    for label in labels or []:
        if isinstance(label, str) and label.startswith("art-") and label[4:].isdigit():
            ids.append(int(label[4:]))
    chunks = ArticleChunk.objects.filter(merchant=merchant, pk__in=ids).select_related("article")
    by_id = {chunk.pk: chunk.article for chunk in chunks}
    seen: set[int] = set()
    cited = []
    for chunk_id in ids:
        article = by_id.get(chunk_id)
        if article is not None and article.pk not in seen:
            seen.add(article.pk)
            cited.append({"title": article.title, "url": article.url})
    return cited


@dataclass
class Outcomes:
    days: int
    since: date
    conversations: int = 0
    resolved_by_bot: int = 0
    handed_over: int = 0
    pending: int = 0  # answered by the bot, but still inside the resolution window
    helpful: int = 0
    unhelpful: int = 0
    tokens_resolved: int = 0
    tokens_per_resolved: int | None = None
    daily: list[dict] = field(default_factory=list)


def outcomes_of(*, merchant: Merchant, days: int = OUTCOME_DAYS, now: datetime | None = None) -> Outcomes:
    """The store's support outcomes for conversations started in the last `days` days (all channels)."""
    now = now or timezone.now()
    since = (now - timedelta(days=days - 1)).date()
    conversations = Conversation.objects.filter(merchant=merchant, created_at__date__gte=since)
    result = Outcomes(days=days, since=since)
    rows = conversations.annotate(
        replies=Count("messages", filter=Q(messages__role=Message.Role.ASSISTANT)),
    ).values("pk", "created_at", "handed_over_at", "status", "replies")
    last_customer = dict(
        Message.objects.filter(conversation__in=conversations, role=Message.Role.CUSTOMER)
        .values("conversation_id")
        .annotate(last=Max("created_at"))
        .values_list("conversation_id", "last")
    )
    last_reply = dict(
        Message.objects.filter(conversation__in=conversations, role=Message.Role.ASSISTANT)
        .values("conversation_id")
        .annotate(last=Max("created_at"))
        .values_list("conversation_id", "last")
    )
    per_day: dict[date, dict] = {
        since + timedelta(days=i): {"conversations": 0, "resolved": 0, "handed_over": 0} for i in range(days)
    }
    resolved_ids = []
    for row in rows:
        result.conversations += 1
        day = per_day.get(row["created_at"].date())
        if day is not None:
            day["conversations"] += 1
        if row["handed_over_at"] is not None:
            result.handed_over += 1
            if day is not None:
                day["handed_over"] += 1
            continue
        reply_at = last_reply.get(row["pk"])
        if not row["replies"] or reply_at is None:
            continue
        customer_at = last_customer.get(row["pk"])
        if customer_at is not None and customer_at > reply_at:
            continue  # the customer wrote after the last reply: not resolved (yet)
        if now - reply_at < RESOLUTION_WINDOW:
            result.pending += 1
            continue
        result.resolved_by_bot += 1
        resolved_ids.append(row["pk"])
        if day is not None:
            day["resolved"] += 1
    ratings = Rating.objects.filter(message__conversation__in=conversations).values("helpful")
    result.helpful = ratings.filter(helpful=True).count()
    result.unhelpful = ratings.filter(helpful=False).count()
    if resolved_ids:
        result.tokens_resolved = int(
            Run.objects.filter(
                merchant=merchant,
                status=Run.Status.SUCCEEDED,
                messages__role=Message.Role.CUSTOMER,
                messages__conversation_id__in=resolved_ids,
            ).aggregate(t=Coalesce(Sum("cost"), 0))["t"]
        )
        result.tokens_per_resolved = round(result.tokens_resolved / len(resolved_ids))
    result.daily = [{"date": day, **counts} for day, counts in per_day.items()]
    return result
