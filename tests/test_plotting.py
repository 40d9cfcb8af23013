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
        "best": analysis.best_temperature_table(temps, paper=True),
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


def test_temperature_figure_marks_paper_t_star_at_its_true_k(tables) -> None:
    assert tables["temps"]["k"].max() == 10  # our n: the star's k = 100 lies beyond it
    top, bottom = plotting.plot_temperature(tables["temps"], tables["best"])
    texts = [t.get_text() for t in bottom.texts]
    assert any("k=1," in s for s in texts) and any("k=100," in s for s in texts)
    stars = [c for c in bottom.collections if c.get_gid() == "paper_t_star"]
    xs = sorted(float(x) for c in stars for x, _ in c.get_offsets())
    assert xs == [1.0, 100.0], xs
    assert bottom.get_xlim()[1] >= 100 and top.get_xlim() == bottom.get_xlim()
    assert len(top.get_lines()) == tables["temps"]["temperature"].nunique()
    plt.close(top.figure)


def test_scaling_figure_uses_non_embedding_parameters(tables) -> None:
    t = tables["scaling"]
    ax = plotting.plot_scaling(t)
    assert ax.get_xlabel() == "non-embedding parameters"
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    ours = [ln for ln in ax.get_lines() if ln.get_label().startswith("ours") or
            (ln.get_marker() in ("o", "s") and ln.get_color() in ("#0072B2", "#D55E00"))]
    assert ours
    for ln in ours:
        assert sorted(ln.get_xdata()) == sorted(t.drop_duplicates("model")["params_non_embedding"])
    # pass@1 (filled circles) is drawn above pass@k (hollow squares): both stay visible.
    p1 = [ln for ln in ours if ln.get_marker() == "o"][0]
    pk = [ln for ln in ours if ln.get_marker() == "s"][0]
    assert p1.get_zorder() > pk.get_zorder() and pk.get_markerfacecolor() == "white"
    # Our model names label the top axis, not the data area.
    top = ax.child_axes[0] if ax.child_axes else None
    names = [lbl.get_text() for lbl in top.get_xticklabels()] if top is not None else []
    assert sorted(names) == sorted(t["model"].unique())
    assert "Codex Table 1: pass@1" in lines
    plt.close(ax.figure)


def test_estimator_figure_keeps_the_unbiased_curve_visible(tables) -> None:
    axes = plotting.plot_estimator(tables["bias"], tables["ours"])
    lines = {ln.get_label().split(" ")[0]: ln for ln in axes[0].get_lines()}
    true, unbiased = lines["true"], lines["unbiased"]
    assert unbiased.get_zorder() > true.get_zorder()  # drawn on top of the truth
    assert true.get_linewidth() > 2 * unbiased.get_linewidth()  # the truth shows around it
    assert unbiased.get_marker() == "o"
    right = {ln.get_label(): ln for ln in axes[1].get_lines()}
    assert right["unbiased"].get_markersize() > right["naive"].get_markersize()
    plt.close(axes[0].figure)


def test_ranking_title_names_model_and_temperature(tables) -> None:
    ax = plotting.plot_ranking(tables["ranking"])
    title = ax.get_title()
    assert "synth-3m" in title and "T = 0.8" in title and "n = 10" in title
    plt.close(ax.figure)


def test_bleu_figure_is_scaled_to_the_data_with_density_ticks(tables) -> None:
    bleu = tables["bleu"]
    small = bleu.assign(bleu=bleu["bleu"] / 10)  # every score under 10
    axes = plotting.plot_bleu(small)
    for ax, (_, g) in zip(axes, small.groupby("panel", sort=False), strict=True):
        assert ax.get_xlim()[1] <= max(1.0, g["bleu"].max() * 1.1)
        assert len(ax.get_yticks()) > 1 and ax.yaxis.get_visible()
    legend = [t.get_text() for t in axes[-1].get_legend().get_texts()]
    assert legend[0].startswith("correct (") and legend[1].startswith("wrong (")
    assert plotting.OUTCOME_COLORS == {"correct": "#0072B2", "wrong": "#E69F00"}
    plt.close(axes[0].figure)


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
    # The exported-HTML fallback: a static snapshot beside the widget view.
    bundle = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "<pre" in bundle["text/html"]


