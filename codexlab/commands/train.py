"""``codexlab train``: build the corpus and train sizes of the built-in codex-mini family.

Examples::

    codexlab train --prepare-only                      # corpus + tokenizer + token files
    codexlab train --size codex-mini-0.2m --time-budget 300 --out results/models/m   # new folder
    codexlab train --size codex-mini-1.2m --resume --time-budget 600   # continue saved weights
    codexlab train --family --budget-scale 1.0 --overwrite   # every size anew, preset minutes
    codexlab train --family --time-budget 120 --resume  # every size, 120 s more each
    codexlab train --prepare-only --stage functions --tokenizer data/tokenizer/codex-mini-v2.json
                                                       # corpus with the shipped BPE + function set
    codexlab train --size codex-mini-1.2m --stage functions --init codex-mini-1.2m \
        --out results/models/codex-mini-s-1.2m --time-budget 2400   # Codex-S analogue
    codexlab train --size codex-mini-1.2m --stage docstrings --init codex-mini-1.2m \
        --out results/models/codex-mini-d-1.2m --time-budget 900    # Codex-D analogue
    (--out must be a new folder: the shipped data/models/codex-mini-s-1.2m is refused)
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` sub-command."""
    p = sub.add_parser(
        "train",
        help="train the built-in codex-mini model family (corpus, tokenizer, models)",
        description="Build the decontaminated Python corpus and tokenizer (cached), train one "
                    "size or the whole family, save HF-format models with cards under "
                    "data/models/, and refresh the loss-scaling data (Fig 4).",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--size", help="one size, e.g. codex-mini-1.2m (see --list)")
    what.add_argument("--family", action="store_true", help="train every size, small to large")
    what.add_argument("--list", action="store_true", help="list the sizes and exit")
    what.add_argument("--prepare-only", action="store_true",
                      help="only build the corpus cache (corpus, tokenizer, token files); with "
                           "--stage functions also the function-level set")
    what.add_argument("--scaling-only", action="store_true",
                      help="only refresh data/loss_scaling.csv + fit from the shipped cards")
    p.add_argument("--sizes", help="with --family: comma-separated subset of sizes")
    p.add_argument("--time-budget", type=float, metavar="S",
                   help="seconds of training per size (default with --family: preset minutes "
                        "x --budget-scale)")
    p.add_argument("--budget-scale", type=float, default=1.0,
                   help="with --family and no --time-budget: multiply the preset CPU minutes")
    p.add_argument("--max-tokens", type=float, help="token budget per size (e.g. 2e8)")
    p.add_argument("--stage", choices=["pretrain", "functions", "docstrings"], default="pretrain",
                   help="functions: fine-tune saved weights on standalone documented functions "
                        "mined from the training split (Codex-S analogue); docstrings: on "
                        "signature + body -> docstring (Codex-D analogue); both imply --resume")
    p.add_argument("--init", metavar="MODEL",
                   help="with --stage functions/docstrings: start from this built-in model or "
                        "folder (copied into --out first), e.g. --init codex-mini-1.2m --out "
                        "data/models/codex-mini-s-1.2m")
    p.add_argument("--resume", action="store_true",
                   help="continue from the weights already in the output folder")
    p.add_argument("--overwrite", action="store_true",
                   help="train from scratch into an output folder that already holds a model, "
                        "or with --init replace it by the copy (without this flag such a "
                        "folder is refused)")
    p.add_argument("--out", metavar="DIR", help="output folder (one size) or parent (--family); "
                                                "default data/models")
    p.add_argument("--data-dir", metavar="DIR",
                   help="corpus cache; default <results>/codex-mini-corpus")
    p.add_argument("--rebuild-data", action="store_true", help="rebuild the corpus cache")
    p.add_argument("--max-files", type=int, metavar="N",
                   help="cap the corpus at N kept files, drawn in a fixed pseudo-random order "
                        "over every package (quick runs; the GPU script's 20000)")
    p.add_argument("--tokenizer", metavar="FILE",
                   help="use this tokenizers JSON (e.g. data/tokenizer/codex-mini-v2.json) "
                        "instead of training a BPE; a cache built with another one is rebuilt")
    p.add_argument("--roots", metavar="DIR", action="append",
                   help="corpus source folder (repeatable; default: this interpreter's stdlib "
                        "and site-packages)")
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=16, help="sequences per step")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the preset's)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="auto: bf16 autocast on CUDA and on CPUs with native bf16 (AVX-512 BF16, "
                        "AMX), else fp32 (emulated bf16 is ~7-10x slower on an AVX2 CPU)")
    p.add_argument("--compile", default="auto", choices=["auto", "yes", "no"])
    p.add_argument("--final", action="store_true",
                   help="do not mark the cards provisional (a full GPU training)")
    p.add_argument("--threads", type=int,
                   help="torch CPU threads (default torch's); on a busy shared CPU, 1 thread per "
                        "process measured ~2x faster than 2 (spinning OpenMP threads)")
    p.add_argument("--optimizer", default="muon", choices=["muon", "adamw"],
                   help="muon: Muon on hidden matrices + AdamW elsewhere (default); adamw: v1")
    p.add_argument("--schedule", default="wsd", choices=["wsd", "cosine"],
                   help="learning-rate schedule (default wsd: warm-up, stable, cool-down)")
    p.add_argument("--prompt-loss-weight", type=float, default=None, metavar="W",
                   help="with --stage functions/docstrings: loss weight of context tokens "
                        "(functions: signature + docstring; docstrings: signature + body); "
                        "default 0 (masked, as Codex-S/D), 1 = plain language modelling")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a bar")
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``codexlab train``."""
    import json
    import shutil
    import sys
    from pathlib import Path

    from codexlab.models.configs import SIZES, get_size
    from codexlab.paths import DATA_DIR, models_dir

    if args.list:
        for s in SIZES.values():
            print(f"{s.name}\td_model={s.d_model}\tlayers={s.n_layers}\t"
                  f"non-embedding={s.non_embedding_params():,}\tcpu_minutes={s.cpu_minutes}")
        return 0
    if args.scaling_only:
        from codexlab.models.scaling import write_scaling_data

        print(json.dumps(write_scaling_data(), indent=2))
        return 0
    if not (args.size or args.family or args.prepare_only):
        print("codexlab train: give --size NAME, --family, --list, --prepare-only or "
              "--scaling-only", file=sys.stderr)
        return 2

    def fail(msg: str) -> int:
        print(f"codexlab train: {msg}", file=sys.stderr)
        return 2

    names: list[str] = []
    try:
        if args.size:
            names = [get_size(args.size).name]
        elif args.family:
            names = [get_size(n.strip()).name for n in args.sizes.split(",")] if args.sizes \
                else list(SIZES)
    except ValueError as exc:
        return fail(f"{exc} (`codexlab train --list` lists them)")
    # A budget of 0 would mean "no limit" further down: an unbounded job. (--max-tokens is
    # whole tokens: 0.5 would become 0.)
    for flag, value, least in (("--time-budget", args.time_budget, 0.0),
                               ("--max-tokens", args.max_tokens, 1.0),
                               ("--budget-scale", args.budget_scale, 0.0)):
        if value is not None and not (value > least if least == 0.0 else value >= least):
            return fail(f"{flag} must be {'above 0' if least == 0.0 else 'at least 1'}, "
                        f"got {value:g}")
    if args.overwrite and (args.resume or (args.stage != "pretrain" and not args.init)):
        return fail("--overwrite trains anew in place of the folder's model, --resume (and "
                    "--stage functions/docstrings without --init) continues it: give one")
    default_out = args.out is None
    if args.size:
        out_dirs = {names[0]: Path(args.out) if args.out else models_dir() / names[0]}
    else:
        out_dirs = {n: (Path(args.out) if args.out else models_dir()) / n for n in names}
    for flag, path in [("--out", d) for d in out_dirs.values()] + [
            ("--data-dir", Path(args.data_dir) if args.data_dir else None)]:
        if path is not None and path.exists() and not path.is_dir():
            return fail(f"{flag} {path} is a file; give a folder")
    if not args.prepare_only:
        for name, d in out_dirs.items():
            held = d / "config.json"
            if args.init or not held.is_file():
                continue  # --init checks its own destination below
            if not (args.resume or args.stage != "pretrain" or args.overwrite):
                return fail(f"{d} already holds a model: --resume continues it, --overwrite "
                            "trains a new one in its place, or give another --out")
            if (args.resume or args.stage != "pretrain") and (
                    other := _other_shape(held, name)):
                return fail(f"{d} holds a model of {other}")

    # Resuming must keep the models' tokenizer even when the corpus is rebuilt on another
    # machine (another site-packages would train another BPE).
    tokenizer_file = None
    if args.init:
        if args.stage == "pretrain" or not args.size:
            print("codexlab train: --init needs --size and --stage functions or docstrings",
                  file=sys.stderr)
            return 2
        from codexlab.models.registry import model_dir, resolve_model

        try:
            src = model_dir(resolve_model(args.init))
        except ValueError as exc:
            print(f"codexlab train: --init: {exc}", file=sys.stderr)
            return 2
        dst = out_dirs[names[0]]
        if src is None or not (src / "config.json").is_file():
            print(f"codexlab train: --init {args.init}: not a local model folder (give a "
                  f"built-in name or a folder with config.json)", file=sys.stderr)
            return 2
        if other := _other_shape(src / "config.json", names[0]):
            return fail(f"--init {args.init} is {other}")
        if (dst / "config.json").exists():
            if not args.overwrite:
                return fail(f"--init: {dst} already holds a model; continue it without --init, "
                            "give another --out, or --overwrite to replace it with a copy of "
                            f"{args.init}")
            # Replaced whole: a stale training_state.pt would otherwise resume the old run.
            shutil.rmtree(dst)
        dst.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if f.is_file() and f.name != "training_state.pt":
                shutil.copy2(f, dst / f.name)
    if args.stage in ("functions", "docstrings"):
        args.resume = True
    if args.resume:
        tokenizer_file = next((d / "tokenizer.json" for d in out_dirs.values()
                               if (d / "tokenizer.json").exists()), None)
    if args.tokenizer:
        given = Path(args.tokenizer)
        if not given.is_file():
            print(f"codexlab train: --tokenizer {given}: no such file", file=sys.stderr)
            return 2
        if tokenizer_file is not None:
            from codexlab.models.tokenizer import load_tokenizer

            if load_tokenizer(given).get_vocab() != load_tokenizer(tokenizer_file).get_vocab():
                print(f"codexlab train: --tokenizer {given} differs from the tokenizer of the "
                      f"model being resumed ({tokenizer_file})", file=sys.stderr)
                return 2
        tokenizer_file = given
    roots = [Path(r) for r in args.roots] if args.roots else None
    if roots and (missing := [str(r) for r in roots if not r.is_dir()]):
        print(f"codexlab train: --roots: not a folder: {', '.join(missing)}", file=sys.stderr)
        return 2

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from codexlab.models.data import default_cache_dir, prepare_data
    from codexlab.models.scaling import write_scaling_data
    from codexlab.models.training import TrainConfig, TrainingInterrupted, train

    try:
        data = prepare_data(Path(args.data_dir) if args.data_dir else default_cache_dir(),
                            roots=roots, vocab_size=args.vocab_size, max_files=args.max_files,
                            force=args.rebuild_data, progress=not args.no_progress,
                            tokenizer_file=tokenizer_file, log=True)
    except ValueError as exc:  # e.g. "corpus too small": one line, not a traceback
        return fail(f"corpus: {exc}")
    if args.stage == "functions":
        from codexlab.models.functions import prepare_functions

        prepare_functions(data, progress=not args.no_progress)
    elif args.stage == "docstrings":
        from codexlab.models.functions import prepare_docstrings

        prepare_docstrings(data, progress=not args.no_progress)
    if args.prepare_only:
        print(json.dumps(data.summary(), indent=2))
        return 0
    for name in names:
        budget = args.time_budget
        if budget is None and args.max_tokens is None:
            budget = get_size(name).cpu_minutes * 60 * args.budget_scale
        try:
            cfg = TrainConfig(
                size=name, out_dir=out_dirs[name], data_dir=data.root, seq_len=args.seq_len,
                batch_size=args.batch_size, time_budget_s=budget,
                max_tokens=int(args.max_tokens) if args.max_tokens else None, lr=args.lr,
                resume=args.resume, device=args.device, precision=args.precision,
                compile=args.compile, seed=args.seed, provisional=not args.final,
                progress=not args.no_progress,
                split="train" if args.stage == "pretrain" else args.stage,
                optimizer=args.optimizer, schedule=args.schedule,
                prompt_loss_weight=(args.prompt_loss_weight if args.prompt_loss_weight is not None
                                    else 1.0 if args.stage == "pretrain" else 0.0),
            )
        except ValueError as exc:  # a setting TrainConfig refuses: one line
            return fail(str(exc))
        try:
            card = train(cfg)
        except TrainingInterrupted as exc:
            print(f"codexlab train: {exc}", file=sys.stderr)
            return 130
        ev = card["eval"]
        print(f"{name}: held-out {ev['heldout_loss']:.4f}  HumanEval-text "
              f"{ev['humaneval_text_loss']:.4f}  tokens {card['training']['tokens_seen']:,}  "
              f"-> {out_dirs[name]}", flush=True)
    if default_out:
        # The shipped family's data files: compact corpus summary + Fig 4 points and fit.
        (DATA_DIR / "codex_mini_corpus.json").write_text(
            json.dumps(data.record(), indent=2) + "\n")
        print(json.dumps(write_scaling_data(), indent=2))
    return 0


def _other_shape(config_json: object, size: str) -> str | None:
    """Say how the model of a ``config.json`` differs from the preset ``size``, or None.

    Continuing (or fine-tuning) weights as another size would train one shape and describe
    another in its card.
    """
    import json
    from pathlib import Path

    from codexlab.models.configs import get_size

    cfg = json.loads(Path(config_json).read_text())
    want = get_size(size)
    have = (cfg.get("hidden_size"), cfg.get("num_hidden_layers"))
    if have == (want.d_model, want.n_layers):
        return None
    return (f"d_model {have[0]}, {have[1]} layers; {want.name} is d_model {want.d_model}, "
            f"{want.n_layers} layers: give the --size it was trained as")
