#!/usr/bin/env bash
# make dev: migrate, seed a demo store, start web, worker, beat (and the Qwen simulator without a key).
set -euo pipefail
cd "$(dirname "$0")/../.."
source platform/scripts/services.sh
source platform/scripts/mailcatcher.sh
mkdir -p .dev

echo "== Tokenhub dev =="
services_detect tokenhub
export DEBUG="${DEBUG:-true}"
export STATIC_MANIFEST="${STATIC_MANIFEST:-false}"
export PORT="${PORT:-8000}"
export QWEN_SIMULATOR_PORT="${QWEN_SIMULATOR_PORT:-8765}"
if [ -z "${DATABASE_URL:-}" ]; then
  # SQLite takes one writer at a time: a small worker pool keeps lock waits short.
  export CELERY_WORKER_CONCURRENCY="${CELERY_WORKER_CONCURRENCY:-8}"
fi
database_ensure
mailcatcher_start
export SITE_URL="${SITE_URL:-http://127.0.0.1:${PORT}}"

PY=.venv/bin/python
$PY manage.py migrate --noinput | grep -v "^  Applying" || true
$PY manage.py shell --verbosity 0 --no-imports -c "from django.conf import settings as s; print('broker:  ', s.TOKENHUB_BROKER_DESCRIPTION)"
$PY manage.py seed_demo

processes="web worker beat"
if [ -z "${QWEN_API_KEY:-}" ]; then
  processes="$processes simulator"
  echo "qwen:     no QWEN_API_KEY; tools answer from the local simulator on 127.0.0.1:${QWEN_SIMULATOR_PORT}"
else
  echo "qwen:     ${QWEN_BASE_URL:-https://dashscope-intl.aliyuncs.com/compatible-mode/v1}"
fi

.venv/bin/honcho --procfile platform/Procfile --app-root . start $processes &
honcho_pid=$!
trap 'kill $honcho_pid 2>/dev/null; wait $honcho_pid 2>/dev/null; mailcatcher_stop' INT TERM EXIT

for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:${PORT}/healthz" >/dev/null 2>&1; then break; fi
  sleep 1
done
cat <<BANNER

=====================================================================
 Tokenhub is running:  http://127.0.0.1:${PORT}/
 Demo login:           demo@tokenhub.local / tokenhub-demo
 Demo API key:         $(cat .dev/demo-api-key 2>/dev/null || echo "(see manage.py create_api_key demo)")
 Admin:                http://127.0.0.1:${PORT}/admin/  (create one: manage.py createsuperuser)
 API docs:             http://127.0.0.1:${PORT}/api/docs/
 Emails sent:          ${MAILBOX_URL:-(printed in the worker log)}
 Health:               $(curl -fsS "http://127.0.0.1:${PORT}/healthz" 2>/dev/null || echo "not answering yet")
 Stop with Ctrl-C.
=====================================================================
BANNER
wait $honcho_pid
