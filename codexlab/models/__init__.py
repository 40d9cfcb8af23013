"""The built-in "codex-mini" model family and the model registry of the workbench.

What it is for: :func:`resolve_model` (short name -> local path; other ids pass through),
:func:`builtin_models` / :func:`builtin_model_names` (every shipped model, small to large),
:func:`update_model_card` (merge pass@k or other fields into a card), and the registry
helpers the figure config and pipeline use (:func:`model_dir`, :func:`model_label`,
:func:`compact_model_names`, :func:`card_fields`; see :mod:`~codexlab.models.registry`).
The sub-modules build the corpus (:mod:`~codexlab.models.corpus`,
:mod:`~codexlab.models.data`), the tokenizer (:mod:`~codexlab.models.tokenizer`), define the
sizes (:mod:`~codexlab.models.configs`), train (:mod:`~codexlab.models.training`) and fit the
loss scaling law (:mod:`~codexlab.models.scaling`). What it is not for: sampling or
evaluation. Importing this package is cheap (no torch, no pandas).
"""

from __future__ import annotations

from codexlab.models.card import read_model_card, update_model_card
from codexlab.models.configs import SIZES
from codexlab.models.registry import (
    VARIANTS,
    base_model_name,
    builtin_model_names,
    builtin_models,
    card_fields,
    compact_model_names,
    model_aliases,
    model_card,
    model_dir,
    model_label,
    model_variant,
    params_from_weights,
    resolve_model,
    variant_name,
    variant_pairs,
)

__all__ = [
    "SIZES",
    "VARIANTS",
    "base_model_name",
    "builtin_model_names",
    "builtin_models",
    "card_fields",
    "compact_model_names",
    "model_aliases",
    "model_card",
    "model_dir",
    "model_label",
    "model_variant",
    "params_from_weights",
    "read_model_card",
    "resolve_model",
    "update_model_card",
    "variant_name",
    "variant_pairs",
]
