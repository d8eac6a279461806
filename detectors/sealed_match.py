"""Matching on a sealed watchlist: what the plain matcher finds, from keyed digests alone.

The semantics are codenames.py's, step by step (DESIGN.md, "Matching semantics"); only the
comparisons change, because no term is held:

- exact: a term is a span of the compact text from a word boundary to a word boundary, so
  every such span up to the longest term's length is a candidate. A polynomial hash over the
  compact text (prefix sums, vectorised) screens them all at once against the terms' truncated
  screen values; the few that pass are digested and looked up. The screen is a filter only
  (24 bits a term, inside the encrypted index): the digest decides.
- typos: the spans the plain matcher looks up (tokens, words, runs of spaced letters) go through
  the same prefix-deletion candidate filter, with digests for strings; a candidate token gets its
  exact OSA distance to every sealed key from the digests of their deletion neighbourhoods
  (sealed_fuzzy.py), then the plain matcher's budget rules (ordinary words, own length).
- words of multi-word terms align one-to-one as in codenames.py, by digest equality and the
  same sealed distance.

Per-token verdicts are cached like the plain matcher's, so the digest work is paid once per
distinct token. tests/detectors/test_sealed_match.py holds plain and sealed to the same findings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np

from .codenames import (
    _CASELESS_MARKS,
    _DIGIT_MARKS,
    MIN_TERM_CHARS,
    CodenameMatch,
    _best_per_place,
    _digit_spans,
    _marked,
    _spans,
    auto_edits,
)
from .digests import _HEX_RUN
from .excerpt import make_excerpt
from .fuzzyindex import PREFIX, deletions
from .model import Finding
from .normalize import LEET, LEET_I, PLAIN, Folded, fold, readings
from .ordinary import ordinary_words
from .screen import JOIN, Owners
from .sealed import POLY_BITS, SealedDigestRule, SealedWatchlist
from .sealed_fuzzy import QueryVariant, variant_cost, variant_table
from .watchlist import DIGEST_LENGTHS

_CACHE_LIMIT = 400_000
_SMALL = 2048  # compact characters up to which the screen goes segment by segment
_SHIFT = np.uint64(64 - POLY_BITS)
_WORD = 1 << 64


@dataclass(frozen=True, slots=True)
class SealedDigestMatch:
    rule: SealedDigestRule
    start: int
    end: int


def placeholder(entry_id: str) -> str:
    """What excerpts show instead of a sealed match."""
    return f"[sealed:{entry_id}]"


class SealedMatcher:
    """The codenames and digests of one sealed watchlist, ready for matching."""

    def __init__(self, sealed: SealedWatchlist):
        self.sealed = sealed
        self.hashers = sealed.hashers
        a = sealed.arrays
        self._entries = sealed.entries
        self._form_entry = a["form_entry"].tolist()
        self._form_len = a["form_len"].tolist()
        self._form_budget = a["form_budget"].tolist()
        self._form_word0 = a["form_word0"].tolist()
        self._form_nwords = a["form_nwords"].tolist()
        self._word_digest = a["word_digest"].tolist()
        self._word_len = a["word_len"].tolist()
        self._word_budget = a["word_budget"].tolist()
        self._word_key = a["word_key"].tolist()
        self._key_form = a["key_form"].tolist()
        self._key_word = a["key_word"].tolist()
        self._key_budget = a["key_budget"].tolist()
        self._key_explicit = a["key_explicit"].tolist()
        lmin, lmax, maxlen, max_explicit, max_auto, r = a["params"].tolist()
        self._lmin, self._lmax, self._maxlen = max(lmin, MIN_TERM_CHARS), lmax, maxlen
        self._max_explicit, self._max_auto = max_explicit, max_auto
        self.fuzzy = maxlen > 0
        self._exact: dict[int, tuple[int, ...]] = {}
        for d, fid in zip(a["exact_digest"].tolist(), a["exact_form"].tolist(), strict=True):
            self._exact[d] = (*self._exact.get(d, ()), fid)
        self._prefix = a["prefix_digest"]
        self._var_digest = a["var_digest"]
        self._var_key = a["var_key"]
        self._var_dels = a["var_dels"]
        self._var_ndel = (self._var_dels != 255).sum(axis=1).astype(np.int8)
        # The exact-match screen: a bitset of the terms' truncated polynomial hashes.
        self._r = r
        self._bits = np.zeros(1 << (POLY_BITS - 3), dtype=np.uint8)
        poly = a["poly"].astype(np.int64)
        np.bitwise_or.at(self._bits, poly >> 3, (1 << (poly & 7)).astype(np.uint8))
        self._pw = np.ones(1, dtype=np.uint64)
        self._ipw = np.ones(1, dtype=np.uint64)
        self._ordinary = ordinary_words() if self.fuzzy else frozenset()
        # Words of multi-word terms that anchor an alignment when written exactly (as
        # codenames.py: long enough and not ordinary, which is checked on the written word).
        self._anchor_words: dict[int, list[tuple[int, int]]] = {}
        for fid, (n, w0) in enumerate(zip(self._form_nwords, self._form_word0, strict=True)):
            if n > 1 and self._form_budget[fid]:
                for j in range(n):
                    self._anchor_words.setdefault(self._word_digest[w0 + j], []).append((fid, j))
        self._anchors: dict[str, tuple[tuple[int, int], ...]] = {}
        # Per-token verdicts and distances, shared by scanning threads (races only recompute).
        self._verdicts: dict[str, tuple[tuple[int, int], ...]] = {}
        self._hot: set[str] = set()
        self._dist: dict[tuple[str, int], dict[int, int]] = {}

    @property
    def has_codenames(self) -> bool:
        return bool(self._form_entry)

    # ---- exact: boundary-to-boundary spans, screened by polynomial hash ------------------------

    def _powers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """r^i and r^-i mod 2^64 for i <= n, grown by doubling (and kept for the next text)."""
        pw, ipw = self._pw, self._ipw
        if len(pw) <= n:
            rinv = pow(self._r, -1, _WORD)
            while len(pw) <= n:
                k = len(pw)
                pw = np.concatenate([pw, pw * np.uint64(pow(self._r, k, _WORD))])
                ipw = np.concatenate([ipw, ipw * np.uint64(pow(rinv, k, _WORD))])
            self._pw, self._ipw = pw, ipw
        return pw, ipw

    def _pairs(self, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) of every span between two word boundaries with a term's length."""
        b = np.flatnonzero(bound)
        first = np.maximum(np.searchsorted(b, b + self._lmin, "left"), np.arange(1, len(b) + 1))
        counts = np.searchsorted(b, b + self._lmax, "right") - first
        np.maximum(counts, 0, out=counts)
        total = int(counts.sum())
        if not total:
            return b[:0], b[:0]
        # Start i pairs with ends first[i] .. first[i] + counts[i] - 1: one repeat, no loop.
        si = np.repeat(np.arange(len(b)), counts)
        ei = np.arange(total) - np.repeat(np.cumsum(counts) - counts - first, counts)
        return b[si], b[ei]

    def _exact_spans(self, fd: Folded) -> list[tuple[int, int, tuple[int, ...]]]:
        """(start, end, form ids) of every exact spelling on word boundaries (compact coords)."""
        compact = fd.compact
        if len(compact) < self._lmin or not self._exact:
            return []
        s, e = self._pairs(fd.bound)
        if not len(s):
            return []
        codes = np.frombuffer(compact.encode("utf-32-le", "surrogatepass"), np.uint32)
        n = len(codes)
        pw, ipw = self._powers(n)
        # Prefix sums of c_i * r^i, wrapping mod 2^64: a span's hash is its difference times
        # r^-start, so every span costs three gathers and two multiplications, no division.
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(codes * pw[:n], out=prefix[1:])
        h = ((prefix[e] - prefix[s]) * ipw[s]) >> _SHIFT
        hit = (self._bits[h >> np.uint64(3)] >> (h & np.uint64(7)).astype(np.uint8)) & 1
        out = []
        for a, b in zip(s[hit == 1].tolist(), e[hit == 1].tolist(), strict=True):
            fids = self._exact.get(self.hashers.exact_one(compact[a:b]))
            if fids:
                out.append((a, b, fids))
        return out

    # ---- typos: per-token verdicts -----------------------------------------------------------

    def _distances(self, token: str, depth: int) -> dict[int, int]:
        """Key id -> OSA distance, for the keys within `depth` (and their budget) of `token`."""
        cached = self._dist.get((token, depth))
        if cached is not None:
            return cached
        table = variant_table(len(token), depth)
        keep, codes = table.rows(np.frombuffer(token.encode("utf-32-le", "surrogatepass"), np.uint32))
        digests = self.hashers.variant_rows(codes, table.length[keep])
        lo = np.searchsorted(self._var_digest, digests, "left")
        hi = np.searchsorted(self._var_digest, digests, "right")
        best: dict[int, int] = {}
        counts = hi - lo
        if counts.any():
            # Every (variant, matching row) pair at once; the cost is at least the variant's
            # swaps plus the larger of the two deletion counts, so most pairs go here.
            qi = np.repeat(np.arange(len(lo)), counts)
            rows = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts - lo, counts)
            v = keep[qi]
            ok = table.swaps[v] + np.maximum(table.dels[v], self._var_ndel[rows]) <= depth
            described: dict[int, QueryVariant] = {}
            for vi, kid, key_dels in zip(
                v[ok].tolist(), self._var_key[rows[ok]].tolist(), self._var_dels[rows[ok]].tolist(),
                strict=True,
            ):
                q = described.get(vi)
                if q is None:
                    q = described[vi] = QueryVariant.of(*table.combos[vi])
                cost = variant_cost(q, key_dels)
                if cost is not None and cost <= depth and cost < best.get(kid, depth + 1):
                    best[kid] = cost
        if len(self._dist) > _CACHE_LIMIT:
            self._dist = {}
        self._dist[(token, depth)] = best
        return best

    def _candidate(self, token: str, depth: int) -> bool:
        """The plain matcher's prefix-deletion filter, on digests: may a key be near `token`?"""
        probe = self.hashers.prefix(sorted(deletions(token[:PREFIX], depth)))
        at = np.minimum(np.searchsorted(self._prefix, probe), len(self._prefix) - 1)
        return bool(len(self._prefix)) and bool((self._prefix[at] == probe).any())

    def _lookup(self, token: str) -> tuple[tuple[int, int], ...]:
        """(key id, distance) of every key within its budget of `token` (as plain `_lookup`)."""
        cached = self._verdicts.get(token)
        if cached is not None:
            return cached
        hits: tuple[tuple[int, int], ...] = ()
        # An ordinary word is no typo at all, and a written word gets no more typos than its own
        # length allows (codenames.py); explicit budgets are not capped by the token's length.
        if MIN_TERM_CHARS <= len(token) <= self._maxlen + 2 and token not in self._ordinary:
            own = auto_edits(len(token))
            depth = max(self._max_explicit, min(self._max_auto, own))
            if depth and self._candidate(token, depth):
                found = []
                for kid, d in sorted(self._distances(token, depth).items()):
                    budget = self._key_budget[kid]
                    if not self._key_explicit[kid]:
                        budget = min(budget, own)
                    if 0 < d <= budget:
                        found.append((kid, d))
                hits = tuple(found)
        if len(self._verdicts) > _CACHE_LIMIT:
            self._verdicts, self._hot = {}, set()
        self._verdicts[token] = hits
        if hits or self._anchored(token):  # an exact anchor word may start a word-by-word typo
            self._hot.add(token)
        return hits

    def _anchored(self, word: str) -> tuple[tuple[int, int], ...]:
        """(form id, word index) of every multi-word term `word` anchors, written exactly."""
        cached = self._anchors.get(word)
        if cached is None:
            cached = ()
            if self._anchor_words and len(word) >= MIN_TERM_CHARS and word not in self._ordinary:
                cached = tuple(self._anchor_words.get(self.hashers.exact_one(word), ()))
            if len(self._anchors) > _CACHE_LIMIT:
                self._anchors = {}
            self._anchors[word] = cached
        return cached

    def _word_distance(self, written: str, widx: int) -> int:
        """OSA distance of a written word to word `widx` of a form, or its budget + 1."""
        budget, length = self._word_budget[widx], self._word_len[widx]
        if abs(len(written) - length) > budget:
            return budget + 1  # the distance is at least the difference in length
        if len(written) == length and self.hashers.exact_one(written) == self._word_digest[widx]:
            return 0
        if budget <= 0:
            return 1
        return self._distances(written, budget).get(self._word_key[widx], budget + 1)

    def _fuzzy(self, fd: Folded) -> Iterable[tuple[int, int, int, int]]:
        compact = fd.compact
        words, spans = _spans(fd)
        digits = _digit_spans(fd, spans)
        for s, e in spans - digits:
            for kid, d in self._lookup(compact[s:e]):
                if self._key_word[kid] < 0 and d > 0:
                    yield self._key_form[kid], s, e, d
        # Word-by-word alignment for multi-word terms, as codenames.py does it.
        word_text = [compact[s:e] for s, e in words]
        for i, w in enumerate(word_text):
            if words[i] in digits:
                continue
            starts = [(self._key_form[kid], self._key_word[kid]) for kid, _ in self._lookup(w)]
            for fid, j in (*starts, *self._anchored(w)):
                if j < 0:
                    continue
                i0, n = i - j, self._form_nwords[fid]
                if i0 < 0 or i0 + n > len(words):
                    continue
                total, budget, w0 = 0, self._form_budget[fid], self._form_word0[fid]
                for jj in range(n):
                    dd = self._word_distance(word_text[i0 + jj], w0 + jj)
                    total += dd
                    if dd > self._word_budget[w0 + jj] or total > budget or (dd and words[i0 + jj] in digits):
                        break
                else:
                    if total:
                        yield fid, words[i0][0], words[i0 + n - 1][1], total

    # ---- one text --------------------------------------------------------------------------------

    def scan(self, text: str) -> list[CodenameMatch]:
        """Every sealed codename mention in `text`, one per entry and place (best match kept)."""
        if not self._form_entry or not text:
            return []
        found: list[CodenameMatch] = []
        for leet in readings(text):
            fd = fold(text, leet)
            matches = [(fid, s, e, 0) for s, e, fids in self._exact_spans(fd) for fid in fids]
            if self.fuzzy:
                matches += self._fuzzy(fd)
            for fid, s, e, d in matches:
                start, end = fd.span(s, e)
                entry = self._entries[self._form_entry[fid]]
                # A sealed entry in place of a CodenameEntry: the match needs only its id.
                found.append(CodenameMatch(entry, start, end, d, self._form_len[fid]))
        return _best_per_place(found)

    def scan_digests(self, text: str) -> list[SealedDigestMatch]:
        """Sealed known-file digests written in `text`."""
        if not self.sealed.digests:
            return []
        out = []
        for m in _HEX_RUN.finditer(text):
            if len(m.group()) in DIGEST_LENGTHS:
                rule = self.sealed.digest_rule(m.group())
                if rule is not None:
                    out.append(SealedDigestMatch(rule, m.start(), m.end()))
        return out

    def matched(self, written: str) -> str:
        """What a finding shows as matched (`SealedWatchlist.shown`): never the spelling."""
        return self.sealed.shown(written)

    def findings(
        self, text: str, location: str, out: list[Finding], secrets: Sequence[tuple[int, int]],
        *, screened: bool = False,
    ) -> list[Finding]:
        """`out` plus the sealed findings of `text`, every excerpt with sealed matches redacted.

        A text not `screened` yet (scanned alone) is screened first: most texts mention nothing,
        and the screen is cheaper than the full match."""
        names = self.scan(text) if screened or self.screen([text]) else []
        digests = self.scan_digests(text)
        if not names and not digests:
            return out
        redact = [(m.start, m.end, placeholder(m.entry.id)) for m in names]
        redact += [(m.start, m.end, placeholder(m.rule.id)) for m in digests]

        def excerpt(start: int, end: int) -> str:
            return make_excerpt(text, start, end, secrets, redact)

        res = [f if f.start is None else replace(f, excerpt=excerpt(f.start, f.end)) for f in out]
        for m in names:
            detail = {"match": "typo" if m.edits else "exact", "edits": m.edits, "sealed": True}
            if m.entry.label:
                detail["label"] = m.entry.label
            res.append(
                Finding(
                    m.entry.id, "codename", m.entry.severity, location, m.start, m.end,
                    self.matched(text[m.start : m.end]), excerpt(m.start, m.end), m.score, detail,
                )
            )  # fmt: skip
        for d in digests:
            detail = {"algorithm": d.rule.algorithm, "sealed": True}
            if d.rule.label:
                detail["label"] = d.rule.label
            res.append(
                Finding(
                    d.rule.id, "digest", d.rule.severity, location, d.start, d.end,
                    self.matched(text[d.start : d.end].lower()), excerpt(d.start, d.end), 1.0, detail,
                )
            )  # fmt: skip
        res.sort(key=lambda f: (f.start or 0, f.end or 0, f.rule_id))
        return res

    # ---- batches -------------------------------------------------------------------------------

    def screen(self, texts: Sequence[str]) -> set[int]:
        """Indices of `texts` that may hold a sealed finding (a superset of what `scan` finds).

        Texts must hold no NUL (the engine screens those alone)."""
        if not texts:
            return set()
        hits: set[int] = set()
        if self.sealed.digests:
            joined = JOIN.join(texts)
            owner = Owners(joined)
            hits |= {owner(m.start) for m in self.scan_digests(joined)}
        if not self._form_entry:
            return hits
        # str.translate is fast on pure-ASCII strings only: the plain reading screens ASCII and
        # the rest apart; the leet readings, for the few texts that need them, all together.
        ascii = [t.isascii() for t in texts]
        for idx in ([i for i, a in enumerate(ascii) if a], [i for i, a in enumerate(ascii) if not a]):
            if idx:
                hits.update(idx[j] for j in self._screen_reading([texts[i] for i in idx], PLAIN))
        by_reading: dict[int, list[int]] = {LEET: [], LEET_I: []}
        for i, t in enumerate(texts):
            if i not in hits:
                for r in readings(t)[1:]:
                    by_reading[r].append(i)
        for r, idx in by_reading.items():
            if idx:
                hits.update(idx[j] for j in self._screen_reading([texts[i] for i in idx], r))
        return hits

    def _screen_reading(self, texts: Sequence[str], reading: int) -> set[int]:
        fd = fold(JOIN.join(texts), reading)
        owner = Owners(fd.compact)
        hits = {owner(s) for s, _, _ in self._exact_spans(fd)}
        if not self.fuzzy:
            return hits
        # A span written with digits only is never a typo nor an anchor (codenames.py): leave
        # numbers out of the vocabulary, or every number read as leetspeak is a novel token.
        digit = _digits(fd)
        runs = [(a, b) for a, b in _runs(fd) if digit is None or not digit[a:b].all()]
        if len(fd.compact) <= _SMALL:
            return hits | self._hot_segments(fd, digit, runs, owner)
        tokens, words = _spaced(fd, fd.sepbound, digit), _spaced(fd, fd.bound, digit)
        vocab = set(tokens.split())
        vocab.update(words.split())
        vocab.update(fd.compact[a:b] for a, b in runs)
        for t in vocab.difference(self._verdicts):
            self._lookup(t)
        hot = vocab & self._hot
        if hot:  # rare: find the texts that hold a hot token, in C
            alternation = "|".join(map(re.escape, sorted(hot, key=len, reverse=True)))
            rx = re.compile(rf"(?<!\S)(?:{alternation})(?!\S)")
            for spaced in (tokens, words):
                where = Owners(spaced)
                hits.update(where(m.start()) for m in rx.finditer(spaced))
            hits.update(owner(s) for s, e in runs if fd.compact[s:e] in hot)
        return hits

    def _hot_segments(self, fd: Folded, digit, runs, owner) -> set[int]:
        """The vocabulary pass of `_screen_reading` for a short text (one message scanned
        alone): segment by segment, cheaper than building the spaced strings."""
        compact = fd.compact
        marks = digit.tolist() if digit is not None else None
        hits = set()
        for a, b in (*fd.segments(fd.sepbound), *fd.segments(fd.bound), *runs):
            if marks is not None and all(marks[a:b]):
                continue
            t = compact[a:b]
            if t not in self._verdicts:
                self._lookup(t)
            if t in self._hot:
                hits.add(owner(a))
        return hits


