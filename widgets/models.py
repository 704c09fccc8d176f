"""The store's chat widget, the visitors who talk through it, their ratings, and the knowledge articles the
bot answers from (chunked for retrieval)."""

from __future__ import annotations

from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from agents.models import Conversation, Message
from merchants.models import Merchant

# Shipped defaults a store can change per widget (docs/widget.md).
DEFAULT_DAILY_TOKEN_BUDGET = 200_000
DEFAULT_CONVERSATION_TOKEN_CAP = 30_000


class Widget(models.Model):
    """One embeddable chat widget. `public_key` is public (it sits in the store's page); revoking it stops
    every page that embeds it."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="widgets")
    name = models.CharField(_("name"), max_length=80, default="Chat")
    public_key = models.CharField(max_length=40, unique=True)
    allowed_origins = models.JSONField(
        default=list, help_text="Origins (scheme://host[:port]) whose pages may use this widget."
    )
    color = models.CharField(_("colour"), max_length=7, default="#2563eb")
    language = models.CharField(_("language"), max_length=8, choices=Merchant.Language.choices, default="en")
    greeting = models.CharField(_("greeting"), max_length=200, blank=True)
    daily_token_budget = models.PositiveIntegerField(
        _("daily token budget"),
        default=DEFAULT_DAILY_TOKEN_BUDGET,
        help_text=_("Tokens the widget's conversations may cost per day (UTC); then it offers a person."),
    )
    conversation_token_cap = models.PositiveIntegerField(
        _("tokens per conversation"),
        default=DEFAULT_CONVERSATION_TOKEN_CAP,
        help_text=_("Tokens one visitor's conversation may cost; then it offers a person."),
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(public_key__startswith="pk_"), name="widget_public_key_prefix"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_key})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class VisitorConversation(models.Model):
    """A conversation started through a widget; the visitor proves it is theirs with a random token, of
    which only the SHA-256 is kept."""

    conversation = models.OneToOneField(
        Conversation, on_delete=models.CASCADE, primary_key=True, related_name="visitor"
    )
    # No index of its own: visitor_widget_time starts with this column.
    widget = models.ForeignKey(Widget, on_delete=models.PROTECT, related_name="conversations", db_index=False)
    token_hash = models.CharField(max_length=64, unique=True)
    origin = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["widget", "created_at"], name="visitor_widget_time")]

    def __str__(self) -> str:
        return f"visitor conversation {self.conversation_id}"


class Rating(models.Model):
    """A visitor's thumbs up or down on one of the bot's replies (one per reply; the latest wins)."""

    message = models.OneToOneField(Message, on_delete=models.CASCADE, primary_key=True, related_name="rating")
    helpful = models.BooleanField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{'helpful' if self.helpful else 'unhelpful'}: message {self.message_id}"


class Article(models.Model):
    """A piece of the store's knowledge: what the bot may answer from and cites."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="articles")
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), max_length=100_000)
    url = models.URLField(_("URL"), max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["title", "id"]

    def __str__(self) -> str:
        return self.title


class ArticleChunk(models.Model):
    """A few paragraphs of an article, the unit retrieval ranks; `search` is its PostgreSQL tsvector
    ('simple' configuration: no stemming, so it suits any language; empty on SQLite)."""

    # No index of its own: article_chunk_position_unique starts with this column.
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="chunks", db_index=False)
    # No index of its own: article_chunk_merchant starts with this column.
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+", db_index=False)
    position = models.PositiveIntegerField()
    text = models.TextField()
    search = SearchVectorField(null=True)

    class Meta:
        ordering = ["article", "position"]
        constraints = [
            models.UniqueConstraint(fields=["article", "position"], name="article_chunk_position_unique"),
        ]
        indexes = [models.Index(fields=["merchant"], name="article_chunk_merchant")]

    def __str__(self) -> str:
        return f"{self.article_id}#{self.position}"

    @property
    def label(self) -> str:
        """What the bot cites in a reply's `sources`."""
        return f"art-{self.pk}"
