"""Model-weight fingerprints: register checkpoints as digests and sketches, match uploads.

Pure code (no sqlite, asyncio or network). `build_fingerprint` turns trusted files into
`Fingerprint` records; `FingerprintSet(records).open(filename)` gives a `Matcher` to `feed`
every byte of an upload and `close` for findings (kind "weights" or "torrent").
"""

from detectors.files.fingerprints.matcher import VERDICT_ORDER, FingerprintSet, Matcher
from detectors.files.fingerprints.records import FilePrint, Fingerprint, TensorPrint
from detectors.files.fingerprints.register import build_fingerprint, fingerprint_file

__all__ = [
    "VERDICT_ORDER",
    "FilePrint",
    "Fingerprint",
    "FingerprintSet",
    "Matcher",
    "TensorPrint",
    "build_fingerprint",
    "fingerprint_file",
]
