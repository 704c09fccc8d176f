"""The operator's analytics page with a million runs: how long the fact-table rebuild and the page take.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tokenhub_bench_analytics \\
        .venv/bin/python bench/analytics.py [--runs 1000000] [--stores 2000] [--weeks 26] [--no-write]

Uses the database in DATABASE_URL (migrated, then emptied of runs and ledger rows: a scratch database;
`make bench` gives it tokenhub_bench_analytics). Seeds with generate_series, in SQL: `--stores` stores with a
wallet, a paid top-up and (every third store) an earlier promotional grant; `--runs` runs of the three tools
over `--weeks` weeks, stores drawn with a skew (a few heavy stores, a long tail), 92 % succeeded with a hold
and a charge, the rest failed with a hold and a release, each with provider usage and cost; a bot
conversation (2 or 3 messages, some handed over) for 30 % of the bot's runs. Then it times
`economics_refresh` (the rebuild from the ledger) and the staff page (`/staff/analytics/`, 12 weeks by week,
and 26 weeks by month) through Django's test client, median of 5. Writes the "Analytics" section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from results import write_section  # bench/ is the script's folder, so on sys.path

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokenhub.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("STATIC_MANIFEST", "false")  # no collectstatic here: the page's assets by name
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


SEED_SQL = """
CREATE TEMP TABLE bench_runs AS
SELECT g,
       gen_random_uuid() AS run_id,
       s.merchant_id, s.wallet_id,
       t.tool, t.model,
       CASE WHEN random() < 0.92 THEN 'succeeded' ELSE 'failed' END AS status,
       now() - (random() * %(weeks)s * 7) * interval '1 day' AS created_at,
       (200 + (random() * 600))::int AS in_tok,
       (100 + (random() * 900))::int AS out_tok
FROM generate_series(1, %(runs)s) g
CROSS JOIN LATERAL (
    SELECT (ARRAY['listing-writer', 'marketing-copy', 'customer-service'])[1 + (g %% 3)] AS tool,
           (ARRAY['qwen-plus', 'qwen-plus', 'qwen-flash'])[1 + (g %% 3)] AS model,
           -- A skew: a few heavy stores, a long tail (g keeps the subquery per row, not evaluated once).
           1 + (floor(%(stores)s * power(random(), 2))::int + 0 * g) %% %(stores)s AS n
) t
JOIN bench_stores s ON s.n = t.n;

ALTER TABLE bench_runs ADD COLUMN cost bigint, ADD COLUMN cost_usd numeric(14, 8);
UPDATE bench_runs SET
    cost = CASE WHEN model = 'qwen-flash' THEN ceil(in_tok * 0.125 + out_tok) ELSE in_tok + 3 * out_tok END,
    cost_usd = CASE WHEN model = 'qwen-flash' THEN (in_tok * 0.05 + out_tok * 0.40) / 1e6
                    ELSE (in_tok * 0.40 + out_tok * 1.20) / 1e6 END;

INSERT INTO wallets_transfer (id, kind, debit_account_id, credit_account_id, wallet_id, amount, idempotency_key,
                              timeout_at, actor_kind, actor_label, memo, reference, created_at)
SELECT %(base)s + 2 * g, 'hold', wallet_id, %(consumption)s, wallet_id, cost + 500, 'bench:hold:' || g,
       created_at + interval '1 hour', 'system', 'bench', '', run_id::text, created_at
FROM bench_runs;

INSERT INTO wallets_transfer (id, kind, debit_account_id, credit_account_id, wallet_id, amount, idempotency_key,
                              pending_id, actor_kind, actor_label, memo, reference, created_at)
SELECT %(base)s + 2 * g + 1, CASE WHEN status = 'succeeded' THEN 'settle' ELSE 'void' END, wallet_id,
       %(consumption)s, wallet_id, CASE WHEN status = 'succeeded' THEN cost ELSE cost + 500 END,
       'run:' || run_id || ':settle', %(base)s + 2 * g, 'system', 'bench', '', run_id::text,
       created_at + interval '3 seconds'
FROM bench_runs;

INSERT INTO agents_run (id, merchant_id, tool, status, input, output, model, held, input_tokens, output_tokens,
    cost, uncharged, error_code, error_message, request_hash, hold_id, settlement_id, attempts, retries,
    recoveries, requeues, waiting, retry_cause, enqueued_at, usage_note, created_at, started_at, finished_at,
    provider_input_tokens, provider_cached_tokens, provider_output_tokens, provider_cost_usd)
