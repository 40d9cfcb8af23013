"""Docstring text for Codex-D and back-translation: splits, reverse prompts, derived problems."""

from __future__ import annotations

import pytest

from codexlab.docstrings import (
    DOCSTRING_STOPS,
    DocstringError,
    docstring_problems,
    docstring_target,
    function_docstring_document,
    reverse_prompt,
    split_docstring,
)
from codexlab.problems import load_humaneval


def test_every_humaneval_prompt_splits_and_reassembles() -> None:
    problems = load_humaneval()
    quotes = set()
    for tid, p in problems.items():
        s = split_docstring(p.prompt, p.entry_point)
        assert s.head + s.indent + s.quote + s.docstring + s.closing + s.tail == p.prompt, tid
        assert s.tail == "\n" and s.indent == "    "
        assert s.head.rstrip().endswith(":") or tid == "HumanEval/115"
        quotes.add(s.quote)
    assert quotes == {'"""', "'''"}
    # HumanEval/115 puts `import math` before its description string: still found.
    s115 = split_docstring(problems["HumanEval/115"].prompt, "max_fill")
    assert "import math" in s115.head and "rectangular grid of wells" in s115.docstring


def test_reverse_prompt_and_target_for_a_humaneval_task() -> None:
    p = load_humaneval()["HumanEval/53"]
    s = split_docstring(p.prompt, p.entry_point)
    rp = reverse_prompt(s, "    return x + y")  # a missing newline is added
    assert rp.endswith("def add(x: int, y: int):\n    return x + y\n    \"\"\"")
    assert docstring_target(s).startswith("Add two numbers x and y")
    assert docstring_target(s).endswith('"""') and '"""' in DOCSTRING_STOPS


def test_docstring_problems_keep_the_truth_and_the_code_prompt() -> None:
    problems = load_humaneval()
    derived = docstring_problems(problems)
    assert len(derived) == 164
    d = derived["HumanEval/0"]
    assert d.prompt.endswith('    """') and problems["HumanEval/0"].canonical_solution in d.prompt
    assert d.canonical_solution == d.docstring + '"""' and d.code_prompt == problems[
        "HumanEval/0"].prompt
    assert d.test == "" and d["entry_point"] == "has_close_elements"
    # A prompt without a docstring is left out, not an error.
    bare = {"X/0": {"prompt": "def f(x):\n", "entry_point": "f", "canonical_solution": "  1\n"}}
    assert docstring_problems(bare) == {}


@pytest.mark.parametrize("src,match", [
    ("def f(:\n", "does not parse"),
    ("x = 1\n", "no top-level function"),
    ("def f(x):\n    return x\n", "no docstring"),
    ('def f(x): """doc"""\n', "def line"),
])
def test_split_errors_name_the_problem(src: str, match: str) -> None:
    with pytest.raises(DocstringError, match=match):
        split_docstring(src)


def test_function_document_for_training() -> None:
    ctx, tgt = function_docstring_document(
        "def f(x):\n    r'''Return x, raw-quoted: \\d.'''\n    y = x\n    return y\n")
    assert ctx == "def f(x):\n    y = x\n    return y\n    r'''"
    assert tgt == "Return x, raw-quoted: \\d.'''"
    # code on the docstring's line, or no body after it: not a training document
    assert function_docstring_document('def f(x):\n    """Doc string."""; return x\n') is None
    assert function_docstring_document('def f(x):\n    """Doc string here."""\n') is None
