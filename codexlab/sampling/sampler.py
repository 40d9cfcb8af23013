"""One decoding step's token choice: temperature, exact nucleus, counter-based draw, log-prob.

What it is for: turning a batch of next-token logits and one uniform per row into the next
token and its log-probability under the *raw* model distribution (T = 1, no truncation),
with exactly the Codex semantics:

* temperature divides the logits; ``temperature == 0`` is greedy (argmax);
* the nucleus is the smallest set of most likely tokens whose probability (after
  temperature) reaches ``top_p``: tokens ranked by probability (ties by vocabulary order),
  up to and including the first at which the cumulative mass reaches ``top_p``; top-k is
  never applied;
* the draw is an inverse CDF over the renormalised nucleus, in descending-probability order,
  with the row's uniform ``u``: rank ``k`` is the first whose cumulative mass exceeds
  ``u * nucleus_mass``.

What it is not for: stop sequences, KV caches, batching (see :mod:`~codexlab.sampling.engine`).

Speed notes (CPU, 200 rows x 8k vocab): ``torch.sort`` costs ~80 ms per step, numpy's value
sort ~4 ms. The draw needs only the sorted *values*, never the permutation: the chosen rank's
probability value is mapped back to its token by equality (one vectorised compare; exact ties
are resolved by vocabulary order, in a rarely taken branch on CPU). The torch path (CUDA,
MPS, compiled/CUDA-graph steps) uses ``torch.sort`` values and resolves ties branch-free, so it
has no data-dependent control flow and can be captured in a graph. Cumulative sums are
float64 so the nucleus boundary is decided as exactly as the float32 probabilities allow.
"""

from __future__ import annotations

import numpy as np
import torch


def sorted_desc(probs: torch.Tensor, *, use_numpy: bool | None = None) -> torch.Tensor:
    """Return each row's probabilities sorted in descending order (values only).

    Args:
        probs: ``(rows, vocab)`` float32 probabilities.
        use_numpy: Sort with numpy (fast on CPU); default: when ``probs`` is on the CPU.
    """
    return -sorted_neg(probs, use_numpy=use_numpy)


def sorted_neg(probs: torch.Tensor, *, use_numpy: bool | None = None) -> torch.Tensor:
    """Return each row's *negated* probabilities in ascending order (descending probabilities).

    Sorting the negation yields a contiguous array (a reversed view would make every later
    pass strided and several times slower) that ``searchsorted`` can use directly.
    """
    if use_numpy is None:
        use_numpy = probs.device.type == "cpu"
    if use_numpy:
        return torch.from_numpy(np.sort(-probs.detach().numpy(), axis=-1))
    return torch.sort(-probs, dim=-1).values


