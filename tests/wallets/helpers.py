"""Helpers for ledger tests: fresh cause keys, and threads that race on their own connections."""

import itertools

from merchants.actors import Actor
from tests.concurrency import run_in_threads  # noqa: F401 (re-exported for the ledger tests)
from wallets.models import Account

SYSTEM = Actor.system("tests")
_keys = itertools.count()


def key(prefix: str = "test") -> str:
    """A fresh cause key: every test movement is its own cause unless a test replays one on purpose."""
    return f"{prefix}:{next(_keys)}"


def reload(wallet: Account) -> Account:
    wallet.refresh_from_db()
    return wallet
