# Sourced by dev.sh, test.sh and bench.sh: find PostgreSQL and Redis, or say we run without them.
# Exports DATABASE_URL and REDIS_URL when the servers answer; leaves them unset (embedded defaults) if not.
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

services_detect() {
  local dbname="$1"
  if [ "${TOKENHUB_EMBEDDED:-}" = "true" ] || [ "${TOKENHUB_EMBEDDED:-}" = "1" ]; then
    echo "database: TOKENHUB_EMBEDDED is set; using the embedded SQLite default"
    echo "redis:    TOKENHUB_EMBEDDED is set; using the embedded file-system broker"
    unset DATABASE_URL REDIS_URL
    return
  fi
  if [ -z "${DATABASE_URL:-}" ]; then
    if tcp_open 127.0.0.1 5432; then
      export DATABASE_URL="postgres://postgres@127.0.0.1:5432/${dbname}"
      echo "database: PostgreSQL at 127.0.0.1:5432 (${dbname})"
    else
      echo "database: PostgreSQL is not running on 127.0.0.1:5432; using the embedded SQLite default"
    fi
  else
    echo "database: DATABASE_URL from the environment"
  fi
  if [ -z "${REDIS_URL:-}" ]; then
    if tcp_open 127.0.0.1 6379; then
      export REDIS_URL="redis://127.0.0.1:6379/0"
      echo "redis:    Redis at 127.0.0.1:6379"
    else
      echo "redis:    Redis is not running on 127.0.0.1:6379; using the embedded file-system broker"
    fi
  else
    echo "redis:    REDIS_URL from the environment"
  fi
}

database_ensure() {
  # Create the database named in DATABASE_URL if PostgreSQL is in use and it does not exist yet.
  case "${DATABASE_URL:-}" in
    postgres*://*)
      .venv/bin/python - <<'PY'
import os, psycopg
from urllib.parse import urlparse
url = urlparse(os.environ["DATABASE_URL"])
name = url.path.lstrip("/")
admin = url._replace(path="/postgres").geturl()
with psycopg.connect(admin, autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        conn.execute(f'CREATE DATABASE "{name}"')
        print(f"database: created {name}")
PY
      ;;
  esac
}
