"""The codename screen: which texts of a batch may mention a codename (a superset, never less).

Most messages mention nothing, and the screen makes them cheap: one C call for the whole batch
(`native.Core.screen`), which folds each text through cached per-character tables, walks the
terms' automaton and looks each piece of the text up in a cache of verdicts. Only the texts it
names get the full match (`CodenameMatcher.match`), so it must name every text the full match
would report; a differential test holds it to that.

What the full match reports, and where the screen finds it:
- an exact spelling, with separators or none: the automaton over the compact text, each hit
  checked for word boundaries at both ends, in the plain reading and in the leet readings when
  a leet digit or symbol stands within two characters of a letter (a superset of
  `normalize.readings`);
- a typo inside one piece of text, cut where characters separate in every reading
  ("Larksupr", "ProjectLarksupr", "L4rksupr"): that piece's verdict, which folds the piece
  alone in each reading and looks up exactly the strings the full match would (tokens, words,
  runs of single letters). Folding is per character, and a cut is a separator in every reading,
  so a piece folds alone just as it folds inside its text, boundaries included;
- a typo across pieces: a multi-word term ("Iron Medow") has a mistyped word, or an exact
  anchoring word, inside one piece (above); a run of spaced letters ("L a r k s u p r") has
  single letters on both sides of a cut, with only pieces that fold to nothing between them,
  which the verdict bits (LEAD, TRAIL, CLEAR) show.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .native import CLEAR, HOT, LEAD, TRAIL
from .normalize import SENTINEL

if TYPE_CHECKING:
    from .codenames import CodenameMatcher

__all__ = ["CLEAR", "HOT", "JOIN", "JOIN_TOKEN", "LEAD", "TRAIL", "Owners", "screen"]

# Between two texts of a batch joined into one string (pattern, digest and Unicode screens): a
# token that folds to itself and matches nothing, so nothing can straddle two texts. Texts
# holding NUL are never batched (the engine scans them alone).
JOIN = f" {SENTINEL * 2} "
JOIN_TOKEN = SENTINEL * 2


class Owners:
    """Position in a joined batch -> index of the text it belongs to (counting JOIN tokens)."""

    def __init__(self, joined: str):
        self.cuts = [m.start() for m in re.finditer(JOIN_TOKEN, joined)]

    def __call__(self, pos: int) -> int:
        return bisect_right(self.cuts, pos)


def screen(matcher: CodenameMatcher, texts: Sequence[str]) -> set[int]:
    """Indices of `texts` that may hold a codename."""
    if not texts or not matcher.forms:
        return set()
    return set(matcher.core.screen(texts))
