"""The Redis broker transport (tokenhub/broker.py): kombu's, with one Redis client per channel."""

import threading
import uuid

import pytest
import redis
from celery import current_app
from django.conf import settings
from kombu import Connection

from tokenhub import broker, runtime


@pytest.mark.redis
def test_a_redis_broker_runs_on_the_transport_that_keeps_its_client():
    assert settings.CELERY_BROKER_TRANSPORT == "tokenhub.broker:Transport"
    with current_app.connection_for_write() as connection:
        assert isinstance(connection.transport, broker.Transport)


@pytest.mark.redis
def test_every_message_published_from_many_threads_through_one_channel_arrives_on_one_client():
    queue = f"test-broker-{uuid.uuid4().hex}"
    built = []

    class CountingChannel(broker.Channel):
        def _create_client(self, asynchronous=False):
            built.append(asynchronous)
            return super()._create_client(asynchronous=asynchronous)

    class CountingTransport(broker.Transport):
        Channel = CountingChannel

    with Connection(settings.CELERY_BROKER_URL, transport=CountingTransport) as connection:
        producer = connection.Producer(serializer="json")
        lock = threading.Lock()

        def publish(n: int) -> None:
            for i in range(50):
                with lock:  # a kombu producer is not thread-safe; the Redis client under it is shared
                    producer.publish({"n": n, "i": i}, routing_key=queue, declare=[])

        threads = [threading.Thread(target=publish, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        channel = producer.channel

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        assert client.llen(queue) == 200
    finally:
        client.delete(queue)
    assert built.count(False) == 1  # one synchronous client for 200 publishes, not one each
    assert "_sync_client" in channel.__dict__


@pytest.mark.parametrize(
    ("url", "transport"),
    [
        ("redis://127.0.0.1:6379/0", "tokenhub.broker:Transport"),
        ("rediss://cache.example:6380/0", None),
        ("amqp://guest@127.0.0.1//", None),
        ("filesystem://", None),
    ],
)
def test_only_a_plain_redis_broker_takes_our_transport(url, transport):
    assert runtime.broker_transport(url) == transport
