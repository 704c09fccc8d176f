import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from merchants.models import Membership, Merchant
from wallets.models import Account

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_create_merchant_makes_the_store_its_owner_and_a_funded_wallet(capsys):
    call_command("create_merchant", "acme", "--owner-email", "boss@acme.test", "--tokens", "5000")

    merchant = Merchant.objects.get(slug="acme")
    assert Membership.objects.get(merchant=merchant).user.email == "boss@acme.test"
    assert Account.objects.get(merchant=merchant, kind="wallet").available == 5000
    assert "acme" in capsys.readouterr().out


@pytest.mark.django_db
def test_create_merchant_refuses_a_taken_slug():
    call_command("create_merchant", "acme", "--owner-email", "a@acme.test")

    with pytest.raises(CommandError):
        call_command("create_merchant", "acme", "--owner-email", "b@acme.test")
    assert Merchant.objects.count() == 1


def test_stripe_and_openai_import_from_manage_py_shell():
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "import stripe, openai; print(stripe.__name__, openai.__name__)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "stripe openai" in result.stdout
