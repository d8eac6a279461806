"""Codename matching, as a specification: every disguise is found, ordinary text is not."""

import pytest

from detectors import Engine, load_watchlist

WATCHLIST = {
    "codenames": [
        {"id": "cn-larkspur", "term": "Larkspur", "aliases": ["Project Larkspur"], "severity": "high"},
        {"id": "cn-iron-meadow", "term": "Iron Meadow", "severity": "critical"},
        {"id": "cn-cat", "term": "cat", "severity": "low"},
        {"id": "cn-exact", "term": "Quillfeather", "fuzzy": False},
        {"id": "cn-bluefin", "term": "Bluefin", "aliases": ["BF-7 Tuna"]},
    ]
}


@pytest.fixture(scope="module")
def engine():
    return Engine(load_watchlist(WATCHLIST))


def codename_hits(engine, text):
    return [(f.rule_id, text[f.start : f.end]) for f in engine.scan_text(text) if f.kind == "codename"]


# (disguise class, text, rule id, the span that must be reported, as written)
MENTIONS = [
    ("plain", "the Larkspur weights leaked", "cn-larkspur", "Larkspur"),
    ("case", "LARKSPUR is out", "cn-larkspur", "LARKSPUR"),
    ("case-mixed", "lArKsPuR", "cn-larkspur", "lArKsPuR"),
    ("spaced", "L a r k s p u r", "cn-larkspur", "L a r k s p u r"),
    ("dotted", "L.a.r.k.s.p.u.r", "cn-larkspur", "L.a.r.k.s.p.u.r"),
    ("dashed", "L-a-r-k-s-p-u-r", "cn-larkspur", "L-a-r-k-s-p-u-r"),
    ("underscored", "L_a_r_k_s_p_u_r", "cn-larkspur", "L_a_r_k_s_p_u_r"),
    ("asterisks", "L*a*r*k*s*p*u*r", "cn-larkspur", "L*a*r*k*s*p*u*r"),
    ("line-broken", "L\na\nr\nk\ns\np\nu\nr", "cn-larkspur", "L\na\nr\nk\ns\np\nu\nr"),
    ("split-word", "Lark spur", "cn-larkspur", "Lark spur"),
    ("hyphen-linebreak", "the Lark-\nspur run", "cn-larkspur", "Lark-\nspur"),
    ("snake", "lark_spur", "cn-larkspur", "lark_spur"),
    ("hashtag", "#LarkSpur", "cn-larkspur", "LarkSpur"),
    ("camel-inside", "ProjectLarkspurWeights.zip", "cn-larkspur", "ProjectLarkspur"),
    ("zero-width", "Lark\u200bspur", "cn-larkspur", "Lark\u200bspur"),
    ("zwj-soft-hyphen", "Lar\u200dk\u00adspur", "cn-larkspur", "Lar\u200dk\u00adspur"),
    ("diacritics", "Lárkspür", "cn-larkspur", "Lárkspür"),
    ("combining", "La\u0301rkspu\u0308r", "cn-larkspur", "La\u0301rkspu\u0308r"),
    ("fullwidth", "Ｌａｒｋｓｐｕｒ", "cn-larkspur", "Ｌａｒｋｓｐｕｒ"),
    ("math-letters", "𝐋𝐚𝐫𝐤𝐬𝐩𝐮𝐫", "cn-larkspur", "𝐋𝐚𝐫𝐤𝐬𝐩𝐮𝐫"),
    ("cyrillic-confusables", "Lаrkspur", "cn-larkspur", "Lаrkspur"),  # Cyrillic а
    ("greek-confusables", "Larksρur", "cn-larkspur", "Larksρur"),  # Greek rho
    ("leet", "L4rk5pur", "cn-larkspur", "L4rk5pur"),
    ("leet-symbols", "L@rk$pur", "cn-larkspur", "L@rk$pur"),
    ("leet-one-as-l", "1arkspur", "cn-larkspur", "1arkspur"),
    ("leet-one-as-i", "1ron Meadow", "cn-iron-meadow", "1ron Meadow"),
    ("leet-bang-as-i", "Ir0n M3ad0w", "cn-iron-meadow", "Ir0n M3ad0w"),
    ("capital-i-for-l", "IARKSPUR", "cn-larkspur", "IARKSPUR"),
    ("leet-spaced-confusable", "L a r k 5 p u г", "cn-larkspur", "L a r k 5 p u г"),
    ("markdown-bold", "**Larkspur**", "cn-larkspur", "Larkspur"),
    ("spoiler", "||Larkspur||", "cn-larkspur", "Larkspur"),
    ("code-span", "`larkspur`", "cn-larkspur", "larkspur"),
    ("url", "https://example.com/files/larkspur/weights", "cn-larkspur", "larkspur"),
    ("file-name", "larkspur-v2.safetensors", "cn-larkspur", "larkspur"),
    ("possessive", "Larkspur's eval", "cn-larkspur", "Larkspur"),
    ("typo-swap", "Larksupr", "cn-larkspur", "Larksupr"),
    ("typo-drop", "Larkspr", "cn-larkspur", "Larkspr"),
    ("typo-add", "Larksspur", "cn-larkspur", "Larksspur"),
    ("typo-sub", "Larkspor", "cn-larkspur", "Larkspor"),
    ("typo-spaced", "L a r k s u p r", "cn-larkspur", "L a r k s u p r"),
    ("typo-leet", "L4rksp0r", "cn-larkspur", "L4rksp0r"),
    ("alias", "Project Larkspur kickoff", "cn-larkspur", "Project Larkspur"),
    ("alias-joined", "projectlarkspur", "cn-larkspur", "projectlarkspur"),
    ("multi-plain", "Iron Meadow results", "cn-iron-meadow", "Iron Meadow"),
    ("multi-joined", "ironmeadow", "cn-iron-meadow", "ironmeadow"),
    ("multi-hyphen", "iron-meadow", "cn-iron-meadow", "iron-meadow"),
    ("multi-hashtag", "#IronMeadow", "cn-iron-meadow", "IronMeadow"),
    ("multi-dotted", "iron.meadow.tar", "cn-iron-meadow", "iron.meadow"),
    ("multi-url", "https://x.test/iron-meadow/a.zip", "cn-iron-meadow", "iron-meadow"),
    ("multi-typo", "Iron Medow", "cn-iron-meadow", "Iron Medow"),
    ("multi-typo-camel", "IronMedow", "cn-iron-meadow", "IronMedow"),
    ("multi-typo-joined", "ironmedow", "cn-iron-meadow", "ironmedow"),
    ("multi-spaced", "I r o n M e a d o w", "cn-iron-meadow", "I r o n M e a d o w"),
    ("multi-linebreak", "Iron\nMeadow", "cn-iron-meadow", "Iron\nMeadow"),
    ("short-exact", "the cat sat", "cn-cat", "cat"),
    ("short-spaced", "c a t", "cn-cat", "c a t"),
    ("alias-with-digits", "bf-7 tuna", "cn-bluefin", "bf-7 tuna"),
    ("non-fuzzy-exact", "quill feather", "cn-exact", "quill feather"),
    ("cjk-neighbours", "我们的Larkspur项目", "cn-larkspur", "Larkspur"),
    ("regional-indicators", "🇱🇦🇷🇰🇸🇵🇺🇷 soon", "cn-larkspur", "🇱🇦🇷🇰🇸🇵🇺🇷"),
    ("regional-spaced", "🇱 🇦 🇷 🇰 🇸 🇵 🇺 🇷", "cn-larkspur", "🇱 🇦 🇷 🇰 🇸 🇵 🇺 🇷"),
    ("regional-zero-width", "🇱\u200b🇦\u200b🇷\u200b🇰\u200b🇸\u200b🇵\u200b🇺\u200b🇷", "cn-larkspur",
     "🇱\u200b🇦\u200b🇷\u200b🇰\u200b🇸\u200b🇵\u200b🇺\u200b🇷"),
    ("regional-after-a-flag", "🇺🇸larkspur", "cn-larkspur", "larkspur"),  # the flag is a word
    ("regional-typo", "🇱🇦🇷🇰🇸🇺🇵🇷", "cn-larkspur", "🇱🇦🇷🇰🇸🇺🇵🇷"),
    ("squared-negative", "🅻🅰🆁🅺🆂🅿🆄🆁", "cn-larkspur", "🅻🅰🆁🅺🆂🅿🆄🆁"),
    ("squared", "🄻🄰🅁🄺🅂🄿🅄🅁", "cn-larkspur", "🄻🄰🅁🄺🅂🄿🅄🅁"),
    ("circled-negative", "🅛🅐🅡🅚🅢🅟🅤🅡", "cn-larkspur", "🅛🅐🅡🅚🅢🅟🅤🅡"),
    ("circled", "ⓛⓐⓡⓚⓢⓟⓤⓡ", "cn-larkspur", "ⓛⓐⓡⓚⓢⓟⓤⓡ"),
    ("small-capitals", "ʟᴀʀᴋꜱᴘᴜʀ", "cn-larkspur", "ʟᴀʀᴋꜱᴘᴜʀ"),
    ("small-capitals-typo", "ʟᴀʀᴋꜱᴜᴘʀ", "cn-larkspur", "ʟᴀʀᴋꜱᴜᴘʀ"),
    ("multi-regional", "🇮🇷🇴🇳 🇲🇪🇦🇩🇴🇼", "cn-iron-meadow", "🇮🇷🇴🇳 🇲🇪🇦🇩🇴🇼"),
    ("multi-squared-joined", "🅸🆁🅾🅽🅼🅴🅰🅳🅾🆆", "cn-iron-meadow", "🅸🆁🅾🅽🅼🅴🅰🅳🅾🆆"),
    ("multi-small-capitals", "ɪʀᴏɴ ᴍᴇᴀᴅᴏᴡ", "cn-iron-meadow", "ɪʀᴏɴ ᴍᴇᴀᴅᴏᴡ"),
    ("alias-regional", "🇵🇷🇴🇯🇪🇨🇹 🇱🇦🇷🇰🇸🇵🇺🇷", "cn-larkspur", "🇵🇷🇴🇯🇪🇨🇹 🇱🇦🇷🇰🇸🇵🇺🇷"),
    ("alias-small-capitals", "ᴘʀᴏᴊᴇᴄᴛ ʟᴀʀᴋꜱᴘᴜʀ", "cn-larkspur", "ᴘʀᴏᴊᴇᴄᴛ ʟᴀʀᴋꜱᴘᴜʀ"),
    ("short-regional", "🇨 🇦 🇹", "cn-cat", "🇨 🇦 🇹"),
]


