from rest_framework import permissions

from merchants.models import ApiKey


class IsMerchantMember(permissions.BasePermission):
    """An API key (it belongs to one merchant) or a signed-in member of a store."""

    message = "Your account is not a member of any store."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            return True
        user = request.user
        if user is None or not user.is_authenticated:
            return False  # DRF turns this into 401 unauthenticated: no credentials were accepted
        return bool(request._request.membership)