SELECT run_id, merchant_id, tool, status, '{}'::jsonb,
       CASE WHEN status = 'succeeded' THEN '{}'::jsonb END, model, cost + 500, in_tok, out_tok,
       CASE WHEN status = 'succeeded' THEN cost ELSE 0 END, 0,
       CASE WHEN status = 'succeeded' THEN '' ELSE 'invalid_output' END, '', '', %(base)s + 2 * g,
       %(base)s + 2 * g + 1, 1, 0, 0, 0, '', '', created_at, '', created_at, created_at,
       created_at + interval '3 seconds', in_tok, 0, out_tok, cost_usd
FROM bench_runs;

SELECT setval(pg_get_serial_sequence('wallets_transfer', 'id'), (SELECT max(id) FROM wallets_transfer));
"""


def seed(*, runs: int, stores: int, weeks: int) -> float:
    from django.db import connection, transaction

    from merchants.models import Merchant
    from wallets.models import Account, TopupPack, TopupPayment, Transfer
    from wallets.services import system_account_id

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE analytics_runeconomics, agents_message, agents_conversation, agents_run, "
            "wallets_topuppayment, wallets_adjustmentrequest, wallets_transfer CASCADE"
        )
    Account.objects.filter(kind__in=["wallet", "promo"]).delete()
    Merchant.objects.all().delete()
    with transaction.atomic():
        merchants = Merchant.objects.bulk_create(
            [Merchant(name=f"Bench store {n}", slug=f"bench-{n}") for n in range(stores)], batch_size=1000
        )
        wallets = Account.objects.bulk_create(
            [Account(kind="wallet", code=f"wallet:{m.pk}", merchant=m) for m in merchants], batch_size=1000
        )
        pack = TopupPack.objects.first()
        issuance, promotions = system_account_id("issuance"), system_account_id("promotions")
        grants = [
            Transfer(kind="promotion", debit_account_id=promotions, credit_account_id=w.pk, wallet_id=w.pk,
                     amount=2_000_000, idempotency_key=f"bench:grant:{w.pk}", actor_kind="system")
            for n, w in enumerate(wallets) if n % 3 == 0
        ]  # fmt: skip
        Transfer.objects.bulk_create(grants, batch_size=1000)
        topups = Transfer.objects.bulk_create(
            [
                Transfer(kind="topup", debit_account_id=issuance, credit_account_id=w.pk, wallet_id=w.pk,
                         amount=25_000_000, idempotency_key=f"stripe:cs_bench_{w.pk}", actor_kind="system")
                for w in wallets
            ],
            batch_size=1000,
        )  # fmt: skip
        assert pack is not None
        TopupPayment.objects.bulk_create(
            [
                TopupPayment(merchant_id=t.wallet_id and merchants[n].pk, pack=pack, tokens=t.amount,
                             amount_cents=10_000, currency="usd", checkout_session_id=f"cs_bench_{t.wallet_id}",
                             status="paid", transfer=t)
                for n, t in enumerate(topups)
            ],
            batch_size=1000,
        )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE bench_stores (n int, merchant_id bigint, wallet_id bigint)")
            cursor.executemany(
                "INSERT INTO bench_stores VALUES (%s, %s, %s)",
                [(n + 1, m.pk, w.pk) for n, (m, w) in enumerate(zip(merchants, wallets, strict=True))],
            )
            cursor.execute("SELECT COALESCE(max(id), 0) + 1 FROM wallets_transfer")
            base = cursor.fetchone()[0]
            params = {
                "runs": runs,
                "stores": stores,
                "weeks": weeks,
                "base": base,
                "consumption": system_account_id("consumption"),
            }
            for statement in SEED_SQL.split(";\n"):
                if statement.strip():
                    cursor.execute(statement, params)
            cursor.execute("DROP TABLE bench_runs; DROP TABLE bench_stores")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return time.monotonic() - started


CONVERSATIONS_SQL = """
CREATE TEMP TABLE bench_conversations AS
SELECT gen_random_uuid() AS id, merchant_id, created_at,
       CASE WHEN random() < 0.15 THEN created_at + interval '2 minutes' END AS handed_over_at,
       random() < 0.1 AS customer_last
FROM agents_run WHERE tool = 'customer-service' AND random() < %(share)s;

INSERT INTO agents_conversation (id, merchant_id, status, customer_ref, created_at, updated_at, handed_over_at)
SELECT id, merchant_id, CASE WHEN handed_over_at IS NULL THEN 'open' ELSE 'needs_human' END, '', created_at,
       created_at, handed_over_at
FROM bench_conversations;

INSERT INTO agents_message (conversation_id, role, content, flagged, sources, created_at)
SELECT id, 'customer', 'Where is my order?', false, '[]'::jsonb, created_at FROM bench_conversations
UNION ALL
SELECT id, 'assistant', 'It ships tomorrow.', false, '[]'::jsonb, created_at + interval '5 seconds'
FROM bench_conversations
UNION ALL
SELECT id, 'customer', 'Thanks, but that is late.', false, '[]'::jsonb, created_at + interval '1 minute'
FROM bench_conversations WHERE customer_last;

