"""Racing real threads against the real database: the one helper every race test uses."""

import threading
from collections.abc import Callable

from django.db import connection


def run_in_threads(
    count: int, target: Callable[[int], object], connections: int | None = None
) -> list[object]:
    """Start `count` threads at one barrier; return each one's result or the exception it raised.

    Each thread closes its own database connection when done. With `connections`, at most that many hold
    one at once, as a web tier's bounded pool would: PostgreSQL's max_connections (100) is shared with
    every other test run on the machine.
    """
    barrier = threading.Barrier(count)
    slots = threading.BoundedSemaphore(connections or count)
    results: list[object] = [None] * count

    def work(index: int) -> None:
        try:
            barrier.wait()
            with slots:
                try:
                    results[index] = target(index)
                finally:
                    connection.close()
        except Exception as exc:  # the test asserts on what each thread got
            results[index] = exc

    threads = [threading.Thread(target=work, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results
