import getpass

from django.core.management.base import BaseCommand, CommandError

from merchants.actors import Actor
from merchants.models import Merchant
from wallets import services
from wallets.exceptions import LedgerError


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "unknown"


class Command(BaseCommand):
    help = "Adjust a merchant's balance as support: positive N credits, negative N debits (never below zero)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("amount", type=int, help="Tokens; negative debits the wallet.")
        parser.add_argument("--reason", required=True, help="Why: it is written on the ledger.")
        parser.add_argument("--ticket", default="", help="Support ticket reference.")
        parser.add_argument(
            "--key", help="Idempotency key: running the command again with the same key moves nothing."
        )

    def handle(self, *args, slug, amount, reason, ticket, key, **options):
        merchant = Merchant.objects.filter(slug=slug).first()
        if merchant is None:
            raise CommandError(f"No merchant with slug {slug!r}.")
        # The operator at a shell is trusted like a second approver; the OS user is kept for the audit.
        actor = Actor.system(f"grant_tokens CLI (os user {_os_user()})")
        try:
            transfer = services.adjustment_create(
                wallet=services.wallet_of(merchant=merchant),
                amount=amount,
                reason=reason,
                actor=actor,
                reference=ticket,
                key=f"adjust:cli:{key}" if key else None,
            )
        except LedgerError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{'Credited' if amount > 0 else 'Debited'} {abs(amount):,} tokens "
            f"{'to' if amount > 0 else 'from'} {merchant.slug} (transfer {transfer.pk}); "
            f"balance {transfer.balance_after:,}."
        )
