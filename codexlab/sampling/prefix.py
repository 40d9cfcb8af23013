"""Shared-prefix attention: the n samples of a prompt read its KV once per step, not n times.

What it is for: the CPU/MPS decode loop. At a decode step the attention of every row reads
the keys and values of its prompt plus its own completion. With n = 200 samples per prompt,
the prompt's KV (100-500 tokens on HumanEval, often more than the completion) would be read
200 times per layer per step; on a CPU that memory traffic is the largest single cost of a
small model's step. Here each prompt's KV is kept once, and its rows' queries are stacked
into one matrix product against it (a "cascade"/bifurcated attention); the completion part
is per row as usual; both parts share one softmax.

How it plugs in: it is registered with transformers' ``AttentionInterface`` under
:data:`NAME`; the engine sets ``config._attn_implementation`` to it for each decode step
(never for a prefill, which keeps the model's own implementation) and passes the prompts' KV
as the ``codexlab_prefix`` keyword, which the model's layers must forward to the attention
function. Not every architecture does: some decoder layers drop unknown keywords (StableLM),
some attention modules never call the attention interface (Falcon, Bloom), some add a bias
the prefix path cannot see (ALiBi). So the path is *checked*, not assumed:

* every call records its layer in :attr:`PrefixKV.seen`, a call without the keyword raises
  :class:`PrefixNotPassed`, and the engine checks after every decode step that each layer
  of the model took the prefix;
* before a run uses the path, the engine compares a few decode steps on it with a plain
  forward pass of the same tokens (:meth:`~codexlab.sampling.engine.SamplingEngine.run`),
  and raises (path forced on) or falls back to the per-row cache (path on by default) when
  they differ.

:data:`SUPPORTED_MODEL_TYPES` lists the architectures on which it is on by default: each is
verified by ``tests/test_sampling_architectures.py``. Attention logit soft-capping (Gemma-2)
is applied as the eager implementation does; a sliding window is allowed only where it
covers every key (the engine picks the path only then). What it is not for: CUDA graphs (the
per-prompt loop depends on the batch's composition; the static CUDA path keeps prompts in the
per-row cache), attention sinks, ALiBi or any other additive attention bias.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

NAME = "codexlab_shared_prefix"
#: Architectures on which shared-prefix attention is on by default: each is verified exact
#: on a tiny random model by ``tests/test_sampling_architectures.py``. Not here, because
#: their layers do not pass the prefix to the attention function: bloom, falcon, stablelm.
SUPPORTED_MODEL_TYPES = frozenset({
    "codegen", "gemma", "gemma2", "gpt2", "gpt_bigcode", "gpt_neox", "gptj", "llama",
    "mistral", "mixtral", "olmo", "opt", "phi", "phi3", "qwen2", "qwen3", "starcoder2",
})


class PrefixNotPassed(RuntimeError):
    """A one-token decode step reached the shared-prefix attention without the prompts' KV."""

_registered = False


def register() -> bool:
    """Register the attention (and its mask builder) with transformers; False if impossible."""
    global _registered
    if _registered:
        return True
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(NAME, shared_prefix_attention)
        AttentionMaskInterface.register(NAME, sdpa_mask)
    except Exception:  # noqa: BLE001 - an older/newer transformers: fall back to SDPA
        return False
    _registered = True
    return True


