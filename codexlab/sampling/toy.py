"""Tiny random models and tokenizers built in memory, for tests and benchmarks.

What it is for: exercising the sampling engine on the architectures of
:data:`TOY_ARCHITECTURES` (Llama, GPT-2, Qwen2, Mistral, Falcon, Bloom, ...) without
downloading anything: a byte-level BPE tokenizer trained in a second on the
HumanEval prompts (or any texts), and randomly initialised ``AutoModelForCausalLM``-loadable
models of a chosen size. What it is not for: research results; these models know nothing
(use the built-in family in :mod:`codexlab.models` for that).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

EOS = "<|endoftext|>"


def _corpus() -> list[str]:
    try:
        from codexlab.problems import load_humaneval

        probs = load_humaneval()
        return [p.prompt + p.canonical_solution for p in probs.values()]
    except Exception:  # noqa: BLE001 - fall back to a built-in snippet
        return ["def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n    return a + b\n" * 20]


def stdlib_texts(max_bytes: int = 4_000_000) -> list[str]:
    """Return Python standard-library sources (sorted by path) up to ``max_bytes``.

    A corpus that exists on every machine, big enough for an 8k-16k BPE vocabulary.
    """
    import os
    from pathlib import Path

    root = Path(os.__file__).resolve().parent
    out: list[str] = []
    total = 0
    for path in sorted(root.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        out.append(text)
        total += len(text)
        if total >= max_bytes:
            break
    return out


def bpe_tokenizer(vocab_size: int = 512, texts: Iterable[str] | None = None) -> Any:
    """Train a byte-level BPE on ``texts`` (HumanEval by default) and wrap it for transformers.

    Args:
        vocab_size: Target vocabulary (256 bytes + merges + the EOS token).
        texts: Training texts.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``eos_token`` set and no BOS.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(list(texts) if texts is not None else _corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS)


def char_tokenizer(chars: str, merges: list[tuple[str, str]] | None = None) -> Any:
    r"""Build a tokenizer over a few characters plus explicit merges (multi-character tokens).

    Useful to make stop sequences likely and split across tokens (``"\nd" + "ef"``).

    Args:
        chars: The alphabet (each character one token).
        merges: BPE merges applied in order, each adding the merged token.
    """
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {EOS: 0}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    for a, b in merges or []:
        vocab.setdefault(a + b, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=list(merges or [])))
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS)


#: Architectures :func:`random_model` builds (``config.model_type`` names).
TOY_ARCHITECTURES = (
    "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi", "phi3", "gpt2", "gpt_neox",
    "gpt_bigcode", "starcoder2", "codegen", "gptj", "falcon", "bloom", "opt", "olmo",
    "stablelm", "mixtral",
)


