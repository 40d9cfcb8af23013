"""Per-sample random streams: the reason results do not depend on batching.

What it is for: giving sample ``(seed, task_id, idx)`` its own stream of uniforms, one per
generation step, from a counter-based seed (numpy ``SeedSequence`` over the seed, a 64-bit
BLAKE2b hash of the task id, and the index). Step ``t`` of that sample always consumes
``stream[t]``, so a sample's tokens are the same whether it is drawn alone, in a batch of
1,000 rows mixing prompts, or in a resumed run that only fills the missing indices (up to
the float rounding differences of batched matrix products, which move a draw only when a
uniform lands within ~1e-7 of a token boundary). What it is not for: model-side randomness
(there is none: dropout is off in eval mode).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def task_key(task_id: str) -> int:
    """Return a stable 64-bit integer for a task id (independent of ``PYTHONHASHSEED``)."""
    digest = hashlib.blake2b(task_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def sample_uniforms(seed: int, task_id: str, idx: int, n_steps: int) -> np.ndarray:
    """Return the first ``n_steps`` uniforms in [0, 1) of one sample's stream.

    Args:
        seed: The run's base seed (non-negative).
        task_id: The task the sample belongs to.
        idx: The sample index within the task.
        n_steps: How many steps (``max_new_tokens``) to draw for.

    Returns:
        float64 array of shape ``(n_steps,)``; element ``t`` drives generation step ``t``.
    """
    ss = np.random.SeedSequence([int(seed), task_key(task_id), int(idx)])
    return np.random.Generator(np.random.PCG64(ss)).random(int(n_steps))


def batch_uniforms(
    seed: int, rows: Sequence[tuple[str, int]], n_steps: int
) -> np.ndarray:
    """Stack :func:`sample_uniforms` for ``(task_id, idx)`` rows into ``(len(rows), n_steps)``."""
    out = np.empty((len(rows), int(n_steps)), dtype=np.float64)
    for r, (task_id, idx) in enumerate(rows):
        out[r] = sample_uniforms(seed, task_id, idx, n_steps)
    return out
