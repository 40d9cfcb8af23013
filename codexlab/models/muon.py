"""Muon with its Newton–Schulz iteration in a chosen precision (float32 on CPUs without bf16).

What it is for: ``torch.optim.Muon`` (PyTorch >= 2.9) always runs its Newton–Schulz
orthogonalisation in bfloat16. That is right on a GPU, but on a CPU without native bf16
matrix instructions (AVX2 only: no AVX-512 BF16, no AMX) PyTorch emulates bf16 matrix
products, and the optimizer step alone then takes most of a training step. Measured on the
project's 2-core AVX2 VM (codex-mini-4.7m, two threads): one Muon step over its 42 hidden
matrices took 13.3 s, against 2.8 s for the forward + backward of a batch of 8 x 512 tokens
and 0.42 s with the iteration in float32 (``benchmarks/bench_muon_cpu.py``,
``benchmarks/results/muon_cpu.txt``). :class:`MuonNS` is the same optimizer (same
hyper-parameters, same state, so a state dict moves between the two) whose Newton–Schulz runs
in a dtype the caller names; :func:`codexlab.models.training.train` uses it with float32 on
such CPUs and keeps ``torch.optim.Muon`` everywhere else.

What it is not for: a new optimizer. The update is Keller Jordan's Muon as PyTorch implements
it (momentum, Nesterov, quintic Newton–Schulz with coefficients (3.4445, -4.775, 2.0315),
decoupled weight decay, the ``adjust_lr_fn`` rules); only the precision of the iteration
changes. Written here because PyTorch's optimizer has no precision setting.
"""

from __future__ import annotations

import math

import torch


def newton_schulz(update: torch.Tensor, coefficients: tuple[float, float, float], steps: int,
                  eps: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Approximately orthogonalise a matrix: ``U S' V^T`` with ``S'`` near 1, for ``G = U S V^T``.

    Args:
        update: ``(rows, cols)`` matrix (the momentum-corrected gradient).
        coefficients: ``(a, b, c)`` of the quintic iteration ``X <- a X + (b A + c A^2) X`` with
            ``A = X X^T``.
        steps: Iterations (PyTorch's default 5).
        eps: Floor of the Frobenius norm the input is divided by first (spectral norm <= 1).
        dtype: Precision of the iteration.

    Returns:
        A ``(rows, cols)`` tensor of ``dtype``; the input is not modified.

    Note:
        Source: Jordan et al., "Muon: An optimizer for hidden layers in neural networks"
        (2024), as implemented by ``torch.optim.Muon`` (a tall matrix is transposed so the
        Gram matrix is the smaller one).
    """
    a, b, c = coefficients
    x = update.to(dtype)
    tall = update.size(0) > update.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.addmm(x, poly, x, beta=a)
    return x.T if tall else x


def adjusted_lr(lr: float, rule: str | None, shape: torch.Size) -> float:
    """Return Muon's learning rate for an ``(A, B)`` weight (``torch.optim.Muon``'s rules).

    Args:
        lr: The param group's learning rate.
        rule: ``None``/``"original"``: ``lr * sqrt(max(1, A / B))``; ``"match_rms_adamw"``:
            ``lr * 0.2 * sqrt(max(A, B))`` (Liu et al. 2025, "Muon is scalable for LLM
            training": the update's RMS matches AdamW's, so AdamW learning rates carry over);
            anything else: ``lr``.
        shape: The weight's shape ``(A, B)``.

    Returns:
        The learning rate the orthogonalised update is applied with.
    """
    rows, cols = shape[:2]
    if rule is None or rule == "original":
        return lr * math.sqrt(max(1.0, rows / cols))
    if rule == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


class MuonNS(torch.optim.Muon):
    """``torch.optim.Muon`` with the Newton–Schulz iteration in ``ns_dtype``.

    Args:
        params: 2-D parameters (hidden matrices), as for ``torch.optim.Muon``.
        ns_dtype: Precision of the Newton–Schulz iteration (keyword only; default float32).
            With ``torch.bfloat16``, fp32 parameters and Nesterov momentum (the training's
            setting) the steps equal ``torch.optim.Muon``'s bit for bit.
        **kwargs: ``lr``, ``weight_decay``, ``momentum``, ``nesterov``, ``ns_coefficients``,
            ``eps``, ``ns_steps``, ``adjust_lr_fn``: as for ``torch.optim.Muon``.

    Raises:
        ValueError: for an invalid hyper-parameter (``torch.optim.Muon``'s checks, plus
            ``ns_steps`` outside 1..99 or ``ns_coefficients`` not three numbers, which PyTorch
            checks only at ``step``), or a parameter that is not a 2-D matrix (those go to
            AdamW).
        RuntimeError: at ``step``, before any parameter changes, for complex parameters or
            sparse gradients.
    """

    def __init__(self, params, *, ns_dtype: torch.dtype = torch.float32, **kwargs) -> None:
        super().__init__(params, **kwargs)
        for group in self.param_groups:
            if not 0 < group["ns_steps"] < 100:
                raise ValueError(f"ns_steps must be in 1..99, got {group['ns_steps']!r}")
            if len(group["ns_coefficients"]) != 3:
                raise ValueError(f"ns_coefficients must be three numbers (a, b, c), got "
                                 f"{group['ns_coefficients']!r}")
        self.ns_dtype = ns_dtype

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimisation step (same state and update as ``torch.optim.Muon``).

        Args:
            closure: Optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        todo = [(group, p) for group in self.param_groups for p in group["params"]
                if p.grad is not None]
        for _, p in todo:  # refuse before anything changes
            if torch.is_complex(p):
                raise RuntimeError("Muon does not support complex parameters")
            if p.grad.is_sparse:
                raise RuntimeError("Muon does not support sparse gradients")
        for group, p in todo:
            lr, decay, momentum = group["lr"], group["weight_decay"], group["momentum"]
            grad = p.grad
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(
                    grad, memory_format=torch.preserve_format)
            buf = state["momentum_buffer"]
            buf.lerp_(grad, 1 - momentum)
            update = grad.lerp(buf, momentum) if group["nesterov"] else buf
            ortho = newton_schulz(update, group["ns_coefficients"], group["ns_steps"],
                                  group["eps"], self.ns_dtype)
            p.mul_(1 - lr * decay)
            p.add_(ortho.to(p.dtype), alpha=-adjusted_lr(lr, group["adjust_lr_fn"], p.shape))
        return loss
