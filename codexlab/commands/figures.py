"""``codexlab figures``: regenerate every figure: run the grid once, then the notebooks.

The grid (sample → execute → BLEU for every model and temperature of the mode) runs first in
this process, with one progress bar per stage on the terminal; then each notebook of
``notebooks/`` runs with papermill (``SAMPLE=False``: notebooks never sample) and re-plots from
the store in seconds, or from the committed compact results when there is no store. One
closing line gives samples, passes, time and where the figures are. Executed notebooks go to
``<results>/notebooks/<mode>/``, never back into ``notebooks/``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

#: The notebooks, in the order they run.
NOTEBOOKS = ("00_tour", "01_passk_estimator", "02_scaling", "03_temperature", "04_ranking",
             "05_bleu", "06_explorer", "07_codex_s", "08_chained_ops", "09_codex_d")

#: Notebooks that compare the base models with their Codex-S variants (skipped without any).
CODEX_S_NOTEBOOKS = ("07_codex_s",)


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``figures`` sub-command."""
    p = sub.add_parser(
        "figures",
        help="regenerate every figure: sample + execute the grid once, then run the notebooks",
        description=(
            "Sample, execute and score the (model, temperature) grid of a mode (only what the "
            "store lacks), then run the notebooks with papermill. quick: built-in models on a "
            "CPU, figures into figures/quick/. paper: the Codex protocol (n=200, five "
            "temperatures), figures into figures/. Executing model-written code needs "
            "CODEXLAB_ALLOW_CODE_EXEC=1."
        ),
    )
    p.add_argument("--mode", choices=["quick", "paper"], default="quick",
                   help="preset (default quick)")
    p.add_argument("--out", metavar="DIR", default="",
                   help="figures folder (default figures/quick or figures/)")
    p.add_argument("--notebooks", metavar="NAMES", default="",
                   help=f"comma-separated subset of {','.join(NOTEBOOKS)} (default all)")
    p.add_argument("--force", action="store_true",
                   help="re-execute and re-score stored samples (never re-samples)")
    p.add_argument("--models", metavar="NAMES", default="",
                   help="comma-separated model names/paths/HF ids (default: built-in family)")
    p.add_argument("--s-models", metavar="NAMES", default="",
                   help="comma-separated Codex-S variants of --models for Figs 9/10 (default: "
                        "the built-in codex-mini-s-* when --models is not given; 'none' skips)")
    p.add_argument("--n", type=int, default=0, help="samples per task (default: the preset's)")
    p.add_argument("--temperatures", default="",
                   help="comma-separated temperature grid of Fig 5 (default: the preset's)")
    p.add_argument("--tasks", default="",
                   help="task subset, e.g. ':20', or '::1' for every task (default: the "
                        "preset's: quick mode every second HumanEval task, '::2'; paper all)")
    p.add_argument("--store", metavar="PATH", default="", help="run store (default results dir)")
    p.add_argument("--no-dedup", dest="exec_dedup", action="store_false",
                   help="execute every sample, even identical completions of a task (default: "
                        "run each once and share the verdict; recorded in the run's config)")
    p.add_argument("--no-run", dest="run_grid", action="store_false",
                   help="skip the grid step: only re-plot, from the run store, or from the "
                        "committed compact results (data/results/<mode>/) when there is none; "
                        "executes no code")
    p.add_argument("--stages", default="sample,execute,bleu,backtranslation",
                   help="grid stages to run (default sample,execute,bleu,backtranslation; the "
                        "last scores Fig 7's set when a codex-mini-d-* model is shipped); e.g. "
                        "'sample' on a GPU machine, then 'execute,bleu,backtranslation' where the "
                        "store is copied to")
    p.add_argument("--no-notebooks", dest="notebooks_run", action="store_false",
                   help="stop after the grid (and --export); needs no Jupyter")
    p.add_argument("--export", action="store_true",
                   help="also write the compact per-sample tables to data/results/<mode>/")
    p.add_argument("--timeout", type=int, default=1800,
                   help="seconds allowed per notebook (default 1800)")
    so = p.add_argument_group(
        "scale out", "sample through a server or vLLM, execute on a Ray cluster (README: "
        "Scale out). Fig 11's chains use the backend too; Codex-D's docstrings stay on the "
        "local engine.")
    so.add_argument("--backend", choices=("hf", "openai", "vllm"), default="hf",
                    help="sampling engine (default hf, this process)")
    so.add_argument("--base-url", metavar="URL", default="",
                    help="openai: the server's API root; --models are the served model ids")
    so.add_argument("--api-key-env", metavar="VAR", default="OPENAI_API_KEY",
                    help="openai: environment variable holding the API key")
    so.add_argument("--max-in-flight", type=int, default=16, metavar="N",
                    help="openai: concurrent requests (default 16)")
    so.add_argument("--extra-body", metavar="JSON", default="",
                    help="extra request fields (llama.cpp: "
                         "'{\"top_k\": 0, \"min_p\": 0, \"repeat_penalty\": 1}')")
    so.add_argument("--ray", metavar="ADDRESS", nargs="?", const="auto", default="",
                    help="execute the samples on a Ray cluster (ADDRESS of its head; 'auto' "
                         "when omitted: RAY_ADDRESS or the cluster `ray start` made here)")
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``codexlab figures``."""
    import sys
    import time

    from codexlab import config, pipeline
    from codexlab.models.registry import model_label
    from codexlab.paths import NOTEBOOKS_DIR, results_dir

    names = [n.strip() for n in args.notebooks.split(",") if n.strip()] or list(NOTEBOOKS)
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        print(f"codexlab figures: unknown notebooks {unknown}; choose from {list(NOTEBOOKS)}",
              file=sys.stderr)
        return 2
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        temps = [float(t) for t in args.temperatures.split(",") if t.strip()]
    except ValueError:
        print(f"codexlab figures: --temperatures {args.temperatures!r} must be comma-separated "
              "numbers, e.g. 0.2,0.8", file=sys.stderr)
        return 2
    try:
        cfg = config.figure_config(args.mode, models=models, n=args.n, store=args.store,
                                   out=args.out, tasks=args.tasks, temperatures=temps,
                                   exec_dedup=args.exec_dedup, backend=args.backend,
                                   base_url=args.base_url, api_key_env=args.api_key_env,
                                   max_in_flight=args.max_in_flight,
                                   extra_body=args.extra_body, ray_address=args.ray)
        cfg.grid()  # resolves the models: fails here, clearly, when none are trained
        selected, _ = pipeline.load_problems(cfg)  # a bad --tasks fails here, in one line
        print(cfg.describe(), flush=True)
        cfg_s = _codex_s_config(cfg, models, args.s_models)
        if cfg_s is not None:
            print(f"Codex-S: {', '.join(cfg_s.resolved_models())}", flush=True)
            # Fig 9 compares the largest Codex-S model with its own base over the temperature
            # grid; that base is sampled (and exported) with the base grid.
            cfg = cfg.sweeping_base_of(cfg_s)
            if cfg.swept_models:
                print(f"Fig 9 pair: {cfg_s.reference_label()} and its base "
                      f"{model_label(cfg.swept_models[-1])}, also sampled at every T", flush=True)
    except (ValueError, RuntimeError, KeyError) as exc:
        # str() of a KeyError quotes its message; print the message itself.
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"codexlab figures: {msg}", file=sys.stderr)
        return 2
    if not args.run_grid:
        if args.backend != "hf" or args.ray:
            # Re-plotting reads stored results: no sampling or execution to send anywhere.
            print("codexlab figures: note: --no-run samples and executes nothing, so "
                  "--backend and --ray only choose which stored sets are read", file=sys.stderr)
        stored = pipeline.load_results(cfg)
        # --no-run with named models: each must have results to re-plot, or every figure
        # would be drawn empty and the run would still say ok.
        have = set(stored["model"].unique())
        missing = [m for m in cfg.resolved_models() if model_label(m) not in have]
        if models and missing:
            print(f"codexlab figures: --no-run, but nothing is stored for {missing} (in "
                  f"{cfg.store_path()} or {cfg.compact_results_dir()}); run without --no-run "
                  "to sample them", file=sys.stderr)
            return 2
        n_tasks = stored["task_id"].nunique()
        if len(stored) and n_tasks < len(selected):
            print(f"note: the results hold {n_tasks} of the {len(selected)} selected tasks; "
                  "the figures show those (run without --no-run to sample the rest)",
                  flush=True)
    if cfg_s is None:
        skipped = [n for n in names if n in CODEX_S_NOTEBOOKS]
        names = [n for n in names if n not in CODEX_S_NOTEBOOKS]
        if skipped:
            print(f"skipping {', '.join(skipped)}: no Codex-S models (train them with "
                  f"`codexlab train --stage functions --init ...`, or give --s-models)",
                  flush=True)
    t_all = time.perf_counter()
    grid_df = chain_counts = docstrings = None
    if args.run_grid:
        t0 = time.perf_counter()
        try:
            stages = [x.strip() for x in args.stages.split(",") if x.strip()]
            grid_df = pipeline.run_grid(cfg, force=args.force, progress=True, stages=stages)
            if cfg_s is not None:
                print("Codex-S grid (Figs 9, 10):", flush=True)
                s_df = pipeline.run_grid(cfg_s, force=args.force, progress=True, stages=stages)
                grid_df = _concat_runs(grid_df, s_df)
            chain_counts = None
            if "08_chained_ops" in names and {"sample", "execute"} <= set(stages):
                from codexlab import chains

                print("chained-operation problems (Fig 11):", flush=True)
                spec = chains.chain_spec(cfg.mode)
                chain_counts = chains.ensure_chain_results(cfg, spec, force=args.force,
                                                           progress=True)
            if "09_codex_d" in names and not models and {"sample", "execute"} <= set(stages):
                from codexlab import codex_d

                # Table 3's docstrings and the round-trip proxy, with the notebook's defaults
                # (a codex-mini-d-* when shipped), so the notebook only re-reads them.
                dcfg = codex_d.codex_d_config(cfg.mode, store=str(cfg.store_path()))
                print(f"docstrings (Table 3): {dcfg.model_note()}", flush=True)
                dproblems = codex_d.load_problems(dcfg)
                set_id = codex_d.ensure_docstrings(dcfg, dproblems, sample=True)
                codex_d.ensure_roundtrip(dcfg, set_id, dproblems, sample=True)
                docstrings = (dcfg, set_id, dproblems)
        except PermissionError as exc:
            print(f"codexlab figures: {exc}", file=sys.stderr)
            return 3
        except ValueError as exc:
            print(f"codexlab figures: {exc}", file=sys.stderr)
            return 2
        print(f"grid: {time.perf_counter() - t0:.1f} s", flush=True)
    if args.export:
        for c in (cfg, cfg_s):
            if c is not None:
                print(f"compact results: {pipeline.export_compact(c)}", flush=True)
        if args.run_grid and chain_counts is not None and len(chain_counts):
            from codexlab import chains

            path = chains.write_compact_counts(chain_counts, cfg, chains.chain_spec(cfg.mode))
            print(f"compact results: {path}", flush=True)
        if docstrings is not None and docstrings[1] is not None:
            from codexlab import codex_d

            path = codex_d.export_compact(*docstrings)
            print(f"compact results: {path}", flush=True)
    if not args.notebooks_run:
        print(_summary_line(cfg, grid_df, time.perf_counter() - t_all, None, cfg_s=cfg_s),
              flush=True)
        return 0

    import papermill as pm

    run_dir = results_dir() / "notebooks" / cfg.mode
    run_dir.mkdir(parents=True, exist_ok=True)
    # Absolute paths: the notebooks run with notebooks/ as their working directory.
    # SAMPLE=False: the grid step above (or --no-run) decided what is computed; a notebook
    # only re-plots what is stored, or the committed compact results when there is no store.
    params = {"MODE": cfg.mode, "MODELS": list(models), "N": args.n, "FORCE": False,
              "TEMPERATURES": [float(t) for t in temps],
              "STORE": str(cfg.store_path().resolve()), "OUT": str(cfg.figures_dir().resolve()),
              "TASKS": args.tasks, "SAMPLE": False, "BACKEND": cfg.backend,
              "BASE_URL": cfg.base_url, "EXTRA_BODY": cfg.extra_body}
    failed = []
    for name in names:
        nb_params = dict(params)
        if name in CODEX_S_NOTEBOOKS and cfg_s is not None:
            nb_params["S_MODELS"] = list(cfg_s.models)
        t0 = time.perf_counter()
        src = NOTEBOOKS_DIR / f"{name}.ipynb"
        dst = run_dir / f"{name}.ipynb"
        # Only the parameters this notebook declares (09_codex_d has no MODELS, say), so
        # papermill does not warn about the shared run's other settings.
        declared = set(pm.inspect_notebook(str(src)))
        nb_params = {k: v for k, v in nb_params.items() if k in declared}
        try:
            # kernel "python3": the venv's kernelspec (`make venv` installs it with
            # --sys-prefix), or ipykernel's built-in spec, which runs this same interpreter.
            # The kernel's own start-up warnings (e.g. "running over TCP") are noise here;
            # cell errors still surface through papermill.
            # store_widget_state=False: without saved widget state, an HTML export of an
            # executed notebook shows the explorer's static snapshot (offline) instead of
            # widgets whose renderer nbconvert would load from a CDN.
            pm.execute_notebook(str(src), str(dst), parameters=nb_params, kernel_name="python3",
                                cwd=str(NOTEBOOKS_DIR), progress_bar=False,
                                execution_timeout=args.timeout,
                                extra_arguments=["--IPKernelApp.log_level=ERROR"],
                                store_widget_state=False)
            status = "ok"
        except Exception as exc:  # noqa: BLE001 - report every notebook, then fail
            status = f"FAILED ({type(exc).__name__}); see {dst}"
            failed.append(name)
            print(str(exc)[-2000:], file=sys.stderr)
        print(f"{name:<20} {time.perf_counter() - t0:6.1f} s  {status}", flush=True)
    print(_summary_line(cfg, grid_df, time.perf_counter() - t_all, run_dir, failed, cfg_s),
          flush=True)
    return 1 if failed else 0


def _codex_s_config(cfg: Any, models: list[str], s_models: str) -> Any:
    """Return the Codex-S config of the run, or None when there are no Codex-S models.

    Built-in base models pair with the built-in ``codex-mini-s-*``; user models only with
    the ``--s-models`` given (a built-in fine-tune is not a variant of a user's model).

    Raises:
        RuntimeError: ``--s-models`` names models that cannot be resolved.
    """
    names = [m.strip() for m in s_models.split(",") if m.strip()]
    if names == ["none"] or (models and not names):
        return None
    cfg_s = cfg.variant_config("s", models=names)
    try:
        cfg_s.resolved_models()
    except RuntimeError:
        if names:
            raise
        return None
    return cfg_s


def _concat_runs(a: Any, b: Any) -> Any:
    """Concatenate two grids' results, adding up their run summaries."""
    import pandas as pd

    out = pd.concat([a, b], ignore_index=True)
    ra, rb = a.attrs.get("run_summary", {}), b.attrs.get("run_summary", {})
    out.attrs["run_summary"] = {k: ra.get(k, 0) + rb.get(k, 0) for k in ("sampled", "executed")}
    return out


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s} s" if m else f"{seconds:.1f} s"


