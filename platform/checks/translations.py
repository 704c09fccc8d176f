"""Fails when a string of ours has no Simplified Chinese translation (run by `make lint`).

It runs `makemessages` for zh_Hans over a temporary copy of our code, templates and the catalogue, so the
tree is never touched, then lists every message whose msgstr is empty or marked fuzzy (a guess msgmerge made
from a similar old string), and checks the catalogue compiles with matching placeholders (`msgfmt -c`).

The output is meant to be acted on: each missing message is printed as a catalogue entry, with where it
comes from, ready to be translated in locale/zh_Hans/LC_MESSAGES/django.po after `make messages` (which adds
the new entries there). docs/i18n.md describes the workflow and the words we use.

    python platform/checks/translations.py            # the check
    python platform/checks/translations.py --quiet    # just the count and the msgids
"""

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCALE = "zh_Hans"
CATALOGUE = Path("locale") / LOCALE / "LC_MESSAGES" / "django.po"
# Not ours to translate, or never read by a merchant or a support member.
SKIP_DIRS = {
    ".git",
    ".venv",
    "locale",
    "tests",
    "bench",
    "devtools",
    "platform",
    "docs",
    "static",
    "staticfiles",
    "migrations",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".dev",
}
EXTENSIONS = (".py", ".html", ".txt")


@dataclass
class Entry:
    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    locations: list[str] = field(default_factory=list)
    obsolete: bool = False

    @property
    def missing(self) -> bool:
        return "fuzzy" in self.flags or not self.msgstr or any(not text for text in self.msgstr.values())


def _unquote(text: str) -> str:
    body = text.strip()[1:-1]
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def parse_po(text: str) -> list[Entry]:
    """Enough of the PO format for what makemessages writes: contexts, plurals, flags, locations."""
    entries: list[Entry] = []
    entry = Entry()
    key: tuple[str, int] | None = None

    def flush():
        nonlocal entry, key
        if entry.msgid or entry.msgstr or entry.msgid_plural:
            entries.append(entry)
        entry, key = Entry(), None

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("#~"):
            entry.obsolete = True
            continue
        if line.startswith("#,"):
            if key is not None and key[0] == "msgstr":
                flush()
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#:"):
            if key is not None and key[0] == "msgstr":
                flush()
            entry.locations.extend(line[2:].split())
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"') and key is not None:
            name, index = key
            if name == "msgstr":
                entry.msgstr[index] = entry.msgstr.get(index, "") + _unquote(line)
            elif name == "msgid":
                entry.msgid += _unquote(line)
            elif name == "msgid_plural":
                entry.msgid_plural = (entry.msgid_plural or "") + _unquote(line)
            elif name == "msgctxt":
                entry.msgctxt = (entry.msgctxt or "") + _unquote(line)
            continue
        word, _, rest = line.partition(" ")
        if word == "msgctxt":
            if key is not None and key[0] == "msgstr":
                flush()
            entry.msgctxt, key = _unquote(rest), ("msgctxt", 0)
        elif word == "msgid":
            if key is not None and key[0] == "msgstr":
                flush()
            entry.msgid, key = _unquote(rest), ("msgid", 0)
        elif word == "msgid_plural":
            entry.msgid_plural, key = _unquote(rest), ("msgid_plural", 0)
        elif word.startswith("msgstr"):
            index = int(word[7:-1]) if word.startswith("msgstr[") else 0
            entry.msgstr[index], key = _unquote(rest), ("msgstr", index)
    flush()
    return [e for e in entries if e.msgid and not e.obsolete]  # the header has an empty msgid


def _copy_sources(target: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        rel = Path(dirpath).relative_to(ROOT)
        if rel == Path("."):
            continue  # manage.py and friends hold no strings for people
        for name in filenames:
            if name.endswith(EXTENSIONS):
                (target / rel).mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(dirpath) / name, target / rel / name)


def refreshed_catalogue(work: Path) -> Path:
    """makemessages over a copy of the tree: the committed catalogue plus every string the code has now."""
    _copy_sources(work)
    po = work / CATALOGUE
    po.parent.mkdir(parents=True, exist_ok=True)
    if (ROOT / CATALOGUE).exists():
        shutil.copy2(ROOT / CATALOGUE, po)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokenhub.settings")
    os.environ.setdefault("DEBUG", "true")
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    settings.LOCALE_PATHS = []  # only the copy's locale/ (the current directory's) is written
    cwd = Path.cwd()
    os.chdir(work)
    try:
        call_command(
            "makemessages",
            locale=[LOCALE],
            extensions=["html", "txt", "py"],
            no_obsolete=True,
            add_location="file",
            verbosity=0,
        )
    finally:
        os.chdir(cwd)
    return po


def _as_po(entry: Entry) -> str:
    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = [f"#: {' '.join(sorted(set(entry.locations)))}"] if entry.locations else []
    if "fuzzy" in entry.flags:
        lines.append("# msgmerge guessed this from a similar string: check it, then drop the fuzzy flag")
        lines.append("#, fuzzy")
    if entry.msgctxt is not None:
        lines.append(f"msgctxt {q(entry.msgctxt)}")
    lines.append(f"msgid {q(entry.msgid)}")
    if entry.msgid_plural is not None:
        lines.append(f"msgid_plural {q(entry.msgid_plural)}")
        lines.extend(f"msgstr[{i}] {q(entry.msgstr.get(i, ''))}" for i in sorted(entry.msgstr) or [0])
    else:
        lines.append(f"msgstr {q(entry.msgstr.get(0, ''))}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    quiet = "--quiet" in argv
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None or shutil.which("xgettext") is None:
        print("translations: GNU gettext is not installed (bash platform/scripts/ensure-gettext.sh)")
        return 1
    if not (ROOT / CATALOGUE).exists():
        print(f"translations: {CATALOGUE} is missing; run `make messages` to create it")
        return 1
    with tempfile.TemporaryDirectory(prefix="tokenhub-i18n-") as tmp:
        po = refreshed_catalogue(Path(tmp))
        entries = parse_po(po.read_text(encoding="utf-8"))
        compiled = subprocess.run(  # noqa: S603 - our own catalogue, through gettext's msgfmt
            [msgfmt, "--check-format", "--check-header", "-o", os.devnull, str(ROOT / CATALOGUE)],
            capture_output=True,
            text=True,
            check=False,
        )
    missing = [e for e in entries if e.missing]
    problems = 0
    if compiled.returncode != 0:
        problems += 1
        print(f"translations: {CATALOGUE} does not compile (msgfmt --check-format):")
        print(compiled.stderr.replace(str(ROOT) + "/", ""))
    if missing:
        problems += 1
        print(
            f"translations: {len(missing)} of {len(entries)} messages have no {LOCALE} translation "
            f"(empty or fuzzy). Run `make messages`, translate these in {CATALOGUE}, then `make translations`:\n"
        )
        for entry in missing:
            if quiet:
                print(f"  {entry.msgid!r}")
            else:
                print(_as_po(entry) + "\n")
    if not problems:
        print(f"translations: all {len(entries)} messages have a {LOCALE} translation")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
