"""Sealed matching, as a specification: the same findings as the plain watchlist, term never shown."""

import hashlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_codenames import MENTIONS, NOT_MENTIONS, WATCHLIST

from detectors import Engine, SealKey, load_watchlist, open_sealed, seal_watchlist

KEY = SealKey("test sealing key, 32 characters!")
CHEAP = 16  # scrypt cost for tests: the real default is slow on purpose


def sealed_engine(tables, plain_tables=None) -> Engine:
    # test_codenames' ids spell their terms: allowed here, refused by default.
    text = seal_watchlist(load_watchlist(tables), KEY, cost=CHEAP, allow_revealing=True)
    return Engine(load_watchlist(plain_tables or {}, sealed=open_sealed(text, KEY, source="s.toml")))


def codename_hits(engine, text):
    """What a responder can compare: rule, span, score and how it matched."""
    return [
        (f.rule_id, f.start, f.end, f.score, f.detail["match"], f.detail["edits"])
        for f in engine.scan_text(text)
        if f.kind == "codename"
    ]


def plain_engine(tables) -> Engine:
    """The plain watchlist's semantics: its full match on every text. (Its fast screen may only
    skip texts without a mention; this property found texts it skipped, e.g. "aaveN" for
    "Kaven", so the screen is left out of the comparison.)"""
    engine = Engine(load_watchlist(tables))
    engine._codenames.scan = engine._codenames.match
    return engine


@pytest.fixture(scope="module")
def engines():
    return plain_engine(WATCHLIST), sealed_engine(WATCHLIST)


TABLE = [(c, t) for c, t, _, _ in MENTIONS] + NOT_MENTIONS + [
    ("ordinary-typo", "iron meadows"),
    ("multi-typo-ordinary-neighbour", "iron meadov"),
    ("two-places", "Larkspur, then L a r k s p u r, then larksupr"),
    ("nested", "Project Larkspur and Bluefin and BF-7 Tuna"),
    ("leet-and-typo", "L4rksupr 1ron Medow"),
    ("zero-width-word-split", "B\u200bl\u200bu\u200be\u200bf\u200bi\u200bn\u200b7 Bluefim4"),
]


@pytest.mark.parametrize("cls,text", TABLE, ids=[c for c, _ in TABLE])
def test_every_disguise_class_finds_the_same(engines, cls, text):
    plain, sealed = engines
    assert codename_hits(sealed, text) == codename_hits(plain, text)


@pytest.mark.parametrize(
    "entries,text",
    [
        ([{"term": "Larkspur", "max_edits": 0}], "Larksupr"),
        ([{"term": "Larkspur", "max_edits": 1}], "Larksupr"),
        ([{"term": "Larkspur", "max_edits": 2}], "Lrakspru"),
        ([{"term": "Larkspur", "max_edits": 3}], "Lrakspruu"),
        ([{"term": "Nimbusfalcon"}, {"term": "Zeta"}], "Nimbsufalcn Zetta"),
        ([{"term": "Kodel"}], "the model is out"),
        ([{"term": "Tallo"}], "order 74510 shipped"),
        ([{"term": "Portal"}, {"term": "Vortal"}], "Portal"),
        ([{"term": "Corsil"}, {"term": "Quincorsil"}], "Q u i n C o r s i l and Corsil"),
        ([{"term": "Iron"}, {"term": "Iron Meadow"}], "Iron Meadow"),
        ([{"term": "Rudtor Elmek"}, {"term": "Elmek"}], "Rudor Elmek"),
        ([{"term": "Quillfeather", "fuzzy": False}], "Quilfeather quill feather"),
        ([{"term": "Build 20245"}], "Build 20246 and Bild 20245"),
        ([{"term": "Iron Meadow Falcon", "max_edits": 3}], "Irn Medow Falcn"),
        ([{"term": "Talsa"}], "see https://example.com/check/74154?ref=chat"),
        ([{"term": "Leet"}], "1337 and l33t"),
    ],
)
def test_budgets_and_resolution_rules_are_the_same(entries, text):
    tables = {"codenames": [{"id": f"t{i}", **e} for i, e in enumerate(entries)]}
    assert codename_hits(sealed_engine(tables), text) == codename_hits(plain_engine(tables), text)


# ---- property: generated terms, disguised, in generated text -------------------------------------

SYLLABLES = ["ka", "lo", "ri", "ven", "tor", "mi", "sa", "dra", "zel", "quin", "por", "thu", "bex",
             "nor", "cal", "fen", "gri", "hol", "vor", "mek", "os", "ur", "ix", "an", "el", "zor"]  # fmt: skip
