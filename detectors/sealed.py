"""Sealed watchlists: codenames and known-file digests kept only as keyed digests.

`seal_watchlist` turns the codenames and hashes of a watchlist into a TOML file that holds, in
clear, only each entry's id, kind, severity and label; everything matching needs (keyed BLAKE2b
digests of every term's folded form, of its deletion neighbourhood for typos, of each word of a
multi-word term, of each known digest, and the lengths and budgets that go with them) is one
AES-256-GCM blob, padded to a size bucket. `open_sealed` checks the key and opens it into a
`SealedWatchlist` for `sealed_match.SealedMatcher`. No term is ever rebuilt: matching digests
what a message says and compares digests. docs/sealed.md says exactly what the file reveals.

Keys: the key from the environment goes through scrypt with the file's random salt, so a weak
key is slow to guess and two sealings never share digests; BLAKE2b's `person` parameter
separates the digests of each purpose. A key check value says "wrong key" before anything else.
`SealKey.content_key` derives, under a salt of its own, the key the hit history digests whole
messages with (bot/store/digest.py), so a sealed deployment's database cannot confirm a guess.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from .codenames import MIN_TERM_CHARS
from .codenames import _budgets as _term_budgets  # one budget rule for plain and sealed terms
from .fuzzyindex import PREFIX, deletions
from .normalize import LEET, fold, fold_term
from .sealed_fuzzy import MAX_KEY_CHARS, NO_POSITION, key_variants
from .watchlist import (
    DIGEST_LENGTHS,
    CodenameEntry,
    Problem,
    Watchlist,
    WatchlistError,
    _Entry,
    _problems_from,
)

FORMAT = "leakwarden-sealed/1"
DEFAULT_COST = 1 << 14  # scrypt N: ~50 ms and 16 MB once at start-up
MIN_KEY_CHARS = 16
ALGORITHMS = ("md5", "sha1", "sha256", "sha512")
POLY_BITS = 24  # bits of each term's exact-match screen value kept: a filter, not an identifier
_MIN_BLOB = 1 << 16
# The content key's scrypt salt: fixed (so the key is the same at every start and every sealing
# with one sealing key) and longer than a file's 16 random bytes (so the two never coincide).
_CONTENT_SALT = b"leakwarden.content-digest-key.v1"


class SealKey:
    """A sealing key. It never shows in reprs, logs or error messages."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str | bytes):
        raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        raw = raw.strip()
        if len(raw) < MIN_KEY_CHARS:
            raise ValueError(
                f"the sealing key is too short (at least {MIN_KEY_CHARS} characters; "
                "`leakwarden seal --new-key` prints a good one)"
            )
        self._secret = raw

    def __repr__(self) -> str:
        return "SealKey(<hidden>)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a sealing key cannot be pickled")

    def _master(self, salt: bytes, cost: int) -> bytes:
        return hashlib.scrypt(self._secret, salt=salt, n=cost, r=8, p=1, maxmem=1 << 28, dklen=32)

    def content_key(self) -> bytes:
        """32 bytes for the hit history's content digests, derived under their own salt.

        scrypt (as for sealing) keeps a weak key as slow to guess from a database as from a
        sealed file; the key tells nothing of the sealing key or of any file's digests."""
        return self._master(_CONTENT_SALT, DEFAULT_COST)


