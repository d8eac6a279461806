"""The codename screen: which texts of a batch may mention a codename (a superset, never less).

Most messages mention nothing, and the screen makes them cheap: a handful of C calls over the
batch joined into one string, plus one cached verdict per distinct whitespace-delimited token of
the ORIGINAL text. Only the texts it names get the full match (`CodenameMatcher.match`), so it
must name every text the full match would report; a hypothesis test holds it to that.

What the full match reports, and where the screen finds it:
- an exact spelling, with separators or none: one Aho-Corasick pass over the folded batch (the
  automaton skips whitespace), each hit checked for word boundaries at both ends; the leet
  readings only for the texts that need them (`normalize.readings`);
- a typo inside one whitespace-delimited token ("Larksupr", "ProjectLarksupr",
  "L.a.r.k.s.u.p.r"): that token's verdict, which folds the token alone in every reading and
  looks up exactly the strings the full match would. Folding never joins across whitespace, so a
  token folds alone just as it folds inside its text;
- a typo across tokens: a multi-word term ("Iron Medow") has a mistyped word inside one token
  (above); a run of spaced letters ("L a r k s u p r") has single letters on both sides of
  whitespace, which the verdicts flag and a regex over the batch's verdict bytes finds.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import TYPE_CHECKING

from .normalize import (
    CLASS_RUNS,
    FOLD,
    LEET,
    LEET_I,
    PLAIN,
    SENTINEL,
    SEP,
    SPLIT,
    TRANSITION,
    readings,
)

if TYPE_CHECKING:
    from .codenames import CodenameMatcher

# Between two texts of a batch: a token that folds to itself and matches nothing, so no exact
# match, no token and no run of letters can straddle two texts. Texts holding NUL are never
# batched (the engine scans them alone).
JOIN = f" {SENTINEL * 2} "
JOIN_TOKEN = SENTINEL * 2

# A token's verdict, one byte: it starts or ends with a single letter (in some reading), it folds
# to nothing in some reading (a run of letters passes through it), or some string in it is within
# the edit budget of a key (hot). SEPARATOR marks the token between two texts.
LEAD, TRAIL, CLEAR, HOT, SEPARATOR = 1, 2, 4, 8, 16


def _klass(bit: int) -> bytes:
    return re.escape(bytes(c for c in range(16) if c & bit))


# A hot token, or a single letter, tokens that fold to nothing, and a single letter again.
CANDIDATE = re.compile(
    b"[%s]|[%s][%s]*[%s]" % (_klass(HOT), _klass(TRAIL), _klass(CLEAR), _klass(LEAD))
)


class Owners:
    """Position in a joined batch -> index of the text it belongs to (counting JOIN tokens)."""

    def __init__(self, joined: str):
        self.cuts = [m.start() for m in re.finditer(JOIN_TOKEN, joined)]

    def __call__(self, pos: int) -> int:
        return bisect_right(self.cuts, pos)


def screen(matcher: CodenameMatcher, texts: Sequence[str]) -> set[int]:
    """Indices of `texts` that may hold a codename (texts must not contain NUL)."""
    if not texts or not matcher.forms:
        return set()
    found: set[int] = set()
    ascii_idx: list[int] = []
    other_idx: list[int] = []
    for i, t in enumerate(texts):
        (ascii_idx if t.isascii() else other_idx).append(i)
    for idx in (ascii_idx, other_idx):
        if not idx:
            continue
        joined = JOIN.join([texts[i] for i in idx])
        if matcher.fuzzy:
            found.update(_hot_tokens(matcher, joined, idx, idx is ascii_idx))
        if idx is ascii_idx:
            found.update(_exact_ascii(matcher, joined, texts, idx, PLAIN))
        else:
            found.update(_exact_other(matcher, joined, texts, idx, PLAIN))
    # The leet readings, for the texts that need them.
    by_reading = _leet_readings(texts, ascii_idx, other_idx, found)
    for reading, idx in by_reading.items():
        part = [i for i in idx if texts[i].isascii()]
        if part:
            joined = JOIN.join([texts[i] for i in part])
            found.update(_exact_ascii(matcher, joined, texts, part, reading))
        part = [i for i in idx if not texts[i].isascii()]
        if part:
            joined = JOIN.join([texts[i] for i in part])
            found.update(_exact_other(matcher, joined, texts, part, reading))
    return found


# ASCII -> a for a letter, 1 for a leet digit or symbol, 0 for another digit, a space for the
# rest: every match of `normalize.LEET_HINT` is then a letter next to a run of 1s, or one
# character away from it.
_HINT_SHAPE = str.maketrans(
    {
        chr(i): SENTINEL if chr(i) == SENTINEL
        else "a" if chr(i).isalpha()
        else "1" if chr(i) in "013457@$!|"
        else "0" if chr(i).isdigit()
        else " "
        for i in range(128)
    }
)  # fmt: skip
def _leet_readings(texts, ascii_idx, other_idx, found) -> dict[int, list[int]]:
    """Texts (not yet found) per leet reading they may need: a superset of what
    `normalize.readings` says, found for ASCII texts by a few C searches per batch."""
    hinted: set[int] = set()
    if ascii_idx:
        sh = JOIN.join([texts[i] for i in ascii_idx]).translate(_HINT_SHAPE)
        starts = None
        p = sh.find("1")
        while p >= 0:  # str.find: much faster here than a regex's finditer
            e = p + 1
            while sh[e : e + 1] == "1":
                e += 1
            if "a" in (sh[p - 1 : p], sh[e : e + 1]) or sh[p - 2 : p] == "a " or sh[e : e + 2] == " a":
                if starts is None:
                    starts = list(accumulate((len(texts[i]) + len(JOIN) for i in ascii_idx), initial=0))
                hinted.add(ascii_idx[bisect_right(starts, p) - 1])
            p = sh.find("1", e)
    hinted.update(i for i in other_idx if len(readings(texts[i])) > 1)
    out: dict[int, list[int]] = {LEET: [], LEET_I: []}
    for i in sorted(hinted - found):
        out[LEET].append(i)
        t = texts[i]
        if "1" in t or "|" in t or "!" in t:
            out[LEET_I].append(i)
    return out


def _hot_tokens(matcher: CodenameMatcher, joined: str, idx: list[int], ascii: bool) -> set[int]:
    """Texts with a hot token or single letters on both sides of a cut (see the module doc)."""
    if ascii:  # cut at every separator, not only whitespace: pieces of URLs and code repeat
        joined = joined.translate(SPLIT)
    codes = bytes(map(matcher.token_codes.__getitem__, joined.split()))
    return {idx[codes.count(SEPARATOR, 0, m.start())] for m in CANDIDATE.finditer(codes)}


def _start_of(f: str, end: int, length: int) -> int:
    """Where a match of `length` letters ending at `end` starts (the automaton skips spaces)."""
    start, left = end, length - 1
    while left:
        start -= 1
        if f[start] != " ":
            left -= 1
    return start


def _bound(f: str, cls: str, q: int, base: int = 0) -> bool:
    """A word starts at position q (a compact character) of folded text `f`, as
    `normalize.fold` decides; `cls[q - base]` is the class of q's original character."""
    if q == 0 or q >= len(f) or f[q - 1] == " " or f[q] == " ":
        return True
    c2 = ord(cls[q - base])
    if c2 & 8:
        return False  # inside one original character
    c1 = ord(cls[q - 1 - base]) & 7
    after = ord(cls[q + 1 - base]) & 7 if q + 1 < len(f) and f[q + 1] != " " else SEP
    return bool(TRANSITION[(c1 * 8 + c2) * 8 + after])