@dataclass
class PrefixKV:
    """The prompts of a batch: per layer one ``(keys, values)`` per prompt, and its rows.

    Attributes:
        kv: ``kv[g][layer] = (K, V)`` with shapes ``(kv_heads, L_g, head_dim)``.
        row_group: Prompt index of each batch row (rows of one prompt are contiguous).
        ranges: ``(group, first_row, end_row)`` for every prompt that still has rows.
    """

    kv: list[list[tuple[torch.Tensor, torch.Tensor]]]
    row_group: np.ndarray
    ranges: list[tuple[int, int, int]] = field(default_factory=list)
    #: Layers that took the prefix since the engine last cleared it (one decode step).
    seen: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._update_ranges()

    def _update_ranges(self) -> None:
        rg = self.row_group
        out = []
        if rg.size:
            starts = np.flatnonzero(np.r_[True, rg[1:] != rg[:-1]])
            ends = np.r_[starts[1:], rg.size]
            out = [(int(rg[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
        self.ranges = out

    def select(self, keep: np.ndarray) -> None:
        """Keep only the given batch rows (sorted), as the cache does."""
        self.row_group = self.row_group[keep]
        self._update_ranges()


def shared_prefix_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention over (shared prompt KV) + (per-row completion KV) for one-token queries.

    Args:
        module: The attention module (its ``layer_idx`` selects the prompt KV layer).
        query: ``(rows, heads, 1, head_dim)``.
        key: ``(rows, kv_heads, t, head_dim)``: the completion so far (current token included).
        value: Same shape as ``key``.
        attention_mask: Ignored (completion KV has no padding and a one-token query sees all
            of it; the engine checks the path against a plain forward pass, which catches a
            model that hides a bias in the mask).
        dropout: Must be 0 (inference).
        scaling: Score scale (default ``head_dim ** -0.5``).
        **kwargs: ``codexlab_prefix`` (:class:`PrefixKV`, required); ``softcap`` (applied),
            ``sliding_window`` (must cover every key), ``s_aux`` (refused); others ignored.

    Returns:
        ``(output, None)`` with output ``(rows, 1, heads, head_dim)`` as transformers expects.

    Raises:
        PrefixNotPassed: No ``codexlab_prefix`` (the layer dropped it), a query longer than
            one token, attention sinks, or a window that would cut keys.
    """
    prefix: PrefixKV | None = kwargs.pop("codexlab_prefix", None)
    if prefix is None:
        # Only the engine's decode steps select this implementation; a call without the
        # prompts' KV would attend to the completion alone.
        raise PrefixNotPassed(
            f"{type(module).__name__} called the shared-prefix attention without the prompt "
            "KV (its decoder layer does not pass attention keywords on)")
    if query.shape[2] != 1:
        raise PrefixNotPassed(f"shared-prefix attention got a {query.shape[2]}-token query; "
                              "it serves one-token decode steps only")
    if kwargs.get("s_aux") is not None:
        raise PrefixNotPassed("attention sinks are not supported by shared-prefix attention")
    softcap = kwargs.get("softcap")
    rows, heads, _, dim = query.shape
    kv_heads, t = key.shape[1], key.shape[2]
    groups = heads // kv_heads
    scale = float(scaling) if scaling is not None else dim ** -0.5
    layer = int(module.layer_idx)
    prefix.seen.add(layer)
    window = kwargs.get("sliding_window")
    out = torch.empty((rows, heads, dim), dtype=query.dtype, device=query.device)
    for g, r0, r1 in prefix.ranges:
        kp, vp = prefix.kv[g][layer]
        n, length = r1 - r0, kp.shape[1]
        if window is not None and length + t > int(window):
            raise PrefixNotPassed(f"a sliding window of {window} does not cover the "
                                  f"{length + t} keys of a decode step")
        q = query[r0:r1, :, 0, :].reshape(n, kv_heads, groups, dim)
        # Prompt part: one (n*groups x dim) @ (dim x L) product per kv head reads the
        # prompt's keys once for all n rows.
        qh = q.permute(1, 0, 2, 3).reshape(kv_heads, n * groups, dim)
        s_p = torch.bmm(qh, kp.transpose(1, 2))                          # (kvh, n*G, L)
        s_c = torch.matmul(q, key[r0:r1].transpose(-1, -2))              # (n, kvh, G, t)
        s_c = s_c.permute(1, 0, 2, 3).reshape(kv_heads, n * groups, t)
        scores = torch.cat([s_p, s_c], dim=-1).float() * scale
        if softcap is not None:
            # As the eager implementation of soft-capped models (Gemma-2) does.
            scores = torch.tanh(scores / softcap) * softcap
        p = torch.softmax(scores, dim=-1)
        p = p.to(query.dtype)
        o = torch.bmm(p[..., :length], vp)                                # (kvh, n*G, D)
        pc = p[..., length:].reshape(kv_heads, n, groups, t).permute(1, 0, 2, 3)
        oc = torch.matmul(pc, value[r0:r1])                               # (n, kvh, G, D)
        o = o.reshape(kv_heads, n, groups, dim).permute(1, 0, 2, 3) + oc
        out[r0:r1] = o.reshape(n, heads, dim)
    return out.unsqueeze(1), None
