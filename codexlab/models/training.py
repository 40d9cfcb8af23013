"""Training loop of the built-in family: pretraining on the prepared corpus, resumable.

What it is for: training one size (:class:`TrainConfig`) from scratch or from saved weights
(``resume``) for a token and/or wall-clock budget on packed sequences (random windows of the
EOS-separated token stream), with bf16 autocast, SDPA attention, optional ``torch.compile``,
periodic held-out loss and a progress bar with tokens/s and MFU; then measuring the held-out
and HumanEval-text losses and saving the model in Hugging Face format with its card. What it
is not for: corpus building (:mod:`codexlab.models.data`) or sampling/evaluation on
HumanEval (the sampling and execution engines do that).

Recipe (v2) and why:

* **Muon** (``torch.optim.Muon``, Nesterov momentum 0.95, 5 Newton-Schulz steps, update RMS
  matched to AdamW's so one learning rate serves both) on the hidden 2-D matrices, **AdamW**
  (0.9, 0.95) on embeddings and norm gains. Muon set the modded-nanogpt speed records and
  measured ~1.3-2x the compute efficiency of tuned AdamW at small scale (Jordan et al. 2024;
  Liu et al. 2025, arXiv 2502.16982; Wen et al. 2025, arXiv 2509.02046). ``optimizer="adamw"``
  gives the v1 recipe.
* **WSD schedule** (warm-up, stable, decay): linear warm-up, constant learning rate, then a
  (1 - sqrt) cool-down over the last ``decay_frac`` of the run to ``min_lr_frac``; it matches
  cosine at a fixed budget and suits time budgets (Hägele et al. 2024, arXiv 2405.18392).
  ``schedule="cosine"`` gives v1's warm-up + cosine.
* **Prompt-loss weight** for the function-level stage: the loss of prompt tokens
  (signature + docstring) is multiplied by ``prompt_loss_weight`` (Codex-S masked it
  entirely; a small non-zero weight is often better for long prompts and short
  completions, arXiv 2405.14394).

Time budgets: the learning-rate schedule runs on *progress*, the larger of step/max_steps
and elapsed/time_budget, so a run given only a wall-clock budget still decays to its floor
exactly when the budget ends, whatever the machine's speed or load.

Resuming: every ``save_every_s`` (and on Ctrl-C or SIGTERM) the run writes
``training_state.pt`` beside the weights: fp32 weights, optimizer state, step, tokens, RNG
state and elapsed time. ``resume=True`` with an unfinished state of the same settings
continues that run **exactly** (same batches, same learning rates; bit-identical with a token
budget on the same machine). Without such a state (another machine, or a finished run),
``resume=True`` starts a new stage from the saved bf16 weights with a fresh, re-warmed
optimizer; the card lists every stage.
"""

from __future__ import annotations

import copy
import math
import platform
import shlex
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codexlab.models.card import read_model_card, write_model_card
from codexlab.models.configs import (
    FAMILY,
    FAMILY_VERSION,
    SIZES_V1,
    ModelSize,
    flops_per_token,
    get_size,
    llama_config,
)
from codexlab.models.data import PreparedData
from codexlab.models.registry import base_model_name, model_variant

