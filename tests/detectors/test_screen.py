"""The codename screen against the full match without it: it may name too much, never too little."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.codenames import CodenameMatcher
from detectors.screen import screen
from detectors.watchlist import load_watchlist

MATCHER = CodenameMatcher(
    load_watchlist(
        {
            "codenames": [
                {"id": "lark", "term": "Larkspur", "aliases": ["Project Larkspur"]},
                {"id": "iron", "term": "Iron Meadow"},
                {"id": "corfal", "term": "Corfal Ospha"},
                {"id": "gpt", "term": "GPT-5 Turbo"},
                {"id": "build", "term": "Build 20245"},
                {"id": "cat", "term": "cat"},
                {"id": "quill", "term": "Quillfeather", "fuzzy": False},
                {"id": "zhar", "term": "Жар Птица"},
                {"id": "kumo", "term": "雲雀計画"},
                {"id": "nimbus", "term": "Nimbusfalcon", "max_edits": 2},
            ]
        }
    ).codenames
)


def named_by_full_match(texts):
    return {i for i, t in enumerate(texts) if MATCHER.match(t)}


# Texts the full match reports, one per way of reaching it; the screen must name each.
REPORTED = [
    "Larkspur",
    "LarkSupr",  # a typo of the whole token across a camelCase cut (missed by an earlier screen)
    "ProjectLarksupr",
    "L a r k s u p r",
    "L.a.r.k.s.u.p.r",
    "L a r k s.u.p r",
    "x L a ** r k s p u r",  # a run through a piece that folds to nothing
    "L4rksupr",
    "1ron Medow",
    "Iron Medow",
    "Coral Ospha",  # an ordinary-word typo vouched for by an exact anchor
    "gpt5 turbo",
    "Lárkspür",
    "Ｌａｒｋｓｐｕｒ",
    "Lark\u200bsupr",
    "Жар Птицы",
    "жарптица",
    "我们的雲雀計画",
    "Nimbsufalcn",
    "quill feather",
]


@pytest.mark.parametrize("text", REPORTED)
def test_every_reported_text_is_named(text):
    assert MATCHER.match(text), "the case itself must be a mention"
    assert screen(MATCHER, [text]) == {0}


@pytest.mark.parametrize(
    "text",
    ["the weights are out", "concatenate", "lark spud", "Build 20246", "Quilfeather", "", "v1.2 ok"],
)
def test_ordinary_text_is_not_named(text):
    assert not MATCHER.match(text)
    assert screen(MATCHER, [text]) == set()


pieces = st.sampled_from(
    ["Larkspur", "Larksupr", "Lark", "spur", "Supr", "L", "a", "r", "k", "s", "u", "p", "I", "1",
     "!", "|", "@", "$", "4", "5", "0", "3", "7", "Iron", "Medow", "Meadow", "1ron", "Coral",
     "Ospha", "GPT", "5", "Turbo", "Build", "20245", "20246", "cat", "Quill", "feather", "Жар",
     "Птицы", "птица", "雲雀", "計画", "Nimbus", "falcn", "Ｌａｒｋ", "á", "\u0301", "\u200b",
     "\u00ad", " ", "  ", "\n", "-", "-\n", ".", "_", "*", "**", "||", "#", "/", "🙂", "ﬁ", "㏂",
     "\x00", "Project", "🇱🇦🇷🇰", "🇸🇵🇺🇷", "🇺🇸", "🇱", "ʟᴀʀᴋ", "ꜱᴜᴘʀ", "🅻🅰🆁🅺", "Ⓢⓟⓤⓡ"]
)  # fmt: skip
texts = st.lists(pieces, max_size=16).map("".join) | st.text(max_size=40)


@given(st.lists(texts, min_size=1, max_size=24))
@settings(max_examples=600, deadline=None)
def test_screen_names_every_text_the_full_match_reports(batch):
    assert named_by_full_match(batch) <= screen(MATCHER, batch)


@given(st.lists(texts, min_size=1, max_size=24))
@settings(max_examples=100, deadline=None)
def test_a_batch_is_screened_as_its_texts_one_by_one(batch):
    assert screen(MATCHER, batch) == {i for i, t in enumerate(batch) if screen(MATCHER, [t])}
