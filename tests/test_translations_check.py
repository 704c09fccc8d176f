"""platform/checks/translations.py: what counts as missing, and that it leaves the tree alone."""

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("translations_check", ROOT / "platform/checks/translations.py")
assert _spec is not None and _spec.loader is not None
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)

PO = r"""
msgid ""
msgstr ""
"Language: zh_Hans\n"

#: templates/home.html
msgid "Wallet"
msgstr "钱包"

#: templates/wallet.html
msgid "Ledger statement"
msgstr ""

#: merchants/views.py
#, fuzzy, python-format
msgid "Welcome to %(store)s."
msgstr "欢迎"

#: templates/bulk.html
msgid "%(n)s product"
msgid_plural "%(n)s products"
msgstr[0] "%(n)s 个商品"

#: templates/runs.html
msgctxt "date range"
msgid "From"
msgstr ""
"从"

#~ msgid "Old"
#~ msgstr ""
"""


def test_empty_and_fuzzy_messages_are_missing_and_translated_ones_are_not():
    entries = {(e.msgctxt, e.msgid): e for e in check.parse_po(PO)}

    assert not entries[(None, "Wallet")].missing
    assert entries[(None, "Ledger statement")].missing
    assert entries[(None, "Welcome to %(store)s.")].missing  # fuzzy: a guess, never shown
    assert not entries[(None, "%(n)s product")].missing
    assert not entries[("date range", "From")].missing  # a msgstr continued on the next line
    assert (None, "Old") not in entries  # obsolete entries are not ours any more
    assert entries[(None, "Ledger statement")].locations == ["templates/wallet.html"]


def test_a_missing_message_is_printed_as_an_entry_to_paste():
    (entry,) = [e for e in check.parse_po(PO) if e.msgid == "Ledger statement"]

    assert check._as_po(entry) == '#: templates/wallet.html\nmsgid "Ledger statement"\nmsgstr ""'


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="needs GNU gettext (msgfmt)")
def test_the_committed_catalogue_compiles_with_matching_placeholders():
    import subprocess

    po = ROOT / check.CATALOGUE
    result = subprocess.run(
        [shutil.which("msgfmt") or "msgfmt", "--check-format", "-o", "/dev/null", str(po)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
