"""Helpers for ledger tests: fresh cause keys, and threads that race on their own connections."""

import itertools
import threading
from collections.abc import Callable

from django.db import connection

from wallets.actors import Actor
from wallets.models import Account

SYSTEM = Actor.system("tests")
_keys = itertools.count()


def key(prefix: str = "test") -> str:
    """A fresh cause key: every test movement is its own cause unless a test replays one on purpose."""
    return f"{prefix}:{next(_keys)}"


def reload(wallet: Account) -> Account:
    wallet.refresh_from_db()
    return wallet


def run_in_threads(count: int, target: Callable[[int], object]) -> list[object]:
    """Start `count` threads at one barrier, each on its own connection; return each result or exception."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def work(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        except Exception as exc:  # the test asserts on what each thread got
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results
