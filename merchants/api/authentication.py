"""Who is calling: a merchant's API key (`Authorization: Bearer thk_...`).

The dashboard's own calls use DRF's SessionAuthentication (CSRF enforced), listed second in settings.
"""

from dataclasses import dataclass

from rest_framework import authentication, exceptions

from merchants.api_keys import api_key_authenticate
from merchants.models import ApiKey


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """`request.user` for a call made with an API key: the key acts for its merchant, not for a person."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False

    @property
    def pk(self) -> None:
        return None

    def __str__(self) -> str:
        return f"api key thk_{self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() != self.keyword.lower():
            return None  # not ours: the session (or nothing) decides
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the key as 'Authorization: Bearer <api key>'.")
        api_key = api_key_authenticate(raw_key=header[1])
        if api_key is None:
            raise exceptions.AuthenticationFailed("This API key is not valid or has been revoked.")
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request) -> str:
        # Being first in the list makes DRF answer 401 (not 403) when credentials are missing.
        return f'{self.keyword} realm="api"'
