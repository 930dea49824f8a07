"""The Vietnamese Superset translation (superset/translations/vi) and its installer script.

Every msgid must be one Superset knows (its messages.pot in .venv-superset), every entry translated with its
placeholders kept, and scripts/install-superset-translations.py must write the Jed language pack Superset's
/superset/language_pack/vi/ serves (the structure of Superset's own translations/fr/.../messages.json).
"""

from __future__ import annotations

import gettext
import json
import re
import subprocess
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

REPO = Path(__file__).resolve().parents[2]
PO_FILE = REPO / "superset" / "translations" / "vi" / "LC_MESSAGES" / "messages.po"
SCRIPT = REPO / "scripts" / "install-superset-translations.py"
SUPERSET_VENV = REPO / ".venv-superset"
PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[sdifr%]|\{\w*\}")


def _catalog(path: Path):
    with open(path, "rb") as f:
        return read_po(f)


def _messages() -> list:
    return [m for m in _catalog(PO_FILE) if m.id]


def _key(message) -> str:
    return message.id[0] if message.pluralizable else message.id


def _superset_python() -> Path:
    python = SUPERSET_VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(".venv-superset is absent (run `make install`): no Superset to check against")
    return python


def _superset_pot() -> Path:
    _superset_python()
    pots = sorted(SUPERSET_VENV.glob("lib/python*/site-packages/superset/translations/messages.pot"))
    if not pots:
        pytest.skip(".venv-superset has no superset/translations/messages.pot: Superset not installed")
    return pots[0]


def test_header_is_vietnamese_utf8_single_plural() -> None:
    catalog = _catalog(PO_FILE)
    assert str(catalog.locale) == "vi"
    assert catalog.plural_forms == "nplurals=1; plural=0;"
    assert catalog.charset.lower() == "utf-8"


def test_size_and_no_duplicates() -> None:
    keys = [_key(m) for m in _messages()]
    assert 150 <= len(keys) <= 300
    assert len(keys) == len(set(keys))


def test_every_entry_is_translated_and_not_fuzzy() -> None:
    for message in _messages():
        strings = message.string if message.pluralizable else (message.string,)
        assert all(s.strip() for s in strings), f"untranslated: {message.id!r}"
        assert not message.fuzzy, f"fuzzy: {message.id!r}"


def test_placeholders_are_kept() -> None:
    for message in _messages():
        ids = message.id if message.pluralizable else (message.id,)
        wanted = sorted(PLACEHOLDER.findall(ids[-1]))
        strings = message.string if message.pluralizable else (message.string,)
        for s in strings:
            assert sorted(PLACEHOLDER.findall(s)) == wanted, f"placeholders differ: {message.id!r} -> {s!r}"


def test_key_menu_labels_are_translated() -> None:
    by_id = {_key(m): m.string for m in _messages()}
    assert by_id["Dashboards"] == "Bảng điều khiển"
    assert by_id["Charts"] == "Biểu đồ"
    assert by_id["Datasets"] == "Tập dữ liệu"
    assert by_id["Settings"] == "Cài đặt"
    assert by_id["Logout"] == "Đăng xuất"
    assert by_id["Filters"] == "Bộ lọc"
    assert by_id["Apply filters"] == "Áp dụng bộ lọc"
    assert by_id["Clear all"] == "Xoá tất cả"


def test_every_msgid_is_in_superset_pot() -> None:
    pot = {_key(m): m for m in _catalog(_superset_pot()) if m.id}
    unknown = [_key(m) for m in _messages() if _key(m) not in pot]
    assert not unknown, f"msgids Superset does not have (useless): {unknown}"
    for message in _messages():
        assert message.pluralizable == pot[_key(message)].pluralizable, f"plural mismatch: {message.id!r}"


def test_script_writes_jed_pack_and_mo(tmp_path: Path) -> None:
    python = _superset_python()
    run = subprocess.run([str(python), str(SCRIPT), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, check=True)
    assert len(run.stdout.strip().splitlines()) == 1

    pack = json.loads((tmp_path / "messages.json").read_text(encoding="utf-8"))
    assert set(pack) == {"domain", "locale_data"} and pack["domain"] == "superset"
    data = pack["locale_data"]["superset"]
    assert data[""] == {"domain": "superset", "plural_forms": "nplurals=1; plural=0;", "lang": "vi"}
    messages = _messages()
    assert len(data) == len(messages) + 1
    for message in messages:
        strings = list(message.string) if message.pluralizable else [message.string]
        assert data[_key(message)] == strings

    with open(tmp_path / "messages.mo", "rb") as f:
        mo = gettext.GNUTranslations(f)
    assert mo.gettext("Dashboards") == "Bảng điều khiển"
    assert mo.info()["language"] == "vi"

    # Idempotent: a second run changes nothing.
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    again = subprocess.run([str(python), str(SCRIPT), "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=120, check=True)
    assert "already up to date" in again.stdout
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
