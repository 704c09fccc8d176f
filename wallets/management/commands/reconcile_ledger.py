from django.core.management.base import BaseCommand, CommandError

from wallets.reconcile import ledger_summary, reconcile_ledger


class Command(BaseCommand):
    help = "Check every ledger invariant; exit 1 naming each violation, else print a one-line summary."

    def handle(self, *args, **options):
        violations = reconcile_ledger()
        if violations:
            for violation in violations:
                self.stderr.write(str(violation))
            raise CommandError(f"{len(violations)} ledger invariant violation(s).", returncode=1)
        self.stdout.write(ledger_summary())
