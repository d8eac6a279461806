"""The engine: one watchlist compiled once, then `scan_text` for every message."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from .caps import MAX_FINDINGS_PER_RULE, FindingCap
from .codenames import CodenameMatcher
from .digests import DigestMatcher
from .excerpt import MAX_EXCERPT, SpanSet, make_excerpt, mask_spans
from .model import Finding, Severity
from .normalize import SENTINEL
from .patterns import PatternMatcher, mask
from .screen import JOIN, Owners, screen
from .sealed_match import SealedMatcher, placeholder
from .unicode_checks import has_suspicious, iter_suspicious_runs, suspicious_runs
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

# (rule id, start, end) -> whether to report a match: ownership by a window, the findings cap.
# Asked before a finding is built, in text order within each kind.
Admit = Callable[[str, int, int], bool]


def _every(rule_id: str, start: int, end: int) -> bool:
    return True


class Engine:
    """Scans text (and, via `open_stream`, files) against one immutable watchlist.

    Thread-safe: scans share only per-token caches that are safe to race on.
    """

    def __init__(self, watchlist: Watchlist, *, fingerprints: Any = None, file_limits: Any = None,
                 clock: Any = None, max_findings_per_rule: int = MAX_FINDINGS_PER_RULE):
        self.watchlist = watchlist
        self.fingerprints = fingerprints  # detectors.files.fingerprints.FingerprintSet or None
        self.file_limits = file_limits  # detectors.files.limits.FileLimits or None (defaults)
        self.clock = clock  # () -> seconds for FileLimits.max_scan_seconds; detectors/ has no clock
        self.max_findings_per_rule = FindingCap(max_findings_per_rule).cap  # validated
        self._codenames = CodenameMatcher(watchlist.codenames)
        self._patterns = PatternMatcher(watchlist.patterns)
        self._digests = DigestMatcher(watchlist.digests)
        self._sealed = SealedMatcher(watchlist.sealed) if watchlist.sealed is not None else None

    def finding_cap(self) -> FindingCap:
        """A fresh per-text cap on findings of one rule (`max_findings_per_rule`)."""
        return FindingCap(self.max_findings_per_rule)

    def scan_text(self, text: str, location: str = "text") -> list[Finding]:
        """Every finding in `text`; long texts are scanned in overlapping windows. At most
        `max_findings_per_rule` findings of a rule, then one `scan-limit` finding with the total."""
        if len(text) > WINDOW + SHORT_OVERLAP:
            return list(self.scan_text_chunked(text, location, chunk=WINDOW))
        return self._scan_capped(text, location)

    def _scan_capped(self, text: str, location: str, codenames: bool | None = None) -> list[Finding]:
        cap = self.finding_cap()
        found = self._scan(text, location, codenames, admit=lambda r, a, b: cap.take(r))
        return found + cap.limits(location)

    def scan_window(self, text: str, location: str, own_from: int, own_to: int,
                    keep_long: Admit = _every, cap: FindingCap | None = None) -> list[Finding]:
        """One window of a longer stream (files/text.py): the codename and digest findings that
        start in [own_from, own_to), and the pattern and suspicious-Unicode ones of the whole
        window that `keep_long` admits; each only while `cap` (shared by the stream's windows)
        admits its rule."""
        cap = cap or self.finding_cap()
        if len(text) > WINDOW + SHORT_OVERLAP:
            return self._scan_long(text, location, WINDOW, SHORT_OVERLAP, own_from, own_to, cap, keep_long)

        def admit(rule_id: str, a: int, b: int) -> bool:
            return own_from <= a < own_to and cap.take(rule_id)

        def admit_long(rule_id: str, a: int, b: int) -> bool:
            return keep_long(rule_id, a, b) and cap.take(rule_id)

        return self._scan(text, location, admit=admit, admit_long=admit_long)

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
                out[i] = self._scan_capped(part[i], location, codenames=i in named)
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
        unchunked scan's. At most `max_findings_per_rule` of a rule, then a `scan-limit`.
        """
        cap = self.finding_cap()
        yield from self._scan_long(text, location, chunk, overlap, 0, len(text), cap)
        yield from cap.limits(location)

    def _scan_long(self, text: str, location: str, chunk: int, overlap: int, own_from: int,
                   own_to: int, cap: FindingCap, keep_long: Admit = _every) -> list[Finding]:
        """`scan_text_chunked` without the limits, keeping of the short kinds only those
        starting in [own_from, own_to) (scanned in the part of `text` around it), and of the
        long kinds those `keep_long` admits."""
        found, secrets = self._long_findings(text, location, lambda r, a, b: keep_long(r, a, b) and cap.take(r))
        half = overlap // 2
        lo, hi = max(0, own_from - half), min(len(text), own_to + half)
        part = text if (lo, hi) == (0, len(text)) else text[lo:hi]

        def admit(rule_id: str, a: int, b: int) -> bool:  # a, b: offsets in `part`
            return own_from <= a + lo < own_to and cap.take(rule_id)

        short = list(self._windows(part, location, chunk, overlap, admit, codenames=False))
        small, small_overlap = min(chunk, CODENAME_WINDOW), min(overlap, CODENAME_OVERLAP)
        short += self._windows(part, location, small, small_overlap, admit, codenames=True)
        found += (f.shifted(lo) for f in short) if lo else short
        # Sealed matches (scanned with the other kinds) stay redacted in every excerpt.
        sealed = sorted((f.start, f.end, placeholder(f.rule_id)) for f in found if f.detail.get("sealed"))
        found.sort(key=lambda f: (f.start, f.end, f.rule_id))
        out = []
        for f in found:
            # Secrets found by their ends: a long one (a PEM key) that began far before a
            # finding still masks its excerpt.
            near = secrets.near(f.start - 4 * MAX_EXCERPT, f.end + 2 * MAX_EXCERPT)
            i = bisect_left(sealed, (f.start - 4 * MAX_EXCERPT, 0, ""))
            hidden = [sp for sp in sealed[i:] if sp[0] < f.end + 2 * MAX_EXCERPT]
            out.append(replace(f, excerpt=make_excerpt(text, f.start, f.end, near, hidden)))
        return out

    def _windows(self, text: str, location: str, chunk: int, overlap: int, admit: Admit, *,
                 codenames: bool):
        """The owned findings of each window that `admit` admits: codenames only, or the other
        short kinds (digests, sealed). Excerpts are left for the caller to make again."""
        n = len(text)
        half = overlap // 2
        starts = list(range(0, max(n - overlap, 1), chunk - overlap))
        for lo in range(0, len(starts), BATCH):
            group = starts[lo : lo + BATCH]
            windows = [text[a : a + chunk].replace(SENTINEL, " ") for a in group]
            named = screen(self._codenames, windows) if codenames else ()
            for i, (start, w) in enumerate(zip(group, windows, strict=True)):
                own_lo = start + half if start > 0 else 0
                own_hi = start + chunk - overlap + half if start + chunk < n else n

                if codenames:
                    if i not in named:
                        continue
                    a, b = own_lo - start, own_hi - start  # ownership first: it is cheaper
                    found = [self._codename_finding(w, m, location, (), excerpt=False)
                             for m in self._codenames.match(w)
                             if a <= m.start < b and admit(m.entry.id, m.start + start, m.end + start)]
                else:
                    def owned(rule_id: str, a: int, b: int, start=start, own_lo=own_lo, own_hi=own_hi) -> bool:
                        return own_lo <= a + start < own_hi and admit(rule_id, a + start, b + start)

                    found = self._scan(w, location, codenames=False, long=False, admit=owned)
                for f in found:
                    yield f.shifted(start)

    def open_stream(self, location: str, filename: str):
        """A streaming scan of one attachment: `feed(bytes)` then `close() -> list[Finding]`."""
        from .files import open_file_scan  # files/ builds on this module

        return open_file_scan(self, location, filename)

    def mask_secrets(self, text: str) -> str:
        """`text` with every secret-pattern match masked as findings show it: for names (files,
        archive members) that become locations, details and excerpts of other findings."""
        if not any(e.secret for e in self._patterns.entries):
            return text
        return mask_spans(text, self._patterns.secret_spans(text))

    # ---- one text -------------------------------------------------------------------------------

    @staticmethod
    def _codename_finding(text: str, m, location: str, secrets, excerpt: bool = True) -> Finding:
        detail = {"match": "typo" if m.edits else "exact", "edits": m.edits}
        if m.entry.label:
            detail["label"] = m.entry.label
        return Finding(
            m.entry.id, "codename", m.entry.severity, location, m.start, m.end, text[m.start : m.end],
            make_excerpt(text, m.start, m.end, secrets) if excerpt else "", m.score, detail,
        )  # fmt: skip

    def _long_findings(self, text: str, location: str, admit: Admit,
                       excerpts: bool = False) -> tuple[list[Finding], SpanSet]:
        """(findings, secret spans): the pattern and suspicious-Unicode findings of `text` (the
        LONG_KINDS) that `admit` admits, matched over all of it, whatever its length, and the
        span of every secret match, admitted or not, to mask excerpts with. Excerpts are made
        when `excerpts` (a short text), else left for the caller."""
        if SENTINEL in text:
            text = text.replace(SENTINEL, " ")
        spans = SpanSet()
        kept = []
        for entry, a, b in self._patterns.matches(text):
            if entry.secret:
                spans.add(a, b)
            if admit(entry.id, a, b):
                kept.append((entry, a, b))

        def excerpt(a: int, b: int) -> str:
            if not excerpts:
                return ""
            return make_excerpt(text, a, b, spans.near(a - 4 * MAX_EXCERPT, b + 2 * MAX_EXCERPT))

        out: list[Finding] = []
        for entry, a, b in kept:
            raw = text[a:b]
            out.append(
                Finding(
                    entry.id, "pattern", entry.severity, location, a, b,
                    mask(raw) if entry.secret else raw, excerpt(a, b), 1.0, {"secret": entry.secret},
                )
            )  # fmt: skip
        for run in iter_suspicious_runs(text):
            if admit("suspicious-unicode", run.start, run.end):
                out.append(
                    Finding(
                        "suspicious-unicode", "suspicious-unicode", Severity.LOW, location,
                        run.start, run.end, " ".join(run.codepoints), excerpt(run.start, run.end),
                        1.0, {"codepoints": list(run.codepoints)},
                    )
                )  # fmt: skip
        return out, spans

    def _scan(self, text: str, location: str, codenames: bool | None = None, long: bool = True,
              admit: Admit = _every, admit_long: Admit | None = None) -> list[Finding]:
        """All findings of one text that `admit` admits (`admit_long` for the LONG_KINDS, by
        default the same); `codenames` says whether the screen already named it (True: match
        without screening again, False: it holds none, None: screen it); `long` False leaves
        out the LONG_KINDS (a window of a text matched for them whole)."""
        if not text:
            return []
        if SENTINEL in text:
            text = text.replace(SENTINEL, " ")  # NUL joins batches; in a text it is a separator
        out: list[Finding] = []
        secrets: list[tuple[int, int]] = []  # long False: the caller makes every excerpt again
        if long:
            out, spans = self._long_findings(text, location, admit_long or admit, excerpts=True)
            secrets = spans.near(0, len(text) + 1)
        if codenames is None:
            matches = self._codenames.scan(text)
        else:
            matches = self._codenames.match(text) if codenames else []
        out += [self._codename_finding(text, m, location, secrets)
                for m in matches if admit(m.entry.id, m.start, m.end)]
        for d in self._digests.scan(text):
            if admit(d.rule.id, d.start, d.end):
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
            out = [f for f in out if not f.detail.get("sealed") or admit(f.rule_id, f.start, f.end)]
        return out
