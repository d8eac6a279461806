"""What the end-to-end leak stories post: a watchlist, a registered checkpoint and its copies."""

from __future__ import annotations

import numpy as np
from safetensors.numpy import save

from bot.demo.world import table

WATCHLIST = table("codenames", {"id": "cn-larkspur", "term": "Larkspur", "severity": "high"},
                  array=True)
CHECKPOINT_ID = "ckpt-larkspur"
MANAGE_MESSAGES = str(1 << 13)


def checkpoint_tensors(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"layers.{i}.w{j}": (rng.standard_normal((96, 128)) * 0.02).astype(np.float32)
            for i in range(3) for j in range(3)}


def derived_checkpoint() -> bytes:
    """The registered checkpoint, fine-tuned a little: a "derived" copy, not a byte-exact one."""
    rng = np.random.default_rng(7)
    return save({k: v * 1.01 + rng.standard_normal(v.shape).astype(np.float32) * 0.001
                 for k, v in checkpoint_tensors().items()})
