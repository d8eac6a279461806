"""Matching uploads against registered fingerprints, and the verdicts.

Verdicts, strongest first (one finding per fingerprint, the strongest that holds):

* ``exact``: the upload's sha256 equals a registered file (a whole checkpoint or one shard).
  Coverage is that file's share of the checkpoint's bytes.
* ``partial``: the upload holds registered bytes verbatim (content-defined chunks): a truncated
  file, a slice, a piece of a split or stored archive, a re-sharded subset. At least
  MIN_PARTIAL_CHUNKS (2) distinct evidence chunks must match: one 64 KiB chunk of matrix data is
  already near-impossible by chance (128-bit digests), two rule out an odd shared block. Headers,
  tokenizer vocabularies, norm vectors and near-constant chunks are never registered as evidence.
  Coverage = registered evidence bytes found / all registered evidence bytes. A complete weight
  file whose tensors cover >= COMPLETE_COVERAGE (0.99) of the model is a conversion, not a
  piece, and falls through to ``derived``.
* ``derived``: a weight file whose matrices match registered ones by canonical digest
  (container, name, order, dtype cast to float16, transposition, Q/K permutation: score 1.0) or
  by value sketch (quantised, fine-tuned: score = correlation). A matrix matches by sketch at
  r >= SKETCH_MATCH_R (0.9) over >= 64 positions: for independent weights r ~ N(0, 1/sqrt(n)),
  so 0.9 is more than 7 standard deviations out, while Q4_0 keeps r > 0.99 and a fine-tune that
  moves weights by 30% of their spread still gives r ~ 0.95. The verdict needs at least
  MIN_DERIVED_MATRICES (2) matched matrices covering at least MIN_DERIVED_SHARE (50%) of the
  upload's own matrix parameters, so one coincidence (or a shared embedding) cannot decide it.
  Score = parameter-weighted mean r; coverage = matched share of the registered matrix parameters.
* ``same-architecture``: no value evidence, but the multiset of matrix shapes (sorted dims, so
  renaming, reordering and transposition do not matter) agrees: at least 90% of the upload's
  matrices have a registered counterpart and they make up at least half of the registered
  model. Severity low: it says "built like ours", not "is ours".
* ``torrent-match`` (kind ``torrent``): a .torrent whose v2 pieces roots name a registered file,
  or whose v1 piece hashes include >= 2 registered pieces or every piece of a registered file
  (all-zero pieces are excluded at registration).

Norm vectors (1-D) and small matrices (< 1024 parameters) never count as evidence, and GGUF
metadata (tokenizers) is header, not chunk evidence: neither can make a match on its own.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from detectors.files.fingerprints.cdc import Chunk
from detectors.files.fingerprints.records import Fingerprint
from detectors.files.fingerprints.register import StreamAnalysis
from detectors.files.fingerprints.tensors import TensorStats
from detectors.files.fingerprints.torrent import (
    MAX_TORRENT_BYTES,
    looks_like_torrent,
    parse_torrent,
)
from detectors.model import Finding, Severity

MIN_PARTIAL_CHUNKS = 2
COMPLETE_COVERAGE = 0.99
SKETCH_MATCH_R = 0.9
MIN_DERIVED_MATRICES = 2
MIN_DERIVED_SHARE = 0.5
ARCH_UPLOAD_SHARE = 0.9
ARCH_MODEL_SHARE = 0.5
MIN_TORRENT_PIECES = 2
MAX_SHAPES = 100_000  # distinct shapes remembered per upload (structure check)

VERDICT_ORDER = ("exact", "partial", "derived", "same-architecture")


def _shape_key(rows: int, cols: int) -> tuple[int, int]:
    return (min(rows, cols), max(rows, cols))


@dataclass
class _SketchBank:
    """Registered sketches of one (rows, cols) shape stacked for a single matrix product."""

    owners: list[tuple[int, int]] = field(default_factory=list)  # (fingerprint index, tensor index)
    rows: list[np.ndarray] = field(default_factory=list)
    matrix: np.ndarray | None = None

    def freeze(self) -> None:
        self.matrix = np.stack(self.rows) if self.rows else None
        self.rows = []


class FingerprintSet:
    """Immutable in-memory index over registered fingerprints."""

    def __init__(self, fingerprints: Iterable[Fingerprint] = ()) -> None:
        self.fingerprints: tuple[Fingerprint, ...] = tuple(fingerprints)
        self._sha: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
        self._chunks: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
        self._chunk_total = [0] * len(self.fingerprints)
        self._digests: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
        self._banks: dict[tuple[int, int], _SketchBank] = defaultdict(_SketchBank)
        self._matrix_params = [0] * len(self.fingerprints)
        self._shapes: list[Counter[tuple[int, int]]] = []
        self._v1: dict[tuple[int, bytes], list[tuple[int, int, int]]] = defaultdict(list)
        self._v2: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
        for i, fp in enumerate(self.fingerprints):
            self._index(i, fp)
        for bank in self._banks.values():
            bank.freeze()
        self._sha, self._chunks, self._digests = dict(self._sha), dict(self._chunks), dict(self._digests)

    def _index(self, i: int, fp: Fingerprint) -> None:
        for j, f in enumerate(fp.files):
            self._sha[f.sha256].append((i, j))
            self._v2[f.v2_root].append((i, j))
            for digest, size in f.iter_chunks():
                self._chunks[digest].append((i, size))
                self._chunk_total[i] += size
            for piece_size, hashes in f.v1_pieces:
                n_pieces = len(hashes) // 20
                for k in range(0, len(hashes), 20):
                    self._v1[(piece_size, hashes[k : k + 20])].append((i, j, n_pieces))
        shapes: Counter[tuple[int, int]] = Counter()
        for t_idx, t in enumerate(fp.tensors):
            if not t.distinctive:
                continue
            rows, cols = t.matrix_shape
            shapes[_shape_key(rows, cols)] += 1
            self._matrix_params[i] += t.params
            for d in {t.row_digest, t.col_digest} - {None}:
                self._digests[d].append((i, t_idx))
            sketch = t.sketch_array()
            if sketch is not None:
                bank = self._banks[(rows, cols)]
                bank.owners.append((i, t_idx))
                bank.rows.append(sketch)
        self._shapes.append(shapes)

    def __len__(self) -> int:
        return len(self.fingerprints)

    def open(self, filename: str, location: str | None = None, *, digest: bool = True) -> Matcher:
        """Start matching one uploaded file (or archive member); feed it every byte.

        `digest=False`: the caller hashes the stream itself and passes the sha256 to `close`.
        """
        return Matcher(self, filename, location or f"attachment:{filename}", digest=digest)


@dataclass
class _FpEvidence:
    chunks: set[bytes] = field(default_factory=set)
    chunk_bytes: int = 0
    matched_tensors: dict[int, float] = field(default_factory=dict)  # registered tensor -> best r
    upload_params: int = 0  # upload matrix parameters that matched
    weighted_r: float = 0.0
    by_digest: int = 0
    by_sketch: int = 0


class Matcher:
    """Streams one upload past the fingerprint indexes; `close` returns the findings."""

    def __init__(self, fps: FingerprintSet, filename: str, location: str, digest: bool = True) -> None:
        self._fps = fps
        self.filename = filename
        self.location = location
        self._evidence: dict[int, _FpEvidence] = defaultdict(_FpEvidence)
        self._upload_matrix_params = 0
        self._upload_shapes: Counter[tuple[int, int]] = Counter()
        self._torrent: bytearray | None = bytearray()  # buffered while it may be a .torrent
        self._analysis = (StreamAnalysis(self._on_chunk, self._on_tensor, digest=digest)
                          if len(fps) else None)

    @property
    def analysis(self) -> StreamAnalysis | None:
        """The stream's layout analysis (None without fingerprints)."""
        return self._analysis

    def feed(self, data: bytes | memoryview) -> None:
        """Consume the next bytes of the upload."""
        if self._analysis is None:
            return
        self._analysis.feed(data)
        if self._torrent is not None:
            # Only bencoded dictionaries are kept, and only up to the size a .torrent can have.
            head = (bytes(self._torrent[:2]) + bytes(data[:2]))[:2]
            too_big = len(self._torrent) + len(data) > MAX_TORRENT_BYTES
            if too_big or (len(head) == 2 and not looks_like_torrent(head)):
                self._torrent = None
            else:
                self._torrent += data

    def close(self, sha256: bytes | None = None) -> list[Finding]:
        """End of upload: the verdict for each fingerprint that matched."""
        if self._analysis is None:
            return []
        sha = self._analysis.close() or sha256 or b""
        findings = self._weight_findings(sha)
        if self._torrent:
            findings += self._torrent_findings(bytes(self._torrent))
        self._torrent = None
        return findings

    # -- evidence, as the stream goes -------------------------------------------------------

    def _on_chunk(self, chunk: Chunk) -> None:
        for i, size in self._fps._chunks.get(chunk.digest, ()):
            ev = self._evidence[i]
            if chunk.digest not in ev.chunks:
                ev.chunks.add(chunk.digest)
                ev.chunk_bytes += size

    def _on_tensor(self, stats: TensorStats) -> None:
        if not stats.distinctive:
            return
        rows, cols = stats.matrix_shape
        self._upload_matrix_params += stats.params
        if len(self._upload_shapes) < MAX_SHAPES or _shape_key(rows, cols) in self._upload_shapes:
            self._upload_shapes[_shape_key(rows, cols)] += 1
        best: dict[int, tuple[float, int, bool]] = {}  # fingerprint -> (r, tensor, by digest)
        for digest in (stats.row_digest, stats.col_digest):
            for i, t_idx in self._fps._digests.get(digest, ()) if digest else ():
                if i not in best or t_idx not in self._evidence[i].matched_tensors:
                    best[i] = (1.0, t_idx, True)
        # Same orientation: column sums against column sums; transposed: our row sums are theirs.
        for key, sketch in (((rows, cols), stats.sketch_cols), ((cols, rows), stats.sketch_rows)):
            bank = self._fps._banks.get(key)
            if sketch is None or bank is None or bank.matrix is None:
                continue
            corr = bank.matrix @ sketch / len(sketch)
            for k in np.flatnonzero(corr >= SKETCH_MATCH_R):
                i, t_idx = bank.owners[k]
                r = float(min(corr[k], 1.0))
                if i not in best or (not best[i][2] and r > best[i][0]):
                    best[i] = (r, t_idx, False)
        for i, (r, t_idx, by_digest) in best.items():
            ev = self._evidence[i]
            ev.matched_tensors[t_idx] = max(r, ev.matched_tensors.get(t_idx, 0.0))
            ev.upload_params += stats.params
            ev.weighted_r += r * stats.params
            if by_digest:
                ev.by_digest += 1
            else:
                ev.by_sketch += 1

    # -- verdicts -----------------------------------------------------------------------------

    def _weight_findings(self, sha: bytes) -> list[Finding]:
        fps = self._fps
        findings: list[Finding] = []
        exact = {i: j for i, j in fps._sha.get(sha, ())}
        for i, fp in enumerate(fps.fingerprints):
            if i in exact:
                size = fp.files[exact[i]].size
                findings.append(self._finding(fp, "exact", size / max(fp.total_bytes, 1), 1.0,
                                              {"file": fp.files[exact[i]].name}))
                continue
            ev = self._evidence.get(i)
            if ev is None:
                continue
            verdict = self._value_verdict(i, fp, ev)
            if verdict is not None:
                findings.append(verdict)
        if not findings:
            findings = self._architecture_findings()
        return findings

    def _value_verdict(self, i: int, fp: Fingerprint, ev: _FpEvidence) -> Finding | None:
        fps = self._fps
        matched_params = sum(fp.tensors[t].params for t in ev.matched_tensors)
        tensor_cov = matched_params / fps._matrix_params[i] if fps._matrix_params[i] else 0.0
        complete_copy = self._analysis.complete and tensor_cov >= COMPLETE_COVERAGE
        if len(ev.chunks) >= MIN_PARTIAL_CHUNKS and not complete_copy:
            coverage = ev.chunk_bytes / max(fps._chunk_total[i], 1)
            return self._finding(fp, "partial", coverage, 1.0, {"chunks": len(ev.chunks)})
        share = ev.upload_params / self._upload_matrix_params if self._upload_matrix_params else 0.0
        if len(ev.matched_tensors) >= MIN_DERIVED_MATRICES and share >= MIN_DERIVED_SHARE:
            score = ev.weighted_r / ev.upload_params
            return self._finding(fp, "derived", tensor_cov, score, {
                "matrices": len(ev.matched_tensors), "by_digest": ev.by_digest,
                "by_sketch": ev.by_sketch, "container": self._analysis.container,
            })
        return None

    def _architecture_findings(self) -> list[Finding]:
        findings = []
        upload_total = sum(self._upload_shapes.values())
        if upload_total < MIN_DERIVED_MATRICES:
            return findings
        for i, fp in enumerate(self._fps.fingerprints):
            shapes = self._fps._shapes[i]
            shared = sum((self._upload_shapes & shapes).values())
            model_total = sum(shapes.values())
            if shared >= ARCH_UPLOAD_SHARE * upload_total and shared >= ARCH_MODEL_SHARE * model_total:
                findings.append(self._finding(fp, "same-architecture", shared / max(model_total, 1),
                                              shared / upload_total, {}, severity=Severity.LOW))
        return findings

    def _torrent_findings(self, data: bytes) -> list[Finding]:
        info = parse_torrent(data)
        if info is None:
            return []
        fps = self._fps
        v1_hits: dict[int, set[bytes]] = defaultdict(set)
        per_file: dict[tuple[int, int], set[bytes]] = defaultdict(set)
        whole_files: dict[int, int] = defaultdict(int)  # fingerprint -> files with every piece listed
        for piece in info.pieces:
            for i, j, n_pieces in fps._v1.get((info.piece_length, piece), ()):
                v1_hits[i].add(piece)
                per_file[(i, j)].add(piece)
                if len(per_file[(i, j)]) == n_pieces:
                    whole_files[i] += 1
        v2_hits: dict[int, set[int]] = defaultdict(set)
        for _, _, root in info.v2_roots:
            for i, j in fps._v2.get(root, ()):
                v2_hits[i].add(j)
        findings = []
        for i, fp in enumerate(fps.fingerprints):
            v1_bytes = min(len(v1_hits.get(i, ())) * info.piece_length, fp.total_bytes)
            v2_bytes = sum(fp.files[j].size for j in v2_hits.get(i, ()))
            # Two pieces, or a whole registered file (one piece when the piece size exceeds it).
            if len(v1_hits.get(i, ())) < MIN_TORRENT_PIECES and not whole_files.get(i) and not v2_bytes:
                continue
            coverage = max(v1_bytes, v2_bytes) / max(fp.total_bytes, 1)
            findings.append(self._finding(fp, "torrent-match", coverage, 1.0, {
                "torrent_name": info.name, "piece_length": info.piece_length,
                "v1_pieces": len(v1_hits.get(i, ())), "v2_files": len(v2_hits.get(i, ())),
            }, kind="torrent"))
        return findings + self._alignment_finding(info)

    def _alignment_finding(self, info) -> list[Finding]:
        """A low scan-limit naming the files of a v1 torrent whose pieces could not be compared
        (they do not start on a piece boundary); the files that do were checked."""
        unaligned = info.unaligned()
        if not unaligned:
            return []
        names = [path for path, _, _ in unaligned]
        checked = [path for path, _, offset in info.files if offset % info.piece_length == 0]
        return [Finding(
            rule_id="scan-limit", kind="scan-limit", severity=Severity.LOW, location=self.location,
            start=None, end=None, matched="torrent-piece-alignment",
            excerpt=(f"{len(names)} file(s) of {self.filename} start inside a piece: their pieces "
                     f"span other files and were not compared: {', '.join(names[:5])}")[:160],
            score=1.0, detail={"limit": "torrent-piece-alignment", "piece_length": info.piece_length,
                               "unchecked": names[:64], "unchecked_count": len(names),
                               "checked": checked[:64], "checked_count": len(checked)},
        )]

    def _finding(self, fp: Fingerprint, verdict: str, coverage: float, score: float,
                 extra: dict, severity: Severity | None = None, kind: str = "weights") -> Finding:
        coverage = round(min(max(coverage, 0.0), 1.0), 4)
        score = round(score, 4) if math.isfinite(score) else 0.0
        detail = {"verdict": verdict, "coverage": coverage, "score": score,
                  "fingerprint_id": fp.id, **extra}
        return Finding(
            rule_id=fp.id, kind=kind, severity=severity or fp.severity, location=self.location,
            start=None, end=None, matched=self.filename,
            excerpt=f"{verdict} match of fingerprint {fp.id}: coverage {coverage:.0%}, score {score:.3f}"[:160],
            score=score, detail=detail,
        )
