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
from itertools import pairwise

import ahocorasick
import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from .fuzzyindex import DeletionIndex
from .normalize import (
    CLS_ASCII,
    DIGIT,
    FOLD,
    LEET,
    LEET_ANY,
    LEET_I,
    LOWER,
    PLAIN,
    READINGS,
    SENTINEL,
    SPLIT,
    UPPER,
    Folded,
    fold,
    fold_term,
    readings,
)
from .ordinary import ordinary_words
from .screen import CANDIDATE, CLEAR, HOT, JOIN_TOKEN, LEAD, SEPARATOR, TRAIL, screen
from .watchlist import CodenameEntry

MIN_TERM_CHARS = 3
_CACHE_LIMIT = 400_000


def _transitions(reading: int) -> re.Pattern[str]:
    """Adjacent ASCII characters with a word boundary between them in this reading (camelCase,
    "XMLParser", letters against digits), as `normalize.fold` decides them."""
    cls = CLS_ASCII[reading]
    lo, up, dg = (re.escape("".join(chr(i) for i in range(128) if cls[i] == k)) for k in (LOWER, UPPER, DIGIT))
    # A lookahead, so that overlapping transitions ("aB1") are all found; a word starts one
    # character after each match.
    return re.compile(f"(?=[{lo}][{up}]|[{up}][{up}][{lo}]|[{dg}][{lo}{up}]|[{lo}{up}][{dg}])")


_TRANSITIONS = {r: _transitions(r) for r in READINGS}


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


class _TokenCodes(dict):
    """Token of the original text -> its screen verdict byte, computed on first sight."""

    def __init__(self, matcher: CodenameMatcher):
        super().__init__({JOIN_TOKEN: SEPARATOR})
        self._matcher = matcher

    def __missing__(self, token: str) -> int:
        code = self._matcher._token_code(token)
        if len(self) > _CACHE_LIMIT:  # bounded memory on endless novel tokens
            self.clear()
            self[JOIN_TOKEN] = SEPARATOR
        self[token] = code
        return code


def _spans(fd: Folded) -> tuple[list[tuple[int, int]], set[tuple[int, int]]]:
    """(words, every compact span looked up as a whole): tokens, words and maximal runs of
    three or more single-character tokens ("L a r k")."""
    tokens = fd.segments(fd.sepbound)
    words = fd.segments(fd.bound)
    spans = set(tokens)
    spans.update(words)
    run_start = run_len = 0
    for s, e in (*tokens, (-1, -1)):
        if e - s == 1 and run_len and s == run_start + run_len:
            run_len += 1
            continue
        if run_len >= 3:
            spans.add((run_start, run_start + run_len))
        run_start, run_len = (s, 1) if e - s == 1 else (0, 0)
    return words, spans


_NONSPACE = re.compile(r"\S+")


def _ascii_strings(token: str, reading: int) -> tuple[list[str], list[str]]:
    """(tokens, strings `_fuzzy` looks up) of an ASCII text, without `fold`: ASCII folds one
    character to one, so positions in the folded text are positions in the original."""
    f = token.translate(FOLD[reading])
    toks = [m.span() for m in _NONSPACE.finditer(f)]
    spans = []
    run: list[tuple[int, int]] = []
    for a, b in (*toks, (0, 0)):
        if b - a == 1:
            run.append((a, b))
            continue
        if len(run) >= 3:
            spans.append((run[0][0], run[-1][1]))
        run = []
    cuts = [m.start() + 1 for m in _TRANSITIONS[reading].finditer(token)]
    for a, b in toks:
        inner = [c for c in cuts if a < c < b]
        spans += pairwise([a, *inner, b]) if inner else [(a, b)]
    strings = []
    for a, b in spans:  # a number is never a typo: skip what was written with digits only
        if not all(token[k].isdigit() for k in range(a, b) if f[k] != " "):
            strings.append(f[a:b].replace(" ", ""))
    return [f[a:b] for a, b in toks], strings