#: Eval windows for the final held-out loss: fixed, evenly spaced, identical for every size.
FINAL_EVAL_WINDOWS = 96
#: Eval windows for the periodic (cheap) held-out loss during training.
PERIODIC_EVAL_WINDOWS = 16
#: Shard size for safetensors: the repository takes files under 16 MiB.
MAX_SHARD = "15MB"
#: File of the exact-resume state beside the weights (never shipped: see .gitignore).
STATE_FILE = "training_state.pt"
#: Dense bf16 peak FLOP/s of accelerators we know, for MFU (NVIDIA datasheets: SXM parts,
#: and the H100 PCIe card, whose name must be matched before the SXM part's "H100").
PEAK_BF16_FLOPS = {"H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}


@dataclass
class TrainConfig:
    """Settings of one training run.

    Attributes:
        size: Preset name (see :data:`codexlab.models.configs.SIZES`).
        out_dir: Model folder to write (and to resume from).
        data_dir: Prepared corpus cache.
        seq_len: Training context length.
        batch_size: Sequences per optimizer step.
        time_budget_s: Wall-clock budget of this run (None: use ``max_tokens`` only).
        max_tokens: Token budget of this run (None: use ``time_budget_s`` only).
        lr: Peak learning rate (None: the preset's).
        min_lr_frac: Final learning rate as a fraction of the peak.
        warmup_steps: Linear warm-up steps.
        weight_decay: AdamW decoupled weight decay on matrices.
        grad_clip: Gradient-norm clip.
        eval_every_s: Seconds between periodic held-out evaluations.
        save_every_s: Seconds between intermediate saves (so a killed run keeps progress).
        resume: Continue from the weights in ``out_dir`` instead of a fresh init.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        precision: ``"auto"`` (bf16 autocast on CUDA, and on CPUs with native bf16 matrix
            instructions; fp32 on other CPUs, see :func:`cpu_has_fast_bf16`), ``"bf16"`` or
            ``"fp32"``.
        compile: ``"auto"`` (on CUDA only: compile time dominates short CPU runs), ``"yes"``,
            ``"no"``.
        seed: Seed of the init and of the batch sampler.
        provisional: Mark the card provisional (short CPU training).
        progress: Show a tqdm bar.
        command: The command line recorded in the card.
        split: Token file of the cache to train on: ``"train"`` (pretraining),
            ``"functions"`` (the function-level second stage, Codex-S) or ``"docstrings"``
            (signature + body -> docstring, Codex-D); see :mod:`codexlab.models.functions`.
        optimizer: ``"muon"`` (Muon on hidden matrices + AdamW elsewhere) or ``"adamw"``.
        schedule: ``"wsd"`` (warm-up, stable, 1-sqrt decay) or ``"cosine"``.
        decay_frac: Share of the run spent in the WSD cool-down.
        prompt_loss_weight: Loss weight of prompt tokens where the split has a mask (the
            function-level set); 1 trains on them as on any token.
        size_spec: Use this preset instead of looking ``size`` up (tests, toy runs).
        humaneval_limit: Measure the HumanEval-text loss on the first N problems only (toy
            runs; None: all 164).
    """

    size: str
    out_dir: Path
    data_dir: Path
    seq_len: int = 512
    batch_size: int = 16
    time_budget_s: float | None = None
    max_tokens: int | None = None
    lr: float | None = None
    min_lr_frac: float = 0.1
    warmup_steps: int = 30
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every_s: float = 120.0
    save_every_s: float = 600.0
    resume: bool = False
    device: str = "auto"
    precision: str = "auto"
    compile: str = "auto"
    seed: int = 0
    provisional: bool = True
    progress: bool = True
    command: str = field(default_factory=lambda: " ".join(shlex.quote(a) for a in sys.argv))
    split: str = "train"
    optimizer: str = "muon"
    schedule: str = "wsd"
    decay_frac: float = 0.2
    prompt_loss_weight: float = 1.0
    size_spec: ModelSize | None = None
    humaneval_limit: int | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in ("muon", "adamw"):
            raise ValueError(f"optimizer must be 'muon' or 'adamw', not {self.optimizer!r}")
        if self.schedule not in ("wsd", "cosine"):
            raise ValueError(f"schedule must be 'wsd' or 'cosine', not {self.schedule!r}")
        if not 0.0 <= self.prompt_loss_weight <= 1.0:
            raise ValueError(f"prompt_loss_weight must be in [0, 1], not "
                             f"{self.prompt_loss_weight}")
        if not 0.0 < self.decay_frac <= 1.0:
            raise ValueError(f"decay_frac must be in (0, 1], not {self.decay_frac}")

    def run_key(self) -> dict[str, Any]:
        """Return the settings that must match for an exact resume of an interrupted run."""
        keys = ("size", "seq_len", "batch_size", "time_budget_s", "max_tokens", "lr",
                "min_lr_frac", "warmup_steps", "weight_decay", "grad_clip", "seed", "split",
                "optimizer", "schedule", "decay_frac", "prompt_loss_weight", "precision")
        return {k: getattr(self, k) for k in keys}


def _device(name: str):
    """Resolve ``auto`` to CUDA when available."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cpu_has_fast_bf16() -> bool:
    """Return whether this CPU runs bf16 matrix products natively (oneDNN's bf16 support).

    Without AVX-512 (BF16) or AMX, PyTorch emulates bf16 and autocast slows training down:
    measured on an AVX2-only 2-core VM, codex-mini-1.2m, batch 8 x 512, one thread, one
    forward + backward took 20.6 s in bf16 autocast against 2.1-3.0 s in fp32.
    """
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: no fast bf16 either
        return False


def hardware_string(device) -> str:
    """Describe the training hardware for the card."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def peak_flops(device) -> float | None:
    """Return the dense bf16 peak FLOP/s of a known GPU, else None (CPUs: no MFU)."""
    if device.type != "cuda":
        return None
    return peak_flops_of(hardware_string(device))


def peak_flops_of(gpu_name: str) -> float | None:
    """Return the dense bf16 peak FLOP/s of the GPU named ``gpu_name``, else None.

    ``gpu_name``: as torch or ``nvidia-smi`` print it, e.g. ``"NVIDIA H100 80GB HBM3"``; the
    first key of :data:`PEAK_BF16_FLOPS` it contains decides (source: NVIDIA datasheets).
    """
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in gpu_name), None)


def eval_windows(tokens: np.ndarray, seq_len: int, n: int) -> np.ndarray:
    """Return ``n`` evenly spaced windows of ``seq_len + 1`` tokens (deterministic)."""
    span = len(tokens) - seq_len - 1
    if span <= 0:
        raise ValueError("held-out split shorter than one window")
    starts = np.linspace(0, span, num=min(n, max(1, span)), dtype=np.int64)
    return np.stack([np.asarray(tokens[s : s + seq_len + 1], dtype=np.int64) for s in starts])


def windows_loss(model, windows: np.ndarray, device, autocast_dtype, batch: int = 16) -> float:
    """Return the mean next-token loss (nats/token) of ``model`` over ``windows``."""
    import torch
    import torch.nn.functional as F

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            w = torch.from_numpy(windows[i : i + batch]).to(device)
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                                enabled=autocast_dtype is not None):
                logits = model(input_ids=w[:, :-1], use_cache=False).logits
            loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)),
                                   w[:, 1:].reshape(-1), reduction="sum")
            total += loss.item()
            count += w[:, 1:].numel()
    model.train()
    return total / count


