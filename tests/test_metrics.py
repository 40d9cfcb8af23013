from fractions import Fraction
from math import comb

import numpy as np
import pandas as pd
import pytest

from codexlab.metrics import (
    best_temperature_per_k,
    bleu,
    bootstrap_pass_at_k,
    mean_pass_at_k,
    pass_at_k,
    pass_at_k_naive,
    ranking_curves,
)


def exact(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(comb(n - c, k), comb(n, k))


def test_pass_at_k_matches_rational_arithmetic_small_n():
    for n in range(1, 31):
        for c in range(n + 1):
            for k in sorted({1, 2, 5, 10, n}):
                if k > n:
                    continue
                assert abs(pass_at_k(n, c, k) - float(exact(n, c, k))) < 1e-12, (n, c, k)


def test_pass_at_k_matches_rational_arithmetic_n200():
    n = 200
    for c in (0, 1, 2, 3, 5, 10, 50, 100, 150, 199, 200):
        for k in range(1, 101):
            assert abs(pass_at_k(n, c, k) - float(exact(n, c, k))) < 1e-12, (c, k)


def test_vectorised_form_agrees_with_scalar():
    rng = np.random.default_rng(0)
    n = rng.integers(10, 60, size=50)
    c = np.array([rng.integers(0, x + 1) for x in n])
    for k in (1, 5, 10):
        vec = pass_at_k(n, c, k)
        assert vec.shape == (50,)
        for i in range(50):
            assert vec[i] == pytest.approx(float(exact(int(n[i]), int(c[i]), k)), abs=1e-12)
    grid = pass_at_k(20, 3, np.arange(1, 21))
    assert grid.shape == (20,)
    assert np.all(np.diff(grid) >= 0)


def test_k_greater_than_n_raises_with_guidance():
    with pytest.raises(ValueError, match="n=5"):
        pass_at_k(5, 1, 10)
    with pytest.raises(ValueError):
        pass_at_k([10, 5], [1, 1], 6)  # one task too small: never silently dropped
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)


def test_naive_estimator_is_biased_low():
    n, k = 10, 5
    for c in range(1, n):
        assert pass_at_k_naive(n, c, k) < pass_at_k(n, c, k)
    assert pass_at_k_naive(10, 3, 1) == pytest.approx(0.3)


def test_mean_and_bootstrap():
    n = np.array([10, 10, 10, 10])
    c = np.array([0, 2, 5, 10])
    m = mean_pass_at_k(n, c, [1])
    assert m["pass@1"] == pytest.approx((0 + 0.2 + 0.5 + 1.0) / 4)
    est, lo, hi = bootstrap_pass_at_k(n, c, 1, n_boot=500, seed=3)
    assert est == pytest.approx(m["pass@1"])
    assert lo <= est <= hi
    assert bootstrap_pass_at_k(n, c, 1, n_boot=500, seed=3) == (est, lo, hi)  # seeded
    est2, lo2, hi2 = bootstrap_pass_at_k([5] * 3, [5] * 3, 2)
    assert est2 == lo2 == hi2 == 1.0


def test_bleu_uses_13a_tokenisation():
    assert bleu("return x + 1", "return x+1") == pytest.approx(100.0)
    assert bleu("print('hi')", "return sorted(xs)[0]") < 10
    partial = bleu("return sorted(xs)", "return sorted(xs)[0]")
    assert 0 < partial < 100


def test_ranking_curves_hand_computed():
    # n=3: sample 0 passes. mean_logprob ranks it first, sum_logprob ranks it last.
    t = {"a": {"passed": [1, 0, 0], "mean_logprob": [-1, -2, -3], "sum_logprob": [-3, -2, -1]}}
    r = ranking_curves(t, 3)
    # mean: chosen sample passes iff sample 0 is in the subset: k/3.
    np.testing.assert_allclose(r["mean_logprob"], [1 / 3, 2 / 3, 1])
    # sum: sample 0 is chosen only when it is alone: k=1 -> 1/3, otherwise 0.
    np.testing.assert_allclose(r["sum_logprob"], [1 / 3, 0, 0])
    np.testing.assert_allclose(r["random"], [1 / 3] * 3)
    np.testing.assert_allclose(r["oracle"], [1 / 3, 2 / 3, 1])


