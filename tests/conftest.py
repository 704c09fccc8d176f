"""Suite-wide fixtures and the rule for tests that need a server.

Tests marked `postgres` or `redis` skip with a clear reason when that server is not configured; under CI
(CI=true) they fail instead, so CI never passes by skipping.
"""

import os

import pytest
from django.conf import settings

from tests.factories import MembershipFactory, MerchantFactory, UserFactory

# Fixtures every test module may use: the Qwen simulator, the broker and real workers, funded merchants,
# a real local SMTP server (tests.mailbox).
pytest_plugins = [
    "tests.plugins.simulator",
    "tests.plugins.workers",
    "tests.mailbox",
    "tests.plugins.translations",
]

_SKIPPED: dict[str, int] = {}


def _missing_services() -> dict[str, str]:
    missing = {}
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        missing["postgres"] = "needs PostgreSQL: set DATABASE_URL or start it on 127.0.0.1:5432"
    if not settings.REDIS_URL:
        missing["redis"] = "needs Redis: set REDIS_URL or start it on 127.0.0.1:6379"
    return missing


def pytest_collection_modifyitems(config, items):
    missing = _missing_services()
    if missing and os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI must run every test, but: {'; '.join(missing.values())}")
    for item in items:
        for marker, reason in missing.items():
            if item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))
                _SKIPPED[reason] = _SKIPPED.get(reason, 0) + 1
                break


def pytest_terminal_summary(terminalreporter):
    for reason, count in _SKIPPED.items():
        terminalreporter.write_line(f"SKIPPED {count} tests: {reason}", yellow=True)


@pytest.fixture(autouse=True)
def _each_test_starts_in_english():
    """A request in Chinese leaves Chinese active in the thread (LocaleMiddleware activates, never resets):
    a later test that calls a service directly must not read its messages in Chinese."""
    from django.utils import translation

    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Process-memory caches (API keys, prices, wallet ids) must not carry rows a rolled-back test made."""
    from agents.runs.usage import provider_prices_forget
    from merchants.api_keys import key_cache
    from tokenhub.redis import redis_failures_forget
    from wallets.caches import caches_clear

    key_cache.clear()
    caches_clear()
    provider_prices_forget()
    redis_failures_forget()
    yield
    key_cache.clear()
    caches_clear()
    provider_prices_forget()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def merchant(db):
    return MerchantFactory()


@pytest.fixture
def owner(merchant):
    return MembershipFactory(merchant=merchant, role="owner").user
