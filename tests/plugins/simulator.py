"""Fixtures for code that calls the model: a real Qwen simulator over HTTP, and settings pointing at it.

    def test_something(llm_endpoint):            # settings.QWEN_BASE_URL -> the simulator
        llm_endpoint.fault("429", match="Aurora Lamp")   # the next call whose prompt has "Aurora Lamp" gets 429
        llm_endpoint.fault(["500", "ok"])                # the next two calls: 500, then a normal answer
        llm_endpoint.stats()["max_in_flight"]

The server (uvicorn, in a background thread, on a free port) starts once per test session; each test
gets it reset: no queued faults, zeroed counters, no latency.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from agents.llm import ratelimit
from devtools.qwen_simulator.server import KEEP_ALIVE_SECONDS, SimulatorState, create_app


@dataclass
class QwenSimulator:
    root_url: str  # http://127.0.0.1:<port>
    base_url: str  # root_url + "/v1": what QWEN_BASE_URL takes
    state: SimulatorState

    def fault(
        self, kind: str | Sequence[str], match: str | None = None, latency_ms: int | None = None
    ) -> None:
        """Queue faults ("429", "500", "timeout", "malformed", "moderation", "arrearage", "ok", ...) for the
        next requests whose prompt contains `match` (any request when None), consumed in order."""
        faults = [kind] if isinstance(kind, str) else list(kind)
        body: dict[str, Any] = {"faults": faults, "match": match, "latency_ms": latency_ms}
        httpx.post(f"{self.root_url}/_sim/faults", json=body, timeout=5).raise_for_status()

    def reset(self) -> None:
        httpx.post(f"{self.root_url}/_sim/reset", timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.root_url}/_sim/stats", timeout=5).json()

    def set_latency(self, milliseconds: int) -> None:
        """Delay every answer (an int assignment, read by the server's loop on each request)."""
        self.state.latency_ms = milliseconds


@pytest.fixture(autouse=True)
def _fresh_rate_limiters() -> Iterator[None]:
    """In-process limiter counters must not leak from one test into the next."""
    ratelimit.reset_limiters()
    yield
    ratelimit.reset_limiters()


@pytest.fixture(scope="session")
def _qwen_simulator_server() -> Iterator[QwenSimulator]:
    app = create_app(hang_seconds=30)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # port 0: the OS picks a free one, and we hold it from here on
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        backlog=2048,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="qwen-simulator", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("The Qwen simulator did not start.")
        time.sleep(0.01)
    root = f"http://127.0.0.1:{port}"
    yield QwenSimulator(root_url=root, base_url=f"{root}/v1", state=app.state.sim)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def qwen_simulator(_qwen_simulator_server: QwenSimulator) -> Iterator[QwenSimulator]:
    """The running simulator, reset for this test."""
    _qwen_simulator_server.set_latency(0)
    _qwen_simulator_server.reset()
    yield _qwen_simulator_server
    _qwen_simulator_server.set_latency(0)
    _qwen_simulator_server.reset()


@pytest.fixture
def llm_endpoint(qwen_simulator: QwenSimulator, settings: Any) -> QwenSimulator:
    """Settings pointing `agents.llm` at the simulator, with no rate limits and a short timeout."""
    settings.QWEN_BASE_URL = qwen_simulator.base_url
    settings.QWEN_API_KEY = ""
    settings.QWEN_TIMEOUT_SECONDS = 10.0
    settings.QWEN_RATE_LIMITS = {}
    return qwen_simulator
