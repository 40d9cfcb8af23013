"""Benchmark: Muon's optimizer step on a CPU, Newton-Schulz in bf16 (PyTorch) against fp32.

``torch.optim.Muon`` runs its Newton-Schulz iteration in bfloat16. On a CPU without native bf16
(AVX2 only) PyTorch emulates those matrix products, and the step becomes most of a training
step. This script measures, in one run, on the hidden matrices of one codex-mini size with
fixed random gradients:

* the reference: one forward + backward of a training batch (``batch x seq_len`` tokens);
* ``torch.optim.Muon`` (bf16 iteration);
* :class:`codexlab.models.muon.MuonNS` with ``ns_dtype=float32`` (what ``codexlab train`` uses
  on such CPUs).

It prints the median seconds of each (after one warm-up call), the optimizer steps as a ratio
of the forward + backward, and the speed-up of fp32 over bf16 (of a whole training step: an
estimate from these parts; the cards of ``codexlab train`` record measured tokens/s). On a CPU with native bf16 the two are close and the
training keeps PyTorch's optimizer.

Usage: ``python benchmarks/bench_muon_cpu.py [--size codex-mini-4.7m] [--threads 2] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def _median_seconds(fn, rounds: int) -> float:
    fn()  # warm-up (allocations, oneDNN kernels)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    from transformers import LlamaForCausalLM

    from codexlab.models.configs import get_size, llama_config
    from codexlab.models.muon import MuonNS
    from codexlab.models.training import cpu_has_fast_bf16

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="codex-mini-4.7m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=512)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vocab = 8192  # codex-mini tokenizer v2
    model = LlamaForCausalLM(llama_config(get_size(args.size), vocab, 0))
    emb = {id(model.get_input_embeddings().weight)}
    matrices = [p for p in model.parameters() if p.dim() >= 2 and id(p) not in emb]
    x = torch.randint(0, vocab, (args.batch, args.seq_len + 1))

    def fwd_bwd() -> None:
        logits = model(input_ids=x[:, :-1], use_cache=False).logits
        F.cross_entropy(logits.float().reshape(-1, logits.size(-1)),
                        x[:, 1:].reshape(-1)).backward()
        model.zero_grad(set_to_none=False)

    grads = [torch.randn_like(p) for p in matrices]
    kwargs = dict(lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                  adjust_lr_fn="match_rms_adamw")

    def stepper(opt):
        def step() -> None:
            for p, g in zip(matrices, grads, strict=True):
                p.grad = g
            opt.step()
        return step

    ref = _median_seconds(fwd_bwd, args.rounds)
    bf16 = _median_seconds(stepper(torch.optim.Muon(matrices, **kwargs)), args.rounds)
    fp32 = _median_seconds(stepper(MuonNS(matrices, ns_dtype=torch.float32, **kwargs)),
                           args.rounds)
    n = sum(p.numel() for p in matrices)
    print(f"{args.size}: {len(matrices)} hidden matrices, {n:,} parameters; batch "
          f"{args.batch} x {args.seq_len}; {args.threads} threads; torch {torch.__version__}; "
          f"native bf16: {cpu_has_fast_bf16()}")
    print(f"forward + backward (reference)      {ref:8.3f} s")
    print(f"torch.optim.Muon step (NS in bf16)  {bf16:8.3f} s  = {bf16 / ref:5.2f} x reference")
    print(f"MuonNS step (NS in fp32)            {fp32:8.3f} s  = {fp32 / ref:5.2f} x reference")
    # The training step's figure adds parts timed apart: it leaves out AdamW on the
    # embeddings, clipping and data loading (small next to these), so it is an estimate;
    # `codexlab train`'s cards record the measured tokens/s.
    print(f"speed-up of the optimizer step: {bf16 / fp32:.1f}x; of a training step "
          f"(forward + backward + Muon, estimated from the parts): "
          f"{(ref + bf16) / (ref + fp32):.1f}x  (medians of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
