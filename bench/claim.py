"""A run's claim with and without waiting for the disk: the statement the worker sends, timed alone.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tokenhub_bench_claim REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/claim.py [--claims 300] [--no-write]

Queues runs, then claims them one by one with the claim statement as the worker sends it (committed on its
own, `synchronous_commit` off for that transaction) and, interleaved, with the same statement without the
`set_config` (the commit waits for the WAL flush, as before). Paced one claim every 50 ms, as a worker at
10 runs/s sends them (after an idle moment a round trip costs more here), and back to back. Writes the
"Run claim" section of RESULTS.md; ends with `reconcile_ledger()` clean once every claimed run is canceled.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from results import write_section  # bench/ is the script's folder, so on sys.path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--no-write", action="store_true")
    args, _unknown = parser.parse_known_args()  # make bench passes every script the same arguments
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokenhub.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Q
    from django.utils import timezone

    from agents.models import Run
    from agents.runs import execute
    from agents.runs.create import run_create
    from agents.runs.leases import lease_until
    from agents.runs.settle import run_finish_unpaid
    from merchants.actors import Actor
    from tests.plugins.workers import funded, listing
    from wallets.reconcile import reconcile_ledger

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)  # a scratch database: start from nothing
    actor = Actor.system("bench")
    merchant = funded(10**12)
    statements = {"on its own": execute._CLAIM_SQL_ON_ITS_OWN, "waiting for the disk": execute._CLAIM_SQL}
    timings: dict[tuple[str, float], list[float]] = {}
    for pause in (0.05, 0.0):
        for _ in range(args.claims):
            for name, sql in statements.items():
                run = run_create(merchant=merchant, tool="listing-writer", input=listing(), actor=actor)
                params = {
                    "run_id": str(run.pk), "now": timezone.now(),
                    "run_deadline": settings.RUN_DEADLINE, "margin": execute.HOLD_MARGIN,
                    "lease": lease_until(),
                }  # fmt: skip
                time.sleep(pause)
                with connection.cursor() as cursor:
                    started = time.perf_counter()
                    cursor.execute(sql, params)
                    assert cursor.fetchone() is not None
                    timings.setdefault((name, pause), []).append((time.perf_counter() - started) * 1000)
    # Every claimed run ends canceled, its hold released, so the ledger holds nothing for it.
    for run_id in Run.objects.filter(merchant=merchant, status="running").values_list("pk", flat=True):
        run_finish_unpaid(
            run_id=run_id, where=Q(status="running"), status="canceled", code="", message="", actor=actor
        )
    violations = reconcile_ledger()
    assert violations == [], violations

    def p(name: str, pause: float, q: float) -> float:
        values = sorted(timings[(name, pause)])
        return values[min(len(values) - 1, int(len(values) * q))]

    load = os.getloadavg()
    rows = []
    for pause, label in ((0.05, "one claim every 50 ms"), (0.0, "back to back")):
        own, wait = (statistics.median(timings[(n, pause)]) for n in statements)
        rows.append(
            f"| {label} | {own:.3f} / {p('on its own', pause, 0.9):.3f} ms "
            f"| {wait:.3f} / {p('waiting for the disk', pause, 0.9):.3f} ms | {wait / own:.1f}x |"
        )
    table = "\n".join(rows)
    section = f"""## Run claim

The worker's claim statement timed alone, {args.claims} claims of queued runs per row and column,
interleaved: as sent (committed on its own without waiting for the WAL flush; docs/architecture.md,
"A run's claim does not wait for the disk") against the same statement waiting for it. `reconcile_ledger()`
clean after the claimed runs are canceled: {violations == []}.

```
DATABASE_URL=postgres://postgres@127.0.0.1:5432/tokenhub_bench_claim REDIS_URL=redis://127.0.0.1:6379/6 \\
    .venv/bin/python bench/claim.py --claims {args.claims}
```

{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, shared (load average
{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}); PostgreSQL on the same host, fsync on.

| pace | claim as sent, p50 / p90 | waiting for the disk, p50 / p90 | waiting ÷ as sent (p50) |
|---|---|---|---|
{table}
"""
    print(section)
    if not args.no_write:
        write_section("## Run claim", section)


if __name__ == "__main__":
    main()