def _toy_config(arch: str, vocab_size: int, hidden: int, layers: int, heads: int, kv: int,
                inter: int, max_positions: int, eos_token_id: int) -> Any:
    """Return a transformers config of ``arch`` at the given size (see :func:`random_model`)."""
    import transformers as tf

    common = {"vocab_size": vocab_size, "eos_token_id": eos_token_id, "bos_token_id": None,
              "pad_token_id": None, "tie_word_embeddings": False}
    # The Llama-like decoders: hidden_size / num_* / intermediate_size / max_position_embeddings.
    llama_like = {**common, "hidden_size": hidden, "num_hidden_layers": layers,
                  "num_attention_heads": heads, "num_key_value_heads": kv,
                  "intermediate_size": inter, "max_position_embeddings": max_positions}
    # The GPT-2-like ones: n_embd / n_layer / n_head / n_positions.
    gpt_like = {**common, "n_embd": hidden, "n_layer": layers, "n_head": heads,
                "n_positions": max_positions}
    head_dim = hidden // heads
    if arch == "llama":
        return tf.LlamaConfig(**llama_like)
    if arch == "qwen2":
        return tf.Qwen2Config(**llama_like, use_sliding_window=False)
    if arch == "gpt2":
        return tf.GPT2Config(**{**gpt_like, "bos_token_id": eos_token_id}, n_inner=inter)
    if arch == "mistral":
        return tf.MistralConfig(**llama_like, head_dim=head_dim)   # sliding_window 4096
    if arch == "mixtral":
        return tf.MixtralConfig(**llama_like, head_dim=head_dim, num_local_experts=4,
                                num_experts_per_tok=2)
    if arch == "qwen3":
        return tf.Qwen3Config(**llama_like, head_dim=head_dim, use_sliding_window=False)
    if arch == "gemma":
        return tf.GemmaConfig(**llama_like, head_dim=head_dim)
    if arch == "gemma2":
        # Alternating sliding (window 4096) and full layers, soft-capped attention logits.
        return tf.Gemma2Config(**llama_like, head_dim=head_dim, query_pre_attn_scalar=head_dim)
    if arch == "phi":
        return tf.PhiConfig(**llama_like)                          # partial rotary (0.5)
    if arch == "phi3":
        return tf.Phi3Config(**llama_like)
    if arch == "olmo":
        return tf.OlmoConfig(**llama_like, clip_qkv=8.0)
    if arch == "stablelm":
        return tf.StableLmConfig(**llama_like)                     # partial rotary (0.25)
    if arch == "starcoder2":
        return tf.Starcoder2Config(**llama_like)
    if arch == "gpt_neox":
        return tf.GPTNeoXConfig(**{k: v for k, v in llama_like.items()
                                   if k != "num_key_value_heads"})
    if arch == "gpt_bigcode":
        return tf.GPTBigCodeConfig(**gpt_like, n_inner=inter, multi_query=True)
    if arch == "codegen":
        return tf.CodeGenConfig(**{k: v for k, v in gpt_like.items() if k != "pad_token_id"},
                                n_ctx=max_positions, n_inner=inter, rotary_dim=head_dim // 2)
    if arch == "gptj":
        return tf.GPTJConfig(**gpt_like, n_inner=inter, rotary_dim=head_dim // 2)
    if arch == "falcon":
        return tf.FalconConfig(**{k: v for k, v in llama_like.items()
                                  if k not in ("num_key_value_heads", "intermediate_size")},
                               ffn_hidden_size=inter)
    if arch == "bloom":
        return tf.BloomConfig(**common, hidden_size=hidden, n_layer=layers, n_head=heads)
    if arch == "opt":
        return tf.OPTConfig(**{k: v for k, v in llama_like.items()
                               if k not in ("num_key_value_heads", "intermediate_size")},
                            ffn_dim=inter, word_embed_proj_dim=hidden)
    raise ValueError(f"unknown toy architecture {arch!r}; use one of "
                     f"{', '.join(TOY_ARCHITECTURES)}")


def random_model(arch: str, vocab_size: int, *, hidden: int = 64, layers: int = 2,
                 heads: int = 4, kv_heads: int | None = None, intermediate: int | None = None,
                 max_positions: int = 2048, eos_token_id: int = 0, seed: int = 0,
                 logit_scale: float = 1.0) -> Any:
    """Build a randomly initialised causal LM of a given architecture.

    Args:
        arch: A ``config.model_type`` of :data:`TOY_ARCHITECTURES` (``"llama"``, ``"gpt2"``,
            ``"qwen2"``, ``"mistral"``, ``"falcon"``, ...). Each uses its config class's
            defaults for everything but the size (so Mistral keeps its 4096-token sliding
            window, Gemma-2 its soft-capping and alternating sliding layers, Phi and StableLM
            their partial rotary embeddings, GPT-BigCode multi-query attention, Bloom ALiBi).
        vocab_size: Vocabulary size (the tokenizer's).
        hidden: Model width.
        layers: Decoder layers.
        heads: Attention heads.
        kv_heads: Key/value heads (grouped-query attention) where the architecture has them.
        intermediate: MLP width (default 4x hidden for GPT-2, ~2.7x for the others).
        max_positions: Context length.
        eos_token_id: EOS id written into the config.
        seed: Torch seed for the initialisation.
        logit_scale: Multiply the output embedding by this (>1 makes the random next-token
            distributions peakier, closer to a trained model's).

    Returns:
        The model in eval mode, float32, on the CPU.
    """
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    kv = kv_heads or heads
    if intermediate is None and arch != "gpt2":
        intermediate = int(hidden * 8 / 3)
        if arch not in ("llama", "qwen2"):
            # Rounded to 16 (Mixtral's grouped expert matmul wants 16-byte strides); Llama and
            # Qwen2 keep the width their seeded test models have always had.
            intermediate = -(-intermediate // 16) * 16
    cfg = _toy_config(arch, vocab_size, hidden, layers, heads, kv, intermediate, max_positions,
                      eos_token_id)
    model = AutoModelForCausalLM.from_config(cfg)
    if logit_scale != 1.0:
        with torch.no_grad():
            model.get_output_embeddings().weight.mul_(logit_scale)
    return model.eval()
