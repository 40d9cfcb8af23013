"""MuonNS: torch.optim.Muon's update with the Newton-Schulz iteration in a chosen precision."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from codexlab.models.muon import MuonNS, adjusted_lr, newton_schulz

SETTINGS = dict(lr=0.02, weight_decay=0.1, momentum=0.95, nesterov=True,
                adjust_lr_fn="match_rms_adamw")


def _params(seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    # A wide, a tall and a square matrix: the iteration transposes tall ones.
    return [torch.nn.Parameter(torch.randn(shape, generator=g)) for shape in
            ((16, 40), (48, 12), (24, 24))]


def _grads(step: int, params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(p.shape, generator=g) for p in params]


def _run(opt_factory, steps: int = 4, seed: int = 0) -> list[torch.Tensor]:
    params = _params(seed)
    opt = opt_factory(params)
    for t in range(steps):
        for p, g in zip(params, _grads(t, params), strict=True):
            p.grad = g.clone()
        opt.step()
    return [p.detach().clone() for p in params]


def test_bf16_iteration_reproduces_torch_muon_bit_for_bit() -> None:
    """Same hyper-parameters, state and update rule as PyTorch's Muon: only the dtype differs."""
    ours = _run(lambda ps: MuonNS(ps, ns_dtype=torch.bfloat16, **SETTINGS))
    ref = _run(lambda ps: torch.optim.Muon(ps, **SETTINGS))
    for a, b in zip(ours, ref, strict=True):
        assert torch.equal(a, b)


def _reference_step(w: torch.Tensor, g: torch.Tensor, buf: torch.Tensor, lr: float,
                    decay: float, mu: float, nesterov: bool, rule: str | None) -> None:
    """Muon in float64 from its definition (Jordan et al. 2024; Liu et al. 2025 lr rule)."""
    buf.mul_(mu).add_(g, alpha=1 - mu)            # B <- mu B + (1 - mu) G
    u = g * (1 - mu) + buf * mu if nesterov else buf.clone()  # Nesterov: G + mu (B - G)
    x = u.T if u.shape[0] > u.shape[1] else u
    x = x / x.norm()
    a, b, c = 3.4445, -4.775, 2.0315
    for _ in range(5):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    o = x.T if u.shape[0] > u.shape[1] else x
    rows, cols = w.shape
    scale = 0.2 * math.sqrt(max(rows, cols)) if rule == "match_rms_adamw" else \
        math.sqrt(max(1.0, rows / cols))
    w.mul_(1 - lr * decay)
    w.sub_(lr * scale * o)


@pytest.mark.parametrize("nesterov, rule", [(True, "match_rms_adamw"), (False, None)])
def test_fp32_iteration_matches_a_float64_reference(nesterov: bool, rule: str | None) -> None:
    settings = dict(SETTINGS, nesterov=nesterov, adjust_lr_fn=rule)
    ours = _run(lambda ps: MuonNS(ps, ns_dtype=torch.float32, **settings))
    ws = [p.detach().double().clone() for p in _params(0)]
    bufs = [torch.zeros_like(w) for w in ws]
    for t in range(4):
        for w, g, b in zip(ws, _grads(t, ws), bufs, strict=True):
            _reference_step(w, g.double(), b, SETTINGS["lr"], SETTINGS["weight_decay"],
                            SETTINGS["momentum"], nesterov, rule)
    for a, w in zip(ours, ws, strict=True):
        torch.testing.assert_close(a.double(), w, rtol=0, atol=2e-5)
    # ... and bf16's rounding is visible at this scale, so the fp32 path is not bf16 in disguise.
    bf16 = _run(lambda ps: MuonNS(ps, ns_dtype=torch.bfloat16, **settings))
    assert max((b.double() - w).abs().max().item() for b, w in zip(bf16, ws, strict=True)) > 1e-4


