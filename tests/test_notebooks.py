"""Every notebook runs in quick mode (papermill) against a synthetic store and writes its figures.

A synthetic store (codexlab.synthetic) stands in for the built-in models so the test needs no
weights and takes seconds per notebook; the tour's sandbox demo runs real code, so consent is
given here, as the CI does for the execution tests. A second run re-plots every figure from
the committed compact results with no run store, as in a fresh clone, and checks the values
the figures draw through the CSV behind each.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from codexlab.commands.figures import NOTEBOOKS
from codexlab.paths import NOTEBOOKS_DIR
from codexlab.synthetic import SYNTHETIC_S_MODELS, make_synthetic_run

pm = pytest.importorskip("papermill")

#: The Codex-S copies of the synthetic run: all but the largest size's.
S_PAIRS = {s: b for s, b in SYNTHETIC_S_MODELS.items() if b != "synth-3m"}

#: Figure kind → file stems that must exist after the notebooks ran.
KINDS = {
    "estimator": ["fig13_estimator"],
    "scaling": ["fig06_scaling"],
    "loss": ["fig04_loss"],
    "temperature": ["fig05_temperature"],
    "ranking": ["fig07_ranking"],
    "bleu": ["fig08_bleu", "fig08_bleu_scatter"],
    "codex_s": ["fig09_codex_s_temperature", "fig10_codex_s"],
    "chained": ["fig11_chained_ops"],
}


def _params(cfg) -> dict:
    return {"MODELS": list(cfg.models), "TEMPERATURES": list(cfg.temperatures),
            "STORE": cfg.store, "OUT": cfg.out, "TASKS": cfg.tasks}


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("nb")
    # The largest base (synth-3m) has no Codex-S copy here, as codex-mini-4.7m has none:
    # Fig 9 must compare synth-s-1.3m with synth-1.3m, not with the reference model.
    cfg = make_synthetic_run(root, tasks=":24", n=10, s_models=tuple(S_PAIRS))
    s_models = [str(root / "models" / m) for m in S_PAIRS]
    mp = pytest.MonkeyPatch()
    mp.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    mp.setenv("CODEXLAB_RESULTS_DIR", str(root / "results"))
    try:
        for name in NOTEBOOKS:
            params = _params(cfg)
            if name == "07_codex_s":
                params["S_MODELS"] = s_models
            if name in ("08_chained_ops", "09_codex_d"):
                params["SAMPLE"] = False  # the synthetic models have no weights to sample
            pm.execute_notebook(str(NOTEBOOKS_DIR / f"{name}.ipynb"), str(root / f"{name}.ipynb"),
                                parameters=params, kernel_name="python3",
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
    assert temps["paper_star_k"] == [1, 100]  # the paper's T* at its true k, not at k_max
    rank = _record(out, "04_ranking")
    assert rank["random_at_kmax"] <= rank["oracle_at_kmax"]
    assert rank["mean_logprob_at_kmax"] <= rank["oracle_at_kmax"] + 1e-9
    bleu = _record(out, "05_bleu")
    assert len(bleu["tasks"]) == 4 and bleu["samples"] == 240
    assert _record(out, "06_explorer")["samples"] == len(cfg.grid()) * 24 * 10
    codex_s = _record(out, "07_codex_s")
    assert codex_s["pairs"] == S_PAIRS
    assert codex_s["fig9"] == {"Codex": "synth-1.3m", "Codex-S": "synth-s-1.3m"}
    assert set(codex_s["best_t"]) == {"Codex", "Codex-S"}
    vals = codex_s["values"]
    # The synthetic Codex-S solves more at T = 0.2 than its base, at every size.
    for s, base in S_PAIRS.items():
        assert vals[f"{s} pass@1"] > vals[f"{base} pass@1"]


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


@pytest.mark.slow
def test_figures_no_run_replots_the_committed_results_without_a_store(results_dir, tmp_path,
                                                                     capsys) -> None:
    """A fresh clone: no run store, no consent; every figure re-plots from data/results/."""
    from codexlab import config, pipeline
    from codexlab.cli import main

    cfg = config.figure_config("quick")
    assert pipeline.has_compact_results(cfg.compact_results_dir()), cfg.compact_results_dir()
    out = tmp_path / "figs"
    rc = main(["figures", "--no-run", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "committed compact results" in text.splitlines()[-1]
    stores = sorted(p.name for p in results_dir.rglob("*.sqlite*"))
    assert not stores, f"a notebook left a run store behind: {stores}"
    for stems in KINDS.values():
        for stem in stems:
            for ext in ("png", "pdf", "csv"):
                assert (out / f"{stem}.{ext}").stat().st_size > 0, stem

    # Fig 5: the paper's T* at its true k (1 and 100), ours only up to k = n.
    best = pd.read_csv(out / "fig05_temperature_best.csv")
    paper = best[best["source"] != "ours"].set_index("k")["temperature"].to_dict()
    assert paper == {1: 0.2, 100: 0.8}
    assert best.loc[best["source"] == "ours", "k"].max() == cfg.k_max
    # Fig 1/6: plotted against non-embedding parameters, known for every model.
    scaling = pd.read_csv(out / "fig06_scaling.csv")
    assert scaling["params_non_embedding"].notna().all()
    assert (scaling["params_non_embedding"] < scaling["params_total"]).all()
    # Fig 6 and Fig 10 again at the model cards' protocol (data/results/cards/, all 164
    # tasks): the numbers the cards state.
    from codexlab.models import builtin_models
    from codexlab.models.card import read_model_card

    cards6 = pd.read_csv(out / "fig06_scaling_cards.csv")
    assert set(cards6["metric"]) == {"pass@1", "pass@100"} and (cards6["n_tasks"] == 164).all()
    got = cards6.set_index(["model", "metric"])["value"]
    for name, path in builtin_models().items():
        he = read_model_card(path)["humaneval"]
        assert (name, "pass@100") in got.index, f"{name} missing from fig06_scaling_cards"
        # (the CSV keeps 6 significant digits)
        assert got[(name, "pass@100")] == pytest.approx(he["pass@100"], rel=1e-5, abs=1e-9)
        assert got[(name, "pass@1")] == pytest.approx(he["pass@1"], rel=1e-5, abs=1e-9)
    cards10 = pd.read_csv(out / "fig10_codex_s_cards.csv")
    assert set(cards10["family"]) == {"Codex", "Codex-S"} and (cards10["n_tasks"] == 164).all()
    # Fig 7 and Fig 8 name the model and temperature they show.
    ranking = pd.read_csv(out / "fig07_ranking.csv")
    assert set(ranking["model"]) == {cfg.reference_label()}
    assert set(ranking["temperature"]) == {cfg.ranking_temperature}
    bleu = pd.read_csv(out / "fig08_bleu.csv")
    assert set(bleu["model"]) == {cfg.reference_label()}
    assert set(bleu["outcome"]) <= {"correct", "wrong"}
    assert bleu["bleu"].between(0, 100).all()
    # The executed explorer exports to HTML that renders offline: a static snapshot of the
    # samples, no widget renderer to fetch from a CDN.
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter().from_filename(
        str(results_dir / "notebooks" / "quick" / "06_explorer.ipynb"))
    assert "codexlab-sample" in html and "VBox(" not in html
    assert "@jupyter-widgets/html-manager" not in html


def _committed_text(path: Path) -> str | None:
    """The notebook as git would commit it (the index), or None outside a git checkout."""
    rel = path.relative_to(NOTEBOOKS_DIR.parent).as_posix()
    try:
        res = subprocess.run(["git", "show", f":{rel}"], cwd=NOTEBOOKS_DIR.parent,
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_are_committed_without_outputs(name: str) -> None:
    """What git commits carries no outputs, whatever JupyterLab saved in the working copy."""
    path = NOTEBOOKS_DIR / f"{name}.ipynb"
    text = _committed_text(path)
    where = "the git index (what a commit would take)"
    if text is None:  # not a git checkout (e.g. an unpacked sdist): the file itself
        text, where = path.read_text(), "the file"
    nb = nbformat.reads(text, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, (
        f"notebooks/{name}.ipynb has outputs in {where} (code cells {dirty}). Notebooks are "
        f"committed without outputs: run `make venv` (installs the nbstripout git filter), then "
        f"`git add notebooks/{name}.ipynb` again; or strip it once with "
        f"`.venv/bin/python -m nbstripout --keep-id --extra-keys metadata.language_info "
        f"notebooks/{name}.ipynb`.")


def _git(*args: str) -> str | None:
    try:
        res = subprocess.run(["git", *args], cwd=NOTEBOOKS_DIR.parent, capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def test_notebook_filter_strips_what_jupyterlab_saves(tmp_path) -> None:
    """The git filter that `make venv` installs turns a saved, executed notebook back into
    the committed one, byte for byte: `git diff` stays clean after Run All + save."""
    if _git("rev-parse", "--is-inside-work-tree") != "true":
        pytest.skip("not a git checkout: there is no filter to check")
    clean = _git("config", "filter.nbstripout.clean")
    attr = _git("check-attr", "filter", "--", "notebooks/00_tour.ipynb") or ""
    assert clean and attr.endswith("nbstripout"), (
        "the notebook git filter is not installed here: run `make venv` (it sets "
        "filter.nbstripout in .git/config; .gitattributes applies it to notebooks/*.ipynb)")
    path = NOTEBOOKS_DIR / "00_tour.ipynb"
    # The clean notebook: the working copy unless it was run and saved (then the index's).
    committed = path.read_text()
    if any(c.get("outputs") for c in nbformat.reads(committed, as_version=4).cells):
        committed = _committed_text(path) or committed
    nb = nbformat.reads(committed, as_version=4)
    # What JupyterLab adds on save: outputs, counts, widget state, full language_info.
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            c.execution_count = i
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7",
                                    "mimetype": "text/x-python", "file_extension": ".py"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    saved = nbformat.writes(nb)
    res = subprocess.run(shlex.split(clean), input=saved, capture_output=True, text=True,
                         timeout=60, cwd=NOTEBOOKS_DIR.parent)
    assert res.returncode == 0, res.stderr
    assert res.stdout == committed, "the filter does not restore the committed notebook"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_are_thin(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert re.search(r'^MODE: str = "quick"', tagged[0].source, re.M)  # Run All is quick
    assert re.search(r"^SAMPLE: bool = True", tagged[0].source, re.M)
    for c in code:
        assert not re.search(r"^\s*(def|class|lambda)\b", c.source, re.M), c.source
    assert any(c.cell_type == "markdown" and "Record" in c.source for c in nb.cells)