def test_explorer_statuses_are_one_vocabulary_that_sums(tmp_path) -> None:
    import pandas as pd

    from codexlab import analysis, explorer
    from codexlab.execution.verdicts import STATUSES
    from codexlab.problems import load_humaneval

    statuses = ["passed", "failed", "syntax_error", "syntax_error", "error", "timeout", None]
    df = pd.DataFrame({"model": "m", "temperature": 1.0, "task_id": "HumanEval/23",
                       "idx": range(len(statuses)), "status": statuses,
                       "passed": pd.array([s == "passed" if s else None for s in statuses],
                                          dtype="boolean"),
                       "result": [f"failed: {s}" if s else None for s in statuses],
                       "mean_logprob": -1.0, "sum_logprob": -5.0, "n_tokens": 5, "bleu": 1.0,
                       "completion": "    return 1\n"})
    problems = load_humaneval()
    counts = explorer.filter_counts(df)
    assert counts["all"] == len(df) == sum(v for k, v in counts.items() if k != "all")
    assert counts["syntax_error"] == 2 and counts[analysis.NOT_EXECUTED] == 1
    assert set(analysis.CORE_STATUSES) <= set(counts) and set(analysis.CORE_STATUSES) <= set(STATUSES)
    for status, n in counts.items():
        html = explorer.render_samples(df, problems, "HumanEval/23", "m", 1.0, status)
        assert html.count("class='codexlab-sample'") == n, status
        if status != "all":
            assert html.count(f"data-status='{status}'") == n
    box = explorer.build_explorer(df, problems)
    buttons = box.children[1]
    labels = dict((v, lbl) for lbl, v in buttons.options)
    assert labels["syntax_error"] == "syntax_error (2)" and labels["all"] == "all (7)"
    buttons.value = "syntax_error"  # a filter click changes the list
    assert box.children[-1].value.count("class='codexlab-sample'") == 2
    # The summary table uses the same words, and its status columns sum to the samples.
    s = analysis.summary_table(df)
    cols = [c for c in s.columns if c in (*STATUSES, analysis.NOT_EXECUTED)]
    assert cols[:5] == list(analysis.CORE_STATUSES)
    assert int(s[cols].sum(axis=1).iloc[0]) == int(s["samples"].iloc[0]) == len(df)


def test_codex_s_temperature_figure_says_when_every_temperature_ties_at_zero() -> None:
    import pandas as pd

    def best(p: float) -> pd.DataFrame:
        return pd.DataFrame([{"family": f, "model": m, "k": k, "temperature": 0.2,
                              "pass_at_k": p, "tied": 3 if p == 0 else 1, "source": "ours"}
                             for f, m in (("Codex", "a"), ("Codex-S", "a-s")) for k in (1, 2)])

    def texts(df: pd.DataFrame) -> str:
        ax = plotting.plot_codex_s_temperature(df)
        out = " ".join(t.get_text() for t in ax.texts)
        plt.close(ax.figure)
        return out

    assert "every temperature\nties at 0" in texts(best(0.0))
    assert "ties at 0" not in texts(best(0.25))


def test_scaling_figure_prints_small_non_zero_rates_and_says_when_all_are_zero() -> None:
    import pandas as pd

    def table(v: float) -> pd.DataFrame:
        return pd.DataFrame([
            {"model": m, "params_total": 2 * p, "params_non_embedding": p, "metric": metric,
             "k": k, "temperature": t, "value": v if (m == "b" and k == 100) else 0.0,
             "lo": 0.0, "hi": v, "n_tasks": 164}
            for m, p in (("a", 2e5), ("b", 1.2e6)) for metric, k, t in
            (("pass@1", 1, 0.2), ("pass@100", 100, 0.8))])

    def texts(df: pd.DataFrame) -> list[str]:
        ax = plotting.plot_scaling(df)
        out = [t.get_text() for t in ax.texts]
        plt.close(ax.figure)
        return out

    assert "pass@100 = 0.61%" in texts(table(1 / 164))
    assert not any("=" in t for t in texts(table(0.3)))  # visible at the axis' scale
    assert any("every point at 0" in t for t in texts(table(0.0)))


def test_codex_s_figure_does_not_call_a_negative_ranking_gain_zero() -> None:
    import pandas as pd

    rows = [{"family": f, "model": f"{f}-{p}", "base_model": f"b-{p}",
             "params_non_embedding": p, "metric": metric, "k": k, "temperature": t,
             "value": v, "lo": min(v, 0), "hi": max(v, 0), "n_tasks": 164}
            for f in ("Codex", "Codex-S") for p in (2e5, 1.2e6)
            for metric, k, t, v in (("pass@1", 1, 0.2, 0.0), ("pass@100", 100, 0.8, 0.006),
                                    ("ranking gain", 100, 0.8, -5e-5 if p > 1e6 else 0.0))]
    axes = plotting.plot_codex_s(pd.DataFrame(rows))
    notes = [[t.get_text() for t in ax.texts] for ax in axes]
    plt.close(axes[0].figure)
    assert any("every curve is at 0" in t for t in notes[0])  # pass@1: all 0
    # pass@100 > 0 and a gain below 0 are not "at 0": both are printed (under 5 %).
    assert not any("at 0" in t for t in notes[1] + notes[2])
    assert "Codex-S: 0.60%" in notes[1] and "Codex: -0.005 pp" in notes[2]
