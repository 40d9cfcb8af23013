"""Model registry: which models exist, where their folders are, what they are called.

What it is for: the shipped family (:func:`builtin_models`, :func:`builtin_model_names`,
:func:`resolve_model`), the models of committed compact results
(:func:`compact_model_names`), a model's local folder and display label (:func:`model_dir`,
:func:`model_label`, :func:`model_aliases`) and its parameter counts and losses read from
its card or, without a card, from the safetensors headers (:func:`model_card`,
:func:`card_fields`, :func:`params_from_weights`). The figure config and the pipeline use
these; keeping them here lets :mod:`codexlab.config` name models without importing the
pipeline. What it is not for: loading weights, sampling, or writing cards
(:mod:`codexlab.models.card`). Importing it is cheap (no torch, no pandas at import time).
"""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codexlab import paths
from codexlab.models.card import read_model_card
from codexlab.models.configs import FAMILY, SIZES, SIZES_V1

if TYPE_CHECKING:
    from codexlab.config import FigureConfig

#: Tensor-name fragments of embedding and unembedding matrices (excluded from the
#: non-embedding count, as in the Codex and Kaplan et al. scaling fits).
EMBEDDING_NAMES = ("embed", "wte", "wpe", "lm_head")


def _is_model_dir(path: Path) -> bool:
    """Return whether ``path`` holds a saved Hugging Face model."""
    return (path / "config.json").is_file()


#: Fine-tuned variants of the family, by the letter in their names (``codex-mini-s-1.2m``):
#: ``""`` the base models (Codex analogue), ``"s"`` the function-level fine-tune (Codex-S,
#: Codex paper §4), ``"d"`` the docstring writer (Codex-D, §6).
VARIANTS: dict[str, str] = {
    "": "Codex (base)",
    "s": "Codex-S (supervised fine-tune on standalone functions)",
    "d": "Codex-D (writes the docstring from signature + body)",
}
_VARIANT_RE = re.compile(rf"^{re.escape(FAMILY)}-([a-z])-(.+)$")


def model_variant(name: str) -> str:
    """Return the variant letter of a family model name (``"s"``, ``"d"``) or ``""``.

    Example:
        >>> model_variant("codex-mini-s-1.2m"), model_variant("codex-mini-1.2m")
        ('s', '')
    """
    m = _VARIANT_RE.match(Path(str(name)).name)
    return m.group(1) if m and m.group(1) in VARIANTS else ""


def variant_name(base: str, variant: str) -> str:
    """Return the name of ``variant`` of a base family model (``"codex-mini-1.2m"``, ``"s"``).

    Raises:
        ValueError: unknown variant, or ``base`` is not a base family name.
    """
    if variant not in VARIANTS:
        known = ", ".join(v for v in VARIANTS if v)
        raise ValueError(f"unknown variant {variant!r}; known: {known}")
    if not base.startswith(FAMILY + "-") or model_variant(base):
        raise ValueError(f"{base!r} is not a base {FAMILY} model name (e.g. {FAMILY}-1.2m)")
    return base if not variant else f"{FAMILY}-{variant}-{base[len(FAMILY) + 1:]}"


def base_model_name(name: str) -> str:
    """Return the base model a variant was fine-tuned from (the name itself for a base)."""
    m = _VARIANT_RE.match(Path(str(name)).name)
    if m and m.group(1) in VARIANTS:
        return f"{FAMILY}-{m.group(2)}"
    return Path(str(name)).name


def builtin_models(models_dir: Path | None = None, variant: str = "") -> dict[str, Path]:
    """Return name -> path of every shipped family model of one variant, small to large.

    Order is by non-embedding parameters from the card (preset order as a fallback), so a
    size added later sorts into place.

    Args:
        models_dir: Folder to look in; default :func:`codexlab.paths.models_dir`
            (``data/models``).
        variant: ``""`` the base models (what the scaling, temperature, ranking and BLEU
            figures use), ``"s"`` Codex-S, ``"d"`` Codex-D, ``"*"`` all of them.
    """
    root = Path(models_dir or paths.models_dir())
    if not root.is_dir():
        return {}
    found = [p for p in root.iterdir() if p.name.startswith(FAMILY + "-") and _is_model_dir(p)
             and (variant == "*" or model_variant(p.name) == variant)]
    preset_rank = {name: i for i, name in enumerate(SIZES)}

    def key(p: Path) -> tuple[float, int, str]:
        n = (read_model_card(p).get("params") or {}).get("non_embedding")
        base = base_model_name(p.name)
        return (float(n) if n else float("inf"), preset_rank.get(base, len(SIZES)), p.name)

    return {p.name: p.resolve() for p in sorted(found, key=key)}


def builtin_model_names() -> list[str]:
    """Return the shipped model names, smallest first (``[]`` when none are trained yet)."""
    return list(builtin_models())