def _digits(fd: Folded) -> np.ndarray | None:
    """Per compact character: whether it was written as a digit (None: no digit at all)."""
    if fd.text.isascii():
        codes = np.frombuffer(fd.text.encode("ascii"), np.uint8)
        written = (codes >= ord("0")) & (codes <= ord("9"))
    else:
        marks = fd.text.translate(_DIGIT_MARKS)  # str.isdigit, as codenames.py decides it
        written = np.frombuffer(marks.encode("ascii"), np.uint8) == ord("1")
    if not written.any():
        return None
    return written[fd.orig]


def _spaced(fd: Folded, which: np.ndarray, digit: np.ndarray | None) -> str:
    """`fd.spaced(which)` with every segment written in digits only blanked out."""
    if digit is None:
        return fd.spaced(which)
    cuts = np.flatnonzero(which)
    nondigit = np.concatenate([[0], np.cumsum(~digit)])
    numbers = (nondigit[cuts[1:]] - nondigit[cuts[:-1]]) == 0
    codes = np.frombuffer(fd.compact.encode("utf-32-le", "surrogatepass"), np.uint32).copy()
    codes[np.repeat(numbers, np.diff(cuts))] = 32
    inner = cuts[1:-1]
    return np.insert(codes, inner, 32).tobytes().decode("utf-32-le", "surrogatepass")


def _runs(fd: Folded) -> list[tuple[int, int]]:
    """Maximal runs of three or more single-character tokens ("L a r k"), compact coords; a run
    does not cross between a caseless script and letters (codenames._spans)."""
    cuts = np.flatnonzero(fd.sepbound)
    single = np.diff(cuts) == 1
    if single.sum() < 3:
        return []
    caseless = np.frombuffer(_marked(fd, _CASELESS_MARKS), np.uint8)[cuts[:-1]] == ord("1")
    kind = np.where(single, 1 + caseless, 0)  # 0: longer token, 1: a letter, 2: caseless
    edges = np.flatnonzero(np.diff(np.concatenate([[-1], kind, [-1]]))).tolist()
    out = []
    for a, b in pairwise(edges):  # segments of equal kind
        if kind[a] and b - a >= 3:
            out.append((int(cuts[a]), int(cuts[b])))
    return out
