#!/usr/bin/env bash
# `make bench`: runs every benchmark script in bench/ (ledger first, then runs, then any others) against
# PostgreSQL, each on its own scratch database, and lets each write its section of bench/RESULTS.md.
# Extra arguments go to every script (e.g. `--no-write`); BENCH_ONLY="ledger runs" picks scripts by name.
set -euo pipefail
cd "$(dirname "$0")/../.."
source platform/scripts/services.sh
services_detect tokenhub
case "${DATABASE_URL:-}" in
  postgres*://*) ;;
  *) echo "bench: needs PostgreSQL (set DATABASE_URL or start it on 127.0.0.1:5432)" >&2; exit 1 ;;
esac
export DEBUG=false SECRET_KEY="${SECRET_KEY:-bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz}"
base_url="${DATABASE_URL%/*}"
redis_base="${REDIS_URL:-redis://127.0.0.1:6379/0}"
redis_base="${redis_base%/*}"

scripts=()
for name in ledger runs; do
  [ -f "bench/${name}.py" ] && scripts+=("bench/${name}.py")
done
for script in bench/*.py; do
  case "$script" in bench/ledger.py|bench/runs.py) ;; *) scripts+=("$script") ;; esac
done

status=0
for script in "${scripts[@]}"; do
  name="$(basename "$script" .py)"
  if [ -n "${BENCH_ONLY:-}" ] && [[ " ${BENCH_ONLY} " != *" ${name} "* ]]; then
    continue
  fi
  echo "== ${script}"
  # A scratch database (and Redis db) per script: benchmarks flush and fill them freely.
  # (bench/ledger.py creates and migrates its own tokenhub_bench database from the server in DATABASE_URL.)
  db_url="${base_url}/tokenhub_bench_${name}"
  redis_url="${redis_base}/${BENCH_REDIS_DB:-6}"
  DATABASE_URL="$db_url" database_ensure
  if ! DATABASE_URL="$db_url" REDIS_URL="$redis_url" .venv/bin/python "$script" "$@"; then
    echo "bench: ${script} failed" >&2
    status=1
  fi
done
exit "$status"
