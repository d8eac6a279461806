"""The sealed file: no term in it, the key checked first, every problem located, nothing leaks."""

import base64
import hashlib
import re
import tomllib

import pytest

from detectors import SealKey, WatchlistError, load_watchlist, open_sealed, seal_watchlist
from detectors.sealed import _bucket

KEY = SealKey("test sealing key, 32 characters!")
DIGEST = hashlib.sha256(b"final checkpoint").hexdigest()
TABLES = {
    "codenames": [
        {"id": "cn-0001", "term": "Larkspur", "aliases": ["Project Larkspur"], "label": "LLM v5"},
        {"id": "cn-0002", "term": "Iron Meadow", "severity": "critical", "max_edits": 2},
        {"id": "cn-0003", "term": "Quillfeather", "fuzzy": False},
    ],
    "hashes": [{"id": "ckpt", "digest": DIGEST, "severity": "high"}],
}
TERMS = ["Larkspur", "Project", "Iron", "Meadow", "Quillfeather", "IronMeadow"]


def sealed_text(tables=TABLES, key=KEY) -> str:
    return seal_watchlist(load_watchlist(tables), key, cost=16)


def problems(text, key=KEY):
    with pytest.raises(WatchlistError) as err:
        open_sealed(text, key, source="sealed.toml")
    return [p.describe("sealed.toml") for p in err.value.problems]


def test_the_file_holds_no_term_no_digest():
    text = sealed_text()
    data = tomllib.loads(text)["index"]["data"]
    blob = base64.b64decode(data)
    # The index's base64 is ciphertext: checked as bytes, since random base64 spells a short
    # word now and then ("Iron" about once in 60 files) without revealing anything.
    readable = text.replace(data, "")
    for t in TERMS:
        for form in {t, t.lower(), t.upper()}:
            assert form not in readable and form.encode() not in blob
    for form in (DIGEST, DIGEST.upper(), DIGEST[:16], bytes.fromhex(DIGEST)[:8].hex()):
        assert form not in readable and form not in data
    assert bytes.fromhex(DIGEST)[:8] not in blob


def test_the_file_shows_ids_kinds_severities_labels_only():
    raw = tomllib.loads(sealed_text())
    assert set(raw) == {"format", "kdf", "kdf_cost", "salt", "key_check", "nonce", "entries", "index"}
    assert raw["entries"] == [
        {"id": "cn-0001", "kind": "codename", "severity": "high", "label": "LLM v5"},
        {"id": "cn-0002", "kind": "codename", "severity": "critical"},
        {"id": "cn-0003", "kind": "codename", "severity": "high"},
        {"id": "ckpt", "kind": "hash", "severity": "high"},
    ]


def test_sizes_say_nothing_below_the_bucket():
    one = sealed_text({"codenames": [{"id": "a", "term": "Zorvanex"}]})
    five = sealed_text({"codenames": [{"id": "a", "term": "Zorvanex Quintaloris Pelmathrine"}]})
    size = lambda t: len(tomllib.loads(t)["index"]["data"])  # noqa: E731
    assert size(one) == size(five)
    assert [_bucket(n) for n in (1, 65536, 65537, 1_000_000)] == [65536, 65536, 73728, 1_048_576]


def test_sealing_twice_gives_unrelated_files():
    a, b = sealed_text(), sealed_text()
    da, db = (tomllib.loads(t)["index"]["data"] for t in (a, b))
    assert da != db and tomllib.loads(a)["salt"] != tomllib.loads(b)["salt"]
    assert open_sealed(a, KEY).entries == open_sealed(b, KEY).entries


def test_a_wrong_key_is_a_clear_error():
    other = SealKey("another key of enough length")
    assert problems(sealed_text(), other) == [
        "sealed.toml: [sealed] key_check: the sealing key does not open this file "
        "(sealed with another key? seal again with this one)"
    ]


def test_rotation_is_sealing_again():
    new = SealKey("the rotated key, also long enough")
    rotated = sealed_text(key=new)
    assert open_sealed(rotated, new).entries == open_sealed(sealed_text(), KEY).entries
    assert problems(rotated, KEY)[0].startswith("sealed.toml: [sealed] key_check:")


def test_the_content_key_is_its_own_derivation_of_the_key():
    derived = KEY.content_key()
    assert len(derived) == 32 and derived == SealKey(" test sealing key, 32 characters!\n").content_key()
    assert derived != SealKey("the rotated key, also long enough").content_key()
    text = sealed_text()  # nothing the sealed file holds or derives
    assert derived.hex() not in text and derived != open_sealed(text, KEY).hashers.blob_key


