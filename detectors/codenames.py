"""Codename matching: exact after folding, separators anywhere, typos aligned to words.

What counts as a mention (DESIGN.md, "Matching semantics"):
- exact: the folded term appears in the compact text (separators removed) starting and ending
  on word boundaries, so "L a r k s p u r", "Lark-\\nspur" and "#LarkSpur" match but "cat" in
  "concatenate" does not;
- typo, whole: one token (separator-delimited), one word (camelCase/digit-delimited) or one run of
  spaced single letters is within the term's edit budget of the whole term ("Larksupr",
  "ironmedow");
- typo, word by word: consecutive words align one-to-one with the term's words, each within its
  own budget and the sum within the term's ("Iron Medow", "IronMedow"). Words are never joined to
  reach a term by typo, so "lark spud" is not "Larkspur".

Speed: a message with no candidate costs two C calls (translate, Aho-Corasick) and a few set
operations; per-token fuzzy verdicts are cached, so the edit-distance work is paid once per
distinct token, not per message.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise

import ahocorasick
import numpy as np
from rapidfuzz.distance import OSA

from .fuzzyindex import PREFIX
from .native import CLEAR, HOT, LEAD, TRAIL, Automaton, Core, TypoIndex
from .normalize import (
    CASELESS,
    FOLD,
    PLAIN,
    READINGS,
    TABLES,
    Folded,
    char_class,
    fold_term,
    readings,
)
from .ordinary import ordinary_words
from .screen import screen
from .watchlist import CodenameEntry

MIN_TERM_CHARS = 3
_CACHE_LIMIT = 400_000


def auto_edits(n: int) -> int:
    """The `max_edits = "auto"` budget for a string of n letters: 0 up to 4, 1 up to 8, 2 beyond."""
    return 0 if n <= 4 else 1 if n <= 8 else 2


def check_term(term: str) -> str | None:
    """Why a term cannot be matched safely, or None."""
    compact, _ = fold_term(term)
    if not compact:
        return "has no letters or digits after normalisation"
    if len(compact) < MIN_TERM_CHARS:
        return f"is too short after normalisation ({compact!r}): at least {MIN_TERM_CHARS} letters or digits"
    return None


@dataclass(frozen=True, slots=True)
class _Form:
    """One term or alias of an entry, folded."""

    entry: int
    compact: str
    words: tuple[str, ...]
    budget: int
    word_budgets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CodenameMatch:
    entry: CodenameEntry
    start: int  # original text, code points
    end: int
    edits: int
    length: int  # folded length of the form matched (for the score)

    @property
    def score(self) -> float:
        return 1.0 if not self.edits else round(1 - self.edits / max(self.length, 1), 3)


def _budgets(entry: CodenameEntry, compact: str, words: tuple[str, ...]) -> tuple[int, tuple]:
    if not entry.fuzzy:
        return 0, tuple(0 for _ in words)
    if entry.max_edits == "auto":
        total = auto_edits(len(compact))
        return total, tuple(min(total, auto_edits(len(w))) for w in words)
    total = int(entry.max_edits)
    # An explicit budget still never lets a word be rewritten wholesale.
    return total, tuple(min(total, len(w) // 3) for w in words)


def _spans(fd: Folded) -> tuple[list[tuple[int, int]], set[tuple[int, int]]]:
    """(words, every compact span looked up as a whole): tokens, words and maximal runs of
    three or more single-character tokens ("L a r k"). A run does not cross between a caseless
    script and letters ("模型 Q u i n" is not a spaced-out "?? quin"): glued CJK characters are
    single-character tokens too, and a typo would read them as letters."""
    tokens = fd.segments(fd.sepbound)
    words = fd.segments(fd.bound)
    spans = set(tokens)
    spans.update(words)
    caseless = _marked(fd, _CASELESS_MARKS)
    run_start = run_len = 0
    for s, e in (*tokens, (-1, -1)):
        if e - s == 1 and run_len and s == run_start + run_len and caseless[s] == caseless[s - 1]:
            run_len += 1
            continue
        if run_len >= 3:
            spans.add((run_start, run_start + run_len))
        run_start, run_len = (s, 1) if e - s == 1 else (0, 0)
    return words, spans


class CodenameMatcher:
    """All codename entries of a watchlist, compiled for matching."""

    def __init__(self, entries: Sequence[CodenameEntry]):
        self.entries = tuple(entries)
        self.forms: list[_Form] = []
        exact: dict[str, list[int]] = {}
        keys: list[tuple[str, int]] = []
        self._meta: list[tuple[int, int]] = []  # key id -> (form id, word index or -1 = whole)
        explicit: list[bool] = []  # key id -> budget set by hand (not capped by token length)
        for ei, entry in enumerate(self.entries):
            for term in (entry.term, *entry.aliases):
                compact, words = fold_term(term)
                if len(compact) < MIN_TERM_CHARS:
                    continue
                budget, word_budgets = _budgets(entry, compact, words)
                fid = len(self.forms)
                self.forms.append(_Form(ei, compact, words, budget, word_budgets))
                exact.setdefault(compact, []).append(fid)
                keys.append((compact, budget))
                self._meta.append((fid, -1))
                explicit.append(entry.max_edits != "auto")
                if len(words) > 1:
                    for j, (w, b) in enumerate(zip(words, word_budgets, strict=True)):
                        keys.append((w, b))
                        self._meta.append((fid, j))
                        explicit.append(entry.max_edits != "auto")
        self._exact_forms = {compact: tuple(fids) for compact, fids in exact.items()}
        self._index = TypoIndex(keys, explicit, PREFIX)
        self.fuzzy = self._index.max_budget > 0  # some key tolerates typos
        self._maxlen = max((len(k) for k, b in keys if b > 0), default=0)
        self._ordinary = ordinary_words() if self.fuzzy else frozenset()
        # Words of multi-word terms that anchor an alignment when written exactly: "Coral Ospha"
        # is "Corfal Ospha" (the exact "Ospha" vouches for the typo, even one that makes an
        # ordinary word); an ordinary word anchors nothing ("iron meadows" is not "Iron Meadow").
        self._anchors: dict[str, list[tuple[int, int]]] = {}
        for fid, form in enumerate(self.forms):
            if len(form.words) > 1 and form.budget:
                for j, w in enumerate(form.words):
                    if len(w) >= MIN_TERM_CHARS and w not in self._ordinary:
                        self._anchors.setdefault(w, []).append((fid, j))
        # A token holding more characters that no key has than the largest budget is no typo of
        # anything (numbers, mostly): one C call instead of an index probe.
        self._foreign = {ord(c): None for c in {c for k, b in keys if b > 0 for c in k}}
        # Per-token verdicts, shared by scanning threads (racing on a dict is safe; a cleared
        # cache only costs recomputation).
        self._verdicts: dict[str, tuple[tuple[int, int], ...]] = {}
        # The screen and the per-text analysis in C, on the same terms (native.py); it caches
        # `_token_code`'s verdicts by the characters of each piece of text.
        terms = Automaton(self._exact_forms, self._exact_forms.values()) if exact else None
        self.core = Core(TABLES, terms, self._token_code, self.fuzzy, _CACHE_LIMIT)

    @cached_property
    def automaton(self) -> ahocorasick.Automaton:
        """The exact forms in a pyahocorasick automaton: compact form -> (its length, form ids).
        Built on first use, for callers that walk the terms themselves; matching uses `core`."""
        auto = ahocorasick.Automaton(ahocorasick.STORE_ANY)
        for compact, fids in self._exact_forms.items():
            auto.add_word(compact, (len(compact), fids))
        if self._exact_forms:
            auto.make_automaton()
        return auto

    # ---- per-token verdicts (cached) --------------------------------------------------------

    def _lookup(self, token: str) -> tuple[tuple[int, int], ...]:
        """(key id, distance) of every key within its budget of `token`."""
        cached = self._verdicts.get(token)
        if cached is not None:
            return cached
        hits: tuple[tuple[int, int], ...] = ()
        # A written word gets no more typos than its own length allows ("call" is never a typo
        # of "Cally"), and an ordinary word is no typo at all ("model" is not "Kodel").
        if (
            MIN_TERM_CHARS <= len(token) <= self._maxlen + 2
            and len(token.translate(self._foreign)) <= self._index.max_budget
            and token not in self._ordinary
        ):
            hits = self._index.lookup(token, auto_edits(len(token)))  # exact: the automaton's job
        if len(self._verdicts) > _CACHE_LIMIT:  # bounded memory on endless novel tokens
            self._verdicts = {}
        self._verdicts[token] = hits
        return hits

    def _token_code(self, token: str) -> int:
        """The screen's verdict on one piece of original text (`piece_code`)."""
        return piece_code(self.core, token, self._hot)

    def _hot(self, span: str) -> bool:
        """Whether the full match would act on this span: a typo of a key, or an anchor."""
        return bool(self._lookup(span)) or span in self._anchors

    # ---- full match ---------------------------------------------------------------------------

    def _typos(self, compact: str, spans, words, word_digits: bytes) -> Iterator[tuple[int, int, int, int]]:
        """(form id, compact start, end, edits) of every typo: a span within a whole form's
        budget, or consecutive words aligned one-to-one with a multi-word form's words."""
        verdicts, lookup, meta, anchors = self._verdicts, self._lookup, self._meta, self._anchors
        for s, e in spans:
            token = compact[s:e]
            hits = verdicts.get(token)  # inlined `_lookup` hit: a dense text asks this a lot
            for kid, d in lookup(token) if hits is None else hits:
                fid, j = meta[kid]
                if j < 0 and d > 0:
                    yield fid, s, e, d
        # Word-by-word alignment for multi-word terms.
        word_text = [compact[s:e] for s, e in words]
        for i, w in enumerate(word_text):
            if word_digits[i]:
                continue
            hits = verdicts.get(w)
            if hits is None:
                hits = lookup(w)
            if not hits and w not in anchors:
                continue
            starts = [meta[kid] for kid, _ in hits]
            for fid, j in (*starts, *anchors.get(w, ())):
                if j < 0:
                    continue
                form = self.forms[fid]
                i0, n = i - j, len(form.words)
                if i0 < 0 or i0 + n > len(words):
                    continue
                total = 0
                for jj in range(n):
                    tw, fw, b = word_text[i0 + jj], form.words[jj], form.word_budgets[jj]
                    dd = 0 if tw == fw else OSA.distance(tw, fw, score_cutoff=b)
                    total += dd
                    if dd > b or total > form.budget or (dd and word_digits[i0 + jj]):
                        break
                else:
                    if total:
                        yield fid, words[i0][0], words[i0 + n - 1][1], total

    def match(self, text: str) -> list[CodenameMatch]:
        """Every codename mention in `text`, without the screen (for texts it named)."""
        return match_text(self.core, text, self._typos if self.fuzzy else None, self._form)

    def _form(self, fid: int) -> tuple[CodenameEntry, int]:
        form = self.forms[fid]
        return self.entries[form.entry], len(form.compact)

    def scan(self, text: str) -> list[CodenameMatch]:
        """Every codename mention in `text`, one per entry and place (best match kept)."""
        if not self.forms or not text:
            return []
        if not screen(self, [text]):
            return []
        return self.match(text)