def _exact_ascii(matcher: CodenameMatcher, joined: str, texts, idx: list[int], reading: int):
    """Texts (ASCII) with an exact spelling on word boundaries."""
    f = joined.translate(FOLD[reading])
    cls = joined.translate(CLASS_RUNS[reading])  # ASCII: one class per character
    starts = list(accumulate((len(texts[i]) + len(JOIN) for i in idx), initial=0))
    out: set[int] = set()
    for end, (length, _fids) in matcher.automaton.iter(f, ignore_white_space=True):
        owner = bisect_right(starts, end) - 1
        if idx[owner] not in out:
            start = _start_of(f, end, length)
            if _bound(f, cls, start) and _bound(f, cls, end + 1):
                out.add(idx[owner])
    return out


def _exact_other(matcher: CodenameMatcher, joined: str, texts, idx: list[int], reading: int):
    """Texts (not ASCII) with an exact spelling on word boundaries: each text with a match gets
    its classes (one C call) to check the boundaries."""
    f = joined.translate(FOLD[reading])
    owner = None
    out: set[int] = set()
    classes: dict[int, tuple[str, int]] = {}
    for end, (length, _fids) in matcher.automaton.iter(f, ignore_white_space=True):
        if owner is None:
            owner = Owners(f)
        k = owner(end)
        i = idx[k]
        if i in out:
            continue
        if k not in classes:  # the text's folded part starts after the JOIN before it
            base = owner.cuts[k - 1] + len(JOIN) - 1 if k else 0
            classes[k] = (texts[i].translate(CLASS_RUNS[reading]), base)
        cls, base = classes[k]
        start = _start_of(f, end, length)
        if _bound(f, cls, start, base) and _bound(f, cls, end + 1, base):
            out.add(i)
    return out
