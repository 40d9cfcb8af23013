"""codexlab.plotting: every plot function draws, save_figure writes deterministic files."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from codexlab import analysis, pipeline, plotting  # noqa: E402
from codexlab.synthetic import make_synthetic_run  # noqa: E402


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory):
    cfg = make_synthetic_run(tmp_path_factory.mktemp("synth"), tasks=":12", n=10)
    df = pipeline.load_results(cfg)
    models = pipeline.model_table(cfg)
    ref = cfg.reference_label()
    temps = analysis.temperature_table(df, ref, k_max=10, n_boot=50)
    bleu = analysis.bleu_samples_table(df, ref, 0.8)
    return {
        "scaling": analysis.scaling_table(df, models, n_boot=50),
        "loss": analysis.loss_table(models),
        "temps": temps,
        "best": analysis.best_temperature_table(temps),
        "ranking": analysis.ranking_table(df, ref, 0.8, 10, n_boot=50),
        "bleu": bleu,
        "bleu_tasks": analysis.bleu_task_table(df, ref, 0.8),
        "bias": analysis.estimator_bias_table(),
        "ours": analysis.estimator_data_table(df, ref, 0.8),
    }


def _figures(t: dict) -> dict:
    return {
        "fig06_scaling": (plotting.plot_scaling(t["scaling"]), t["scaling"]),
        "fig04_loss": (plotting.plot_loss(t["loss"]), t["loss"]),
        "fig05_temperature": (plotting.plot_temperature(t["temps"], t["best"])[0], t["temps"]),
        "fig07_ranking": (plotting.plot_ranking(t["ranking"]), t["ranking"]),
        "fig08_bleu": (plotting.plot_bleu(t["bleu"])[0], t["bleu"]),
        "fig08_bleu_scatter": (plotting.plot_bleu_scatter(t["bleu"], t["bleu_tasks"])[0],
                               t["bleu_tasks"]),
        "fig13_estimator": (plotting.plot_estimator(t["bias"], t["ours"])[0], t["bias"]),
    }


def test_every_figure_saves_png_pdf_csv_with_identical_bytes(tables, tmp_path) -> None:
    out1, out2 = tmp_path / "a", tmp_path / "b"
    for out in (out1, out2):
        for name, (ax, data) in _figures(tables).items():
            paths = plotting.save_figure(ax.figure, name, data=data, out_dir=out)
            assert set(paths) == {"png", "pdf", "csv"}
            plt.close(ax.figure)
    files = sorted(p.name for p in out1.iterdir())
    assert len(files) == 21
    for name in files:
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes(), name
    png = (out1 / "fig06_scaling.png").read_bytes()
    assert b"Software" not in png and b"matplotlib" not in png.lower()
    assert b"CreationDate" not in (out1 / "fig06_scaling.pdf").read_bytes()


def test_plot_functions_draw_into_given_axes(tables) -> None:
    fig, axs = plt.subplots(1, 3)
    assert plotting.plot_scaling(tables["scaling"], ax=axs[0]) is axs[0]
    assert plotting.plot_ranking(tables["ranking"], ax=axs[1]) is axs[1]
    assert plotting.plot_loss(tables["loss"], ax=axs[2]) is axs[2]
    assert len(axs[1].get_lines()) == 4  # one line per heuristic
    labels = [t.get_text() for t in axs[0].get_legend().get_texts()]
    assert any("Codex Table 1" in s for s in labels)  # the paper overlay
    assert any("pass@10 (T=0.8)" in s for s in labels)  # honest k label in quick mode
    plt.close(fig)


def test_temperature_figure_marks_paper_t_star(tables) -> None:
    top, bottom = plotting.plot_temperature(tables["temps"], tables["best"])
    texts = [t.get_text() for t in bottom.texts]
    assert any("k=1" in s for s in texts) and any("k=100" in s for s in texts)
    assert len(top.get_lines()) == tables["temps"]["temperature"].nunique()
    plt.close(top.figure)


def test_model_colors_are_fixed_and_distinct() -> None:
    a = plotting.model_colors(["m1", "m2", "m3"])
    assert a == plotting.model_colors(["m1", "m2", "m3"])
    assert len(set(a.values())) == 3


def test_record_writes_sorted_json_and_nulls_nan(tmp_path) -> None:
    path = plotting.record("nb", {"b": float("nan"), "a": 0.1234567891}, tmp_path)
    assert path == tmp_path / "records" / "nb.json"
    assert json.loads(path.read_text()) == {"a": 0.123457, "b": None}


def test_explorer_renders_samples(tmp_path) -> None:
    from codexlab import explorer
    from codexlab.problems import load_humaneval

    cfg = make_synthetic_run(tmp_path, tasks=":3", n=3)
    df = pipeline.load_results(cfg, source="store", with_text=True)
    problems = load_humaneval()
    ref = cfg.reference_label()
    html = explorer.render_samples(df, problems, "HumanEval/1", ref, 0.8)
    assert "HumanEval/1" in html and "mean log-prob" in html and "BLEU" in html
    assert html.count("<pre") == 1 + 3  # the prompt + three samples
    only_passed = explorer.render_samples(df, problems, "HumanEval/1", ref, 0.8, "passed")
    assert only_passed.count("<pre") <= html.count("<pre")
    assert "&lt;" in explorer.render_samples(
        df.assign(completion="<script>"), problems, "HumanEval/1", ref, 0.8)
    box = explorer.build_explorer(df, problems)
    out = box.children[-1]
    assert "HumanEval/0" in out.value
    box.children[0].children[0].value = "HumanEval/2"  # pick another task
    assert "HumanEval/2" in out.value
