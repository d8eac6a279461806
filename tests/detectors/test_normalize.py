"""Folding: idempotent, spans map back into the original, disguises fold to the same letters."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.normalize import fold, fold_fast, fold_term

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200
) | st.from_regex(r"[A-Za-z0-9 .\-_*|@$!\n]{0,80}", fullmatch=True)


@pytest.mark.parametrize(
    "text,compact",
    [
        ("Larkspur", "larkspur"),
        ("L a r k s p u r", "larkspur"),
        ("Ｌａｒｋ", "lark"),
        ("Lárk", "lark"),
        ("La\u0301rk", "lark"),
        ("lark\u200b\u2060\ufeffspur", "larkspur"),
        ("гоod", "rood"),  # Cyrillic г and о read as Latin letters
        ("IIl1", "iil1"),  # 1 is a digit unless read as leet
        ("**bold** ||spoiler||", "boldspoiler"),
        ("ﬁle", "file"),  # compatibility ligature expands
        ("🇱🇦🇷🇰", "lark"),  # regional indicators
        ("🅻🅰🆁🅺 🅛🅐🅡🅚", "larklark"),  # negative squared and circled letters
        ("ⓁⒶⓇⓀ 🄻🄰🅁🄺", "larklark"),  # circled and squared: NFKC folds them already
        ("ʟᴀʀᴋꜱᴘᴜʀ", "larkspur"),  # small capitals
        ("La\u1dder", "lar"),  # a combining small capital is a mark: dropped
    ],
)
def test_plain_reading(text, compact):
    assert fold(text).compact == compact


@pytest.mark.parametrize(
    "text,reading,compact",
    [
        ("L4rk5pur", 1, "larkspur"),
        ("1337", 1, "leet"),
        ("L@rk$pur", 1, "larkspur"),
        ("v2", 1, "v2"),
        ("L1ght", 2, "light"),
        ("1ark", 1, "lark"),
    ],
)
def test_leet_readings(text, reading, compact):
    assert fold(text, reading).compact == compact


def test_letter_symbols_come_from_the_unicode_names():
    import unicodedata

    from detectors.normalize import fold_char, letter_symbols

    table = letter_symbols()
    assert len(table) >= 26 + 26 + 26 + 20  # regional indicators, negative circled, squared, small caps
    for c, letter in table.items():
        assert unicodedata.name(c).endswith(f" {letter.upper()}")
        assert all(fold_char(c, r) == letter for r in (0, 1, 2))
    assert {"🇺", "🅻", "ᴀ", "ꜱ", "ʟ"} <= set(table)


@given(texts)
@settings(max_examples=300, deadline=None)
def test_folding_is_idempotent(text):
    once = fold_fast(text)
    assert fold_fast(once) == once
    compact = fold(text).compact
    assert fold(compact).compact == compact


@given(texts, st.sampled_from([0, 1, 2]))
@settings(max_examples=300, deadline=None)
def test_offsets_point_inside_the_original(text, leet):
    fd = fold(text, leet)
    assert len(fd.orig) == len(fd.compact)
    assert len(fd.bound) == len(fd.sepbound) == len(fd.compact) + 1
    if len(fd.orig):
        assert fd.orig.min() >= 0 and fd.orig.max() < len(text)
        assert (fd.orig[1:] >= fd.orig[:-1]).all()  # monotone: spans never run backwards
        for a, b in fd.segments(fd.bound):
            start, end = fd.span(a, b)
            assert 0 <= start < end <= len(text)


@given(texts)
@settings(max_examples=200, deadline=None)
def test_separator_boundaries_are_word_boundaries(text):
    fd = fold(text)
    assert not (fd.sepbound & ~fd.bound).any()


@pytest.mark.parametrize(
    "term,compact,words",
    [
        ("Iron Meadow", "ironmeadow", ("iron", "meadow")),
        ("IronMeadow", "ironmeadow", ("iron", "meadow")),
        ("GPT-5 Turbo", "gpt5turbo", ("gpt", "5", "turbo")),
        ("Larkspur", "larkspur", ("larkspur",)),
    ],
)
def test_terms_fold_like_text(term, compact, words):
    assert fold_term(term) == (compact, words)


def _reference_bounds(text: str, leet: int) -> tuple[list[bool], list[bool]]:
    """Word boundaries as DESIGN.md words them, one character at a time (the specification)."""
    from detectors.normalize import (
        CASELESS,
        DIGIT,
        LOWER,
        SEP,
        SYMBOL,
        UPPER,
        char_class,
        fold_char,
    )

    compact: list[tuple[int, bool]] = []  # (original index, a separator stands before it)
    gap = False
    for i, c in enumerate(text):
        for ch in fold_char(c, leet):
            if ch == " ":
                gap = True
            else:
                compact.append((i, gap))
                gap = False
    m = len(compact)
    cls = [char_class(text[o], leet) for o, _ in compact]
    bound, sepbound = [True] * (m + 1), [True] * (m + 1)
    for k in range(1, m):
        c1, c2 = cls[k - 1], cls[k]
        same = compact[k - 1][0] == compact[k][0]  # one character folded to several
        sep = compact[k][1]
        after = cls[k + 1] if k + 1 < m and not compact[k + 1][1] else SEP
        script = CASELESS in (c1, c2) and not same
        wordy = (c1 == LOWER and c2 == UPPER) or (c1 == UPPER and c2 == UPPER and after == LOWER)
        wordy = wordy or (c1 == DIGIT) != (c2 == DIGIT) or (c1 == SYMBOL) != (c2 == SYMBOL)
        wordy = wordy and not same
        sepbound[k] = sep or script
        bound[k] = sep or script or wordy
    return bound, sepbound


@given(texts | st.from_regex(r"[A-Za-z0-9ÀÉßΣσЖж中文🙂🇱🇦ᴀʟ🅻Ⓛ\u200b\u0301 .\-]{0,40}", fullmatch=True),
       st.sampled_from([0, 1, 2]))
@settings(max_examples=300, deadline=None)
def test_boundaries_follow_the_specification(text, leet):
    fd = fold(text, leet)
    bound, sepbound = _reference_bounds(text, leet)
    assert fd.bound.tolist() == bound
    assert fd.sepbound.tolist() == sepbound
