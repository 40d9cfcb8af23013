"""The figure pipeline: sample → execute → BLEU for a config's (model, temperature) grid.

What it is for: driving the sampling and execution engines over the grid of a
:class:`~codexlab.config.FigureConfig` so that the store ends up holding every sample, verdict
and BLEU score the figures need, resuming whatever an earlier run left undone; reading those
results back as one DataFrame; and moving them in and out of the compact per-sample tables
(``data/results/<mode>/``) that let anyone re-plot without a GPU or a store. What it is not
for: sampling or running code itself (:mod:`codexlab.sampling`, :mod:`codexlab.execution`),
or computing figure tables (:mod:`codexlab.analysis`).

Each stage is skippable and idempotent: sampling asks the engine only for missing indices
(the engine itself resumes), execution runs only samples without a verdict, BLEU fills only
samples without a score. ``force`` re-executes and re-scores; it never re-samples, because a
sample set is the immutable cache unit of generations (delete the store or change the seed
to draw new ones).
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from codexlab.config import FigureConfig

# The model registry lives in codexlab.models (codexlab.config names models without importing
# this module); model_label stays importable from here too.
from codexlab.models.registry import card_fields as _card_fields
from codexlab.models.registry import model_aliases as _model_aliases
from codexlab.models.registry import model_card as _card
from codexlab.models.registry import model_dir, model_label

#: Columns of the compact per-sample table (no completion text: it is large, and no figure
#: needs it).
COMPACT_COLUMNS = (
    "model", "temperature", "top_p", "seed", "task_id", "idx", "status", "passed",
    "n_tokens", "sum_logprob", "mean_logprob", "bleu", "backtranslation",
)

#: Columns of the compact per-model table (what the scaling and loss figures need).
MODEL_COLUMNS = ("model", "params_total", "params_non_embedding", "heldout_loss",
                 "humaneval_text_loss", "loss_unit")

#: Samples executed per engine call; a killed run loses at most one chunk of verdicts.
EXEC_CHUNK = 2000

STAGES = ("sample", "execute", "bleu", "backtranslation")


# -- models ------------------------------------------------------------------------------
def model_table(cfg: FigureConfig) -> Any:
    """Return one row per model of ``cfg``: parameters and held-out losses from its card.

    Falls back to the committed compact ``models.csv`` for models whose card is not here
    (re-plotting without the weights). Unknown values are NaN.

    Reproduces: the x axes of Codex paper Fig 1/6 and both axes of Fig 4.

    Returns:
        DataFrame with :data:`MODEL_COLUMNS`, models in ``cfg`` order.
    """
    import pandas as pd

    from codexlab.paths import DATA_DIR

    compact = cfg.compact_results_dir() / "models.csv"
    saved = pd.read_csv(compact).set_index("model") if compact.exists() else None
    # The model family's own Fig 4 table (codexlab.models.scaling), used when a card is absent.
    family_csv = DATA_DIR / "loss_scaling.csv"
    family = (pd.read_csv(family_csv).rename(columns={
        "total_params": "params_total", "non_embedding_params": "params_non_embedding"})
        .set_index("model") if family_csv.exists() else None)
    rows = []
    for m in cfg.resolved_models():
        row = {"model": model_label(m), **_card_fields(_card(m))}
        for fallback in (saved, family):
            if (row["params_total"] is None and fallback is not None
                    and row["model"] in fallback.index):
                row.update({c: fallback.loc[row["model"], c] for c in MODEL_COLUMNS[1:]
                            if c in fallback.columns})
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(MODEL_COLUMNS))
    for c in MODEL_COLUMNS[1:-1]:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


# -- problems ----------------------------------------------------------------------------
def load_problems(cfg: FigureConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the problems of ``cfg`` (selected tasks) and their provenance info."""
    from codexlab.problems import resolve_problems, select_tasks

    problems, info = resolve_problems(cfg.problems or None)
    return select_tasks(problems, cfg.tasks or None), info


# -- finding sets --------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _problems_file_sha256(path: str) -> str:
    """sha256 of the problems file of a config (HumanEval's when empty), as sets are keyed."""
    from codexlab.problems import file_sha256, humaneval_path

    return file_sha256(path or humaneval_path())


def find_set(store: Any, cfg: FigureConfig, model: str, temperature: float) -> str | None:
    """Return the id of the stored sample set of (model, T) under cfg's protocol, or None.

    Matches the problems file (by its sha256, when the set records one), model (by any alias,
    or by folder name for a store made elsewhere), the weights fingerprint when both sides
    have one, token healing (the sampling runner's default for the model), temperature,
    top_p, seed and max_new_tokens; when several sets match (e.g.
    made by different engine versions), the one with most samples wins.
    """
    from codexlab.sampling.runner import set_key_rules

    aliases = _model_aliases(model)
    label = model_label(model)
    # The sampler's own rules: a remote backend's sets carry its name, no healing, and no
    # weights print for openai.
    rules = set_key_rules(model, cfg.backend)
    weights, healing = rules["weights"], rules["token_healing"]
    problems_sha = _problems_file_sha256(cfg.problems)
    best: tuple[int, str] | None = None
    for s in store.sample_sets():
        # Another problem file's samples (MBPP, chains, ...) are never this grid's; imported
        # compact tables carry no hash and match by the other fields.
        if s.get("problems_sha256") and s["problems_sha256"] != problems_sha:
            continue
        # Sets drawn from other weights of the same model name are not this model's samples;
        # sets without a fingerprint (imported tables, hub models) match by name alone.
        have = (s.get("extra") or {}).get("weights")
        if weights and have and have != weights:
            continue
        # Samples of a server or vLLM are not the local engine's, nor the other way round.
        if (s.get("extra") or {}).get("backend", "hf") != cfg.backend:
            continue
        # Token healing changes what is sampled: never mix sets drawn with and without it.
        if int((s.get("extra") or {}).get("token_healing", 0)) != healing:
            continue
        # A store made on another machine records that machine's absolute model path; its
        # folder name still identifies the model.
        if (
            (s["model"] in aliases or Path(s["model"]).name == label)
            and math.isclose(s["temperature"], temperature, abs_tol=1e-9)
            and math.isclose(s["top_p"], cfg.top_p, abs_tol=1e-9)
            and int(s["seed"]) == cfg.seed
            and int(s["max_new_tokens"]) == cfg.max_new_tokens
        ):
            cand = (int(s["n_samples"]), s["set_id"])
            if best is None or cand > best:
                best = cand
    return best[1] if best else None