@pytest.mark.parametrize("secret", ["", "tiny-key", "   fifteen chars"])
def test_a_short_key_is_refused_without_showing_it(secret):
    with pytest.raises(ValueError) as err:
        SealKey(secret)
    assert "too short" in str(err.value)
    if secret.strip():
        assert secret.strip() not in str(err.value)


def test_the_key_never_shows():
    secret = "a secret nobody may print"
    key = SealKey(secret)
    sealed = open_sealed(seal_watchlist(load_watchlist(TABLES), key, cost=16), key, source="s.toml")
    for shown in (repr(key), str(key), repr(sealed), repr(sealed.hashers), repr(load_watchlist({}, sealed=sealed))):
        assert secret not in shown
    with pytest.raises(TypeError):
        __import__("pickle").dumps(key)


@pytest.mark.parametrize(
    "edit,expected",
    [
        (lambda t: t.replace('severity = "critical"', 'severity = "low"'), "index.data: does not open: the file was altered"),
        (lambda t: t.replace('id = "ckpt"', 'id = "ckpt2"'), "index.data: does not open: the file was altered"),
        (lambda t: re.sub(r"data = '(.{40})", lambda m: "data = '" + m.group(1)[::-1], t), "index.data: does not open"),
        (lambda t: re.sub(r"data = '.*'", "data = 'not base64!'", t), "index.data: does not open"),
        (lambda t: t.replace('"leakwarden-sealed/1"', '"other/9"'), "format: is 'other/9'"),
        (lambda t: t.replace('kind = "hash"', 'kind = "hsah"'), "[sealed id='ckpt'] kind: Input should be 'codename' or 'hash'"),
        (lambda t: t.replace('severity = "high"\n\n[[entries]]\nid = "ckpt"', 'severity = "loud"\n\n[[entries]]\nid = "ckpt"'), "[sealed id='cn-0003'] severity: unknown severity 'loud'"),
        (lambda t: "extra = 1\n" + t, "extra: unknown key"),
        (lambda t: t + "more = 1\n", "index.more: unknown key"),
        (lambda t: "not = [toml", "invalid TOML"),
    ],
    ids=["severity-edited", "id-edited", "blob-edited", "blob-garbage", "format", "kind", "severity-bad", "unknown-key", "unknown-index-key", "not-toml"],
)
def test_a_damaged_file_names_what_is_wrong(edit, expected):
    [line] = [p for p in problems(edit(sealed_text())) if expected in p] or problems(edit(sealed_text()))
    assert expected in line and line.startswith("sealed.toml")


def test_entry_problems_carry_the_line():
    text = sealed_text().replace('kind = "hash"', 'kind = "hsah"')
    [line] = problems(text)
    header = text[: text.index('id = "ckpt"')].count("\n")  # the [[entries]] line above it
    assert line.startswith(f"sealed.toml:{header}: [sealed id='ckpt'] kind:")


def test_ids_that_spell_their_term_are_refused():
    wl = load_watchlist({"codenames": [{"id": "cn-larkspur", "term": "Larkspur"},
                                       {"id": "cn-2", "term": "Iron Meadow", "label": "the meadow one"}]})  # fmt: skip
    with pytest.raises(WatchlistError) as err:
        seal_watchlist(wl, KEY, cost=16)
    assert [(p.entry_id, p.key) for p in err.value.problems] == [("cn-larkspur", "id"), ("cn-2", "label")]
    assert "spells its term" in str(err.value)


def test_ids_must_not_clash_with_plain_entries():
    sealed = open_sealed(sealed_text(), KEY, source="sealed.toml")
    with pytest.raises(WatchlistError) as err:
        load_watchlist({"codenames": [{"id": "cn-0002", "term": "Bluefin"}]}, sealed=sealed)
    [p] = err.value.problems
    assert p.describe("config.toml") == "sealed.toml: [sealed id='cn-0002'] id: duplicate id (also used in [codenames])"


def test_watchlist_version_follows_the_sealed_file():
    a = load_watchlist({}, sealed=open_sealed(sealed_text(), KEY))
    b = load_watchlist({}, sealed=open_sealed(sealed_text(), KEY))
    assert a.version != b.version and a.version != load_watchlist({}).version
