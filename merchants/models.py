from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from merchants.exceptions import NotAllowed
from merchants.i18n import DEFAULT_TIME_ZONE, validate_time_zone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractUser):
    """A person who signs in with an email address; merchants are reached through memberships."""

    # django-stubs types AbstractUser.username as a CharField; Django allows None to drop the field.
    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)
    # Set when the person proved they read mail at `email` (the sign-up link, an invitation, a password
    # reset, a confirmed change of email). The store works without it; a banner reminds them.
    email_verified_at = models.DateTimeField(null=True, blank=True)
    # The dashboard language this person chose; empty: their browser's Accept-Language decides.
    language = models.CharField(
        _("language"), max_length=16, blank=True, choices=settings.LANGUAGES, default=""
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    # django-stubs pins AbstractUser.objects to auth's username-based UserManager; this one logs in by email.
    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class Merchant(models.Model):
    """The tenant. Every tenant-owned row hangs off one of these."""

    class Language(models.TextChoices):
        EN = "en", _("English")
        ZH = "zh", _("Chinese")
        ES = "es", _("Spanish")
        FR = "fr", _("French")
        DE = "de", _("German")
        JA = "ja", _("Japanese")
        PT = "pt", _("Portuguese")

    name = models.CharField(_("store name"), max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    brand_voice = models.TextField(
        _("brand voice"), blank=True, help_text=_("How the store speaks: tone, words to use and avoid.")
    )
    default_language = models.CharField(
        _("default language"),
        max_length=8,
        choices=Language.choices,
        default=Language.EN,
        help_text=_("The language the tools write in when a request does not name one."),
    )
    knowledge_base = models.TextField(
        _("knowledge base"),
        blank=True,
        help_text=_("Facts the customer-service bot may use: shipping, returns, sizing, contact."),
    )
    # Where the store is: its pages, "this month", the usage chart's days and statement exports use it.
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default=DEFAULT_TIME_ZONE,
        validators=[validate_time_zone],
        help_text=_("Dates on your dashboard, monthly totals and statement exports use this time zone."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        MANAGER = "manager", _("Manager")
        STAFF = "staff", _("Staff")

    # No index of its own: membership_user_merchant_unique starts with this column.
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "merchant"], name="membership_user_merchant_unique")
        ]
        ordering = ["merchant_id", "created_at"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.merchant} ({self.role})"

    @property
    def can_manage(self) -> bool:
        """Owners and managers manage money, team, keys and the store profile; staff run tools."""
        return self.role in (self.Role.OWNER, self.Role.MANAGER)

    @property
    def is_owner(self) -> bool:
        return self.role == self.Role.OWNER


class ApiKey(models.Model):
    """A merchant's key for the REST API, in the djangorestframework-api-key scheme.

    The key is `thk_<prefix>.<secret>`: the prefix is stored in clear to find the row and to show which key is
    which; only a SHA-256 of the whole key is stored. A slow password hash is not needed because the secret is
    256 random bits (nothing to brute-force), and it would add its cost to every API request.
    """

    # No index of its own: apikey_merchant_newest starts with this column.
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="api_keys", db_index=False)
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=64)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    monthly_token_budget = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Most tokens runs created with this key may use per calendar month (UTC).",
    )
    # A bulk integration needs more than an interactive one; None follows API_RATE_LIMIT_PER_MINUTE.
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Most API requests per minute with this key; empty: the platform default.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Not a column: on the copy one request authenticated with, the rate-limit hit counted in the same
    # Redis round trip (merchants.api_keys), which the API's throttle decides on instead of counting again.
    counted_hit: Any = None
    # Not a column either: the reads other layers asked to send in that round trip (api_keys.read_along),
    # by name; a read missing here was not made.
    reads_along: dict[str, Any] = {}  # replaced on each copy, never mutated

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["merchant", "-created_at"], name="apikey_merchant_newest")]

    def __str__(self) -> str:
        return f"{self.name} (thk_{self.prefix}…)"

    def save(self, *args, **kwargs):
        # A revoked key stays revoked: whoever saves this row (admin, shell, a service) cannot clear or move
        # revoked_at. Revoke through merchants.api_keys.api_key_revoke.
        if self.pk is not None:
            stored = ApiKey.objects.filter(pk=self.pk).values_list("revoked_at", flat=True).first()
            if stored is not None and self.revoked_at != stored:
                raise NotAllowed("A revoked API key cannot be restored; create a new key instead.")
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Invitation(models.Model):
    """An emailed link that adds whoever follows it to a store, once, before it expires.

    Only a SHA-256 of the link's token is stored: the link in the email is the only copy of the token.
    """

    # No index of its own: invitation_merchant_newest starts with this column.
    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="invitations", db_index=False
    )
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.STAFF)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["merchant", "-created_at"], name="invitation_merchant_newest")]
        constraints = [
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True),
                name="invitation_accepted_or_revoked",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.merchant} ({self.role})"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class UserSession(models.Model):
    """A signed-in browser, listed on the account page so its owner can end it."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="browser_sessions")
    session_key = models.CharField(max_length=40, unique=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} since {self.created_at:%Y-%m-%d %H:%M}"


class OutboundEmail(models.Model):
    """Every email Tokenhub sends, from the request that caused it to the SMTP server's answer.

    The body is kept only until the mail server took it (or finally refused it): it may carry a sign-in
    link, which nobody reading this table should be able to follow.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    to = models.EmailField()
    template = models.CharField(max_length=80)
    subject = models.CharField(max_length=200)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="outboundemail_status_created")]

    def __str__(self) -> str:
        return f"{self.template} to {self.to} ({self.status})"
