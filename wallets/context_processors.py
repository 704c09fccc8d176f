"""The balance banner on every dashboard page (templates/wallets/_balance_banner.html)."""

from django.utils.functional import SimpleLazyObject

from wallets import alerts


def balance_alert(request) -> dict:
    membership = getattr(request, "membership", None)
    if not membership:
        return {"balance_alert": None}
    # Lazy: HTMX fragments (a run's status polled every second) never render the banner, so never pay
    # for its queries.
    merchant = membership.merchant
    return {"balance_alert": SimpleLazyObject(lambda: alerts.banner_for(merchant=merchant))}
