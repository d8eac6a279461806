"""The engine as a whole: patterns, digests, suspicious Unicode, excerpts, chunked scans."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import Engine, Severity, load_watchlist

KEY = "sk-ant-api03-" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
SHA256 = hashlib.sha256(b"final checkpoint").hexdigest()
MD5 = hashlib.md5(b"eval set").hexdigest()
SHA1 = hashlib.sha1(b"tokenizer").hexdigest()
SHA512 = hashlib.sha512(b"weights").hexdigest()

WATCHLIST = {
    "codenames": [{"id": "cn-larkspur", "term": "Larkspur", "severity": "high"}],
    "patterns": [
        {"id": "anthropic-key", "regex": r"sk-ant-[A-Za-z0-9_\-]{32,}", "severity": "critical"},
        {"id": "ticket", "regex": r"LEAK-\d{4}", "severity": "low", "secret": False},
    ],
    "hashes": [
        {"id": "ckpt", "digest": SHA256},
        {"id": "evalset", "digest": MD5.upper()},
        {"id": "tok", "digest": SHA1},
        {"id": "w", "digest": f"sha512:{SHA512}"},
    ],
}


@pytest.fixture(scope="module")
def engine():
    return Engine(load_watchlist(WATCHLIST))


def kinds(findings):
    return [(f.rule_id, f.kind) for f in findings]


def test_secret_pattern_is_masked_everywhere(engine):
    text = f"try this: {KEY} thanks"
    [f] = engine.scan_text(text)
    assert (f.rule_id, f.kind, f.severity) == ("anthropic-key", "pattern", Severity.CRITICAL)
    assert text[f.start : f.end] == KEY
    assert f.matched == "sk-ant…6789"
    assert KEY not in f.excerpt and KEY[:20] not in f.excerpt
    assert f.matched in f.excerpt


def test_non_secret_pattern_is_shown(engine):
    [f] = engine.scan_text("see LEAK-1234")
    assert f.matched == "LEAK-1234"


def test_secret_masked_in_other_findings_excerpts(engine):
    text = f"Larkspur key {KEY}"
    by_kind = {f.kind: f for f in engine.scan_text(text)}
    assert KEY not in by_kind["codename"].excerpt


@pytest.mark.parametrize(
    "text,rule",
    [
        (f"sha256 is {SHA256}", "ckpt"),
        (f"SHA256: {SHA256.upper()}", "ckpt"),
        (f"sha256:{SHA256}", "ckpt"),
        (f"`{SHA256}`", "ckpt"),
        (f"md5 {MD5}", "evalset"),
        (f"{SHA1} tokenizer", "tok"),
        (f"{SHA512}", "w"),
    ],
)
def test_known_digests_in_text(engine, text, rule):
    assert kinds(engine.scan_text(text)) == [(rule, "digest")]


@pytest.mark.parametrize(
    "text",
    [
        hashlib.sha256(b"something else").hexdigest(),  # random hex, not on the list
        SHA256 + "ab",  # longer run: not a digest of ours
        "x" + SHA256,  # glued to a letter
        SHA256[:-1],  # one digit short
        "sk-ant-short",  # too-short key-like string
        "sk-ant-" + "a" * 31,
    ],
)
def test_near_misses_are_not_hits(engine, text):
    assert engine.scan_text(text) == []


def test_suspicious_unicode_is_low(engine):
    text = "invoice\u202egpj.exe and tag\U000e0041\U000e0042"
    found = engine.scan_text(text)
    assert [f.kind for f in found] == ["suspicious-unicode", "suspicious-unicode"]
    assert all(f.severity is Severity.LOW for f in found)
    assert found[0].matched == "U+202E"
    assert "\u202e" not in found[0].excerpt  # shown escaped, never live


def test_excerpt_is_short_and_escaped(engine):
    text = "x" * 500 + " Larkspur\n@everyone " + "y" * 500
    [f] = engine.scan_text(text)
    assert len(f.excerpt) <= 160
    assert "\n" not in f.excerpt
    assert "Larkspur" in f.excerpt


def test_megabyte_of_near_matches_scans(engine):
    # Catastrophic for a backtracking engine; RE2 walks it once.
    text = "sk-ant-" + "a-" * 500_000
    assert [f.rule_id for f in engine.scan_text(text)] == ["anthropic-key"]
    hexline = "a" * (1 << 20)
    assert engine.scan_text(hexline) == []


def test_lone_surrogates_do_not_break_scanning(engine):
    text = "Larkspur \ud800 tail"
    [f] = engine.scan_text(text)
    assert f.matched == "Larkspur"


words = st.sampled_from(
    ["Larkspur", "L a r k s p u r", "larksupr", "concatenate", "the", "lark", "spur", KEY,
     SHA256, "\u202e", "Ｌａｒｋ", "iron", "\n", "  ", "##", "Lark-\nspur", "café", "1337"]
)  # fmt: skip


@given(st.lists(words, max_size=120), st.integers(min_value=64, max_value=400))
@settings(max_examples=80, deadline=None)
def test_chunked_scan_equals_whole_scan(engine, parts, chunk):
    text = " ".join(parts)
    whole = engine._scan(text, "text")
    chunked = list(engine.scan_text_chunked(text, chunk=chunk + 200, overlap=200))
    assert sorted(chunked, key=lambda f: (f.start, f.rule_id)) == whole


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_spans_lie_inside_the_text(engine, text):
    for f in engine.scan_text(text):
        assert 0 <= f.start < f.end <= len(text)
        assert len(f.excerpt) <= 160


def test_long_text_is_chunked_with_the_same_result():
    e = Engine(load_watchlist(WATCHLIST))
    filler = "nothing to see here " * 100_000  # 2 MB: crosses a chunk boundary
    text = filler + "Larkspur " + filler
    [f] = e.scan_text(text)
    assert text[f.start : f.end] == "Larkspur"


messages = st.lists(words, max_size=12).map(" ".join) | st.text(max_size=60)


@given(st.lists(messages, max_size=40))
@settings(max_examples=150, deadline=None)
def test_batch_scan_equals_one_by_one(engine, texts):
    assert engine.scan_many(texts) == [engine.scan_text(t) for t in texts]


@pytest.mark.parametrize(
    "regex,texts",
    [
        (r"^LEAK-\d+$", ["x", "LEAK-12", "y LEAK-3"]),  # anchors mean one message
        (r"(?s).{5,}", ["ab", "cd", "efghij"]),  # a pattern that would span messages
    ],
)
def test_batch_scan_with_awkward_patterns(regex, texts):
    e = Engine(load_watchlist({"patterns": [{"id": "p", "regex": regex, "secret": False}]}))
    assert e.scan_many(texts) == [e.scan_text(t) for t in texts]


RICH = Engine(
    load_watchlist(
        {
            "codenames": [
                {"id": "lark", "term": "Larkspur", "aliases": ["Project Larkspur"]},
                {"id": "iron", "term": "Iron Meadow"},
                {"id": "corfal", "term": "Corfal Ospha"},
                {"id": "gpt", "term": "GPT-5 Turbo"},
                {"id": "cat", "term": "cat"},
            ],
            "hashes": [{"id": "ckpt", "digest": SHA256}],
        }
    )
)
disguises = st.sampled_from(
    ["Larkspur", "L a r k s u p r", "L.a.r.k.s.p.u.r", "L4rk5pur", "1arkspur", "Lárkspür", "Ｌａｒｋ",
     "Lark\u200bspur", "ProjectLarksupr", "#IronMedow", "Iron", "Medow", "Coral", "Ospha", "coral",
     "GPT-5", "Turbo", "gpt5turbo", "cat", "concatenate", "a", "x", "5", "1", "!", "|", "@", "$",
     "-", "\n", "  ", "**", "||", "v1.2", "https://x.test/larkspur/7?a=1", "74510", "я", "中文", "🙂",
     "\u202e", SHA256, "aB", "XMLParser", "l4rk"]
)  # fmt: skip
glued = st.lists(disguises, max_size=8).map("".join)
spaced = st.lists(disguises, max_size=14).map(" ".join)


@given(st.lists(glued | spaced | st.text(max_size=40), max_size=30))
@settings(max_examples=300, deadline=None)
def test_batch_scan_equals_one_by_one_on_every_disguise(texts):
    assert RICH.scan_many(texts) == [RICH.scan_text(t) for t in texts]
