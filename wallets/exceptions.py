"""The ledger's errors, under the project's one error base (`tokenhub.errors.ApplicationError`)."""

from django.utils.translation import gettext

from tokenhub.errors import ApplicationError


class LedgerError(ApplicationError):
    """Base of every error the ledger raises on purpose. Most are states a caller handles, never shown."""

    code = "ledger_error"
    status = 409


class InsufficientTokens(LedgerError):
    code = "insufficient_tokens"
    status = 402

    def __init__(self, *, required: int, available: int):
        self.required = required
        self.available = available
        super().__init__(
            gettext(
                "This needs up to %(required)s tokens and your wallet has %(available)s available. "
                "Top up your wallet, then try again."
            )
            % {"required": f"{required:,}", "available": f"{available:,}"},
            details={"required": required, "available": available},
        )


class HoldAlreadyResolved(LedgerError):
    code = "hold_already_resolved"

    def __init__(self, *, hold_id: int, resolution_kind: str | None):
        self.hold_id = hold_id
        self.resolution_kind = resolution_kind
        super().__init__(
            f"Hold {hold_id} is already resolved ({resolution_kind}).", details={"hold": hold_id}
        )


class HoldExpired(LedgerError):
    code = "hold_expired"


class HoldExceeded(LedgerError):
    code = "hold_exceeded"


class IdempotencyKeyReused(LedgerError):
    """The same cause key was used for a different movement: a programming error, never a replay."""

    code = "idempotency_key_reused"


class InvalidAmount(LedgerError):
    code = "invalid_input"
    status = 400


class SponsorshipError(LedgerError):
    """A sponsorship that cannot be made or changed as asked; the message says why, for the store."""

    code = "invalid_input"
    status = 400
