"""Export a Llama-layout model (the built-in codex-mini family) to a GGUF file for llama.cpp.

What it is for: serving a built-in model with llama.cpp's OpenAI-compatible server
(``python -m llama_cpp.server``, from ``llama-cpp-python[server]``), so that the ``openai``
sampling backend can be run and tested against a real server on a CPU
(:mod:`codexlab.sampling.backends`). Weights are written as float32 (exact copies of the
bf16/fp32 checkpoint), the tokenizer as llama.cpp's ``gpt2`` byte-level BPE with the GPT-2
pre-tokenizer, which is the codex-mini v1 tokenizer's own.

The codex-mini v2 tokenizer splits newline runs off before the GPT-2 regex (so a newline never
merges with the indentation after it). llama.cpp has no built-in pre-tokenizer that does
exactly that, so such a model is exported only on request (``hf_tokenizer=True``): its vocab
and merges are written as they are, and whoever serves the file must tokenize prompts with
the model's own Hugging Face tokenizer, which :func:`codexlab.serving.llama_cpp_server` does
(llama-cpp-python's ``--hf_pretrained_model_name_or_path``). The file records this under
``codexlab.prompt_tokenizer``.

What it is not for: quantisation, other architectures, or tokenizers whose pre-tokenizer
neither llama.cpp nor the route above reproduces (they are refused, because a server that
splits prompts differently samples from different token sequences).

Why our own few lines instead of llama.cpp's ``convert_hf_to_gguf.py``: that script ships
only in the llama.cpp source tree (no package installs it), and it refuses a BPE tokenizer
whose hash it does not know, which every self-trained tokenizer is. The tensor layout follows
it: GGUF's Llama applies rotary embeddings to interleaved pairs, Hugging Face's to the two
halves of each head, so the rows of ``q_proj`` and ``k_proj`` are permuted here (the
converter's ``LlamaModel.permute``). The file itself is written by ``gguf``, the format's
reference writer maintained by the llama.cpp authors (``pip install gguf``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: GGUF tensor names of one Llama block, by the Hugging Face parameter they hold.
_BLOCK = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


class GGUFExportError(ValueError):
    """The model cannot be exported faithfully; the message says why."""


def _permute_rope(w: Any, n_head: int) -> Any:
    """Reorder each head's rows from halves (HF rotate_half) to interleaved pairs (GGML)."""
    rows = w.shape[0]
    return (w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def _is_gpt2_byte_level(pre: dict[str, Any]) -> bool:
    """Whether a pre-tokenizer entry is byte-level with the GPT-2 regex and no prefix space."""
    return (pre.get("type") == "ByteLevel" and bool(pre.get("use_regex", True))
            and not pre.get("add_prefix_space"))


def pretokenizer_kind(model_dir: str | Path) -> str:
    """Classify the pre-tokenizer of a folder's ``tokenizer.json`` for export.

    Returns:
        ``"gpt2"`` (llama.cpp reproduces it: codex-mini v1), ``"newline-split"`` (newline
        runs split off, then GPT-2: codex-mini v2; served with the Hugging Face tokenizer)
        or ``"other"`` (not exportable).
    """
    return _pretokenizer_kind(
        json.loads((Path(model_dir) / "tokenizer.json").read_text(encoding="utf-8")))


def _pretokenizer_kind(tok: dict[str, Any]) -> str:
    """:func:`pretokenizer_kind` of a parsed ``tokenizer.json``."""
    if (tok.get("model") or {}).get("type") != "BPE" or tok.get("normalizer"):
        return "other"
    pre = tok.get("pre_tokenizer") or {}
    if _is_gpt2_byte_level(pre):
        return "gpt2"
    steps = pre.get("pretokenizers") or []
    if (pre.get("type") == "Sequence" and len(steps) == 2 and steps[0].get("type") == "Split"
            and (steps[0].get("pattern") or {}).get("Regex") == "\\n+"
            and steps[0].get("behavior") == "Isolated" and not steps[0].get("invert")
            and _is_gpt2_byte_level(steps[1])):
        return "newline-split"
    return "other"


def _tokenizer_fields(model_dir: Path, hf_tokenizer: bool = False
                      ) -> tuple[list[str], list[int], list[str], dict[str, int], str]:
    """Return (tokens, types, merges, special ids, pre-tokenizer kind) of a BPE tokenizer.

    The kind is :func:`pretokenizer_kind`'s, from the same parse of ``tokenizer.json``.
    """
    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    model = tok.get("model") or {}
    pre = tok.get("pre_tokenizer") or {}
    kind = _pretokenizer_kind(tok)
    if kind == "newline-split" and not hf_tokenizer:
        raise GGUFExportError(
            f"{model_dir}: its tokenizer splits newline runs off before the GPT-2 regex, which "
            "llama.cpp has no built-in pre-tokenizer for; export it with hf_tokenizer=True and "
            "serve it with the model's own tokenizer (codexlab serve does both)")
    if kind == "other":
        raise GGUFExportError(
            f"{model_dir}: only a byte-level BPE tokenizer with the GPT-2 pre-tokenizer (or "
            "codex-mini v2's newline split before it) can be exported (found model "
            f"{model.get('type')!r}, pre-tokenizer {pre.get('type')!r}"
            f"{', a normalizer' if tok.get('normalizer') else ''}); llama.cpp would split "
            "prompts differently from the Hugging Face tokenizer")
    vocab: dict[str, int] = dict(model["vocab"])
    for added in tok.get("added_tokens", []):
        vocab[added["content"]] = int(added["id"])
    size = max(vocab.values()) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [5] * size  # gguf.TokenType.UNUSED for holes in the id range
    special = {int(a["id"]) for a in tok.get("added_tokens", []) if a.get("special")}
    for text, i in vocab.items():
        tokens[i] = text
        types[i] = 3 if i in special else 1  # CONTROL / NORMAL
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    cfg = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8")) if (
        model_dir / "tokenizer_config.json").is_file() else {}
    ids = {}
    for field in ("bos_token", "eos_token", "pad_token"):
        name = cfg.get(field)
        if isinstance(name, dict):
            name = name.get("content")
        if name in vocab:
            ids[field] = vocab[name]
    return tokens, types, merges, ids, kind