def grid_status(cfg: FigureConfig, store: Any = None) -> Any:
    """Return per (model, T): set id, tasks, samples, verdicts, BLEU scores, and what is missing.

    A set is complete when every selected task has ``n`` samples, each with a verdict and BLEU.
    Without a run store every row reports nothing stored; no store file is created (a fresh
    clone re-plotting the committed tables must not be left with an empty store).
    """
    import pandas as pd

    from codexlab.store import Store

    own = store is None
    if own and not cfg.store_path().exists():
        problems, _ = load_problems(cfg)
        return pd.DataFrame([{"model": model_label(m), "temperature": t, "set_id": None,
                              "wanted": len(problems) * cfg.n, "samples": 0, "verdicts": 0,
                              "bleu": 0, "complete": False} for m, t in cfg.grid()])
    store = Store(cfg.store_path()) if own else store
    try:
        problems, _ = load_problems(cfg)
        want = len(problems) * cfg.n
        rows = []
        for m, t in cfg.grid():
            sid = find_set(store, cfg, m, t)
            n_s = n_v = n_b = 0
            if sid is not None:
                q = (
                    "SELECT COUNT(*), COUNT(v.status), COUNT(s.bleu) FROM samples s "
                    "LEFT JOIN verdicts v ON v.set_id=s.set_id AND v.task_id=s.task_id "
                    "AND v.idx=s.idx WHERE s.set_id=? AND s.idx < ? AND s.task_id IN "
                    f"({','.join('?' * len(problems))})"
                )
                n_s, n_v, n_b = store._conn.execute(q, (sid, cfg.n, *problems)).fetchone()
            rows.append({"model": model_label(m), "temperature": t, "set_id": sid,
                         "wanted": want, "samples": n_s, "verdicts": n_v, "bleu": n_b,
                         "complete": n_s == want and n_v == want and n_b == want})
        return pd.DataFrame(rows)
    finally:
        if own:
            store.close()


# -- the grid run ------------------------------------------------------------------------
def sampling_config(cfg: FigureConfig, temperature: float, **engine: Any) -> Any:
    """Return the :class:`~codexlab.sampling.SamplingConfig` of cfg's protocol at ``temperature``.

    The one mapping from a figure run's protocol (n, top_p, max_new_tokens, stops, seed) to
    the sampling engine's settings, so that a set drawn elsewhere (e.g. on a GPU machine by
    ``scripts/gpu_train.sh``) has the key :func:`find_set` looks for.

    Args:
        cfg: The run config.
        temperature: The set's temperature.
        **engine: Engine-only settings that are not part of a set's key (``device``,
            ``dtype``, ``compile``, ``batch_size``, ``stop_check_every``).

    Raises:
        ValueError: for a keyword that would change the samples (part of the protocol).
    """
    from codexlab.sampling import SamplingConfig

    allowed = {"device", "dtype", "compile", "batch_size", "stop_check_every"}
    if bad := sorted(set(engine) - allowed):
        raise ValueError(f"sampling_config: {', '.join(bad)} would change the protocol; "
                         f"only {', '.join(sorted(allowed))} may be set here")
    return SamplingConfig(temperature=temperature, n=cfg.n, top_p=cfg.top_p,
                          max_new_tokens=cfg.max_new_tokens, stop=tuple(cfg.stop), seed=cfg.seed,
                          **engine)


def _default_sample_fn(model: str, problems: dict[str, Any], cfg: FigureConfig, temperature: float,
                       store: Any, progress: bool, problems_sha256: str) -> str:
    """Sample what is missing of (model, T) with the sampling engine; return the set id."""
    from codexlab.sampling import sample_to_store

    scfg = sampling_config(cfg, temperature)
    # The problems file's hash (not the subset's) keys the set, so a run on a task subset
    # and a later full run share samples.
    backend = cfg.sampling_backend()
    return sample_to_store(model, problems, scfg, store, progress=progress,
                           problems_sha256=problems_sha256,
                           backend=backend)


def _default_execute_fn(problems: dict[str, Any], samples: list[dict[str, Any]],
                        cfg: FigureConfig, progress: bool) -> list[dict[str, Any]]:
    """Run samples in the sandbox; return verdict dicts in input order.

    With ``cfg.ray_address`` set the sandbox runs on that Ray cluster's nodes (each call
    connects, and disconnects unless this process was already connected).
    """
    import dataclasses

    from codexlab.execution import evaluate_samples

    # Deduplication changes c for programs whose outcome varies between runs; the config
    # (stored with the run) says which way it ran.
    if cfg.ray_address:
        from codexlab.execution.distributed import evaluate_samples_ray

        # Same verdicts as the local path; each one's isolation is that of its node.
        verdicts = evaluate_samples_ray(problems, samples, address=cfg.ray_address,
                                        timeout=cfg.timeout, progress=progress,
                                        dedup=cfg.exec_dedup)
    else:
        verdicts = evaluate_samples(problems, samples, timeout=cfg.timeout,
                                    workers=cfg.exec_workers, progress=progress,
                                    dedup=cfg.exec_dedup)
    out = []
    for v in verdicts:
        d = v if isinstance(v, dict) else (
            dataclasses.asdict(v) if dataclasses.is_dataclass(v) else dict(vars(v)))
        out.append(d)
    return out


