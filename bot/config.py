"""TOML -> typed settings. Every error names the file, the entry id, the key and the line.

Sections are pydantic models that live with the code they configure (`bot/store/settings.py`,
`bot/alerts/settings.py`, `bot/platforms/*_settings.py`); the watchlist tables are validated by
`detectors.load_watchlist`. Secrets never live here: the config names environment variables.
Environment variables override table settings: `LEAKWARDEN_DISCORD__API_BASE_URL=...`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.alerts.settings import RouteSettings, SinkSettings, alert_problems
from bot.files_settings import FilesSettings
from bot.fingerprints_db import FingerprintDbError, WeightsSettings, list_fingerprints
from bot.jobs import JobsSettings
from bot.logs import LoggingSettings
from bot.pipeline import PipelineSettings
from bot.platforms.discord_settings import DiscordSettings
from bot.platforms.slack_settings import SlackSettings
from bot.scan_settings import ScanSettings
from bot.store.digest import ContentKey
from bot.store.settings import StorageSettings
from detectors import (
    ENTRY_KINDS,
    FINDING_KINDS,
    Problem,
    SealedWatchlist,
    SealKey,
    Watchlist,
    WatchlistError,
    load_watchlist,
    open_sealed,
)

ENV_PREFIX = "LEAKWARDEN_"
WATCHLIST_SECTIONS = ("codenames", "patterns", "hashes")


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    listen: str = Field(default="127.0.0.1:9108", pattern=r"^[\w.\-\[\]:]+:\d{1,5}$")


class SealedSettings(BaseModel):
    """`[sealed]`: a watchlist made by `leakwarden seal`, and where its key comes from."""

    model_config = ConfigDict(extra="forbid")

    file: str | None = Field(default=None, min_length=1)  # relative to the config file; None: off
    key_env: str = Field(default="LEAKWARDEN_SEAL_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class Settings(BaseModel):
    """The whole config file, less the watchlist tables (see `Config.watchlist`)."""

    model_config = ConfigDict(extra="forbid")

    storage: StorageSettings = Field(default_factory=StorageSettings)
    sealed: SealedSettings | None = None
    weights: WeightsSettings = Field(default_factory=WeightsSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)
    scan: ScanSettings = Field(default_factory=ScanSettings)
    discord: DiscordSettings | None = None
    slack: SlackSettings | None = None
    sinks: list[SinkSettings] = Field(default_factory=list)
    routes: list[RouteSettings] = Field(default_factory=list)
    server: ServerSettings = Field(default_factory=ServerSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)


@dataclass(frozen=True)
class Config:
    """A loaded, validated config file."""

    path: Path
    settings: Settings
    watchlist: Watchlist
    # Keys the hit history's content digests (see `_content_key`); None: unkeyed sha256.
    content_key: ContentKey | None = field(default=None, repr=False, compare=False)

    def resolve(self, relative: str) -> Path:
        """A path named in the config, relative to the config file's folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.path.parent / p


