"""APPS-format problems: loading, public examples, prompt, sandboxed judging, Table 2 metrics.

The fixture ``tests/fixtures/apps_small.jsonl`` (written for this project) has two
standard-input problems and two call-based ones; the programs below are right, wrong, slow
(an endless loop on one test: a timeout) and correct on the public examples only. The
expected pass@k values are computed by hand with fractions in the comments and asserted to
1e-12 (pass_at_k works in floating point).
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction as F
from pathlib import Path

import pytest

from codexlab.apps import (
    APPS_TEMPERATURE,
    AppsFormatError,
    apps_pass_at_k,
    apps_pass_at_k_by_difficulty,
    apps_prompt,
    evaluate_apps,
    is_apps_file,
    load_apps,
    stdio_example_inputs,
)
from codexlab.execution import Pool
from codexlab.execution.judge import call_arguments, call_result_matches, stdout_matches

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "apps_small.jsonl"
#: Generous for programs that take ~20 ms on a loaded 2-core machine; short enough that
#: the three deliberate timeouts cost little.
TIMEOUT = 2.0

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the sandbox needs Linux")


@pytest.fixture(autouse=True)
def consent(monkeypatch):
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")


@pytest.fixture(scope="module")
def problems():
    return load_apps(FIXTURE)


@pytest.fixture(scope="module")
def pool():
    if not sys.platform.startswith("linux"):
        pytest.skip("the sandbox needs Linux")
    p = Pool(2)
    yield p
    p.close()


# Programs per problem: (name, program, expected per-test letters).
SUM = "n = int(input())\nprint(sum(map(int, input().split())))\n"
P1001 = [
    ("right", SUM, "PPPPP"),
    ("wrong", "n = int(input())\nprint(sum(map(int, input().split())) + 1)\n", "FFFFF"),
    ("slow", "n = int(input())\nif n == 4:\n    while True:\n        pass\n"
             "print(sum(map(int, input().split())))\n", "PPPTP"),
    # Knows the two examples of the question (tests 0 and 2), nothing else.
    ("examples_only", "import sys\ndata = sys.stdin.read().split()\n"
                      "print({'3': 6, '2': 0}.get(data[0], 0))\n", "PFPFF"),
]
P1002 = [
    # Six decimals, trailing spaces and a blank line: accepted by the tolerant comparison.
    ("right", "n = int(input())\na = list(map(int, input().split()))\n"
              "print(f'{sum(a) / n:.6f}   ')\nprint()\n", "PPPP"),
    ("slow_on_public", "n = int(input())\na = list(map(int, input().split()))\n"
                       "while n == 2:\n    pass\nprint(sum(a) / n)\n", "TPPP"),
    # Integer division: "2" for 2.5 fails; "1" for "1.0" passes (numbers compared).
    ("int_division", "n = int(input())\nprint(sum(map(int, input().split())) // n)\n", "FPPF"),
    ("error", "raise ValueError('no')\n", "EEEE"),
]
TWO_SUM = ("class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
           "        seen = {}\n        for i, x in enumerate(nums):\n"
           "            if target - x in seen:\n                return [seen[target - x], i]\n"
           "            seen[x] = i\n")
P1003 = [
    ("right", TWO_SUM, "PPPP"),
    ("right_tuple", TWO_SUM.replace("return [seen[target - x], i]", "return (seen[target - x], i)"),
     "PPPP"),
    ("wrong", "class Solution:\n    def twoSum(self, nums, target):\n        return [0, 1]\n",
     "PPFF"),
    ("examples_only", "class Solution:\n    def twoSum(self, nums, target):\n"
                      "        if nums == [2, 7, 11, 15]:\n            return [0, 1]\n"
                      "        if nums == [3, 2, 4]:\n            return [1, 2]\n"
                      "        return []\n", "FPFP"),
    ("slow", TWO_SUM.replace("        seen = {}\n",
                             "        while target == 14:\n            pass\n        seen = {}\n"),
     "PPTP"),
]
P1004 = [
    ("wrong_type", "def add_digits(n):\n    return str(sum(int(d) for d in str(n)))\n", "FFFF"),
    ("error", "def add_digits(n):\n    return n // 0\n", "EEEE"),
]
PROGRAMS = {"APPS/1001": P1001, "APPS/1002": P1002, "APPS/1003": P1003,
            "APPS/cw-1004": P1004}


def _samples():
    return [{"task_id": tid, "completion": prog, "name": name, "want": want}
            for tid, progs in PROGRAMS.items() for name, prog, want in progs]


@pytest.fixture(scope="module")
def evaluated(problems, pool):
    samples = _samples()
    report: dict = {}
    # Module-scoped, so set up before the per-test consent fixture: consent given here.
    results = evaluate_apps(problems, samples, timeout=TIMEOUT, pool=pool, progress=False,
                            report=report, allow_code_exec=True)
    return samples, results, report


# ------------------------------------------------------------------ loading


def test_constants_and_detection(tmp_path):
    assert APPS_TEMPERATURE == 0.6
    assert is_apps_file(FIXTURE)
    he = tmp_path / "he.jsonl"
    he.write_text(json.dumps({"task_id": "x", "prompt": "", "entry_point": "f", "test": ""}) + "\n")
    assert not is_apps_file(he)
    assert not is_apps_file(tmp_path / "missing.jsonl")


def test_load_fields_kinds_and_public_rule(problems):
    assert list(problems) == ["APPS/1001", "APPS/1002", "APPS/1003", "APPS/cw-1004"]
    p1, p2, p3, p4 = problems.values()
    assert (p1.kind, p1.fn_name, p1.n_tests, p1.difficulty) == ("stdio", None, 5, "introductory")
    assert p1.inputs[0] == "3\n1 2 3\n" and p1.outputs[3] == "100\n"
    # The question's two examples are tests 0 and 2 (not the first 3).
    assert (p1.public, p1.public_source) == ((0, 2), "question")
    # No example in the question: the first 3 test cases.
    assert (p2.public, p2.public_source) == ((0, 1, 2), "first_3")
    # LeetCode "Input: nums = [...], target = 9" lines matched to tests 1 and 3.
    assert (p3.kind, p3.fn_name, p3.public, p3.public_source) == ("call", "twoSum", (1, 3),
                                                                   "question")
    assert p3.inputs[1] == [[2, 7, 11, 15], 9] and p3.outputs[1] == [[0, 1]]
    # A literal call add_digits(123) in the text; a text problem_id.
    assert (p4.task_id, p4.problem_id, p4.public) == ("APPS/cw-1004", "cw-1004", (1,))
    assert len(p1.solutions) == 1
    assert p3.to_problem().prompt == p3.prompt and p3.to_problem().entry_point == "twoSum"
    assert load_apps(FIXTURE, question_examples=False)["APPS/1001"].public == (0, 1, 2)


def test_example_parsing_layouts():
    atcoder = ("Print N.\n\n-----Sample Input-----\n3\n\n-----Sample Output-----\n3\n\n"
               "-----Sample Input 2-----\n5 6\n-----Sample Output 2-----\n11\n")
    assert stdio_example_inputs(atcoder) == ["3\n", "5 6"]
    codechef = ("-----Input:-----\n- First line: T\n-----Output:-----\nthe answer\n"
                "-----Sample Input:-----\n1\n4\n-----Sample Output:-----\n2\n")
    # The format description ("Input:") is not an example; the sample is.
    assert stdio_example_inputs(codechef) == ["1\n4"]
    assert stdio_example_inputs("no examples here") == []


def test_prompt_is_one_shot(problems):
    p1, _, p3, _ = problems.values()
    # The solved demonstration, then the question with its first public example and APPS's
    # format line, closed so that the model writes the whole program.
    assert p1.prompt.startswith('"""\nYou are given n integers. Print the sum of those that are even.')
    assert "print(sum(x for x in a if x % 2 == 0))" in p1.prompt
    assert p1.prompt.endswith('Example:\nInput:\n3\n1 2 3\nOutput:\n6\n\nUse Standard Input format\n"""\n')
    assert p1.prompt.count('"""') == 4
    assert "def count_vowels(word):" in p3.prompt
    assert "class Solution:\n    def twoSum(" in p3.prompt
    assert p3.prompt.endswith(">>> Solution().twoSum([2, 7, 11, 15], 9)\n[0, 1]\n\n"
                              'Use Call-Based format\n"""\n')
    bare = apps_prompt(p1, demo=False)
    assert bare.startswith('"""\nYou are given n integers. Print their sum.') and bare in p1.prompt
    # An example too long for a prompt (first-3 test cases can be huge) is left out.
    from dataclasses import replace

    huge = replace(p1, inputs=("1\n" + "9 " * 600 + "\n",) + p1.inputs[1:], public=(0,))
    assert "Example:" not in apps_prompt(huge, demo=False)


