r"""The sampling engine: n completions per prompt from any causal LM, fast, with log-probs.

What it is for: drawing the samples of the Codex protocol (see
:class:`~codexlab.sampling.config.SamplingConfig`) from a Hugging Face
``AutoModelForCausalLM``, much faster than ``model.generate(num_return_sequences=n)``:

* **one prefill per prompt**: the prompt is run once at batch 1 and its KV copied into the rows
  of its samples (``generate`` prefills n identical copies);
* **mixed batches**: rows of several prompts decode together (prompts left-padded so they end
  at one shared cache column; per-row ``position_ids`` keep positions exact);
* **preallocated KV** (:mod:`~codexlab.sampling.cache`): no per-step ``torch.cat`` of the
  whole cache; finished rows are dropped from the batch on CPU/MPS;
* **shared-prefix attention** on CPU/MPS (:mod:`~codexlab.sampling.prefix`): each prompt's
  KV is stored once and read once per step for all its rows, not once per row;
* **cheap exact nucleus** (:mod:`~codexlab.sampling.sampler`): value-only sort, no top-k;
* **CUDA** (``mode="static"``): a fixed number of slots with a fixed-shape KV cache and a
  ``torch.compile(mode="reduce-overhead")`` (CUDA-graph) decode step, bf16 weights, stop
  checks every few steps so the device never waits on the host, and continuous batching: a
  slot whose sample finished takes the next sample (any prompt) at the next check, so no
  step is spent on finished rows beyond that; slot count from free memory.

Token healing (:mod:`~codexlab.sampling.healing`, ``SamplingConfig.token_healing``): each
prompt is backed off by its trailing token(s) once, at planning; every sample of the task
shares the backed-off prompt (one prefill, shared-prefix attention unchanged), and the first
generated token(s) are restricted to those re-producing the removed text by a boolean mask
(one table row per row's progress; in static mode the first token is drawn on the host and the
masked decode step is only used, as a second compiled graph, while a slot can still be
healing, so a one-byte removal such as HumanEval's ``"\n"`` adds nothing to the graph).

Determinism: each sample draws from its own stream of uniforms keyed by
``(seed, task_id, idx)`` (:mod:`~codexlab.sampling.rng`); step ``t`` uses uniform ``t``, so no
sample consumes randomness of another. What that guarantees, precisely:

* **Exact**: the same call (same work list, batch size, mode, device, torch threads and
  library versions) gives bitwise the same rows. And the run store never redraws a sample:
  resuming and growing n draw only the missing indices
  (:func:`~codexlab.sampling.runner.sample_to_store`), so a stored set never changes.
* **Up to floating-point ties**: the same ``(seed, task_id, idx)`` drawn in a batch of
  another size or composition, in another mode, or on another machine, is the same sample
  unless at some step its draw is within the logits' rounding of choosing another token.
  A row's logits depend on its batch only through rounding (BLAS kernels and summation
  orders change with the batch shape: about 1e-7 to 1e-6 in float32 on a CPU, more in bf16
  on a GPU); :func:`~codexlab.sampling.sampler.draw_margin` gives a draw's distance to
  another choice, and a sample can only change where that margin is of the rounding's size.
  From that step on the two samples differ. Such near-ties are rare on trained models (see
  the README) and more common on random-weight ones with flat distributions; the tests check
  that every difference between batchings is one.

Architectures: any Hugging Face causal LM. ``tests/test_sampling_architectures.py`` checks
exact log-probs on every path for tiny random models of 20 architectures
(:data:`~codexlab.sampling.toy.TOY_ARCHITECTURES`). A sliding-window model uses the slot
cache (growing/static) when its window covers the run's longest prompt + ``max_new_tokens``
(decided per run), the model's own cache otherwise. Shared-prefix attention is on by default
for :data:`~codexlab.sampling.prefix.SUPPORTED_MODEL_TYPES` and checked against a plain
forward pass once per engine before it is used; where it is wrong the engine raises
(``shared_prefix=True``) or falls back to the per-row cache with a warning.

What it is not for: the run store, model loading or the CLI (see
:mod:`~codexlab.sampling.runner` and :mod:`codexlab.commands.sample`), and training.
"""

from __future__ import annotations

import inspect
import math
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from codexlab.sampling import prefix as prefix_attn
from codexlab.sampling.cache import SlotCache
from codexlab.sampling.config import SamplingConfig
from codexlab.sampling.healing import (
    HealTable,
    advance,
    allowed_rows,
    back_off,
    default_token_healing,
    vocab_bytes,
)
from codexlab.sampling.rng import batch_uniforms
from codexlab.sampling.sampler import sample_step
from codexlab.sampling.text import (
    CompletionDecoder,
    Finished,
    find_stop,
    finish_sample,
    prompt_text,
    stop_lookback,
)

#: Row fields of every sample, in the order the store and the JSONL writer use.
ROW_FIELDS = ("task_id", "idx", "completion", "n_tokens", "sum_logprob", "mean_logprob",
              "finish_reason")


