"""The bare engine Tokenhub is built on: a Celery threads worker whose task makes one openai SDK call and
one INSERT. What it costs per task is the floor for a platform on this stack (bench/versus.py).

    cd bench/baseline && celery -A engine worker -P threads -c 100

Environment: ENGINE_BROKER_URL (Redis), ENGINE_DATABASE_URL (PostgreSQL, table `engine_result`),
ENGINE_MODEL_URL (the OpenAI-compatible endpoint), ENGINE_MESSAGES (JSON chat messages), ENGINE_MODEL,
ENGINE_MAX_TOKENS. No Django: only what the platform's own worker also needs (broker, model, database).
"""

from __future__ import annotations

import json
import os
import time

import openai
from celery import Celery
from psycopg_pool import ConnectionPool

app = Celery("engine", broker=os.environ["ENGINE_BROKER_URL"])
# The settings a run engine needs too: ack after the work, one message at a time per free thread.
app.conf.update(
    task_acks_late=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_default_queue="engine",
)

MESSAGES = json.loads(os.environ.get("ENGINE_MESSAGES", '[{"role": "user", "content": "hello"}]'))
MODEL = os.environ.get("ENGINE_MODEL", "qwen-plus")
MAX_TOKENS = int(os.environ.get("ENGINE_MAX_TOKENS", "1500"))
client = openai.OpenAI(base_url=os.environ["ENGINE_MODEL_URL"], api_key="bench", max_retries=0, timeout=60)
pool = ConnectionPool(os.environ["ENGINE_DATABASE_URL"], min_size=1, max_size=12, kwargs={"autocommit": True})


@app.task(name="engine.work")
def work(batch: str, i: int, submitted: float) -> None:
    answer = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS)
    tokens = answer.usage.total_tokens if answer.usage else 0
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO engine_result (batch, i, submitted, finished, tokens) VALUES (%s, %s, %s, %s, %s)",
            (batch, i, submitted, time.time(), tokens),
        )
