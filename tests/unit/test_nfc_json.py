"""The loader's NFC of page text: only the strings that need it are normalised, the result is exactly NFC."""

from __future__ import annotations

import unicodedata

import orjson
import pytest

from ingestion.load import _nfc_unsafe, nfc_json

CASES = ["Xa\u0303 Thu\u031b\u0309", "e\u0301", "\u1100\u1161\u11a8", "<\u0338", "a\u0323\u0302", "\u1f71",
         "\"\u0301", "A\u030a\u0301", "\uf900", "Huỳnh Ngọc Thảo", "plain ascii", "\u0915\u093c",
         "\U0001d15e", "x\\\"\u0301y", "Phu\u031bo\u031b\u0300ng Ea Kao"]


@pytest.mark.parametrize("value", CASES)
def test_nfc_json_equals_full_normalisation(value: str) -> None:
    raw = orjson.dumps({"content": [{"a": value, "b": [value + value, 1], value: None}]})
    assert nfc_json(raw) == unicodedata.normalize("NFC", raw.decode()).encode()


def test_untouched_when_nfc_already() -> None:
    raw = orjson.dumps({"content": [{"ChuHoSo": "Huỳnh Ngọc Thảo", "n": 1}]})
    assert nfc_json(raw) is raw


def test_bytes_that_are_not_utf8_are_kept() -> None:
    raw = b'{"a": "e\xcc\x81", "b": "\xff\xfe"}'
    assert nfc_json(raw) == b'{"a": "\xc3\xa9", "b": "\xff\xfe"}'


def test_skipped_blocks_hold_no_unsafe_character() -> None:
    assert _nfc_unsafe().pattern == _nfc_unsafe(skip=()).pattern
