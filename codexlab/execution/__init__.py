"""Sandboxed execution of model-written code: verdicts decided by a trusted parent.

What it is for: :func:`evaluate_samples` runs completions against a benchmark's tests with
the layered sandbox described in SECURITY.md and returns one :class:`Verdict` each;
:func:`probe_isolation` reports which layers this machine offers; :func:`check_consent`
enforces the explicit opt-in to running model-written code.

What it is not for: sampling, pass@k (see :mod:`codexlab.metrics`) or storage.

Layout: ``pool`` (scheduling, consent, dedup, syntax check) → per slot a ``checker``
process (runs the trusted tests, decides) and a ``zygote`` fork-server (forks the locked-down
child); ``codec`` is the plain-data wire format; ``linux`` wraps the kernel primitives;
``mutants`` builds known-good/known-bad samples for calibration and benchmarks; ``judge``
compares whole programs' outputs and call results for APPS-style problems (``stdio`` mode);
``distributed`` ships batches of jobs to pools on the nodes of a Ray cluster
(:func:`evaluate_samples_ray`, the optional ``ray`` extra).
"""

from __future__ import annotations

from typing import Any

# Lazy exports (PEP 562): the fork-server imports submodules of this package, and must not
# pull in ``pool`` (which imports subprocess → threading; threading's at-fork hook costs
# every forked child CPU).
_EXPORTS = {
    "CodeExecutionNotAllowed": "pool",
    "Pool": "pool",
    "SandboxWarning": "pool",
    "check_consent": "pool",
    "evaluate_samples": "pool",
    "evaluate_samples_ray": "distributed",
    "probe_isolation": "pool",
    "STATUSES": "verdicts",
    "Verdict": "verdicts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'codexlab.execution' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"codexlab.execution.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
