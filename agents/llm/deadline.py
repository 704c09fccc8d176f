"""A total deadline for one model call, and a way to abort it from another thread.

httpx's timeouts are per read: a provider that sends one byte every 30 s never trips a 60 s read timeout
and can hold a call (and the run's hold) for as long as it likes. Here every call runs under a
`CallBudget`; the HTTP transport registers the call's socket with it, and one watchdog thread per process
shuts the socket down when the budget's deadline passes, so the blocked read returns at once and the call
ends as a timeout. `CallBudget.abort()` does the same on demand: a draining worker hands its runs back
and stops their calls without waiting for the provider.

The transport reads the budget from a thread-local set by `call_budget()`: the openai SDK is synchronous,
so the request is sent on the thread that set it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

_local = threading.local()


class CallBudget:
    """The time a call may take, and the sockets it is using right now."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.aborted = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    @property
    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.aborted or self.remaining <= 0

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            if self.aborted:
                _shut(sock)
            else:
                self._sockets.add(sock)

    def detach(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def abort(self) -> None:
        """Stop the call now: its blocked read fails at once, and no further request may start."""
        with self._lock:
            self.aborted = True
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # shutdown(), not close(): the reading thread owns the file descriptor; shutting the connection down
    # makes its recv() return, and httpcore then drops the connection instead of pooling it.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One thread per process that expires budgets at their deadlines (a heap, not a timer per call)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, CallBudget]] = []
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, budget: CallBudget) -> None:
        with self._cond:
            heapq.heappush(self._heap, (budget.deadline, next(self._ids), budget))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="llm-call-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is budget:
                # Only a deadline sooner than the one the thread sleeps until needs it awake. Calls share
                # one length, so that is rare; waking it for every call cost a thread switch per run.
                self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _, budget = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(timeout=wait)
                    continue
                heapq.heappop(self._heap)
            budget._expire()


_watchdog = _Watchdog()


@contextlib.contextmanager
def call_budget(seconds: float, budget: CallBudget | None = None) -> Iterator[CallBudget]:
    """Run the enclosed call under a total deadline of `seconds` (or under the given `budget`)."""
    budget = budget or CallBudget(seconds)
    _watchdog.watch(budget)
    previous = getattr(_local, "budget", None)
    _local.budget = budget
    try:
        yield budget
    finally:
        _local.budget = previous


def current_budget() -> CallBudget | None:
    return getattr(_local, "budget", None)


class _WatchedStream(httpx.SyncByteStream):
    def __init__(self, inner: Any, budget: CallBudget, sock: socket.socket | None) -> None:
        self._inner = inner
        self._budget = budget
        self._sock = sock

    def __iter__(self) -> Iterator[bytes]:
        yield from self._inner

    def close(self) -> None:
        # Detach before the connection goes back to the pool: a later deadline must never shut down a
        # socket that another call is using by then.
        if self._sock is not None:
            self._budget.detach(self._sock)
        self._inner.close()


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport, with every read bounded by the call's budget and its socket watched."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        budget = current_budget()
        if budget is None:
            return super().handle_request(request)
        remaining = budget.remaining
        if budget.aborted or remaining <= 0:
            raise httpx.ReadTimeout("The call's deadline has passed.", request=request)
        # Connecting and each read also stop at the deadline (headers that trickle in included).
        timeout = dict(request.extensions.get("timeout") or {})
        for phase in ("connect", "read", "write", "pool"):
            current = timeout.get(phase)
            timeout[phase] = remaining if current is None else min(current, remaining)
        request.extensions["timeout"] = timeout
        response = super().handle_request(request)
        network = response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if sock is not None:
            budget.attach(sock)
        response.stream = _WatchedStream(response.stream, budget, sock)
        return response