FILLER = ["the", "weights", "are", "out", "see", "link", "model", "iron", "lark", "v2.0", "🔥", "74154",
          "данные", "模型", "https://x.test/a/b", "ok", "l33t", "1337", "a", "b", "c"]  # fmt: skip
CONFUSABLE = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і"}
LEET = {"a": "4", "e": "3", "o": "0", "s": "5", "t": "7", "l": "1", "i": "!"}

word = st.lists(st.sampled_from(SYLLABLES), min_size=1, max_size=4).map("".join).filter(lambda w: len(w) >= 3)
term = st.lists(word, min_size=1, max_size=3).map(lambda ws: " ".join(w.capitalize() for w in ws))


@st.composite
def disguised(draw, t: str) -> str:
    """`t` as a leaker might write it: some of every disguise class, and random typos."""
    chars = list(t)
    for _ in range(draw(st.integers(0, 2))):  # typos, within budget or not
        if not chars:
            break
        i = draw(st.integers(0, len(chars) - 1))
        op = draw(st.sampled_from("sidt"))
        if op == "s":
            chars[i] = draw(st.sampled_from("aeiouxz"))
        elif op == "i":
            chars.insert(i, draw(st.sampled_from("aeiouxz")))
        elif op == "d" and len(chars) > 1:
            del chars[i]
        elif op == "t" and i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    out = []
    for c in chars:
        c = draw(st.sampled_from([c, c.upper(), c.lower(), CONFUSABLE.get(c, c), LEET.get(c.lower(), c),
                                  chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c]))  # fmt: skip
        out.append(c)
    sep = draw(st.sampled_from(["", "", " ", ".", "-", "\u200b", "_", "-\n"]))
    joiner = draw(st.sampled_from(["every", "words", "none"]))
    if joiner == "every":
        return sep.join(out)
    if joiner == "words":
        return "".join(sep if c == " " else c for c in out)
    return "".join(out)


@st.composite
def case(draw):
    terms = draw(st.lists(term, min_size=1, max_size=4, unique_by=lambda t: t.lower().replace(" ", "")))
    entries = []
    for i, t in enumerate(terms):
        e = {"id": f"t{i}", "term": t}
        if draw(st.booleans()):
            e["max_edits"] = draw(st.sampled_from(["auto", 0, 1, 2, 3]))
        entries.append(e)
    pieces = draw(st.lists(st.sampled_from(FILLER), max_size=6))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(pieces)))
        pieces.insert(at, draw(disguised(draw(st.sampled_from(terms)))))
    wrap = draw(st.sampled_from(["{}", "**{}**", "||{}||", "#{}", "`{}`", "({})"]))
    return {"codenames": entries}, wrap.format(" ".join(pieces))