def new_key() -> str:
    """A fresh random sealing key (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


class Hashers:
    """The keyed digests of one sealed file, derived from the key and the file's salt.

    Pickles as its derived master key so that attachment worker processes (bot/scanworker.py,
    over a pipe) can match too; its repr shows nothing."""

    __slots__ = ("_exact", "_hash", "_master", "_prefix", "_tag", "_variant", "blob_key", "key_check")

    def __init__(self, master: bytes):
        def keyed(person: bytes, size: int = 8):
            return hashlib.blake2b(key=master, person=person, digest_size=size)

        self._master = master
        self._exact = keyed(b"lw.exact")
        self._prefix = keyed(b"lw.prefix", 4)
        self._variant = keyed(b"lw.variant")
        self._hash = keyed(b"lw.hash")
        self._tag = keyed(b"lw.tag", 6)
        self.key_check = keyed(b"lw.check", 16).hexdigest()
        self.blob_key = keyed(b"lw.blob", 32).digest()

    @classmethod
    def derive(cls, key: SealKey, salt: bytes, cost: int) -> Hashers:
        return cls(key._master(salt, cost))

    def __reduce__(self):
        return (Hashers, (self._master,))

    def __repr__(self) -> str:
        return "Hashers(<keyed>)"

    @staticmethod
    def _run(state, texts: Sequence[str], dtype: str) -> np.ndarray:
        out = []
        for t in texts:
            h = state.copy()
            h.update(t.encode("utf-8", "surrogatepass"))
            out.append(h.digest())
        return np.frombuffer(b"".join(out), dtype=dtype).copy()

    def exact(self, texts: Sequence[str]) -> np.ndarray:
        """int64 digests of folded terms, words and spans of text."""
        return self._run(self._exact, texts, "<i8")

    def exact_one(self, text: str) -> int:
        h = self._exact.copy()
        h.update(text.encode("utf-8", "surrogatepass"))
        return int.from_bytes(h.digest(), "little", signed=True)

    def prefix(self, texts: Sequence[str]) -> np.ndarray:
        """uint32 digests of prefix deletions (the typo candidate filter)."""
        return self._run(self._prefix, texts, "<u4")

    def variant(self, texts: Sequence[str]) -> np.ndarray:
        """int64 digests of deletion variants (the exact typo distance), of their UTF-32."""
        out = []
        for t in texts:
            h = self._variant.copy()
            h.update(t.encode("utf-32-le", "surrogatepass"))
            out.append(h.digest())
        return np.frombuffer(b"".join(out), dtype="<i8").copy()

    def variant_rows(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """`variant` of each row of a UTF-32 code matrix, cut to its length (no str built)."""
        width = codes.shape[1] * 4
        buf = memoryview(np.ascontiguousarray(codes, dtype="<u4").tobytes())
        out = []
        for i, n in enumerate(lengths.tolist()):
            h = self._variant.copy()
            h.update(buf[i * width : i * width + 4 * n])
            out.append(h.digest())
        return np.frombuffer(b"".join(out), dtype="<i8").copy()

    def known_digest(self, hexdigest: str) -> int:
        h = self._hash.copy()
        h.update(hexdigest.lower().encode("ascii"))
        return int.from_bytes(h.digest(), "little", signed=True)

    def tag(self, text: str) -> str:
        """A short keyed tag of what a message wrote: groups hits without showing it."""
        h = self._tag.copy()
        h.update(text.encode("utf-8", "surrogatepass"))
        return h.hexdigest()


# ---- entries ---------------------------------------------------------------------------------


class SealedEntry(_Entry):
    """What a sealed file shows of an entry: its id, kind, severity and label."""

    kind: Literal["codename", "hash"]


@dataclass(frozen=True, slots=True)
class SealedDigestRule:
    """A sealed known-file digest's rule (the `DigestRule` shape, marked sealed)."""

    id: str
    severity: Any
    algorithm: str
    label: str | None = None
    sealed: bool = True


# ---- the index -------------------------------------------------------------------------------


