"""The ``vllm`` sampling backend: vLLM's offline engine (``vllm.LLM``) in this process.

What it is for: drawing the Codex protocol's samples on GPUs with vLLM (paged attention,
continuous batching, tensor parallelism) when it is installed (``pip install
'codexlab[vllm]'``), with one seeded request per sample (:func:`~codexlab.sampling.backends.
sample_seed`) and the sampled tokens' raw log-probs, yielding rows in the store's format
(:func:`~codexlab.sampling.backends.server_row`) chunk by chunk so the store-backed run
commits as it goes.

What it is not for: serving (run ``vllm serve`` and use the ``openai`` backend for a server
shared by several runs or machines), or token healing (refused, as for ``openai``).

vLLM reports the raw model's log-probs by default (``logprobs_mode="raw_logprobs"``: before
temperature and nucleus), the quantity the local engine stores; this backend asks for that
mode explicitly where the installed vLLM accepts it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from codexlab.sampling.backends import (
    BackendConfig,
    BackendError,
    prompt_of,
    sample_seed,
    server_row,
    work_items,
)

#: Requests handed to ``LLM.generate`` at once: large enough for vLLM's scheduler to keep
#: the GPU full, small enough that a killed run loses at most one chunk's samples.
CHUNK = 2048


class VLLMSampler:
    """Samples with an in-process ``vllm.LLM``.

    Args:
        backend: Settings (``dtype``, ``gpu_memory_utilization``, ``tensor_parallel_size``,
            ``extra_body`` passed to ``SamplingParams``).
        model: Built-in name, local folder or Hugging Face id.
        cfg: The :class:`~codexlab.sampling.SamplingConfig` (``token_healing`` must be off).
        llm: An already-built ``vllm.LLM`` to use (tests, notebooks that sample many sets).

    Raises:
        BackendError: vLLM is not installed, or token healing was asked for.
    """

    def __init__(self, backend: BackendConfig, model: str, cfg: Any, llm: Any = None) -> None:
        if cfg.token_healing:
            raise BackendError(
                "token healing needs the local engine (it constrains the first sampled "
                "token); sample with --no-token-healing, or with --backend hf")
        try:
            import vllm
        except ImportError as exc:
            raise BackendError("the vllm backend needs vLLM, which is not installed here: "
                               "pip install 'codexlab[vllm]' on a machine with a supported "
                               "GPU, or serve the model with vLLM elsewhere and use "
                               "--backend openai") from exc
        self.vllm = vllm
        self.backend = backend
        self.cfg = cfg
        self.model = model
        if llm is None:
            from codexlab.sampling.runner import resolve_model_name

            kwargs: dict[str, Any] = dict(
                model=resolve_model_name(model), dtype=backend.dtype,
                gpu_memory_utilization=float(backend.gpu_memory_utilization),
                tensor_parallel_size=int(backend.tensor_parallel_size), seed=int(cfg.seed))
            try:
                llm = vllm.LLM(**kwargs, logprobs_mode="raw_logprobs")
            except TypeError:  # a vLLM before logprobs_mode: raw log-probs were its only mode
                llm = vllm.LLM(**kwargs)
        self.llm = llm
        self.stats: dict[str, Any] = {"tokens": 0, "seconds": 0.0, "requests": 0,
                                      "retries": 0, "samples": 0}

    def describe(self) -> dict[str, Any]:
        """Return the backend settings and vLLM version for the run's provenance."""
        return {**self.backend.describe(), "vllm": getattr(self.vllm, "__version__", "?")}

    def params(self, task_id: str, idx: int) -> Any:
        """Return the ``SamplingParams`` of sample ``(task_id, idx)``."""
        cfg = self.cfg
        return self.vllm.SamplingParams(
            n=1, temperature=float(cfg.temperature), top_p=float(cfg.top_p),
            max_tokens=int(cfg.max_new_tokens), stop=list(cfg.stop) or None,
            seed=sample_seed(cfg.seed, task_id, idx), logprobs=0,
            **dict(self.backend.extra_body))

    def run(self, problems: Mapping[str, Any], indices: Mapping[str, Iterable[int]],
            *, progress: bool = True) -> Iterator[dict[str, Any]]:
        """Yield one row per sample, a chunk of :data:`CHUNK` requests at a time."""
        todo = [(t, i[0]) for t, i in work_items(problems, indices, 1)]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), unit="sample", desc=f"sampling vllm ({self.model})",
                       dynamic_ncols=True)
        prompts: dict[str, str] = {}
        t0 = time.perf_counter()
        try:
            for start in range(0, len(todo), CHUNK):
                chunk = todo[start:start + CHUNK]
                texts, params = [], []
                for task_id, idx in chunk:
                    if task_id not in prompts:
                        prompts[task_id] = prompt_of(problems[task_id], self.cfg.strip_prompt)
                    texts.append(prompts[task_id])
                    params.append(self.params(task_id, idx))
                outs = self.llm.generate(texts, params, use_tqdm=False)
                self.stats["requests"] += len(chunk)
                for (task_id, idx), out in zip(chunk, outs, strict=True):
                    row = vllm_row(task_id, idx, out, self.cfg.stop)
                    self.stats["tokens"] += int(row["n_tokens"])
                    self.stats["samples"] += 1
                    yield row
                    if bar is not None:
                        bar.update(1)
        finally:
            self.stats["seconds"] += time.perf_counter() - t0
            if bar is not None:
                bar.close()


def vllm_row(task_id: str, idx: int, request_output: Any, stops: Any) -> dict[str, Any]:
    """Convert one ``vllm.RequestOutput`` (n=1, ``logprobs=0``) into a stored row.

    Raises:
        BackendError: the output has no log-probs for its tokens.
    """
    comp = request_output.outputs[0]
    token_ids = list(comp.token_ids)
    per_token = comp.logprobs
    if per_token is None or len(per_token) < len(token_ids):
        raise BackendError(f"vLLM returned no log-probs for {task_id} #{idx}")
    lps = []
    for tok, entry in zip(token_ids, per_token, strict=False):
        lp = entry.get(tok) if entry is not None else None
        lps.append(None if lp is None else float(lp.logprob))
    return server_row(task_id, idx, comp.text, lps, finish_reason=comp.finish_reason,
                      stops=stops, stop_reason=comp.stop_reason, source="vLLM")


__all__ = ["CHUNK", "VLLMSampler", "vllm_row"]
