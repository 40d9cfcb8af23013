"""Sampling: the Codex protocol for any causal LM, with exact log-probs, resumable, fast.

What it is for: drawing n completions per problem (temperature, nucleus top_p, stop
sequences, per-sample seeds), recording each one's raw-model sum/mean log-prob, and writing
them to the run store so an interrupted run resumes with only the missing indices. Optional
token healing (:mod:`~codexlab.sampling.healing`; on by default for the built-in models) lets
the model choose how the prompt's last token joins the completion. The local engine is one
of three backends (:mod:`~codexlab.sampling.backends`): an OpenAI-compatible server
(``openai``) or vLLM's offline engine (``vllm``) can draw the same protocol's samples into the
same store.

What it is not for: executing completions (:mod:`codexlab.execution`), metrics, or training.

Example:
    >>> from codexlab.sampling import SamplingConfig, load_model, sample_problems  # doctest: +SKIP
    >>> model, tok = load_model("path/to/model")  # doctest: +SKIP
    >>> rows = list(sample_problems(model, tok, problems, SamplingConfig(n=10)))  # doctest: +SKIP
"""

from codexlab.sampling.backends import BackendConfig, BackendError
from codexlab.sampling.config import DEFAULT_STOP, PRESETS, SamplingConfig
from codexlab.sampling.engine import ROW_FIELDS, SamplingEngine, sample_problems
from codexlab.sampling.runner import ModelLoadError, load_model, sample_to_store

__all__ = [
    "BackendConfig",
    "BackendError",
    "DEFAULT_STOP",
    "PRESETS",
    "ROW_FIELDS",
    "ModelLoadError",
    "SamplingConfig",
    "SamplingEngine",
    "load_model",
    "sample_problems",
    "sample_to_store",
]