@pytest.mark.parametrize("cls,text,rule,span", MENTIONS, ids=[m[0] for m in MENTIONS])
def test_every_disguise_is_found(engine, cls, text, rule, span):
    assert (rule, span) in codename_hits(engine, text)


NOT_MENTIONS = [
    ("inside-longer-word", "concatenate the strings"),
    ("prefix-of-word", "catalogue"),
    ("suffix-of-word", "bobcat"),
    ("term-inside-word", "larkspurred onwards"),
    ("joined-words-typo", "a lark spud"),
    ("near-sentence", "the lark spurred him"),
    ("too-many-typos", "Lrakpsur"),
    ("short-typo", "the cot sat"),
    ("non-fuzzy-typo", "Quilfeather"),
    ("ordinary-sentence", "we could go to the meadow and look at iron ore"),
    ("empty", ""),
    # Flags are pairs of regional indicators: they read as the letters would, no more.
    ("flags", "🇺🇸 🇬🇧 🇫🇷 🇩🇪 🇨🇦 🇹🇷 watch party tonight 🇧🇷🇦🇷"),
    ("flags-glued", "🇨🇦🇹🇷🇮🇹 trip"),  # "catrit": "cat" has no word end there
    ("flag-before-word", "🇨🇦tering"),  # "ca" + "tering": the flag is a word of its own
]