def nucleus_size(desc: torch.Tensor, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the nucleus size minus one (``(rows, 1)`` index of its last rank) and the cdf.

    Args:
        desc: Descending probabilities from :func:`sorted_desc`.
        top_p: Nucleus mass in (0, 1].

    Returns:
        ``(last, cdf)``: int64 ``(rows, 1)`` and float64 ``(rows, vocab)`` cumulative sums.
    """
    cdf = desc.double().cumsum(dim=-1)
    if top_p >= 1.0:
        # Every token, even if rounding lets the cdf touch 1.0 before the tiniest ones.
        return torch.full((desc.shape[0], 1), desc.shape[-1] - 1, dtype=torch.long,
                          device=cdf.device), cdf
    # First rank whose cumulative mass reaches top_p (binary search: the cdf is sorted).
    goal = torch.full((desc.shape[0], 1), float(top_p), dtype=torch.float64, device=cdf.device)
    last = torch.searchsorted(cdf, goal).clamp_(max=desc.shape[-1] - 1)
    return last, cdf


def nucleus_threshold(probs: torch.Tensor, top_p: float, *,
                      use_numpy: bool | None = None) -> torch.Tensor:
    """Return ``(rows, 1)``: the probability of the least likely token in each row's nucleus."""
    desc = sorted_desc(probs, use_numpy=use_numpy).to(probs.device)
    last, _ = nucleus_size(desc, top_p)
    return desc.gather(-1, last)


def sample_step(
    logits: torch.Tensor,
    u: torch.Tensor,
    temperature: float,
    top_p: float,
    *,
    use_numpy: bool | None = None,
    allowed: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose the next token of every row and return it with its raw log-probability.

    Args:
        logits: ``(rows, vocab)`` next-token logits (any float dtype; computed on in float32).
        u: ``(rows,)`` float64 uniforms in [0, 1), one per row (from the row's stream).
        temperature: ``0`` for greedy, else the divisor of the logits.
        top_p: Nucleus mass in (0, 1].
        use_numpy: Sort with numpy; default when the logits are on the CPU (the CPU path
            also takes a data-dependent branch for exact ties, which graphs cannot).
        allowed: Optional ``(rows, vocab)`` boolean mask (token healing): the choice is made
            from the model's distribution restricted to the allowed tokens and renormalised
            over them (greedy: the most likely allowed token), then temperature and the
            nucleus apply as usual. Every row must allow at least one token. The returned
            log-probs stay those of the unrestricted raw model.

    Returns:
        ``(tokens, logprobs)``: int64 ``(rows,)`` tokens and float32 ``(rows,)`` log-probs of
        those tokens under ``log_softmax(logits)`` (temperature 1, no nucleus, no healing
        mask), which is what ranking by mean/sum log-prob uses.
    """
    logits = logits.float()
    if use_numpy is None:
        use_numpy = logits.device.type == "cpu"
    raw_lse = torch.logsumexp(logits, dim=-1)
    choice = logits if allowed is None else logits.masked_fill(~allowed, float("-inf"))
    if temperature == 0:
        tokens = choice.argmax(dim=-1)
    else:
        probs = torch.softmax(choice / temperature, dim=-1)
        neg = sorted_neg(probs, use_numpy=use_numpy).to(probs.device)
        desc = -neg
        last, cdf = nucleus_size(desc, top_p)
        mass = cdf.gather(-1, last)                                   # nucleus mass (rows, 1)
        # Strictly below the mass: u * mass may round up to it when u is within 2**-53 of 1.
        target = torch.minimum(u.to(cdf.device, torch.float64).unsqueeze(-1) * mass,
                               torch.nextafter(mass, torch.zeros_like(mass)))
        rank = torch.searchsorted(cdf, target, right=True)
        rank = torch.minimum(rank, last)
        value = desc.gather(-1, rank)                                 # chosen probability
        eq = probs == value
        tokens = eq.int().argmax(dim=-1)                              # first token with it
        # Exact ties: ranks [first, first + m) share the value; rank maps to the
        # (rank - first)-th tied token in vocabulary order, so each keeps its probability.
        first = torch.searchsorted(neg, -value).squeeze(-1)          # ranks with more mass
        offset = rank.squeeze(-1) - first
        if use_numpy:
            tied = torch.nonzero(offset > 0).flatten()
            if tied.numel():
                occ = eq[tied].int().cumsum(dim=-1)
                tokens[tied] = (occ == offset[tied, None] + 1).int().argmax(dim=-1)
        else:
            occ = eq.int().cumsum(dim=-1)
            tokens = ((occ == offset.unsqueeze(-1) + 1) & eq).int().argmax(dim=-1)
    logprobs = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - raw_lse
    return tokens, logprobs


def nucleus_distribution(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Return the exact sampling distribution of one row (reference for tests and docs).

    Computed in float64 with a full sort, independently of :func:`sample_step`'s fast path.

    Args:
        logits: ``(vocab,)`` logits.
        temperature: > 0.
        top_p: Nucleus mass.

    Returns:
        ``(vocab,)`` float64 probabilities, zero outside the nucleus, summing to 1.
    """
    p = torch.softmax(logits.double() / temperature, dim=-1)
    order = torch.argsort(p, descending=True, stable=True)
    cum = p[order].cumsum(0)
    k = int((cum < top_p).sum().item()) + 1
    keep = torch.zeros_like(p, dtype=torch.bool)
    keep[order[: min(k, p.numel())]] = True
    q = torch.where(keep, p, torch.zeros_like(p))
    return q / q.sum()


def draw_margin(logits: torch.Tensor, u: float, temperature: float, top_p: float, *,
                allowed: torch.Tensor | None = None) -> float:
    """Return how close one draw of :func:`sample_step` is to choosing another token.

    The draw compares the target ``u * nucleus_mass`` with the nucleus cdf, ranks tokens by
    probability, and sizes the nucleus by ``top_p``. Logits that differ only by floating-point
    rounding (the same row computed in batches of other sizes: about 1e-6 in float32 on a
    CPU) can change the chosen token only where one of these comparisons is that close. This
    returns the smallest of them, in probability mass (float64): the target's distance to the
    chosen rank's two cdf boundaries, the chosen token's probability gap to its neighbours in
    rank, and the distance of the cdf at the nucleus' last two ranks to ``top_p``. Greedy
    (``temperature == 0``): the gap between the two largest logits.

    It is how the tests (and anyone comparing two runs) tell a near-tie from a real
    difference: see "Determinism" in :mod:`~codexlab.sampling.engine`.

    Args:
        logits: ``(vocab,)`` next-token logits of one row.
        u: That step's uniform of the row's stream (:func:`~codexlab.sampling.rng.batch_uniforms`).
        temperature: As in :func:`sample_step`.
        top_p: As in :func:`sample_step`.
        allowed: Optional ``(vocab,)`` token-healing mask, as in :func:`sample_step`.
    """
    x = logits.detach().double().flatten()
    if allowed is not None:
        x = x.masked_fill(~allowed.flatten(), float("-inf"))
    if temperature == 0:
        top = torch.topk(x, 2).values
        return float(top[0] - top[1])
    desc = torch.sort(torch.softmax(x / temperature, dim=-1), descending=True).values
    cdf = desc.cumsum(0)
    V = int(desc.numel())
    last = V - 1 if top_p >= 1.0 else min(int(torch.searchsorted(
        cdf, torch.tensor([float(top_p)], dtype=torch.float64))[0]), V - 1)
    mass = float(cdf[last])
    target = float(u) * mass
    k = min(int(torch.searchsorted(cdf, torch.tensor([target], dtype=torch.float64),
                                   right=True)[0]), last)
    gaps = [abs(target - float(cdf[k]))]
    if k > 0:
        gaps += [abs(target - float(cdf[k - 1])), float(desc[k - 1] - desc[k])]
    if k + 1 < V:
        gaps.append(float(desc[k] - desc[k + 1]))
    if top_p < 1.0:
        gaps.append(abs(float(cdf[last]) - top_p))
        if last > 0:
            gaps.append(abs(float(cdf[last - 1]) - top_p))
    return min(gaps)