def check_consent() -> None:
    """Raise with a clear message unless executing model-written code was allowed.

    Raises:
        PermissionError: ``CODEXLAB_ALLOW_CODE_EXEC=1`` is not set.
    """
    import os

    if os.environ.get("CODEXLAB_ALLOW_CODE_EXEC") == "1":
        return
    try:
        from codexlab.execution import check_consent as engine_check

        engine_check(None)
        return
    except ImportError:
        pass
    except Exception as exc:  # the engine's CodeExecutionNotAllowed
        raise PermissionError(_CONSENT_MSG) from exc
    raise PermissionError(_CONSENT_MSG)


def consent_status() -> str:
    """Return one line saying whether executing model-written code is allowed here."""
    import os

    if os.environ.get("CODEXLAB_ALLOW_CODE_EXEC") == "1":
        return "code execution: allowed (CODEXLAB_ALLOW_CODE_EXEC=1)"
    return ("code execution: NOT allowed; stored verdicts are shown, but new samples cannot be "
            "executed until CODEXLAB_ALLOW_CODE_EXEC=1 is set (see the README's sandbox section)")


_CONSENT_MSG = (
    "Executing model-written code is off. The figures need the sandbox to run the sampled "
    "completions against HumanEval's tests; allow it explicitly with CODEXLAB_ALLOW_CODE_EXEC=1 "
    "(e.g. `CODEXLAB_ALLOW_CODE_EXEC=1 codexlab figures --mode quick`, or "
    "`%env CODEXLAB_ALLOW_CODE_EXEC=1` in a notebook). Read the README's sandbox section first."
)


def run_grid(
    cfg: FigureConfig,
    store: Any = None,
    force: bool = False,
    progress: bool = True,
    *,
    stages: Sequence[str] = STAGES,
    sample_fn: Callable[..., str] | None = None,
    execute_fn: Callable[..., list[dict[str, Any]]] | None = None,
) -> Any:
    """Make the store hold every sample, verdict and BLEU score of cfg's grid.

    Stage by stage over the (model, T) sets of :meth:`FigureConfig.grid`: sample the missing
    indices of every set, then execute samples without a verdict, then score samples without
    BLEU; with ``progress``, one bar per stage counted in samples. Safe to kill and rerun at
    any point. The returned frame's ``attrs["run_summary"]`` counts what this run did.

    Args:
        cfg: The run config.
        store: An open :class:`~codexlab.store.Store` (default: ``cfg.store_path()``).
        force: Re-execute and re-score every sample (never re-samples).
        progress: Show progress bars and one status line per stage.
        stages: Subset of :data:`STAGES` to run. ``"backtranslation"`` scores the ranking
            figure's set (reference model, ranking temperature) with
            :meth:`FigureConfig.resolved_backtranslation_model`, when there is one.
        sample_fn: Replacement of the sampling engine (tests), called as
            ``fn(model, problems, cfg, temperature, store, progress, problems_sha256)``
            returning the set id.
        execute_fn: Replacement of the execution engine (tests), called as
            ``fn(problems, samples, cfg, progress) -> list of verdict dicts``.

    Returns:
        :func:`load_results` of the grid (samples with verdicts and BLEU, no text).

    Raises:
        PermissionError: Samples need executing and code execution was not allowed.
    """
    import time

    from codexlab import provenance
    from codexlab.store import Store

    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; choose from {STAGES}")
    own = store is None
    store = Store(cfg.store_path()) if own else store
    sample_fn = sample_fn or _default_sample_fn
    execute_fn = execute_fn or _default_execute_fn
    problems, pinfo = load_problems(cfg)
    if "execute" in stages:
        # Fail before minutes of sampling, not after, when the run will need to execute.
        try:
            check_consent()
        except PermissionError:
            status = grid_status(cfg, store)
            if force or not bool((status["verdicts"] == status["wanted"]).all()):
                if own:
                    store.close()
                raise
    run_id = store.start_run("figures-grid", cfg.to_dict(),
                             provenance.collect({"problems_sha256": pinfo["problems_sha256"]}))
    summary: dict[str, Any] = {"sampled": 0, "executed": 0, "bleu": 0}
    status = "failed"
    t_start = time.perf_counter()
    try:
        # Stage by stage over the whole grid, each with one progress bar counted in samples
        # (every stage resumes per set, so a kill at any point loses at most a batch).
        if "sample" in stages:
            # Worker processes split local CPU decoding; a remote engine batches by itself.
            if sample_fn is _default_sample_fn and cfg.sample_workers > 1 and cfg.backend == "hf":
                summary["sampled"] += _sample_parallel(cfg, store, problems,
                                                       pinfo["problems_sha256"], progress)
            else:
                summary["sampled"] += _sample_sequential(cfg, store, problems,
                                                         pinfo["problems_sha256"], progress,
                                                         sample_fn)
        sets = [(m, t, find_set(store, cfg, m, t)) for m, t in cfg.grid()]
        skipped = [f"{model_label(m)} T={t:g}" for m, t, sid in sets if sid is None]
        if skipped:
            _say(progress, f"no samples stored for {', '.join(skipped)}; skipped")
        sets = [(m, t, sid) for m, t, sid in sets if sid is not None]
        if "execute" in stages and sets:
            st = grid_status(cfg, store)
            todo = int(st["samples"].sum() if force else (st["samples"] - st["verdicts"]).sum())
            with _stage_bar(progress, todo, "execute") as bar, _cluster(cfg, todo):
                for model, temp, set_id in sets:
                    summary["executed"] += _execute_set(
                        store, set_id, problems, cfg, force, False, execute_fn, run_id,
                        f"{model_label(model)} T={temp:g}", bar=bar)
        if "bleu" in stages and sets:
            st = grid_status(cfg, store)
            todo = int(st["samples"].sum() if force else (st["samples"] - st["bleu"]).sum())
            with _stage_bar(progress, todo, "BLEU") as bar:
                for model, temp, set_id in sets:
                    summary["bleu"] += _bleu_set(store, set_id, problems, cfg, force, False,
                                                 f"{model_label(model)} T={temp:g}", bar=bar)
        if "backtranslation" in stages and sets and not cfg.variant:
            summary["backtranslation"] = _backtranslation_stage(cfg, store, problems, sets,
                                                                progress)
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        summary["seconds"] = round(time.perf_counter() - t_start, 1)
        store.finish_run(run_id, status, summary)
        if own:
            store.close()
    df = load_results(cfg, source="store")
    df.attrs["run_summary"] = dict(summary)
    return df


