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

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ahocorasick
from rapidfuzz.distance import OSA

from .fuzzyindex import DeletionIndex
from .normalize import FOLD, SHAPE, Folded, fold, fold_term, readings
from .ordinary import ordinary_words
from .watchlist import CodenameEntry

MIN_TERM_CHARS = 3
_CACHE_LIMIT = 400_000
# Word boundaries inside a token that the slow path also honours (camelCase, "XMLParser",
# letters against digits); the screen splits on them too, so it never misses a typo'd word.
_WORDY = re.compile(r"[a-z][A-Z]|[A-Z][A-Z][a-z]|[A-Za-z][0-9]|[0-9][A-Za-z]")
_WORD_SPLIT = re.compile(
    r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])"
)
_LATIN_RUN = re.compile(r"[a-z0-9]+")
_LETTER_DIGIT = ("a0", "0a", "A0", "0A", "a1", "1a", "A1", "1A")


def _wordy(shape: str) -> bool:
    """Whether a token may hold several words (camelCase, "XMLParser", letters and digits)."""
    if "aA" in shape or "AAa" in shape:
        return True
    return ("0" in shape or "1" in shape) and any(p in shape for p in _LETTER_DIGIT)
# Three or more single characters separated by separators: "L a r k", "L.a.r.k".
_RUN = re.compile(r"(?<!\S)\S(?: +\S(?!\S)){2,}")


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


