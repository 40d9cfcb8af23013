"""The paper's statistics: pass@k, its confidence intervals, BLEU, ranking curves, best T.

What it is for: exact, numerically stable estimators over per-task counts or per-sample
tables, with no I/O and no plotting. What it is not for: running code (see
:mod:`codexlab.execution`) or assembling figure tables from a store (see
:mod:`codexlab.analysis`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

ArrayLike = Any  # scalars, sequences or numpy arrays of numbers


def _as_int_arrays(n: ArrayLike, c: ArrayLike, k: ArrayLike) -> tuple[np.ndarray, ...]:
    n_a, c_a, k_a = (np.asarray(x) for x in (n, c, k))
    for name, arr in (("n", n_a), ("c", c_a), ("k", k_a)):
        if arr.size and not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must hold whole numbers, got {arr!r}")
    n_a, c_a, k_a = (a.astype(np.int64) for a in (n_a, c_a, k_a))
    n_a, c_a, k_a = np.broadcast_arrays(n_a, c_a, k_a)
    if np.any(k_a < 1):
        raise ValueError(f"k must be >= 1, got {k_a.min()}")
    if np.any(c_a < 0) or np.any(c_a > n_a):
        raise ValueError("c (correct samples) must satisfy 0 <= c <= n")
    if np.any(k_a > n_a):
        bad = int(np.argmax(k_a > n_a))
        raise ValueError(
            f"pass@{int(k_a.flat[bad])} needs at least k samples per task but a task has "
            f"n={int(n_a.flat[bad])}; sample more (n >= k) or ask for a smaller k"
        )
    return n_a, c_a, k_a


def pass_at_k(n: ArrayLike, c: ArrayLike, k: ArrayLike) -> float | np.ndarray:
    """Unbiased pass@k estimator, ``1 - C(n-c, k) / C(n, k)`` (paper eq. 1).

    Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, which never forms a binomial
    coefficient and so stays exact to rounding for n in the thousands. Arguments broadcast
    against each other, so per-problem ``n`` and ``c`` arrays with one ``k`` (or a grid of k)
    work.

    Reproduces: Codex paper Fig 3 (the numerically stable estimator).

    Args:
        n: Samples drawn per task.
        c: Correct samples per task (0 <= c <= n).
        k: The k of pass@k (1 <= k <= n).

    Returns:
        A float for scalar inputs, else an array of the broadcast shape.

    Raises:
        ValueError: k > n for any entry (never silently dropped), k < 1, or c outside [0, n].
    """
    n_a, c_a, k_a = _as_int_arrays(n, c, k)
    out = np.empty(n_a.shape, dtype=np.float64)
    for pos in np.ndindex(n_a.shape):
        nn, cc, kk = int(n_a[pos]), int(c_a[pos]), int(k_a[pos])
        if nn - cc < kk:
            out[pos] = 1.0
        else:
            i = np.arange(nn - cc + 1, nn + 1, dtype=np.float64)
            out[pos] = 1.0 - float(np.prod(1.0 - kk / i))
    return float(out) if out.ndim == 0 else out


def pass_at_k_naive(n: ArrayLike, c: ArrayLike, k: ArrayLike) -> float | np.ndarray:
    """Naive estimator ``1 - (1 - c/n)^k``, biased low for k > 1.

    Kept only to show its bias next to :func:`pass_at_k`.

    Reproduces: Codex paper Fig 13.

    Args:
        n: Samples drawn per task.
        c: Correct samples per task.
        k: The k of pass@k; unlike the unbiased form, k > n is allowed (it is what the naive
            estimator is used for in the paper's comparison).

    Returns:
        A float for scalar inputs, else an array of the broadcast shape.
    """
    n_a, c_a, k_a = (np.asarray(x, dtype=np.float64) for x in (n, c, k))
    if np.any(n_a <= 0):
        raise ValueError("n must be positive")
    if np.any(c_a < 0) or np.any(c_a > n_a):
        raise ValueError("c (correct samples) must satisfy 0 <= c <= n")
    if np.any(k_a < 1):
        raise ValueError("k must be >= 1")
    out = 1.0 - (1.0 - c_a / n_a) ** k_a
    return float(out) if np.ndim(out) == 0 else out


def mean_pass_at_k(n: ArrayLike, c: ArrayLike, ks: Sequence[int]) -> dict[str, float]:
    """Average pass@k over tasks for each k.

    Args:
        n: Per-task sample counts.
        c: Per-task correct counts.
        ks: The k values.

    Returns:
        ``{"pass@k": value}`` for each k.

    Raises:
        ValueError: Some task has fewer than k samples.
    """
    n_a, c_a = np.asarray(n), np.asarray(c)
    return {f"pass@{k}": float(np.mean(pass_at_k(n_a, c_a, k))) for k in ks}


def bootstrap_pass_at_k(
    n: ArrayLike,
    c: ArrayLike,
    k: int,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean pass@k over tasks with a percentile bootstrap interval over tasks.

    Tasks are resampled with replacement (the benchmark is a sample of possible tasks); the
    per-task estimates are computed once, so the bootstrap is cheap.

    Args:
        n: Per-task sample counts.
        c: Per-task correct counts.
        k: The k of pass@k.
        n_boot: Bootstrap replicates.
        confidence: Two-sided coverage of the interval.
        seed: Seed of the resampling, so intervals are reproducible.

    Returns:
        ``(estimate, low, high)``.

    Raises:
        ValueError: ``n_boot`` < 1, ``confidence`` outside (0, 1), no task, or what
            :func:`pass_at_k` refuses.
    """
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    per_task = np.atleast_1d(np.asarray(pass_at_k(n, c, k), dtype=np.float64))
    if per_task.size == 0:
        raise ValueError("no task: n and c are empty")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, per_task.size, size=(n_boot, per_task.size))
    means = per_task[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(per_task.mean()), float(lo), float(hi)


def bleu(completion: str, reference: str) -> float:
    """Sentence BLEU (0–100) of a completion against a reference solution.

    Uses sacrebleu's ``sentence_bleu`` with its default ``13a`` tokenisation (splits
    punctuation and symbols from words, so ``x+1`` → ``x + 1``; whitespace and indentation are
    not tokens) and ``exp`` smoothing, which keeps short or partly matching samples above 0.

    Reproduces: Codex paper Fig 8 (BLEU of samples against the canonical solution).

    Args:
        completion: The model's completion (function body).
        reference: The canonical solution body.

    Returns:
        BLEU in [0, 100].
    """
    from sacrebleu.metrics import BLEU

    scorer = _bleu_scorer(BLEU)
    return float(scorer.sentence_score(completion, [reference]).score)


_BLEU_SCORER: Any = None


def _bleu_scorer(cls: Any) -> Any:
    global _BLEU_SCORER
    if _BLEU_SCORER is None:
        _BLEU_SCORER = cls(tokenize="13a", smooth_method="exp", effective_order=True)
    return _BLEU_SCORER


#: Score columns :func:`ranking_curves` ranks by when present (higher = chosen first).
RANKING_SCORES = ("mean_logprob", "sum_logprob", "backtranslation")


def ranking_curves(
    tasks: Mapping[str, Mapping[str, Sequence[float]]] | Any,
    k_max: int,
    *,
    exact: bool = True,
    n_mc: int = 2000,
    seed: int = 0,
    scores: Sequence[str] = ("mean_logprob", "sum_logprob"),
) -> dict[str, np.ndarray]:
    """Compute the pass rate of the one sample chosen out of k by each ranking heuristic.

    For each task with n samples and each k, a k-subset is drawn uniformly; one sample of the
    subset is chosen by the highest value of each score (mean log-prob, sum log-prob,
    back-translation, ...), uniformly at random, or by an oracle that picks a passing one if
    any. The curves average over tasks.

    The exact computation ranks the n samples once by the score (ties broken by giving each
    tied sample its share); the sample at rank r (0 = best) is chosen when it is in the
    subset and the r better ones are not: probability ``C(n-1-r, k-1) / C(n, k)``. Oracle is
    then pass@k and random is pass@1, both exactly. A missing score (NaN) ranks below every
    present one.

    Reproduces: Codex paper Fig 7.

    Args:
        tasks: Either a mapping task → ``{"passed": [...], <score>: [...], ...}`` or a
            DataFrame with columns ``task_id``, ``passed`` and the score columns.
        k_max: Largest k (must not exceed the smallest n over tasks).
        exact: Use the exact formula (default). False uses ``n_mc`` seeded Monte Carlo draws
            of k-subsets per task and k; its standard error is about ``0.5 / sqrt(n_mc *
            n_tasks)``.
        n_mc: Monte Carlo draws per (task, k) when ``exact`` is False.
        seed: Seed for Monte Carlo.
        scores: The score columns to rank by (see :data:`RANKING_SCORES`).

    Returns:
        Dict with ``k`` (1..k_max), ``random``, ``oracle`` and one array per score, each of
        length k_max.

    Raises:
        ValueError: k_max exceeds the samples of some task, a score is missing, or the table
            is empty.
    """
    table = _ranking_table(tasks, tuple(scores))
    if not table:
        raise ValueError("ranking_curves: no tasks given")
    min_n = min(len(v[0]) for v in table.values())
    if k_max < 1 or k_max > min_n:
        raise ValueError(f"k_max={k_max} must be between 1 and the smallest n per task ({min_n})")
    ks = np.arange(1, k_max + 1)
    keys = (*scores, "random", "oracle")
    acc = {key: np.zeros(k_max) for key in keys}
    rng = np.random.default_rng(seed)
    for passed, cols in table.values():
        n = len(passed)
        c = int(passed.sum())
        acc["oracle"] += np.asarray(pass_at_k(n, c, ks))
        acc["random"] += c / n
        for key in scores:
            score = np.where(np.isnan(cols[key]), -np.inf, cols[key])
            if exact:
                acc[key] += _exact_pick_rate(passed, score, ks)
            else:
                acc[key] += _mc_pick_rate(passed, score, ks, n_mc, rng)
    out = {key: acc[key] / len(table) for key in keys}
    out["k"] = ks
    return out


def _ranking_table(tasks: Any, scores: tuple[str, ...]
                   ) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    if hasattr(tasks, "groupby"):
        missing = [c for c in ("passed", *scores) if c not in tasks]
        if missing:
            raise ValueError(f"ranking_curves: the table has no column {missing}")
        groups = {tid: g for tid, g in tasks.groupby("task_id", sort=True)}
        tasks = {tid: {c: g[c].to_numpy() for c in ("passed", *scores)}
                 for tid, g in groups.items()}
    out = {}
    for tid, cols in tasks.items():
        passed = np.asarray(cols["passed"], dtype=bool)
        try:
            vals = {key: np.asarray(cols[key], dtype=np.float64) for key in scores}
        except KeyError as exc:
            raise ValueError(f"task {tid}: no score {exc.args[0]!r}") from None
        if len(passed) == 0 or any(len(v) != len(passed) for v in vals.values()):
            raise ValueError(f"task {tid}: passed/{'/'.join(scores)} lengths differ or are 0")
        out[tid] = (passed, vals)
    return out


def _exact_pick_rate(passed: np.ndarray, score: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Exact P(chosen sample passes) for each k when the best-scoring sample is chosen."""
    n = len(passed)
    # Probability that the top-ranked sample of a random k-subset sits at sorted rank r.
    order = np.argsort(-score, kind="stable")
    s_sorted, p_sorted = score[order], passed[order].astype(np.float64)
    # Within a block of equal scores the choice among tied subset members is uniform, so every
    # sample in the block gets the block's average pass rate.
    vals = p_sorted.copy()
    start = 0
    for end in range(1, n + 1):
        if end == n or s_sorted[end] != s_sorted[start]:
            vals[start:end] = p_sorted[start:end].mean()
            start = end
    out = np.empty(len(ks))
    r = np.arange(n)
    for j, k in enumerate(ks):
        # P(rank r is the best in the subset) = C(n-1-r, k-1) / C(n, k), computed as a ratio
        # of products in log space for stability.
        w = _log_comb(n - 1 - r, k - 1) - _log_comb(np.array(n), k)
        out[j] = float(np.sum(np.exp(w) * vals))
    return out


def _log_comb(a: np.ndarray, b: int) -> np.ndarray:
    """Return log C(a, b) elementwise, -inf where a < b."""
    from math import lgamma

    a = np.atleast_1d(np.asarray(a))
    res = np.full(a.shape, -np.inf)
    ok = a >= b
    res[ok] = [lgamma(x + 1) - lgamma(b + 1) - lgamma(x - b + 1) for x in a[ok]]
    return res


def _mc_pick_rate(
    passed: np.ndarray, score: np.ndarray, ks: np.ndarray, n_mc: int, rng: np.random.Generator
) -> np.ndarray:
    n = len(passed)
    out = np.empty(len(ks))
    for j, k in enumerate(ks):
        hits = 0
        for _ in range(n_mc):
            sub = rng.choice(n, size=int(k), replace=False)
            best = sub[np.flatnonzero(score[sub] == score[sub].max())]
            hits += bool(passed[rng.choice(best)])
        out[j] = hits / n_mc
    return out


def best_temperature_per_k(table: Any) -> Any:
    """Best temperature and pass@k for each k: the upper hull of the per-temperature curves.

    Reproduces: Codex paper Fig 5 (bottom).

    Args:
        table: DataFrame with columns ``temperature``, ``k``, ``pass_at_k`` (one row per
            pair; other columns ignored).

    Returns:
        DataFrame with one row per k: ``k``, ``temperature`` (argmax, lowest T on ties),
        ``pass_at_k`` (the max).
    """
    import pandas as pd

    need = {"temperature", "k", "pass_at_k"}
    if not need.issubset(table.columns):
        raise ValueError(
            f"best_temperature_per_k needs columns {sorted(need)}, got {list(table.columns)}"
        )
    t = table.sort_values(["k", "pass_at_k", "temperature"], ascending=[True, False, True])
    best = t.groupby("k", sort=True).head(1)[["k", "temperature", "pass_at_k"]]
    return pd.DataFrame(best).reset_index(drop=True)