class _StageBar:
    """One tqdm bar for a pipeline stage, counted in samples (a no-op without progress).

    With ``lazy`` the bar appears at the first finished samples and its clock starts there
    (tqdm's ``initial``), so minutes of loading models never enter the rate or the ETA.
    """

    def __init__(self, progress: bool, total: int, desc: str, lazy: bool = False) -> None:
        self.bar: Any = None
        self.active = progress and total > 0
        self.total, self.desc = total, desc
        if self.active and not lazy:
            self._open(0)

    def _open(self, initial: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, initial=initial, desc=f"{self.desc:<7}",
                        unit="sample", dynamic_ncols=True, smoothing=0.05, file=sys.stderr)

    def update(self, n: int) -> None:
        if n > 0:
            self.set_count((self.bar.n if self.bar is not None else 0) + n)

    def set_count(self, n: int) -> None:
        """Move the bar to ``n`` done (never backwards, never past the total)."""
        if not self.active or n <= 0:
            return
        n = min(n, self.total)
        if self.bar is None:
            self._open(n)
        elif n > self.bar.n:
            self.bar.update(n - self.bar.n)

    def __enter__(self) -> _StageBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _stage_bar(progress: bool, total: int, desc: str, lazy: bool = False) -> _StageBar:
    return _StageBar(progress, total, desc, lazy)


class _SampleCounter:
    """Count the samples a sampling stage has committed, from a thread polling the store.

    Sampling runs in worker processes (or deep in the engine) and commits every few seconds;
    reading the store's row count from a second connection (WAL: never blocks the writers)
    moves the stage's bar by samples, so its rate and ETA are real.
    """

    def __init__(self, store_path: Path, bar: _StageBar, every_s: float = 1.0) -> None:
        import sqlite3
        import threading

        self.path, self.bar, self.every_s = str(store_path), bar, every_s
        conn = sqlite3.connect(self.path, timeout=60.0)
        try:
            self.base = self._count(conn)
        finally:
            conn.close()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="codexlab-progress", daemon=True)

    @staticmethod
    def _count(conn: Any) -> int:
        return int(conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def _run(self) -> None:
        import sqlite3

        conn = sqlite3.connect(self.path, timeout=60.0)
        try:
            while not self.stop.wait(self.every_s):
                self.bar.set_count(self._count(conn) - self.base)
            self.bar.set_count(self._count(conn) - self.base)
        except sqlite3.Error:
            pass  # progress is best effort; the stage itself reports its errors
        finally:
            conn.close()

    def __enter__(self) -> _SampleCounter:
        if self.bar.active:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)


class _quiet_transformers:  # noqa: N801 - used as a context manager, like contextlib's
    """Silence transformers' own progress bars (e.g. "Loading weights") inside the block."""

    def __enter__(self) -> None:
        self.was = None
        try:
            from transformers.utils import logging as hf_logging

            self.was = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
        except ImportError:
            pass

    def __exit__(self, *exc: object) -> None:
        if self.was:
            from transformers.utils import logging as hf_logging

            hf_logging.enable_progress_bar()


def _grid_todo(cfg: FigureConfig, store: Any, problems: dict[str, Any]) -> list[tuple]:
    """Return ``(model, T, samples stored)`` of the grid's sets that lack samples."""
    want = len(problems) * cfg.n
    todo = []
    for model, temp in cfg.grid():
        sid = find_set(store, cfg, model, temp)
        have = 0 if sid is None else _count(store, sid, problems, cfg.n)
        if have < want:
            todo.append((model, temp, have))
    return todo


def _sample_sequential(cfg: FigureConfig, store: Any, problems: dict[str, Any],
                       problems_sha256: str, progress: bool,
                       sample_fn: Callable[..., str]) -> int:
    """Sample the grid's incomplete sets one after the other; return new samples."""
    want = len(problems) * cfg.n
    todo = _grid_todo(cfg, store, problems)
    total = sum(want - have for _, _, have in todo)
    if not todo:
        return 0
    _say(progress, f"sampling {total:,} samples in {len(todo)} (model, T) sets "
                   "(the bar starts with the first samples, after loading the model)")
    added = 0
    with _stage_bar(progress, total, "sample", lazy=True) as bar, _quiet_transformers():
        with _SampleCounter(store.path, bar):
            for model, temp, have in todo:
                # The engine's own per-set bar would sit under the stage's: off when ours shows.
                sid = sample_fn(model, problems, cfg, temp, store,
                                progress and not bar.active, problems_sha256)
                added += _count(store, sid, problems, cfg.n) - have
        bar.set_count(added)
    return added


def _sample_worker(model: str, cfg: FigureConfig, temperature: float, store_path: str,
                   problems_sha256: str, threads: int) -> str:
    """Sample one (model, T) set in a worker process; return the set id."""
    import torch

    from codexlab.store import Store

    # One thread per process: several single-threaded decoders share the cores better than
    # one multi-threaded decoder, whose OpenMP threads stall when a core is busy elsewhere.
    torch.set_num_threads(threads)
    problems, _ = load_problems(cfg)
    # The parent shows one bar for the whole stage; the library's bars would interleave.
    with _quiet_transformers(), Store(store_path) as store:
        return _default_sample_fn(model, problems, cfg, temperature, store, False,
                                  problems_sha256)


