"""Fig 4 analogue: held-out loss vs non-embedding parameters of the family, power-law fit.

What it is for: collecting the loss points from the model cards into a tidy CSV
(``data/loss_scaling.csv``) and fitting L(N) = (N / N_c)^(-alpha) by least squares in log-log
space (the form of the Codex paper, whose fit is N_c = 5.92e7, alpha = 0.13), written next to it
as JSON. What it is not for: plotting (the scaling notebook does that from these files).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

from codexlab.paths import DATA_DIR

SCALING_CSV = DATA_DIR / "loss_scaling.csv"
SCALING_FIT = DATA_DIR / "loss_scaling_fit.json"
COLUMNS = ("model", "non_embedding_params", "total_params", "heldout_loss",
           "humaneval_text_loss", "heldout_bits_per_byte", "tokens_seen", "wall_time_s",
           "provisional")


def fit_power_law(n: Sequence[float], loss: Sequence[float]) -> dict[str, float]:
    """Fit L = (N / N_c)^(-alpha) to points by least squares on log L = -alpha (log N - log N_c).

    Returns:
        ``alpha``, ``n_c`` and ``r2`` (of the log-log fit).

    Raises:
        ValueError: with fewer than two points.
    """
    if len(n) < 2:
        raise ValueError("need at least two points to fit")
    x = [math.log(v) for v in n]
    y = [math.log(v) for v in loss]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxx = sum((a - mx) ** 2 for a in x)
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / sxx
    intercept = my - slope * mx
    alpha = -slope
    ss_res = sum((b - (intercept + slope * a)) ** 2 for a, b in zip(x, y, strict=True))
    ss_tot = sum((b - my) ** 2 for b in y)
    return {"alpha": alpha, "n_c": math.exp(intercept / alpha) if alpha else float("nan"),
            "r2": 1 - ss_res / ss_tot if ss_tot else 1.0}


def newest_family(models: dict[str, Path]) -> dict[str, Path]:
    """Return the models whose card has the highest ``family_version`` (1 when absent)."""
    from codexlab.models.card import read_model_card

    versions = {name: int(read_model_card(path).get("family_version") or 1)
                for name, path in models.items()}
    top = max(versions.values(), default=1)
    return {name: path for name, path in models.items() if versions[name] == top}


def scaling_rows(models: dict[str, Path]) -> list[dict]:
    """Return one row per model card (see :data:`COLUMNS`)."""
    from codexlab.models.card import read_model_card

    rows = []
    for name, path in models.items():
        card = read_model_card(path)
        ev, pr, tr = card.get("eval", {}), card.get("params", {}), card.get("training", {})
        rows.append({
            "model": name, "non_embedding_params": pr.get("non_embedding"),
            "total_params": pr.get("total"), "heldout_loss": ev.get("heldout_loss"),
            "humaneval_text_loss": ev.get("humaneval_text_loss"),
            "heldout_bits_per_byte": ev.get("heldout_bits_per_byte"),
            "tokens_seen": tr.get("tokens_seen"), "wall_time_s": tr.get("wall_time_s"),
            "provisional": card.get("provisional"),
        })
    return rows


def write_scaling_data(models: dict[str, Path] | None = None, csv_path: Path = SCALING_CSV,
                       fit_path: Path = SCALING_FIT, family_readme: bool = True) -> dict:
    """Write the loss points, the power-law fits and the family README; return the fit JSON.

    Args:
        models: Name -> folder; default the shipped models of the newest family version
            present (a v1 model left beside v2 ones was trained on another tokenizer and
            corpus, so its loss is not on the same scale).
        csv_path: Where the points go.
        fit_path: Where the fit JSON goes.
        family_readme: Also write ``README.md`` beside the models (their common folder).
    """
    if models is None:
        from codexlab.models import builtin_models

        models = newest_family(builtin_models())
    rows = [r for r in scaling_rows(models) if r["heldout_loss"] and r["non_embedding_params"]]
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    n = [r["non_embedding_params"] for r in rows]
    out: dict = {"form": "L(N) = (N / n_c) ** -alpha, N = non-embedding parameters",
                 "loss_unit": "nats/token (codex-mini tokenizer)",
                 "codex_paper": {"alpha": 0.13, "n_c": 5.92e7},
                 "points": len(rows), "source": "model cards under data/models"}
    if len(rows) >= 2:
        out["heldout"] = fit_power_law(n, [r["heldout_loss"] for r in rows])
        out["humaneval_text"] = fit_power_law(n, [r["humaneval_text_loss"] for r in rows])
    fit_path.write_text(json.dumps(out, indent=2) + "\n")
    if family_readme and rows:
        from codexlab.models.card import read_model_card
        from codexlab.models.registry import builtin_models

        parent = Path(next(iter(models.values()))).parent
        humaneval = {name: read_model_card(path).get("humaneval") or {}
                     for name, path in models.items()}
        variants = []
        for v in ("s", "d"):
            for name, path in builtin_models(parent, variant=v).items():
                card = read_model_card(path)
                humaneval[name] = card.get("humaneval") or {}
                variants.append({"model": name, "variant": v,
                                 "base_model": card.get("base_model", ""),
                                 "set_version": (card.get("data", {}).get("functions") or {}
                                                 ).get("version", 1),
                                 **variant_stage(card),
                                 "heldout_loss": card.get("eval", {}).get("heldout_loss"),
                                 "humaneval_text_loss": card.get("eval", {}).get(
                                     "humaneval_text_loss"),
                                 "humaneval_solution_loss": card.get("eval", {}).get(
                                     "humaneval_solution_loss")})
        (parent / "README.md").write_text(render_family_readme(rows, out, humaneval, variants))
    return out


def variant_stage(card: dict) -> dict:
    """Return a fine-tune's stage from its card: ``stage``, ``stage_tokens``, ``stage_wall_time_s``.

    The stage is the last one's data split; every stage of that split counts (a stage
    continued in a later run from the weights is one stage of the variant, so its tokens and
    seconds add up), the base model's pretraining before it does not.
    """
    stages = card.get("training", {}).get("stages") or [{}]
    split = stages[-1].get("data_split", "")
    same = [st for st in stages if st.get("data_split") == split]
    return {"stage": split, "stage_tokens": sum(st.get("tokens") or 0 for st in same),
            "stage_wall_time_s": sum(st.get("wall_time_s") or 0 for st in same)}


def _ci(entry: dict) -> str:
    """Return `` [lo, hi]`` of a card's pass@k entry (bootstrap over tasks), or ``""``."""
    ci = entry.get("ci95")
    return f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci and len(ci) == 2 else ""