def resolve_model(name_or_path: str, models_dir: Path | None = None) -> str:
    """Resolve a model reference for ``from_pretrained``.

    Args:
        name_or_path: A family short name (``"codex-mini-1.2m"``), a local path or a Hugging
            Face id.
        models_dir: Folder of the shipped models; default :func:`codexlab.paths.models_dir`.

    Returns:
        The absolute path of a shipped model for a short name; anything else unchanged.

    Raises:
        ValueError: for a name starting with ``codex-mini`` that is neither shipped nor an
            existing path; the message lists the available models.
    """
    shipped = builtin_models(models_dir, variant="*")
    if name_or_path in shipped:
        return str(shipped[name_or_path])
    if name_or_path.startswith(FAMILY) and not Path(name_or_path).exists():
        hint = ""
        if name_or_path in SIZES:
            hint = (f" ({name_or_path} is a known size but not trained: "
                    f"codexlab train --size {name_or_path})")
        elif base_model_name(name_or_path) in SIZES_V1:
            hint = (f" ({name_or_path} belongs to the v1 family, retired on 2026-12-07; its "
                    "weights are in git history)")
        raise ValueError(
            f"unknown built-in model {name_or_path!r}{hint}; available: "
            f"{', '.join(shipped) or 'none (run codexlab train --family)'}"
        )
    return name_or_path


def compact_model_names(cfg: FigureConfig) -> list[str]:
    """Return the models of the committed compact results of cfg's mode, smallest first.

    Reads ``models.csv`` of :meth:`~codexlab.config.FigureConfig.compact_results_dir` with
    the standard library (no pandas), ordered by ``params_total`` (stable; unknown last).
    """
    import csv

    path = Path(cfg.compact_results_dir()) / "models.csv"
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))

    def total(row: dict[str, str]) -> float:
        try:
            v = float(row.get("params_total") or "nan")
        except ValueError:
            return math.inf
        return math.inf if math.isnan(v) else v

    return [str(r["model"]) for r in sorted(rows, key=total)]


def model_dir(model: str) -> Path | None:
    """Return the local folder of a model name or path, or None (e.g. a hub id)."""
    p = Path(model).expanduser()
    if p.is_dir():
        return p
    cand = paths.models_dir() / model
    return cand if cand.is_dir() else None


def model_label(model: str) -> str:
    """Return the short name a model is shown under: a folder's name, else the id itself."""
    p = Path(model).expanduser()
    return p.name if (p.is_dir() or p.is_absolute()) else model


def model_aliases(model: str) -> set[str]:
    """Return the names under which a store may record a model (name, path, resolved path)."""
    out = {model, model_label(model)}
    d = model_dir(model)
    if d is not None:
        out |= {str(d), str(d.resolve()), d.name}
    return out


def model_card(model: str) -> dict[str, Any]:
    """Return a model's card; without one, its parameter counts from the weights; else ``{}``."""
    d = model_dir(model)
    if d is None:
        return {}
    if (d / "model_card.json").exists():
        return json.loads((d / "model_card.json").read_text())
    return {"params": params_from_weights(d)}


def params_from_weights(d: Path) -> dict[str, int]:
    """Count parameters from the safetensors headers of a model folder (no torch, no load).

    Any Hugging Face model without a codexlab card still gets a point on the scaling figure.
    Tied output embeddings are stored once, so they are counted once.
    """
    total = emb = 0
    for f in sorted(Path(d).glob("*.safetensors")):
        with open(f, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            n = math.prod(info["shape"])
            total += n
            if any(part in name for part in EMBEDDING_NAMES):
                emb += n
    return {"total": total, "non_embedding": total - emb} if total else {}


def card_fields(card: dict[str, Any]) -> dict[str, Any]:
    """Pick parameter counts and losses out of a model card (nested or flat layout)."""
    params = card.get("params") if isinstance(card.get("params"), dict) else {}
    ev = card.get("eval") if isinstance(card.get("eval"), dict) else {}
    return {
        "params_total": params.get("total", card.get("params_total")),
        "params_non_embedding": params.get("non_embedding", card.get("params_non_embedding")),
        "heldout_loss": ev.get("heldout_loss", card.get("heldout_loss")),
        "humaneval_text_loss": ev.get("humaneval_text_loss", card.get("humaneval_text_loss")),
        "loss_unit": ev.get("loss_unit", card.get("loss_unit", "")),
    }


def card_params(d: Path) -> int | None:
    """Return the total parameter count recorded in the card of folder ``d`` (None if absent)."""
    return card_fields(read_model_card(d))["params_total"]


def variant_pairs(bases: list[str] | tuple[str, ...], variants: list[str] | tuple[str, ...]
                  ) -> dict[str, str]:
    """Pair each fine-tuned model with its base model, by shown name (:func:`model_label`).

    A variant's base is, in this order: the ``base_model`` of its card, the base its
    family name implies (``codex-mini-s-1.2m`` -> ``codex-mini-1.2m``), or the base at the same
    position when both lists have the same length (user models given side by side).

    Returns:
        variant label -> base label, only for variants whose base is among ``bases``.
    """
    base_labels = [model_label(b) for b in bases]
    out: dict[str, str] = {}
    for i, v in enumerate(variants):
        label = model_label(v)
        card = model_card(v)
        for cand in (card.get("base_model"), base_model_name(label),
                     base_labels[i] if len(bases) == len(variants) else None):
            if cand and model_label(str(cand)) in base_labels:
                out[label] = model_label(str(cand))
                break
    return out
