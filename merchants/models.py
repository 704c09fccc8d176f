from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower


class UserManager(BaseUserManager):
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

    username = None
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email


class Merchant(models.Model):
    """The tenant. Every tenant-owned row hangs off one of these."""

    class Language(models.TextChoices):
        EN = "en", "English"
        ZH = "zh", "Chinese"
        ES = "es", "Spanish"
        FR = "fr", "French"
        DE = "de", "German"
        JA = "ja", "Japanese"
        PT = "pt", "Portuguese"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    brand_voice = models.TextField(
        blank=True, help_text="How the store speaks: tone, words to use and avoid."
    )
    default_language = models.CharField(max_length=8, choices=Language.choices, default=Language.EN)
    knowledge_base = models.TextField(
        blank=True, help_text="Facts the customer-service bot may use: shipping, returns, sizing, contact."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MANAGER = "manager", "Manager"
        STAFF = "staff", "Staff"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
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

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=64)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    monthly_token_budget = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Most tokens runs created with this key may use per calendar month (UTC).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["merchant", "-created_at"], name="apikey_merchant_newest")]

    def __str__(self) -> str:
        return f"{self.name} (thk_{self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