DROP TABLE bench_conversations;
ANALYZE agents_conversation;
ANALYZE agents_message
"""


def seed_conversations(share: float) -> int:
    """Conversations for a share of the bot's runs (2 or 3 messages each): the outcomes section's load."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for statement in CONVERSATIONS_SQL.split(";\n"):
            if statement.strip():
                cursor.execute(statement, {"share": share})
        cursor.execute("SELECT count(*) FROM agents_conversation")
        return cursor.fetchone()[0]


def timed_page(client, params: dict[str, str], repeat: int = 5) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        started = time.monotonic()
        response = client.get("/staff/analytics/", params, secure=True)
        times.append(time.monotonic() - started)
        assert response.status_code == 200, response.status_code
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=2_000)
    parser.add_argument("--weeks", type=int, default=26)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true", help="Keep the runs and fact table a previous run seeded and built."
    )
    args = parser.parse_args()
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from agents.models import Run
    from analytics.models import BotWeek, EconomicsRefresh, RunEconomics, StoreWeek
    from analytics.services import economics_refresh

    load_before = os.getloadavg()
    seconds_seed: float | None = None
    refresh = EconomicsRefresh.objects.first()
    if not (args.reuse and Run.objects.count() == args.runs):
        seconds_seed = seed(runs=args.runs, stores=args.stores, weeks=args.weeks)
        print(f"seeded {args.runs:,} runs for {args.stores:,} stores in {seconds_seed:.1f} s")
    from agents.models import Conversation

    if not Conversation.objects.exists():
        print(f"seeded {seed_conversations(0.3):,} conversations")
    conversations = Conversation.objects.count()
    rebuilt = StoreWeek.objects.exists() and BotWeek.objects.exists()
    if seconds_seed is not None or refresh is None or not rebuilt:
        refresh = economics_refresh()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE analytics_runeconomics, analytics_storeweek, analytics_botweek")
    print(f"economics_refresh: {refresh.runs:,} runs in {refresh.seconds:.1f} s")
    assert RunEconomics.objects.count() == args.runs
    user_model = get_user_model()
    staff, _ = user_model.objects.get_or_create(email="bench-staff@example.com", defaults={"is_staff": True})
    client = Client()
    client.force_login(staff)
    client.get("/staff/analytics/", secure=True)  # warm: connections, templates, plans
    weekly, weekly_all = timed_page(client, {"period": "week"})
    until = datetime.now(tz=UTC).date()
    since = until.replace(year=until.year - 1) if args.weeks > 52 else None
    monthly_params = {
        "period": "month",
        "since": (since or until.fromordinal(until.toordinal() - 7 * args.weeks)).isoformat(),
    }
    monthly, monthly_all = timed_page(client, monthly_params)
    load = os.getloadavg()
    print(f"page, 12 weeks by week: median {weekly * 1000:.0f} ms {[round(t * 1000) for t in weekly_all]}")
    print(
        f"page, {args.weeks} weeks by month: median {monthly * 1000:.0f} ms {[round(t * 1000) for t in monthly_all]}"
    )
    if args.no_write:
        return
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0].split()[0]
    cores = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    section = f"""## Analytics

The operator's page (`/staff/analytics/`) over {args.runs:,} runs of {args.stores:,} stores across
{args.weeks} weeks and {conversations:,} bot conversations, seeded with `generate_series`
(bench/analytics.py), read from the roll-ups that `economics_refresh` rebuilds from the ledger
(docs/analytics.md). Page times are whole requests through
Django's test client (every query, the SVG charts and the template), median of 5 after one warm-up.

```
make bench BENCH_ONLY=analytics
# or: DATABASE_URL=postgres://postgres@127.0.0.1:5432/tokenhub_bench_analytics .venv/bin/python bench/analytics.py
```

{datetime.now(tz=UTC):%Y-%m-%d}, {cores} cores, {mem:.0f} GiB, PostgreSQL {pg}, Python {platform.python_version()};
load average {load_before[0]:.1f} before and {load[0]:.1f} after (other engineers' work shared the machine).

| step | time |
|---|---|
| seed {args.runs:,} runs (holds, charges, runs) | {f"{seconds_seed:.1f} s" if seconds_seed else "earlier run"} |
| `economics_refresh` (FIFO revenue for every charge, rebuild of the fact table and roll-ups) | {refresh.seconds:.1f} s |
| page, last 12 weeks by week | {weekly * 1000:.0f} ms |
| page, {args.weeks} weeks by month | {monthly * 1000:.0f} ms |
"""
    write_section("## Analytics", section)


if __name__ == "__main__":
    main()
