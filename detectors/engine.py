"""The engine: one watchlist compiled once, then `scan_text` for every message."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from .codenames import CodenameMatcher
from .digests import DigestMatcher
from .excerpt import MAX_EXCERPT, make_excerpt, merged_spans
from .model import Finding, Severity
from .normalize import SENTINEL
from .patterns import PatternMatcher, mask
from .screen import JOIN, Owners, screen
from .sealed_match import SealedMatcher, placeholder
from .unicode_checks import has_suspicious, suspicious_runs
from .watchlist import Watchlist

CHUNK_CHARS = 1 << 20  # windows of text inside files (detectors/files/text.py)
# Patterns and suspicious-Unicode runs are matched over a whole text (or a whole window of a
# file's text), so no match is cut. A match crossing the edge between two windows of a file is
# found whole up to MAX_MATCH_CHARS long: the windows overlap that much. A longer one seen cut at
# an edge is reported as found plus a `scan-limit` finding (files/text.py).
MAX_MATCH_CHARS = 1 << 16
CHUNK_OVERLAP = MAX_MATCH_CHARS
# The other kinds (codenames, digests) are short: scanned in windows overlapping SHORT_OVERLAP,
# each seen whole up to half of that long.
SHORT_OVERLAP = 4096
WINDOW = 16_384  # texts longer than WINDOW + SHORT_OVERLAP are scanned in windows
LONG_KINDS = frozenset({"pattern", "suspicious-unicode"})  # matched over the whole text
CODENAME_WINDOW = 1024  # codename mentions are short: up to half of CODENAME_OVERLAP long
CODENAME_OVERLAP = 256
BATCH = 256  # messages screened together by scan_many


class Engine:
    """Scans text (and, via `open_stream`, files) against one immutable watchlist.

    Thread-safe: scans share only per-token caches that are safe to race on.
    """

    def __init__(self, watchlist: Watchlist, *, fingerprints: Any = None, file_limits: Any = None,
                 clock: Any = None):
        self.watchlist = watchlist
        self.fingerprints = fingerprints  # detectors.files.fingerprints.FingerprintSet or None
        self.file_limits = file_limits  # detectors.files.limits.FileLimits or None (defaults)
        self.clock = clock  # () -> seconds for FileLimits.max_scan_seconds; detectors/ has no clock
        self._codenames = CodenameMatcher(watchlist.codenames)
        self._patterns = PatternMatcher(watchlist.patterns)
        self._digests = DigestMatcher(watchlist.digests)
        self._sealed = SealedMatcher(watchlist.sealed) if watchlist.sealed is not None else None

    def scan_text(self, text: str, location: str = "text") -> list[Finding]:
        """Every finding in `text`; long texts are scanned in overlapping windows."""
        if len(text) > WINDOW + SHORT_OVERLAP:
            return list(self.scan_text_chunked(text, location, chunk=WINDOW))
        return self._scan(text, location)

    def scan_window(self, text: str, location: str, own_from: int, own_to: int) -> list[Finding]:
        """One window of a longer stream (files/text.py): every pattern and suspicious-Unicode
        finding of the whole window, and the other findings that start in [own_from, own_to)."""
        if len(text) > WINDOW + SHORT_OVERLAP:
            return list(self._scan_long(text, location, WINDOW, SHORT_OVERLAP, own_from, own_to))
        return [f for f in self._scan(text, location)
                if f.kind in LONG_KINDS or own_from <= f.start < own_to]

    def scan_many(self, texts: Sequence[str], location: str = "text") -> list[list[Finding]]:
        """`scan_text` of each text, screened as a batch: the same findings, much faster.

        Most messages mention nothing; screening a batch as one string pays the per-message
        interpreter overhead once per batch, and only the candidates get a full scan.
        """
        out: list[list[Finding]] = []
        for lo in range(0, len(texts), BATCH):
            out += self._scan_batch(texts[lo : lo + BATCH], location)
        return out

    def _scan_batch(self, part: Sequence[str], location: str) -> list[list[Finding]]:
        out: list[list[Finding]] = [[] for _ in part]
        alone = {i for i, t in enumerate(part) if SENTINEL in t or len(t) > WINDOW + SHORT_OVERLAP}
        clean = [t if i not in alone else "" for i, t in enumerate(part)]
        named = screen(self._codenames, clean)
        for i in sorted(alone | named | self._screen_others(clean)):
            if i in alone:
                out[i] = self.scan_text(part[i], location)
            else:
                out[i] = self._scan(part[i], location, codenames=i in named)
        return out

    def _screen_others(self, texts: Sequence[str]) -> set[int]:
        """Indices that may have pattern, digest or suspicious-Unicode findings (a superset)."""
        hits: set[int] = set()
        if self._patterns.entries or self.watchlist.digests:
            joined = JOIN.join(texts)
            owner = Owners(joined)
            if self._patterns.anchored:  # ^ and $ mean one message: screen them one by one
                hits |= {i for i, t in enumerate(texts) if self._patterns.scan(t)}
            elif self._patterns.entries:
                for a, b in self._patterns.spans(joined):
                    hits.update(range(owner(a), owner(max(a, b - 1)) + 1))
            if self.watchlist.digests:
                hits |= {owner(m.start) for m in self._digests.scan(joined)}
        # Bidi controls and tag characters are never ASCII.
        other = [i for i, t in enumerate(texts) if not t.isascii()]
        if other:
            joined = JOIN.join([texts[i] for i in other])
            if has_suspicious(joined):
                owner = Owners(joined)
                hits |= {other[owner(r.start)] for r in suspicious_runs(joined)}
        if self._sealed is not None:
            hits |= self._sealed.screen(texts)
        return hits

    def scan_text_chunked(
        self, text: str, location: str = "text", chunk: int = CHUNK_CHARS, overlap: int = SHORT_OVERLAP
    ) -> Iterator[Finding]:
        """The findings of `text`, as a whole scan's, with the short kinds scanned in windows.

        Patterns and suspicious-Unicode runs are matched over the whole text (RE2 and the runs'
        regex are linear), so a match of any length is found whole. Each window of `chunk` owns
        the codename and digest findings that start in its middle (half an overlap away from a
        cut), so nothing is reported twice or cut in half; codenames, whose mentions are short,
        in small windows screened as a batch, so only the few with a candidate get the full
        match. Excerpts are then made from the whole text, so they read (and mask) as an
        unchunked scan's.
        """
        yield from self._scan_long(text, location, chunk, overlap, 0, len(text))

    def _scan_long(self, text: str, location: str, chunk: int, overlap: int, own_from: int,
                   own_to: int) -> list[Finding]:
        """`scan_text_chunked`, keeping of the short kinds only those starting in [own_from,
        own_to) (scanned in the part of `text` around it)."""
        found = self._long_findings(text, location)
        half = overlap // 2
        lo, hi = max(0, own_from - half), min(len(text), own_to + half)
        part = text if (lo, hi) == (0, len(text)) else text[lo:hi]
        short = list(self._windows(part, location, chunk, overlap, codenames=False))
        small, small_overlap = min(chunk, CODENAME_WINDOW), min(overlap, CODENAME_OVERLAP)
        short += self._windows(part, location, small, small_overlap, codenames=True)
        found += (f.shifted(lo) if lo else f for f in short if own_from <= f.start + lo < own_to)
        # Secrets as disjoint spans, found by their ends: a long one (a PEM key) that began far
        # before a finding still masks its excerpt.
        secrets = merged_spans((f.start, f.end) for f in found if f.kind == "pattern" and f.detail.get("secret"))
        secret_ends = [e for _, e in secrets]
        # Sealed matches (scanned with the other kinds) stay redacted in every excerpt.
        sealed = sorted((f.start, f.end, placeholder(f.rule_id)) for f in found if f.detail.get("sealed"))
        found.sort(key=lambda f: (f.start, f.end, f.rule_id))
        out = []
        for f in found:
            i = bisect_right(secret_ends, f.start - 4 * MAX_EXCERPT)
            near = [sp for sp in secrets[i:] if sp[0] < f.end + 2 * MAX_EXCERPT]
            i = bisect_left(sealed, (f.start - 4 * MAX_EXCERPT, 0, ""))
            hidden = [sp for sp in sealed[i:] if sp[0] < f.end + 2 * MAX_EXCERPT]
            out.append(replace(f, excerpt=make_excerpt(text, f.start, f.end, near, hidden)))
        return out

    def _windows(self, text: str, location: str, chunk: int, overlap: int, *, codenames: bool):
        """The owned findings of each window: codenames only, or everything else."""
        n = len(text)
        half = overlap // 2
        starts = list(range(0, max(n - overlap, 1), chunk - overlap))
        for lo in range(0, len(starts), BATCH):
            group = starts[lo : lo + BATCH]
            windows = [text[a : a + chunk].replace(SENTINEL, " ") for a in group]
            if codenames:
                named = screen(self._codenames, windows)
                results = [
                    [self._codename_finding(w, m, location, ()) for m in self._codenames.match(w)]
                    if i in named else []
                    for i, w in enumerate(windows)
                ]  # fmt: skip
            else:
                results = [self._scan(w, location, codenames=False, long=False) for w in windows]
            for start, window_findings in zip(group, results, strict=True):
                own_lo = start + half if start > 0 else 0
                own_hi = start + chunk - overlap + half if start + chunk < n else n
                for f in window_findings:
                    if own_lo <= f.start + start < own_hi:
                        yield f.shifted(start)

    def open_stream(self, location: str, filename: str):
        """A streaming scan of one attachment: `feed(bytes)` then `close() -> list[Finding]`."""
        from .files import open_file_scan  # files/ builds on this module

        return open_file_scan(self, location, filename)

    # ---- one text -------------------------------------------------------------------------------

    @staticmethod
    def _codename_finding(text: str, m, location: str, secrets) -> Finding:
        detail = {"match": "typo" if m.edits else "exact", "edits": m.edits}
        if m.entry.label:
            detail["label"] = m.entry.label
        return Finding(
            m.entry.id, "codename", m.entry.severity, location, m.start, m.end,
            text[m.start : m.end], make_excerpt(text, m.start, m.end, secrets), m.score, detail,
        )  # fmt: skip

    def _long_findings(self, text: str, location: str, pats=None, secrets=None) -> list[Finding]:
        """The pattern and suspicious-Unicode findings of `text` (the LONG_KINDS): matched over
        all of it, whatever its length. (`pats`, `secrets`: its pattern matches and secret
        spans, when the caller has them.)"""
        if SENTINEL in text:
            text = text.replace(SENTINEL, " ")
        if pats is None:
            pats = self._patterns.scan(text)
        if secrets is None:
            secrets = [(m.start, m.end) for m in pats if m.entry.secret]
        out: list[Finding] = []
        for p in pats:
            raw = text[p.start : p.end]
            out.append(
                Finding(
                    p.entry.id, "pattern", p.entry.severity, location, p.start, p.end,
                    mask(raw) if p.entry.secret else raw,
                    make_excerpt(text, p.start, p.end, secrets), 1.0,
                    {"secret": p.entry.secret},
                )
            )  # fmt: skip
        for run in suspicious_runs(text):
            out.append(
                Finding(
                    "suspicious-unicode", "suspicious-unicode", Severity.LOW, location,
                    run.start, run.end, " ".join(run.codepoints),
                    make_excerpt(text, run.start, run.end, secrets), 1.0,
                    {"codepoints": list(run.codepoints)},
                )
            )  # fmt: skip
        return out

    def _scan(self, text: str, location: str, codenames: bool | None = None,
              long: bool = True) -> list[Finding]:
        """All findings of one text; `codenames` says whether the screen already named it
        (True: match without screening again, False: it holds none, None: screen it); `long`
        False leaves out the LONG_KINDS (a window of a text matched for them whole)."""
        if not text:
            return []
        if SENTINEL in text:
            text = text.replace(SENTINEL, " ")  # NUL joins batches; in a text it is a separator
        if long:
            pats = self._patterns.scan(text)
            secrets = [(m.start, m.end) for m in pats if m.entry.secret]
        else:
            secrets = []  # the caller makes every excerpt again, masking the whole text's secrets
        out: list[Finding] = []
        if codenames is None:
            matches = self._codenames.scan(text)
        else:
            matches = self._codenames.match(text) if codenames else []
        out += [self._codename_finding(text, m, location, secrets) for m in matches]
        if long:
            out += self._long_findings(text, location, pats, secrets)
        for d in self._digests.scan(text):
            out.append(
                Finding(
                    d.rule.id, "digest", d.rule.severity, location, d.start, d.end, d.digest,
                    make_excerpt(text, d.start, d.end, secrets), 1.0,
                    {"algorithm": d.rule.algorithm},
                )
            )  # fmt: skip
        out.sort(key=lambda f: (f.start or 0, f.end or 0, f.rule_id))
        if self._sealed is not None:  # sealed findings, and no sealed term in any excerpt
            out = self._sealed.findings(text, location, out, secrets, screened=codenames is not None)
        return out
