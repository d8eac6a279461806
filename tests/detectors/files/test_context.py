"""What one attachment scan shares: names as findings may show them (secrets masked once)."""

from __future__ import annotations

import pytest

from detectors import Engine, FileLimits, load_watchlist
from detectors.files.context import ScanContext

KEY = "sk-ant-api03-" + "Q" * 40 + "WXYZ"
WATCHLIST = {"patterns": [
    {"id": "key", "regex": r"sk-ant-[A-Za-z0-9_\-]{32,}", "secret": True},
    {"id": "ticket", "regex": r"TICKET-[0-9]+", "secret": False},
]}


@pytest.mark.parametrize(("name", "shown"), [
    ("plain.txt", "plain.txt"),
    (f"../{KEY}.txt", "../sk-ant…WXYZ.txt"),
    (f"{KEY}/{KEY}.bin", "sk-ant…WXYZ/sk-ant…WXYZ.bin"),
    ("TICKET-42.txt", "TICKET-42.txt"),  # not a secret: shown as written
    ("sk-ant…WXYZ.txt", "sk-ant…WXYZ.txt"),  # masking what is masked changes nothing
    ("", ""),
])
def test_names_are_shown_with_their_secrets_masked(name, shown):
    ctx = ScanContext(Engine(load_watchlist(WATCHLIST)), FileLimits(), None)
    assert ctx.shown(name) == shown


def test_without_secret_patterns_names_are_shown_as_they_are():
    ctx = ScanContext(Engine(load_watchlist({"patterns": [WATCHLIST["patterns"][1]]})), FileLimits(), None)
    assert ctx.shown(f"{KEY}.txt") == f"{KEY}.txt"