def _write_rows(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


GOOD_ROW = {"problem_id": 1, "question": "q",
            "input_output": json.dumps({"inputs": ["1\n"], "outputs": ["1\n"]})}


@pytest.mark.parametrize("bad, field", [
    ({"question": "q", "input_output": GOOD_ROW["input_output"]}, "problem_id"),
    ({**GOOD_ROW, "question": 3}, "question"),
    ({**GOOD_ROW, "input_output": "{not json"}, "input_output"),
    ({**GOOD_ROW, "input_output": ""}, "input_output"),
    ({**GOOD_ROW, "input_output": json.dumps({"inputs": ["1"], "outputs": []})}, "input_output"),
    ({**GOOD_ROW, "input_output": json.dumps({"inputs": "1", "outputs": ["1"]})},
     "input_output.inputs"),
    ({**GOOD_ROW, "input_output": json.dumps({"inputs": [1], "outputs": ["1"]})},
     "input_output.inputs[0]"),
    ({**GOOD_ROW, "input_output": json.dumps({"fn_name": "f x", "inputs": [[1]], "outputs": [1]})},
     "input_output.fn_name"),
    ({**GOOD_ROW, "input_output": json.dumps({"fn_name": "f", "inputs": [1], "outputs": [1]})},
     "input_output.inputs[0]"),
    ({**GOOD_ROW, "solutions": json.dumps({"a": 1})}, "solutions"),
    ({**GOOD_ROW, "solutions": "[unterminated"}, "solutions"),
    ({**GOOD_ROW, "difficulty": 2}, "difficulty"),
])
def test_malformed_rows_name_file_line_and_field(tmp_path, bad, field):
    path = _write_rows(tmp_path / "apps.jsonl", [{**GOOD_ROW, "problem_id": 0}, "", bad])
    with pytest.raises(AppsFormatError) as info:
        load_apps(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:3: "), msg
    assert repr(field) in msg or f"'{field}'" in msg, msg


def test_duplicate_ids_and_other_file_errors(tmp_path):
    path = _write_rows(tmp_path / "dup.jsonl", [GOOD_ROW, GOOD_ROW])
    with pytest.raises(AppsFormatError, match=r"dup.jsonl:2: field 'problem_id': duplicate 1 "
                                              r"\(first on line 1\)"):
        load_apps(path)
    with pytest.raises(AppsFormatError, match="not valid JSON"):
        load_apps(_write_rows(tmp_path / "broken.jsonl", ["{oops"]))
    with pytest.raises(AppsFormatError, match="no problems"):
        load_apps(_write_rows(tmp_path / "empty.jsonl", [""]))
    with pytest.raises(FileNotFoundError):
        load_apps(tmp_path / "nope.jsonl")
    untested = _write_rows(tmp_path / "train.jsonl", [{**GOOD_ROW, "input_output": ""},
                                                      {**GOOD_ROW, "problem_id": 2}])
    assert list(load_apps(untested, skip_without_tests=True)) == ["APPS/2"]


# ------------------------------------------------------------------ comparison rules


def test_stdout_rules():
    assert stdout_matches("6", "6\n")
    assert stdout_matches("  1 2 \n\n3\n\n", "1 2\n3")  # per-line strip, blank lines ignored
    assert stdout_matches("1  2\n", "1 2\n")  # whitespace between tokens
    assert stdout_matches("2.500000\n", "2.5\n")  # numbers with a fraction: allclose
    assert stdout_matches("0.3333333\n", "0.333333333\n")
    assert stdout_matches("1\n", "1.0\n")
    assert not stdout_matches("0.34\n", "0.333333\n")
    assert not stdout_matches("1000001\n", "1000000\n")  # integers are exact
    assert not stdout_matches("1 2\n", "1\n2\n") and not stdout_matches("2 1", "1 2")
    assert not stdout_matches("YES", "Yes") and not stdout_matches("", "0")
    assert not stdout_matches("nan", "1.0") and not stdout_matches("inf", "1e999")


def test_call_rules():
    assert call_result_matches([0, 1], [[0, 1]])  # codeparrot wraps the expected value
    assert call_result_matches((0, 1), [[0, 1]])  # tuples are JSON lists
    assert call_result_matches([(1, 2)], [[[1, 2]]])
    assert call_result_matches({1: "a"}, [{"1": "a"}])  # JSON keys are text
    assert call_result_matches(3, [3.0]) and call_result_matches(True, [True])
    assert not call_result_matches("6", [6]) and not call_result_matches(None, [[]])
    assert not call_result_matches(1, [1, 2])  # only a one-element list is unwrapped
    assert call_arguments([{"1": 2, "-3": 4}, "x"]) == [{1: 2, -3: 4}, "x"]
    assert call_arguments([{"a": 1}]) == [{"a": 1}]


# ------------------------------------------------------------------ execution


@linux_only
def test_per_test_outcomes(evaluated):
    samples, results, report = evaluated
    got = {(s["task_id"], s["name"]): r.tests for s, r in zip(samples, results, strict=True)}
    want = {(s["task_id"], s["name"]): s["want"] for s in samples}
    assert got == want
    assert report["tests_run"] == sum(len(s["want"]) for s in samples)
    by = {(s["task_id"], s["name"]): r for s, r in zip(samples, results, strict=True)}
    right = by["APPS/1001", "right"]
    assert (right.status, right.passed, right.result, right.mode) == ("passed", True, "passed",
                                                                       "stdio")
    slow = by["APPS/1001", "slow"]
    assert (slow.status, slow.passed, slow.passed_incl_timeouts) == ("timeout", False, True)
    assert (slow.tests_passed, slow.tests_timed_out, slow.tests_failed, slow.tests_total) == (
        4, 1, 0, 5)
    assert slow.result == "timed out on 1 of 5 tests; every other test passed"
    ex = by["APPS/1001", "examples_only"]
    assert (ex.public_passed, ex.passed, ex.status) == (True, False, "failed")
    assert ex.result.startswith("failed: test 2 of 5: failed: wrong answer: line 1: expected '5'")
    err = by["APPS/1002", "error"]
    assert (err.status, err.error_type) == ("error", "ValueError")
    assert by["APPS/1003", "right"].mode == "proxy"
    assert by["APPS/cw-1004", "error"].error_type == "ZeroDivisionError"
    assert "forkserver" in right.isolation
    rec = right.record()
    assert rec["tests"] == "PPPPP" and rec["tests_total"] == 5 and rec["public_passed"] is True


@linux_only
def test_reference_solutions_pass(problems, pool):
    samples = [{"task_id": p.task_id, "completion": p.solutions[0]} for p in problems.values()]
    results = evaluate_apps(problems, samples, timeout=TIMEOUT, pool=pool, progress=False)
    assert [r.status for r in results] == ["passed"] * 4, [r.result for r in results]


@linux_only
def test_table2_metrics_hand_computed(evaluated):
    samples, results, _ = evaluated
    rows = [(s["task_id"], r) for s, r in zip(samples, results, strict=True)]

    def c(n, k):  # binomial coefficient as a Fraction-friendly int
        from math import comb
        return comb(n, k)

    def pk(n, cc, k):  # 1 - C(n-c, k) / C(n, k), exactly
        return 1 - F(c(n - cc, k), c(n, k))

    # Per problem (n samples, c correct; n' survivors of the public filter, c' correct):
    # 1001: n=4 c=1 | c_t=2 | n'=3 (right, slow, examples_only) c'=1 | n'_t=3 c'_t=2
    # 1002: n=4 c=1 | c_t=2 | n'=1 (right) c'=1               | n'_t=2 c'_t=2
    # 1003: n=5 c=2 | c_t=3 | n'=4 (all but wrong) c'=2       | n'_t=4 c'_t=3
    # 1004: n=2 c=0 | c_t=0 | n'=0: no survivor, counts 0      | n'_t=0
    raw = {1: [pk(4, 1, 1), pk(4, 1, 1), pk(5, 2, 1), F(0)],
           2: [pk(4, 1, 2), pk(4, 1, 2), pk(5, 2, 2), F(0)]}
    filt = {1: [pk(3, 1, 1), pk(1, 1, 1), pk(4, 2, 1), F(0)],
            2: [pk(3, 1, 2), pk(1, 1, 1), pk(4, 2, 2), F(0)]}  # 1 survivor: all submitted
    raw_t = {1: [pk(4, 2, 1), pk(4, 2, 1), pk(5, 3, 1), F(0)],
             2: [pk(4, 2, 2), pk(4, 2, 2), pk(5, 3, 2), F(0)]}
    filt_t = {1: [pk(3, 2, 1), pk(2, 2, 1), pk(4, 3, 1), F(0)],
              2: [pk(3, 2, 2), pk(2, 2, 2), pk(4, 3, 2), F(0)]}
    expected = {}
    for k in (1, 2):
        expected[f"pass@{k}"] = sum(raw[k]) / 4
        expected[f"filtered_pass@{k}"] = sum(filt[k]) / 4
        expected[f"pass@{k}_incl_timeouts"] = sum(raw_t[k]) / 4
        expected[f"filtered_pass@{k}_incl_timeouts"] = sum(filt_t[k]) / 4
    # The same numbers written out: 9/40, 17/40, 11/24, 5/8, 2/5, 77/120, 29/48, 3/4.
    assert [expected[x] for x in ("pass@1", "pass@2", "filtered_pass@1", "filtered_pass@2",
                                  "pass@1_incl_timeouts", "pass@2_incl_timeouts",
                                  "filtered_pass@1_incl_timeouts",
                                  "filtered_pass@2_incl_timeouts")] == [
        F(9, 40), F(17, 40), F(11, 24), F(5, 8), F(2, 5), F(77, 120), F(29, 48), F(3, 4)]
    got = apps_pass_at_k(rows, [1, 2])
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(float(value), abs=1e-12), key
    # From results-file rows (plain dicts) too.
    dict_rows = [(t, {**r.record(), "passed": r.passed}) for t, r in rows]
    assert apps_pass_at_k(dict_rows, [1, 2]) == got
    with pytest.raises(ValueError, match="pass@3"):
        apps_pass_at_k(rows, [3])  # APPS/cw-1004 has only 2 samples


@linux_only
def test_by_difficulty(problems, evaluated):
    samples, results, _ = evaluated
    rows = [(s["task_id"], r) for s, r in zip(samples, results, strict=True)]
    table = apps_pass_at_k_by_difficulty(problems, rows, [1])
    assert set(table) == {"introductory", "interview", "competition", "all"}
    # introductory = 1001 and cw-1004: raw pass@1 (1/4 + 0) / 2.
    assert table["introductory"]["pass@1"] == pytest.approx(1 / 8, abs=1e-12)
    assert table["competition"]["filtered_pass@1"] == pytest.approx(1 / 2, abs=1e-12)


@linux_only
def test_syntax_errors_run_nothing(problems, pool):
    report: dict = {}
    (r,) = evaluate_apps(problems, [{"task_id": "APPS/1001", "completion": "print(\n"}],
                         pool=pool, progress=False, report=report)
    assert (r.status, r.tests, r.isolation) == ("syntax_error", "SSSSS", "parent-compile")
    assert report["tests_run"] == 0 and not r.public_passed and not r.passed_incl_timeouts


@linux_only
def test_unknown_task_and_consent(problems, monkeypatch):
    from codexlab.execution import CodeExecutionNotAllowed

    with pytest.raises(KeyError, match="APPS/9"):
        evaluate_apps(problems, [{"task_id": "APPS/9", "completion": ""}], progress=False)
    monkeypatch.delenv("CODEXLAB_ALLOW_CODE_EXEC")
    with pytest.raises(CodeExecutionNotAllowed):
        evaluate_apps(problems, [{"task_id": "APPS/1001", "completion": SUM}], progress=False)


IDIOMS = [
    # (program, passes?) on APPS/1001's first test: input "3\n1 2 3\n", expected "6".
    ("import sys\nd = sys.stdin.read().split()\nprint(sum(map(int, d[1:])))\n", True),
    ("import sys\nd = sys.stdin.buffer.read().split()\nprint(sum(map(int, d[1:])))\n", True),
    ("input = __import__('sys').stdin.readline\nn = int(input())\n"
     "print(sum(map(int, input().split())))\n", True),
    ("print(sum(map(int, open(0).read().split()[1:])))\n", True),
    # Fast input sized with fstat: fd 0 is a regular file, as on online judges.
    ("import os\nd = os.read(0, os.fstat(0).st_size).split()\nprint(sum(map(int, d[1:])))\n",
     True),
    ("def main():\n    input()\n    print(6)\n\nif __name__ == '__main__':\n    main()\n", True),
    # main() in a thread (for a bigger stack): the interpreter waits for it, so do we.
    ("import threading\nthreading.stack_size(1 << 26)\ndef main():\n    print(6)\n"
     "threading.Thread(target=main).start()\n", True),
    ("import sys\nsys.stdout.write('6')\n", True),  # no final newline
    ("print(6)\nsys.exit(0)\n", True),  # sys from APPS_HEADER
    ("print(6)\nexit()\n", True),
    ("import atexit\natexit.register(lambda: print(6))\n", True),
    ("print(6)\nsys.exit(1)\n", False),  # a non-zero status is a runtime error
    ("print(6)\nsys.exit('bye')\n", False),
    ("print(int(sqrt(36)))\n", True),  # from APPS_HEADER's `from math import sqrt`
]


@linux_only
def test_stdin_idioms(problems, pool):
    from dataclasses import replace

    p = problems["APPS/1001"]
    one = {p.task_id: replace(p, inputs=p.inputs[:1], outputs=p.outputs[:1], public=(0,))}
    samples = [{"task_id": p.task_id, "completion": prog} for prog, _ in IDIOMS]
    results = evaluate_apps(one, samples, timeout=TIMEOUT, pool=pool, progress=False)
    assert [r.passed for r in results] == [ok for _, ok in IDIOMS], [r.result for r in results]
    assert results[-3].error_type == "ProcessExit"
    # header="" runs the program exactly as written: no implicit imports.
    (plain,) = evaluate_apps(one, samples[-1:], timeout=TIMEOUT, pool=pool, progress=False,
                             header="")
    assert (plain.status, plain.error_type) == ("error", "NameError")


# ------------------------------------------------------------------ hostile programs

HOSTILE = [
    # (name, program, statuses it may end with)
    ("stdout_flood", "import sys\nwhile True:\n    sys.stdout.write('6\\n' * 4096)\n",
     {"output_limit"}),
    ("fork_bomb", "import os\nwhile True:\n    os.fork()\n", {"error"}),
    ("read_shadow", "print(open('/etc/shadow').read())\n", {"error"}),
    ("read_problem_file", f"print(open({str(FIXTURE)!r}).read())\n", {"error"}),
    ("read_environ", "print(open('/proc/1/environ').read())\n", {"error"}),
    ("write_outside", "open('/tmp/codexlab_apps_pwned', 'w').write('x')\nprint(6)\n", {"error"}),
    ("network", "import socket\nsocket.create_connection(('127.0.0.1', 22))\nprint(6)\n",
     {"error"}),
    ("exec_shell", "import os\nos.system('echo 6')\n", {"failed"}),
    # Forged "it finished" messages on the checker channel, then a wrong answer.
    ("forge_channel", "import os, struct\nfor m in (b'[\"exc\",\"x\",\"y\"]', b'[\"done\",\"\"]', "
                      "b'[\"ret\",true]'):\n    os.write(3, struct.pack('>I', len(m)) + m)\n"
                      "print(5)\n", {"failed"}),
    # A forged "the sandbox failed" frame comes after the child's "ready": not believed.
    ("forge_setup_error", "import os, struct\nm = b'[\"setup_error\",\"x\"]'\n"
                          "os.write(3, struct.pack('>I', len(m)) + m)\nos._exit(70)\n",
     {"error"}),
    ("garbage_channel", "import os\nos.write(3, b'\\xff' * 100000)\nprint(5)\n", {"failed"}),
    ("answer_on_stderr", "import sys\nsys.stderr.write('6\\n')\n", {"failed"}),
    ("exit_zero_early", "import os\nos._exit(0)\n", {"failed"}),
    ("sleep_ignoring_signals", "import signal, time\nfor s in (signal.SIGTERM, signal.SIGINT):\n"
                               "    signal.signal(s, signal.SIG_IGN)\ntime.sleep(60)\n",
     {"timeout"}),
    ("memory_bomb", "x = [0] * (10 ** 10)\n", {"memory"}),
]


@linux_only
def test_hostile_stdio_programs_are_contained(problems, pool):
    import os

    marker = "/tmp/codexlab_apps_pwned"
    assert not os.path.exists(marker)
    # One test case (the first of APPS/1001, expected "6") per hostile program.
    one = {"APPS/1001": problems["APPS/1001"]}
    from dataclasses import replace

    one["APPS/1001"] = replace(one["APPS/1001"], inputs=one["APPS/1001"].inputs[:1],
                               outputs=one["APPS/1001"].outputs[:1], public=(0,))
    samples = [{"task_id": "APPS/1001", "completion": prog} for _, prog, _ in HOSTILE]
    samples.append({"task_id": "APPS/1001", "completion": SUM})  # still judged right after
    results = evaluate_apps(one, samples, timeout=1.5, pool=pool, progress=False,
                            output_limit_mb=1, dedup=False)
    for (name, _, allowed), r in zip(HOSTILE, results, strict=False):
        assert not r.passed and r.status in allowed, (name, r.status, r.result)
    assert results[-1].passed, results[-1]
    assert not os.path.exists(marker)


# ------------------------------------------------------------------ CLI


@linux_only
def test_cli_evaluate_apps_file(tmp_path, capsys):
    from codexlab.cli import main

    samples = tmp_path / "samples.jsonl"
    rows = [{"task_id": "APPS/1001", "completion": SUM, "extra": 1},
            {"task_id": "APPS/1001", "completion": P1001[3][1], "extra": 2},
            {"task_id": "APPS/cw-1004", "completion": P1004[0][1]},
            {"task_id": "APPS/cw-1004", "completion": "def add_digits(n):\n    return 0\n"}]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc = main(["evaluate", str(samples), "--problems", str(FIXTURE), "--k", "1,2",
               "--no-progress", "--workers", "2", "--timeout", str(TIMEOUT)])
    assert rc == 0
    out, err = capsys.readouterr()
    last = json.loads(out.strip().splitlines()[-1])
    # 1001: 1 of 2 correct, both pass the public examples; cw-1004: none correct.
    assert last == pytest.approx({"pass@1": 0.25, "pass@2": 0.5, "filtered_pass@1": 0.25,
                                  "filtered_pass@2": 0.5, "pass@1_incl_timeouts": 0.25,
                                  "pass@2_incl_timeouts": 0.5,
                                  "filtered_pass@1_incl_timeouts": 0.25,
                                  "filtered_pass@2_incl_timeouts": 0.5}, abs=1e-12)
    assert "introductory" in err
    res = [json.loads(x) for x in (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert [r.get("extra") for r in res] == [1, 2, None, None]
    assert [r["tests"] for r in res] == ["PPPPP", "PFPFF", "FFFF", "FFFF"]
    assert res[0]["passed"] is True and res[1]["public_passed"] is True
    assert {"status", "result", "duration_s", "mode", "tests_passed", "tests_timed_out",
            "tests_failed", "tests_total", "passed_incl_timeouts"} <= set(res[0])
