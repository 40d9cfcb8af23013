"""Tiny random models and tokenizers built in memory, for tests and benchmarks.

What it is for: exercising the sampling engine on several architectures (Llama, GPT-2,
Qwen2) without downloading anything: a byte-level BPE tokenizer trained in a second on the
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


def random_model(arch: str, vocab_size: int, *, hidden: int = 64, layers: int = 2,
                 heads: int = 4, kv_heads: int | None = None, intermediate: int | None = None,
                 max_positions: int = 2048, eos_token_id: int = 0, seed: int = 0,
                 logit_scale: float = 1.0) -> Any:
    """Build a randomly initialised causal LM of a given architecture.

    Args:
        arch: ``"llama"``, ``"gpt2"`` or ``"qwen2"``.
        vocab_size: Vocabulary size (the tokenizer's).
        hidden: Model width.
        layers: Decoder layers.
        heads: Attention heads.
        kv_heads: Key/value heads (grouped-query attention) for Llama/Qwen2.
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
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    torch.manual_seed(seed)
    kv = kv_heads or heads
    if arch == "llama":
        cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                          num_attention_heads=heads, num_key_value_heads=kv,
                          intermediate_size=intermediate or int(hidden * 8 / 3),
                          max_position_embeddings=max_positions, eos_token_id=eos_token_id,
                          bos_token_id=None, pad_token_id=None, tie_word_embeddings=False)
        model = LlamaForCausalLM(cfg)
    elif arch == "qwen2":
        cfg = Qwen2Config(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                          num_attention_heads=heads, num_key_value_heads=kv,
                          intermediate_size=intermediate or int(hidden * 8 / 3),
                          max_position_embeddings=max_positions, eos_token_id=eos_token_id,
                          bos_token_id=None, pad_token_id=None, tie_word_embeddings=False,
                          use_sliding_window=False)
        model = Qwen2ForCausalLM(cfg)
    elif arch == "gpt2":
        cfg = GPT2Config(vocab_size=vocab_size, n_embd=hidden, n_layer=layers, n_head=heads,
                         n_inner=intermediate, n_positions=max_positions,
                         eos_token_id=eos_token_id, bos_token_id=eos_token_id,
                         tie_word_embeddings=False)
        model = GPT2LMHeadModel(cfg)
    else:
        raise ValueError(f"unknown toy architecture {arch!r}; use llama, gpt2 or qwen2")
    if logit_scale != 1.0:
        with torch.no_grad():
            model.get_output_embeddings().weight.mul_(logit_scale)
    return model.eval()