Typos = Callable[[str, list, list, bytes], Iterable[tuple[int, int, int, int]]]


def match_text(core: Core, text: str, typos: Typos | None, form: Callable[[int], tuple]) -> list[CodenameMatch]:
    """Every mention in `text`, one per entry and place: the core's exact hits (values: form
    ids) and `typos(compact, spans, words, word_digits)` -> (form id, start, end, edits), in
    every reading the text needs; `form(fid)` -> (entry, folded length). Plain and sealed
    matchers share it, each with its own core and typos."""
    found: list[CodenameMatch] = []
    seen: set[tuple[int, int, int, int]] = set()  # a match every reading finds is one match
    for leet in readings(text):
        compact, orig, exact, spans, words, word_digits, *_ = core.analyse(text, leet)
        hits = [(fid, s, e, 0) for s, e, fids in exact for fid in fids]
        if typos is not None:
            hits += typos(compact, spans, words, word_digits)
        if hits:
            at = memoryview(orig).cast("q")  # compact offset -> original offset
            for fid, s, e, d in hits:
                key = (fid, at[s], at[e - 1] + 1, d)
                if key not in seen:
                    seen.add(key)
                    entry, length = form(fid)
                    found.append(CodenameMatch(entry, key[1], key[2], d, length))
    return _best_per_place(found)


