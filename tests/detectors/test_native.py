"""The native core held to its Python specifications: automaton, analysis, verdict cache, build."""

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import native
from detectors.codenames import CodenameMatcher, _digit_spans, _spans
from detectors.native import Automaton, Core
from detectors.normalize import TABLES, fold
from detectors.watchlist import load_watchlist

small = st.text(alphabet="abcж中1", min_size=1, max_size=5)


@given(st.sets(small, min_size=1, max_size=30), st.text(alphabet="abcж中1x", max_size=60))
@settings(max_examples=300, deadline=None)
def test_automaton_finds_every_occurrence(keys, text):
    keys = sorted(keys)
    auto = Automaton(keys, range(len(keys)))
    expected = {
        (i, i + len(k), v) for v, k in enumerate(keys) for i in range(len(text)) if text.startswith(k, i)
    }
    assert sorted(auto.find(text)) == sorted(expected)


def test_automaton_refuses_bad_keys():
    with pytest.raises(ValueError, match="duplicate"):
        Automaton(["ab", "ab"], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        Automaton([""], [0])


MATCHER = CodenameMatcher(
    load_watchlist({"codenames": [{"id": "a", "term": "Larkspur"}, {"id": "b", "term": "Iron Meadow"}]}).codenames
)
texts = st.text(max_size=60) | st.from_regex(r"[A-Za-z0-9ÀßЖж中🙂🇱🇦ᴀꜱ🅻Ⓛ\u200b\u0301 .\-_*|@$!\n]{0,40}", fullmatch=True)


@given(texts, st.sampled_from([0, 1, 2]))
@settings(max_examples=300, deadline=None)
def test_analysis_gives_the_spans_of_the_folded_text(text, reading):
    compact, orig, _, spans, words, word_digits, tokens, first, last = MATCHER.core.analyse(text, reading)
    fd = fold(text, reading)
    assert compact == fd.compact
    assert list(memoryview(orig).cast("q")) == fd.orig.tolist()
    ref_words, ref_spans = _spans(fd)
    digits = _digit_spans(fd, ref_spans)
    assert len(spans) == len(set(spans))
    assert set(spans) == ref_spans - digits
    assert words == ref_words
    assert [bool(b) for b in word_digits] == [w in digits for w in words]
    toks = fd.segments(fd.sepbound)
    assert tokens == len(toks)
    if toks:
        assert (first, last) == (toks[0][1] - toks[0][0], toks[-1][1] - toks[-1][0])


@given(texts, st.sampled_from([0, 1, 2]))
@settings(max_examples=200, deadline=None)
def test_exact_hits_lie_on_word_boundaries(text, reading):
    compact, _, hits, *_ = MATCHER.core.analyse(text, reading)
    fd = fold(text, reading)
    expected = {
        (s, s + len(form.compact))
        for form in MATCHER.forms
        for s in range(len(compact))
        if compact.startswith(form.compact, s) and fd.bound[s] and fd.bound[s + len(form.compact)]
    }
    assert {(s, e) for s, e, _ in hits} == expected


def test_verdict_cache_is_bounded_and_stays_correct():
    calls = []

    def verdict(piece):
        calls.append(piece)
        return MATCHER._token_code(piece)

    core = Core(TABLES, None, verdict, True, 16)
    batch = [f"word{i} Larksupr" for i in range(100)]
    assert core.screen(batch) == list(range(100))
    assert core.cached <= 16
    assert core.screen(["Larksupr", "nothing"]) == [0]


def screened_in_threads(core, batch, n=4):
    """`core.screen(batch)` run by n threads at once: each one's result."""
    results = []
    threads = [threading.Thread(target=lambda: results.append(core.screen(batch))) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_screen_is_safe_to_share_between_threads():
    # A tiny cache clears while other threads are inside a verdict callback.
    core = Core(TABLES, None, MATCHER._token_code, True, 20)
    batch = [f"t{i} L a r k s u p r q{i}" if i % 3 == 0 else f"t{i} plain words {i}" for i in range(300)]
    assert screened_in_threads(core, batch) == [[i for i in range(300) if i % 3 == 0]] * 4


def test_a_stale_build_is_refused(monkeypatch):
    native._check_fresh()  # this checkout's build matches its source
    monkeypatch.setattr(native._native, "SOURCE_DIGEST", "0" * 16)
    with pytest.raises(ImportError, match="make setup"):
        native._check_fresh()


keys = st.lists(st.tuples(st.text(alphabet="abcdж", min_size=3, max_size=12), st.integers(0, 3)), min_size=1, max_size=25)


@given(keys, st.lists(st.booleans(), min_size=25, max_size=25), st.text(alphabet="abcdжx", min_size=1, max_size=14), st.integers(0, 2))
@settings(max_examples=400, deadline=None)
def test_typo_index_finds_every_key_within_its_budget(keys, explicit, query, own):
    from rapidfuzz.distance import OSA

    from detectors.fuzzyindex import PREFIX
    from detectors.native import TypoIndex

    explicit = explicit[: len(keys)]
    index = TypoIndex(keys, explicit, PREFIX)
    expected = []
    for kid, ((key, budget), by_hand) in enumerate(zip(keys, explicit, strict=True)):
        cap = budget if by_hand else min(budget, own)
        d = OSA.distance(query, key)
        if 0 < d <= cap:
            expected.append((kid, d))
    assert index.lookup(query, own) == tuple(expected)
    assert index.max_budget == max(b for _, b in keys)


def test_str_subclasses_are_read_as_str():
    class Text(str):
        pass

    assert MATCHER.core.screen([Text("L a r k s u p r"), "nothing"]) == [0]
    assert MATCHER.core.analyse(Text("Larkspur"), 0)[0] == "larkspur"
    with pytest.raises(TypeError):
        MATCHER.core.screen([b"Larkspur"])


# ---- the sealed span screen -----------------------------------------------------------------------


@st.composite
def span_case(draw):
    compact = draw(st.text(alphabet="abж中1", max_size=40))
    bound = [True] + [draw(st.booleans()) for _ in compact[1:]] + [True] if compact else [True]
    lmin = draw(st.integers(1, 4))
    lmax = draw(st.integers(lmin, 12))
    pieces = [compact[a:b] for a in range(len(compact)) for b in range(a + 1, len(compact) + 1)]
    keys = draw(st.sets(st.sampled_from(pieces) if pieces else st.just("ab"), max_size=6))
    keys |= draw(st.sets(st.text(alphabet="abж", min_size=1, max_size=6), max_size=4))
    r = draw(st.integers(0, 2**63 - 1)) | 1
    nbits = draw(st.sampled_from([8, 24]))  # 8 bits: nearly every span passes the screen
    return compact, bound, lmin, lmax, sorted(keys), r, nbits


@given(span_case())
@settings(max_examples=300, deadline=None)
def test_span_screen_finds_every_key_on_word_boundaries(case):
    from detectors.native import SpanScreen
    from detectors.sealed import poly_hash

    compact, bound, lmin, lmax, keys, r, nbits = case
    verified = []

    def verify(span):
        verified.append(span)
        return keys.index(span) if span in keys else None

    values = {poly_hash(k, r) >> (24 - nbits) for k in keys}
    screen = SpanScreen(values, r, nbits, lmin, lmax, verify)
    expected = [
        (a, b, keys.index(compact[a:b]))
        for a in range(len(compact))
        for b in range(a + lmin, min(a + lmax, len(compact)) + 1)
        if bound[a] and bound[b] and compact[a:b] in keys
    ]
    calls = []
    for _ in range(2):  # the second time, spans that matched nothing are mostly remembered
        verified.clear()
        assert sorted(screen.find(compact, bound)) == sorted(expected)
        assert all(poly_hash(s, r) >> (24 - nbits) in values for s in verified)
        calls.append(len(verified))
    assert calls[1] <= calls[0]


def test_span_screen_verifies_a_colliding_word_once():
    from detectors.native import SpanScreen
    from detectors.sealed import poly_hash

    r = 0x9E3779B97F4A7C15
    verified = []

    def verify(span):
        verified.append(span)
        return (7,) if span == "kodel" else None

    # "model" and "kodel" differ in the first character only: the top bits of the hash agree.
    assert poly_hash("model", r) == poly_hash("kodel", r)
    screen = SpanScreen({poly_hash("kodel", r)}, r, 24, 3, 8, verify)
    text = "model" * 50 + "kodel"
    bound = [i % 5 == 0 for i in range(len(text) + 1)]
    assert screen.find(text, bound) == [(250, 255, (7,))]
    assert verified == ["model", "kodel"]


def test_span_screen_refuses_what_it_cannot_use():
    from detectors.native import SpanScreen

    with pytest.raises(ValueError, match="odd"):
        SpanScreen([], 2, 24, 3, 8, None)
    with pytest.raises(ValueError, match="bits"):
        SpanScreen([1 << 24], 3, 24, 3, 8, None)
    with pytest.raises(ValueError, match="lmin"):
        SpanScreen([], 3, 24, 5, 4, None)
    with pytest.raises(ValueError, match="not both"):
        Core(TABLES, Automaton(["ab"], [0]), MATCHER._token_code, True, 16, SpanScreen([], 3, 24, 3, 8, None))


def test_sealed_screen_is_safe_to_share_between_threads():
    # Verification runs Python, so threads interleave inside the walk and its miss memory.
    from detectors.native import SpanScreen
    from detectors.sealed import poly_hash

    r = 0x9E3779B97F4A7C15

    def verify(span):
        return (0,) if span == "larkspur" else None

    screen = SpanScreen({poly_hash("larkspur", r) >> 16}, r, 8, 3, 12, verify)  # 8 bits: many collisions
    core = Core(TABLES, None, MATCHER._token_code, False, 20, screen)
    batch = [f"t{i} Lark-spur x{i}" if i % 3 == 0 else f"t{i} plain words lark {i}" for i in range(300)]
    assert screened_in_threads(core, batch) == [[i for i in range(300) if i % 3 == 0]] * 4
    assert core.analyse("see Lark.spur", 0)[2] == [(3, 11, (0,))]
