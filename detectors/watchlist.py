"""Config tables -> a validated, immutable Watchlist. Every error names the entry id and key."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .model import Severity

DIGEST_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_HEX = re.compile(r"[0-9a-fA-F]+")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation error, located as precisely as we can."""

    section: str  # codenames | patterns | hashes
    entry_id: str | None
    key: str | None
    message: str
    index: int | None = None  # position of the entry in its table
    position: int | None = None  # e.g. the offending offset inside a regex
    source: str | None = None  # file the entry came from (hash list files)
    line: int | None = None

    def describe(self, file: str) -> str:
        """`file:line: [section id=X] key: message` — the shape every config error takes."""
        where = self.source or file
        if self.line is not None:
            where += f":{self.line}"
        entry = f"[{self.section}"
        if self.entry_id:
            entry += f" id={self.entry_id!r}"
        elif self.index is not None:
            entry += f" #{self.index + 1}"
        entry += "]"
        key = f" {self.key}:" if self.key else ""
        pos = f" (at position {self.position})" if self.position is not None else ""
        return f"{where}: {entry}{key} {self.message}{pos}"


class WatchlistError(ValueError):
    """Raised with every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(p.describe("<config>") for p in self.problems))


# ---- entry models (the config names of DESIGN.md) -------------------------------------------


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str
    severity: Severity = Severity.HIGH
    label: str | None = None  # optional human label shown in alerts

    @field_validator("id")
    @classmethod
    def _valid_id(cls, v: str) -> str:
        if not _ID.fullmatch(v):
            raise ValueError("must be 1-128 characters of letters, digits, '.', '_', ':' or '-'")
        return v

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, v: Any) -> Severity:
        return Severity.parse(v)


class CodenameEntry(_Entry):
    term: str
    aliases: tuple[str, ...] = ()
    fuzzy: bool = True
    max_edits: Literal["auto"] | int = "auto"

    @field_validator("term")
    @classmethod
    def _term(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty or blank")
        return v

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i, alias in enumerate(v):
            if not alias.strip():
                raise ValueError(f"alias #{i + 1} must not be empty or blank")
        return v

    @field_validator("max_edits")
    @classmethod
    def _edits(cls, v: Any) -> Any:
        if isinstance(v, int) and not 0 <= v <= 3:
            raise ValueError("must be 'auto' or a whole number from 0 to 3")
        return v


class PatternEntry(_Entry):
    regex: str
    secret: bool = True  # secret matches are masked in `matched` and excerpts
    severity: Severity = Severity.CRITICAL

    @field_validator("regex")
    @classmethod
    def _regex(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        return v


class HashEntry(_Entry):
    digest: str
    severity: Severity = Severity.CRITICAL

    @field_validator("digest")
    @classmethod
    def _digest(cls, v: str) -> str:
        return _check_digest(v)


class HashFiles(BaseModel):
    """`[hashes] files = [...]`: list files of `<hex digest> [id]` lines."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: tuple[str, ...] = ()
    severity: Severity = Severity.CRITICAL
    id_prefix: str = "hash"

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, v: Any) -> Severity:
        return Severity.parse(v)


def _check_digest(v: str) -> str:
    v = v.strip()
    if v.lower().startswith(("sha256:", "sha1:", "md5:", "sha512:")):
        v = v.split(":", 1)[1]
    if not _HEX.fullmatch(v):
        raise ValueError("must be hexadecimal (md5, sha1, sha256 or sha512)")
    if len(v) not in DIGEST_LENGTHS:
        raise ValueError(
            f"has {len(v)} hex digits; md5, sha1, sha256 and sha512 have 32, 40, 64 or 128"
        )
    return v.lower()


# ---- compiled rules ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestRule:
    id: str
    severity: Severity
    algorithm: str  # md5 | sha1 | sha256 | sha512
    label: str | None = None
    sealed: bool = False  # sealed rules (detectors/sealed.py) never show their digest


@dataclass(frozen=True)
class Watchlist:
    """Everything the engine looks for, validated and immutable."""

    codenames: tuple[CodenameEntry, ...] = ()
    patterns: tuple[PatternEntry, ...] = ()
    digests: Mapping[str, DigestRule] = field(default_factory=dict)
    version: str = ""
    sealed: Any = None  # detectors.sealed.SealedWatchlist: entries known only by keyed digests

    @property
    def digest_algorithms(self) -> frozenset[str]:
        """Only the hash functions the list needs (md5 is the slowest: never pay for it idly)."""
        algorithms = frozenset(rule.algorithm for rule in self.digests.values())
        return algorithms | self.sealed.digest_algorithms if self.sealed else algorithms

    def digest_rule(self, hexdigest: str) -> Any:
        """The rule of a known digest (hex, any case), plain or sealed (`.sealed` is True)."""
        rule = self.digests.get(hexdigest.lower())
        if rule is None and self.sealed is not None:
            rule = self.sealed.digest_rule(hexdigest)
        return rule

    def rule(self, rule_id: str) -> Any:
        """The entry behind a finding's rule_id (a sealed entry shows only id, kind, severity, label)."""
        for entry in (*self.codenames, *self.patterns):
            if entry.id == rule_id:
                return entry
        rule = next((r for r in self.digests.values() if r.id == rule_id), None)
        if rule is None and self.sealed is not None:
            rule = self.sealed.entry(rule_id)
        return rule


