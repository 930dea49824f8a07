"""Install chiso's Vietnamese translation into the Superset package of the running interpreter's venv.

Superset 6.1 ships no "vi" translation. It needs two files in <superset>/translations/vi/LC_MESSAGES/:
  messages.mo    Flask-Babel's compiled catalogue: server-side strings (navbar menu labels, flash messages);
  messages.json  the Jed language pack that /superset/language_pack/vi/ serves to the React front end.
Both are built from superset/translations/vi/LC_MESSAGES/messages.po of this repository.

Run it with the Superset venv's python (it has Babel):
    .venv-superset/bin/python scripts/install-superset-translations.py [--out DIR]
--out DIR writes the two files into DIR instead (the unit tests use it). Idempotent: files whose content
would not change are left untouched.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANG = "vi"
DOMAIN = "superset"
REPO = Path(__file__).resolve().parent.parent
PO_FILE = REPO / "superset" / "translations" / LANG / "LC_MESSAGES" / "messages.po"


def superset_package_dir() -> Path:
    """The installed superset package, found without importing it (its __init__ builds the app)."""
    spec = importlib.util.find_spec("superset")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("superset is not installed here: run this with .venv-superset/bin/python")
    return Path(list(spec.submodule_search_locations)[0])


def jed_pack(catalog) -> dict:
    """The Jed structure Superset's own translations use (see translations/fr/LC_MESSAGES/messages.json)."""
    messages: dict = {
        "": {
            "domain": DOMAIN,
            "plural_forms": catalog.plural_forms,
            "lang": LANG,
        }
    }
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        if message.pluralizable:
            key = message.id[0]
            forms = list(message.string)
        else:
            key = message.id
            forms = [message.string]
        if not all(forms):
            continue
        messages[key] = forms
    return {"domain": DOMAIN, "locale_data": {DOMAIN: messages}}


def write_if_changed(path: Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write messages.mo and messages.json into this directory")
    parser.add_argument("--po", type=Path, default=PO_FILE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    with open(args.po, "rb") as f:
        catalog = read_po(f, locale=LANG, domain="messages")

    out = args.out or superset_package_dir() / "translations" / LANG / "LC_MESSAGES"
    out.mkdir(parents=True, exist_ok=True)

    mo = io.BytesIO()
    write_mo(mo, catalog, use_fuzzy=False)
    pack = jed_pack(catalog)
    as_json = (json.dumps(pack, ensure_ascii=False, indent=2, sort_keys=False) + "\n").encode("utf-8")

    changed = [name for name, data in (("messages.mo", mo.getvalue()), ("messages.json", as_json))
               if write_if_changed(out / name, data)]
    state = "written: " + ", ".join(changed) if changed else "already up to date"
    count = len(pack["locale_data"][DOMAIN]) - 1
    print(f"Superset '{LANG}' translation: {count} messages in {out} ({state})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