class CodenameMatcher:
    """All codename entries of a watchlist, compiled for matching."""

    def __init__(self, entries: Sequence[CodenameEntry]):
        self.entries = tuple(entries)
        self._forms: list[_Form] = []
        self._ac = ahocorasick.Automaton(ahocorasick.STORE_ANY)
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
                fid = len(self._forms)
                self._forms.append(_Form(ei, compact, words, budget, word_budgets))
                exact.setdefault(compact, []).append(fid)
                keys.append((compact, budget))
                self._meta.append((fid, -1))
                explicit.append(entry.max_edits != "auto")
                if len(words) > 1:
                    for j, (w, b) in enumerate(zip(words, word_budgets, strict=True)):
                        keys.append((w, b))
                        self._meta.append((fid, j))
                        explicit.append(entry.max_edits != "auto")
        for compact, fids in exact.items():
            self._ac.add_word(compact, (len(compact), tuple(fids)))
        if exact:
            self._ac.make_automaton()
        self._keys = keys
        self._explicit = explicit
        self._index = DeletionIndex(keys)
        self._maxlen = max((len(k) for k, b in keys if b > 0), default=0)
        self._ordinary = ordinary_words() if self._index.max_budget else frozenset()
        # Per-token verdicts, shared by scanning threads. They are replaced, never cleared in
        # place, so a reader holding the old objects still sees a consistent pair.
        self._verdicts: dict[str, tuple[tuple[int, int], ...]] = {}
        self._hot: set[str] = set()  # tokens whose verdict is non-empty

    # ---- per-token verdicts (cached) --------------------------------------------------------

    def _lookup(self, token: str) -> tuple[tuple[int, int], ...]:
        """(key id, distance) of every key within its budget of `token`."""
        cached = self._verdicts.get(token)
        if cached is not None:
            return cached
        hits: tuple[tuple[int, int], ...] = ()
        if MIN_TERM_CHARS <= len(token) <= self._maxlen + 2:
            found = []
            # A written word gets no more typos than its own length allows ("call" is never a
            # typo of "Cally"), and an ordinary word is no typo at all ("model" is not "Kodel").
            ordinary = token in self._ordinary
            own = auto_edits(len(token))
            for kid in self._index.candidates(token):
                key, budget = self._keys[kid]
                if ordinary:
                    budget = 0
                elif not self._explicit[kid]:
                    budget = min(budget, own)
                d = OSA.distance(token, key, score_cutoff=budget)
                if 0 < d <= budget:  # exact spellings are the automaton's job
                    found.append((kid, d))
            hits = tuple(found)
        if len(self._verdicts) > _CACHE_LIMIT:  # bounded memory on endless novel tokens
            self._verdicts, self._hot = {}, set()
        self._verdicts[token] = hits
        if hits:
            self._hot.add(token)
        return hits

    def _any_hot(self, tokens: Iterable[str]) -> bool:
        toks = set(tokens)
        if not toks.isdisjoint(self._hot):
            return True
        novel = toks.difference(self._verdicts)
        return any(self._lookup(t) for t in novel)

    # ---- fast screen ------------------------------------------------------------------------

    def _maybe(self, text: str, shape: str, leet: int) -> bool:
        """False when no codename can be in `text` in this reading (the common case)."""
        f = text.translate(FOLD[leet])
        compact = f.replace(" ", "")
        for _ in self._ac.iter(compact):
            return True
        if not self._index.max_budget:
            return False
        tokens = f.split()
        if self._any_hot(tokens):
            return True
        if _wordy(shape) and self._any_hot(
            _WORD_SPLIT.sub(" ", text).translate(FOLD[leet]).split()
        ):
            return True
        if not text.isascii() and self._any_hot(_LATIN_RUN.findall(f)):
            return True  # Latin words glued to a caseless script ("我们的Larksupr")
        try:
            has_run = b"\x01\x01\x01" in bytes(map(len, tokens))
        except ValueError:  # a token longer than 255: ask the regex
            has_run = True
        return has_run and any(
            self._lookup("".join(m.group().split())) for m in _RUN.finditer(f)
        )

    # ---- full match on one reading ------------------------------------------------------------

    def _exact(self, fd: Folded) -> Iterable[tuple[int, int, int, int]]:
        bound = fd.bound
        for end, (length, fids) in self._ac.iter(fd.compact):
            s, e = end - length + 1, end + 1
            if bound[s] and bound[e]:
                for fid in fids:
                    yield fid, s, e, 0

    def _fuzzy(self, fd: Folded) -> Iterable[tuple[int, int, int, int]]:
        compact = fd.compact
        words = fd.segments(fd.bound)
        tokens = fd.segments(fd.sepbound)
        singles = [(s, e) for s, e in tokens if e - s == 1]
        runs, cur = [], []
        for seg in singles:
            if cur and seg[0] != cur[-1][1]:
                runs.append(cur)
                cur = []
            cur.append(seg)
        runs.append(cur)
        spans = set(tokens) | set(words) | {(r[0][0], r[-1][1]) for r in runs if len(r) >= 3}
        for s, e in spans:
            for kid, d in self._lookup(compact[s:e]):
                fid, j = self._meta[kid]
                if j < 0 and d > 0 and not _all_digits(fd, s, e):
                    yield fid, s, e, d
        # Word-by-word alignment for multi-word terms.
        word_text = [compact[s:e] for s, e in words]
        for i, w in enumerate(word_text):
            for kid, _ in self._lookup(w):
                fid, j = self._meta[kid]
                if j < 0:
                    continue
                form = self._forms[fid]
                i0, n = i - j, len(form.words)
                if i0 < 0 or i0 + n > len(words):
                    continue
                total = 0
                for jj in range(n):
                    tw, fw, b = word_text[i0 + jj], form.words[jj], form.word_budgets[jj]
                    dd = 0 if tw == fw else OSA.distance(tw, fw, score_cutoff=b)
                    total += dd
                    if dd > b or total > form.budget:
                        break
                else:
                    s, e = words[i0][0], words[i0 + n - 1][1]
                    if total and not _all_digits(fd, s, e):
                        yield fid, s, e, total

    def scan(self, text: str) -> list[CodenameMatch]:
        """Every codename mention in `text`, one per entry and place (best match kept)."""
        if not self._forms:
            return []
        found: list[CodenameMatch] = []
        shape = text.translate(SHAPE)
        for leet in readings(text, shape):
            if not self._maybe(text, shape, leet):
                continue
            fd = fold(text, leet)
            for fid, s, e, d in (*self._exact(fd), *self._fuzzy(fd)):
                form = self._forms[fid]
                start, end = fd.span(s, e)
                found.append(CodenameMatch(self.entries[form.entry], start, end, d, len(form.compact)))
        return _best_per_place(found)


def _all_digits(fd: Folded, s: int, e: int) -> bool:
    """Whether compact [s, e) was written with digits only: a number is never a typo ("74510")."""
    start, end = fd.span(s, e)
    return fd.text[start:end].replace(" ", "").isdigit()


def _best_per_place(matches: list[CodenameMatch]) -> list[CodenameMatch]:
    """One match per place: where matches overlap, the longest wins, then the exact one.

    The longest explains the most: "Q u i n C o r s i l" is Quincorsil, not also Corsil inside
    it, and "Rudor Elmek" is a typo of "Rudtor Elmek", not also the term "Elmek". At equal length
    an exact spelling beats a typo ("Portal" is not also a typo of "Vortal").
    """
    matches.sort(key=lambda m: (-(m.end - m.start), m.edits, m.start, m.entry.id))
    kept: list[CodenameMatch] = []
    for m in matches:
        if not any(m.start < k.end and k.start < m.end for k in kept):
            kept.append(m)
    kept.sort(key=lambda m: (m.start, m.end, m.entry.id))
    return kept
