"""The built-in "codex-mini" model family: names, paths and cards of the shipped models.

What it is for: :func:`resolve_model` (short name -> local path; other ids pass through),
:func:`builtin_models` (every shipped model, small to large) and :func:`update_model_card`
(merge pass@k or other fields into a card). The sub-modules build the corpus
(:mod:`~codexlab.models.corpus`, :mod:`~codexlab.models.data`), the tokenizer
(:mod:`~codexlab.models.tokenizer`), define the sizes (:mod:`~codexlab.models.configs`),
train (:mod:`~codexlab.models.training`) and fit the loss scaling law
(:mod:`~codexlab.models.scaling`). What it is not for: sampling or evaluation. Importing this
package is cheap (no torch).
"""

from __future__ import annotations

from pathlib import Path

from codexlab.models.card import read_model_card, update_model_card
from codexlab.models.configs import FAMILY, SIZES
from codexlab.paths import MODELS_DIR

__all__ = ["builtin_models", "read_model_card", "resolve_model", "update_model_card", "SIZES"]


def _is_model_dir(path: Path) -> bool:
    """Return whether ``path`` holds a saved Hugging Face model."""
    return (path / "config.json").is_file()


def builtin_models(models_dir: Path | None = None) -> dict[str, Path]:
    """Return name -> path of every shipped family model, ordered small to large.

    Order is by non-embedding parameters from the card (preset order as a fallback), so a
    size added later sorts into place.

    Args:
        models_dir: Folder to look in; default ``data/models``.
    """
    root = Path(models_dir or MODELS_DIR)
    if not root.is_dir():
        return {}
    found = [p for p in root.iterdir() if p.name.startswith(FAMILY) and _is_model_dir(p)]
    preset_rank = {name: i for i, name in enumerate(SIZES)}

    def key(p: Path) -> tuple[float, int, str]:
        n = (read_model_card(p).get("params") or {}).get("non_embedding")
        return (float(n) if n else float("inf"), preset_rank.get(p.name, len(SIZES)), p.name)

    return {p.name: p.resolve() for p in sorted(found, key=key)}


def resolve_model(name_or_path: str, models_dir: Path | None = None) -> str:
    """Resolve a model reference for ``from_pretrained``.

    Args:
        name_or_path: A family short name (``"codex-mini-3m"``), a local path or a Hugging
            Face id.
        models_dir: Folder of the shipped models; default ``data/models``.

    Returns:
        The absolute path of a shipped model for a short name; anything else unchanged.

    Raises:
        ValueError: for a name starting with ``codex-mini`` that is neither shipped nor an
            existing path; the message lists the available models.
    """
    shipped = builtin_models(models_dir)
    if name_or_path in shipped:
        return str(shipped[name_or_path])
    if name_or_path.startswith(FAMILY) and not Path(name_or_path).exists():
        hint = ""
        if name_or_path in SIZES:
            hint = (f" ({name_or_path} is a known size but not trained: "
                    f"codexlab train --size {name_or_path})")
        raise ValueError(
            f"unknown built-in model {name_or_path!r}{hint}; available: "
            f"{', '.join(shipped) or 'none (run codexlab train --family)'}"
        )
    return name_or_path
