"""Watchlist validation: every problem is refused with the entry id and the key."""

import pytest

from detectors import Severity, WatchlistError, load_watchlist

GOOD = {"codenames": [{"id": "cn-a", "term": "Larkspur"}]}


def problems(tables, **kw):
    with pytest.raises(WatchlistError) as err:
        load_watchlist(tables, **kw)
    return [(p.section, p.entry_id, p.key, p.message) for p in err.value.problems]


@pytest.mark.parametrize(
    "tables,expected",
    [
        ({"codenames": [{"id": "a", "term": "  "}]}, ("codenames", "a", "term", "must not be empty or blank")),
        ({"codenames": [{"id": "a", "term": ""}]}, ("codenames", "a", "term", "must not be empty or blank")),
        ({"codenames": [{"id": "a", "term": "x", "colour": 1}]}, ("codenames", "a", "colour", "unknown key")),
        ({"codenames": [{"id": "a", "term": "Lark", "severity": "urgent"}]}, ("codenames", "a", "severity", None)),
        ({"codenames": [{"id": "a", "term": "Lark", "aliases": [" "]}]}, ("codenames", "a", "aliases", None)),
        ({"codenames": [{"id": "a", "term": "Lark", "max_edits": 9}]}, ("codenames", "a", "max_edits", None)),
        ({"codenames": [{"id": "a", "term": "ab"}]}, ("codenames", "a", "term", None)),
        ({"codenames": [{"id": "a", "term": "!!!"}]}, ("codenames", "a", "term", None)),
        ({"codenames": [{"term": "Lark"}]}, ("codenames", None, "id", "is required")),
        ({"patterns": [{"id": "p", "regex": "(a+"}]}, ("patterns", "p", "regex", None)),
        ({"patterns": [{"id": "p", "regex": r"(a)\1"}]}, ("patterns", "p", "regex", None)),
        ({"patterns": [{"id": "p", "regex": "(?=a)b"}]}, ("patterns", "p", "regex", None)),
        ({"patterns": [{"id": "p", "regex": "a*"}]}, ("patterns", "p", "regex", None)),
        ({"hashes": [{"id": "h", "digest": "xyz"}]}, ("hashes", "h", "digest", None)),
        ({"hashes": [{"id": "h", "digest": "ab" * 17}]}, ("hashes", "h", "digest", None)),
        ({"codenames": [{"id": "d", "term": "Lark"}], "hashes": [{"id": "d", "digest": "a" * 32}]}, ("hashes", "d", "id", None)),
        ({"codenamez": []}, ("codenamez", None, None, "unknown watchlist section")),
    ],
)
def test_refused_with_entry_and_key(tables, expected):
    got = problems(tables)
    assert any(
        g[:3] == expected[:3] and (expected[3] is None or g[3] == expected[3]) for g in got
    ), got


def test_all_problems_reported_at_once():
    got = problems({"codenames": [{"id": "a", "term": " "}, {"id": "b", "term": "ok", "x": 1}]})
    assert {g[1] for g in got} == {"a", "b"}


def test_regex_error_carries_position():
    with pytest.raises(WatchlistError) as err:
        load_watchlist({"patterns": [{"id": "p", "regex": "abc(def"}]})
    assert err.value.problems[0].position is not None


def test_hash_list_files():
    text = f"# known files\n{'A' * 64} ckpt-final\n\n{'b' * 40}\nnot-a-digest\n"
    with pytest.raises(WatchlistError) as err:
        load_watchlist({"hashes": {"files": ["known.txt"]}}, files={"known.txt": text})
    [p] = err.value.problems
    assert (p.source, p.line, p.key) == ("known.txt", 5, "digest")
    wl = load_watchlist({"hashes": {"files": ["k.txt"], "severity": "high"}}, files={"k.txt": text[:-13]})
    assert wl.digests["a" * 64].id == "ckpt-final"
    assert wl.digests["b" * 40].algorithm == "sha1"
    assert wl.digests["b" * 40].severity is Severity.HIGH
    assert wl.digest_algorithms == {"sha256", "sha1"}


@pytest.mark.parametrize(("tables", "files", "where"), [
    ({"codenames": [{"id": "a", "term": "Lark"}, {"id": "b", "term": "Spur"}, {"id": "a", "term": "Iron"}]},
     None, (2, None, None)),
    ({"codenames": [{"id": "a", "term": "Lark"}], "patterns": [{"id": "p", "regex": "x"}, {"id": "a", "regex": "y"}]},
     None, (1, None, None)),
    ({"hashes": {"files": ["k.txt"]}}, {"k.txt": f"{'a' * 32} h\n# c\n{'b' * 32} h\n"}, (None, "k.txt", 3)),
])
def test_a_duplicate_id_is_located_where_the_duplicate_is(tables, files, where):
    with pytest.raises(WatchlistError) as err:
        load_watchlist(tables, files=files)
    [p] = err.value.problems
    assert (p.key, p.message.split(" (")[0]) == ("id", "duplicate id")
    assert (p.index, p.source, p.line) == where


def test_version_changes_with_content():
    a = load_watchlist(GOOD)
    b = load_watchlist({"codenames": [{"id": "cn-a", "term": "Larkspur", "severity": "low"}]})
    assert a.version != b.version and a.version == load_watchlist(GOOD).version


def test_defaults():
    wl = load_watchlist({**GOOD, "patterns": [{"id": "p", "regex": "k-[0-9]{8}"}]})
    [c] = wl.codenames
    assert (c.severity, c.fuzzy, c.max_edits) == (Severity.HIGH, True, "auto")
    assert wl.patterns[0].severity is Severity.CRITICAL and wl.patterns[0].secret
