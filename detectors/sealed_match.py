"""Matching on a sealed watchlist: what the plain matcher finds, from keyed digests alone.

The semantics are codenames.py's, step by step (DESIGN.md, "Matching semantics"), on the same
native core (native.Core: folding, boundaries, the spans and words of each text, the batch
screen and its per-piece verdict cache); only the comparisons change, because no term is held:

- exact: a term is a span of the compact text from a word boundary to a word boundary, so
  every such span up to the longest term's length is a candidate. The core's span screen
  (native.SpanScreen) hashes them all as they grow, against the terms' 24-bit screen values
  (inside the encrypted index); the few that pass are digested and looked up. The screen is a
  filter only: the digest decides.
- typos: the spans the plain matcher looks up (tokens, words, runs of spaced letters) go through
  the same prefix-deletion candidate filter, with digests for strings; a candidate token gets its
  exact OSA distance to every sealed key from the digests of their deletion neighbourhoods
  (sealed_fuzzy.py), then the plain matcher's budget rules (ordinary words, own length).
- words of multi-word terms align one-to-one as in codenames.py, by digest equality and the
  same sealed distance.

Per-token verdicts are cached like the plain matcher's (in Python for the full match, in the
core for the screen), so the digest work is paid once per distinct token.
tests/detectors/test_sealed_match.py holds plain and sealed to the same findings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .codenames import (
    _CACHE_LIMIT,
    MIN_TERM_CHARS,
    CodenameMatch,
    auto_edits,
    match_text,
    piece_code,
)
from .digests import _HEX_RUN
from .excerpt import make_excerpt
from .fuzzyindex import PREFIX, deletions
from .model import Finding
from .native import Core, SpanScreen
from .normalize import TABLES
from .ordinary import ordinary_words
from .screen import JOIN, Owners
from .sealed import POLY_BITS, SealedDigestRule, SealedEntry, SealedWatchlist
from .sealed_fuzzy import QueryVariant, variant_cost, variant_table
from .watchlist import DIGEST_LENGTHS


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
        self._dist: dict[tuple[str, int], dict[int, int]] = {}
        # The plain matcher's core with the span screen in place of its automaton: exact hits
        # come back as form ids, verified by digest (`_verify`).
        spans = None
        if self._exact:
            values = a["poly"].tolist()
            spans = SpanScreen(values, r, POLY_BITS, self._lmin, max(self._lmax, self._lmin), self._verify)
        self.core = Core(TABLES, None, self._token_code, self.fuzzy, _CACHE_LIMIT, spans)

    @property
    def has_codenames(self) -> bool:
        return bool(self._form_entry)

    def _verify(self, span: str) -> tuple[int, ...] | None:
        """The form ids a span that passed the screen spells exactly (by digest), or None."""
        return self._exact.get(self.hashers.exact_one(span))

    def _token_code(self, piece: str) -> int:
        """The screen's verdict on one piece of text, as the plain matcher's (`piece_code`)."""
        return piece_code(self.core, piece, self._hot)

    def _hot(self, span: str) -> bool:
        return bool(self._lookup(span)) or bool(self._anchored(span))

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
            self._verdicts = {}
        self._verdicts[token] = hits
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

    def _typos(self, compact: str, spans, words, word_digits: bytes) -> Iterator[tuple[int, int, int, int]]:
        """(form id, compact start, end, edits) of every typo, as `CodenameMatcher._typos`."""
        for s, e in spans:
            for kid, d in self._lookup(compact[s:e]):
                if self._key_word[kid] < 0 and d > 0:
                    yield self._key_form[kid], s, e, d
        # Word-by-word alignment for multi-word terms, as codenames.py does it.
        word_text = [compact[s:e] for s, e in words]
        for i, w in enumerate(word_text):
            if word_digits[i]:
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
                    if dd > self._word_budget[w0 + jj] or total > budget or (dd and word_digits[i0 + jj]):
                        break
                else:
                    if total:
                        yield fid, words[i0][0], words[i0 + n - 1][1], total

    # ---- one text --------------------------------------------------------------------------------

    def scan(self, text: str) -> list[CodenameMatch]:
        """Every sealed codename mention in `text`, one per entry and place (best match kept)."""
        if not self._form_entry or not text:
            return []
        return match_text(self.core, text, self._typos if self.fuzzy else None, self._form)

    def _form(self, fid: int) -> tuple[SealedEntry, int]:
        # A sealed entry in place of a CodenameEntry: the match needs only its id and label.
        return self._entries[self._form_entry[fid]], self._form_len[fid]

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
        """Indices of `texts` that may hold a sealed finding (a superset of what `scan` finds):
        one native call for the codenames, as the plain screen (screen.py)."""
        if not texts:
            return set()
        hits: set[int] = set()
        if self.sealed.digests:
            joined = JOIN.join(texts)
            owner = Owners(joined)
            hits |= {owner(m.start) for m in self.scan_digests(joined)}
        if self._form_entry:
            hits.update(self.core.screen(texts))
        return hits
