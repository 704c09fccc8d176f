"""API-key authentication per request: the cached path (one Redis GET) against the SQL it replaces.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tokenhub_bench_auth REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/auth.py [--calls 3000] [--no-write]

Times `merchants.api_keys.api_key_authenticate` in one thread: with the cache (a hit costs a GET of the key
generation) and with API_KEY_CACHE_SECONDS=0 (the indexed SELECT with the merchant joined, as before).
Wall time and this process's CPU per call; writes the "API key authentication" section of RESULTS.md.
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


def measure(raw_key: str, calls: int) -> tuple[float, float]:
    from merchants.api_keys import api_key_authenticate

    api_key_authenticate(raw_key=raw_key)  # warm: connections, and the cache when it is on
    walls = []
    cpu0 = time.process_time()
    for _ in range(calls):
        started = time.perf_counter()
        assert api_key_authenticate(raw_key=raw_key) is not None
        walls.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu0
    return statistics.median(walls) * 1000, cpu / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--no-write", action="store_true")
    args, _unknown = parser.parse_known_args()  # make bench passes every script the same arguments
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokenhub.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import override_settings

    from merchants.api_keys import api_key_create
    from tests.factories import MerchantFactory

    call_command("migrate", verbosity=0)
    raw = api_key_create(merchant=MerchantFactory(), name="bench").raw_key
    rounds = {"cached": [], "sql": []}
    for _round in range(3):  # interleaved, the best round kept: the machine is shared
        rounds["cached"].append(measure(raw, args.calls))
        with override_settings(API_KEY_CACHE_SECONDS=0):
            rounds["sql"].append(measure(raw, args.calls))
    cached = min(rounds["cached"])
    sql = min(rounds["sql"])
    load = os.getloadavg()
    section = f"""## API key authentication

`api_key_authenticate` per call in one thread, {args.calls:,} calls, 3 interleaved rounds (best kept):
cached (an in-memory entry checked against one Redis GET of the key generation, so revocation still
answers 401 at once) against the indexed SELECT with the merchant joined that every request made before.

```
DATABASE_URL=postgres://postgres@127.0.0.1:5432/tokenhub_bench_auth REDIS_URL=redis://127.0.0.1:6379/6 \\
    .venv/bin/python bench/auth.py --calls {args.calls}
```

{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, shared and loaded (load average
{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}); PostgreSQL and Redis on the same host.

| path | wall p50 per call | CPU per call (this process) |
|---|---|---|
| cached: one Redis GET | {cached[0]:.3f} ms | {cached[1]:.3f} ms |
| database: SELECT ... JOIN merchant | {sql[0]:.3f} ms | {sql[1]:.3f} ms |
| database ÷ cached | {sql[0] / cached[0]:.1f}x | {sql[1] / cached[1]:.1f}x |
"""
    print(section)
    if not args.no_write:
        write_section("## API key authentication", section)


if __name__ == "__main__":
    main()
