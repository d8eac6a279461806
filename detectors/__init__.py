"""leakwarden's detection engine: pure, platform-free, publishable on its own.

    from detectors import Engine, load_watchlist
    engine = Engine(load_watchlist({"codenames": [{"id": "cn-1", "term": "Larkspur"}]}))
    engine.scan_text("who has the L a r k 5 p u г weights?")
"""

from .caps import MAX_FINDINGS_PER_RULE
from .engine import Engine
from .excerpt import display_safe
from .files import FileLimits, FileScan
from .files.fingerprints import (
    FilePrint,
    Fingerprint,
    FingerprintSet,
    TensorPrint,
    build_fingerprint,
)
from .model import ENTRY_KINDS, FINDING_KINDS, Finding, Severity
from .normalize import Folded, fold
from .patterns import mask
from .sealed import (
    SealedWatchlist,
    SealKey,
    new_key,
    open_sealed,
    revealing_entries,
    seal_watchlist,
)
from .watchlist import (
    CodenameEntry,
    DigestRule,
    HashEntry,
    PatternEntry,
    Problem,
    Watchlist,
    WatchlistError,
    load_watchlist,
)

__all__ = [
    "ENTRY_KINDS",
    "FINDING_KINDS",
    "MAX_FINDINGS_PER_RULE",
    "CodenameEntry",
    "DigestRule",
    "Engine",
    "FileLimits",
    "FilePrint",
    "FileScan",
    "Finding",
    "Fingerprint",
    "FingerprintSet",
    "Folded",
    "HashEntry",
    "PatternEntry",
    "Problem",
    "SealKey",
    "SealedWatchlist",
    "Severity",
    "TensorPrint",
    "Watchlist",
    "WatchlistError",
    "build_fingerprint",
    "display_safe",
    "fold",
    "load_watchlist",
    "mask",
    "new_key",
    "open_sealed",
    "revealing_entries",
    "seal_watchlist",
]
