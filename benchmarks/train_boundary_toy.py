"""Train a tiny GPT-2 with the codex-mini v1 tokenizer on Python source, for boundary stats.

What it is for: a second architecture, besides the built-in codex-mini family (Llama), on
which to measure what token healing does at the prompt boundary
(``benchmarks/boundary_stats.py``; ``benchmarks/results/boundary_gpt2-toy.txt``). No
pretrained weights can be downloaded here, so it trains one: GPT-2 architecture (transformers'
``GPT2Config``: 4 layers, width 128 by default), the v1 codex-mini tokenizer
(``data/tokenizer/codex-mini-v1.json``, which merges ``"\\n"`` with the indentation
after it, the tokenizer that has the boundary problem), on the Python standard library's
top-level modules (present on every machine). It saves a Hugging Face model folder that
``codexlab sample --model FOLDER`` loads. What it is not for: a useful code model (a few
minutes on one CPU thread), or the built-in family (``codexlab train``).

Usage::

    python benchmarks/train_boundary_toy.py --out /tmp/gpt2-toy --minutes 10 --threads 1

Deterministic for a given machine, seed and step count; the step count depends on the time
budget (``--steps`` fixes it instead).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    """Train and save the model; print one JSON line with what was done."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="model folder to write")
    ap.add_argument("--tokenizer", type=Path, default=ROOT / "data/tokenizer/codex-mini-v1.json",
                    help="a tokenizers JSON file or a folder with a tokenizer (default: the "
                         "codex-mini v1 tokenizer, kept after the v1 models were retired)")
    ap.add_argument("--arch", choices=("gpt2", "gpt_neox"), default="gpt2")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=256, help="training sequence length")
    ap.add_argument("--batch", type=int, default=16, help="sequences per step")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--data-bytes", type=int, default=4_000_000,
                    help="bytes of standard-library source to train on")
    ap.add_argument("--minutes", type=float, default=10.0, help="training time budget")
    ap.add_argument("--steps", type=int, default=None, help="fixed step count (no time budget)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from transformers import (
        AutoTokenizer,
        GPT2Config,
        GPT2LMHeadModel,
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
        PreTrainedTokenizerFast,
    )

    from codexlab.sampling.toy import stdlib_texts

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.tokenizer.is_file():
        # A bare tokenizers JSON: the codex-mini tokenizers' one special token ends a text.
        tok = PreTrainedTokenizerFast(tokenizer_file=str(args.tokenizer),
                                      eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                      pad_token="<|endoftext|>")
    else:
        tok = AutoTokenizer.from_pretrained(args.tokenizer)
    eos = tok.eos_token_id
    texts = stdlib_texts(args.data_bytes)
    ids: list[int] = []
    for text in texts:
        ids.extend(tok(text)["input_ids"])
        ids.append(eos)
    data = torch.tensor(ids, dtype=torch.long)
    n_positions = 1024  # HumanEval prompts + 64 new tokens fit
    if args.arch == "gpt2":
        cfg = GPT2Config(vocab_size=len(tok), n_embd=args.width, n_layer=args.layers,
                         n_head=args.heads, n_positions=n_positions, bos_token_id=eos,
                         eos_token_id=eos, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        model = GPT2LMHeadModel(cfg)
    else:
        cfg = GPTNeoXConfig(vocab_size=len(tok), hidden_size=args.width,
                            num_hidden_layers=args.layers, num_attention_heads=args.heads,
                            intermediate_size=4 * args.width, max_position_embeddings=n_positions,
                            bos_token_id=eos, eos_token_id=eos, tie_word_embeddings=True)
        model = GPTNeoXForCausalLM(cfg)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95),
                            weight_decay=0.1)
    rng = np.random.default_rng(args.seed)
    budget = args.minutes * 60.0
    warmup = 20
    t0 = time.perf_counter()
    step, losses = 0, []
    while True:
        elapsed = time.perf_counter() - t0
        progress = step / args.steps if args.steps else elapsed / budget
        if progress >= 1.0:
            break
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (
            1 + math.cos(math.pi * min(progress, 1.0))))
        for group in opt.param_groups:
            group["lr"] = lr
        starts = rng.integers(0, len(data) - args.context, size=args.batch)
        batch = torch.stack([data[s:s + args.context] for s in starts])
        out = model(input_ids=batch, labels=batch)      # the model shifts the labels
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(out.loss.item())
        step += 1
        if step % 25 == 0:
            print(f"step {step}  loss {np.mean(losses[-25:]):.3f}  lr {lr:.2e}  "
                  f"{elapsed:.0f}s", flush=True)
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tok.save_pretrained(args.out)
    summary = {"out": str(args.out), "arch": args.arch, "params": sum(
        p.numel() for p in model.parameters()), "train_tokens": len(ids),
        "steps": step, "tokens_seen": step * args.batch * args.context,
        "final_loss": round(float(np.mean(losses[-25:])), 3) if losses else None,
        "seconds": round(time.perf_counter() - t0, 1), "threads": args.threads}
    (args.out / "training.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
