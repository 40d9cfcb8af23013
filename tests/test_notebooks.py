"""Every notebook runs in quick mode (papermill) against a synthetic store and writes its figures.

A synthetic store (codexlab.synthetic) stands in for the built-in models so the test needs no
weights and takes seconds per notebook; the tour's sandbox demo runs real code, so consent is
given here, as the CI does for the execution tests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from codexlab.commands.figures import NOTEBOOKS
from codexlab.paths import NOTEBOOKS_DIR
from codexlab.synthetic import make_synthetic_run

pm = pytest.importorskip("papermill")

#: Figure kind → file stems that must exist after the notebooks ran.
KINDS = {
    "estimator": ["fig13_estimator"],
    "scaling": ["fig06_scaling"],
    "loss": ["fig04_loss"],
    "temperature": ["fig05_temperature"],
    "ranking": ["fig07_ranking"],
    "bleu": ["fig08_bleu", "fig08_bleu_scatter"],
}


def _params(cfg) -> dict:
    return {"MODELS": list(cfg.models), "TEMPERATURES": list(cfg.temperatures),
            "STORE": cfg.store, "OUT": cfg.out, "TASKS": cfg.tasks}


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("nb")
    cfg = make_synthetic_run(root, tasks=":24", n=10)
    mp = pytest.MonkeyPatch()
    mp.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    mp.setenv("CODEXLAB_RESULTS_DIR", str(root / "results"))
    try:
        for name in NOTEBOOKS:
            pm.execute_notebook(str(NOTEBOOKS_DIR / f"{name}.ipynb"), str(root / f"{name}.ipynb"),
                                parameters=_params(cfg), kernel_name="python3",
                                cwd=str(NOTEBOOKS_DIR), progress_bar=False,
                                execution_timeout=300,
                                extra_arguments=["--IPKernelApp.log_level=ERROR"])
    finally:
        mp.undo()
    return cfg, Path(cfg.out)


def _record(out: Path, name: str) -> dict:
    return json.loads((out / "records" / f"{name}.json").read_text())


@pytest.mark.slow
def test_every_figure_kind_is_written(executed) -> None:
    _, out = executed
    for kind, stems in KINDS.items():
        for stem in stems:
            assert kind in stem
            for ext in ("png", "pdf", "csv"):
                f = out / f"{stem}.{ext}"
                assert f.exists() and f.stat().st_size > 0, f


@pytest.mark.slow
def test_recorded_values(executed) -> None:
    cfg, out = executed
    tour = _record(out, "00_tour")
    assert tour["sets"] == len(cfg.grid()) and tour["rows"] == len(cfg.grid()) * 24 * 10
    est = _record(out, "01_passk_estimator")
    assert est["unbiased_at_n_eq_k"] == pytest.approx(est["true"], abs=1e-6)
    assert est["naive_at_n_eq_k"] < est["true"]
    scaling = _record(out, "02_scaling")
    assert scaling["metrics"] == ["pass@1", "pass@10"]
    assert scaling["fit_alpha"] > 0
    temps = _record(out, "03_temperature")
    assert temps["temperatures"] == [0.2, 0.5, 0.8] and temps["k_max"] == 10
    rank = _record(out, "04_ranking")
    assert rank["random_at_kmax"] <= rank["oracle_at_kmax"]
    assert rank["mean_logprob_at_kmax"] <= rank["oracle_at_kmax"] + 1e-9
    bleu = _record(out, "05_bleu")
    assert len(bleu["tasks"]) == 4 and bleu["samples"] == 240
    assert _record(out, "06_explorer")["samples"] == len(cfg.grid()) * 24 * 10


@pytest.mark.slow
def test_tour_ran_the_sandbox(executed, tmp_path) -> None:
    cfg, _ = executed
    nb = nbformat.read(Path(cfg.store).parent / "00_tour.ipynb", as_version=4)
    text = "".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", ""))
                   for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    for status in ("passed", "failed", "timeout"):
        assert status in text


@pytest.mark.slow
def test_figures_command_replots_from_the_store(executed, tmp_path, capsys, results_dir) -> None:
    from codexlab.cli import main

    cfg, _ = executed
    out = tmp_path / "figs"
    rc = main(["figures", "--models", ",".join(cfg.models), "--store", cfg.store, "--tasks",
               cfg.tasks, "--temperatures", ",".join(map(str, cfg.temperatures)),
               "--out", str(out), "--notebooks", "03_temperature", "--no-run"])
    assert rc == 0
    assert (out / "fig05_temperature.png").exists()
    assert (results_dir / "notebooks" / "quick" / "03_temperature.ipynb").exists()
    assert re.search(r"03_temperature\s+[\d.]+ s\s+ok", capsys.readouterr().out)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_are_thin_and_saved_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert re.search(r'^MODE: str = "quick"', tagged[0].source, re.M)  # Run All is quick
    for c in code:
        assert not re.search(r"^\s*(def|class|lambda)\b", c.source, re.M), c.source
    assert any(c.cell_type == "markdown" and "Record" in c.source for c in nb.cells)
