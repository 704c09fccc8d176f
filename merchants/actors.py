"""Who did something: written on every ledger transfer, so the ledger answers "who did this" without a log.

It lives at the bottom (merchants) because every layer above names its actor: an API call acts as its key,
a dashboard request as its user, support staff as staff, workers and sweepers as the system.
"""

from dataclasses import dataclass

from django.db import models

STAFF_LABEL = "Tokenhub support"


class ActorKind(models.TextChoices):
    SYSTEM = "system", "System"
    USER = "user", "Merchant user"
    STAFF = "staff", "Support staff"
    API_KEY = "api_key", "API key"


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str
    user_id: int | None = None
    label: str = ""

    @classmethod
    def system(cls, label: str) -> "Actor":
        return cls(ActorKind.SYSTEM, None, label)

    @classmethod
    def user(cls, user) -> "Actor":
        return cls(ActorKind.USER, user.pk, user.email)

    @classmethod
    def staff(cls, user) -> "Actor":
        # Merchants read actor labels on their statements: staff are "Tokenhub support" there, never an
        # email. Which staff member it was stays on the row (user_id) for admin and audits.
        return cls(ActorKind.STAFF, user.pk, STAFF_LABEL)

    @classmethod
    def api_key(cls, *, prefix: str, user_id: int | None = None) -> "Actor":
        return cls(ActorKind.API_KEY, user_id, f"api key {prefix}")
