from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def usd(value: Decimal | float | None, places: int = 2) -> str:
    """US dollars with the sign before the symbol: -$3.00, not $-3.00."""
    if value is None:
        return ""
    amount = Decimal(str(value))
    text = f"${abs(amount):,.{int(places)}f}"
    return f"-{text}" if amount < 0 else text
