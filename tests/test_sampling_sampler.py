"""Statistical and unit tests of the token choice (temperature, nucleus, draws, log-probs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codexlab.sampling.rng import batch_uniforms, sample_uniforms, task_key
from codexlab.sampling.sampler import nucleus_distribution, nucleus_threshold, sample_step

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def chi2_pvalue(counts: np.ndarray, probs: np.ndarray, min_expected: float = 5.0) -> float:
    """Pearson chi-square goodness of fit; bins with small expectation are pooled."""
    n = counts.sum()
    exp = probs * n
    big = exp >= min_expected
    obs = list(counts[big]) + ([counts[~big].sum()] if (~big).any() else [])
    ex = list(exp[big]) + ([exp[~big].sum()] if (~big).any() else [])
    obs, ex = np.asarray(obs, float), np.asarray(ex, float)
    stat = float(((obs - ex) ** 2 / ex).sum())
    dof = len(obs) - 1
    # Survival function of chi2(dof) = regularised upper incomplete gamma Q(dof/2, stat/2).
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64),
                                         torch.tensor(stat / 2, dtype=torch.float64)))


@pytest.mark.parametrize("temperature,top_p", [(1.0, 0.95), (0.8, 0.95), (0.5, 0.7),
                                               (1.3, 0.9), (0.2, 1.0), (1.0, 0.5)])
@pytest.mark.parametrize("use_numpy", [True, False])
def test_draws_match_nucleus_distribution(temperature: float, top_p: float, use_numpy: bool):
    gen = torch.Generator().manual_seed(1234)
    vocab, draws = 60, 20000
    logits = torch.randn(vocab, generator=gen) * 2.5
    q = nucleus_distribution(logits, temperature, top_p).numpy()
    u = torch.from_numpy(batch_uniforms(7, [("T/0", i) for i in range(draws)], 1)[:, 0])
    tokens, lps = sample_step(logits.expand(draws, -1), u, temperature, top_p,
                              use_numpy=use_numpy)
    counts = np.bincount(tokens.numpy(), minlength=vocab)
    assert counts[q == 0].sum() == 0, "a token outside the nucleus was drawn"
    assert chi2_pvalue(counts[q > 0], q[q > 0]) > 1e-3
    # log-probs are under the raw distribution (T=1, no truncation), whatever T/top_p were.
    raw = torch.log_softmax(logits, -1)
    assert torch.allclose(lps, raw[tokens], atol=1e-5)


def test_numpy_and_torch_paths_agree():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 500, generator=gen) * 3
    probs = torch.softmax(logits, -1)
    u = torch.rand(64, generator=gen, dtype=torch.float64)
    for top_p in (0.3, 0.9, 0.95, 1.0):
        a = nucleus_threshold(probs, top_p, use_numpy=True)
        b = nucleus_threshold(probs, top_p, use_numpy=False)
        assert torch.equal(a, b)
        ta, la = sample_step(logits, u, 0.7, top_p, use_numpy=True)
        tb, lb = sample_step(logits, u, 0.7, top_p, use_numpy=False)
        assert torch.equal(ta, tb) and torch.equal(la, lb)


@pytest.mark.parametrize("use_numpy", [True, False])
def test_exact_ties_share_their_probability(use_numpy: bool):
    # Tokens 1, 3, 4 and 5 tie at 0.2. Ranked by probability (ties by vocabulary order) the
    # cumulative mass reaches top_p=0.75 at the fourth, so the nucleus is {1, 3, 4, 5} and
    # each must be drawn with probability 1/4 (not always the first of the tied tokens).
    logits = torch.log(torch.tensor([0.1, 0.2, 0.0001, 0.2, 0.2, 0.2, 0.0999]))
    draws = 8000
    u = torch.from_numpy(batch_uniforms(3, [("ties", i) for i in range(draws)], 1)[:, 0])
    tok, _ = sample_step(logits.expand(draws, -1), u, 1.0, 0.75, use_numpy=use_numpy)
    counts = np.bincount(tok.numpy(), minlength=7)
    assert set(np.nonzero(counts)[0]) == {1, 3, 4, 5}
    assert chi2_pvalue(counts[[1, 3, 4, 5]], np.full(4, 0.25)) > 1e-3


def test_nucleus_is_smallest_set_reaching_top_p():
    # probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.8 keeps exactly the first two (0.5+0.3 reaches
    # 0.8), 0.81 needs the third, 1.0 keeps all.
    p = torch.tensor([[0.05, 0.5, 0.15, 0.3]])
    assert set(torch.nonzero(p[0] >= nucleus_threshold(p, 0.79)[0]).flatten().tolist()) == {1, 3}
    assert set(torch.nonzero(p[0] >= nucleus_threshold(p, 0.81)[0]).flatten().tolist()) == {1, 2, 3}
    assert set(torch.nonzero(p[0] >= nucleus_threshold(p, 0.5)[0]).flatten().tolist()) == {1}
    assert (p[0] >= nucleus_threshold(p, 1.0)[0]).all()


def test_greedy_is_argmax_and_ignores_u():
    logits = torch.randn(8, 30)
    tok, lp = sample_step(logits, torch.rand(8, dtype=torch.float64), 0.0, 0.95)
    assert torch.equal(tok, logits.argmax(-1))
    assert torch.allclose(lp, torch.log_softmax(logits, -1).gather(-1, tok[:, None])[:, 0])


def test_u_at_the_edge_never_picks_a_masked_token():
    logits = torch.tensor([[5.0, 4.0, -10.0, -10.0]])
    for u in (0.0, 1.0 - 1e-16, 0.999999999):
        tok, _ = sample_step(logits, torch.tensor([u], dtype=torch.float64), 1.0, 0.9)
        assert tok.item() in (0, 1)


def test_streams_are_keyed_by_seed_task_and_index():
    a = sample_uniforms(0, "HumanEval/1", 3, 10)
    assert np.array_equal(a, sample_uniforms(0, "HumanEval/1", 3, 10))
    assert np.array_equal(a[:5], sample_uniforms(0, "HumanEval/1", 3, 5))
    assert not np.array_equal(a, sample_uniforms(1, "HumanEval/1", 3, 10))
    assert not np.array_equal(a, sample_uniforms(0, "HumanEval/1", 4, 10))
    assert not np.array_equal(a, sample_uniforms(0, "HumanEval/2", 3, 10))
    assert task_key("HumanEval/1") == task_key("HumanEval/1") != task_key("HumanEval/2")
    assert ((a >= 0) & (a < 1)).all()


def test_top_p_one_keeps_every_token_even_when_rounding_reaches_one_early():
    # float32 0.6 + 0.4 sums to 1.00000003 in float64: a "reach top_p" search would stop there
    # and drop the third token; top_p=1 must keep all of them.
    from codexlab.sampling.sampler import nucleus_size

    desc = torch.tensor([[0.6, 0.4, 1e-9]], dtype=torch.float32)
    last, _ = nucleus_size(desc, 1.0)
    assert last.item() == 2
    last, _ = nucleus_size(desc, 0.99)
    assert last.item() == 1
