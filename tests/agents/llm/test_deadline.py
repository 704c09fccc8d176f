"""The call deadline's watchdog: one thread per process that shuts a call's socket at its deadline."""

import socket
import threading
import time

import pytest

from agents.llm.deadline import CallBudget, _Watchdog


class CountingCondition(threading.Condition):
    def __init__(self) -> None:
        super().__init__()
        self.notified = 0

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        super().notify(n)


@pytest.fixture
def watchdog() -> _Watchdog:
    watchdog = _Watchdog()
    watchdog._cond = CountingCondition()
    return watchdog


_peers: list[socket.socket] = []  # the provider's ends, kept open so only a shutdown ends a read


def _watched_socket(budget: CallBudget) -> socket.socket:
    ours, theirs = socket.socketpair()
    _peers.append(theirs)
    budget.attach(ours)
    ours.settimeout(5)
    return ours


def _seconds_until_shut(sock: socket.socket) -> float:
    started = time.monotonic()
    assert sock.recv(1) == b""  # shut down: the blocked read returns at once
    return time.monotonic() - started


def test_a_call_past_its_deadline_has_its_socket_shut(watchdog):
    budget = CallBudget(0.2)
    sock = _watched_socket(budget)
    watchdog.watch(budget)

    assert _seconds_until_shut(sock) < 2


def test_a_sooner_deadline_watched_after_a_later_one_is_still_kept(watchdog):
    later, sooner = CallBudget(60), CallBudget(0.2)
    later_socket, sooner_socket = _watched_socket(later), _watched_socket(sooner)
    watchdog.watch(later)
    watchdog.watch(sooner)

    assert _seconds_until_shut(sooner_socket) < 2
    later_socket.settimeout(0.1)
    with pytest.raises(TimeoutError):
        later_socket.recv(1)  # still open: its deadline is a minute away


def test_calls_with_later_deadlines_do_not_wake_the_watchdog(watchdog):
    watchdog.watch(CallBudget(60))  # starts the thread
    for _ in range(50):
        watchdog.watch(CallBudget(60))

    assert watchdog._cond.notified == 0


def test_an_aborted_call_has_its_socket_shut_at_once():
    budget = CallBudget(60)
    sock = _watched_socket(budget)

    budget.abort()

    assert _seconds_until_shut(sock) < 1
    assert budget.expired
