class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""

    code = "ledger_error"


class InsufficientTokens(LedgerError):
    code = "insufficient_tokens"

    def __init__(self, *, required: int, available: int):
        self.required = required
        self.available = available
        super().__init__(f"This needs {required:,} tokens; {available:,} are available.")


class HoldAlreadyResolved(LedgerError):
    code = "hold_already_resolved"

    def __init__(self, *, hold_id: int, resolution_kind: str | None):
        self.hold_id = hold_id
        self.resolution_kind = resolution_kind
        super().__init__(f"Hold {hold_id} is already resolved ({resolution_kind}).")


class HoldExpired(LedgerError):
    code = "hold_expired"


class HoldExceeded(LedgerError):
    code = "hold_exceeded"


class IdempotencyKeyReused(LedgerError):
    """The same cause key was used for a different movement: a programming error, never a replay."""

    code = "idempotency_key_reused"


class InvalidAmount(LedgerError):
    code = "invalid_amount"
