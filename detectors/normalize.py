"""Text -> folded text for matching, with a map from every folded character back to the original.

Folding erases the disguises a leaker uses: case, compatibility forms (fullwidth, math letters),
diacritics, zero-width and other format characters, Unicode confusables (the Unicode Consortium's
confusables data, via `confusable_homoglyphs`), and, in the "leet" reading, digits and symbols
standing for letters. Every other character is a separator. Matching then runs on `compact`, the
folded text with separators removed, and decides word boundaries from the original text.

Several readings exist because leetspeak is ambiguous: in "v1.0" the digits are digits, in
"L4rkspur" they are letters, and "1" (like "|" and "!") stands for "l" in "1ark" but for "i" in
"L1ght". Reading 0 (plain) is always scanned; reading 1 (leet, 1 = l) only when the text has a
digit or symbol next to a letter; reading 2 (leet, 1 = i) only when it also has a 1, | or !.

Per-character results are computed once, here in Python, and cached: in translation tables for
`str.translate`, and in the native core's tables (native.py), which `fold` and the codename
screen run on.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import pairwise

import numpy as np

from .native import Tables

# Character classes of ORIGINAL characters, used to find word boundaries (camelCase, scripts).
# SYMBOL: a symbol showing a letter (regional indicators, circled and squared letters): a run of
# them is a word of its own, even glued to plain letters ("🇺🇸Larkspur").
SEP, LOWER, UPPER, DIGIT, CASELESS, DROP, SYMBOL = range(7)

PLAIN, LEET, LEET_I = 0, 1, 2  # the readings
LEET_DIGITS = {"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t"}
LEET_SYMBOLS = {"@": "a", "$": "s", "!": "l", "|": "l"}
LEET_AS_I = {"1": "i", "!": "i", "|": "i"}  # the other reading of the i/l-ambiguous glyphs

# Texts that need the leet reading: a digit next to a letter (glued, or one separator away as in
# "L a r k 5"), a leet symbol between letters ("L@rk", but not "hi!"), @ or $ after a letter,
# glued or one separator away ("minor$@" is Minorsa, "Thuur @nny" is Thuur Anny), or $ before
# one ("$ilwen" is Silwen; "$HOME" read as "shome" matches nothing). A message opening with
# "@user" stays plain: that is a mention.
LEET_HINT = re.compile(
    r"[^\W\d_][\W_]?[013457]|[013457][\W_]?[^\W\d_]|[^\W\d_][@$!|]+[^\W\d_]"
    r"|[^\W\d_][\W_]?[@$]|\$[^\W\d_]"
)


@cache
def _confusables() -> dict[str, str]:
    """Non-ASCII character -> the ASCII letter or digit it is confusable with."""
    with resources.files("confusable_homoglyphs").joinpath("confusables.json").open() as fh:
        data = json.load(fh)
    out: dict[str, str] = {}
    for char, group in data.items():
        if len(char) != 1 or char.isascii():
            continue
        protos = [g["c"].replace("\u200e", "") for g in group]
        protos = [p for p in protos if len(p) == 1 and p.isascii() and p.isalnum()]
        if protos:
            # Prefer a small letter, then a capital, then a digit: that is what the eye reads.
            protos.sort(key=lambda p: (not p.islower(), not p.isupper(), p))
            out[char] = protos[0]
    return out


# Letter-like symbols NFKC leaves alone, named in the Unicode data as showing one Latin letter.
_LETTER_NAMES = re.compile(
    r"REGIONAL INDICATOR SYMBOL LETTER ([A-Z])"  # 🇱: pairs of them render as flags
    r"|(?:NEGATIVE )?(?:CIRCLED|SQUARED) LATIN CAPITAL LETTER ([A-Z])"  # 🅛 🅻 (Ⓛ 🄻 fold by NFKC)
    r"|(?:MODIFIER )?LATIN LETTER SMALL CAPITAL ([A-Z])"  # ʟ ᴀ ꜱ
)


_ONE_LETTER = tuple(f" {x}" for x in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")  # a cheap test before the regex


@cache
def letter_symbols() -> dict[str, str]:
    """Non-ASCII character -> the ASCII letter its Unicode name says it shows (regional
    indicators, negative circled and squared letters, small capitals), from `unicodedata`.
    Planes 0 and 1 hold every such character."""
    out: dict[str, str] = {}
    for code in range(0x80, 0x20000):
        c = chr(code)
        name = unicodedata.name(c, "")
        m = _LETTER_NAMES.fullmatch(name) if name.endswith(_ONE_LETTER) else None
        if m and unicodedata.category(c)[0] != "M":  # combining small capitals stay marks
            out[c] = next(g for g in m.groups() if g).lower()
    return out


# Separates messages when a batch is screened as one string: folding keeps it, so no match and
# no token can straddle two messages. Texts are scanned with NUL replaced by a space.
SENTINEL = "\x00"


def _fold_ascii(c: str, leet: int) -> str:
    if c == SENTINEL:
        return SENTINEL
    if "a" <= c <= "z" or "A" <= c <= "Z":
        return c.lower()
    if leet == LEET_I and c in LEET_AS_I:
        return LEET_AS_I[c]
    if "0" <= c <= "9":
        return LEET_DIGITS.get(c, c) if leet else c
    if leet and c in LEET_SYMBOLS:
        return LEET_SYMBOLS[c]
    return " "


def fold_char(c: str, leet: int) -> str:
    """The folded form of one character: letters/digits, ' ' for a separator, '' to drop it."""
    if c.isascii():
        return _fold_ascii(c, leet)
    cat = unicodedata.category(c)
    if cat == "Cf" or cat[0] == "M":
        return ""  # zero-width, bidi controls, variation selectors, lone marks: invisible
    letter = letter_symbols().get(c)
    if letter is not None:
        return letter
    out = []
    for x in unicodedata.normalize("NFKC", c).casefold():
        for y in unicodedata.normalize("NFD", x):
            if y.isascii():
                out.append(_fold_ascii(y, leet))
                continue
            ycat = unicodedata.category(y)
            if ycat[0] == "M":
                continue  # diacritics
            if ycat[0] in "LN":
                proto = _confusables().get(y)
                out.append(_fold_ascii(proto, leet) if proto else y.casefold())
            else:
                out.append(" ")
    return "".join(out)


def char_class(c: str, leet: int) -> int:
    """Boundary class of an original character (see SEP..DROP)."""
    folded = fold_char(c, leet)
    if folded == "":
        return DROP
    if not folded.strip():
        return SEP
    if c.isascii():
        if c.isdigit():
            return LOWER if leet and c in LEET_DIGITS else DIGIT
        if c.isupper():
            return UPPER
        return LOWER
    cat = unicodedata.category(c)
    if cat == "So" and folded.isascii() and folded.isalpha():
        return SYMBOL
    if cat in ("Lu", "Lt"):
        return UPPER
    if cat == "Ll":
        return LOWER
    if cat[0] == "N":
        return DIGIT
    # Caseless scripts (CJK, Arabic, ...) have no spaces between words: every char is a boundary,
    # unless the confusables data reads it as a Latin letter.
    return LOWER if folded.isascii() else CASELESS


class _Table(dict):
    """A `str.translate` table filled on first sight of each code point."""

    def __init__(self, fn):
        super().__init__()
        self._fn = fn

    def __missing__(self, code: int):
        value = self._fn(chr(code))
        self[code] = value
        return value


def _fold_value(leet: int):
    def fn(c: str):
        f = fold_char(c, leet)
        return None if f == "" else f  # None keeps ASCII text on CPython's fast translate path

    return fn


READINGS = (PLAIN, LEET, LEET_I)
FOLD = {r: _Table(_fold_value(r)) for r in READINGS}


def _shape_of(c: str) -> str:
    if c == SENTINEL:
        return SENTINEL  # batches split back into their texts
    if c.isascii():
        if c.islower():
            return "a"
        if c.isupper():
            return "A"
        if c.isdigit():
            return "1" if c in LEET_DIGITS else "0"
        return "!" if c in LEET_SYMBOLS else " "
    cat = unicodedata.category(c)
    if cat in ("Lu", "Lt"):
        return "A"
    if cat[0] == "L":
        return "a"
    return "0" if cat == "Nd" else " "


# Text -> its shape: a small letter, A capital, 1 leet digit, 0 other digit, ! leet symbol, ' '
# anything else. Substring tests on the shape are much cheaper than regex searches on the text.
SHAPE = _Table(_shape_of)


# Any character that reads differently in the leet readings (SHAPE "1" or "!").
LEET_ANY = re.compile(r"[013457@$!|]")


def readings(text: str, shape: str | None = None) -> tuple[int, ...]:
    """The readings `text` needs: plain always, leet when letters may hide behind digits or
    symbols, and leet with 1 = i when an i/l-ambiguous glyph is there too. (`shape`, when
    given, is `text.translate(SHAPE)` and spares a search.)"""
    if shape is not None:
        if "1" not in shape and "!" not in shape:
            return (PLAIN,)
    elif LEET_ANY.search(text) is None:
        return (PLAIN,)
    if LEET_HINT.search(text) is not None:
        if "1" in text or "|" in text or "!" in text:
            return READINGS
        return (PLAIN, LEET)
    return (PLAIN,)


def fold_fast(text: str, leet: int = PLAIN) -> str:
    """Folded text with separators as spaces (no offset map): the hot path."""
    return text.translate(FOLD[leet])


@dataclass(frozen=True, slots=True)
class Folded:
    """A text folded for matching, with the maps back to the original.

    `compact` is the folded text without separators. For a compact position p, `orig[p]` is the
    index of the original character it came from; `bound[p]` says a word starts at p (camelCase,
    digits, scripts and separators all count), `sepbound[p]` says a separator (or a script
    change) stands just before p. Both boundary arrays have len(compact) + 1 entries.
    """

    text: str
    folded: str  # the folded text with separators as spaces
    compact: str
    orig: np.ndarray
    bound: np.ndarray
    sepbound: np.ndarray

    def span(self, cstart: int, cend: int) -> tuple[int, int]:
        """Original [start, end) of compact [cstart, cend)."""
        return int(self.orig[cstart]), int(self.orig[cend - 1]) + 1

    def spaced(self, which: np.ndarray) -> str:
        """`compact` with a space inserted at each True entry of a boundary array (vectorised)."""
        cuts = np.flatnonzero(which[1:-1]) + 1
        codes = _codes(self.compact)
        return np.insert(codes, cuts, 32).astype(np.uint32).tobytes().decode("utf-32-le", "surrogatepass")

    def segments(self, which: np.ndarray) -> list[tuple[int, int]]:
        """Compact [start, end) runs between the True entries of a boundary array."""
        cuts = np.flatnonzero(which)
        cuts = cuts.tolist()
        return [(a, b) for a, b in pairwise(cuts) if b > a]


def _codes(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _transition_table() -> bytes:
    """(class, next class, the class after it or SEP if separated) -> 1 a script change, 2 a
    word boundary (camelCase, "XML|Parser", letters against digits): one lookup per character."""
    table = bytearray(8 * 8 * 8)
    for c1 in range(8):
        for c2 in range(8):
            for c3 in range(8):
                bits = 1 if CASELESS in (c1, c2) else 0
                camel = c1 == LOWER and c2 == UPPER
                acronym = c1 == UPPER and c2 == UPPER and c3 == LOWER
                digit = (c1 == DIGIT) != (c2 == DIGIT)
                symbol = (c1 == SYMBOL) != (c2 == SYMBOL)
                if camel or acronym or digit or symbol:
                    bits |= 2
                table[(c1 * 8 + c2) * 8 + c3] = bits
    return bytes(table)


TRANSITION = _transition_table()
# The per-character folds and classes above, cached in C: `fold` and the codename screen run on
# them (native.py).
TABLES = Tables(fold_char, char_class, TRANSITION, SEP, CASELESS)


def fold(text: str, leet: int = PLAIN) -> Folded:
    """Fold `text` and compute the offset map and word boundaries (one C pass)."""
    f, compact, orig, bound, sepbound = TABLES.fold(text, leet)
    return Folded(
        text, f, compact, np.frombuffer(orig, np.int64), np.frombuffer(bound, bool),
        np.frombuffer(sepbound, bool),
    )  # fmt: skip


def fold_term(term: str) -> tuple[str, tuple[str, ...]]:
    """A watchlist term -> (compact form, its words as written), folded like text."""
    fd = fold(term)
    words = tuple(fd.compact[a:b] for a, b in fd.segments(fd.bound))
    return fd.compact, words
