"""Write measured HumanEval pass@k of each built-in model into its model card.

Reads the compact per-sample results of a figure run (``data/results/<mode>/``), computes
pass@1 at the lower scaling temperature and pass@k (largest k the run's n allows, up to 100)
at the higher one, with bootstrap intervals, and merges them into ``model_card.json`` (and the
rendered README) of every built-in model found in the results.

Usage: ``python scripts/record_humaneval_in_cards.py [--mode quick|paper]``
"""

from __future__ import annotations

import argparse

from codexlab.config import figure_config
from codexlab.metrics import bootstrap_pass_at_k
from codexlab.models import builtin_models, update_model_card
from codexlab.pipeline import load_results


def main() -> None:
    """Update the cards from the stored results of one mode."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="quick", choices=["quick", "paper"])
    args = ap.parse_args()
    cfg = figure_config(args.mode)
    df = load_results(cfg, source="compact")
    t_low, t_high = cfg.scaling_temperatures
    models = builtin_models()
    for name, path in models.items():
        sub = df[df["model"].astype(str).str.endswith(name)]
        if sub.empty:
            continue
        entry: dict = {"source": f"data/results/{args.mode}/ ({args.mode} preset, all "
                                 f"{sub['task_id'].nunique()} tasks, top_p={cfg.top_p}, "
                                 f"max_new_tokens={cfg.max_new_tokens})"}
        for t, k in ((t_low, 1), (t_high, min(100, cfg.n))):
            g = sub[sub["temperature"] == t].groupby("task_id")["passed"].agg(["count", "sum"])
            est, lo, hi = bootstrap_pass_at_k(g["count"], g["sum"].astype(int), k, seed=cfg.seed)
            entry[f"pass@{k}_T{t}"] = {"value": est, "ci95": [lo, hi], "n": int(g["count"].min()),
                                       "tasks_solved": int((g["sum"] > 0).sum())}
        entry["pass@1"] = entry[f"pass@1_T{t_low}"]["value"]
        big = min(100, cfg.n)
        entry["pass@100"] = entry[f"pass@{big}_T{t_high}"]["value"] if big == 100 else None
        entry["note"] = ("measured" if big == 100 else
                         f"pass@100 needs n >= 100 samples per task; this run has n={cfg.n}, "
                         f"so pass@{big} at T={t_high} is reported instead")
        update_model_card(path, humaneval=entry)
        print(name, {k: v for k, v in entry.items() if k.startswith("pass@")})


if __name__ == "__main__":
    main()