def test_param_groups_their_current_lr_and_params_without_grad() -> None:
    """Each group's own (scheduled) lr and decay apply; a parameter without a gradient stays."""
    ps = _params(2)
    opt = MuonNS([{"params": ps[:1]}, {"params": ps[1:], "weight_decay": 0.0}],
                 ns_dtype=torch.float32, **SETTINGS)
    ws = [p.detach().double().clone() for p in ps]
    bufs = [torch.zeros_like(w) for w in ws]
    frozen = ps[2].detach().clone()
    for t in range(3):
        for gi, group in enumerate(opt.param_groups):
            group["lr"] = SETTINGS["lr"] * (t + 1) * (gi + 1)  # as a schedule would set it
        grads = _grads(t, ps)
        for p, g in zip(ps[:2], grads[:2], strict=True):
            p.grad = g.clone()
        ps[2].grad = None
        opt.step()
        for i in range(2):
            _reference_step(ws[i], grads[i].double(), bufs[i], SETTINGS["lr"] * (t + 1) * (i + 1),
                            SETTINGS["weight_decay"] if i == 0 else 0.0, SETTINGS["momentum"],
                            True, "match_rms_adamw")
    for i in range(2):
        torch.testing.assert_close(ps[i].detach().double(), ws[i], rtol=0, atol=2e-5)
    assert torch.equal(ps[2].detach(), frozen) and ps[2] not in opt.state


def _torch_muon(ps):
    return torch.optim.Muon(ps, **SETTINGS)


def _muon_ns_bf16(ps):
    return MuonNS(ps, ns_dtype=torch.bfloat16, **SETTINGS)


@pytest.mark.parametrize("first, second", [(_torch_muon, _muon_ns_bf16),
                                           (_muon_ns_bf16, _torch_muon)])
def test_a_checkpoint_of_either_optimizer_continues_in_the_other(first, second) -> None:
    """Same state keys: a state dict moves between torch.optim.Muon and MuonNS both ways."""
    params = _params(1)
    opt = first(params)
    for t in range(2):
        for p, g in zip(params, _grads(t, params), strict=True):
            p.grad = g.clone()
        opt.step()
    resumed = second([torch.nn.Parameter(p.detach().clone()) for p in params])
    resumed.load_state_dict(copy.deepcopy(opt.state_dict()))  # as a checkpoint file holds it
    new_params = resumed.param_groups[0]["params"]
    for p, q, g in zip(params, new_params, _grads(2, params), strict=True):
        p.grad, q.grad = g.clone(), g.clone()
    opt.step()
    resumed.step()
    for p, q in zip(params, new_params, strict=True):
        assert torch.equal(p, q)


def test_newton_schulz_output_is_near_orthogonal() -> None:
    x = torch.randn(32, 80, generator=torch.Generator().manual_seed(3))
    o = newton_schulz(x, (3.4445, -4.775, 2.0315), 5, 1e-7)
    assert o.dtype == torch.float32 and o.shape == x.shape
    s = torch.linalg.svdvals(o.double())
    # The quintic iteration trades exactness for speed: singular values land in ~(0.5, 1.5).
    assert 0.3 < s.min().item() and s.max().item() < 1.6


def test_adjusted_lr_rules() -> None:
    assert adjusted_lr(0.1, "match_rms_adamw", torch.Size((64, 256))) == pytest.approx(0.1 * 0.2 * 16)
    assert adjusted_lr(0.1, None, torch.Size((256, 64))) == pytest.approx(0.2)
    assert adjusted_lr(0.1, "original", torch.Size((64, 256))) == pytest.approx(0.1)


def test_bad_parameters_and_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="2D"):
        MuonNS([torch.nn.Parameter(torch.ones(4))], **SETTINGS)
    with pytest.raises(ValueError, match="ns_steps"):
        MuonNS(_params(0), ns_steps=100, **SETTINGS)
    with pytest.raises(ValueError, match="three numbers"):
        MuonNS(_params(0), ns_coefficients=(1.0, 2.0), **SETTINGS)
    with pytest.raises(TypeError):
        MuonNS(_params(0), torch.float32)  # ns_dtype is keyword-only: no silent lr mix-up
