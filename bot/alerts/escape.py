"""Make untrusted text safe to show: invisible characters visible, no pings, bounded length.

Everything that came from a chat (excerpt, matched text, author and channel names) passes through
`display` first (controls and bidi shown as escapes, cut on a character boundary), then through the
markup escaper of the platform it is sent to.
"""

from __future__ import annotations

import re
import unicodedata

EXCERPT_LIMIT = 300  # code points, after invisible characters are spelled out
ELLIPSIS = "…"
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")  # "&", "&am", "&lt" ... cut off before their ";"
ZWSP = "\u200b"  # inserted after "@" so no mention can form; not a ping, still readable

# Categories shown as escapes: controls, format (bidi, zero-width), surrogates, private use,
# line/paragraph separators. A leak hidden behind U+202E must be visible to the moderator.
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _spell(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    if unicodedata.category(ch) in _INVISIBLE:
        cp = ord(ch)
        return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"
    return ch


def _attaches_to_previous(ch: str) -> bool:
    # Combining marks and variation selectors belong to the character before them
    # (a spelled-out escape is several characters and never combines).
    return len(ch) == 1 and unicodedata.category(ch) in ("Mn", "Mc", "Me")


def display(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """Invisible characters spelled out, then cut to `limit` code points on a character boundary."""
    units = [_spell(ch) for ch in text]
    total = sum(len(u) for u in units)
    if total <= limit:
        return "".join(units)
    budget = limit - len(ELLIPSIS)
    kept, size = 0, 0
    while kept < len(units) and size + len(units[kept]) <= budget:
        size += len(units[kept])
        kept += 1
    # Never leave a base character without its marks: drop the whole cluster instead.
    while 0 < kept < len(units) and _attaches_to_previous(units[kept]):
        kept -= 1
    return "".join(units[:kept]) + ELLIPSIS


def no_pings(text: str) -> str:
    """Break every "@" so @everyone, @here, <@id> and <@&role> can never notify anyone."""
    return text.replace("@", "@" + ZWSP)


def slack_mrkdwn(text: str) -> str:
    """Slack mrkdwn: &, <, > escaped (so no <!channel>, <@U1> or links), and no @-pings."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return no_pings(text)


_DISCORD_SPECIAL = set("\\*_~`|>[]()#<:-")


def discord_markdown(text: str) -> str:
    """Discord markdown: formatting characters backslash-escaped and no @-pings."""
    escaped = "".join("\\" + ch if ch in _DISCORD_SPECIAL else ch for ch in text)
    return no_pings(escaped)


def clamp(text: str, limit: int) -> str:
    """At most `limit` code points, cut before a dangling backslash, entity or mark."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ELLIPSIS), 0)]
    # Each trim can expose another dangling piece (a backslash before a cut combining mark),
    # so trim until nothing changes.
    while True:
        before = len(cut)
        # An escape split in half would show the raw character it protected.
        if partial := _PARTIAL_ENTITY.search(cut):
            cut = cut[: partial.start()]
        if cut.endswith("\\") and (len(cut) - len(cut.rstrip("\\"))) % 2 == 1:
            cut = cut[:-1]
        if cut.endswith("@"):
            cut = cut[:-1]  # its ZWSP was cut off
        while cut and _attaches_to_previous(text[len(cut)]):
            cut = cut[:-1]
        if len(cut) == before:
            return cut + ELLIPSIS