def piece_code(core: Core, token: str, hot: Callable[[str], bool]) -> int:
    """The screen's verdict on one piece of original text, a token cut where characters
    separate in every reading (see screen.py): folded alone in each reading, it looks up
    exactly the strings the full match would look up there (`hot`). Plain and sealed matchers
    share it, each with its own `hot`."""
    if token.isascii() and token.isdigit():  # a number: never a typo, a letter of a run if one digit
        return LEAD | TRAIL if len(token) == 1 else 0
    folds: dict[str, int] = {}
    for r in READINGS:  # a reading that folds the token alike adds nothing
        folds.setdefault(token.translate(FOLD[r]), r)
    code = 0
    for r in folds.values():
        compact, _, _, spans, _, _, tokens, first, last = core.analyse(token, r, False)
        if not tokens:
            code |= CLEAR
            continue
        if first == 1:
            code |= LEAD
        if last == 1:
            code |= TRAIL
        if not code & HOT and any(hot(compact[s:e]) for s, e in spans):
            code |= HOT
    return code


class _Marks(dict):
    """`str.translate` table: a character that passes `test` -> "1", any other -> "0"."""

    def __init__(self, test):
        super().__init__()
        self._test = test

    def __missing__(self, code: int) -> str:
        self[code] = "1" if self._test(chr(code)) else "0"
        return self[code]