def humaneval_text_loss(model, hf_tok, device, autocast_dtype, problems=None) -> dict[str, float]:
    """Return the loss on HumanEval prompt + canonical solution text (which training excludes).

    Each problem is one document after an EOS token, as in training; the loss is averaged over
    all tokens of all problems (token-weighted), and also given in bits per byte. A second
    measure, ``solution_loss``, covers only the canonical solution's tokens given the prompt,
    tokenised apart as the function-level set is (:mod:`codexlab.models.functions`): what a
    Codex-S stage trains, and closer to what pass@k rewards than the whole-text loss, whose
    prompt part a prompt-masked stage does not train.

    Returns:
        ``loss``, ``bits_per_byte``, ``tokens`` (whole text) and ``solution_loss``,
        ``solution_tokens`` (nats/token over solution tokens).
    """
    import torch
    import torch.nn.functional as F

    if problems is None:
        from codexlab.problems import load_humaneval

        problems = load_humaneval()
    model.eval()
    total, count, n_bytes = 0.0, 0, 0
    sol_total, sol_count = 0.0, 0

    def nll(ids: list[int], start: int) -> tuple[float, int]:
        x = torch.tensor([ids], device=device)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None):
            logits = model(input_ids=x[:, :-1], use_cache=False).logits
        loss = F.cross_entropy(logits.float()[0, start:], x[0, start + 1:], reduction="sum")
        return loss.item(), len(ids) - 1 - start

    with torch.no_grad():
        for prob in problems.values():
            text = prob["prompt"] + prob["canonical_solution"]
            t, c = nll([hf_tok.eos_token_id] + hf_tok(text)["input_ids"], 0)
            total, count, n_bytes = total + t, count + c, n_bytes + len(text.encode())
            prompt = [hf_tok.eos_token_id] + hf_tok(prob["prompt"])["input_ids"]
            body = hf_tok(prob["canonical_solution"])["input_ids"]
            if body:
                t, c = nll(prompt + body, len(prompt) - 1)
                sol_total, sol_count = sol_total + t, sol_count + c
    model.train()
    return {"loss": total / count, "bits_per_byte": total / n_bytes / math.log(2),
            "tokens": count, "solution_loss": sol_total / max(sol_count, 1),
            "solution_tokens": sol_count}


def masked_examples_loss(model, tokens: np.ndarray, mask: np.ndarray, eos: int, device,
                         autocast_dtype) -> tuple[float, int]:
    """Return the loss (nats/token) of an example-level split's masked tokens, and their count.

    Each EOS-terminated example (prompt + body + EOS, as :mod:`codexlab.models.functions`
    writes it) is scored alone after an EOS token, as a HumanEval problem is in
    :func:`humaneval_text_loss`; only targets whose mask is 1 (body and EOS) count: the loss
    a prompt-masked function stage trains, on functions it never saw.

    Args:
        model: A causal LM (Hugging Face interface: ``model(input_ids=...).logits``).
        tokens: The split's token ids, shape ``(n,)``.
        mask: Its mask, shape ``(n,)``, 1 on the scored tokens.
        eos: The EOS token id.
        device: The model's torch device.
        autocast_dtype: Autocast dtype (e.g. ``torch.bfloat16``) or None for none.

    Returns:
        ``(loss, tokens)``; ``(nan, 0)`` for a split without scored tokens.
    """
    import torch
    import torch.nn.functional as F

    tokens, mask = np.asarray(tokens, dtype=np.int64), np.asarray(mask, dtype=bool)
    ends = np.flatnonzero(tokens == eos) + 1
    total, count, start = 0.0, 0, 0
    model.eval()
    with torch.no_grad():
        for end in ends:
            ids = torch.from_numpy(np.concatenate([[eos], tokens[start:end]])).to(device)[None]
            keep = torch.from_numpy(mask[start:end]).to(device)
            start = end
            if not keep.any():
                continue
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                                enabled=autocast_dtype is not None):
                logits = model(input_ids=ids[:, :-1], use_cache=False).logits
            nll = F.cross_entropy(logits.float()[0], ids[0, 1:], reduction="none")
            total, count = total + nll[keep].sum().item(), count + int(keep.sum())
    model.train()
    return (total / count if count else float("nan")), count


def count_params(model) -> dict[str, int]:
    """Return total, embedding and non-embedding parameter counts (tied head counted once)."""
    total = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings().weight.numel()
    return {"total": total, "embedding": emb, "non_embedding": total - emb}


def _lr_factor(step: int, progress: float, warmup: int, min_frac: float,
               schedule: str = "cosine", decay_frac: float = 0.2) -> float:
    """Learning-rate multiplier: linear warm-up (by steps) times the decay (by progress).

    ``cosine``: cosine from 1 to ``min_frac`` over the whole run. ``wsd``: 1 until
    ``1 - decay_frac``, then ``min_frac + (1 - min_frac) (1 - sqrt(x))`` with x the share of
    the cool-down done (Hägele et al. 2024, arXiv 2405.18392).
    """
    warm = min(1.0, (step + 1) / max(1, warmup))
    progress = min(1.0, progress)
    if schedule == "wsd":
        x = max(0.0, (progress - (1 - decay_frac)) / decay_frac)
        return warm * (min_frac + (1 - min_frac) * (1 - math.sqrt(x)))
    cos = 0.5 * (1 + math.cos(math.pi * progress))
    return warm * (min_frac + (1 - min_frac) * cos)


