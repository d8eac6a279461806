"""The engine as a whole: patterns, digests, suspicious Unicode, excerpts, chunked scans."""

import hashlib
from collections import Counter

import pytest
from hypothesis import example, given, settings
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


# ---- long matches: patterns are matched over the whole text, never cut by a window ----------

PEM_RULE = {"id": "pem", "severity": "critical",
            "regex": r"-----BEGIN RSA PRIVATE KEY-----[A-Za-z0-9+/=\s]+-----END RSA PRIVATE KEY-----"}
PEM_ENGINE = Engine(load_watchlist({
    "codenames": [{"id": "cn-larkspur", "term": "Larkspur"}], "patterns": [PEM_RULE],
}))


def pem_key(body_chars: int, seed: int = 0) -> str:
    """A PEM block shaped like an RSA private key: base64 lines of 64 characters."""
    import base64
    import random
    raw = random.Random(seed).randbytes(body_chars * 3 // 4 + 3)
    body = base64.b64encode(raw).decode()[:body_chars]
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----"


RSA4096 = pem_key(3180)  # the size of a 4096-bit key: 3.3 KB
FILLER = "lorem ipsum dolor sit amet " * 2000  # 54 KB: scanned in windows


@pytest.mark.parametrize("offset", [0, 13000, 14000, 16384, 30000, len(FILLER)])
def test_a_long_key_is_found_whole_anywhere_in_a_long_text(offset):
    text = FILLER[:offset] + "\n" + RSA4096 + "\n" + FILLER[offset:]
    [f] = PEM_ENGINE.scan_text(text)
    assert (f.rule_id, f.start, f.end) == ("pem", offset + 1, offset + 1 + len(RSA4096))
    assert RSA4096[40:60] not in f.excerpt


@given(before=st.integers(0, 40_000), body=st.integers(16, 9000), after=st.integers(0, 20_000),
       seed=st.integers(0, 9))
@example(before=14000, body=3180, after=20000, seed=0)  # cut by the 16 KiB windows before
@example(before=12000, body=8000, after=0, seed=0)
@settings(max_examples=40, deadline=None)
def test_a_match_of_any_length_anywhere_is_found_once_and_whole(before, body, after, seed):
    key = pem_key(body, seed)
    text = FILLER[:before] + " " + key + " " + FILLER[: after + 20_000]  # always in windows
    found = PEM_ENGINE.scan_text(text)
    assert [(f.rule_id, f.start, f.end) for f in found] == [("pem", before + 1, before + 1 + len(key))]


@given(st.lists(st.sampled_from(["Larkspur", "plain words here", "\n", RSA4096, pem_key(5000, 1),
                                 "\u202e" * 3000, "x" * 700]), max_size=30),
       st.integers(min_value=64, max_value=3000))
@settings(max_examples=40, deadline=None)
def test_chunked_scan_equals_whole_scan_with_long_matches(parts, chunk):
    text = " ".join(parts)
    whole = PEM_ENGINE._scan(text, "text")
    chunked = list(PEM_ENGINE.scan_text_chunked(text, chunk=chunk + 200, overlap=200))
    assert chunked == whole


def test_a_long_secret_that_began_far_before_is_masked_in_an_excerpt():
    text = FILLER[:20000] + " " + RSA4096 + " Larkspur " + FILLER[:20000]
    by_kind = {f.kind: f for f in PEM_ENGINE.scan_text(text)}
    last_line = RSA4096.splitlines()[-2]
    assert last_line[-20:] not in by_kind["codename"].excerpt
    assert "…" in by_kind["codename"].excerpt


# ---- a text dense with mentions: at most max_findings_per_rule of a rule, the rest counted ---


def capped(found):
    return [(f.kind, f.rule_id, f.detail.get("rule_id"), f.detail.get("total")) for f in found
            if f.kind == "scan-limit"]


@pytest.mark.parametrize("repeats", [150, 5000])  # one text, and one scanned in windows
def test_findings_of_one_rule_are_capped_and_counted(repeats):
    engine = Engine(load_watchlist(WATCHLIST))
    text = "Larkspur " * repeats + f" {KEY} LEAK-1234"
    found = engine.scan_text(text)
    codenames = [f for f in found if f.kind == "codename"]
    assert [f.start for f in codenames] == [9 * i for i in range(100)]  # the first ones, in order
    assert capped(found) == [("scan-limit", "scan-limit", "cn-larkspur", repeats)]
    assert {f.rule_id for f in found if f.kind == "pattern"} == {"anthropic-key", "ticket"}


def test_the_cap_is_configurable_and_applies_to_every_kind():
    engine = Engine(load_watchlist(WATCHLIST), max_findings_per_rule=2)
    text = f"LEAK-1234 {KEY} " * 4 + f"{SHA256} " * 3 + "\u202e x " * 3 + "Larkspur"
    found = engine.scan_text(text)
    assert sorted(capped(found)) == [
        ("scan-limit", "scan-limit", "anthropic-key", 4), ("scan-limit", "scan-limit", "ckpt", 3),
        ("scan-limit", "scan-limit", "suspicious-unicode", 3), ("scan-limit", "scan-limit", "ticket", 4)]
    assert Counter(f.rule_id for f in found if f.kind != "scan-limit") == {
        "anthropic-key": 2, "ticket": 2, "ckpt": 2, "suspicious-unicode": 2, "cn-larkspur": 1}
    assert engine.scan_many([text]) == [found]


def test_a_capped_text_keeps_secrets_masked_in_the_excerpts_it_reports():
    engine = Engine(load_watchlist(WATCHLIST), max_findings_per_rule=1)
    text = (f"{KEY} Larkspur " * 3000)  # 150 KB: windows; most keys are counted, not reported
    for f in engine.scan_text(text):
        assert KEY[10:30] not in f.excerpt


def test_a_bad_cap_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        Engine(load_watchlist(WATCHLIST), max_findings_per_rule=0)
