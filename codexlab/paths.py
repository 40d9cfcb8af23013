"""Every filesystem location the workbench uses, in one place.

What it is for: resolving the repository root, the shipped data folder, the built-in model
folder (overridable with ``CODEXLAB_MODELS_DIR``), the figures folder and the results directory
(overridable with ``CODEXLAB_RESULTS_DIR``). What it is not for: creating content; callers
create what they write.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: The checkout root (the package is installed editable from a clone of the repository).
REPO_ROOT = PACKAGE_DIR.parent
DATA_DIR = REPO_ROOT / "data"
MODELS_DIR = DATA_DIR / "models"
FIGURES_DIR = REPO_ROOT / "figures"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def models_dir() -> Path:
    """Return the folder of the built-in model family (what short names resolve to).

    ``CODEXLAB_MODELS_DIR`` overrides the default ``<repo>/data/models``, e.g. to sample a
    family trained elsewhere under the built-in names (``scripts/gpu_train.sh`` does, so that
    its samples carry the keys they will have once the family is shipped). Read at call time.
    """
    env = os.environ.get("CODEXLAB_MODELS_DIR")
    return Path(env).expanduser().resolve() if env else MODELS_DIR


def results_dir() -> Path:
    """Return the directory that holds run stores and intermediate results.

    ``CODEXLAB_RESULTS_DIR`` overrides the default ``<repo>/results``. Read at call time so
    tests and notebooks can redirect it.
    """
    env = os.environ.get("CODEXLAB_RESULTS_DIR")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "results"


def default_store_path() -> Path:
    """Return the path of the default run store (``<results>/codexlab.sqlite``)."""
    return results_dir() / "codexlab.sqlite"
