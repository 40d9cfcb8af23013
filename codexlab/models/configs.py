"""Architecture presets of the built-in "codex-mini" family.

What it is for: the named sizes (width, depth, learning rate, default CPU time budget) and the
Llama-style ``transformers`` config built from them (RoPE, RMSNorm, SwiGLU, head_dim 64 so
serving engines such as vLLM accept the models; tied input/output embeddings to keep small
models small). What it is not for: training or parameter bookkeeping of trained models (the
model card holds the measured counts).
"""

from __future__ import annotations

from dataclasses import dataclass

HEAD_DIM = 64
FAMILY = "codex-mini"


@dataclass(frozen=True)
class ModelSize:
    """One size of the family.

    Attributes:
        name: Short name, ``codex-mini-<non-embedding params>``.
        d_model: Hidden width (a multiple of :data:`HEAD_DIM`).
        n_layers: Number of transformer blocks.
        lr: Peak learning rate (AdamW scale; Muon matches its update RMS to AdamW's, so the
            same number serves both; smaller models tolerate larger steps).
        cpu_minutes: Default wall-clock budget for the CPU family run; larger models get more
            time so that they also end at lower loss (the run is compute-, not data-limited).
        gpu_share: Share of the GPU script's training time given to this size (see
            ``scripts/gpu_train.sh``); larger models get more.
    """

    name: str
    d_model: int
    n_layers: int
    lr: float
    cpu_minutes: float
    gpu_share: float = 0.2

    @property
    def n_heads(self) -> int:
        """Attention heads (head_dim fixed at 64)."""
        return self.d_model // HEAD_DIM

    @property
    def d_ff(self) -> int:
        """SwiGLU hidden width: 8/3 d rounded to a multiple of 32 (Llama's rule, scaled)."""
        return max(32, round(8 * self.d_model / 3 / 32) * 32)

    def non_embedding_params(self) -> int:
        """Parameters outside the (tied) embedding: attention, MLP and norms."""
        d, f = self.d_model, self.d_ff
        per_layer = 4 * d * d + 3 * d * f + 2 * d
        return self.n_layers * per_layer + d

    def total_params(self, vocab_size: int) -> int:
        """All parameters for a tokenizer of ``vocab_size`` tokens (the embedding is tied)."""
        return self.non_embedding_params() + vocab_size * self.d_model


#: The family version these presets train (v1: four sizes 0.1m-3m, tokenizer v1; v2: these
#: five sizes, tokenizer v2, corpus v2 and a function-level stage).
FAMILY_VERSION = 2

#: What every shipped weights file in ``data/models`` may take together, in bytes (issue 10:
#: "all shipped weights <= 120 MB in git together"; each file must also stay < 100 MB).
WEIGHTS_BUDGET_BYTES = 120_000_000

#: Small to large. Non-embedding span 0.19M -> 22.1M (117x); bf16 weights of all five with
#: their (tied) embeddings 106.8 MB with tokenizer v2 (8,192 tokens), which leaves room in
#: :data:`WEIGHTS_BUDGET_BYTES` for Codex-S copies of the two smallest sizes and one Codex-D
#: model (the largest is 7 layers, not 8, for that: 8 layers, 25.3M, left room for one
#: Codex-S copy of 0.2m only). Names carry the rounded non-embedding parameter count, the
#: quantity of the Codex/Kaplan loss fits.
SIZES: dict[str, ModelSize] = {
    s.name: s
    for s in (
        ModelSize("codex-mini-0.2m", d_model=64, n_layers=4, lr=3e-3, cpu_minutes=10,
                  gpu_share=0.08),
        ModelSize("codex-mini-1.2m", d_model=128, n_layers=6, lr=2.5e-3, cpu_minutes=20,
                  gpu_share=0.12),
        ModelSize("codex-mini-4.7m", d_model=256, n_layers=6, lr=2e-3, cpu_minutes=45,
                  gpu_share=0.18),
        ModelSize("codex-mini-14m", d_model=384, n_layers=8, lr=1.5e-3, cpu_minutes=120,
                  gpu_share=0.27),
        ModelSize("codex-mini-22m", d_model=512, n_layers=7, lr=1.2e-3, cpu_minutes=180,
                  gpu_share=0.35),
    )
}

#: The first family's presets (tokenizer v1, retired 2026-12-07), kept so its cards in git
#: history and the v1 measurements quoted in the docs stay explained.
SIZES_V1: dict[str, ModelSize] = {
    s.name: s
    for s in (
        ModelSize("codex-mini-0.1m", d_model=64, n_layers=2, lr=3e-3, cpu_minutes=8),
        ModelSize("codex-mini-0.4m", d_model=128, n_layers=2, lr=2.5e-3, cpu_minutes=14),
        ModelSize("codex-mini-1.3m", d_model=192, n_layers=3, lr=2e-3, cpu_minutes=24),
        ModelSize("codex-mini-3m", d_model=256, n_layers=4, lr=1.5e-3, cpu_minutes=40),
    )
}


def get_size(name: str) -> ModelSize:
    """Return the preset called ``name`` (v2, or a v1 size to continue an old model).

    Raises:
        ValueError: for an unknown name; the message lists the known sizes.
    """
    if name in SIZES:
        return SIZES[name]
    if name in SIZES_V1:
        return SIZES_V1[name]
    raise ValueError(f"unknown size {name!r}; known sizes: {', '.join(SIZES)}")


def toy_size(name: str = "codex-mini-toy") -> ModelSize:
    """Return a tiny preset (d_model 64, 1 layer) for tests and toy runs of the scripts."""
    return ModelSize(name, d_model=64, n_layers=1, lr=3e-3, cpu_minutes=0.1, gpu_share=0.1)


def flops_per_token(size: ModelSize, vocab_size: int, seq_len: int) -> float:
    """Training FLOPs per token: 6 (N_non-embedding + V d) + 6 L T d (attention scores).

    The usual estimate (Kaplan et al. 2020, Table 1; PaLM appendix B for the attention term):
    forward + backward = 3x the forward's 2 FLOPs per multiply-add; the tied output layer
    counts as a matmul of V x d.
    """
    d = size.d_model
    return 6.0 * (size.non_embedding_params() + vocab_size * d) + 6.0 * size.n_layers * seq_len * d


def llama_config(size: ModelSize, vocab_size: int, eos_token_id: int, max_positions: int = 2048):
    """Return the ``LlamaConfig`` of ``size`` for a tokenizer of ``vocab_size`` tokens."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=size.d_model,
        intermediate_size=size.d_ff,
        num_hidden_layers=size.n_layers,
        num_attention_heads=size.n_heads,
        num_key_value_heads=size.n_heads,
        head_dim=HEAD_DIM,
        hidden_act="silu",
        max_position_embeddings=max_positions,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
        attention_bias=False,
        mlp_bias=False,
    )
