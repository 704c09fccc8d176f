from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.utils.translation import gettext


def merchant_required(view=None, *, manage: bool = False):
    """A signed-in member of a store; with manage=True, an owner or manager."""

    def decorate(func):
        @login_required
        @wraps(func)
        def wrapper(request, *args, **kwargs):
            if not request.membership:
                return redirect("signup")
            if manage and not request.membership.can_manage:
                raise PermissionDenied(
                    gettext("Only an owner or a manager of this store can open this page.")
                )
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate
