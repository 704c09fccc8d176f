"""Compiles the zh-Hans catalogue before the tests when the .mo is missing or older than the .po.

`make install` does it too; this keeps `pytest` on its own (and a fresh checkout) showing Chinese pages,
since the .mo is built, never committed.
"""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config) -> None:
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        return  # the Chinese tests then fail and say why (no msgfmt): see docs/i18n.md
    for po in (ROOT / "locale").glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            subprocess.run([msgfmt, "--check-format", "-o", str(mo), str(po)], check=True)
