"""Model cards of the built-in family: ``model_card.json`` (machine-readable) + ``README.md``.

What it is for: writing a trained model's card, merging later fields into it (pass@k from
the sampling + execution pipeline, a continued training stage) with
:func:`update_model_card`, and rendering the human-readable README from the JSON, so the two
never disagree. What it is not for: measuring anything; callers pass the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CARD_JSON = "model_card.json"
CARD_README = "README.md"


def read_model_card(path: str | Path) -> dict[str, Any]:
    """Return the card of the model folder ``path`` (``{}`` if it has none)."""
    p = Path(path) / CARD_JSON
    return json.loads(p.read_text()) if p.exists() else {}


def _merge(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``new`` into a copy of ``base``; dicts merge, other values replace."""
    out = dict(base)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def write_model_card(path: str | Path, card: dict[str, Any]) -> None:
    """Write ``card`` as ``model_card.json`` and render ``README.md`` in the folder ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / CARD_JSON).write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    (path / CARD_README).write_text(render_readme(card))


def update_model_card(path: str | Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into the card of ``path`` (nested dicts merge) and re-render README.

    Example:
        ``update_model_card(p, humaneval={"pass@1": 0.0, "pass@100": 0.018, "T": 0.8})``

    Returns:
        The updated card.
    """
    card = _merge(read_model_card(path), fields)
    write_model_card(path, card)
    return card


def _fmt(v: Any) -> str:
    """Format a card value for the README table."""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return str(v)


def render_readme(card: dict[str, Any]) -> str:
    """Render the README (Markdown) of a model card."""
    name = card.get("name", "model")
    lines = [f"# {name}", ""]
    if card.get("provisional"):
        lines += [
            "> **Provisional.** Trained briefly on CPU only; a GPU session is expected to continue "
            "training (see *How to continue*). Numbers below describe these exact weights.",
            "",
        ]
    lines += [
        f"A small Llama-style Python code model of the built-in `{card.get('family', '')}` "
        "family of codexlab, trained from scratch on decontaminated Python source "
        "(the stdlib and site-packages of the training machine). It exists so that the "
        "workbench can run end to end offline; expect very low HumanEval pass rates.",
        "",
        "Load it with `AutoModelForCausalLM.from_pretrained(path)` and "
        "`AutoTokenizer.from_pretrained(path)`, or `codexlab.models.resolve_model"
        f"(\"{name}\")`.",
        "",
    ]
    for section in ("architecture", "params", "eval", "humaneval", "training", "data"):
        val = card.get(section)
        if not val:
            continue
        lines += [f"## {section.capitalize()}", "", "| field | value |", "|---|---|"]
        for k, v in val.items():
            if k == "stages":
                continue
            lines.append(f"| {k} | {_fmt(v).replace('|', '/')} |")
        lines.append("")
    stages = (card.get("training") or {}).get("stages") or []
    if stages:
        lines += ["## Training stages", ""]
        for i, st in enumerate(stages, 1):
            lines.append(f"{i}. `{st.get('command', '')}` — {_fmt(st.get('tokens', 0))} tokens, "
                         f"{st.get('wall_time_s', 0):.0f} s on {st.get('hardware', '?')}")
        lines.append("")
    lines += [
        "## How to continue",
        "",
        "```",
        card.get("continue_command", f"codexlab train --size {name} --resume"),
        "```",
        "",
        "The full machine-readable card is `model_card.json`.",
        "",
    ]
    return "\n".join(lines)
