"""Measure and write HumanEval pass@k of each built-in model into its model card.

Two sources:

* ``--mode quick|paper``: the compact per-sample results of a figure run
  (``data/results/<mode>/``), read as they are.
* ``--measure``: the card protocol of the model-family issue. Every built-in model is sampled
  at T=0.8 for pass@100 (``--n``, default 100 samples per task) and at T=0.2 for pass@1
  (``--n-low``, default 20: pass@1 is a mean and needs fewer), with the paper's settings
  (top_p 0.95, max_new_tokens 300, the Codex stop sequences, the paper preset's seed),
  executed in the sandbox, and exported to ``data/results/cards/`` (compact, no completion
  text). The sets live in the run store under the same protocol as paper mode, so a later
  ``make figures MODE=paper`` reuses these samples and draws only the missing indices.
  Resumable: kill and rerun, only what is missing is done.

Then pass@1 at the lower temperature and pass@k (largest k the run's n allows, up to 100)
at the higher one, with bootstrap intervals and the number of tasks solved, replace the
``humaneval`` entry of ``model_card.json`` (and the rendered README) of every built-in model
found, with the weights fingerprint they were measured on.

Usage:
    ``python scripts/record_humaneval_in_cards.py --mode quick``
    ``CODEXLAB_ALLOW_CODE_EXEC=1 python scripts/record_humaneval_in_cards.py --measure``
    ``CODEXLAB_ALLOW_CODE_EXEC=1 python scripts/record_humaneval_in_cards.py --measure --variant s``
    ``... --measure --store results/gpu-cards.sqlite`` (samples drawn on a GPU machine by
    ``scripts/gpu_train.sh``: only executed here)
    ``... --measure --variant s --models codex-mini-s-0.2m`` (one model; the committed rows of
    the variant's other shipped models are kept in the export)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from codexlab.config import FigureConfig, card_configs, card_results_dir, figure_config
from codexlab.metrics import bootstrap_pass_at_k
from codexlab.models import builtin_models
from codexlab.models.card import read_model_card, write_model_card
from codexlab.pipeline import (
    export_compact,
    has_compact_results,
    load_results,
    read_compact,
    run_grid,
)
from codexlab.sampling.runner import weights_fingerprint

#: The repository root (the card's source paths are written relative to it).
REPO = Path(__file__).resolve().parents[1]

#: Where ``--measure`` exports a variant's compact table (committed with the cards it feeds).
cards_dir = card_results_dir


def record(df, low: FigureConfig, high: FigureConfig, results_dir: Path, source: str,
           models: dict[str, Path] | None = None) -> None:
    """Write pass@1 at ``low``'s temperature and pass@k at ``high``'s into every card.

    ``results_dir``: the committed folder ``df`` was read from; the card names it (relative to
    the repository) in ``humaneval.results_dir``, which
    :func:`codexlab.pipeline.card_results` compares exactly before it re-plots those rows.
    ``source``: a line for readers (protocol, preset). ``models`` maps name -> model folder
    (default: the shipped family).
    """
    t_low, t_high = low.scaling_temperatures[0], high.scaling_temperatures[1]
    big = min(100, high.n)
    if models is None:
        models = builtin_models(variant=low.variant)
    for name, path in models.items():
        sub = df[df["model"].astype(str).map(lambda m: Path(m).name) == name]
        if sub.empty:
            continue
        entry: dict = {"source": f"{source} ({sub['task_id'].nunique()} tasks, top_p="
                                 f"{high.top_p}, max_new_tokens={high.max_new_tokens}, "
                                 f"seed={high.seed})",
                         "results_dir": results_dir.relative_to(REPO).as_posix()}
        for t, k in ((t_low, 1), (t_high, big)):
            g = sub[sub["temperature"] == t].groupby("task_id")["passed"].agg(["count", "sum"])
            if g.empty:
                continue
            est, lo, hi = bootstrap_pass_at_k(g["count"], g["sum"].astype(int), k,
                                              seed=high.seed)
            entry[f"pass@{k}_T{t}"] = {"value": est, "ci95": [lo, hi], "n": int(g["count"].min()),
                                       "tasks_solved": int((g["sum"] > 0).sum())}
            # What the samples did, e.g. how many do not even parse: the first thing to look
            # at when every pass@k is zero.
            counts = sub[sub["temperature"] == t]["status"].value_counts()
            entry[f"statuses_T{t}"] = {str(k_): int(v) for k_, v in sorted(counts.items())}
        if f"pass@1_T{t_low}" in entry:
            entry["pass@1"] = entry[f"pass@1_T{t_low}"]["value"]
        entry["pass@100"] = (entry[f"pass@{big}_T{t_high}"]["value"]
                             if big == 100 and f"pass@{big}_T{t_high}" in entry else None)
        entry["note"] = ("measured" if big == 100 else
                         f"pass@100 needs n >= 100 samples per task; this run has n={high.n}, "
                         f"so pass@{big} at T={t_high} is reported instead")
        # The weights the numbers describe; replaces (never merges with) an older entry.
        entry["weights"] = weights_fingerprint(str(path))
        card = read_model_card(path)
        card["humaneval"] = entry
        write_model_card(path, card)
        print(name, {k: v for k, v in entry.items() if k.startswith("pass@")})


def with_committed_rows(df: Any, out_dir: Path, others: list[str]) -> Any:
    """Return ``df`` plus the rows of the models ``others`` already exported to ``out_dir``.

    Rows of any other model in ``out_dir`` (one no longer shipped, or one in ``df``) are left
    out. ``df``: a DataFrame of per-sample results (:data:`codexlab.pipeline.COMPACT_COLUMNS`).
    """
    import pandas as pd

    if not others or not has_compact_results(out_dir):
        return df
    old = read_compact(out_dir)
    return pd.concat([old[old["model"].isin(others)], df], ignore_index=True)


def measure(n: int, n_low: int, sample_workers: int, variant: str = "",
            store: str = "", models: tuple[str, ...] = ()) -> tuple[FigureConfig, FigureConfig]:
    """Sample and execute the card protocol (T=0.8 first), export it to :func:`cards_dir`.

    ``store``: the run store to use (e.g. the one ``scripts/gpu_train.sh --unpack`` wrote from
    the GPU machine's samples); sets it already holds are executed, not sampled again.
    ``models``: measure only these built-in models; the export keeps the committed rows of
    the variant's other shipped models (rows of models no longer shipped are dropped).

    Raises:
        ValueError: A name in ``models`` is not a shipped model of ``variant``.
    """
    import dataclasses
    import json

    import pandas as pd

    shipped = builtin_models(variant=variant)
    unknown = [m for m in models if m not in shipped]
    if unknown:
        raise ValueError(f"--models {' '.join(unknown)}: not a shipped "
                         f"{'codex-' + variant + ' ' if variant else ''}model; choose from "
                         f"{', '.join(shipped) or '(none in data/models)'}"
                         f"{'' if variant else ' (Codex-S names need --variant s)'}")
    low, high = card_configs(n, n_low, sample_workers, variant, store, models=tuple(models))
    out_dir = cards_dir(variant)
    for cfg in (high, low):
        run_grid(cfg, stages=("sample", "execute"))
    df = pd.concat([load_results(high, source="store"), load_results(low, source="store")],
                   ignore_index=True)
    if models:
        # Measuring one model must not drop the others' committed per-sample rows: their
        # sets are usually not in this store (another session, another machine).
        df = with_committed_rows(df, out_dir, [m for m in shipped if m not in models])
        # models.csv then covers every shipped model of the variant, smallest first.
        high = dataclasses.replace(high, models=())
        low = dataclasses.replace(low, models=())
    export_compact(high, df=df, out_dir=out_dir)
    meta_path = out_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["config"] = {"pass@1": low.to_dict(), f"pass@{min(100, n)}": high.to_dict()}
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return low, high


def main(argv: list[str] | None = None) -> None:
    """Measure (optionally), then update the cards (``argv``: the arguments, default sys's)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="quick", choices=["quick", "paper"],
                    help="read this figure run's compact results (without --measure)")
    ap.add_argument("--measure", action="store_true",
                    help="sample + execute the card protocol first (resumable)")
    ap.add_argument("--n", type=int, default=100,
                    help="samples per task at T=0.8 with --measure (pass@100 needs 100)")
    ap.add_argument("--n-low", type=int, default=20,
                    help="samples per task at T=0.2 with --measure (for pass@1)")
    ap.add_argument("--sample-workers", type=int, default=2,
                    help="(model, T) sets sampled at once with --measure")
    ap.add_argument("--from-cards", action="store_true",
                    help="re-record from data/results/cards/ without sampling anything")
    ap.add_argument("--variant", default="", choices=["", "s", "d"],
                    help="which shipped models: '' the base family (default), 's' Codex-S "
                         "(codex-mini-s-*); results go to data/results/cards/codex-<variant>/")
    ap.add_argument("--store", default="",
                    help="run store for --measure (default: the results directory's), e.g. "
                         "results/gpu-cards.sqlite from scripts/gpu_train.sh --unpack")
    ap.add_argument("--models", nargs="+", default=[], metavar="NAME",
                    help="with --measure: only these shipped models (e.g. codex-mini-s-0.2m); "
                         "the other models' committed rows stay in the export")
    args = ap.parse_args(argv)
    if args.models and not args.measure:
        ap.error("--models needs --measure (without it every shipped model is re-recorded)")
    if args.models and (args.n, args.n_low) != (100, 20):
        # The kept rows of the other models were measured with the card protocol's n.
        ap.error("--models keeps the other models' committed rows, measured with --n 100 "
                 "--n-low 20: measure with those (or every model, without --models)")
    if args.measure or args.from_cards:
        if args.measure:
            try:
                low, high = measure(args.n, args.n_low, args.sample_workers, args.variant,
                                    args.store, tuple(args.models))
            except ValueError as exc:
                ap.error(str(exc))
        else:
            low, high = card_configs(args.n, args.n_low, variant=args.variant)
        where = cards_dir(args.variant)
        # With --models only their cards are rewritten: the others' entries (and the weights
        # they name) stay as their own measurement left them.
        shipped = builtin_models(variant=args.variant)
        record(read_compact(where), low, high, where,
               f"{where.relative_to(REPO).as_posix()}/ (card protocol: paper settings; "
               "n per task below)",
               models={m: shipped[m] for m in args.models} if args.models else None)
    else:
        cfg = figure_config(args.mode)
        record(load_results(cfg, source="compact"), cfg, cfg, cfg.compact_results_dir(),
               f"data/results/{args.mode}/ ({args.mode} preset)")


if __name__ == "__main__":
    main()
