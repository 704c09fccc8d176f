"""The language switch: in the navigation and on the log-in page, for signed-in and anonymous visitors."""

from django.http import HttpResponseRedirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from merchants.i18n import language_codes
from merchants.middleware import language_cookie_set


@require_POST
def language_set(request):
    """Remember the chosen language: on the user (every device, after log-out too) and in the cookie."""
    language = request.POST.get("language", "")
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    response = HttpResponseRedirect(target)
    if language not in language_codes():
        return response
    if request.user.is_authenticated and request.user.language != language:
        request.user.language = language
        request.user.save(update_fields=["language"])
    translation.activate(language)
    language_cookie_set(response, language)
    return response
