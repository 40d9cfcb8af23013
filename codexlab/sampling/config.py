"""Sampling settings: one frozen, validated dataclass and the Codex defaults.

What it is for: naming every knob of the sampling protocol in one place (temperature,
nucleus ``top_p``, n, stop sequences, seed, lengths, device) so that a sample set in the
store is fully described by its config. What it is not for: choosing models or problems, or
anything that runs a model (see :mod:`codexlab.sampling.engine`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any

from codexlab.sampling.healing import normalize_token_healing

#: The Codex paper's HumanEval stop sequences (§3.2): generation of a completion ends at the
#: first of these and the completion is cut before it.
DEFAULT_STOP: tuple[str, ...] = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")


@dataclass(frozen=True)
class SamplingConfig:
    """Settings of one sampling run (the Codex protocol by default).

    Attributes:
        temperature: Logits are divided by it before the nucleus is formed. ``0`` means greedy
            decoding, for which ``n`` is forced to 1 (with a warning).
        n: Samples per task (indices ``0..n-1``).
        top_p: Nucleus mass: the smallest set of most likely tokens whose probability reaches
            ``top_p`` is kept (``1.0`` keeps every token). Top-k is never applied.
        max_new_tokens: Hard cap on generated tokens per sample (finish reason ``length``).
        stop: Stop sequences, detected on decoded text so that one spanning several tokens is
            still found; the stored completion is cut before the first one.
        seed: Base seed; sample ``(task_id, idx)`` draws from its own random stream derived
            from ``(seed, task_id, idx)``, so results do not depend on batching or resumption.
        strip_prompt: Strip trailing whitespace from prompts before tokenizing (some harnesses
            do; the Codex protocol uses the prompt as given).
        batch_size: Rows decoded together (CUDA: slots, refilled as samples finish);
            ``None`` chooses from free memory (capped at 256 rows on CPU, 4096 on CUDA).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; ``None`` picks CUDA, then MPS,
            then CPU.
        dtype: Model weights/activations dtype name (``"float32"``, ``"bfloat16"``,
            ``"float16"``); ``None`` means bfloat16 on CUDA and float32 elsewhere. Log-probs and
            the sampling arithmetic are always computed in float32/float64.
        compile: Use the static-KV-cache, ``torch.compile``/CUDA-graph decode step. ``None``
            means on for CUDA and off elsewhere (compilation costs more than it saves on CPU).
        stop_check_every: Decode text and look for stop sequences every this many steps
            (``None``: 1 on CPU, 8 on GPU where each check is a host synchronisation). Only
            throughput depends on it: the recorded tokens are trimmed back to the exact stop.
        token_healing: Token healing (:mod:`~codexlab.sampling.healing`): the number of
            trailing prompt tokens that may be backed off (``0``/``False`` off; ``1``/``True``
            the last token; ``k > 1`` also up to ``k - 1`` earlier tokens while the removed
            text is whitespace). The removed text ``R`` must be re-produced by the first
            generated token(s), chosen from the model's distribution renormalised over the
            tokens consistent with ``R`` (then temperature and nucleus as usual), so the model
            decides how the prompt boundary is tokenised. ``None`` (default) means: on
            (``1``) for the built-in codex-mini models, off for any other model, resolved by
            :func:`~codexlab.sampling.runner.resolve_token_healing` from the model's name.
            With healing, the stored completion is still exactly the text after the original
            prompt (``R`` removed), and ``n_tokens``/``sum_logprob``/``mean_logprob`` cover
            every generated token *including* the healing token(s), under the raw (T = 1,
            unrestricted, no healing mask) model given the backed-off prompt: the log-prob of
            ``R`` + completion + terminator as the model tokenised it. Part of the sample-set
            key.
    """

    temperature: float = 0.8
    n: int = 200
    top_p: float = 0.95
    max_new_tokens: int = 300
    stop: tuple[str, ...] = DEFAULT_STOP
    seed: int = 0
    strip_prompt: bool = False
    batch_size: int | None = None
    device: str | None = None
    dtype: str | None = None
    compile: bool | None = None
    stop_check_every: int | None = None
    token_healing: int | None = None

    def __post_init__(self) -> None:
        # Frozen dataclass: normalise through object.__setattr__ (lists → tuples so the
        # config stays hashable and prints the same way it is stored).
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "temperature", float(self.temperature))
        object.__setattr__(self, "top_p", float(self.top_p))
        # NaN passes every comparison test, and inf divides the logits to nothing: both
        # would sample (uniformly, or not at all) under a key no figure can name.
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if int(self.n) < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if int(self.max_new_tokens) < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if int(self.seed) < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"stop sequences must be non-empty strings, got {self.stop!r}")
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.stop_check_every is not None and int(self.stop_check_every) < 1:
            raise ValueError(f"stop_check_every must be >= 1, got {self.stop_check_every}")
        object.__setattr__(self, "token_healing", normalize_token_healing(self.token_healing))
        if self.temperature == 0 and self.n != 1:
            warnings.warn(
                f"temperature=0 is greedy decoding: every sample would be identical, so n={self.n} "
                "is forced to 1",
                stacklevel=3,
            )
            object.__setattr__(self, "n", 1)

    @property
    def greedy(self) -> bool:
        """True when decoding is greedy (``temperature == 0``)."""
        return self.temperature == 0

    def replace(self, **changes: Any) -> SamplingConfig:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def protocol(self) -> dict[str, Any]:
        """Return the fields that define *what* is sampled (not how fast): the cache key."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": int(self.max_new_tokens),
            "stop": list(self.stop),
            "seed": int(self.seed),
            "strip_prompt": bool(self.strip_prompt),
            "token_healing": self.token_healing,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return every field as JSON-serialisable data (for run configs)."""
        d = dataclasses.asdict(self)
        d["stop"] = list(self.stop)
        return d


#: Named presets (the DESIGN's ``quick``/``paper`` modes).
PRESETS: dict[str, SamplingConfig] = {
    "paper": SamplingConfig(),
    "quick": SamplingConfig(n=10, max_new_tokens=128),
}

__all__ = ["DEFAULT_STOP", "PRESETS", "SamplingConfig"]
