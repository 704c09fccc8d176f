"""The API's rate limit: a key's own requests per minute, else the platform default, counted exactly under
concurrency (merchants.rate_limits). A call with a known key was counted while it was authenticated, in
the same Redis round trip (merchants.api_keys); any other call is counted here."""

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from merchants import rate_limits
from merchants.models import ApiKey


class ApiKeyRateThrottle(BaseThrottle):
    """A key's own rate_limit_per_minute, else settings.API_RATE_LIMIT_PER_MINUTE, per key (or session user)."""

    def allow_request(self, request, view) -> bool:
        limit = settings.API_RATE_LIMIT_PER_MINUTE
        if isinstance(request.auth, ApiKey):
            if request.auth.rate_limit_per_minute is not None:
                limit = request.auth.rate_limit_per_minute
            if (counted := getattr(request.auth, "counted_hit", None)) is not None:
                self.decision = rate_limits.decide(counted, limit=limit)
                return self.decision.allowed
            ident = rate_limits.key_ident(request.auth.pk)
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            return True  # unauthenticated requests are refused before anything is counted
        self.decision = rate_limits.hit(ident, limit=limit)
        return self.decision.allowed

    def wait(self) -> float:
        return self.decision.retry_after