class ConfigError(Exception):
    """A config that cannot be used; `lines` holds one human-readable line per problem."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def secret_from_env(var: str, *, purpose: str) -> SecretStr:
    """The value of the environment variable `var`, or a ConfigError saying what it is for."""
    value = os.environ.get(var, "")
    if not value.strip():
        raise ConfigError([f"environment variable {var} is not set (needed for {purpose})"])
    return SecretStr(value.strip())


Overrides = dict[tuple[str, ...], str]  # settings path ("files", "max_depth") -> variable name


def _apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> Overrides:
    """Set each `LEAKWARDEN_SECTION__KEY` value into `raw`; which variable set which path."""
    applied: Overrides = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        node = raw
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # arrays of tables cannot be overridden this way
                break
            node = child
        else:
            node[path[-1]] = value
            applied[tuple(path)] = name
    return applied


_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]\]?")


def _locate(raw_text: str, section: str, index: int | None, key: str | None) -> int | None:
    """Line number (1-based) of `key` in the index-th `[[section]]` table, or of its header."""
    lines = raw_text.splitlines()
    seen = -1
    header_line = None
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if m:
            if header_line is not None:
                break  # left the entry without finding the key
            if m.group(1) == section:
                seen += 1
                if index is None or seen == index:
                    header_line = i + 1
            continue
        if header_line is not None and key:
            top = key.split(".")[0]
            if re.match(rf"^\s*{re.escape(top)}\s*=", line):
                return i + 1
    return header_line


def _overridden_by(problem: Problem, overrides: Overrides) -> str | None:
    """The environment variable that set the value `problem` is about, if one did."""
    if problem.source is not None:
        return None  # hash list files are never overridden
    at = (problem.section, *problem.key.split(".")) if problem.key else (problem.section,)
    for path, name in overrides.items():
        if path[: len(at)] == at or at[: len(path)] == path:
            return name
    return None


def _describe(problem: Problem, file: str, raw_text: str, overrides: Overrides | None = None) -> str:
    if (name := _overridden_by(problem, overrides or {})) is not None:
        # The value came from the environment, not the file: blame the variable.
        problem = Problem(
            problem.section, problem.entry_id, problem.key,
            problem.message, source=f"environment variable {name}",
        )  # fmt: skip
    elif problem.line is None and problem.source is None:
        line = _locate(raw_text, problem.section, problem.index, problem.key)
        problem = Problem(
            problem.section, problem.entry_id, problem.key, problem.message,
            problem.index, problem.position, None, line,
        )  # fmt: skip
    return problem.describe(file)


def _open_sealed(
    raw: Any, path: Path, raw_text: str, environ: Mapping[str, str] | None
) -> tuple[SealedWatchlist | None, SealKey | None, list[str]]:
    """The `[sealed]` file and the key that opened it, or the lines that say why it cannot be.

    Its settings are validated again with the rest; here only a usable table is opened."""
    if not isinstance(raw, dict):
        return None, None, []
    try:
        spec = SealedSettings.model_validate(raw)
    except ValidationError:
        return None, None, []  # reported, located, by the settings validation
    if spec.file is None:
        return None, None, []
    file = str(path)

    def line(key: str, message: str) -> str:
        return _describe(Problem("sealed", None, key, message), file, raw_text)

    sealed_path = Path(spec.file).expanduser()
    sealed_path = sealed_path if sealed_path.is_absolute() else path.parent / sealed_path
    env = os.environ if environ is None else environ
    value = env.get(spec.key_env, "")
    if not value.strip():
        return None, None, [line("key_env", f"environment variable {spec.key_env} is not set "
                                 f"(the key that opens {spec.file!r})")]  # fmt: skip
    try:
        key = SealKey(value)
    except ValueError as err:  # the message never holds the key
        return None, None, [line("key_env", f"{spec.key_env}: {err}")]
    try:
        text = sealed_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        why = getattr(err, "strerror", None) or "not UTF-8 text"
        return None, None, [line("file", f"cannot read {spec.file!r}: {why}")]
    try:
        return open_sealed(text, key, source=str(sealed_path)), key, []
    except WatchlistError as err:
        return None, None, [p.describe(str(sealed_path)) for p in err.problems]


def _rule_ids(watchlist: Watchlist, settings: Settings, path: Path) -> set[str] | None:
    """Every rule id a finding can carry under this config (what `[[routes]] rule_ids` may
    name), or None when a fingerprint registry cannot be read (building the engine says why)."""
    ids = {e.id for e in (*watchlist.codenames, *watchlist.patterns)}
    ids |= {rule.id for rule in watchlist.digests.values()}
    if watchlist.sealed is not None:
        ids |= {e.id for e in watchlist.sealed.entries}
    ids |= set(FINDING_KINDS) - set(ENTRY_KINDS)  # built-in detectors: the rule id is the kind
    for name in settings.weights.fingerprints:
        registry = Path(name).expanduser()
        try:
            ids |= {fp.id for fp in list_fingerprints(
                registry if registry.is_absolute() else path.parent / registry)}
        except (FingerprintDbError, OSError, ValueError):
            return None
    return ids


def _content_key(
    storage: StorageSettings, seal_key: SealKey | None, environ: Mapping[str, str] | None
) -> ContentKey | None:
    """The key of the hit history's content digests: `[storage] content_key_env`'s value, else
    one derived from the sealing key, else None (unkeyed). ValueError says what is wrong."""
    if storage.content_key_env is not None:
        name = storage.content_key_env
        value = (os.environ if environ is None else environ).get(name, "")
        if not value.strip():
            raise ValueError(f"environment variable {name} is not set (the key of the hit "
                             "history's content digests)")
        try:
            return ContentKey(value)
        except ValueError as err:  # the message never holds the key
            raise ValueError(f"{name}: {err}") from None
    return ContentKey(seal_key.content_key()) if seal_key is not None else None


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, and validate a config file."""
    path = Path(path)
    file = str(path)
    try:
        raw_text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([f"{file}: cannot read: {err.strerror or err}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{file}: not UTF-8 text"]) from None
    try:
        raw = tomllib.loads(raw_text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([f"{file}: invalid TOML: {err}"]) from None
    overrides = _apply_env_overrides(raw, os.environ if environ is None else environ)

    lines: list[str] = []
    tables = {k: raw.pop(k) for k in WATCHLIST_SECTIONS if k in raw}
    files: dict[str, str] = {}
    hashes = tables.get("hashes")
    if isinstance(hashes, dict):
        for name in hashes.get("files", []) if isinstance(hashes.get("files"), list) else []:
            p = Path(str(name)).expanduser()
            p = p if p.is_absolute() else path.parent / p
            try:
                files[str(name)] = p.read_text(encoding="utf-8", errors="replace")
            except OSError as err:
                lines.append(f"{file}: [hashes] files: cannot read {str(name)!r}: {err.strerror}")
    sealed, seal_key, sealed_lines = _open_sealed(raw.get("sealed"), path, raw_text, environ)
    lines += sealed_lines
    watchlist = Watchlist()
    try:
        watchlist = load_watchlist(tables, files=files, sealed=sealed)
    except WatchlistError as err:
        lines += [_describe(p, file, raw_text, overrides) for p in err.problems]

    settings = None
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as err:
        for e in err.errors():
            loc = [str(x) for x in e["loc"]]
            section = loc[0] if loc else "config"
            index = int(loc[1]) if len(loc) > 1 and loc[1].isdigit() else None
            key = ".".join(loc[2:] if index is not None else loc[1:]) or None
            entry_id = None
            if index is not None and isinstance(raw.get(section), list):
                item = raw[section][index]
                entry_id = item.get("id") if isinstance(item, dict) else None
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            if not loc:
                msg = e["msg"]
            elif len(loc) == 1 and e["type"] == "extra_forbidden":
                msg, key = "unknown section", None
            problem = Problem(section, entry_id, key, msg, index=index)
            lines.append(_describe(problem, file, raw_text, overrides))
    content_key = None
    if settings is not None:
        try:
            content_key = _content_key(settings.storage, seal_key, environ)
        except ValueError as err:
            problem = Problem("storage", None, "content_key_env", str(err))
            lines.append(_describe(problem, file, raw_text, overrides))
        # Checks across entries (a route naming an unknown sink ...) need the whole file.
        homes = {"discord": settings.discord, "slack": settings.slack}
        # Known rule ids only when a route names some (and the watchlist loaded whole).
        checked = not lines and any(r.rule_ids for r in settings.routes)
        rule_ids = _rule_ids(watchlist, settings, path) if checked else None
        for p in alert_problems(settings.sinks, settings.routes, platforms=homes,
                                rule_ids=rule_ids):
            problem = Problem(p.section, p.entry_id, p.key, p.message, index=p.index)
            lines.append(_describe(problem, file, raw_text))
    if lines:
        raise ConfigError(lines)
    assert settings is not None
    return Config(path, settings, watchlist, content_key)