def _problems_from(err: ValidationError, section: str, index: int, entry_id: str | None):
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        key = ".".join(loc) if loc else None
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "is required"
        yield Problem(section, entry_id, key, msg, index=index)


def _entries(tables: Mapping[str, Any], section: str, model: type[_Entry],
             problems: list) -> list[tuple[dict[str, Any], Any]]:
    """(where, entry) of each valid entry of a table; `where` locates a Problem about it."""
    raw = tables.get(section, [])
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(Problem(section, None, None, "must be an array of tables ([[...]])"))
        return []
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            problems.append(Problem(section, None, None, "must be a table", index=i))
            continue
        entry_id = item.get("id") if isinstance(item.get("id"), str) else None
        try:
            out.append(({"index": i}, model.model_validate(dict(item))))
        except ValidationError as err:
            problems.extend(_problems_from(err, section, i, entry_id))
    return out


def parse_hash_list(text: str, source: str, spec: HashFiles,
                    problems: list) -> list[tuple[dict[str, Any], HashEntry]]:
    """(where, entry) of each `<hex> [id]` line; `#` comments and blank lines skipped; bad
    lines reported by number."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        entry_id = parts[1] if len(parts) > 1 else f"{spec.id_prefix}-{lineno}"
        try:
            entry = HashEntry(id=entry_id, digest=parts[0], severity=spec.severity)
            out.append(({"source": source, "line": lineno}, entry))
        except ValidationError as err:
            for p in _problems_from(err, "hashes", lineno - 1, entry_id):
                problems.append(
                    Problem(p.section, p.entry_id, p.key, p.message, source=source, line=lineno)
                )
    return out


def load_watchlist(
    tables: Mapping[str, Any], *, files: Mapping[str, str] | None = None, sealed: Any = None
) -> Watchlist:
    """Validate the `codenames`, `patterns` and `hashes` tables; WatchlistError lists every problem.

    `files` maps each hash list file named in `[hashes] files` to its text (the caller reads it:
    this package does no I/O). `sealed` is an opened sealed watchlist (`open_sealed`) whose
    entries join the plain ones.
    """
    problems: list[Problem] = []
    codenames_at = _entries(tables, "codenames", CodenameEntry, problems)
    patterns_at = _entries(tables, "patterns", PatternEntry, problems)

    hashes_raw = tables.get("hashes", [])
    hashes_at: list[tuple[dict[str, Any], HashEntry]] = []
    if isinstance(hashes_raw, Mapping):
        try:
            spec = HashFiles.model_validate(dict(hashes_raw))
        except ValidationError as err:
            problems.extend(_problems_from(err, "hashes", 0, None))
            spec = HashFiles()
        for name in spec.files:
            if files is None or name not in files:
                problems.append(Problem("hashes", None, "files", f"cannot read {name!r}"))
                continue
            hashes_at += parse_hash_list(files[name], name, spec, problems)
    else:
        hashes_at = _entries({"hashes": hashes_raw}, "hashes", HashEntry, problems)

    unknown = set(tables) - {"codenames", "patterns", "hashes"}
    for key in sorted(unknown):
        problems.append(Problem(str(key), None, None, "unknown watchlist section"))

    # Ids are the stable names of rules across reloads, alerts and history: they must be unique.
    # A duplicate is reported where it is written (its table entry, or its list file's line).
    seen: dict[str, str] = {}
    for section, located in (("codenames", codenames_at), ("patterns", patterns_at),
                             ("hashes", hashes_at)):
        for where, e in located:
            if e.id in seen:
                problems.append(
                    Problem(section, e.id, "id", f"duplicate id (also used in [{seen[e.id]}])",
                            **where)
                )  # fmt: skip
            seen.setdefault(e.id, section)
    codenames = [e for _, e in codenames_at]
    patterns = [e for _, e in patterns_at]
    hash_entries = [e for _, e in hashes_at]
    for e in sealed.entries if sealed is not None else ():
        if e.id in seen:
            problems.append(
                Problem("sealed", e.id, "id", f"duplicate id (also used in [{seen[e.id]}])",
                        source=sealed.source)
            )  # fmt: skip
        seen.setdefault(e.id, "sealed")

    # Deferred imports: both modules import this one for the entry types.
    from .codenames import check_term
    from .patterns import check_regex

    for where, c in codenames_at:
        for key, term in (("term", c.term), *(("aliases", a) for a in c.aliases)):
            msg = check_term(term)
            if msg:
                problems.append(Problem("codenames", c.id, key, msg, **where))
    for where, p in patterns_at:
        err = check_regex(p.regex)
        if err:
            problems.append(Problem("patterns", p.id, "regex", err[0], position=err[1], **where))

    if problems:
        raise WatchlistError(problems)

    digests = {
        h.digest: DigestRule(h.id, h.severity, DIGEST_LENGTHS[len(h.digest)], h.label)
        for h in hash_entries
    }
    canon = json.dumps(
        {
            "codenames": [c.model_dump(mode="json") for c in codenames],
            "patterns": [p.model_dump(mode="json") for p in patterns],
            "digests": sorted((d, r.id, int(r.severity)) for d, r in digests.items()),
            "sealed": sealed.version if sealed is not None else None,
        },
        sort_keys=True,
    )
    version = hashlib.sha256(canon.encode()).hexdigest()[:16]
    return Watchlist(tuple(codenames), tuple(patterns), digests, version, sealed)
