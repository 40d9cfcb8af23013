"""Figure tables of codexlab.analysis: known answers on hand-made and synthetic results."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from codexlab import analysis, metrics, pipeline
from codexlab.synthetic import make_synthetic_run


def _results(rows: list[tuple[str, float, str, list[bool]]]) -> pd.DataFrame:
    """(model, T, task, passes) → a per-sample results frame with log-probs and BLEU."""
    out = []
    for model, temp, task, passes in rows:
        for i, ok in enumerate(passes):
            out.append({"model": model, "temperature": temp, "task_id": task, "idx": i,
                        "passed": ok, "status": "passed" if ok else "failed",
                        "mean_logprob": -0.5 if ok else -1.0 - 0.01 * i,
                        "sum_logprob": -20.0 + i, "n_tokens": 10, "bleu": 80.0 if ok else 40.0})
    df = pd.DataFrame(out)
    df["passed"] = df["passed"].astype("boolean")
    return df


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory):
    cfg = make_synthetic_run(tmp_path_factory.mktemp("synth"), tasks=":16", n=10)
    return cfg, pipeline.load_results(cfg), pipeline.model_table(cfg)


def test_task_counts_skip_unexecuted() -> None:
    df = _results([("m", 0.2, "T/0", [True, False, True])])
    df.loc[2, "passed"] = pd.NA
    counts = analysis.task_counts(df)
    assert counts[["n", "c"]].to_numpy().tolist() == [[2, 1]]


def test_passk_table_matches_metrics_and_brackets_estimate() -> None:
    df = _results([("m", 0.8, "T/0", [True, False, False, False]),
                   ("m", 0.8, "T/1", [False] * 4),
                   ("m", 0.8, "T/2", [True, True, False, False])])
    tab = analysis.passk_table(df, n_boot=200, seed=1)
    assert tab["k"].tolist() == [1, 2, 3, 4]
    for r in tab.itertuples():
        want = np.mean(metrics.pass_at_k(np.array([4, 4, 4]), np.array([1, 0, 2]), r.k))
        assert r.pass_at_k == pytest.approx(want)
        assert r.lo <= r.pass_at_k <= r.hi
    again = analysis.passk_table(df, n_boot=200, seed=1)
    pd.testing.assert_frame_equal(tab, again)


def test_scaling_table_caps_k_at_n_and_labels_it(synth) -> None:
    cfg, df, models = synth
    tab = analysis.scaling_table(df, models, k_large=100, n_boot=100)
    assert set(tab["metric"]) == {"pass@1", "pass@10"}  # n=10: pass@100 is not estimable
    assert tab["params_total"].notna().all()
    assert len(tab) == 2 * len(models)


def test_loss_table_recovers_a_power_law() -> None:
    n = np.array([1e5, 4e5, 1.3e6, 3e6])
    models = pd.DataFrame({"model": list("abcd"), "params_non_embedding": n,
                           "heldout_loss": (n / 1e7) ** -0.1})
    tab = analysis.loss_table(models)
    assert tab["fit_alpha"].iloc[0] == pytest.approx(0.1, rel=1e-6)
    assert tab["fit_N_c"].iloc[0] == pytest.approx(1e7, rel=1e-6)
    assert tab["paper_fit_loss"].iloc[0] == pytest.approx((1e5 / 5.92e7) ** -0.13)


def test_best_temperature_is_the_upper_hull(synth) -> None:
    cfg, df, _ = synth
    temps = analysis.temperature_table(df, cfg.reference_label(), k_max=cfg.k_max, n_boot=50)
    best = analysis.best_temperature_table(temps)
    for r in best.itertuples():
        at_k = temps[temps["k"] == r.k]
        assert r.pass_at_k == pytest.approx(at_k["pass_at_k"].max())
    with pytest.raises(ValueError, match="no results"):
        analysis.temperature_table(df, "nope")
    assert set(best["source"]) == {"ours"}
    # The paper's T* rows sit at their true k, even beyond our largest k.
    with_paper = analysis.best_temperature_table(temps, paper=True)
    paper = with_paper[with_paper["source"] == analysis.PAPER_T_STAR_SOURCE]
    assert dict(zip(paper["k"], paper["temperature"], strict=True)) == {1: 0.2, 100: 0.8}
    assert len(with_paper) == len(best) + 2


def test_ranking_table_known_answers() -> None:
    # Task 0: the passing sample has the highest mean log-prob; task 1 never passes.
    df = _results([("m", 0.8, "T/0", [False, True, False, False]),
                   ("m", 0.8, "T/1", [False] * 4)])
    tab = analysis.ranking_table(df, "m", 0.8, 4, n_boot=50)
    assert set(tab["model"]) == {"m"} and set(tab["temperature"]) == {0.8}
    assert set(tab["n_min"]) == {4}
    tab = tab.set_index(["heuristic", "k"])
    assert tab.loc[("random", 1), "pass_rate"] == pytest.approx(0.125)
    assert tab.loc[("oracle", 1), "pass_rate"] == pytest.approx(0.125)
    assert tab.loc[("oracle", 4), "pass_rate"] == pytest.approx(0.5)
    # Mean log-prob ranking finds the passing sample whenever it is drawn: equals the oracle.
    for k in range(1, 5):
        assert tab.loc[("mean_logprob", k), "pass_rate"] == pytest.approx(
            tab.loc[("oracle", k), "pass_rate"])


def test_bleu_tables(synth) -> None:
    cfg, df, _ = synth
    ref = cfg.reference_label()
    bleu = analysis.bleu_samples_table(df, ref, 0.8, n_tasks=4, seed=3)
    panels = list(dict.fromkeys(bleu["panel"]))
    assert len(panels) == 5 and panels[-1] == analysis.POOLED
    sub = df[(df["model"] == ref) & (df["temperature"] == 0.8)]
    mixed = sub.groupby("task_id")["passed"].agg(lambda s: s.nunique() == 2)
    for task in panels[:-1]:
        assert mixed[task], "picked tasks have both correct and wrong samples"
    assert panels == list(dict.fromkeys(
        analysis.bleu_samples_table(df, ref, 0.8, n_tasks=4, seed=3)["panel"]))
    per_task = analysis.bleu_task_table(df, ref, 0.8)
    assert len(per_task) == sub["task_id"].nunique()
    assert per_task["pass_rate"].between(0, 1).all()
    assert -1 <= analysis.bleu_correlation(bleu) <= 1


def test_estimator_bias_table_is_exact() -> None:
    tab = analysis.estimator_bias_table(p=0.05, k=10, ns=[10, 20, 200])
    true = 1 - 0.95**10
    unb = tab[tab["estimator"] == "unbiased"]
    naive = tab[tab["estimator"] == "naive"]
    assert np.allclose(unb["mean"], true, atol=1e-12)
    assert (naive["mean"] < true).all()
    assert naive["mean"].is_monotonic_increasing  # the bias shrinks with n


def test_estimator_data_table_agrees_at_k1(synth) -> None:
    cfg, df, _ = synth
    tab = analysis.estimator_data_table(df, cfg.reference_label(), 0.8)
    k1 = tab[tab["k"] == 1].set_index("estimator")["pass_at_k"]
    assert k1["unbiased"] == pytest.approx(k1["naive"])
    kmax = tab[tab["k"] == tab["k"].max()].set_index("estimator")["pass_at_k"]
    assert kmax["naive"] <= kmax["unbiased"]


def test_codex_table1_reference() -> None:
    t = analysis.codex_table1()
    assert len(t) == 8
    row = t.set_index("model").loc["Codex-12B"]
    assert row["pass@1"] == pytest.approx(0.2881) and row["params"] == 12e9


def test_summary_table(synth) -> None:
    _, df, _ = synth
    s = analysis.summary_table(df, ks=(1, 10))
    assert {"pass@1", "pass@10", "executed"} <= set(s.columns)
    assert not math.isnan(s["pass@1"].iloc[0])
    # One column per verdict status, in the engine's vocabulary; they sum to the samples.
    status_cols = [c for c in s.columns if c in analysis.status_vocabulary()
                   or c == analysis.NOT_EXECUTED]
    assert status_cols[:5] == list(analysis.CORE_STATUSES)
    assert (s[status_cols].sum(axis=1) == s["samples"]).all()


def test_status_counts_sum_and_keep_unknown_words() -> None:
    counts = analysis.status_counts(pd.Series(["failed", "memory", "weird", None, "passed"]))
    assert counts == {"passed": 1, "failed": 1, "error": 0, "syntax_error": 0, "timeout": 0,
                      "memory": 1, "weird": 1, analysis.NOT_EXECUTED: 1}
