"""Who moved tokens: written on every transfer so the ledger answers "who did this" without a log."""

from dataclasses import dataclass

from wallets.models import Transfer


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str
    user_id: int | None = None
    label: str = ""

    @classmethod
    def system(cls, label: str) -> "Actor":
        return cls(Transfer.ActorKind.SYSTEM, None, label)

    @classmethod
    def user(cls, user) -> "Actor":
        return cls(Transfer.ActorKind.USER, user.pk, user.email)

    @classmethod
    def staff(cls, user) -> "Actor":
        return cls(Transfer.ActorKind.STAFF, user.pk, user.email)

    @classmethod
    def api_key(cls, *, prefix: str, user_id: int | None = None) -> "Actor":
        return cls(Transfer.ActorKind.API_KEY, user_id, f"api key {prefix}")
