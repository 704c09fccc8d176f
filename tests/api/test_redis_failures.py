"""Redis failing under the API answers no 500: its connections killed mid-request, or Redis gone."""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis as redis_py
from django.conf import settings
from django.test import override_settings

from merchants.api_keys import api_key_create
from tests.api.conftest import LISTING, client_with, fund
from tests.factories import MerchantFactory
from wallets.reconcile import reconcile_ledger

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


class ConnectionKiller(threading.Thread):
    """Kills every connection to the test's Redis database but its own, again and again (CLIENT KILL)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.client = redis_py.Redis.from_url(settings.REDIS_URL)
        self.own_id = self.client.client_id()
        self.db = self.client.connection_pool.connection_kwargs.get("db", 0)
        self.stopped = threading.Event()
        self.killed = 0

    def run(self) -> None:
        while not self.stopped.wait(0.005):
            for client in self.client.client_list():
                # Only this test's database: other test runs share the server.
                if int(client["db"]) == self.db and int(client["id"]) != self.own_id:
                    self.killed += self.client.client_kill_filter(_id=client["id"])

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


@pytest.mark.django_db(transaction=True)
def test_redis_connections_killed_mid_request_answer_no_500(live_server):
    merchant = MerchantFactory()
    fund(merchant)
    headers = {"Authorization": f"Bearer {api_key_create(merchant=merchant, name='load').raw_key}"}
    killer = ConnectionKiller()

    def call(i: int) -> int:
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as http:
            if i % 4 == 0:
                return http.post("/api/v1/runs", json=LISTING).status_code
            return http.get("/api/v1/wallet").status_code

    killer.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(call, range(200)))
    finally:
        killer.stop()

    assert killer.killed > 0  # the connections really were cut while requests ran
    assert [s for s in statuses if s >= 500] == []
    assert set(statuses) <= {200, 201, 202}
    assert reconcile_ledger() == []


@pytest.mark.django_db
def test_with_redis_gone_the_api_still_authenticates_limits_and_creates_runs(funded_merchant, key_for):
    api = client_with(key_for(funded_merchant))
    with override_settings(REDIS_URL="redis://127.0.0.1:9/0", API_RATE_LIMIT_PER_MINUTE=4):  # nothing on :9
        statuses = [api.get("/api/v1/wallet").status_code for _ in range(3)]
        created = api.post("/api/v1/runs", LISTING, format="json")
        over = api.get("/api/v1/wallet")
    assert statuses == [200, 200, 200]
    assert created.status_code in (200, 201, 202)
    assert over.status_code == 429  # still limited, counted in process while Redis is away
    assert reconcile_ledger() == []


@pytest.mark.django_db
def test_a_silent_redis_costs_its_timeout_once_not_on_every_request(funded_merchant, key_for):
    api = client_with(key_for(funded_merchant))
    # A server that accepts connections and never answers: every command waits for the socket timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(100)
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0"):
            started = time.monotonic()
            first = api.get("/api/v1/wallet")
            first_took = time.monotonic() - started
            started = time.monotonic()
            rest = [api.get("/api/v1/wallet").status_code for _ in range(10)]
            rest_took = time.monotonic() - started
    assert first.status_code == 200 and rest == [200] * 10
    assert first_took >= 1.0  # the first request did wait for Redis (socket timeout 1 s)...
    assert rest_took < first_took, (first_took, rest_took)  # ...the next ten did not, each, wait again