class CodenameMatcher:
    """All codename entries of a watchlist, compiled for matching."""

    def __init__(self, entries: Sequence[CodenameEntry]):
        self.entries = tuple(entries)
        self.forms: list[_Form] = []
        self.automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY)
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
        for compact, fids in exact.items():
            self.automaton.add_word(compact, (len(compact), tuple(fids)))
        if exact:
            self.automaton.make_automaton()
        self._keys = keys
        self._explicit = explicit
        self._index = DeletionIndex(keys)
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
        self.token_codes = _TokenCodes(self)

    # ---- per-token verdicts (cached) --------------------------------------------------------

    def _lookup(self, token: str) -> tuple[tuple[int, int], ...]:
        """(key id, distance) of every key within its budget of `token`."""
        cached = self._verdicts.get(token)
        if cached is not None:
            return cached
        hits: tuple[tuple[int, int], ...] = ()
        if (
            MIN_TERM_CHARS <= len(token) <= self._maxlen + 2
            and len(token.translate(self._foreign)) <= self._index.max_budget
        ):
            found = []
            # A written word gets no more typos than its own length allows ("call" is never a
            # typo of "Cally"), and an ordinary word is no typo at all ("model" is not "Kodel").
            ordinary = token in self._ordinary
            own = auto_edits(len(token))
            cands = [] if ordinary else self._index.candidates(token)
            if cands:  # one C loop over the candidates, then the budget of each near one
                near = process.extract(
                    token, [self._keys[k][0] for k in cands], scorer=OSA.distance,
                    score_cutoff=self._index.max_budget, limit=None,
                )  # fmt: skip
                for _key, d, at in near:
                    kid = cands[at]
                    budget = self._keys[kid][1]
                    if not self._explicit[kid]:
                        budget = min(budget, own)
                    if 0 < d <= budget:  # exact spellings are the automaton's job
                        found.append((kid, d))
            hits = tuple(found)
        if len(self._verdicts) > _CACHE_LIMIT:  # bounded memory on endless novel tokens
            self._verdicts = {}
        self._verdicts[token] = hits
        return hits

    def _token_code(self, token: str) -> int:
        """The screen's verdict on one whitespace-delimited token of original text (see
        screen.py): folded alone in every reading, exactly the strings `_fuzzy` would look up."""
        if token.isascii():
            if token.isdigit():  # a number: never a typo, a letter of a run only if one digit
                return LEAD | TRAIL if len(token) == 1 else 0
            pieces = token.translate(SPLIT).split()
            if pieces != [token]:
                return self._pieces_code(pieces)
        code = 0
        if token.isascii():
            todo = [PLAIN]
            if LEET_ANY.search(token):
                todo.append(LEET)
                if "1" in token or "!" in token or "|" in token:
                    todo.append(LEET_I)
        else:
            folds = {}
            for r in READINGS:  # a reading that folds the token alike adds nothing
                folds.setdefault(token.translate(FOLD[r]), r)
            todo = list(folds.values())
        for r in todo:
            if token.isascii():
                toks, strings = _ascii_strings(token, r)
            else:
                fd = fold(token, r)
                toks = [fd.compact[a:b] for a, b in fd.segments(fd.sepbound)]
                spans = _spans(fd)[1]
                strings = [fd.compact[a:b] for a, b in spans - _digit_spans(fd, spans)]
            if not toks:
                code |= CLEAR
                continue
            if len(toks[0]) == 1:
                code |= LEAD
            if len(toks[-1]) == 1:
                code |= TRAIL
            if not code & HOT and any(self._lookup(x) or x in self._anchors for x in strings):
                code |= HOT
        return code

    def _pieces_code(self, pieces: list[str]) -> int:
        """The verdict on a token made of pieces cut by separators, from the pieces' verdicts
        (so "https://x.test/run/4821" costs one new piece, not a new token)."""
        codes = bytes(self.token_codes[p] for p in pieces)
        if not codes:
            return CLEAR
        code = HOT if CANDIDATE.search(codes) else 0  # a hot piece, or a run across pieces
        for c in codes:  # the first piece that shows in a reading may start with a single letter
            code |= c & LEAD
            if not c & CLEAR:
                break
        for c in reversed(codes):
            code |= c & TRAIL
            if not c & CLEAR:
                break
        if all(c & CLEAR for c in codes):
            code |= CLEAR
        return code

    # ---- full match ---------------------------------------------------------------------------

    def _exact(self, fd: Folded) -> Iterable[tuple[int, int, int, int]]:
        bound = fd.bound
        for end, (length, fids) in self.automaton.iter(fd.compact):
            s, e = end - length + 1, end + 1
            if bound[s] and bound[e]:
                for fid in fids:
                    yield fid, s, e, 0

    def _fuzzy(self, fd: Folded) -> Iterable[tuple[int, int, int, int]]:
        compact = fd.compact
        words, spans = _spans(fd)
        digits = _digit_spans(fd, spans)
        for s, e in spans - digits:
            for kid, d in self._lookup(compact[s:e]):
                fid, j = self._meta[kid]
                if j < 0 and d > 0:
                    yield fid, s, e, d
        # Word-by-word alignment for multi-word terms.
        word_text = [compact[s:e] for s, e in words]
        for i, w in enumerate(word_text):
            if words[i] in digits:
                continue
            starts = [self._meta[kid] for kid, _ in self._lookup(w)]
            for fid, j in (*starts, *self._anchors.get(w, ())):
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
                    if dd > b or total > form.budget or (dd and words[i0 + jj] in digits):
                        break
                else:
                    if total:
                        yield fid, words[i0][0], words[i0 + n - 1][1], total

    def match(self, text: str) -> list[CodenameMatch]:
        """Every codename mention in `text`, without the screen (for texts it named)."""
        found: list[CodenameMatch] = []
        for leet in readings(text):
            fd = fold(text, leet)
            matches = self._exact(fd)
            if self.fuzzy:
                matches = (*matches, *self._fuzzy(fd))
            for fid, s, e, d in matches:
                form = self.forms[fid]
                start, end = fd.span(s, e)
                found.append(CodenameMatch(self.entries[form.entry], start, end, d, len(form.compact)))
        return _best_per_place(found)

    def scan(self, text: str) -> list[CodenameMatch]:
        """Every codename mention in `text`, one per entry and place (best match kept)."""
        if not self.forms or not text:
            return []
        if not screen(self, [text.replace(SENTINEL, " ")]):  # NUL joins batches: a separator here
            return []
        return self.match(text)


class _DigitMarks(dict):
    """`str.translate` table: a digit -> "1", anything else -> "0" (filled on first sight)."""

    def __missing__(self, code: int) -> str:
        self[code] = "1" if chr(code).isdigit() else "0"
        return self[code]


_DIGIT_MARKS = _DigitMarks()


def _digit_spans(fd: Folded, spans: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """The spans written with digits only: a number is never a typo ("74510"), and neither is
    a word of a multi-word term ("Build 20246" is not "Build 20245")."""
    marks = fd.text.translate(_DIGIT_MARKS)
    if "1" not in marks:
        return set()
    per_char = np.frombuffer(marks.encode("ascii"), np.uint8)[fd.orig].tobytes()
    return {(a, b) for a, b in spans if b"0" not in per_char[a:b]}


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
