"""Benchmark: requests in flight vs throughput of the openai backend against a real server.

Starts llama.cpp's OpenAI-compatible server on loopback for a built-in model
(:func:`codexlab.serving.llama_cpp_server`), then samples the same work (tasks × n samples,
T=0.8, top_p 0.95, the Codex stops) through ``codexlab``'s openai backend with 1, 2, 4, ...
requests in flight, each into a fresh store, and prints samples/s and tokens/s with the ratio
to one request in flight (the reference, measured in the same run). The local engine
(``--backend hf``) on the same work is printed too, for scale.

What to expect: llama-cpp-python's server decodes one request at a time (one sequence
slot) and reuses the KV cache of the prompt it served last, so more requests in flight only
interleave prompts (losing that reuse) and compete with the server for the cores: on the
2-core VM 4 in flight gave 0.78x the samples/s of 1. A batching server (vLLM, SGLang, TGI)
turns in-flight requests into a bigger batch, and there the curve climbs until the GPU is
full. The script is the same for both: pass
``--base-url``/``--served-model`` to measure a server started elsewhere.

Usage (the committed results came from this on the 2-core CPU VM)::

    python benchmarks/bench_openai_backend.py --tasks 0-3 --n 4 --in-flight 1,2,4,8 \\
        --out benchmarks/results/openai_backend_cpu.txt
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codexlab.problems import load_humaneval, select_tasks  # noqa: E402
from codexlab.sampling import SamplingConfig, sample_to_store  # noqa: E402
from codexlab.sampling.backends import BackendConfig  # noqa: E402
from codexlab.store import Store  # noqa: E402


def measure(model: str, problems: dict, cfg: SamplingConfig, backend: BackendConfig | None
            ) -> dict:
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "s.sqlite")
        t0 = time.perf_counter()
        set_id = sample_to_store(model, problems, cfg, store, progress=False, backend=backend)
        secs = time.perf_counter() - t0
        rows = store.samples(set_id)
        store.close()
    tokens = sum(r["n_tokens"] for r in rows)
    return {"samples": len(rows), "tokens": tokens, "seconds": secs,
            "samples_per_s": len(rows) / secs, "tokens_per_s": tokens / secs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None,
                    help="default: the largest shipped built-in model")
    ap.add_argument("--tasks", default="0-3")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--in-flight", default="1,2,4,8")
    ap.add_argument("--threads", type=int, default=1, help="server threads (and local torch)")
    ap.add_argument("--base-url", default="", help="measure this server instead of starting one")
    ap.add_argument("--served-model", default="")
    ap.add_argument("--extra-body", default="", help="JSON; default: llama.cpp's Codex fields")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if args.model is None:
        from codexlab.models import builtin_model_names

        args.model = builtin_model_names()[-1]

    import torch

    from codexlab.sampling.backends import parse_extra_body
    from codexlab.serving import LLAMA_CPP_CODEX_FIELDS, llama_cpp_server

    torch.set_num_threads(args.threads)
    problems = select_tasks(load_humaneval(), args.tasks)
    cfg = SamplingConfig(temperature=0.8, top_p=0.95, n=args.n,
                         max_new_tokens=args.max_new_tokens, token_healing=0)
    extra = parse_extra_body(args.extra_body) if args.extra_body else (
        {} if args.base_url else LLAMA_CPP_CODEX_FIELDS)
    lines = [f"# bench_openai_backend: model={args.model} tasks={args.tasks} ({len(problems)}) "
             f"n={args.n} max_new_tokens={args.max_new_tokens} T=0.8 top_p=0.95 "
             f"threads={args.threads} machine={platform.machine()} "
             f"cpus={__import__('os').cpu_count()} python={platform.python_version()}"]
    ctx = (contextlib.nullcontext(None) if args.base_url
           else llama_cpp_server(args.model, threads=args.threads))
    with ctx as srv:
        base = args.base_url or srv.base_url
        served = args.served_model or (srv.served_model if srv else args.model)
        lines.append(f"# server: {base} serving {served!r}"
                     + ("" if args.base_url else " (llama.cpp via llama-cpp-python, 1 slot)"))
        # Warm-up request (model load, first-prompt caches) outside the timing.
        measure(args.model, select_tasks(problems, "0"), cfg.replace(n=1),
                BackendConfig(name="openai", base_url=base, served_model=served,
                              extra_body=extra))
        results = []
        for k in [int(x) for x in args.in_flight.split(",")]:
            b = BackendConfig(name="openai", base_url=base, served_model=served,
                              extra_body=extra, max_in_flight=k)
            results.append((k, measure(args.model, problems, cfg, b)))
    local = measure(args.model, problems, cfg, None)
    ref = results[0][1]["samples_per_s"]
    lines.append(f"{'in_flight':>9} {'samples':>7} {'tokens':>7} {'seconds':>8} "
                 f"{'samples/s':>9} {'tokens/s':>9} {'vs_1':>6}")
    for k, r in results:
        lines.append(f"{k:>9} {r['samples']:>7} {r['tokens']:>7} {r['seconds']:>8.2f} "
                     f"{r['samples_per_s']:>9.2f} {r['tokens_per_s']:>9.1f} "
                     f"{r['samples_per_s'] / ref:>6.2f}")
    lines.append(f"{'local hf':>9} {local['samples']:>7} {local['tokens']:>7} "
                 f"{local['seconds']:>8.2f} {local['samples_per_s']:>9.2f} "
                 f"{local['tokens_per_s']:>9.1f} {local['samples_per_s'] / ref:>6.2f}")
    lines.append("# vs_1: samples/s relative to 1 request in flight, same run (the server draws "
                 "the same seeded samples at every setting); 'local hf' is the workbench's own "
                 "engine in this process on the same tasks and settings, with its own random "
                 "draws (other lengths): compare its tokens/s")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n" + json.dumps(
            {"results": {str(k): r for k, r in results}, "local_hf": local}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
