from wallets.exceptions import LedgerError


class RechargeNotReady(LedgerError):
    """Auto-recharge cannot be switched on yet (no saved card, or no amount chosen)."""

    code = "recharge_not_ready"
    status = 409
