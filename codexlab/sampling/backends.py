"""Sampling backends: who draws the samples (the local engine, an OpenAI-compatible server, vLLM).

What it is for: :class:`BackendConfig` (which engine, and how to reach it), the contract every
backend keeps (one stored row per ``(task_id, idx)`` with the fields of
:data:`~codexlab.sampling.engine.ROW_FIELDS`, built by :func:`server_row` for engines that
return text plus per-token log-probs), per-sample seeds (:func:`sample_seed`), and
:func:`open_backend`, which the store-backed run (:func:`~codexlab.sampling.sample_to_store`)
uses. Backends:

* ``hf``: the workbench's own engine (:class:`~codexlab.sampling.engine.SamplingEngine`) on a
  Hugging Face model: exact per-sample random streams, token healing, shared-prefix decoding.
* ``openai``: any OpenAI-compatible ``/v1/completions`` server (vLLM, SGLang, TGI,
  llama.cpp, ...; :mod:`~codexlab.sampling.openai_backend`).
* ``vllm``: the offline ``vllm.LLM`` engine in this process
  (:mod:`~codexlab.sampling.vllm_backend`; optional extra).

What it is not for: decoding (the engines do it) or the store's schema.

What the stored fields mean for a server-side engine (where they differ from ``hf``):

* ``completion``: the server's text, cut again before the first stop sequence (a server
  that returns the stop string, e.g. vLLM's ``include_stop_str_in_output``, stores the same
  completion as one that does not).
* ``n_tokens``/``sum_logprob``/``mean_logprob``: the tokens the server reports for the
  sample and the sum of their log-probs. vLLM (``logprobs_mode`` ``raw_logprobs``, its
  default) and llama.cpp report the raw model's log-probs (temperature 1, no nucleus), the
  quantity the local engine stores; a server configured for processed log-probs stores
  those instead, and the run's provenance names the server. vLLM counts the token that
  completed a stop sequence and the EOS token, as the local engine does; llama.cpp's server
  counts the stop token but not EOS, so an ``eos`` sample from it has one token fewer and
  lacks ``log p(EOS)``.
* ``finish_reason``: ``length``, ``stop`` (a stop sequence) or ``eos``. OpenAI's API says
  ``stop`` for both of the last two; the server's ``stop_reason`` (vLLM) tells them apart,
  else a stop sequence in the reported tokens' text means ``stop``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codexlab.sampling.rng import task_key
from codexlab.sampling.text import find_stop, prompt_text

#: The backends :func:`open_backend` knows.
BACKENDS: tuple[str, ...] = ("hf", "openai", "vllm")


class BackendError(RuntimeError):
    """A backend cannot sample as asked; the message names the setting or server at fault."""


@dataclass(frozen=True)
class BackendConfig:
    """Which engine draws the samples, and how to reach it (never *what* is sampled).

    What is sampled (temperature, top_p, n, stops, seed, lengths) is the
    :class:`~codexlab.sampling.SamplingConfig`; this says where. Only ``name`` (and for
    ``openai`` the served model id) enter a sample set's key: the same model sampled through
    a server at another address resumes the same set.

    Attributes:
        name: ``"hf"`` (local engine), ``"openai"`` (an OpenAI-compatible server) or
            ``"vllm"`` (the offline vLLM engine).
        base_url: ``openai``: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        api_key_env: ``openai``: the *name* of the environment variable that holds the API
            key (the key itself is never taken as an argument, logged or stored). Unset or
            empty sends the placeholder key ``EMPTY``, which local servers accept.
        served_model: ``openai``: the model id the server knows; empty means the model name
            the sample run was given.
        max_in_flight: ``openai``: requests sent concurrently (bounded; each waits for a free
            slot). Servers batch concurrent requests, so throughput grows with it up to the
            server's batch capacity (``benchmarks/bench_openai_backend.py`` measures it).
        samples_per_request: ``openai``: completions asked per request (the API's ``n``).
            ``1`` (default) sends one request per sample with that sample's own seed
            (:func:`sample_seed`), so a resumed run redraws exactly what an uninterrupted one
            would have where the server honours seeds; ``k > 1`` lets the server share the
            prompt's prefill among k samples: each request is an aligned block of k indices
            (:func:`work_items`) seeded by its first index, and a resumed run re-sends a
            partly drawn block whole and keeps only its missing samples, so it stays exact
            too (raising ``n`` later is exact when the old ``n`` was a multiple of k). A
            server that returns fewer choices than asked (llama.cpp ignores ``n``) is an
            error, not a silent shortfall.
        max_retries: ``openai``: retries of a request on connection errors, timeouts, HTTP
            408/409/429 and 5xx, and malformed responses, with exponential backoff (the
            ``openai`` client's policy, which also honours ``Retry-After``).
        request_timeout_s: ``openai``: seconds before one request attempt is abandoned.
        extra_body: ``openai``: JSON fields sent with every request beyond the standard ones,
            for servers whose defaults change sampling. llama.cpp's server applies top-k 40,
            min-p 0.05 and a repeat penalty of 1.1 unless told otherwise; the Codex protocol
            needs ``{"top_k": 0, "min_p": 0, "repeat_penalty": 1}`` there. Stored in the run's
            config and the set key (it changes what is sampled).
        dtype: ``vllm``: model dtype (``auto``, ``bfloat16``, ``float16``, ``float32``).
        gpu_memory_utilization: ``vllm``: fraction of GPU memory vLLM may take.
        tensor_parallel_size: ``vllm``: GPUs the model is split over.
    """

    name: str = "hf"
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    served_model: str = ""
    max_in_flight: int = 16
    samples_per_request: int = 1
    max_retries: int = 5
    request_timeout_s: float = 600.0
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    dtype: str = "auto"
    gpu_memory_utilization: float = 0.9
    tensor_parallel_size: int = 1

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ValueError(f"unknown sampling backend {self.name!r}; choose one of "
                             f"{', '.join(BACKENDS)}")
        if self.name == "openai" and not self.base_url:
            raise ValueError("the openai backend needs base_url (--base-url), e.g. "
                             "http://127.0.0.1:8000/v1")
        for name in ("max_in_flight", "samples_per_request", "tensor_parallel_size"):
            if int(getattr(self, name)) < 1:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{name} ({flag}) must be >= 1, got {getattr(self, name)}")
        if int(self.max_retries) < 0:
            raise ValueError(f"max_retries (--max-retries) must be >= 0, got {self.max_retries}")
        if not self.request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s}")
        if not isinstance(self.extra_body, Mapping):
            raise ValueError("extra_body must be a JSON object (a mapping of field names to "
                             f"values), got {type(self.extra_body).__name__}")
        # Frozen and hashable-ish: keep a plain dict copy so later changes to the caller's
        # mapping cannot change a running backend.
        object.__setattr__(self, "extra_body", json.loads(json.dumps(dict(self.extra_body))))

    @property
    def remote(self) -> bool:
        """True for engines that do their own decoding (no token healing, no local RNG)."""
        return self.name != "hf"

    def key_fields(self, model: str) -> dict[str, Any]:
        """Return what this backend adds to a sample set's key (empty for ``hf``)."""
        if self.name == "hf":
            return {}
        out: dict[str, Any] = {"backend": self.name}
        if self.name == "openai":
            out["served_model"] = self.served_model or model
            if self.samples_per_request != 1:
                out["samples_per_request"] = int(self.samples_per_request)
        if self.extra_body:
            out["extra_body"] = dict(self.extra_body)
        return out

    def describe(self) -> dict[str, Any]:
        """Return the settings for run configs and provenance (no secrets: the key's name only)."""
        d = {"name": self.name}
        if self.name == "openai":
            d.update(base_url=self.base_url, api_key_env=self.api_key_env,
                     served_model=self.served_model, max_in_flight=int(self.max_in_flight),
                     samples_per_request=int(self.samples_per_request),
                     max_retries=int(self.max_retries),
                     request_timeout_s=float(self.request_timeout_s),
                     extra_body=dict(self.extra_body))
        elif self.name == "vllm":
            d.update(dtype=self.dtype, gpu_memory_utilization=self.gpu_memory_utilization,
                     tensor_parallel_size=int(self.tensor_parallel_size),
                     extra_body=dict(self.extra_body))
        return d

    def api_key(self) -> str:
        """Return the API key from :attr:`api_key_env` (``EMPTY`` when unset)."""
        return os.environ.get(self.api_key_env, "") or "EMPTY"


def parse_extra_body(text: str | None) -> dict[str, Any]:
    """Parse ``--extra-body`` JSON into a dict.

    Raises:
        ValueError: not JSON, or not a JSON object; the message shows the expected form.
    """
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--extra-body is not valid JSON ({exc.msg} at character {exc.pos}); "
                         "give an object such as '{\"top_k\": 0, \"min_p\": 0}'") from None
    if not isinstance(value, dict):
        raise ValueError("--extra-body must be a JSON object such as '{\"top_k\": 0}', got "
                         f"{type(value).__name__}")
    return value


def sample_seed(seed: int, task_id: str, idx: int) -> int:
    """Return the server-side seed of sample ``(seed, task_id, idx)``: 31 bits, stable.

    Derived like the local engine's random stream (:mod:`~codexlab.sampling.rng`): a numpy
    ``SeedSequence`` over the base seed, the task's 64-bit hash and the index. 31 bits
    because servers take seeds as signed 32-bit integers, and llama.cpp reads ``2**32 - 1``
    as "random".
    """
    ss = np.random.SeedSequence([int(seed), task_key(task_id), int(idx)])
    return int(ss.generate_state(1, dtype=np.uint32)[0]) & 0x7FFFFFFF


def server_row(task_id: str, idx: int, text: str, token_logprobs: Sequence[float | None],
               *, finish_reason: str | None, stops: Sequence[str],
               stop_reason: Any = None, tokens: Sequence[str] | None = None,
               source: str = "server") -> dict[str, Any]:
    """Build one stored row from an engine's text and per-token log-probs.

    Args:
        task_id: The sample's task.
        idx: The sample's index.
        text: The generated text (after the prompt) as the engine returned it.
        token_logprobs: Log-prob of each generated token the engine reports, in order.
        finish_reason: The engine's ``finish_reason`` (``stop``/``length``; vLLM's offline
            engine may say ``abort``).
        stops: The run's stop sequences (the completion is cut before the first).
        stop_reason: vLLM's ``stop_reason``: the stop string (str), the stop token id
            (int, EOS) or None.
        tokens: The reported tokens' texts (used to tell ``stop`` from ``eos`` when the
            engine gives no ``stop_reason``).
        source: Named in errors (``"server http://..."``, ``"vLLM"``).

    Returns:
        A row with :data:`~codexlab.sampling.engine.ROW_FIELDS`.

    Raises:
        BackendError: no log-probs, a missing or non-finite log-prob (other than ``-inf``),
            or an unknown finish reason.
    """
    if token_logprobs is None:
        raise BackendError(f"{source} returned no per-token log-probs for {task_id} #{idx}; "
                           "codexlab stores each sample's log-prob (for ranking), so the "
                           "engine must return the sampled tokens' log-probs (OpenAI "
                           "completions `logprobs`)")
    lps: list[float] = []
    for t, lp in enumerate(token_logprobs):
        if lp is None or (isinstance(lp, float) and math.isnan(lp)):
            raise BackendError(f"{source} returned no log-prob for token {t} of {task_id} "
                               f"#{idx}")
        lps.append(float(lp))
    cut = find_stop(text, stops) if stops else -1
    completion = text[:cut] if cut != -1 else text
    if finish_reason == "length":
        reason = "length"
    elif finish_reason == "stop":
        if isinstance(stop_reason, str):
            reason = "stop"
        elif isinstance(stop_reason, int) and not isinstance(stop_reason, bool):
            reason = "eos"
        elif cut != -1 or (tokens is not None and stops
                           and find_stop("".join(tokens), stops) != -1):
            reason = "stop"
        else:
            reason = "eos"
    else:
        raise BackendError(f"{source} ended {task_id} #{idx} with finish_reason "
                           f"{finish_reason!r} (expected 'stop' or 'length')")
    n = len(lps)
    s = float(np.sum(np.asarray(lps, dtype=np.float64))) if n else 0.0
    return {"task_id": task_id, "idx": int(idx), "completion": completion, "n_tokens": n,
            "sum_logprob": s, "mean_logprob": s / n if n else 0.0, "finish_reason": reason}


def prompt_of(problem: Any, strip: bool) -> str:
    """Return a problem's prompt text, trailing whitespace stripped when ``strip``."""
    text = prompt_text(problem)
    return text.rstrip() if strip else text


def work_items(problems: Mapping[str, Any], indices: Mapping[str, Iterable[int]],
               group: int, n: int | None = None) -> Iterator[tuple[str, list[int]]]:
    """Yield the requests ``(task_id, idxs)`` that draw the missing ``indices`` of each task.

    ``group`` 1: one request per missing index. ``group`` K > 1: the aligned blocks
    ``[bK, min((b+1)K, n))`` that hold a missing index, whole, so a resumed run sends the
    very requests (indices, hence ``n`` and seed) an uninterrupted run sent; the caller keeps
    only the rows of the missing indices. ``n``: the samples per task (the last block's end;
    default: the largest missing index + 1).

    Raises:
        KeyError: a task of ``indices`` is not in ``problems``.
    """
    for task_id, idxs in indices.items():
        if task_id not in problems:
            raise KeyError(f"task {task_id!r} is not among the problems")
        todo = sorted({int(i) for i in idxs})
        if group <= 1:
            yield from ((task_id, [i]) for i in todo)
            continue
        end = n if n is not None else (todo[-1] + 1 if todo else 0)
        for start in sorted({i - i % group for i in todo}):
            yield task_id, list(range(start, min(start + group, end)))


def open_backend(backend: BackendConfig, model: str, cfg: Any) -> Any:
    """Return a remote sampler for ``backend`` (``openai`` or ``vllm``).

    The object has ``run(problems, indices, progress=...)`` yielding rows, ``stats``
    (``tokens``, ``seconds``, ``requests``, ``retries``) and ``describe()`` (provenance).
    The ``hf`` backend is the local engine, opened by the runner itself.

    Raises:
        ValueError: ``backend.name`` is ``hf``.
        BackendError: the optional dependency of the backend is missing.
    """
    if backend.name == "openai":
        from codexlab.sampling.openai_backend import OpenAISampler

        return OpenAISampler(backend, model, cfg)
    if backend.name == "vllm":
        from codexlab.sampling.vllm_backend import VLLMSampler

        return VLLMSampler(backend, model, cfg)
    raise ValueError("the hf backend is the local engine; open it with SamplingEngine")


__all__ = ["BACKENDS", "BackendConfig", "BackendError", "open_backend", "parse_extra_body",
           "prompt_of", "sample_seed", "server_row", "work_items"]