def resolve_device(device: str | None) -> torch.device:
    """Return the requested device, or CUDA, then MPS, then CPU when ``device`` is None."""
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Return the model dtype: the named one, else bf16 on CUDA (if supported), else fp32."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype:
        try:
            out = getattr(torch, str(dtype))
        except AttributeError:
            raise ValueError(
                f"unknown dtype {dtype!r}; use float32, bfloat16 or float16"
            ) from None
        if not isinstance(out, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
        return out
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


@dataclass
class _Prompt:
    """One prompt's tokens, its decoder, and (after prefill) its KV and next-token logits.

    With token healing ``ids`` is the backed-off prompt and ``heal`` the removed bytes.
    """

    task_id: str
    ids: list[int]
    decoder: CompletionDecoder
    heal: bytes = b""
    heal_text: str = ""
    kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    logits: torch.Tensor | None = None
    dyn_cache: Any = None


class SamplingEngine:
    """Draws samples for a model/tokenizer pair under one :class:`SamplingConfig`.

    Args:
        model: A causal LM (already on its device, eval mode is set here).
        tokenizer: Its tokenizer.
        cfg: The sampling settings.
        mode: ``"growing"`` (preallocated cache, attention over the filled part, finished
            rows dropped; default off CUDA), ``"static"`` (fixed slots refilled as samples
            finish, fixed shapes for CUDA graphs; default on CUDA), or ``"dynamic"`` (the
            model's own ``DynamicCache``, one prompt per batch; used automatically for
            non-standard caches, and for sliding windows shorter than a run's longest prompt
            + ``max_new_tokens``: ``mode`` is then settled per run, ``"dynamic"`` until the
            first). ``"static"`` runs on any device; off CUDA (or with
            ``cfg.compile=False``) its step is eager, which is how its slot logic is tested on
            a CPU. An explicit growing/static mode that a sliding window would cut raises.
        shared_prefix: Shared-prefix attention (growing mode); default on for
            :data:`~codexlab.sampling.prefix.SUPPORTED_MODEL_TYPES`. Checked against a plain
            forward pass before first use: ``True`` raises ``ValueError`` where it is wrong,
            the default falls back to the per-row cache with a warning.

    ``cfg.token_healing=None`` is resolved here from the model's ``name_or_path``
    (:func:`~codexlab.sampling.healing.default_token_healing`); the runner passes it resolved.
    """

    def __init__(
        self, model: Any, tokenizer: Any, cfg: SamplingConfig, *, mode: str | None = None,
        shared_prefix: bool | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.device = next(model.parameters()).device
        params = inspect.signature(model.forward).parameters
        # transformers renamed ``past_key_values`` to ``cache`` (deprecated alias until 5.40);
        # older releases also want ``cache_position``.
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._pass_cache_position = "cache_position" in params
        self._logits_to_keep = "logits_to_keep" in params
        if mode not in (None, "growing", "static", "dynamic"):
            raise ValueError(f"unknown engine mode {mode!r}")
        self._requested = (mode, shared_prefix)
        #: Whether the model's layers can use the slot cache at all, and the smallest
        #: sliding window among them (None: every layer attends to the whole context).
        self._slot_ok, self._window = self._attention_layout()
        #: Outcome of the shared-prefix check (:meth:`_check_prefix_path`): None = not run
        #: yet, "" = exact, else why the path cannot be used for this model.
        self._prefix_failure: str | None = None
        self.mode = ""
        self.shared_prefix = False
        self.check_every = int(cfg.stop_check_every or (8 if self.device.type == "cuda" else 1))
        self.use_compile = False
        self._choose_paths(None)
        self._compiled: Any = None
        #: torch.compile backend of the static step ("inductor" = CUDA graphs via
        #: mode="reduce-overhead"; tests use "aot_eager" to check tracing on a CPU).
        self.compile_backend = "inductor"
        self._static: dict[str, Any] | None = None
        self.batch_size = 0
        self.eos_ids = self._eos_ids()
        heal = cfg.token_healing
        if heal is None:
            heal = default_token_healing(getattr(model, "name_or_path", None)
                                         or getattr(model.config, "_name_or_path", None))
        #: Resolved ``token_healing`` (0 = off).
        self.token_healing = int(heal)
        self._heal_table: HealTable | None = None
        self._heal_tensor: tuple[int, str, torch.Tensor, torch.Tensor] | None = None
        self._compiled_heal: Any = None
        self.stats = {"prefill_tokens": 0, "decode_steps": 0, "row_steps": 0, "tokens": 0,
                      "samples": 0, "seconds": 0.0, "healed_prompts": 0}

    # -- setup ---------------------------------------------------------------------------
    def _attention_layout(self) -> tuple[bool, int | None]:
        """Return (slot cache usable, smallest sliding window or None) for the model's layers.

        The slot cache (growing and static modes) holds plain full-attention KV. A layer with
        a sliding window behaves the same as long as the window covers every key of a run,
        which :meth:`_choose_paths` checks per run; any other kind of layer (linear,
        chunked attention, encoder-decoder) needs the model's own cache.
        """
        cfg = self.model.config
        get_text = getattr(cfg, "get_text_config", None)
        text = get_text(decoder=True) if get_text else cfg
        if getattr(text, "is_encoder_decoder", False):
            return False, None
        types = getattr(text, "layer_types", None)
        if types and any(t not in ("full_attention", "sliding_attention") for t in types):
            return False, None
        window = getattr(text, "sliding_window", None)
        sliding = (any(t == "sliding_attention" for t in types) if types
                   else bool(window) and getattr(text, "use_sliding_window", True) is not False)
        if not sliding:
            return True, None
        if not isinstance(window, int) or window <= 0:
            return False, None
        return True, window

    def _cache_columns(self, mode: str, max_prompt: int) -> int:
        """Return the most cache columns a query of ``mode`` may see (sliding-window bound)."""
        M = int(self.cfg.max_new_tokens)
        if mode == "static":
            # The static query sits at the last column of the whole buffer.
            return self._static_length(max_prompt)
        return max_prompt + M

    def _choose_paths(self, max_prompt: int | None) -> None:
        """Set ``mode``, ``shared_prefix`` and ``use_compile`` for a run.

        Args:
            max_prompt: Tokens of the run's longest prompt (None at construction: then a
                sliding-window model is provisionally given the dynamic mode).

        Raises:
            ValueError: An explicitly requested growing/static mode that this model's
                attention cannot use (a sliding window shorter than the run's context).
        """
        self._max_prompt = max_prompt
        want_mode, want_prefix = self._requested
        mode = want_mode
        fits = self._slot_ok and (
            self._window is None
            or (max_prompt is not None
                and self._cache_columns(mode or ("static" if self.device.type == "cuda"
                                                 else "growing"), max_prompt) <= self._window))
        if mode is None:
            mode = "static" if self.device.type == "cuda" else "growing"
            if not fits:
                mode = "dynamic"
        elif mode != "dynamic" and max_prompt is not None and not fits:
            raise ValueError(
                f"mode={mode!r} needs a plain full-attention cache; this model's sliding "
                f"window ({self._window} tokens) does not cover a prompt of {max_prompt} "
                f"tokens + max_new_tokens {self.cfg.max_new_tokens}: use mode='dynamic'")
        self.mode = mode
        prefix = want_prefix
        if prefix is None:
            prefix = (
                getattr(self.model.config, "model_type", None)
                in prefix_attn.SUPPORTED_MODEL_TYPES
                and getattr(self.model.config, "_attn_implementation", None) in ("sdpa", "eager")
                and not self._prefix_failure
            )
        self.shared_prefix = bool(prefix) and mode == "growing" and prefix_attn.register()
        cfg = self.cfg
        use_compile = cfg.compile if cfg.compile is not None else self.device.type == "cuda"
        self.use_compile = bool(use_compile) and mode == "static"

    def _context_limit(self) -> int | None:
        """Return the model's position limit (``max_position_embeddings``), if it has one."""
        cfg = self.model.config
        get_text = getattr(cfg, "get_text_config", None)
        text = get_text(decoder=True) if get_text else cfg
        for name in ("max_position_embeddings", "n_positions"):
            val = getattr(text, name, None)
            if isinstance(val, int) and val > 0:
                return val
        return None

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for src in (getattr(self.model, "generation_config", None), self.model.config,
                    self.tokenizer):
            val = getattr(src, "eos_token_id", None) if src is not None else None
            if val is None:
                continue
            ids.update([val] if isinstance(val, int) else list(val))
        return ids

    def encode(self, prompt: str) -> list[int]:
        """Tokenize a prompt the way the model expects (special tokens such as BOS added)."""
        if self.cfg.strip_prompt:
            prompt = prompt.rstrip()
        ids = list(self.tokenizer(prompt)["input_ids"])
        if not ids:
            raise ValueError("a prompt encodes to zero tokens and the tokenizer adds no BOS; "
                             "give a non-empty prompt")
        return ids

    def _forward(self, ids: torch.Tensor, *, cache: Any, position_ids: torch.Tensor | None,
                 attention_mask: torch.Tensor | None, last_only: bool = True,
                 extra: dict[str, Any] | None = None) -> torch.Tensor:
        kw: dict[str, Any] = {"input_ids": ids, "use_cache": True, self._cache_kw: cache}
        if extra:
            kw.update(extra)
        if position_ids is not None:
            kw["position_ids"] = position_ids
        if attention_mask is not None:
            kw["attention_mask"] = attention_mask
        if last_only and self._logits_to_keep:
            kw["logits_to_keep"] = 1
        if self._pass_cache_position and isinstance(cache, SlotCache):
            kw["cache_position"] = cache.cache_position(ids.shape[1])
        out = self.model(**kw)
        return out.logits[:, -1, :]

    def _prefill(self, prompt: _Prompt) -> None:
        """Run the prompt once at batch 1; keep its KV (or cache) and last logits."""
        if prompt.logits is not None:
            return
        from transformers.cache_utils import DynamicCache

        ids = torch.tensor([prompt.ids], dtype=torch.long, device=self.device)
        cache = DynamicCache(config=self.model.config) if self.mode == "dynamic" else DynamicCache()
        logits = self._forward(ids, cache=cache, position_ids=None, attention_mask=None)
        self.stats["prefill_tokens"] += len(prompt.ids)
        prompt.logits = logits[0].float()
        if self.mode == "dynamic":
            prompt.dyn_cache = cache
        else:
            prompt.kv = [(layer.keys, layer.values) for layer in cache.layers]

    def _kv_bytes_per_token(self, prompt: _Prompt) -> int:
        if prompt.kv is not None:
            return sum(k[0, :, :1].numel() * k.element_size() + v[0, :, :1].numel()
                       * v.element_size() for k, v in prompt.kv)
        total = 0
        for layer in prompt.dyn_cache.layers:
            if getattr(layer, "keys", None) is not None and layer.keys.numel():
                total += layer.keys[0, :, :1].numel() * layer.keys.element_size() * 2
        return max(total, 1)

    def choose_batch_size(self, prompt: _Prompt, length: int, total_rows: int) -> int:
        """Rows per batch: the configured size, else what fits in free memory (capped).

        Args:
            prompt: A prefilled prompt (its KV gives the bytes per token of this model).
            length: Cache columns per row.
            total_rows: Rows left to draw (no point in a bigger batch).
        """
        if self.cfg.batch_size:
            return max(1, min(int(self.cfg.batch_size), total_rows))
        vocab = int(prompt.logits.shape[-1])
        # KV buffers + the per-row sampling temporaries (float32 logits/probs, float64 cdf).
        per_row = self._kv_bytes_per_token(prompt) * length + vocab * 40
        if self.device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(self.device)
            budget, cap = 0.6 * free, 4096
        else:
            budget, cap = 0.25 * _available_ram(), 256
        rows = int(budget // max(per_row, 1))
        if self.device.type == "cuda" and rows >= 64:
            rows -= rows % 64
        return max(1, min(rows, cap, total_rows))

    # -- public ----------------------------------------------------------------------------
    def plan(self, problems: Mapping[str, Any],
             indices: Mapping[str, Iterable[int]] | None = None) -> list[tuple[_Prompt, int]]:
        """Return the (prompt, sample index) work items in task order."""
        items: list[tuple[_Prompt, int]] = []
        for task_id, problem in problems.items():
            idxs = list(range(self.cfg.n)) if indices is None else list(indices.get(task_id, ()))
            if not idxs:
                continue
            ids = self.encode(prompt_text(problem))
            limit = self._context_limit()
            if limit and len(ids) + int(self.cfg.max_new_tokens) > limit:
                raise ValueError(
                    f"{task_id}: prompt of {len(ids)} tokens + max_new_tokens "
                    f"{self.cfg.max_new_tokens} exceeds the model's context of {limit} "
                    "tokens; lower max_new_tokens or leave this task out")
            head, heal, heal_text = self._back_off(ids) if self.token_healing else (ids, b"", "")
            prompt = _Prompt(task_id, head, CompletionDecoder(self.tokenizer, head, heal_text),
                             heal=heal, heal_text=heal_text)
            items.extend((prompt, int(i)) for i in idxs)
        return items

    def settle(self, problems: Mapping[str, Any],
               indices: Mapping[str, Iterable[int]] | None = None) -> str:
        """Decide the decode path of a run over these problems, as :meth:`run` will; return it.

        Sets ``mode``, ``shared_prefix`` and ``use_compile`` (a sliding-window model's mode
        depends on the run's longest prompt), so a caller can record them before running.
        The shared-prefix path's check against a plain forward pass still happens in
        :meth:`run`, which may turn ``shared_prefix`` off (with a warning).
        """
        items = self.plan(problems, indices)
        if items:
            self._choose_paths(max(len(p.ids) for p, _ in items))
        return self.mode

    def _back_off(self, ids: list[int]) -> tuple[list[int], bytes, str]:
        """Return (backed-off prompt ids, removed bytes, removed text) for token healing.

        A prompt is left whole when nothing can be backed off, or when its removed ids would
        not decode after the backed-off prompt to exactly the removed text (then the
        completion could not be cut back to the text after the original prompt).
        """
        k, removed = back_off(vocab_bytes(self.tokenizer), ids, self.token_healing)
        if not k:
            return ids, b"", ""
        head, text = ids[:-k], removed.decode("utf-8")
        if CompletionDecoder(self.tokenizer, head).generated(ids[-k:]) != text:
            return ids, b"", ""
        return head, removed, text

    def _heal_rows(self, prompts: list[_Prompt], vocab: int, device: torch.device
                   ) -> dict[str, Any] | None:
        """Return the healing table and each row's ``base``/``length`` (None: no healing).

        Args:
            prompts: The prompt of each row.
            vocab: Logit width.
            device: Where the sampling arithmetic runs.
        """
        if not any(p.heal for p in prompts):
            return None
        if self._heal_table is None or self._heal_table.vocab != vocab:
            self._heal_table = HealTable(vocab_bytes(self.tokenizer), vocab)
            self._heal_tensor = None
        ht = self._heal_table
        base = [ht.add(p.heal) for p in prompts]
        cached = self._heal_tensor
        if cached is None or cached[0] != ht.rows or cached[1] != str(device):
            cached = (ht.rows, str(device), ht.tensor(device),
                      torch.from_numpy(ht.token_len).to(device))
            self._heal_tensor = cached
        return {"table": cached[2], "token_len": cached[3],
                "base": torch.tensor(base, dtype=torch.long, device=device),
                "length": torch.tensor([len(p.heal) for p in prompts], dtype=torch.long,
                                       device=device),
                "max": max(len(p.heal) for p in prompts)}

    @torch.inference_mode()
    def run(self, problems: Mapping[str, Any], indices: Mapping[str, Iterable[int]] | None = None,
            *, progress: bool = True, return_tokens: bool = False) -> Iterator[dict[str, Any]]:
        """Yield one row per sample as soon as it finishes (see :data:`ROW_FIELDS`).

        Args:
            problems: task_id → problem (``Problem``, dict with ``prompt``, or prompt string).
            indices: task_id → sample indices to draw; default ``range(cfg.n)`` for every task.
            progress: Show a tqdm bar with samples and new tokens/s.
            return_tokens: Add ``token_ids`` (the recorded tokens), ``prompt_ids`` (the
                backed-off prompt with token healing) and ``heal_text`` (the removed text,
                ``""`` without healing) to rows.
        """
        items = self.plan(problems, indices)
        if not items:
            return
        self.stats["healed_prompts"] += len({id(p) for p, _ in items if p.heal})
        self._choose_paths(max(len(p.ids) for p, _ in items))
        if self.shared_prefix:
            self._ensure_prefix_path(items[0][0])
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(items), unit="sample", desc="sampling", dynamic_ncols=True)
        t0 = time.perf_counter()
        try:
            if self.mode == "static":
                rows_iter: Iterable[dict[str, Any]] = self._run_static(items, return_tokens)
            else:
                batches = (self._batches_single_prompt(items) if self.mode == "dynamic"
                           else self._batches_mixed(items))
                rows_iter = (row for batch in batches
                             for row in self._run_batch(batch, return_tokens=return_tokens))
            for row in rows_iter:
                self.stats["samples"] += 1
                self.stats["tokens"] += row["n_tokens"]
                if bar is not None:
                    dt = time.perf_counter() - t0
                    bar.update(1)
                    bar.set_postfix_str(f"{self.stats['tokens'] / max(dt, 1e-9):,.0f} tok/s")
                yield row
        finally:
            self.stats["seconds"] += time.perf_counter() - t0
            if bar is not None:
                bar.close()

    # -- shared-prefix path ----------------------------------------------------------------
    def _prefix_forward(self, tok: torch.Tensor, cache: Any, state: dict[str, Any]
                        ) -> torch.Tensor:
        """One decode step on the shared-prefix path; every layer must have taken the prefix.

        The prefix attention is selected for this forward only (prefills keep the model's own
        implementation).

        Raises:
            PrefixNotPassed: A layer called the attention without the prefix, or some layers
                never called it (their attention does not go through transformers'
                attention interface), so the step's logits are wrong.
        """
        prefix = state["prefix"]
        prefix.seen.clear()
        config = self.model.config
        saved = config._attn_implementation
        _set_attn_implementation(config, prefix_attn.NAME)
        try:
            out = self._forward(tok, cache=cache, position_ids=state["pos"], attention_mask=None,
                                extra={"codexlab_prefix": prefix})
        finally:
            _set_attn_implementation(config, saved)
        layers = len(prefix.kv[0]) if prefix.kv else 0
        if len(prefix.seen) != layers:
            raise prefix_attn.PrefixNotPassed(
                f"{layers - len(prefix.seen)} of {layers} layers never called the shared-prefix "
                "attention (their attention does not use transformers' attention interface)")
        return out

    def _check_prefix_path(self, prompt: _Prompt, steps: int = 3) -> str:
        """Return "" if shared-prefix decoding reproduces a plain forward pass, else why not.

        Two rows of ``prompt`` decode ``steps`` fixed tokens on the prefix path; their logits
        must match, as log-probabilities, those of one forward pass over prompt + tokens with
        the model's own attention (to 1e-3 in float32, 0.25 with 16-bit weights, both times
        max(1, largest |logit| / 10)).
        """
        # The completion cache has max_new_tokens columns; a run decodes at most
        # max_new_tokens - 1 steps (none when it is 1: nothing to check).
        steps = min(steps, int(self.cfg.max_new_tokens) - 1)
        if steps <= 0:
            return ""
        self._prefill(prompt)
        L = len(prompt.ids)
        toks = [prompt.ids[i % L] for i in range(steps)]
        got = []
        try:
            cache, _, state = self._setup_batch([(prompt, 0), (prompt, 1)])
            for t in range(steps):
                tok = torch.full((2, 1), toks[t], dtype=torch.long, device=self.device)
                got.append(self._prefix_forward(tok, cache, state).float())
                cache.advance(1)
                state["pos"].add_(1)
        except prefix_attn.PrefixNotPassed as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure of the path means "do not use"
            return f"the shared-prefix path failed ({type(exc).__name__}: {exc})"
        ids = torch.tensor([prompt.ids + toks], dtype=torch.long, device=self.device)
        ref = self.model(input_ids=ids, use_cache=False).logits[0, L:L + steps].float()
        lp_ref = torch.log_softmax(ref, dim=-1)
        err = max(float((torch.log_softmax(g, dim=-1) - lp_ref[t]).abs().max())
                  for t, g in enumerate(got))
        # Rounding grows with the logits' range; a wrong path is off by tenths of a nat or
        # more (3.5 nats on StableLM, whose layers drop the prefix).
        dtype = next(self.model.parameters()).dtype
        scale = max(1.0, float(ref.abs().max()) / 10.0)
        tol = (1e-3 if dtype in (torch.float32, torch.float64) else 0.25) * scale
        if not err <= tol:
            return (f"decode steps on the shared-prefix path differ from a plain forward pass "
                    f"by {err:.3g} in log-probability (tolerance {tol:g})")
        return ""

    def _ensure_prefix_path(self, prompt: _Prompt) -> None:
        """Check the shared-prefix path once per engine; raise or fall back when it is wrong.

        Raises:
            ValueError: ``shared_prefix=True`` was asked for and the path is wrong here.
        """
        if self._prefix_failure is None:
            self._prefix_failure = self._check_prefix_path(prompt)
        if not self._prefix_failure:
            return
        model_type = getattr(self.model.config, "model_type", "?")
        if self._requested[1]:
            raise ValueError(f"shared_prefix=True cannot be used with this {model_type} model: "
                             f"{self._prefix_failure}; leave shared_prefix unset")
        warnings.warn(f"shared-prefix attention is wrong for this {model_type} model "
                      f"({self._prefix_failure}); decoding with the per-row cache instead",
                      stacklevel=3)
        self._choose_paths(self._max_prompt)

    # -- batching ----------------------------------------------------------------------------
    def _batches_mixed(self, items: list[tuple[_Prompt, int]]
                       ) -> Iterator[list[tuple[_Prompt, int]]]:
        """Consecutive chunks of the work list (prompts mixed), sized from memory."""
        max_len = max(len(p.ids) for p, _ in items)
        length = self._static_length(max_len)
        self._prefill(items[0][0])
        size = self.choose_batch_size(items[0][0], length, len(items))
        self.batch_size = size
        for start in range(0, len(items), size):
            yield items[start:start + size]

    def _batches_single_prompt(self, items: list[tuple[_Prompt, int]]
                               ) -> Iterator[list[tuple[_Prompt, int]]]:
        size = None
        group: list[tuple[_Prompt, int]] = []
        for it in items:
            if size is None:
                self._prefill(it[0])
                size = self.choose_batch_size(it[0], len(it[0].ids) + self.cfg.max_new_tokens,
                                              len(items))
                self.batch_size = size
            if group and (group[0][0] is not it[0] or len(group) == size):
                yield group
                group = []
            group.append(it)
        if group:
            yield group

    def _static_length(self, max_prompt: int) -> int:
        # One cache length for the whole run in static mode (one compiled graph): the longest
        # prompt rounded up to 64, the completion budget, and the steps a finished row may
        # run on until the next host check notices it.
        return (int(math.ceil(max_prompt / 64) * 64) + int(self.cfg.max_new_tokens)
                + self.check_every)

    # -- one batch -----------------------------------------------------------------------------
    def _setup_batch(self, batch: list[tuple[_Prompt, int]]) -> tuple[Any, torch.Tensor, Any]:
        """Prefill the batch's prompts; return (cache, first logits, state for stepping)."""
        rows = len(batch)
        groups: list[tuple[_Prompt, int, int]] = []  # prompt, first row, row count
        for r, (p, _idx) in enumerate(batch):
            if groups and groups[-1][0] is p:
                groups[-1] = (p, groups[-1][1], groups[-1][2] + 1)
            else:
                groups.append((p, r, 1))
        for p, _, _ in groups:
            self._prefill(p)
        if self.mode == "dynamic":
            (p, _, n), = groups
            import copy

            cache = copy.deepcopy(p.dyn_cache)
            cache.batch_repeat_interleave(n)
            return cache, p.logits.unsqueeze(0).expand(n, -1), None

        if self.shared_prefix:
            # Prompts live in PrefixKV (once each); the slot cache holds completions only.
            k0, _ = groups[0][0].kv[0]
            shapes = [((k.shape[1], k.shape[3]), (v.shape[1], v.shape[3]))
                      for k, v in groups[0][0].kv]
            cache = SlotCache(shapes, rows, int(self.cfg.max_new_tokens), k0.dtype, self.device,
                              static=False, prompt_end=0)
            pos = torch.zeros((rows, 1), dtype=torch.long, device=self.device)
            logits = torch.empty((rows, groups[0][0].logits.shape[-1]), dtype=torch.float32,
                                 device=self.device)
            kv = []
            for p, r0, n in groups:
                pos[r0:r0 + n] = len(p.ids)
                logits[r0:r0 + n] = p.logits
                kv.append([(k[0].contiguous(), v[0].contiguous()) for k, v in p.kv])
            row_group = np.repeat(np.arange(len(groups)), [n for _, _, n in groups])
            state = {"cache": cache, "mask": None, "pos": pos, "P": 0,
                     "prefix": prefix_attn.PrefixKV(kv, row_group)}
            cache.set_ptr(0)
            for p, _, _ in groups[:-1]:
                p.kv = None
            return cache, logits, state
        else:
            P = max(len(p.ids) for p, _, _ in groups)
            length = P + int(self.cfg.max_new_tokens)
            k0, v0 = groups[0][0].kv[0]
            shapes = [((k.shape[1], k.shape[3]), (v.shape[1], v.shape[3]))
                      for k, v in groups[0][0].kv]
            cache = SlotCache(shapes, rows, length, k0.dtype, self.device, static=False,
                              prompt_end=P)
            mask = torch.zeros((rows, length), dtype=torch.bool, device=self.device)
            pos = torch.zeros((rows, 1), dtype=torch.long, device=self.device)
            state = {"cache": cache, "mask": mask, "pos": pos, "P": P}
        logits = torch.empty((rows, groups[0][0].logits.shape[-1]), dtype=torch.float32,
                             device=self.device)
        for p, r0, n in groups:
            sl = slice(r0, r0 + n)
            cache.write_prompt(p.kv, sl, P)
            mask[sl, P - len(p.ids):P] = True
            pos[sl] = len(p.ids)
            logits[sl] = p.logits
        cache.set_ptr(P)
        # Prompts of earlier batches are not needed any more: free their KV (keep the last
        # one, whose remaining samples may start the next batch).
        for p, _, _ in groups[:-1]:
            p.kv = None
        return cache, logits, state

    # -- static mode (CUDA graphs): fixed slots, refilled as samples finish ------------------
    def _static_buffers(self, items: list[tuple[_Prompt, int]]) -> dict[str, Any]:
        """Return the run's fixed-shape buffers (reused by a later run that fits in them)."""
        max_len = max(len(p.ids) for p, _ in items)
        length = self._static_length(max_len)
        M = int(self.cfg.max_new_tokens)
        st = self._static
        if st is not None and st["cache"].length >= length and st["M"] == M:
            self.batch_size = st["cache"].rows
            return st
        self._static, self._compiled, self._compiled_heal = None, None, None
        p0 = items[0][0]
        self._prefill(p0)
        rows = self.choose_batch_size(p0, length, len(items))
        self.batch_size = rows
        shapes = [((k.shape[1], k.shape[3]), (v.shape[1], v.shape[3])) for k, v in p0.kv]
        dev = self.device
        width = M + self.check_every  # steps a row can reach before the host sees it finish
        cache = SlotCache(shapes, rows, length, p0.kv[0][0].dtype, dev, static=True)
        st = {
            "cache": cache, "M": M,
            "mask": torch.zeros((rows, length), dtype=torch.bool, device=dev),
            "pos": torch.zeros((rows, 1), dtype=torch.long, device=dev),
            "tok": torch.zeros((rows, 1), dtype=torch.long, device=dev),
            "step": torch.zeros((rows,), dtype=torch.long, device=dev),
            "active": torch.zeros((rows,), dtype=torch.long, device=dev),
            "U": torch.zeros((rows, width), dtype=torch.float64, device=dev),
            "gen": torch.zeros((rows, width), dtype=torch.long, device=dev),
            "lps": torch.zeros((rows, width), dtype=torch.float32, device=dev),
        }
        for name in ("mask", "pos", "tok", "step", "active", "U", "gen", "lps"):
            torch._dynamo.mark_static_address(st[name])
        if self.token_healing:
            # Per-slot healing progress; the allowed-set table is sized per run
            # (:meth:`_static_heal_table`).
            for name in ("heal_base", "heal_len", "heal_off"):
                st[name] = torch.zeros((rows,), dtype=torch.long, device=dev)
                torch._dynamo.mark_static_address(st[name])
        self._static = st
        return st

    def _static_heal_table(self, st: dict[str, Any], items: list[tuple[_Prompt, int]]
                           ) -> HealTable | None:
        """Fill the static buffers' healing table for this run's prompts (None: no healing).

        The table keeps a fixed address across runs (CUDA graphs); it is reallocated, and the
        masked step recompiled, only when a run needs more rows than it has.
        """
        if not self.token_healing or not any(p.heal for p, _ in items):
            return None
        self._prefill(items[0][0])            # (already done unless the buffers were reused)
        vocab = int(items[0][0].logits.shape[-1])
        if self._heal_table is None or self._heal_table.vocab != vocab:
            self._heal_table = HealTable(vocab_bytes(self.tokenizer), vocab)
        ht = self._heal_table
        for p, _ in items:
            ht.add(p.heal)
        dev = self.device
        table = st.get("heal_table")
        if table is None or table.shape[0] < ht.rows or table.shape[1] != vocab:
            cap = max(ht.rows, 2 * (table.shape[0] if table is not None else 8))
            table = torch.zeros((cap, vocab), dtype=torch.bool, device=dev)
            torch._dynamo.mark_static_address(table)
            st["heal_table"] = table
            st["token_len"] = torch.from_numpy(ht.token_len).to(dev)
            torch._dynamo.mark_static_address(st["token_len"])
            self._compiled_heal = None
        table[: ht.rows].copy_(ht.tensor(dev))
        return ht

    def _step_fn(self, st: dict[str, Any], heal: bool = False) -> Any:
        """Return the static decode step: forward one token per slot, then sample.

        Shapes never change and nothing reads back to the host, so it is compiled with
        ``mode="reduce-overhead"`` (CUDA graphs) when ``use_compile``; it falls back to eager
        if compilation fails. ``heal=True`` gives the token-healing variant (a second graph),
        which masks each slot's choice by its row of the healing table.
        """
        attr = "_compiled_heal" if heal else "_compiled"
        if getattr(self, attr) is not None:
            return getattr(self, attr)
        cache, mask, pos, U = st["cache"], st["mask"], st["pos"], st["U"]
        cfg = self.cfg
        if heal:
            table, base, off, length = (st["heal_table"], st["heal_base"], st["heal_off"],
                                        st["heal_len"])

        def step(tok: torch.Tensor, step_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = self._forward(tok, cache=cache, position_ids=pos, attention_mask=mask)
            # The input token is step s of its sample; the token drawn now is step s + 1.
            u = U.gather(1, step_idx.view(-1, 1) + 1).squeeze(1)
            if heal:
                allowed = allowed_rows(table, base, off, length)
                return sample_step(logits, u, cfg.temperature, cfg.top_p, use_numpy=False,
                                   allowed=allowed)
            return sample_step(logits, u, cfg.temperature, cfg.top_p, use_numpy=False)

        setattr(self, attr, step)
        if self.use_compile:
            try:
                if self.compile_backend == "inductor":
                    compiled = torch.compile(step, mode="reduce-overhead", dynamic=False)
                else:  # tests: trace with dynamo/AOT on a CPU without code generation
                    compiled = torch.compile(step, backend=self.compile_backend, dynamic=False)
            except Exception as exc:  # noqa: BLE001 - compile is an optimisation only
                warnings.warn(f"torch.compile unavailable ({exc}); decoding eagerly", stacklevel=2)
            else:
                setattr(self, attr, _eager_fallback(compiled, step))
        return getattr(self, attr)

    def _run_static(self, items: list[tuple[_Prompt, int]], return_tokens: bool
                    ) -> Iterator[dict[str, Any]]:
        """Decode with a fixed number of slots; a finished slot takes the next sample at once.

        Every ``check_every`` steps the host copies the generated tokens back, settles the
        finished samples (exactly, by :meth:`_check_rows`) and refills their slots: the new
        sample's prompt KV goes into columns ``[0, L)`` of the slot, its first token is drawn
        from the prompt's logits with uniform 0 of its stream, and it decodes from the next
        step on. Slots with no work left stay frozen (their column does not advance).
        """
        cfg = self.cfg
        M = int(cfg.max_new_tokens)
        st = self._static_buffers(items)
        cache, mask, pos, tok_buf = st["cache"], st["mask"], st["pos"], st["tok"]
        step, active, U, gen, lps = st["step"], st["active"], st["U"], st["gen"], st["lps"]
        rows, width, length = cache.rows, U.shape[1], cache.length
        step_fn = self._step_fn(st)
        ht = self._static_heal_table(st, items)
        heal_fn = None
        heal_left = 0                             # decode steps in which a slot may be healing
        queue = list(reversed(items))             # pop() takes the next work item
        left: dict[int, int] = {}                 # prompt -> items not yet started
        for p, _ in items:
            left[id(p)] = left.get(id(p), 0) + 1
        slot: list[tuple[_Prompt, int] | None] = [None] * rows
        eos_at = np.full(rows, -1, dtype=np.int64)
        checked = np.zeros(rows, dtype=np.int64)
        eos_arr = np.array(sorted(self.eos_ids), dtype=np.int64)

        def fill(free: list[int]) -> None:
            """Start the next samples in the free slots (vectorised: one op per prompt/field)."""
            todo = []
            for b in free:
                if queue:
                    todo.append((b, queue.pop()))
                else:
                    slot[b] = None
            nonlocal heal_left, heal_fn
            idle = [b for b in free if slot[b] is None]
            if idle:
                ib = torch.tensor(idle, device=mask.device)
                active[ib] = 0
                mask[ib] = False
                mask[ib, length - 1] = True       # a frozen slot attends to one finite column
                cache.cols[ib] = length - 1
                if ht is not None:
                    st["heal_len"][ib] = 0
            if not todo:
                return
            groups: dict[int, tuple[_Prompt, list[int]]] = {}
            for b, (p, _idx) in todo:
                groups.setdefault(id(p), (p, []))[1].append(b)
            for p, bs in groups.values():
                self._prefill(p)
                n = len(p.ids)
                sb = torch.tensor(bs, device=mask.device)
                cache.write_rows(p.kv, sb)
                mask[sb] = False
                mask[sb, :n] = True
                pos[sb] = n
                cache.cols[sb] = n
                left[id(p)] -= len(bs)
                if left[id(p)] == 0:
                    p.kv = None                   # all its samples started: free its KV
            tb = torch.tensor([b for b, _ in todo], device=mask.device)
            u = np.zeros((len(todo), width))
            u[:, :M] = batch_uniforms(cfg.seed, [(p.task_id, i) for _, (p, i) in todo], M)
            u_t = torch.from_numpy(u).to(U.device)
            U[tb] = u_t
            first = torch.stack([p.logits for _, (p, _i) in todo])
            allowed = None
            if ht is not None:
                hb = torch.tensor([ht.base.get(p.heal, 0) for _, (p, _i) in todo],
                                  dtype=torch.long, device=mask.device)
                hl = torch.tensor([len(p.heal) for _, (p, _i) in todo], dtype=torch.long,
                                  device=mask.device)
                st["heal_base"][tb] = hb
                st["heal_len"][tb] = hl
                longest = max(len(p.heal) for _, (p, _i) in todo)
                if longest:
                    allowed = allowed_rows(st["heal_table"], hb, torch.zeros_like(hb), hl)
                if longest > 1:
                    # The first token is drawn here; at most longest - 1 more can be healing.
                    heal_left = max(heal_left, longest - 1)
                    heal_fn = heal_fn or self._step_fn(st, heal=True)
            t0, lp0 = sample_step(first, u_t[:, 0], cfg.temperature, cfg.top_p, use_numpy=False,
                                  allowed=allowed)
            if allowed is not None:
                st["heal_off"][tb] = advance(torch.zeros_like(hl), hl, st["token_len"], t0)
            step[tb] = 0
            active[tb] = 1
            gen[tb, 0] = t0
            lps[tb, 0] = lp0
            tok_buf[tb, 0] = t0
            for b, item in todo:
                slot[b] = item
                eos_at[b] = -1
                checked[b] = 0

        fill(list(range(rows)))
        since_check = 0
        while any(s is not None for s in slot):
            if since_check < self.check_every:
                # One decode step for every slot: the current token sits at column cols.
                mask.scatter_(1, cache.cols.view(-1, 1), True)
                if heal_left > 0:
                    nxt, lp = heal_fn(tok_buf, step)
                    st["heal_off"].copy_(advance(st["heal_off"], st["heal_len"],
                                                 st["token_len"], nxt))
                    heal_left -= 1
                else:
                    nxt, lp = step_fn(tok_buf, step)
                step.add_(active)
                cache.cols.add_(active)
                pos.add_(active.view(-1, 1))
                gen.scatter_(1, step.view(-1, 1), nxt.view(-1, 1))
                lps.scatter_(1, step.view(-1, 1), lp.view(-1, 1).to(lps.dtype))
                tok_buf.copy_(nxt.view(-1, 1))
                self.stats["decode_steps"] += 1
                self.stats["row_steps"] += rows
                since_check += 1
                # A slot cannot pass its last useful step before the host looks again.
                if since_check < self.check_every:
                    continue
            since_check = 0
            # -- host sync: settle finished samples and refill their slots -----------------
            steps_np = step.cpu().numpy()
            gen_np = gen.cpu().numpy()
            lps_np = lps.cpu().numpy()
            busy = [b for b in range(rows) if slot[b] is not None]
            n_gen = {b: min(int(steps_np[b]) + 1, M) for b in busy}
            for b in busy:
                if eos_arr.size and eos_at[b] < 0:
                    hits = np.flatnonzero(np.isin(gen_np[b, :n_gen[b]], eos_arr))
                    if hits.size:
                        eos_at[b] = hits[0]
            finished: list[tuple[int, Finished]] = []
            by_len: dict[int, list[int]] = {}
            for b in busy:
                by_len.setdefault(n_gen[b], []).append(b)
            batch_view = [slot[b] if slot[b] is not None else (None, -1) for b in range(rows)]
            for n, bs in by_len.items():
                finished += self._check_rows(batch_view, bs, gen_np, eos_at, checked, n)
            for b, fin in finished:
                yield self._row(slot[b], fin, gen_np[b], lps_np[b], return_tokens)
            if finished:
                fill([b for b, _ in finished])

    def _run_batch(self, batch: list[tuple[_Prompt, int]], *, return_tokens: bool
                   ) -> Iterator[dict[str, Any]]:
        """Decode one batch to the end (growing and dynamic modes); yield rows as they finish.

        All rows step together; finished rows are dropped from the cache once they are an
        eighth of the batch (dropping copies the cache, so not after every single one).
        """
        cfg = self.cfg
        M = int(cfg.max_new_tokens)
        rows = len(batch)
        dev = self.device
        # Sampling arithmetic is float64 in places; MPS has no float64, so sample on the CPU.
        sdev = torch.device("cpu") if dev.type == "mps" else dev
        cache, logits, state = self._setup_batch(batch)
        U = torch.from_numpy(batch_uniforms(cfg.seed, [(p.task_id, i) for p, i in batch], M))
        U = U.to(sdev)
        gen = torch.zeros((rows, M), dtype=torch.long, device=sdev)
        lps = torch.zeros((rows, M), dtype=torch.float32, device=sdev)
        gen_np = np.zeros((rows, M), dtype=np.int64)
        lps_np = np.zeros((rows, M), dtype=np.float32)
        live = np.arange(rows)                   # cache row -> batch row
        done = np.zeros(rows, dtype=bool)
        eos_at = np.full(rows, -1, dtype=np.int64)
        checked = np.zeros(rows, dtype=np.int64)
        synced = 0                                # gen columns [0, synced) are on the host
        eos_arr = np.array(sorted(self.eos_ids), dtype=np.int64)
        live_dev = None
        heal = self._heal_rows([p for p, _ in batch], int(logits.shape[-1]), sdev)
        if heal is not None:
            heal["off"] = torch.zeros_like(heal["length"])

        def choose(step_logits: torch.Tensor, u_t: torch.Tensor, t: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
            """Sample step t for the live rows, masked while a row may still be healing."""
            if heal is None or t >= heal["max"]:   # each healing token has >= 1 byte
                return sample_step(step_logits, u_t, cfg.temperature, cfg.top_p)
            sel = live_dev if live_dev is not None else slice(None)
            base, off, length = heal["base"][sel], heal["off"][sel], heal["length"][sel]
            allowed = allowed_rows(heal["table"], base, off, length)
            tok_t, lp_t = sample_step(step_logits, u_t, cfg.temperature, cfg.top_p,
                                      allowed=allowed)
            heal["off"][sel] = advance(off, length, heal["token_len"], tok_t)
            return tok_t, lp_t

        tok, lp = choose(logits.to(sdev), U[:, 0], 0)
        for t in range(M):
            if t > 0:
                if self.mode == "growing":
                    col = state["P"] + t - 1
                    if state["mask"] is not None:
                        state["mask"][:, col] = True
                        out = self._forward(tok.view(-1, 1).to(dev), cache=cache,
                                            position_ids=state["pos"],
                                            attention_mask=state["mask"][:, : col + 1])
                    else:
                        out = self._prefix_forward(tok.view(-1, 1).to(dev), cache, state)
                    cache.advance(1)
                    state["pos"].add_(1)
                    u_t = U[live_dev, t] if live_dev is not None else U[:, t]
                    tok, lp = choose(out.to(sdev), u_t, t)
                else:
                    out = self._forward(tok.view(-1, 1).to(dev), cache=cache, position_ids=None,
                                        attention_mask=None)
                    u_t = U[live_dev, t] if live_dev is not None else U[:, t]
                    tok, lp = choose(out.to(sdev), u_t, t)
                self.stats["decode_steps"] += 1
                self.stats["row_steps"] += int(tok.shape[0])
            if live_dev is None:
                gen[:, t] = tok
                lps[:, t] = lp
            else:
                gen[live_dev, t] = tok
                lps[live_dev, t] = lp
            if (t + 1) % self.check_every and t + 1 < M:
                continue
            # -- host sync point: copy new columns, detect EOS and stop sequences ------------
            gen_np[:, synced:t + 1] = gen[:rows, synced:t + 1].cpu().numpy()
            lps_np[:, synced:t + 1] = lps[:rows, synced:t + 1].cpu().numpy()
            if eos_arr.size:
                fresh = np.isin(gen_np[:, synced:t + 1], eos_arr)
                hit = fresh.any(axis=1) & (eos_at < 0)
                eos_at[hit] = synced + fresh[hit].argmax(axis=1)
            synced = t + 1
            pending = [r for r in live[live < rows] if not done[r]]
            finished_now = self._check_rows(batch, pending, gen_np, eos_at, checked, t + 1)
            for r, fin in finished_now:
                done[r] = True
                yield self._row(batch[r], fin, gen_np[r], lps_np[r], return_tokens)
            if done.all():
                break
            if finished_now:
                keep = np.nonzero((live < rows) & ~done[np.minimum(live, rows - 1)])[0]
                n_done = len(live) - len(keep)
                # Dropping rows copies the cache; do it once enough rows are dead weight.
                if n_done and n_done * 8 >= len(live):
                    keep_t = torch.from_numpy(keep).to(dev)
                    cache.batch_select_indices(keep_t)
                    tok = tok[keep_t.to(sdev)]
                    if self.mode == "growing":
                        if state["mask"] is not None:
                            state["mask"] = state["mask"][keep_t]
                        if state.get("prefix") is not None:
                            state["prefix"].select(keep)
                        state["pos"] = state["pos"][keep_t]
                    live = live[keep]
                    live_dev = torch.from_numpy(live).to(sdev)

    def _check_rows(self, batch: list[tuple[_Prompt, int]], pending: list[int],
                    gen_np: np.ndarray, eos_at: np.ndarray, checked: np.ndarray, length: int
                    ) -> list[tuple[int, Finished]]:
        """Return the pending rows that ended, and how (stop, eos or length).

        Rows still running are screened cheaply: only the new tokens plus a short look-back
        are decoded (:func:`~codexlab.sampling.text.stop_lookback`). A row that hit EOS, the
        length cap, or whose window shows a stop sequence is then settled exactly by
        :func:`~codexlab.sampling.text.finish_sample` on its full decoded text.
        """
        stops = self.cfg.stop
        M = int(self.cfg.max_new_tokens)
        back = stop_lookback(stops)
        by_prompt: dict[int, list[int]] = {}
        for r in pending:
            by_prompt.setdefault(id(batch[r][0]), []).append(r)
        out: list[tuple[int, Finished]] = []
        for rs in by_prompt.values():
            dec = batch[rs[0]][0].decoder
            settle = [r for r in rs if eos_at[r] >= 0 or length >= M]
            running = [r for r in rs if not (eos_at[r] >= 0 or length >= M)]
            if stops and running:
                windows = [gen_np[r, max(0, int(checked[r]) - back):length].tolist()
                           for r in running]
                for r, text in zip(running, dec.raw_many(windows), strict=True):
                    if find_stop(text, stops) != -1:
                        settle.append(r)
                    else:
                        checked[r] = length
            else:
                checked[running] = length
            for r in settle:
                eos = int(eos_at[r]) if eos_at[r] >= 0 else None
                fin = finish_sample(dec, gen_np[r, :length].tolist(), stops=stops, eos_at=eos,
                                    max_new_tokens=M, checked=int(checked[r]))
                if fin is None:
                    # The window's match came from a prefix artefact of windowed decoding
                    # (never a real stop): keep running.
                    checked[r] = length
                else:
                    out.append((r, fin))
        return out

    def _row(self, item: tuple[_Prompt, int], fin: Finished, ids: np.ndarray, lps: np.ndarray,
             return_tokens: bool) -> dict[str, Any]:
        p, idx = item
        m = fin.n_tokens
        s = float(np.sum(lps[:m], dtype=np.float64))
        row = {"task_id": p.task_id, "idx": idx, "completion": fin.completion, "n_tokens": m,
               "sum_logprob": s, "mean_logprob": s / m, "finish_reason": fin.finish_reason}
        if return_tokens:
            row["token_ids"] = ids[:m].tolist()
            row["prompt_ids"] = list(p.ids)
            row["heal_text"] = p.heal_text
        return row


def _set_attn_implementation(config: Any, name: str | None) -> None:
    """Set ``config._attn_implementation`` (twice per decode step on the shared-prefix path).

    The property's setter costs ~30 us here (validated config attributes); a config without
    sub-configs keeps the value in one plain attribute, which is set directly (~1 us).
    """
    if not getattr(config, "sub_configs", None) and "_attn_implementation_internal" in vars(config):
        object.__setattr__(config, "_attn_implementation_internal", name)
    else:
        config._attn_implementation = name


def _eager_fallback(compiled: Any, eager: Any) -> Any:
    """Call ``compiled``; if its first call fails (compiler missing, graph break), use ``eager``.

    Compilation errors surface on the first call, not at ``torch.compile``; a sampling run
    should then continue eagerly (slower, same results) rather than die.
    """
    state = {"fn": compiled, "checked": False}

    def call(*args: Any) -> Any:
        if state["checked"]:
            return state["fn"](*args)
        try:
            out = state["fn"](*args)
        except Exception as exc:  # noqa: BLE001 - optimisation only
            warnings.warn(f"compiled decode step failed ({type(exc).__name__}: {exc}); "
                          "decoding eagerly", stacklevel=2)
            state["fn"] = eager
            out = eager(*args)
        state["checked"] = True
        return out

    return call


def _available_ram() -> int:
    """Bytes of RAM available now (``MemAvailable``), or 4 GiB if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def sample_problems(model: Any, tokenizer: Any, problems: Mapping[str, Any],
                    cfg: SamplingConfig, *, progress: bool = True,
                    indices: Mapping[str, Iterable[int]] | None = None,
                    return_tokens: bool = False) -> Iterator[dict[str, Any]]:
    """Sample completions for problems; yield rows as samples finish.

    Args:
        model: A causal LM on its device (e.g. from :func:`~codexlab.sampling.load_model`).
        tokenizer: Its tokenizer.
        problems: task_id → problem (``Problem``, dict with ``prompt``, or a prompt string).
        cfg: Sampling settings.
        progress: Show a progress bar with new tokens/s.
        indices: task_id → sample indices to draw (default ``range(cfg.n)`` for each task);
            a resumed run passes the missing ones.
        return_tokens: Also return ``token_ids``, ``prompt_ids`` and ``heal_text`` (tests,
            analysis; see :meth:`SamplingEngine.run`).

    Yields:
        Dicts with ``task_id``, ``idx``, ``completion``, ``n_tokens``, ``sum_logprob``,
        ``mean_logprob``, ``finish_reason`` (in completion order, not index order). With
        token healing the completion is the text after the original prompt and the log-probs
        cover the healing token(s) too (see :class:`SamplingConfig`).
    """
    engine = SamplingEngine(model, tokenizer, cfg)
    yield from engine.run(problems, indices, progress=progress, return_tokens=return_tokens)