def _summary_line(cfg: Any, grid_df: Any, seconds: float, run_dir: Any,
                  failed: Sequence[str] = (), cfg_s: Any = None) -> str:
    """One closing line: samples and passes behind the figures, time, where they are.

    ``cfg_s``: the Codex-S grid's config, whose samples count too (a run's ``grid_df``
    already holds them).
    """
    from pathlib import Path

    import pandas as pd

    from codexlab import pipeline

    if grid_df is not None:
        df, source = grid_df, "run store"
    else:
        # What the notebooks read: the store, else the committed tables.
        df = pd.concat([pipeline.load_results(c) for c in (cfg, cfg_s) if c is not None],
                       ignore_index=True)
        complete = (cfg.store_path().exists()
                    and bool(pipeline.grid_status(cfg)["complete"].all()))
        compact = pipeline.has_compact_results(cfg.compact_results_dir())
        source = ("run store" if complete or not compact
                  else f"committed compact results ({cfg.compact_results_dir()})")
    passed = int(df["passed"].fillna(False).astype(bool).sum()) if len(df) else 0
    executed = int(df["passed"].notna().sum()) if len(df) else 0
    run = (grid_df.attrs.get("run_summary", {}) if grid_df is not None else {})
    now = (f"; this run sampled {run.get('sampled', 0):,}, executed {run.get('executed', 0):,}"
           if run else "")
    where = f"figures in {Path(cfg.figures_dir()).resolve()}"
    if run_dir is not None:
        where += f", executed notebooks in {run_dir}"
    head = f"FAILED notebooks: {', '.join(failed)}. " if failed else "done. "
    return (f"{head}{len(df):,} samples ({executed:,} executed, {passed:,} passed) from the "
            f"{source}{now}; {_duration(seconds)} in all; {where}")