def _optimizers(model, cfg: TrainConfig, lr: float, device, ns_fp32: bool = False) -> list:
    """Return the optimizers of ``cfg.optimizer`` (each param group remembers its base lr).

    ``ns_fp32``: Muon's Newton-Schulz in fp32 (:class:`codexlab.models.muon.MuonNS`) instead
    of ``torch.optim.Muon``'s bf16; see :func:`muon_ns_fp32`.
    """
    import torch

    emb = {id(model.get_input_embeddings().weight)}
    matrices = [p for p in model.parameters() if p.dim() >= 2 and id(p) not in emb]
    embeddings = [p for p in model.parameters() if id(p) in emb]
    vectors = [p for p in model.parameters() if p.dim() < 2]
    fused = device.type == "cuda"
    if cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(
            [{"params": matrices + embeddings, "weight_decay": cfg.weight_decay},
             {"params": vectors, "weight_decay": 0.0}],
            lr=lr, betas=(0.9, 0.95), eps=1e-8, fused=fused)
        return [opt]
    kwargs = dict(lr=lr, weight_decay=cfg.weight_decay, momentum=0.95, nesterov=True,
                  adjust_lr_fn="match_rms_adamw")
    if ns_fp32:
        # torch.optim.Muon runs Newton-Schulz in bf16, emulated on an AVX2 CPU: 13.3 s per
        # 4.7m step against 2.8 s for the forward + backward (benchmarks/results/muon_cpu.txt).
        from codexlab.models.muon import MuonNS

        muon = MuonNS(matrices, ns_dtype=torch.float32, **kwargs)
    else:
        muon = torch.optim.Muon(matrices, **kwargs)
    adam = torch.optim.AdamW(
        [{"params": embeddings, "weight_decay": cfg.weight_decay},
         {"params": vectors, "weight_decay": 0.0}],
        lr=lr, betas=(0.9, 0.95), eps=1e-8, fused=fused)
    return [muon, adam]


def muon_ns_fp32(device) -> bool:
    """Return whether Muon's Newton-Schulz runs in fp32 on ``device``.

    True on a CPU without native bf16, where ``torch.optim.Muon``'s bf16 iteration is
    emulated (see :mod:`codexlab.models.muon`).
    """
    return device.type == "cpu" and not cpu_has_fast_bf16()


def _optimizer_text(cfg: TrainConfig, ns_fp32: bool = False) -> str:
    decay = (f"WSD: warm-up {cfg.warmup_steps} steps, constant, 1-sqrt cool-down over the last "
             f"{cfg.decay_frac:.0%} to {cfg.min_lr_frac:g}x") if cfg.schedule == "wsd" else \
        f"warm-up {cfg.warmup_steps} steps + cosine to {cfg.min_lr_frac:g}x"
    if cfg.optimizer == "adamw":
        return f"AdamW(0.9, 0.95), wd {cfg.weight_decay:g}; {decay}"
    ns = ", Newton-Schulz in fp32" if ns_fp32 else ""
    return (f"Muon (momentum 0.95, Nesterov, lr matched to AdamW RMS{ns}) on hidden matrices + "
            f"AdamW(0.9, 0.95) on embeddings and gains, wd {cfg.weight_decay:g}; {decay}")


class _Interrupt:
    """Turn SIGTERM and a first Ctrl-C into a flag while training.

    The loop checks the flag between optimizer steps, so the saved state is always that of a
    finished step: a ``KeyboardInterrupt`` raised in the middle of a step (after some
    optimizers stepped, or with gradients accumulated) would save a state that no exact
    resume can continue from. A second Ctrl-C interrupts at once, without saving.
    """

    _SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.hit = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Interrupt:
        for sig in self._SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.hit = True
        if signum == signal.SIGINT:  # the next Ctrl-C raises KeyboardInterrupt at once
            signal.signal(signal.SIGINT, self._old.get(signal.SIGINT, signal.default_int_handler))

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}


class TrainingInterrupted(RuntimeError):
    """Raised after an interrupted run stopped (its exact-resume state saved when it could be)."""


def token_weights(mask: np.ndarray, prompt_loss_weight: float) -> np.ndarray:
    """Return per-target loss weights: ``prompt_loss_weight`` for prompt tokens, 1 elsewhere.

    Args:
        mask: 1 for completion (body and EOS) targets, 0 for prompt targets.
        prompt_loss_weight: Weight of prompt targets in [0, 1].
    """
    m = np.asarray(mask, dtype=np.float32)
    return prompt_loss_weight + (1.0 - prompt_loss_weight) * m