@settings(max_examples=int(os.environ.get("SEALED_EXAMPLES", "80")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case())
def test_plain_and_sealed_find_the_same(c):
    tables, text = c
    plain, sealed = plain_engine(tables), sealed_engine(tables)
    assert codename_hits(sealed, text) == codename_hits(plain, text)
    assert sealed.scan_many([text, "nothing here", text]) == [sealed.scan_text(text), [], sealed.scan_text(text)]


# ---- nothing in plain text downstream --------------------------------------------------------------


NEUTRAL = {
    "codenames": [
        {"id": "cn-0001", "term": "Larkspur", "aliases": ["Project Larkspur"]},
        {"id": "cn-0002", "term": "Iron Meadow", "label": "LLM v5"},
    ]
}


def test_sealed_findings_show_the_entry_not_the_term():
    sealed = sealed_engine(NEUTRAL)
    text = "who has the Larkspur weights? ask about Iron Medow, key sk-ant-none"
    findings = sealed.scan_text(text)
    assert [f.rule_id for f in findings] == ["cn-0001", "cn-0002"]
    for f in findings:
        assert f.matched.startswith("sealed:")
        for word in ("arkspur", "medow", "meadow", "iron"):
            assert word not in (f.matched + f.excerpt + repr(f)).lower()
        assert f.detail["sealed"] is True
    assert findings[0].excerpt.startswith("who has the [sealed:cn-0001] weights?")
    assert "[sealed:cn-0002]" in findings[0].excerpt
    assert findings[1].detail["label"] == "LLM v5"


def test_the_same_spelling_gets_the_same_tag():
    sealed = sealed_engine(NEUTRAL)
    [a], [b], [c] = (sealed.scan_text(t) for t in ("Larkspur", "L4rkspur", "Larksupr"))
    assert a.matched == b.matched != c.matched


def test_other_findings_excerpts_hide_sealed_matches():
    key = "sk-ant-api03-" + "A" * 40
    tables = {"codenames": [{"id": "cn-1", "term": "Larkspur"}]}
    plain = {"patterns": [{"id": "key", "regex": r"sk-ant-[A-Za-z0-9_\-]{32,}"}],
             "codenames": [{"id": "cn-plain", "term": "Bluefin"}]}  # fmt: skip
    engine = sealed_engine(tables, plain)
    findings = {f.rule_id: f for f in engine.scan_text(f"Larkspur with Bluefin and {key}")}
    assert set(findings) == {"cn-1", "cn-plain", "key"}
    for f in findings.values():
        assert "Larkspur" not in f.excerpt and key not in f.excerpt
        assert "[sealed:cn-1]" in f.excerpt
    assert findings["cn-plain"].matched == "Bluefin"  # plain entries are shown as before


def test_a_sealed_span_cut_by_the_excerpt_window_is_hidden_whole():
    engine = sealed_engine({"codenames": [{"id": "cn-1", "term": "Larkspur"}]},
                           {"patterns": [{"id": "p", "regex": "ZZTOP", "secret": False}]})  # fmt: skip
    text = "Larkspur" + " filler" * 8 + " ZZTOP"  # the window starts inside "Larkspur"
    [_, pat] = engine.scan_text(text)
    assert pat.excerpt.startswith("…[sealed:cn-1] filler") and "spur" not in pat.excerpt


def test_sealed_known_digests_in_text():
    digest = hashlib.sha256(b"final checkpoint").hexdigest()
    engine = sealed_engine({"hashes": [{"id": "ckpt", "digest": digest, "label": "final"}]})
    [f] = engine.scan_text(f"grab it: sha256:{digest.upper()} now")
    assert (f.rule_id, f.kind, f.detail["algorithm"], f.detail["label"]) == ("ckpt", "digest", "sha256", "final")
    assert digest not in f.excerpt.lower() and digest not in f.matched
    assert engine.watchlist.digest_rule(digest).id == "ckpt"
    assert engine.watchlist.digest_algorithms == {"sha256"}
    assert engine.scan_text(hashlib.sha256(b"other").hexdigest()) == []
    assert engine.scan_many(["x", f"{digest}"])[1][0].rule_id == "ckpt"


def test_plain_and_sealed_entries_mix():
    engine = sealed_engine({"codenames": [{"id": "cn-s", "term": "Larkspur"}]},
                           {"codenames": [{"id": "cn-p", "term": "Bluefin"}]})  # fmt: skip
    assert [f.rule_id for f in engine.scan_text("Bluefin and Larkspur")] == ["cn-p", "cn-s"]
    assert engine.watchlist.rule("cn-s").kind == "codename"


def test_attachments_find_sealed_names_and_digests():
    data = b"notes: the Larkspur eval moved to Iron Medow\n" * 3
    digest = hashlib.sha256(data).hexdigest()
    engine = sealed_engine({**NEUTRAL, "hashes": [{"id": "ckpt", "digest": digest}]})
    scan = engine.open_stream("attachment:notes.txt", "notes.txt")
    scan.feed(data)
    findings = scan.close()
    assert {(f.rule_id, f.kind) for f in findings} == {
        ("ckpt", "file-digest"), ("cn-0001", "codename"), ("cn-0002", "codename")
    }
    for f in findings:
        assert digest not in f.matched + f.excerpt
        assert "arkspur" not in (f.matched + f.excerpt).lower() and "medow" not in f.excerpt.lower()
    [file_digest] = [f for f in findings if f.kind == "file-digest"]
    assert file_digest.matched == engine.scan_text(digest)[0].matched  # one tag, text or file


def test_a_sealed_watchlist_travels_to_worker_processes():
    import pickle

    engine = sealed_engine(NEUTRAL)
    copy = Engine(pickle.loads(pickle.dumps(engine.watchlist)))  # what bot/scanworker.py does
    text = "the Larkspur weights, and Iron Medow"
    assert copy.scan_text(text) == engine.scan_text(text)


def test_long_texts_scanned_in_windows_stay_redacted():
    engine = sealed_engine(NEUTRAL, {"patterns": [{"id": "p", "regex": "ZZTOP", "secret": False}]})
    filler = "nothing to see here " * 1500  # longer than one window: scanned in windows
    text = filler + "Larkspur ZZTOP Iron Medow " + filler + " L a r k s p u r"
    findings = engine.scan_text(text)
    assert [f.rule_id for f in findings] == ["cn-0001", "p", "cn-0002", "cn-0001"]
    for f in findings:
        assert "arkspur" not in f.excerpt.lower() and "medow" not in f.excerpt.lower()
        assert "l a r k" not in f.excerpt.lower()
    assert findings[1].excerpt.count("[sealed:") == 2