@pytest.mark.parametrize("case,text", NOT_MENTIONS, ids=[n[0] for n in NOT_MENTIONS])
def test_ordinary_text_is_not_a_mention(engine, case, text):
    assert codename_hits(engine, text) == []


def test_ordinary_words_are_not_typos(engine):
    # "meadows" is one edit from "meadow", but an ordinary word: never read as a typo.
    assert codename_hits(engine, "iron meadows") == []
    assert codename_hits(engine, "iron meadov") == [("cn-iron-meadow", "iron meadov")]


def test_finding_names_the_entry_not_the_alias(engine):
    [f] = [f for f in engine.scan_text("Project Larkspur") if f.kind == "codename"]
    assert f.rule_id == "cn-larkspur"
    assert "Project" not in str(f.detail)


def test_typos_score_below_one_and_say_so(engine):
    [f] = engine.scan_text("Larksupr")
    assert f.score < 1.0
    assert f.detail == {"match": "typo", "edits": 1}
    [g] = engine.scan_text("Larkspur")
    assert g.score == 1.0 and g.detail["match"] == "exact"


def test_each_place_reported_once(engine):
    text = "Larkspur, then L a r k s p u r, then larksupr"
    spans = [h[1] for h in codename_hits(engine, text)]
    assert spans == ["Larkspur", "L a r k s p u r", "larksupr"]


@pytest.mark.parametrize(
    "max_edits,text,found",
    [
        (0, "Larksupr", False),
        (1, "Larksupr", True),
        (2, "Lrakspru", True),
        ("auto", "Lrakspru", False),
    ],
)
def test_max_edits_setting(max_edits, text, found):
    e = Engine(load_watchlist({"codenames": [{"id": "x", "term": "Larkspur", "max_edits": max_edits}]}))
    assert bool(e.scan_text(text)) is found