def export_gguf(model_dir: str | Path, out_path: str | Path, *,
                hf_tokenizer: bool = False) -> Path:
    """Write a Llama-layout Hugging Face checkpoint as a float32 GGUF file.

    Args:
        model_dir: Folder with ``config.json`` (``LlamaForCausalLM``), ``model.safetensors``
            and a byte-level BPE ``tokenizer.json`` (a built-in name is resolved first).
        out_path: The ``.gguf`` file to write (its folder is created).
        hf_tokenizer: Also export a tokenizer that llama.cpp cannot split prompts for
            (:func:`pretokenizer_kind` ``"newline-split"``, codex-mini v2); the server must
            then tokenize with the model's Hugging Face tokenizer (the file says so under
            ``codexlab.prompt_tokenizer``).

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.

    Raises:
        GGUFExportError: not a Llama model, tied/untied layout or tokenizer not supported.
        ImportError: the ``gguf`` package is missing (``pip install 'codexlab[serve]'``).
    """
    try:
        import gguf
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("exporting GGUF needs the gguf package: pip install "
                          "'codexlab[serve]' (or pip install gguf)") from exc
    import numpy as np
    from safetensors.numpy import load_file

    from codexlab.models import resolve_model

    src = Path(resolve_model(str(model_dir))).expanduser()
    cfg = json.loads((src / "config.json").read_text(encoding="utf-8"))
    if cfg.get("model_type") != "llama":
        raise GGUFExportError(f"{src}: model_type {cfg.get('model_type')!r} is not 'llama'")
    rope = cfg.get("rope_parameters") or {}
    if (rope.get("rope_type") or "default") != "default" or cfg.get("rope_scaling"):
        raise GGUFExportError(f"{src}: only unscaled rotary embeddings are supported")
    weights_file = src / "model.safetensors"
    if not weights_file.is_file():
        raise GGUFExportError(f"{src}: no model.safetensors (sharded checkpoints are not "
                              "supported)")
    try:
        tensors = load_file(str(weights_file))
    except TypeError:
        # numpy has no bfloat16: read through torch and widen to float32 there.
        from safetensors.torch import load_file as load_torch

        tensors = {k: v.float().numpy() for k, v in load_torch(str(weights_file)).items()}
    n_head = int(cfg["num_attention_heads"])
    n_kv = int(cfg.get("num_key_value_heads") or n_head)
    hidden = int(cfg["hidden_size"])
    head_dim = int(cfg.get("head_dim") or hidden // n_head)
    tokens, types, merges, special, kind = _tokenizer_fields(src, hf_tokenizer)

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_name(src.name)
    w.add_context_length(int(cfg.get("max_position_embeddings", 2048)))
    w.add_embedding_length(hidden)
    w.add_block_count(int(cfg["num_hidden_layers"]))
    w.add_feed_forward_length(int(cfg["intermediate_size"]))
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0))))
    w.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    w.add_vocab_size(len(tokens))
    w.add_file_type(0)  # all float32
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    # Who must split prompts: llama.cpp itself ("llama.cpp") or the caller, with the model's
    # Hugging Face tokenizer ("hf"), because llama.cpp's "gpt-2" split differs from it.
    w.add_string("codexlab.prompt_tokenizer",
                 "hf" if kind == "newline-split" else "llama.cpp")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    if "bos_token" in special:
        w.add_bos_token_id(special["bos_token"])
    if "eos_token" in special:
        w.add_eos_token_id(special["eos_token"])
    if "pad_token" in special:
        w.add_pad_token_id(special["pad_token"])
    # The workbench never prepends BOS (prompts are encoded as the tokenizer does), so the
    # server must not either, or it samples from a different context.
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)

    def f32(name: str) -> Any:
        return np.ascontiguousarray(np.asarray(tensors[name], dtype=np.float32))

    w.add_tensor("token_embd.weight", f32("model.embed_tokens.weight"))
    w.add_tensor("output_norm.weight", f32("model.norm.weight"))
    if "lm_head.weight" in tensors and not cfg.get("tie_word_embeddings", False):
        w.add_tensor("output.weight", f32("lm_head.weight"))
    for i in range(int(cfg["num_hidden_layers"])):
        for hf_name, gg_name in _BLOCK.items():
            t = f32(f"model.layers.{i}.{hf_name}")
            if hf_name.startswith("self_attn.q_proj"):
                t = _permute_rope(t, n_head)
            elif hf_name.startswith("self_attn.k_proj"):
                t = _permute_rope(t, n_kv)
            w.add_tensor(f"blk.{i}.{gg_name}", np.ascontiguousarray(t))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


__all__ = ["GGUFExportError", "export_gguf", "pretokenizer_kind"]