def _sample_parallel(cfg: FigureConfig, store: Any, problems: dict[str, Any],
                     problems_sha256: str, progress: bool) -> int:
    """Sample the grid's incomplete sets, ``cfg.sample_workers`` at a time; return new samples.

    Each set is one task for a process pool (spawned, so no torch state is forked). The
    store is SQLite in WAL mode with short transactions, so the workers write concurrently;
    each set stays resumable exactly as in the sequential path. Progress is one bar counted
    in samples, read from the store as the workers commit.
    """
    import concurrent.futures as cf
    import multiprocessing as mp
    import os

    want = len(problems) * cfg.n
    todo = _grid_todo(cfg, store, problems)
    if not todo:
        return 0
    # Largest models first (longest sets first): the last sets to finish are then short
    # ones, so the workers end close together instead of one finishing a big set alone.
    todo.reverse()
    workers = min(cfg.sample_workers, len(todo))
    threads = max(1, (os.cpu_count() or 1) // workers)
    total = sum(want - have for _, _, have in todo)
    _say(progress, f"sampling {total:,} samples in {len(todo)} (model, T) sets, {workers} "
                   f"at a time ({threads} thread each); the bar starts with the first samples, "
                   "after the workers have loaded their models")
    added = 0
    with _stage_bar(progress, total, "sample", lazy=True) as bar, \
            _SampleCounter(store.path, bar), \
            cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        futs = {pool.submit(_sample_worker, m, cfg, t, str(store.path), problems_sha256,
                            threads): (m, t, have) for m, t, have in todo}
        try:
            for fut in cf.as_completed(futs):
                m, t, have = futs[fut]
                sid = fut.result()
                added += _count(store, sid, problems, cfg.n) - have
        except BaseException:
            for f in futs:
                f.cancel()
            raise
    return added


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def _count(store: Any, set_id: str, problems: dict[str, Any], n: int) -> int:
    q = (f"SELECT COUNT(*) FROM samples WHERE set_id=? AND idx < ? AND task_id IN "
         f"({','.join('?' * len(problems))})")
    return int(store._conn.execute(q, (set_id, n, *problems)).fetchone()[0])


def _cluster(cfg: FigureConfig, todo: int) -> Any:
    """One Ray connection for the whole execute stage when ``cfg.ray_address`` is set.

    Each chunk's ``evaluate_samples_ray`` then reuses it, instead of connecting (for
    ``"local"``: starting a private cluster) once per chunk of :data:`EXEC_CHUNK` samples.
    """
    import contextlib

    if not cfg.ray_address or todo <= 0:
        return contextlib.nullcontext()
    from codexlab.execution.distributed import ray_connection

    return ray_connection(cfg.ray_address)


def _execute_set(store: Any, set_id: str, problems: dict[str, Any], cfg: FigureConfig,
                 force: bool, progress: bool, execute_fn: Callable[..., Any], run_id: str,
                 tag: str, bar: _StageBar | None = None) -> int:
    """Execute the samples of a set that lack a verdict (all of them when ``force``).

    ``bar``: the stage's progress bar, moved by each committed chunk.
    """
    if force:
        todo = [s for s in store.samples(set_id, problems) if s["idx"] < cfg.n]
    else:
        todo = [s for s in store.unexecuted(set_id)
                if s["task_id"] in problems and s["idx"] < cfg.n]
    if not todo:
        return 0
    check_consent()
    _say(progress, f"[{tag}] executing {len(todo)} samples")
    done = 0
    # Chunks keep a killed run's loss to one chunk: each chunk's verdicts are committed.
    for start in range(0, len(todo), EXEC_CHUNK):
        chunk = todo[start:start + EXEC_CHUNK]
        batch = [{"task_id": s["task_id"], "completion": s["completion"], "idx": s["idx"]}
                 for s in chunk]
        verdicts = execute_fn(problems, batch, cfg, progress)
        if len(verdicts) != len(chunk):
            raise RuntimeError(f"execution returned {len(verdicts)} verdicts for {len(chunk)} "
                               "samples")
        rows = []
        for s, v in zip(chunk, verdicts, strict=True):
            status = v.get("status") or ("passed" if v.get("passed") else "failed")
            rows.append({"set_id": set_id, "task_id": s["task_id"], "idx": s["idx"],
                         "status": status, "passed": bool(v.get("passed")),
                         "result": v.get("result") or status, "error_type": v.get("error_type"),
                         "duration_s": v.get("duration_s"), "mode": v.get("mode"),
                         "isolation": v.get("isolation")})
        store.add_verdicts(rows, run_id)
        done += len(rows)
        if bar is not None:
            bar.update(len(rows))
    return done


def _backtranslation_stage(cfg: FigureConfig, store: Any, problems: dict[str, Any],
                           sets: list[tuple[str, float, str]], progress: bool) -> int:
    """Score the ranking figure's set by back-translation when a docstring model is there."""
    scorer = cfg.resolved_backtranslation_model()
    if scorer is None:
        return 0
    from codexlab.backtranslation import score_sample_set

    done = 0
    ref = model_label(cfg.reference())
    for model, temp, set_id in sets:
        if model_label(model) == ref and math.isclose(temp, cfg.ranking_temperature):
            _say(progress, f"[{ref} T={temp:g}] back-translation scores under "
                           f"{model_label(scorer)}")
            with _quiet_transformers():
                done += score_sample_set(store, set_id, problems, scorer, progress=progress,
                                         device="cpu" if cfg.mode == "quick" else None)
    return done


def _bleu_set(store: Any, set_id: str, problems: dict[str, Any], cfg: FigureConfig, force: bool,
              progress: bool, tag: str, bar: _StageBar | None = None) -> int:
    """Score samples of a set against the canonical solution (only unscored unless force)."""
    from codexlab.metrics import bleu

    todo = [s for s in store.samples(set_id, problems)
            if s["idx"] < cfg.n and (force or s["bleu"] is None)]
    if not todo:
        return 0
    _say(progress, f"[{tag}] BLEU of {len(todo)} samples")
    values = [(s["task_id"], s["idx"], bleu(s["completion"],
                                            problems[s["task_id"]].canonical_solution))
              for s in todo]
    store.set_bleu(set_id, values)
    if bar is not None:
        bar.update(len(values))
    return len(values)


# -- reading results ---------------------------------------------------------------------
def load_results(cfg: FigureConfig, source: str = "auto", *, with_text: bool = False) -> Any:
    """Return the per-sample results of cfg's grid without computing anything.

    Args:
        cfg: The run config.
        source: ``"store"`` (the run store), ``"compact"`` (the committed table under
            ``data/results/<mode>/``) or ``"auto"``: the store when it holds every set of
            the grid, else the compact table when it exists, else whatever the store has.
        with_text: Include the completion text (store only).

    Returns:
        DataFrame with :data:`COMPACT_COLUMNS` (plus ``completion``, ``result`` and
        ``error_type`` from the store), ``model`` shown by :func:`model_label`, restricted to
        the grid, the selected tasks and ``idx < n``.
    """
    import pandas as pd

    if source not in ("auto", "store", "compact"):
        raise ValueError(f"source must be auto, store or compact, got {source!r}")
    compact = cfg.compact_results_dir()
    has_compact = has_compact_results(compact)
    if source == "compact" or (source == "auto" and not cfg.store_path().exists()
                               and has_compact):
        return _filter_grid(read_compact(compact), cfg)
    from codexlab.store import Store

    if not cfg.store_path().exists():
        if source == "store":
            raise FileNotFoundError(f"no run store at {cfg.store_path()}")
        return _filter_grid(pd.DataFrame(columns=list(COMPACT_COLUMNS)), cfg)
    with Store(cfg.store_path()) as store:
        ids = {}
        for m, t in cfg.grid():
            sid = find_set(store, cfg, m, t)
            if sid is not None:
                ids[sid] = (model_label(m), t)
        if source == "auto" and len(ids) < len(cfg.grid()) and has_compact:
            return _filter_grid(read_compact(compact), cfg)
        if not ids:
            df = pd.DataFrame(columns=[*COMPACT_COLUMNS, "set_id"])
        elif with_text:
            df = store.samples_df(list(ids), with_text=True)
        else:
            df = _cached_samples_df(store, sorted(ids))
    if len(df):
        df["model"] = df["set_id"].map(lambda s: ids[s][0])
    return _filter_grid(df, cfg)


def _cached_samples_df(store: Any, set_ids: list[str]) -> Any:
    """Return ``store.samples_df(set_ids, with_text=False)`` through a Parquet cache.

    Reading 656k rows (paper mode) from SQLite takes ~20 s; the Parquet copy reads in well
    under a second, so each notebook re-plots in seconds. The cache file is named after the
    set ids and a fingerprint of their contents, so any change to them makes a new file.
    """
    import hashlib

    import pandas as pd

    key = hashlib.sha256(json.dumps([set_ids, store.content_fingerprint(set_ids)], default=str)
                         .encode()).hexdigest()[:20]
    cache_dir = Path(store.path).parent / ".codexlab-cache"
    path = cache_dir / f"samples-{key}.parquet"
    if path.exists():
        try:
            df = pd.read_parquet(path)
            df["passed"] = df["passed"].astype("boolean")
            return df
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt, never trusted
            path.unlink(missing_ok=True)
    df = store.samples_df(set_ids, with_text=False)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for old in cache_dir.glob("samples-*.parquet"):
            old.unlink(missing_ok=True)  # keep one cache file, not one per state
        tmp = path.with_suffix(".tmp")
        df.to_parquet(tmp, index=False)
        tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    except OSError:
        pass  # a read-only results dir just means no cache
    return df


def _filter_grid(df: Any, cfg: FigureConfig) -> Any:
    problems, _ = load_problems(cfg) if (cfg.tasks or cfg.problems) else (None, None)
    keep = {(model_label(m), round(t, 6)) for m, t in cfg.grid()}
    if len(df):
        pairs = list(zip(df["model"], df["temperature"].round(6), strict=True))
        mask = [p in keep for p in pairs]
        df = df[mask]
        df = df[df["idx"] < cfg.n]
        if problems is not None:
            df = df[df["task_id"].isin(list(problems))]
    df = df.reset_index(drop=True)
    if "passed" in df:
        df["passed"] = df["passed"].astype("boolean")
    return df


def ensure_results(cfg: FigureConfig, force: bool = False, progress: bool = True,
                   allow_sampling: bool = True) -> Any:
    """Return the grid's results, computing only what is missing.

    Reads the store in seconds when the grid is complete (or the committed compact table
    when there is no store); otherwise runs :func:`run_grid` (which samples, so it needs the
    models, and executes, so it needs ``CODEXLAB_ALLOW_CODE_EXEC=1``).

    Args:
        cfg: The run config.
        force: Re-execute and re-score everything (see :func:`run_grid`).
        progress: Progress bars and status lines.
        allow_sampling: When False, never sample: return what is stored and warn about gaps.

    Returns:
        The DataFrame of :func:`load_results`.
    """
    if (not force and not cfg.store_path().exists()
            and has_compact_results(cfg.compact_results_dir())):
        return load_results(cfg, source="compact")
    if not force and cfg.store_path().exists():
        status = grid_status(cfg)
        if bool(status["complete"].all()):
            return load_results(cfg, source="store")
    if not allow_sampling:
        _say(progress, "some results are missing; showing what is stored")
        return load_results(cfg)
    return run_grid(cfg, force=force, progress=progress)


# -- compact tables ----------------------------------------------------------------------
def export_compact(cfg: FigureConfig, df: Any = None, out_dir: str | Path | None = None) -> Path:
    """Write the compact per-sample and per-model tables of a run (no completion text).

    Files: ``samples-<model>.parquet`` (:data:`COMPACT_COLUMNS`, sorted, so reruns give the
    same bytes), ``models.csv`` (:data:`MODEL_COLUMNS`) and ``meta.json`` (config, provenance,
    row counts).

    Args:
        cfg: The run config.
        df: Results to write (default: :func:`load_results` from the store).
        out_dir: Folder (default: ``data/results/<mode>``).

    Returns:
        The folder written.
    """
    from codexlab import provenance

    out = Path(out_dir) if out_dir else cfg.compact_results_dir()
    out.mkdir(parents=True, exist_ok=True)
    df = load_results(cfg, source="store") if df is None else df
    table = compact_table(df)
    # One file per model keeps each file small (paper mode: ~3 MB a model) and lets a model
    # be added or re-run without rewriting the others.
    for old in out.glob("samples-*.parquet"):
        old.unlink()
    for model, part in table.groupby("model", sort=True):
        write_compact(part.reset_index(drop=True), out / f"samples-{model}.parquet")
    model_table(cfg).to_csv(out / "models.csv", index=False, lineterminator="\n")
    meta = {
        "config": cfg.to_dict(),
        "rows": len(table),
        "models": sorted(table["model"].unique().tolist()),
        "temperatures": sorted(float(t) for t in table["temperature"].unique()),
        "provenance": provenance.collect(),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return out


def compact_table(df: Any) -> Any:
    """Return ``df`` reduced to :data:`COMPACT_COLUMNS` with stable dtypes and row order."""
    import pandas as pd

    floats = ("temperature", "top_p", "sum_logprob", "mean_logprob", "bleu", "backtranslation")
    t = pd.DataFrame({c: df[c] if c in df else (float("nan") if c in floats else pd.NA)
                      for c in COMPACT_COLUMNS})
    t = t.astype({"model": "string", "task_id": "string", "status": "string",
                  "temperature": "float64", "top_p": "float64", "seed": "Int64", "idx": "Int64",
                  "passed": "boolean", "n_tokens": "Int64", "sum_logprob": "float64",
                  "mean_logprob": "float64", "bleu": "float64", "backtranslation": "float64"})
    return t.sort_values(["model", "temperature", "task_id", "idx"]).reset_index(drop=True)


def write_compact(table: Any, path: str | Path) -> Path:
    """Write a compact table as Parquet (``.parquet``) or CSV (``.csv``/``.csv.gz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False, compression="zstd")
    else:
        table.to_csv(path, index=False, lineterminator="\n")
    return path


def has_compact_results(folder: str | Path) -> bool:
    """Return True when ``folder`` holds compact per-sample tables."""
    return any(Path(folder).glob("samples*.parquet")) or any(Path(folder).glob("samples*.csv*"))


def read_compact(path: str | Path) -> Any:
    """Read a compact table written by :func:`write_compact`, or every one in a folder."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("samples*.parquet")) or sorted(path.glob("samples*.csv*"))
        if not files:
            raise FileNotFoundError(f"no samples*.parquet or samples*.csv in {path}")
        df = pd.concat([read_compact(f) for f in files], ignore_index=True)
        return df
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    df = df.astype({"model": "object", "task_id": "object", "status": "object"})
    df["passed"] = df["passed"].astype("boolean")
    return df


def card_results(cfg: FigureConfig, *, quiet: bool = False) -> Any | None:
    """Return the model cards' committed per-sample results for ``cfg``'s models, or None.

    The cards' protocol (:func:`codexlab.config.card_configs`: pass@1 at T=0.2 with n=20,
    pass@100 at T=0.8 with n=100, all 164 tasks, the paper's other settings) is measured by
    ``scripts/record_humaneval_in_cards.py --measure`` for the shipped family only, so this
    answers only for the built-in models (``cfg.models`` empty) of ``cfg.variant``. A model's
    rows are used when its card's ``humaneval`` entry was recorded from this folder on the
    current weights (its ``results_dir`` is this folder relative to the repository, its
    ``weights`` the current weights fingerprint); a model left out, stale or never measured,
    is named in a printed line.

    Args:
        cfg: A figure config; its mode, n and temperatures do not matter.
        quiet: Do not print the line about left-out models.

    Returns:
        DataFrame with :data:`COMPACT_COLUMNS` (``model`` the short name), or None when
        ``cfg`` names its own models, nothing is committed or no model is left.
    """
    from codexlab.config import card_results_dir
    from codexlab.paths import DATA_DIR
    from codexlab.sampling.runner import weights_fingerprint

    folder = card_results_dir(cfg.variant)
    if cfg.models or not has_compact_results(folder):
        return None
    df = read_compact(folder)
    # The card names the folder its numbers came from (a quick-mode record names
    # data/results/quick, and then these rows are not what the card's numbers describe).
    where = folder.relative_to(DATA_DIR.parent).as_posix()
    keep, stale, missing = [], [], []
    for name in cfg.resolved_models():
        he = _card(name).get("humaneval") or {}
        if not (df["model"] == name).any():
            missing.append(name)
        elif model_dir(name) is not None and (
                he.get("weights") != weights_fingerprint(name)
                or he.get("results_dir") != where):
            stale.append(name)
        else:
            keep.append(name)
    if not quiet and (stale or missing):
        why = [f"{', '.join(stale)}: measured on other weights (or the card was re-recorded "
               "from another run)"] if stale else []
        why += [f"{', '.join(missing)}: not measured"] if missing else []
        print(f"card-protocol results left out ({'; '.join(why)}); measure them with "
              "scripts/record_humaneval_in_cards.py --measure"
              f"{' --variant ' + cfg.variant if cfg.variant else ''} --models NAME...")
    if not keep:
        return None
    return df[df["model"].isin(keep)].reset_index(drop=True)


def import_compact(path: str | Path, store: Any, *, run_id: str | None = None) -> list[str]:
    """Load a compact table into a store as sample sets with verdicts (no completion text).

    The completion is stored empty, so such sets re-plot but cannot be re-executed.

    Returns:
        The ids of the sets written.
    """
    df = read_compact(path)
    ids = []
    for (model, temp, top_p, seed), g in df.groupby(["model", "temperature", "top_p", "seed"]):
        sid = store.ensure_sample_set(model=str(model), temperature=float(temp),
                                      top_p=float(top_p), seed=int(seed), max_new_tokens=-1,
                                      stop=[], problems_sha256="",
                                      extra={"imported_compact": str(Path(path).name)})
        store.add_samples(sid, _rows(g, text=True), run_id)
        store.add_verdicts([{**r, "set_id": sid} for r in _rows(g, text=False)
                            if r["status"] is not None], run_id)
        store.set_bleu(sid, [(r["task_id"], r["idx"], r["bleu"]) for r in _rows(g, text=False)
                             if r["bleu"] is not None])
        if "backtranslation" in g and g["backtranslation"].notna().any():
            bt = g.dropna(subset=["backtranslation"])
            store.add_scores(sid, "backtranslation",
                             zip(bt["task_id"], bt["idx"].astype(int),
                                 bt["backtranslation"].astype(float), strict=True),
                             scorer=f"imported compact {Path(path).name}", run_id=run_id)
        ids.append(sid)
    return ids


def _rows(g: Any, text: bool) -> Iterable[dict[str, Any]]:
    import pandas as pd

    for r in g.itertuples(index=False):
        def val(x: Any) -> Any:
            return None if x is pd.NA or (isinstance(x, float) and math.isnan(x)) else x

        row = {"task_id": r.task_id, "idx": int(r.idx), "n_tokens": val(r.n_tokens),
               "sum_logprob": val(r.sum_logprob), "mean_logprob": val(r.mean_logprob),
               "status": val(r.status), "passed": bool(val(r.passed)), "result": val(r.status),
               "bleu": val(r.bleu)}
        if text:
            row["completion"] = ""
        yield row


# -- notebook helpers --------------------------------------------------------------------
def task_samples(cfg: FigureConfig, task_id: str, model: str = "",
                 temperature: float | None = None) -> Any:
    """Return the stored samples of one task with text, verdict, log-probs and BLEU.

    Args:
        cfg: The run config.
        task_id: The task.
        model: Model label (default: the reference model).
        temperature: Temperature (default: every sampled one).

    Returns:
        DataFrame sorted by temperature and index.
    """
    import pandas as pd

    label = model or cfg.reference_label()
    if not cfg.store_path().exists():
        # Re-plotting from the committed compact table: there is no completion text.
        return pd.DataFrame(columns=["model", "temperature", "idx", "status", "passed",
                                     "mean_logprob", "sum_logprob", "n_tokens", "bleu",
                                     "completion"])
    df = load_results(cfg, source="store", with_text=True)
    sub = df[(df["task_id"] == task_id) & (df["model"] == label)]
    if temperature is not None:
        sub = sub[(sub["temperature"] - temperature).abs() < 1e-9]
    cols = [c for c in ("model", "temperature", "idx", "status", "passed", "mean_logprob",
                        "sum_logprob", "n_tokens", "bleu", "completion") if c in sub]
    return sub[cols].sort_values(["temperature", "idx"]).reset_index(drop=True)


def sandbox_demo(cfg: FigureConfig, task_id: str) -> Any:
    """Run four hand-written completions of one task in the sandbox and return the verdicts.

    The completions: the canonical solution (passes), one that returns ``None`` (fails a
    test), one that loops forever (timed out), and one that starts a subprocess and opens a
    network connection (stopped by the sandbox). Used by the tour to show what the sandbox decides.

    Returns:
        DataFrame ``case, status, passed, result, duration_s, isolation``; empty (after
        printing why) when executing code is not allowed, so "Run All" never stops here.
    """
    import pandas as pd

    try:
        check_consent()
    except PermissionError as exc:
        print(exc)
        return pd.DataFrame(columns=["case", "status", "passed", "result", "duration_s",
                                     "isolation"])
    problems, _ = load_problems(cfg)
    if task_id not in problems:
        from codexlab.problems import load_humaneval

        problems = {task_id: load_humaneval()[task_id]}
    prob = problems[task_id]
    cases = {
        "canonical solution": prob.canonical_solution,
        "returns None": "    return None\n",
        "infinite loop": "    while True:\n        pass\n",
        # Harmless even if it escaped (a subprocess that prints, a connection attempt):
        # a demo must never risk the user's files.
        "hostile (subprocess, socket)": (
            "    import socket, subprocess\n"
            "    subprocess.run(['echo', 'escaped'])\n"
            "    socket.create_connection(('example.com', 80), timeout=1)\n"
        ),
    }
    samples = [{"task_id": task_id, "completion": c, "idx": i}
               for i, c in enumerate(cases.values())]
    verdicts = _default_execute_fn(problems, samples, cfg, False)
    rows = [{"case": name, "status": v.get("status"), "passed": v.get("passed"),
             "result": v.get("result"), "duration_s": v.get("duration_s"),
             "isolation": v.get("isolation")} for name, v in zip(cases, verdicts, strict=True)]
    return pd.DataFrame(rows)