def test_ranking_curves_ties_and_two_tasks():
    # Task b: all scores tie, 2 of 4 pass -> any heuristic picks uniformly: 0.5 for every k.
    t = {
        "a": {"passed": [0, 1, 0, 0], "mean_logprob": [-0.5, -1, -2, -3], "sum_logprob": [0, 0, 0, 0]},
        "b": {"passed": [1, 1, 0, 0], "mean_logprob": [0, 0, 0, 0], "sum_logprob": [0, 0, 0, 0]},
    }
    r = ranking_curves(t, 4)
    # Task a, mean: sample 1 chosen iff in subset and sample 0 not: C(2,k-1)/C(4,k).
    a_mean = np.array([comb(2, k - 1) / comb(4, k) for k in range(1, 5)])
    np.testing.assert_allclose(r["mean_logprob"], (a_mean + 0.5) / 2)
    # Task a, sum: all tie -> uniform choice -> 1/4.
    np.testing.assert_allclose(r["sum_logprob"], (0.25 + 0.5) / 2)
    oracle = [(float(exact(4, 1, k)) + float(exact(4, 2, k))) / 2 for k in range(1, 5)]
    np.testing.assert_allclose(r["oracle"], oracle)


def test_ranking_oracle_is_pass_at_k_and_random_is_pass_at_1_and_mc_agrees():
    rng = np.random.default_rng(1)
    rows = []
    for t in range(6):
        n = 12
        passed = rng.random(n) < rng.random()
        lp = rng.normal(size=n) + passed * 0.5
        for i in range(n):
            rows.append({"task_id": f"t{t}", "passed": passed[i], "mean_logprob": lp[i],
                         "sum_logprob": lp[i] * rng.integers(3, 9)})
    df = pd.DataFrame(rows)
    r = ranking_curves(df, 12)
    counts = df.groupby("task_id")["passed"].agg(["count", "sum"])
    for k in range(1, 13):
        assert r["oracle"][k - 1] == pytest.approx(
            np.mean(pass_at_k(counts["count"], counts["sum"], k)), abs=1e-12)
    assert np.allclose(r["random"], np.mean(pass_at_k(counts["count"], counts["sum"], 1)))
    assert r["mean_logprob"][0] == pytest.approx(r["random"][0])
    mc = ranking_curves(df, 12, exact=False, n_mc=3000, seed=0)
    se = 0.5 / np.sqrt(3000 * 6)
    assert np.max(np.abs(mc["mean_logprob"] - r["mean_logprob"])) < 5 * se


def test_ranking_k_max_too_large():
    with pytest.raises(ValueError, match="smallest n"):
        ranking_curves({"a": {"passed": [1], "mean_logprob": [0], "sum_logprob": [0]}}, 2)


def test_best_temperature_per_k_is_upper_hull():
    rows = []
    for t, vals in {0.2: [0.3, 0.4, 0.45], 0.8: [0.2, 0.45, 0.7]}.items():
        for k, v in zip([1, 10, 100], vals, strict=True):
            rows.append({"temperature": t, "k": k, "pass_at_k": v})
    best = best_temperature_per_k(pd.DataFrame(rows))
    assert best["temperature"].tolist() == [0.2, 0.8, 0.8]
    assert best["pass_at_k"].tolist() == [0.3, 0.45, 0.7]


def test_naive_and_bootstrap_refuse_meaningless_arguments():
    from codexlab.metrics import bootstrap_pass_at_k, pass_at_k_naive

    with pytest.raises(ValueError, match="k must be >= 1"):
        pass_at_k_naive(5, 2, -1)
    for kw, want in (({"n_boot": 0}, "n_boot"), ({"confidence": 1.5}, "confidence"),
                     ({"confidence": 0.0}, "confidence")):
        with pytest.raises(ValueError, match=want):
            bootstrap_pass_at_k([5, 5], [1, 2], 1, **kw)
    with pytest.raises(ValueError, match="no task"):
        bootstrap_pass_at_k([], [], 1)
