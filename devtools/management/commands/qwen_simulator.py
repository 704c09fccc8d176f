"""`manage.py qwen_simulator [--port N] [--host H] [--latency-ms N]`: the local Qwen-compatible endpoint."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from devtools.qwen_simulator.server import serve


class Command(BaseCommand):
    help = "Runs the local Qwen-compatible simulator (OpenAI /v1/chat/completions) for development and tests."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=settings.QWEN_SIMULATOR_PORT)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--latency-ms", type=int, default=0, help="Delay before every answer.")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(
            f"Qwen simulator on http://{options['host']}:{options['port']}/v1 "
            f"(latency {options['latency_ms']} ms). Faults: POST /_sim/faults; stats: GET /_sim/stats."
        )
        serve(host=options["host"], port=options["port"], latency_ms=options["latency_ms"])