def _build_index(
    codenames: Sequence[tuple[int, CodenameEntry]],
    hashes: Sequence[tuple[int, str]],
    h: Hashers,
    random_bytes: Callable[[int], bytes],
) -> dict[str, np.ndarray]:
    """The arrays matching needs, from plain entries (entry index into the sealed entry list)."""
    form_entry, form_len, form_budget, form_word0, form_nwords = [], [], [], [], []
    word_strings, word_budget, word_key = [], [], []
    key_form, key_word, key_budget, key_explicit = [], [], [], []
    exact_strings, exact_form = [], []
    prefix_strings: set[str] = set()
    var_strings, var_key, var_dels = [], [], []
    maxlen = 0

    def add_key(s: str, fid: int, j: int, budget: int, explicit: bool) -> int:
        nonlocal maxlen
        kid = len(key_form)
        key_form.append(fid)
        key_word.append(j)
        key_budget.append(budget)
        key_explicit.append(explicit)
        if budget > 0:
            maxlen = max(maxlen, len(s))
            prefix_strings.update(deletions(s[:PREFIX], budget))
            for variant, dels in key_variants(s, budget):
                var_strings.append(variant)
                var_key.append(kid)
                var_dels.append(tuple(dels) + (NO_POSITION,) * (3 - len(dels)))
        return kid

    for ei, entry in codenames:
        explicit = entry.max_edits != "auto"
        for term in (entry.term, *entry.aliases):
            compact, words = fold_term(term)
            if len(compact) < MIN_TERM_CHARS:
                continue
            budget, word_budgets = _term_budgets(entry, compact, words)
            fid = len(form_entry)
            form_entry.append(ei)
            form_len.append(len(compact))
            form_budget.append(budget)
            form_word0.append(len(word_strings))
            form_nwords.append(len(words))
            exact_strings.append(compact)
            exact_form.append(fid)
            add_key(compact, fid, -1, budget, explicit)
            multi = len(words) > 1
            for j, (w, b) in enumerate(zip(words, word_budgets, strict=True)):
                word_strings.append(w)
                word_budget.append(b)
                word_key.append(add_key(w, fid, j, b, explicit) if multi else -1)

    exact = h.exact(exact_strings)
    order = np.argsort(exact, kind="stable")
    var = h.variant(var_strings)
    vorder = np.argsort(var, kind="stable")
    prefix = np.unique(h.prefix(sorted(prefix_strings)))
    poly_r = int.from_bytes(random_bytes(8), "little") >> 1 | 1  # odd: invertible mod 2^64
    poly = np.unique(np.array([poly_hash(s, poly_r) for s in exact_strings], dtype=np.uint32))

    hash_digest = np.array([h.known_digest(d) for _, d in hashes], dtype=np.int64)
    horder = np.argsort(hash_digest, kind="stable")
    hash_entry = np.array([ei for ei, _ in hashes], dtype=np.int32)
    hash_alg = np.array([ALGORITHMS.index(DIGEST_LENGTHS[len(d)]) for _, d in hashes], dtype=np.int8)

    explicit_b = [b for b, x in zip(key_budget, key_explicit, strict=True) if x] or [0]
    auto_b = [b for b, x in zip(key_budget, key_explicit, strict=True) if not x] or [0]
    params = np.array(
        [
            min(form_len, default=0), max(form_len, default=0), maxlen,
            max(explicit_b), max(auto_b), poly_r,
        ],
        dtype=np.int64,
    )  # fmt: skip
    return {
        "params": params,
        "form_entry": np.array(form_entry, dtype=np.int32),
        "form_len": np.array(form_len, dtype=np.int32),
        "form_budget": np.array(form_budget, dtype=np.int8),
        "form_word0": np.array(form_word0, dtype=np.int32),
        "form_nwords": np.array(form_nwords, dtype=np.int32),
        "word_digest": h.exact(word_strings),
        "word_len": np.array([len(w) for w in word_strings], dtype=np.int32),
        "word_budget": np.array(word_budget, dtype=np.int8),
        "word_key": np.array(word_key, dtype=np.int32),
        "key_form": np.array(key_form, dtype=np.int32),
        "key_word": np.array(key_word, dtype=np.int32),
        "key_budget": np.array(key_budget, dtype=np.int8),
        "key_explicit": np.array(key_explicit, dtype=bool),
        "exact_digest": exact[order],
        "exact_form": np.array(exact_form, dtype=np.int32)[order],
        "poly": poly,
        "prefix_digest": prefix,
        "var_digest": var[vorder],
        "var_key": np.array(var_key, dtype=np.int32)[vorder],
        "var_dels": np.array(var_dels, dtype=np.uint8).reshape(-1, 3)[vorder],
        "hash_digest": hash_digest[horder],
        "hash_entry": hash_entry[horder],
        "hash_alg": hash_alg[horder],
    }