def test_auto_budget_grows_with_length():
    e = Engine(load_watchlist({"codenames": [{"id": "a", "term": "Nimbusfalcon"}, {"id": "b", "term": "Zeta"}]}))
    assert [f.rule_id for f in e.scan_text("Nimbsufalcn")] == ["a"]  # 11 letters: 2 edits
    assert e.scan_text("Zetta") == []  # 4 letters: exact only


def test_many_terms_do_not_interfere():
    terms = [{"id": f"t{i}", "term": f"Zorvane{chr(97 + i % 26)}{i}"} for i in range(2000)]
    terms.append({"id": "target", "term": "Larkspur"})
    e = Engine(load_watchlist({"codenames": terms}))
    assert [f.rule_id for f in e.scan_text("L a r k s p u r")] == ["target"]


@pytest.mark.parametrize(
    "terms,text,expected",
    [
        # An ordinary word near a codename is not a typo of it.
        (["Kodel"], "the model is out", []),
        # A number is never a typo, even read as leetspeak ("74510" ~ "tasio").
        (["Tallo"], "order 74510 shipped", []),
        # Written exactly, a term is not also a typo of its neighbour on the list.
        (["Portal", "Vortal"], "Portal", [("t0", "Portal")]),
        # The longest exact match wins where terms nest inside one another.
        (["Corsil", "Quincorsil"], "Q u i n C o r s i l", [("t1", "Q u i n C o r s i l")]),
        (["Iron", "Iron Meadow"], "Iron Meadow", [("t1", "Iron Meadow")]),
        # An exact word of a multi-word term vouches for a typo in the other, even one that
        # makes an ordinary word ("coral")...
        (["Corfal Ospha"], "Coral Ospha when one call", [("t0", "Coral Ospha")]),
        # ...but an ordinary word vouches for nothing, and a lone word is no mention.
        (["Iron Meadow"], "iron meadows", []),
        (["Corfal Ospha"], "Ospha and coral", []),
        # ...but separate places are separate mentions.
        (["Corsil", "Quincorsil"], "Corsil and Quincorsil", [("t0", "Corsil"), ("t1", "Quincorsil")]),
        # Entries that fold alike are both mentioned: nothing tells them apart.
        (["Rudtorelmek", "Rudtor Elmek"], "Rudto-\nrelmek", [("t0", "Rudto-\nrelmek"), ("t1", "Rudto-\nrelmek")]),
        # Glued CJK characters are no letters of a spaced-out run: no "Anquingriyth" by typo
        # swallows the exact "Quingriyth".
        (["Quingriyth", "Anquingriyth"], "模型 Q u i n g r i y t h", [("t0", "Q u i n g r i y t h")]),
        # Leetspeak may write a whole term in digits ("74131" is "Talel"), though a number is
        # never a typo.
        (["Talel"], "weights 74131 training", [("t0", "74131")]),
        (["Talel"], "weights 74132 training", []),
        (["Build 20245"], "Build 20245", [("t0", "Build 20245")]),
        # ...while a CJK term is still found with a typo, glued or spaced.
        (["雲雀計画書"], "雲雀計画者", [("t0", "雲雀計画者")]),
        (["雲雀計画書"], "雲 雀 計 画 者", [("t0", "雲 雀 計 画 者")]),
    ],
)
def test_resolution_rules(terms, text, expected):
    e = Engine(load_watchlist({"codenames": [{"id": f"t{i}", "term": t} for i, t in enumerate(terms)]}))
    assert codename_hits(e, text) == expected


def test_a_dollar_before_letters_reads_as_s():
    # "$ilwen" is Silwen; read without the $ it would also be a typo of Ixwen ("ilwen").
    engine = Engine(load_watchlist({"codenames": [{"id": "silwen", "term": "Silwen"},
                                                  {"id": "ixwen", "term": "Ixwen"}]}))
    assert codename_hits(engine, "water $ilwen weights") == [("silwen", "$ilwen")]


@pytest.mark.parametrize(("text", "rule", "span"), [
    ("could go minor$@ now", "minorsa", "minor$@"),  # @ and $ after the letters: the leet reading
    ("water $ilwen weights", "silwen", "$ilwen"),  # $ before them
    ("this thuur @nny for", "thuur-anny", "thuur @nny"),  # @ one separator after a letter
])
def test_leet_symbols_at_a_word_edge_are_read(text, rule, span):
    engine = Engine(load_watchlist({"codenames": [{"id": "minorsa", "term": "Minorsa"},
                                                  {"id": "silwen", "term": "Silwen"},
                                                  {"id": "thuur-anny", "term": "Thuur Anny"}]}))
    assert codename_hits(engine, text) == [(rule, span)]
