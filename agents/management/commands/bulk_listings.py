import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agents import bulk, selectors
from merchants.actors import Actor
from merchants.models import Merchant
from tokenhub.errors import ApplicationError
from wallets.exceptions import InsufficientTokens


class Command(BaseCommand):
    help = (
        "Write product listings from a CSV (columns: " + ", ".join(bulk.COLUMNS) + "). "
        "Nothing is created if any row is invalid or the wallet cannot cover the whole file."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The merchant's slug.")
        parser.add_argument("path", type=Path, help="The CSV file.")
        parser.add_argument("--out", type=Path, help="Write the results CSV here (with --wait; else stdout).")
        parser.add_argument("--wait", action="store_true", help="Wait until every run has finished.")
        parser.add_argument("--timeout", type=float, default=3600.0, help="Seconds --wait waits at most.")

    def handle(self, *args, slug, path, out, wait, timeout, **options):
        merchant = Merchant.objects.filter(slug=slug).first()
        if merchant is None:
            raise CommandError(f"No merchant with slug {slug!r}.")
        if not path.is_file():
            raise CommandError(f"No file at {path}.")
        if path.stat().st_size > bulk.MAX_BYTES:
            raise CommandError(f"{path} is larger than {bulk.MAX_BYTES // 1024 // 1024} MB.")
        try:
            batch = bulk.bulk_create(
                merchant=merchant,
                content=path.read_bytes(),
                actor=Actor.system("bulk_listings command"),
                filename=path.name,
            )
        except InsufficientTokens as exc:
            raise CommandError(str(exc)) from None
        except ApplicationError as exc:
            rows = exc.details.get("rows") or {}
            lines = [
                f"  row {row}: " + "; ".join(f"{f}: {m}" for f, m in fields.items())
                for row, fields in rows.items()
            ]
            raise CommandError("\n".join([exc.message, *lines])) from None
        self.stdout.write(
            f"Batch {batch.pk}: {batch.row_count} listings queued, {batch.total_held:,} tokens held."
        )
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while True:
            progress = selectors.batch_progress(batch=batch)
            self.stderr.write(
                f"{progress['finished']}/{progress['total']} finished "
                f"({progress['succeeded']} succeeded, {progress['failed']} failed)"
            )
            if progress["finished"] == progress["total"]:
                break
            if time.monotonic() > deadline:
                raise CommandError(f"Timed out after {timeout:.0f}s; batch {batch.pk} is still running.")
            time.sleep(2)
        results = bulk.bulk_results_csv(batch)
        if out:
            out.write_text(results, encoding="utf-8")
            self.stdout.write(f"Results written to {out}.")
        else:
            self.stdout.write(results, ending="")