_DIGIT_MARKS = _Marks(str.isdigit)
_CASELESS_MARKS = _Marks(lambda c: char_class(c, PLAIN) == CASELESS)  # the same in every reading


def _marked(fd: Folded, marks: _Marks) -> bytes:
    """b"1" or b"0" per compact character of `fd`: whether its original character is marked."""
    per_text = fd.text.translate(marks)
    if "1" not in per_text:
        return b"0" * len(fd.compact)
    return np.frombuffer(per_text.encode("ascii"), np.uint8)[fd.orig].tobytes()


def _digit_spans(fd: Folded, spans: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """The spans written with digits only: a number is never a typo ("74510"), and neither is
    a word of a multi-word term ("Build 20246" is not "Build 20245")."""
    per_char = _marked(fd, _DIGIT_MARKS)
    if b"1" not in per_char:
        return set()
    return {(a, b) for a, b in spans if b"0" not in per_char[a:b]}


def _best_per_place(matches: list[CodenameMatch]) -> list[CodenameMatch]:
    """One match per place: where matches overlap, the longest wins, then the exact one.

    The longest explains the most: "Q u i n C o r s i l" is Quincorsil, not also Corsil inside
    it, and "Rudor Elmek" is a typo of "Rudtor Elmek", not also the term "Elmek". At equal length
    an exact spelling beats a typo ("Portal" is not also a typo of "Vortal"). Entries that tie
    exactly (the same span, as many edits: "Rudtorelmek" and "Rudtor Elmek" fold alike) are all
    reported: nothing tells them apart, and dropping one would hide its mention.

    Kept places never overlap one another (ties share one place), so each candidate is checked
    against its neighbours only: a text dense with mentions costs n log n, not n squared.
    """
    matches.sort(key=lambda m: (m.start, m.end, m.entry.id))
    if all(a.end <= b.start for a, b in pairwise(matches)):
        return matches  # nothing overlaps (the common case, even in a dense text)
    matches.sort(key=lambda m: (-(m.end - m.start), m.edits, m.start, m.entry.id, -m.length))
    starts: list[int] = []  # kept places, disjoint, sorted by start (so by end too)
    places: list[tuple[int, int, int, set[str]]] = []  # (start, end, edits, entry ids)
    kept: list[CodenameMatch] = []
    for m in matches:
        i = bisect_right(starts, m.start)
        before = places[i - 1] if i else None  # the last place starting at or before m
        after = places[i] if i < len(places) else None
        if after is not None and after[0] < m.end:
            continue  # overlaps a longer (or better) place that starts inside m
        if before is not None and before[1] > m.start:
            if (before[0], before[1], before[2]) != (m.start, m.end, m.edits) or m.entry.id in before[3]:
                continue
            before[3].add(m.entry.id)  # an exact tie: reported too
        else:
            starts.insert(i, m.start)
            places.insert(i, (m.start, m.end, m.edits, {m.entry.id}))
        kept.append(m)
    kept.sort(key=lambda m: (m.start, m.end, m.entry.id))
    return kept