def _fmt(x: float | None) -> str:
    return "?" if x is None else f"{x:.3f}"


def render_family_readme(rows: list[dict], fit: dict,
                         humaneval: dict[str, dict] | None = None,
                         variants: list[dict] | None = None) -> str:
    """Render the Markdown overview of the shipped family (one table row per model).

    ``humaneval`` maps a model name to its card's ``humaneval`` entry (pass@k measured by
    ``scripts/record_humaneval_in_cards.py``); models without one are left out of that table.
    ``variants``: one dict per fine-tuned variant (Codex-S, Codex-D): ``model``, ``variant``,
    ``base_model``, ``stage``, ``stage_tokens``, ``stage_wall_time_s``, ``heldout_loss``,
    ``humaneval_text_loss``, optionally ``humaneval_solution_loss`` and ``set_version`` (a
    Codex-S model's function set, :data:`codexlab.models.functions.FUNCTION_SET_VERSION`;
    from 2 on the stage says so).
    """
    lines = [
        "# The built-in codex-mini family",
        "",
        "Small Llama-style Python models trained from scratch by `codexlab train` on the "
        "decontaminated stdlib + site-packages corpus (see `data/codex_mini_corpus.json`). "
        "Each folder loads offline with `AutoModelForCausalLM.from_pretrained` and holds a "
        "model card (`README.md`, `model_card.json`). Short names resolve with "
        "`codexlab.models.resolve_model`.",
        "",
    ]
    if any(r.get("provisional") for r in rows):
        lines += ["**Provisional**: trained briefly on a shared CPU; the whole family is "
                  "trained on a GPU by `scripts/gpu_train.sh` (DEVELOPERS.md, the GPU "
                  "machine).", ""]
    lines += ["| model | non-embedding params | total params | tokens seen | held-out loss | "
              "HumanEval-text loss | train wall time (s) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['non_embedding_params']:,} | {r['total_params']:,} | "
            f"{r['tokens_seen']:,} | {r['heldout_loss']:.3f} | {r['humaneval_text_loss']:.3f} | "
            f"{r['wall_time_s']:.0f} |")
    lines.append("")
    if "heldout" in fit:
        h = fit["heldout"]
        # Two points always fit exactly; say so rather than let r² = 1 read as evidence.
        exact = (" (two points: a line through both, r² is 1 by construction)"
                 if fit.get("points") == 2 else "")
        lines += [f"Power-law fit of held-out loss (nats/token, codex-mini tokenizer): "
                  f"L(N) = (N / {h['n_c']:.3g})^-{h['alpha']:.3f}, r² = {h['r2']:.3f}{exact} "
                  "(Codex paper: N_c = 5.92e7, alpha = 0.13, with another tokenizer and "
                  "100B tokens). Points: `data/loss_scaling.csv`; fit: "
                  "`data/loss_scaling_fit.json`.", ""]
    if variants:
        what = {"s": "Codex-S: function-level stage (signature + docstring -> body, prompt "
                     "masked)",
                "d": "Codex-D: docstring stage (signature + body -> docstring, context masked)"}
        # Set v2 (codexlab.models.functions.FUNCTION_SET_VERSION) keeps self-contained
        # functions only, their imports opening the prompt.
        what_s2 = ("Codex-S: function-level stage, set v{} (self-contained functions: imports "
                   "+ signature + docstring -> body, prompt masked)")
        lines += ["Fine-tuned variants (`codexlab train --stage functions|docstrings --init "
                  "<base>`):", "",
                  "| model | base | stage | stage tokens | stage wall time (s) | held-out loss | "
                  "HumanEval-text loss | HumanEval solution loss |",
                  "|---|---|---|---|---|---|---|---|"]
        for v in variants:
            tok = v.get("stage_tokens")
            wall = v.get("stage_wall_time_s")
            stage = (what_s2.format(v.get("set_version", 1))
                     if v["variant"] == "s" and v.get("set_version", 1) >= 2
                     else what.get(v["variant"], v["stage"]))
            lines.append(
                f"| {v['model']} | {v['base_model']} | {stage} | "
                f"{f'{tok:,}' if tok else '?'} | {f'{wall:.0f}' if wall else '?'} | "
                f"{v['heldout_loss']:.3f} | {v['humaneval_text_loss']:.3f} | "
                f"{_fmt(v.get('humaneval_solution_loss'))} |")
        lines += ["", "The held-out loss of a fine-tune is measured on general code, which the "
                  "stage does not train on; the HumanEval-text loss is the loss on HumanEval "
                  "prompts + canonical solutions; the solution loss is the loss of the "
                  "canonical body's tokens given the prompt (`scripts/card_losses.py`), the "
                  "quantity the function stage trains.", ""]
        rows = [*rows, *[{"model": v["model"]} for v in variants if v.get("variant") != "d"]]
    # A card whose pass@k was reset by later training (pass@1 None) has nothing to show yet.
    he = {m: e for m, e in (humaneval or {}).items() if e and e.get("pass@1") is not None}
    if he:
        lines += ["HumanEval, as measured for the model cards (bootstrap 95% intervals over "
                  "tasks in the cards):", "",
                  "| model | pass@1 [95% CI] | n (T) | pass@100 [95% CI] | n (T) | tasks solved "
                  "| source |",
                  "|---|---|---|---|---|---|---|"]
        for r in rows:
            e = he.get(r["model"])
            if not e:
                continue
            low = next((v for k, v in e.items() if k.startswith("pass@1_T")), {})
            high = next((v for k, v in e.items()
                         if k.startswith("pass@") and not k.startswith("pass@1_T")
                         and isinstance(v, dict)), {})
            t_low = next((k.split("_T")[1] for k in e if k.startswith("pass@1_T")), "?")
            t_high = next((k.split("_T")[1] for k in e if k.startswith("pass@")
                           and not k.startswith("pass@1_T") and "_T" in k), "?")
            solved = max(low.get("tasks_solved", 0), high.get("tasks_solved", 0))
            p100 = e.get("pass@100")
            lines.append(
                f"| {r['model']} | {e.get('pass@1', float('nan')):.4f}{_ci(low)} | "
                f"{low.get('n', '?')} ({t_low}) | "
                f"{'n/a' if p100 is None else f'{p100:.4f}{_ci(high)}'} | "
                f"{high.get('n', '?')} ({t_high}) | {solved} | "
                f"{str(e.get('source', '')).split(' (')[0]} |")
        lines.append("")
        # Say which models the table leaves out, so a missing row is not read as a zero.
        missing = [r["model"] for r in rows if r["model"] not in he]
        if missing:
            lines += [f"Not measured with this protocol yet: {', '.join(missing)} "
                      "(`scripts/record_humaneval_in_cards.py --measure`, `--variant s` for "
                      "Codex-S).", ""]
        if any(v.get("variant") == "d" for v in variants or []):
            lines += ["Codex-D models write docstrings; they are not measured here.", ""]
    return "\n".join(lines)
