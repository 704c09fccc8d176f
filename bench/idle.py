"""What one round trip to PostgreSQL and to Redis costs here back to back and after an idle moment.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tokenhub_bench_idle REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/idle.py [--trips 200] [--no-write]

The overhead "at a steady 10 runs/s" in "Side by side" is measured with the machine idle between runs, and a
run crosses a dozen processes and threads (client, gunicorn's poller and thread, Redis, PostgreSQL and its
WAL flush, the broker, the worker's consumer and thread, the model endpoint). Each crossing pays for waking
a process that went idle. This times the plainest crossings, raw psycopg and redis-py with nothing of
Tokenhub in them, paced with a pause between trips: the difference between the rows is what idleness alone
adds to every hop. Writes the "Round trips after an idle moment" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import redis
from results import write_section  # bench/ is the script's folder, so on sys.path

PAUSES_MS = (0, 1, 10, 100)


def p50_ms(trip: Callable[[], object], pause_ms: float, trips: int) -> float:
    trip()  # the connection warm
    times = []
    for _ in range(trips):
        started = time.perf_counter()
        trip()
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(pause_ms / 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trips", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args, _unknown = parser.parse_known_args()  # make bench passes every script the same arguments
    database, broker = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database.startswith(("postgres://", "postgresql://")) or not broker:
        sys.exit("Set DATABASE_URL to a scratch PostgreSQL database and REDIS_URL to a Redis db.")
    load_start = os.getloadavg()
    pg = psycopg.connect(database, autocommit=True)
    pg.execute("CREATE TABLE IF NOT EXISTS bench_idle_trip (id bigserial PRIMARY KEY, at timestamptz)")
    server = pg.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    cache = redis.Redis.from_url(broker)
    trips = {
        "PostgreSQL `SELECT 1`": lambda: pg.execute("SELECT 1").fetchone(),
        "PostgreSQL INSERT, committed (waits for the WAL flush)": lambda: pg.execute(
            "INSERT INTO bench_idle_trip (at) VALUES (now())"
        ),
        "Redis PING": cache.ping,
    }
    rows = []
    for name, trip in trips.items():
        figures = [p50_ms(trip, pause, args.trips) for pause in PAUSES_MS]
        rows.append((name, figures))
        print(name, [f"{f:.3f}" for f in figures], flush=True)
    pg.execute("DROP TABLE bench_idle_trip")
    load_end = os.getloadavg()

    header = " | ".join(f"{pause} ms pause" if pause else "back to back" for pause in PAUSES_MS)
    lines = [
        "## Round trips after an idle moment",
        "",
        "One round trip, p50 of "
        f"{args.trips:,} per column, raw psycopg (autocommit) and redis-py from one thread, with the pause "
        "after each trip that the column names. Nothing of Tokenhub runs: this is what waking an idle "
        "peer costs on this machine, and a run at 10 runs/s pays it on each of its hops (see "
        '"Side by side": the overhead at 10/s, against the throughput phases where nothing idles).',
        "",
        "```",
        f"DATABASE_URL={database} REDIS_URL={broker} \\",
        f"    .venv/bin/python bench/idle.py --trips {args.trips}",
        "```",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs (nproc); PostgreSQL {server}, "
        f"Python {platform.python_version()}; load average {load_start[0]:.1f} at the start, "
        f"{load_end[0]:.1f} at the end.",
        "",
        f"| round trip | {header} | {PAUSES_MS[-1]} ms pause ÷ back to back |",
        "|---|" + "---|" * (len(PAUSES_MS) + 1),
    ]
    for name, figures in rows:
        cells = " | ".join(f"{f:.3f} ms" for f in figures)
        lines.append(f"| {name} | {cells} | **{figures[-1] / figures[0]:.1f}x** |")
    section = "\n".join(lines) + "\n"
    print(section)
    if not args.no_write:
        write_section("## Round trips after an idle moment", section)


if __name__ == "__main__":
    main()
