"""How often a sample changes with the batch it is drawn in, and why (near-ties only).

What it is for: the measurement behind the README's "Which samples are reproducible,
exactly". A sample's randomness is keyed by (seed, task, index), but its logits depend on
the batch's shape through floating-point rounding, so a draw that lies within that rounding
of choosing another token can go either way. This draws one sample set twice, as a fresh
``n`` (automatic batch size) and as ``n // 2 - 1`` samples in batches of 5 followed by the
remaining indices in batches of 7 (what growing ``n`` or resuming does), counts the samples
that differ, and for each prints the first differing step and its
:func:`~codexlab.sampling.sampler.draw_margin` under a plain forward pass. What it is not
for: speed (``bench_sampling.py``).

Usage (the committed result was measured on v1 codex-mini-3m, retired 2026-12-07; the
default ``--model`` is now the largest shipped model)::

    python benchmarks/batch_ties.py --model codex-mini-1.2m --n 10 --max-new-tokens 64 \\
        --threads 1 --out benchmarks/results/batch_ties_codex-mini-1.2m.txt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def first_difference(model, tok, cfg, a: dict, b: dict) -> tuple[int, float] | None:
    """Return (first differing step, its draw margin), or None when a and b are the same."""
    import torch

    from codexlab.sampling.healing import HealTable, vocab_bytes
    from codexlab.sampling.rng import batch_uniforms
    from codexlab.sampling.sampler import draw_margin

    i = next((j for j, (x, y) in enumerate(zip(a["token_ids"], b["token_ids"], strict=False))
              if x != y), None)
    if i is None:
        if len(a["token_ids"]) == len(b["token_ids"]):
            return None
        i = min(len(a["token_ids"]), len(b["token_ids"]))
    ids = torch.tensor([a["prompt_ids"] + a["token_ids"][:i]], device=model.device)
    with torch.no_grad():
        logits = model(ids).logits[0, -1].float().cpu()
    u = float(batch_uniforms(cfg.seed, [(a["task_id"], a["idx"])], cfg.max_new_tokens)[0, i])
    allowed = None
    heal = a["heal_text"].encode("utf-8")
    if heal:
        table = HealTable(vocab_bytes(tok), int(logits.shape[-1]))
        base = table.add(heal)
        done = int(sum(table.token_len[t] for t in a["token_ids"][:i]))
        if done < len(heal):
            allowed = table.tensor()[base + done]
    return i, draw_margin(logits, u, cfg.temperature, cfg.top_p, allowed=allowed)


def main(argv: list[str] | None = None) -> int:
    """Draw the set both ways and report the differences."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None,
                    help="default: the largest shipped built-in model")
    ap.add_argument("--tasks", default=None, help="subset, e.g. 0-39 (default: all)")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = ap.parse_args(argv)
    if args.model is None:
        from codexlab.models import builtin_model_names

        args.model = builtin_model_names()[-1]

    import torch

    from codexlab.problems import load_humaneval, select_tasks
    from codexlab.sampling import SamplingConfig, SamplingEngine, load_model
    from codexlab.sampling.runner import resolve_token_healing

    torch.set_num_threads(args.threads)
    model, tok = load_model(args.model, device="cpu")
    problems = select_tasks(load_humaneval(), args.tasks)
    cfg = resolve_token_healing(SamplingConfig(
        temperature=args.temperature, top_p=args.top_p, n=args.n,
        max_new_tokens=args.max_new_tokens), args.model)

    def draw(c, indices=None):
        eng = SamplingEngine(model, tok, c)
        rows = eng.run(problems, indices, progress=False, return_tokens=True)
        return {(r["task_id"], r["idx"]): r for r in rows}, eng

    t0 = time.perf_counter()
    fresh, eng = draw(cfg)
    first = max(1, args.n // 2 - 1)
    grown, _ = draw(cfg.replace(n=first, batch_size=5))
    rest, _ = draw(cfg.replace(batch_size=7), {t: range(first, args.n) for t in problems})
    grown.update(rest)
    diffs = []
    for key, r in sorted(fresh.items()):
        d = first_difference(model, tok, cfg, r, grown[key])
        if d is not None:
            diffs.append({"task_id": key[0], "idx": key[1], "step": d[0], "margin": d[1]})
    lines = [
        f"model {args.model}, {len(problems)} tasks, n {args.n}, T {cfg.temperature}, "
        f"top_p {cfg.top_p}, max_new_tokens {cfg.max_new_tokens}, token_healing "
        f"{cfg.token_healing}, torch threads {args.threads}",
        f"fresh: batch size {eng.batch_size} ({eng.mode}, shared_prefix {eng.shared_prefix}); "
        f"grown: n = {first} in batches of 5, then indices {first}-{args.n - 1} in batches of 7",
        f"{len(fresh)} samples, {len(diffs)} differ; largest draw margin at a first "
        f"difference: {max((d['margin'] for d in diffs), default=0.0):.2e} "
        f"({time.perf_counter() - t0:.0f} s)",
        *(json.dumps(d) for d in diffs),
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        header = ("# Produced by: python benchmarks/batch_ties.py "
                  + " ".join(sys.argv[1:] if argv is None else argv) + "\n")
        args.out.write_text(header + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
