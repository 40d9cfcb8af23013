"""Synthetic results: a small, fully populated run store and model cards, with no model.

What it is for: exercising the analysis, plotting and notebooks fast and offline (tests, CI,
trying the notebooks before any model is trained). Samples are real HumanEval canonical
solutions (counted as passing) or visibly broken copies of them (failing); verdicts,
log-probs and BLEU are filled in directly, from a simple generative story in which bigger
models solve more, low temperatures concentrate probability on fewer answers, and passing
samples have a slightly higher mean log-prob. What it is not for: any number that is
reported as a result. Nothing here is executed, and everything it writes is marked
``synthetic`` in the sample sets' ``extra`` field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from codexlab.config import FigureConfig, figure_config

#: Name → (total, non-embedding parameters, held-out loss) of the synthetic family, chosen to
#: look like the built-in family's range.
SYNTHETIC_MODELS: dict[str, tuple[int, int, float]] = {
    "synth-0.1m": (1_150_000, 100_000, 3.10),
    "synth-0.4m": (2_450_000, 400_000, 2.75),
    "synth-1.3m": (4_400_000, 1_300_000, 2.45),
    "synth-3m": (7_300_000, 3_100_000, 2.25),
}

#: Synthetic Codex-S variants (same parameters as their base; solve a little more, and
#: prefer a higher temperature, as the paper's Codex-S does).
SYNTHETIC_S_MODELS: dict[str, str] = {
    "synth-s-0.4m": "synth-0.4m",
    "synth-s-1.3m": "synth-1.3m",
    "synth-s-3m": "synth-3m",
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _broken(solution: str, rng: np.random.Generator) -> str:
    """Return a visibly wrong variant of a solution (what a failing sample looks like)."""
    lines = [ln for ln in solution.splitlines() if ln.strip()]
    if len(lines) > 1 and rng.random() < 0.5:
        drop = int(rng.integers(0, len(lines)))
        lines = lines[:drop] + lines[drop + 1:]
    indent = "    "
    return "\n".join(lines + [f"{indent}return None"]) + "\n"


def make_synthetic_run(
    root: str | Path,
    *,
    models: Sequence[str] = tuple(SYNTHETIC_MODELS),
    temperatures: Sequence[float] = (0.2, 0.5, 0.8),
    n: int = 10,
    tasks: str = ":24",
    seed: int = 0,
    mode: str = "quick",
    s_models: Sequence[str] = (),
) -> FigureConfig:
    """Create model cards and a complete synthetic store under ``root``; return its config.

    Args:
        root: Folder to write into (``models/``, ``store.sqlite``; figures go to ``figures/``).
        models: Names from :data:`SYNTHETIC_MODELS`.
        temperatures: Temperature grid of the temperature figure.
        n: Samples per task and (model, T).
        tasks: HumanEval task selection (see :func:`codexlab.problems.select_tasks`).
        seed: Seed of the synthetic draws.
        mode: Preset the config derives from.
        s_models: Names from :data:`SYNTHETIC_S_MODELS` (Codex-S variants, Figs 9/10):
            their cards name their base, and the grid of
            ``cfg.variant_config("s", models=<their folders>)`` is filled too, with the base
            grid swept as :meth:`FigureConfig.sweeping_base_of` says.

    Returns:
        A :class:`FigureConfig` whose grid is complete in the store (sampled, executed, BLEU).
    """
    from codexlab.metrics import bleu
    from codexlab.models.registry import model_label
    from codexlab.pipeline import load_problems
    from codexlab.store import Store

    root = Path(root)
    mdirs, sdirs = [], []
    for name in (*models, *s_models):
        base = SYNTHETIC_S_MODELS.get(name, name)
        total, non_emb, loss = SYNTHETIC_MODELS[base]
        d = root / "models" / name
        d.mkdir(parents=True, exist_ok=True)
        card = {"name": name, "family": "synthetic", "params": {
            "total": total, "embedding": total - non_emb, "non_embedding": non_emb},
            "eval": {"heldout_loss": loss, "humaneval_text_loss": loss + 0.4,
                     "loss_unit": "nats/token (synthetic)"}}
        if name != base:
            card.update({"variant": "s", "base_model": base})
        (d / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
        (sdirs if name != base else mdirs).append(str(d))
    cfg = figure_config(mode, models=mdirs, temperatures=list(temperatures), n=n,
                        store=str(root / "store.sqlite"), out=str(root / "figures"), tasks=tasks)
    if sdirs:
        # As `codexlab figures` samples it: the base grid also sweeps Fig 9's base model.
        cfg_s = cfg.variant_config("s", models=sdirs)
        grid = cfg.sweeping_base_of(cfg_s).grid() + cfg_s.grid()
    else:
        grid = cfg.grid()
    problems, info = load_problems(cfg)
    rng = np.random.default_rng(seed)
    # Task difficulty is shared by all models, so bigger models solve a superset on average.
    difficulty = rng.normal(0.0, 1.5, size=len(problems))
    with Store(cfg.store_path()) as store:
        run_id = store.start_run("synthetic", cfg.to_dict(), {"synthetic": True})
        for m, temp in grid:
            name = model_label(m)
            base = SYNTHETIC_S_MODELS.get(name, name)
            skill = -2.5 + 0.8 * np.log10(SYNTHETIC_MODELS[base][1] / 1e5) * 1.5
            # Codex-S: more skill, and its best temperature sits higher (paper Fig 9).
            s_bonus = 0.8 if name != base else 0.0
            sid = store.ensure_sample_set(
                model=name, temperature=temp, top_p=cfg.top_p, seed=cfg.seed,
                max_new_tokens=cfg.max_new_tokens, stop=cfg.stop,
                problems_sha256=info["problems_sha256"], extra={"synthetic": True})
            samples, verdicts, scores = [], [], []
            for j, (tid, prob) in enumerate(problems.items()):
                # Low T sharpens the per-task pass probability towards 0 or 1 (less
                # diversity), high T costs a little quality: the trade-off of Fig 5.
                logit = (skill + s_bonus - difficulty[j]) / (0.35 + temp)
                p = float(_sigmoid(np.array(logit))) * (1.0 - (0.25 - 0.15 * bool(s_bonus))
                                                        * temp)
                for i in range(n):
                    ok = bool(rng.random() < p)
                    text = prob.canonical_solution if ok else _broken(prob.canonical_solution, rng)
                    n_tok = max(1, len(text.split()) + int(rng.integers(0, 8)))
                    mean_lp = float(rng.normal(-1.2 + 0.35 * ok - 0.4 * temp, 0.35))
                    samples.append({"task_id": tid, "idx": i, "completion": text,
                                    "n_tokens": n_tok, "mean_logprob": mean_lp,
                                    "sum_logprob": mean_lp * n_tok, "finish_reason": "stop"})
                    verdicts.append({"set_id": sid, "task_id": tid, "idx": i,
                                     "status": "passed" if ok else "failed", "passed": ok,
                                     "result": "passed" if ok else "failed: AssertionError",
                                     "error_type": None if ok else "AssertionError",
                                     "duration_s": 0.0, "mode": "synthetic",
                                     "isolation": "none (synthetic)"})
                    scores.append((tid, i, bleu(text, prob.canonical_solution)))
            store.add_samples(sid, samples, run_id)
            store.add_verdicts(verdicts, run_id)
            store.set_bleu(sid, scores)
        store.finish_run(run_id, "done", {"synthetic": True})
    return cfg