def example_starts(tokens: np.ndarray, eos: int, seq_len: int) -> np.ndarray:
    """Return the offsets where a training window may start on an example-level split.

    The function and docstring splits are EOS-separated examples (prompt + completion + EOS).
    A window that started at a random offset would often open inside an example, training its
    completion without the prompt it answers; so windows start at an example's first token
    (the paper fine-tuned Codex-S on whole examples, one per row, prompts left-padded; here
    the window keeps packing the following examples after the first, which saves the compute
    padding would spend and only ever adds context).

    Args:
        tokens: The split's token stream, shape ``(n,)``.
        eos: The EOS token id.
        seq_len: Window length; a window reads ``seq_len + 1`` tokens.

    Returns:
        Sorted start offsets, shape ``(m,)``: 0 and every position after an EOS, that leave a
        full window.

    Raises:
        ValueError: when no example start leaves a full window (the split is shorter than
            ``seq_len + 1`` tokens).
    """
    starts = np.concatenate([[0], np.flatnonzero(np.asarray(tokens) == eos) + 1])
    starts = starts[starts <= len(tokens) - seq_len - 1]
    if not len(starts):
        raise ValueError(f"the split has {len(tokens):,} tokens, fewer than one window of "
                         f"{seq_len + 1}; lower --seq-len")
    return starts


