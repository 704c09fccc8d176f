from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect


def merchant_required(view=None, *, manage: bool = False):
    """A signed-in member of a store; with manage=True, an owner or manager."""

    def decorate(func):
        @login_required
        @wraps(func)
        def wrapper(request, *args, **kwargs):
            if not request.membership:
                return redirect("signup")
            if manage and not request.membership.can_manage:
                raise PermissionDenied("Only owners and managers may do this.")
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate
