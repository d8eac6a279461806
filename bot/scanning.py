"""Building the engine a config describes: watchlist, weight fingerprints and file limits.

The pipeline scans attachments in worker processes; an Engine holds compiled matchers that do
not pickle, so each worker builds its own from the config path:

    ProcessPoolExecutor(initializer=bot.scanning.init_worker, initargs=(str(config_path),))
    ... executor.submit(bot.scanning.worker_engine().scan_text, text)
"""

from __future__ import annotations

from pathlib import Path

from bot.config import Config, ConfigError, load_config
from bot.fingerprints_db import FingerprintDbError
from bot.scanworker import EngineSpec
from detectors import Engine

_worker_engine: Engine | None = None


def build_engine(config: Config) -> Engine:
    """The Engine for `config`: fingerprint registries of [weights] loaded, [files] limits set."""
    try:
        return EngineSpec.from_config(config).build()
    except FingerprintDbError as err:
        raise ConfigError([f"{config.path}: [weights] fingerprints: {err}"]) from None


def load_engine(config_path: str | Path) -> Engine:
    """`build_engine(load_config(config_path))`: what a worker process runs once at start."""
    return build_engine(load_config(config_path))


def init_worker(config_path: str) -> None:
    """ProcessPoolExecutor initializer: build this process's engine once."""
    global _worker_engine
    _worker_engine = load_engine(config_path)


def worker_engine() -> Engine:
    """The engine `init_worker` built in this process."""
    if _worker_engine is None:
        raise RuntimeError("init_worker(config_path) has not run in this process")
    return _worker_engine
