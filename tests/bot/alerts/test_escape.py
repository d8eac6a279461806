"""Untrusted text in alerts: no pings, invisible characters visible, bounded, cut cleanly."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.alerts.escape import (
    ELLIPSIS,
    EXCERPT_LIMIT,
    ZWSP,
    clamp,
    discord_markdown,
    display,
    slack_mrkdwn,
)

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

# Text rich in the characters that matter: mentions, markup, bidi, controls, combining marks.
PIECES = (
    list("@<>!&#*_~`|\\:-()[]")
    + list(BIDI)
    + [
        "\n",
        "\x00",
        "\u0301",
        "\u200b",
        "e",
        "everyone",
        "here",
        "channel",
        "\U0001f600",
        "\ufe0f",
        "@everyone",
        "@here",
        "<@123>",
        "<@&9>",
        "<!channel>",
        "<!here>",
        "<#C1>",
        "hi ",
        "\u202egnp.exe",
        "\u0065\u0301",
        "`x`",
        "**b**",
        "&amp;",
    ]
)
chat_text = st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=200).map("".join)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain", "plain"),
        ("a\u202eb", "a\\u202eb"),
        ("line1\nline2\tx", "line1\\nline2\\tx"),
        ("nul\x00", "nul\\u0000"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("tag\U000e0041", "tag\\U000e0041"),
    ],
)
def test_display_spells_out_invisible_characters(text, shown):
    assert display(text) == shown


@pytest.mark.parametrize(
    ("escape", "text", "expected"),
    [
        (slack_mrkdwn, "<!channel> & <@U1>", "&lt;!channel&gt; &amp; &lt;@\u200bU1&gt;"),
        (slack_mrkdwn, "@here", "@\u200bhere"),
        (discord_markdown, "@everyone", "@\u200beveryone"),
        (discord_markdown, "<@123>", "\\<@\u200b123\\>"),
        (discord_markdown, "**bold** `x`", "\\*\\*bold\\*\\* \\`x\\`"),
    ],
)
def test_platform_escapes(escape, text, expected):
    assert escape(text) == expected


def test_cut_never_separates_a_letter_from_its_accent():
    text = "a" * (EXCERPT_LIMIT - 2) + "e\u0301" * 5
    out = display(text)
    assert out.endswith("a" + ELLIPSIS)
    assert len(out) <= EXCERPT_LIMIT


def test_cut_never_splits_an_escape():
    out = display("x" * 296 + "\u202e" * 3)
    assert out == "x" * 296 + ELLIPSIS  # "\u202e" would not fit whole


@settings(max_examples=300, deadline=None)
@given(chat_text)
def test_display_is_bounded_visible_and_a_prefix(text):
    out = display(text)
    full = display(text, limit=10**9)
    assert len(out) <= EXCERPT_LIMIT
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in out)
    if out != full:  # cut: a prefix of the full rendering plus an ellipsis, on a boundary
        kept = out.removesuffix(ELLIPSIS)
        assert full.startswith(kept)
        assert not unicodedata.combining(full[len(kept)])


@settings(max_examples=300, deadline=None)
@given(chat_text, st.sampled_from([slack_mrkdwn, discord_markdown]))
def test_escaped_text_never_pings(text, escape):
    out = escape(display(text))
    assert not re.search(r"@(everyone|here|channel)|<@|<!|<#", out.replace("\\<", ""))
    assert all(out[i + 1] == ZWSP for i, c in enumerate(out) if c == "@")
    if escape is slack_mrkdwn:
        assert "<" not in out and ">" not in out  # no Slack control sequence at all
    assert not set(out) & set(BIDI)


@example("@\u061c\u061c\n<#C1>hi 000\x1f0000\x1f<\u0301@", 54, discord_markdown)  # a mark behind an escape
@settings(max_examples=300, deadline=None)
@given(
    chat_text,
    st.integers(min_value=1, max_value=400),
    st.sampled_from([slack_mrkdwn, discord_markdown]),
)
def test_clamp_respects_limits_and_never_leaves_half_an_escape(text, limit, escape):
    escaped = escape(display(text, 1000))
    out = clamp(escaped, limit)
    assert len(out) <= limit
    body = out.removesuffix(ELLIPSIS) if len(escaped) > limit else out
    if escape is discord_markdown:
        trailing = len(body) - len(body.rstrip("\\"))
        assert trailing % 2 == 0  # no dangling backslash escaping what follows
    else:
        assert not re.search(r"&[a-z]*$", body)  # no half entity
    assert not re.search(r"@(everyone|here|channel)|<@|<!", out.replace("\\<", ""))
