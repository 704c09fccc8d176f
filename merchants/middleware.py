from django.utils.functional import SimpleLazyObject

from merchants.selectors import membership_for

SESSION_KEY = "merchant_id"


class CurrentMerchantMiddleware:
    """Puts the signed-in user's membership and merchant on the request, resolved only when used."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        def membership():
            user = getattr(request, "user", None)
            if user is None or not user.is_authenticated:
                return None
            return membership_for(user=user, merchant_id=request.session.get(SESSION_KEY))

        request.membership = SimpleLazyObject(membership)
        request.merchant = SimpleLazyObject(
            lambda: request.membership.merchant if request.membership else None
        )
        return self.get_response(request)