def weighted_loss(logits, targets, weights=None):
    """Return the mean next-token cross-entropy, weighted per target when ``weights`` is given.

    Args:
        logits: ``(N, V)`` float logits.
        targets: ``(N,)`` token ids.
        weights: ``(N,)`` non-negative weights (see :func:`token_weights`) or None.

    Returns:
        ``sum(w * ce) / sum(w)`` (a plain mean without weights), a scalar tensor.
    """
    import torch.nn.functional as F

    if weights is None:
        return F.cross_entropy(logits, targets)
    per = F.cross_entropy(logits, targets, reduction="none")
    return (per * weights).sum() / weights.sum().clamp_min(1e-6)


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train one size per ``cfg``, save it with its card and return the card.

    Raises:
        ValueError: if neither a time nor a token budget is given, or a resumed model's
            vocabulary differs from the corpus tokenizer.
        TrainingInterrupted: after Ctrl-C or SIGTERM, once the exact-resume state is saved
            (rerun with ``resume=True`` to continue).
    """
    import torch
    from transformers import LlamaForCausalLM

    from codexlab.models.tokenizer import EOS_TOKEN, load_tokenizer, to_hf

    if cfg.time_budget_s is None and cfg.max_tokens is None:
        raise ValueError("give a time budget or a token budget")
    size = cfg.size_spec or get_size(cfg.size)
    data = PreparedData(Path(cfg.data_dir))
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    # bf16 autocast: on GPU standard; on CPUs with bf16 matrix instructions it measured
    # 1.2-2.3x faster than fp32 for these sizes, but on an AVX2-only CPU it is emulated and
    # ~7-10x slower (see cpu_has_fast_bf16), so "auto" asks the CPU. Master weights and the
    # loss stay fp32 (pure-bf16 weights drop small updates).
    use_bf16 = cfg.precision == "bf16" or (
        cfg.precision == "auto" and (device.type != "cpu" or cpu_has_fast_bf16()))
    amp = torch.bfloat16 if use_bf16 else None

    tok = load_tokenizer(data.tokenizer_path)
    hf_tok = to_hf(tok)
    eos = tok.token_to_id(EOS_TOKEN)
    out_dir = Path(cfg.out_dir)
    state_path = out_dir / STATE_FILE
    state = None
    if cfg.resume and state_path.exists():
        saved = torch.load(state_path, map_location="cpu", weights_only=False)
        if not saved.get("finished") and saved.get("run_key") == cfg.run_key():
            state = saved
        elif not saved.get("finished"):
            print(f"resume: {state_path} belongs to a run with other settings; starting a new "
                  f"stage from the saved weights", file=sys.stderr)
    prev_card = read_model_card(out_dir) if cfg.resume else {}
    if state is not None:
        prev_card = state["prev_card"]
    if state is None and cfg.resume and (out_dir / "config.json").exists():
        model = LlamaForCausalLM.from_pretrained(out_dir, dtype=torch.float32,
                                                 attn_implementation="sdpa")
        if model.config.vocab_size != tok.get_vocab_size():
            raise ValueError("resume: the saved model's vocabulary differs from the "
                             "corpus tokenizer")
    else:
        if cfg.resume and state is None:
            print(f"resume: no model in {out_dir}; starting from scratch", file=sys.stderr)
            prev_card = {}
        config = llama_config(size, tok.get_vocab_size(), eos)
        config._attn_implementation = "sdpa"
        model = LlamaForCausalLM(config)
        if state is not None:
            model.load_state_dict(state["model"])
    model.to(device).train()
    params = count_params(model)

    lr = cfg.lr or size.lr
    # An exact resume keeps the Newton-Schulz precision its run started with (a state saved
    # before this setting existed was torch.optim.Muon's bf16); a new run asks the hardware.
    ns_fp32 = cfg.optimizer == "muon" and muon_ns_fp32(device)
    if state is not None and cfg.optimizer == "muon":
        saved_ns = bool(state.get("muon_ns_fp32", False))
        if saved_ns != ns_fp32:
            print(f"resume: Muon's Newton-Schulz stays in {'fp32' if saved_ns else 'bf16'} as "
                  f"in the saved run (this machine would use "
                  f"{'fp32' if ns_fp32 else 'bf16'}), so the resume is exact", file=sys.stderr)
        ns_fp32 = saved_ns
    opts = _optimizers(model, cfg, lr, device, ns_fp32)
    if state is not None:
        for opt, sd in zip(opts, state["optimizers"], strict=True):
            opt.load_state_dict(sd)
    base_lrs = [[lr for _ in opt.param_groups] for opt in opts]
    fwd = model
    if cfg.compile == "yes" or (cfg.compile == "auto" and device.type == "cuda"):
        fwd = torch.compile(model)

    train_tokens = data.tokens(cfg.split)
    mask = data.loss_mask(cfg.split) if cfg.prompt_loss_weight < 1.0 else None
    held = data.tokens("heldout")
    periodic = eval_windows(held, cfg.seq_len, PERIODIC_EVAL_WINDOWS)
    rng = np.random.default_rng(cfg.seed + int(prev_card.get("training", {}).get("tokens_seen", 0)))
    tokens_per_step = cfg.batch_size * cfg.seq_len
    max_steps = math.ceil(cfg.max_tokens / tokens_per_step) if cfg.max_tokens else None
    offsets = np.arange(cfg.seq_len + 1)
    # Example-level splits start each window at an example (see example_starts); the
    # pre-training stream of whole files starts anywhere.
    aligned = example_starts(train_tokens, eos, cfg.seq_len) if cfg.split != "train" else None
    fpt = flops_per_token(size, tok.get_vocab_size(), cfg.seq_len)
    peak = peak_flops(device)

    history: list[dict[str, float]] = []
    step, tokens, progress, loss_ema, elapsed0 = 0, 0, 0.0, None, 0.0
    if state is not None:
        rng.bit_generator.state = state["rng"]
        step, tokens, progress = state["step"], state["tokens"], state["progress"]
        loss_ema, elapsed0, history = state["loss_ema"], state["elapsed"], state["history"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resume: continuing the interrupted run exactly at step {step} "
              f"({tokens:,} tokens)", file=sys.stderr)

    def save_state(finished: bool) -> None:
        torch.save({"run_key": cfg.run_key(), "finished": finished, "prev_card": prev_card,
                    "model": {k: v.detach().to("cpu", torch.float32).clone()
                              for k, v in model.state_dict().items()},
                    "optimizers": [o.state_dict() for o in opts], "muon_ns_fp32": ns_fp32,
                    "step": step,
                    "tokens": tokens, "progress": progress, "loss_ema": loss_ema,
                    "elapsed": elapsed0 + (time.time() - t0), "history": history,
                    "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()},
                   str(state_path) + ".tmp")
        Path(str(state_path) + ".tmp").replace(state_path)  # atomic: a kill never corrupts it

    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=1000, desc=cfg.size, mininterval=5 if sys.stderr.isatty() else 30,
                   bar_format="{desc}: {percentage:3.0f}%|{bar:20}| {elapsed}<{remaining} "
                              "{postfix}")
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    last_eval = last_save = t0
    first_step_s: float | None = None  # first step of this process: torch.compile + 1 step
    first_tokens = tokens
    at_step_boundary = False
    with _Interrupt() as interrupt:
        try:
            while progress < 1.0:
                if interrupt.hit:
                    at_step_boundary = True
                    raise KeyboardInterrupt
                factor = _lr_factor(step, progress, cfg.warmup_steps, cfg.min_lr_frac,
                                    cfg.schedule, cfg.decay_frac)
                for opt, bases in zip(opts, base_lrs, strict=True):
                    for g, base in zip(opt.param_groups, bases, strict=True):
                        g["lr"] = base * factor
                if aligned is None:
                    starts = rng.integers(0, len(train_tokens) - cfg.seq_len - 1,
                                          size=cfg.batch_size)
                else:
                    starts = aligned[rng.integers(0, len(aligned), size=cfg.batch_size)]
                idx = starts[:, None] + offsets
                batch = torch.from_numpy(np.asarray(train_tokens[idx], dtype=np.int64))
                batch = batch.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=amp or torch.float32,
                                    enabled=amp is not None):
                    logits = fwd(input_ids=batch[:, :-1], use_cache=False).logits
                flat = logits.float().reshape(-1, logits.size(-1))
                w = None
                if mask is not None:
                    # Prompt tokens weigh prompt_loss_weight, completion tokens 1 (by target).
                    w = torch.from_numpy(token_weights(mask[idx[:, 1:]], cfg.prompt_loss_weight)
                                         ).to(device).reshape(-1)
                loss = weighted_loss(flat, batch[:, 1:].reshape(-1), w)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                for opt in opts:
                    opt.step()
                for opt in opts:
                    opt.zero_grad(set_to_none=True)
                step += 1
                tokens += tokens_per_step
                lv = loss.item()  # waits for the step: the times below are the GPU's too
                now = time.time()
                if first_step_s is None:
                    first_step_s, first_tokens = now - t0, tokens
                loss_ema = lv if loss_ema is None else 0.95 * loss_ema + 0.05 * lv
                elapsed = elapsed0 + now - t0
                progress = max(step / max_steps if max_steps else 0.0,
                               elapsed / cfg.time_budget_s if cfg.time_budget_s else 0.0)
                # Step 1 too, so the history records where the run started.
                if step == 1 or now - last_eval >= cfg.eval_every_s or progress >= 1.0:
                    hl = windows_loss(model, periodic, device, amp)
                    history.append({"step": step, "tokens": tokens, "seconds": round(elapsed, 1),
                                    "train_loss": round(loss_ema, 4),
                                    "heldout_loss": round(hl, 4)})
                    last_eval = time.time()
                    if not cfg.progress:
                        print(f"{cfg.size} step {step} tok {tokens:,} train {loss_ema:.3f} "
                              f"held-out {hl:.3f}", flush=True)
                if bar is not None:
                    bar.n = int(min(1.0, progress) * 1000)
                    post = (f"step {step} loss {loss_ema:.3f} "
                            f"{tokens / max(1e-9, elapsed):,.0f} tok/s")
                    if history:
                        post += f" held-out {history[-1]['heldout_loss']:.3f}"
                    bar.set_postfix_str(post, refresh=False)
                    bar.update(0)  # prints at most every mininterval (log files stay short)
                if now - last_save >= cfg.save_every_s and progress < 1.0:
                    save_state(finished=False)
                    last_save = time.time()
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            if not at_step_boundary:  # a second Ctrl-C, mid-step: this state is not resumable
                raise TrainingInterrupted(
                    f"{cfg.size}: interrupted in the middle of step {step + 1}; no state saved "
                    f"(an earlier periodic save in {state_path}, if any, is kept)") from None
            save_state(finished=False)
            raise TrainingInterrupted(
                f"{cfg.size}: interrupted at step {step} ({tokens:,} tokens); state saved to "
                f"{state_path}; rerun the same command with --resume to continue exactly"
            ) from None
    t_loop = time.time() - t0
    wall = elapsed0 + t_loop
    if bar is not None:
        bar.close()

    final_windows = eval_windows(held, cfg.seq_len, FINAL_EVAL_WINDOWS)
    held_loss = windows_loss(model, final_windows, device, amp)
    held_bytes = sum(len(hf_tok.decode(w[1:].tolist()).encode()) for w in final_windows)
    he_problems = None
    if cfg.humaneval_limit is not None:
        from codexlab.problems import load_humaneval

        he_problems = dict(list(load_humaneval().items())[: cfg.humaneval_limit])
    he = humaneval_text_loss(model, hf_tok, device, amp, he_problems)
    # The function set's held-out part (functions of the held-out packages): what a function
    # stage's length is chosen by, so that HumanEval stays a test set.
    fn_held = None
    fh_mask = data.loss_mask("functions_heldout")
    if fh_mask is not None and (data.root / "functions_heldout.bin").exists():
        fn_held = masked_examples_loss(model, data.tokens("functions_heldout"), fh_mask, eos,
                                       device, amp)
    _save(model, hf_tok, out_dir)
    save_state(finished=True)

    opt_text = _optimizer_text(cfg, ns_fp32)
    tok_per_s = tokens / max(wall, 1e-9)
    mfu = round(tok_per_s * fpt / peak, 4) if peak else None
    # Throughput after this process's first step, which holds torch.compile's time.
    steady = None
    if first_step_s is not None and t_loop - first_step_s > 0 and tokens > first_tokens:
        steady = (tokens - first_tokens) / (t_loop - first_step_s)
    prev_training = prev_card.get("training", {})
    stage = {"command": cfg.command, "tokens": tokens, "steps": step,
             "wall_time_s": round(wall, 1), "hardware": hardware_string(device),
             "time_budget_s": cfg.time_budget_s, "max_tokens": cfg.max_tokens,
             "resumed": bool(prev_card), "data_split": cfg.split,
             "optimizer": opt_text, "peak_lr": lr,
             "prompt_loss_weight": cfg.prompt_loss_weight if mask is not None else None,
             "tokens_per_s": round(tok_per_s, 1), "flops_per_token": fpt, "mfu": mfu,
             "first_step_s": round(first_step_s, 2) if first_step_s is not None else None,
             "tokens_per_s_after_first_step": round(steady, 1) if steady else None,
             "mfu_after_first_step": round(steady * fpt / peak, 4) if steady and peak else None,
             "mfu_peak_flops": peak, "compiled": fwd is not model, "history": history}
    summary = data.summary()
    tok_info = summary.get("tokenizer", {})
    card = {
        "name": out_dir.name,
        "family": FAMILY,
        "family_version": FAMILY_VERSION if size.name not in SIZES_V1 else 1,
        "provisional": bool(cfg.provisional or prev_card.get("provisional", False)),
        "architecture": {
            "type": "LlamaForCausalLM", "n_layers": size.n_layers, "d_model": size.d_model,
            "n_heads": size.n_heads, "head_dim": 64, "d_ff": size.d_ff,
            "vocab_size": tok.get_vocab_size(), "train_context": cfg.seq_len,
            "max_position_embeddings": model.config.max_position_embeddings,
            "tied_embeddings": True, "weights_dtype": "bfloat16",
        },
        "tokenizer": {"version": tok_info.get("version", 1),
                      "vocab_size": tok.get_vocab_size()},
        "params": params,
        "eval": {
            "heldout_loss": round(held_loss, 4),
            "heldout_bits_per_byte": round(held_loss * final_windows.shape[0] * cfg.seq_len
                                           / held_bytes / math.log(2), 4),
            "heldout_eval_tokens": int(final_windows.shape[0] * cfg.seq_len),
            "humaneval_text_loss": round(he["loss"], 4),
            "humaneval_text_bits_per_byte": round(he["bits_per_byte"], 4),
            "humaneval_text_tokens": he["tokens"],
            "humaneval_solution_loss": round(he["solution_loss"], 4),
            "humaneval_solution_tokens": he["solution_tokens"],
            **({"functions_heldout_loss": round(fn_held[0], 4),
                "functions_heldout_tokens": fn_held[1]} if fn_held and fn_held[1] else {}),
            "loss_unit": "nats/token (codex-mini tokenizer)",
        },
        # New weights: whatever pass@k the card held was measured on the old ones.
        "humaneval": {"pass@1": None, "pass@100": None,
                      "note": "to be filled by scripts/record_humaneval_in_cards.py --measure"
                              + (f" --variant {model_variant(out_dir.name)}"
                                 if model_variant(out_dir.name) else "")},
        "training": {
            "tokens_seen": int(prev_training.get("tokens_seen", 0)) + tokens,
            "steps": int(prev_training.get("steps", 0)) + step,
            "wall_time_s": round(float(prev_training.get("wall_time_s", 0.0)) + wall, 1),
            "hardware": hardware_string(device),
            "precision": "bf16 autocast" if amp is not None else "fp32",
            "optimizer": opt_text,
            "peak_lr": lr, "batch_tokens": tokens_per_step, "seq_len": cfg.seq_len,
            "packing": ("random windows of the EOS-separated token stream" if aligned is None
                        else "windows of the EOS-separated examples, each starting at an "
                             "example"),
            "compiled": fwd is not model, "torch": torch.__version__,
            "stages": [*prev_training.get("stages", []), stage],
        },
        "data": {
            "manifest_sha256": summary["manifest_sha256"],
            "train_files": summary["train"]["files"], "train_tokens": summary["train"]["tokens"],
            "heldout_files": summary["heldout"]["files"],
            "heldout_tokens": summary["heldout"]["tokens"],
            "heldout_split": summary.get("split", "by file hash"),
            "sources": "stdlib + site-packages .py of the training machine, deduplicated "
                       "(exact + near), decontaminated against HumanEval",
        },
        "continue_command": continue_command(size.name, cfg.split, out_dir),
    }
    for split in ("functions", "docstrings"):
        if cfg.split == split:
            sstats = data.root / f"{split}.json"
            if sstats.exists():
                import json

                card["data"][split] = json.loads(sstats.read_text())
        elif prev_card.get("data", {}).get(split):
            card["data"][split] = prev_card["data"][split]
    # Fine-tuned variants (Codex-S, Codex-D) name their base, so figures pair them by size.
    variant = model_variant(out_dir.name)
    if variant:
        card["variant"] = variant
        card["base_model"] = base_model_name(out_dir.name)
    write_model_card(out_dir, card)
    return card


def continue_command(size: str, split: str, out_dir: Path) -> str:
    """Return the ``codexlab train`` command that continues the model in ``out_dir``.

    ``size``: the preset it was trained as (a Codex-S folder ``codex-mini-s-1.2m`` is size
    ``codex-mini-1.2m``); ``split``: ``train`` (pretraining), ``functions`` or
    ``docstrings`` (its stage, continued as such); ``--out`` is named unless the folder is
    the shipped family's ``<models dir>/<size>``.
    """
    from codexlab.paths import models_dir

    stage = "" if split == "train" else f" --stage {split}"
    d = Path(out_dir)
    if d.parent.resolve() == models_dir().resolve():
        # The family's folder (where a shipped model lives, and where scripts/gpu_train.sh
        # trains before the unpack moves its models to data/models): name the shipped place.
        out = "" if d.name == size else f" --out data/models/{d.name}"
    else:
        out = f" --out {d.as_posix()}"
    return f"codexlab train --size {size}{stage} --resume{out} --time-budget 600"


def _save(model, hf_tok, out_dir: Path) -> None:
    """Save bf16 sharded safetensors, the tokenizer and a neutral generation config."""
    import torch
    from transformers import GenerationConfig

    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("model*.safetensors*"):
        old.unlink()  # a shard count change would otherwise leave stale shards behind
    # A bf16 copy rather than a converted state dict: save_pretrained then drops the tied head
    # and records dtype bfloat16 in config.json. The copy is small (these models are tiny).
    bf16 = copy.deepcopy(model).to("cpu", torch.bfloat16)
    bf16.save_pretrained(out_dir, max_shard_size=MAX_SHARD)
    hf_tok.save_pretrained(out_dir)
    # Neutral: only the special ids, no sampling knobs, so callers' settings are the ones used
    # (transformers v5 lets unset generate() arguments inherit from this file).
    GenerationConfig(bos_token_id=model.config.bos_token_id, eos_token_id=model.config.eos_token_id,
                     pad_token_id=model.config.pad_token_id).save_pretrained(out_dir)


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Return ``cfg`` as a JSON-friendly dict."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
