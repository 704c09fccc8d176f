"""Gunicorn for the web processes (platform/Procfile `web` and `stream`).

`web` (the default): WSGI, threads not processes: views are short and I/O-bound (DB, Redis).
`stream` (TOKENHUB_SERVER=asgi): ASGI on uvicorn workers, for the server-sent-event streams. A stream waits
on Redis for most of its life; on an event loop that costs a coroutine, where gthread would hold one of its
WEB_CONCURRENCY x WEB_THREADS threads for the whole stream. platform/nginx.conf routes the stream URLs
there. `make dev` runs `web` as ASGI too, so one port serves pages and live streams.
"""

import os

server = os.environ.get("TOKENHUB_SERVER", "wsgi")
if server not in ("wsgi", "asgi"):
    raise RuntimeError(f"TOKENHUB_SERVER={server!r}: use wsgi or asgi.")

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# An application named on the command line (tests) wins over this.
wsgi_app = "tokenhub.asgi:application" if server == "asgi" else "tokenhub.wsgi:application"
if server == "asgi":
    worker_class = "uvicorn.workers.UvicornWorker"
else:
    worker_class = "gthread"
    threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 30
graceful_timeout = 20
# nginx (platform/nginx.conf) writes the access log in front of this; a second line per request from here
# cost a twentieth of an API call's CPU. GUNICORN_ACCESS_LOG=- writes one to stdout (make dev does).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
