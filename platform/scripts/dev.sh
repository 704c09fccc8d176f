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
# No nginx in front here: gunicorn writes each request to the terminal.
export GUNICORN_ACCESS_LOG="${GUNICORN_ACCESS_LOG:--}"
# The web process runs on uvicorn workers here (ASGI): one port serves the pages and the live reply
# streams. Production runs `web` as WSGI and `stream` as ASGI, split by nginx (platform/nginx.conf).
export TOKENHUB_SERVER="${TOKENHUB_SERVER:-asgi}"
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
# The chat widget's demo: a fake shop on another origin (port WIDGET_DEMO_PORT) embedding the demo
# store's widget with its one <script> tag. The widget is created once and kept in .dev/widget-key.
export WIDGET_DEMO_PORT="${WIDGET_DEMO_PORT:-8100}"
mkdir -p .dev/widget-demo
widget_key="$(cat .dev/widget-key 2>/dev/null || true)"
if [ -z "$widget_key" ] || ! $PY manage.py shell --verbosity 0 --no-imports -c "import sys; from widgets.selectors import widget_by_public_key as w; sys.exit(0 if w('$widget_key') else 1)"; then
  widget_key="$($PY manage.py create_widget demo --name "Demo shop" --origin "http://127.0.0.1:${WIDGET_DEMO_PORT}" --origin "http://localhost:${WIDGET_DEMO_PORT}" | tail -n 1)"
  echo "$widget_key" > .dev/widget-key
  # The demo store's knowledge base as articles, so the demo's answers cite them.
  $PY manage.py shell --verbosity 0 --no-imports -c "from merchants.models import Merchant; from widgets.models import Article; from widgets.services import articles_import_knowledge_base as i; m = Merchant.objects.get(slug='demo'); Article.objects.filter(merchant=m).exists() or i(merchant=m)"
fi
sed "s#__WIDGET_SRC__#http://127.0.0.1:${PORT}/widget/${widget_key}.js#" platform/widget-demo/index.html > .dev/widget-demo/index.html

processes="web worker beat shop"
if [ -z "${QWEN_API_KEY:-}" ]; then
  processes="$processes simulator"
  # Every dashboard page then shows the "simulated answers" banner.
  export QWEN_SIMULATED="${QWEN_SIMULATED:-true}"
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
 Chat widget demo:     http://127.0.0.1:${WIDGET_DEMO_PORT}/  (a fake shop on another origin)
 Emails sent:          ${MAILBOX_URL:-(printed in the worker log)}
 Health:               $(curl -fsS "http://127.0.0.1:${PORT}/healthz" 2>/dev/null || echo "not answering yet")
 Stop with Ctrl-C.
=====================================================================
BANNER
wait $honcho_pid