_ARRAYS = (
    "params", "form_entry", "form_len", "form_budget", "form_word0", "form_nwords",
    "word_digest", "word_len", "word_budget", "word_key", "key_form", "key_word", "key_budget",
    "key_explicit", "exact_digest", "exact_form", "poly", "prefix_digest", "var_digest",
    "var_key", "var_dels", "hash_digest", "hash_entry", "hash_alg",
)  # fmt: skip


def poly_hash(s: str, r: int) -> int:
    """The exact-match screen value of a folded string: the top bits of sum(c_k * r^k) mod 2^64
    (native.SpanScreen computes it for every boundary span; the digest decides, not this)."""
    h = 0
    for c in reversed(s):
        h = (h * r + ord(c)) & ((1 << 64) - 1)
    return h >> (64 - POLY_BITS)


def _bucket(n: int) -> int:
    """n rounded up to 4 significant bits (at most 12.5% more), and at least 64 KiB."""
    n = max(n, _MIN_BLOB)
    shift = max(n.bit_length() - 4, 0)
    return -(-n >> shift) << shift


def _pack(arrays: dict[str, np.ndarray], random_bytes: Callable[[int], bytes]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    body = buf.getvalue()
    size = _bucket(len(body) + 8)
    return len(body).to_bytes(8, "little") + body + random_bytes(size - len(body) - 8)


def _unpack(plain: bytes) -> dict[str, np.ndarray]:
    n = int.from_bytes(plain[:8], "little")
    with np.load(io.BytesIO(plain[8 : 8 + n]), allow_pickle=False) as z:
        return {name: z[name] for name in _ARRAYS}


def _aad(header: dict[str, Any], entries: Sequence[SealedEntry]) -> bytes:
    """What the blob's authentication covers besides itself: the header and every entry."""
    public = [[e.id, e.kind, int(e.severity), e.label] for e in entries]
    return json.dumps({**header, "entries": public}, sort_keys=True).encode()


# ---- sealing ---------------------------------------------------------------------------------


def revealing_entries(watchlist: Watchlist) -> list[Problem]:
    """Entries whose id or label spells one of their terms (or a word of one) in clear."""
    out = []
    for c in watchlist.codenames:
        pieces = set()
        for term in (c.term, *c.aliases):
            compact, words = fold_term(term)
            pieces.add(compact)
            pieces.update(w for w in words if len(w) >= 4)
        for key, value in (("id", c.id), ("label", c.label)):
            if value and any(p in fold(value).compact for p in pieces if p):
                out.append(
                    Problem("codenames", c.id, key, "spells its term: a sealed file shows ids and labels in clear")
                )
    for digest, rule in watchlist.digests.items():
        for key, value in (("id", rule.id), ("label", rule.label)):
            if value and digest[:8] in value.lower():
                out.append(Problem("hashes", rule.id, key, "holds its digest: a sealed file shows ids and labels in clear"))
    return out


def seal_watchlist(
    watchlist: Watchlist,
    key: SealKey,
    *,
    cost: int = DEFAULT_COST,
    random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    allow_revealing: bool = False,
) -> str:
    """The sealed TOML text of the watchlist's codenames and hashes (patterns are not sealed).

    Refused (WatchlistError) when an id or label spells its term, unless `allow_revealing`."""
    if not allow_revealing and (problems := revealing_entries(watchlist)):
        raise WatchlistError(problems)
    for c in watchlist.codenames:
        for term in (c.term, *c.aliases):
            compact, _ = fold_term(term)
            if c.fuzzy and c.max_edits != 0 and len(compact) > MAX_KEY_CHARS:
                raise WatchlistError(
                    [Problem("codenames", c.id, "term", f"longer than {MAX_KEY_CHARS} letters: "
                             "a sealed term this long needs fuzzy = false")]
                )  # fmt: skip
    entries: list[SealedEntry] = []
    codenames, hashes = [], []
    for c in watchlist.codenames:
        codenames.append((len(entries), c))
        entries.append(SealedEntry(id=c.id, kind="codename", severity=c.severity, label=c.label))
    for digest, rule in watchlist.digests.items():
        hashes.append((len(entries), digest))
        entries.append(SealedEntry(id=rule.id, kind="hash", severity=rule.severity, label=rule.label))

    salt = random_bytes(16)
    hashers = Hashers.derive(key, salt, cost)
    header = {
        "format": FORMAT, "kdf": "scrypt", "kdf_cost": cost, "salt": salt.hex(),
        "key_check": hashers.key_check,
    }  # fmt: skip
    plain = _pack(_build_index(codenames, hashes, hashers, random_bytes), random_bytes)
    nonce = random_bytes(12)
    blob = AESGCM(hashers.blob_key).encrypt(nonce, plain, _aad(header, entries))

    lines = [
        "# leakwarden sealed watchlist, made by `leakwarden seal`. It holds no codename and no",
        "# known-file digest: only keyed digests, opened with the sealing key (docs/sealed.md).",
        "# Ids, kinds, severities and labels are shown and authenticated: re-seal to change them.",
        *(f"{k} = {json.dumps(v)}" for k, v in header.items()),
        f'nonce = "{nonce.hex()}"',
    ]
    for e in entries:
        lines += ["", "[[entries]]", f"id = {json.dumps(e.id)}", f'kind = "{e.kind}"',
                  f'severity = "{e.severity}"']  # fmt: skip
        if e.label is not None:
            lines.append(f"label = {json.dumps(e.label, ensure_ascii=False)}")
    lines += ["", "[index]", f"data = '{base64.b64encode(blob).decode()}'", ""]
    return "\n".join(lines)


# ---- opening ---------------------------------------------------------------------------------


class SealedWatchlist:
    """An opened sealed file: its entries, its keyed digests and the arrays matching needs."""

    def __init__(self, source: str, entries: tuple[SealedEntry, ...], hashers: Hashers,
                 arrays: dict[str, np.ndarray], version: str):  # fmt: skip
        self.source = source
        self.entries = entries
        self.hashers = hashers
        self.arrays = arrays
        self.version = version
        codenames = [e for e in entries if e.kind == "codename"]
        self.codenames = tuple(codenames)
        self.digests = {
            int(d): SealedDigestRule(entries[ei].id, entries[ei].severity, ALGORITHMS[alg], entries[ei].label)
            for d, ei, alg in zip(
                arrays["hash_digest"].tolist(), arrays["hash_entry"].tolist(),
                arrays["hash_alg"].tolist(), strict=True,
            )
        }  # fmt: skip

    def __repr__(self) -> str:
        kinds = {k: sum(e.kind == k for e in self.entries) for k in ("codename", "hash")}
        return f"SealedWatchlist({self.source!r}: {kinds['codename']} codename(s), {kinds['hash']} hash(es))"

    @property
    def digest_algorithms(self) -> frozenset[str]:
        return frozenset(r.algorithm for r in self.digests.values())

    def digest_rule(self, hexdigest: str) -> SealedDigestRule | None:
        """The sealed rule of a known-file digest (hex, any case), or None."""
        if len(hexdigest) not in DIGEST_LENGTHS or not self.digests:
            return None
        return self.digests.get(self.hashers.known_digest(hexdigest))

    def shown(self, written: str) -> str:
        """What a finding shows for a sealed match: a keyed tag of the spelling, never it.

        Folded like the store's match key, so "L4rkspur" and "Larkspur" (or a digest in any
        case) share a tag and an incident while the term stays out of findings and alerts."""
        return "sealed:" + self.hashers.tag(fold(written, LEET).compact or written)

    def entry(self, rule_id: str) -> SealedEntry | None:
        return next((e for e in self.entries if e.id == rule_id), None)


def _line_of(text: str, needle: str, start: int = 0) -> int | None:
    at = text.find(needle, start)
    return None if at < 0 else text.count("\n", 0, at) + 1


def _entry_line(text: str, index: int) -> int | None:
    """Line of the index-th `[[entries]]` header (only asked for when an entry is wrong)."""
    at = -1
    for _ in range(index + 1):
        at = text.find("[[entries]]", at + 1)
        if at < 0:
            return None
    return text.count("\n", 0, at) + 1


def open_sealed(text: str, key: SealKey, *, source: str = "<sealed>") -> SealedWatchlist:
    """Check the key and open a sealed file; WatchlistError names the file, entry and key."""

    def problem(key_name: str | None, message: str, entry_id: str | None = None, line=None):
        return Problem("sealed", entry_id, key_name, message, source=source, line=line)

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise WatchlistError([problem(None, f"invalid TOML: {err}")]) from None
    problems: list[Problem] = []
    if raw.get("format") != FORMAT:
        raise WatchlistError([problem("format", f"is {raw.get('format')!r}, expected {FORMAT!r} "
                                      "(a file made by `leakwarden seal`)", line=_line_of(text, "format"))])  # fmt: skip
    header: dict[str, Any] = {"format": FORMAT}
    for name, kind in (("kdf", str), ("kdf_cost", int), ("salt", str), ("key_check", str), ("nonce", str)):
        value = raw.get(name)
        if not isinstance(value, kind):
            problems.append(problem(name, "is missing or malformed", line=_line_of(text, name)))
        elif name != "nonce":
            header[name] = value
    cost = raw.get("kdf_cost")
    if raw.get("kdf") != "scrypt" or not isinstance(cost, int) or cost < 2 or cost & (cost - 1) or cost > 1 << 20:
        problems.append(problem("kdf_cost", "must be scrypt with a power of two up to 2^20"))
    try:
        salt = bytes.fromhex(str(raw.get("salt")))
        nonce = bytes.fromhex(str(raw.get("nonce")))
    except ValueError:
        problems.append(problem("salt", "salt and nonce must be hexadecimal"))
    data = raw.get("index", {}).get("data") if isinstance(raw.get("index"), dict) else None
    if not isinstance(data, str):
        problems.append(problem("index.data", "is missing"))

    entries: list[SealedEntry] = []
    raw_entries = raw.get("entries", [])
    if not isinstance(raw_entries, list):
        problems.append(problem("entries", "must be an array of tables ([[entries]])"))
        raw_entries = []
    for i, item in enumerate(raw_entries):
        entry_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
        try:
            entries.append(SealedEntry.model_validate(item))
        except ValidationError as err:
            line = _entry_line(text, i)
            for p in _problems_from(err, "sealed", i, entry_id):
                problems.append(problem(p.key, p.message, entry_id, line))
    unknown = set(raw) - {"format", "kdf", "kdf_cost", "salt", "key_check", "nonce", "entries", "index"}
    problems += [problem(str(k), "unknown key") for k in sorted(unknown)]
    if isinstance(raw.get("index"), dict):
        problems += [problem(f"index.{k}", "unknown key") for k in sorted(set(raw["index"]) - {"data"})]
    if problems:
        raise WatchlistError(problems)

    hashers = Hashers.derive(key, salt, cost)
    if not secrets.compare_digest(hashers.key_check, str(raw["key_check"])):
        raise WatchlistError([problem("key_check", "the sealing key does not open this file "
                                      "(sealed with another key? seal again with this one)")])  # fmt: skip
    try:
        blob = base64.b64decode(data, validate=True)
        plain = AESGCM(hashers.blob_key).decrypt(nonce, blob, _aad(header, entries))
        arrays = _unpack(plain)
    except (InvalidTag, ValueError, KeyError, OSError):
        raise WatchlistError([problem("index.data", "does not open: the file was altered or "
                                      "damaged after sealing (seal it again)")]) from None  # fmt: skip
    version = hashlib.blake2b(blob, digest_size=8).hexdigest()
    return SealedWatchlist(source, tuple(entries), hashers, arrays, version)
