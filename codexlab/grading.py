"""Grades of generated docstrings → the Codex paper's Table 3, and agreement with the proxies.

What it is for: turning the hand grades a grader records (:mod:`codexlab.grader`, stored by
:meth:`codexlab.store.Store.add_grade`) into pass@1 and pass@10 of docstring generation
with bootstrap intervals over tasks, per grader and pooled over graders (Codex paper Table
3); setting the paper's numbers beside ours; and measuring how well an automatic proxy
(BLEU above a threshold, or the round trip of :mod:`codexlab.codex_d`) agrees with a person:
a 2×2 count table and Cohen's kappa. Pure functions over DataFrames, plus
:func:`load_grades`, a small store reader. What it is not for: sampling, running code, or
the grading widget (:mod:`codexlab.codex_d`, :mod:`codexlab.grader`).

Grades DataFrame: one row per (sample, grader) with columns ``task_id``, ``idx``, ``grader``,
``correct`` (bool), and optionally ``set_id``, ``note``, ``created`` (what
:meth:`~codexlab.store.Store.grades` returns).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from codexlab.metrics import bootstrap_pass_at_k

#: Codex paper Table 3 (arXiv:2107.03374v2, §6): hand-graded pass rates in percent, 10
#: samples per task at T = 0.8. Codex-D-12B writes docstrings; the Codex-S-12B row is the
#: paper's comparison (code generation by Codex-S under the same sampling). The text dump
#: the project works from lost the column header; with 10 graded samples per task the
#: columns are pass@1 and pass@10 (see ../shared/research/paper.md, Table 3).
PAPER_TABLE3: dict[str, dict[str, float]] = {
    "Codex-S-12B": {"pass@1": 32.2, "pass@10": 59.5},
    "Codex-D-12B": {"pass@1": 20.3, "pass@10": 46.5},
}

#: Name of the verdict pooled over graders (strict majority per sample).
POOLED = "pooled"

#: Default BLEU (0–100) at or above which the BLEU proxy calls a docstring correct; our
#: choice (the paper reports no BLEU for docstrings).
DEFAULT_BLEU_THRESHOLD = 30.0

#: Columns of a grades table.
GRADE_COLUMNS = ("set_id", "task_id", "idx", "grader", "correct", "note", "created")

#: Columns of :func:`pass_at_k_table`.
PASS_COLUMNS = ("grader", "metric", "k", "estimate", "low", "high", "tasks", "tasks_short",
                "graded")

#: Columns of :func:`agreement_table`.
AGREEMENT_COLUMNS = ("grader", "proxy", "n", "both_correct", "grader_only", "proxy_only",
                     "both_wrong", "agreement", "kappa")


def _require(df: Any, columns: Sequence[str], what: str, fix: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(df).__name__}; {fix}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing} (has {list(df.columns)}); {fix}")
    return df


_GRADES_FIX = ("pass grading.load_grades(store, set_id) or pd.DataFrame(store.grades(set_id))")


# -- reading -------------------------------------------------------------------------------------
def load_grades(store: Any, set_id: str | None, grader: str | None = None) -> pd.DataFrame:
    """Return a docstring set's stored grades as a DataFrame (empty, with the columns, if none).

    Args:
        store: A :class:`codexlab.store.Store` or a path; a path that does not exist reads as
            no grades (no store is created).
        set_id: The docstring set; None (nothing sampled) reads as no grades. (All sets'
            grades: ``store.grades()``.)
        grader: Only this grader's.

    Returns:
        Columns :data:`GRADE_COLUMNS`, ``correct`` as bool, oldest first.
    """
    from codexlab.store import Store

    if isinstance(store, Store) and set_id is not None:
        rows = store.grades(set_id, grader)
    elif set_id is None or store is None or not Path(store).expanduser().exists():
        rows = []
    else:
        with Store(store) as st:
            rows = st.grades(set_id, grader)
    df = pd.DataFrame(rows, columns=list(GRADE_COLUMNS))
    df["correct"] = df["correct"].astype(bool)
    df["idx"] = df["idx"].astype(int)
    return df


# -- pass@k from grades ----------------------------------------------------------------------------
def _check_grades(grades: Any) -> pd.DataFrame:
    df = _require(grades, ("task_id", "idx", "grader", "correct"), "grades", _GRADES_FIX)
    dup = df.duplicated(["task_id", "idx", "grader"])
    if dup.any():
        r = df[dup].iloc[0]
        raise ValueError(f"grades hold two verdicts of grader {r['grader']!r} on sample "
                         f"({r['task_id']}, {r['idx']}); keep one per (sample, grader) (the "
                         "store keeps the latest)")
    return df


def pooled_grades(grades: pd.DataFrame) -> pd.DataFrame:
    """Return one pooled verdict per sample: correct when a strict majority of graders say so.

    A tie (e.g. one of two graders) counts as *not* correct: a docstring that half the
    graders reject is not one a user could rely on. With one grader the pooled verdicts are
    that grader's.

    Returns:
        Grades table with ``grader`` = :data:`POOLED` and a ``graders`` column (how many
        graded the sample).
    """
    df = _check_grades(grades)
    if not len(df):
        return pd.DataFrame(columns=["task_id", "idx", "grader", "correct", "graders"])
    g = df.groupby(["task_id", "idx"], sort=False)["correct"].agg(["sum", "count"]).reset_index()
    out = pd.DataFrame({"task_id": g["task_id"], "idx": g["idx"].astype(int), "grader": POOLED,
                        "correct": 2 * g["sum"] > g["count"], "graders": g["count"]})
    return out


def _with_pooled(grades: pd.DataFrame, pooled: bool) -> list[tuple[str, pd.DataFrame]]:
    df = _check_grades(grades)
    if pooled and (df["grader"] == POOLED).any():
        raise ValueError(f"a grader is named {POOLED!r}, the name of the pooled verdict; rename "
                         "that grader's rows, or pass pooled=False")
    out = [(str(name), sub) for name, sub in df.groupby("grader", sort=True)]
    if pooled and len(out) > 1:
        out.append((POOLED, pooled_grades(df)))
    return out


def grade_counts(grades: pd.DataFrame, *, pooled: bool = True) -> pd.DataFrame:
    """Return per grader and task: ``n`` graded samples and ``c`` graded correct.

    Args:
        grades: Grades table (module docstring).
        pooled: Add the :data:`POOLED` grader (majority verdict) when there are several.

    Returns:
        Columns ``grader``, ``task_id``, ``n``, ``c``.
    """
    rows = []
    for name, sub in _with_pooled(grades, pooled):
        for tid, t in sub.groupby("task_id", sort=False):
            rows.append({"grader": name, "task_id": tid, "n": len(t),
                         "c": int(t["correct"].astype(bool).sum())})
    return pd.DataFrame(rows, columns=["grader", "task_id", "n", "c"])


def pass_at_k_table(grades: pd.DataFrame, ks: Sequence[int] = (1, 10), *, n_boot: int = 1000,
                    confidence: float = 0.95, seed: int = 0, pooled: bool = True) -> pd.DataFrame:
    """pass@k of docstring generation from hand grades, per grader (and pooled), with CIs.

    Per task, ``n`` graded samples of which ``c`` are graded correct give the unbiased
    pass@k (:func:`codexlab.metrics.pass_at_k`); the mean over tasks is the estimate and a
    percentile bootstrap over tasks the interval (:func:`codexlab.metrics.bootstrap_pass_at_k`).
    Tasks with fewer than k graded samples cannot estimate pass@k and are left out of it
    (counted in ``tasks_short``), so a half-graded task does not bias pass@10 down.

    Reproduces: Codex paper Table 3 (pass@1 and pass@10 of Codex-D, 10 hand-graded samples
    per task).

    Args:
        grades: Grades table (module docstring).
        ks: The k values.
        n_boot: Bootstrap replicates.
        confidence: Two-sided coverage of the interval.
        seed: Seed of the bootstrap.
        pooled: Add the :data:`POOLED` grader when there are several.

    Returns:
        One row per (grader, k), columns :data:`PASS_COLUMNS`: ``estimate``, ``low``,
        ``high`` as fractions in [0, 1] (NaN when no task has k graded samples), ``tasks``
        used, ``tasks_short`` left out, ``graded`` samples of the grader. Empty when there
        are no grades.

    Raises:
        ValueError: a k < 1, a grades column missing, or two verdicts of one grader on one
            sample.
    """
    bad = [k for k in ks if int(k) < 1]
    if bad:
        raise ValueError(f"ks must be >= 1, got {bad}")
    counts = grade_counts(grades, pooled=pooled)
    rows = []
    for name, sub in counts.groupby("grader", sort=False):
        for k in ks:
            ok = sub[sub["n"] >= k]
            if len(ok):
                est, lo, hi = bootstrap_pass_at_k(ok["n"].to_numpy(), ok["c"].to_numpy(), int(k),
                                                  n_boot=n_boot, confidence=confidence, seed=seed)
            else:
                est = lo = hi = float("nan")
            rows.append({"grader": name, "metric": f"pass@{k}", "k": int(k), "estimate": est,
                         "low": lo, "high": hi, "tasks": len(ok), "tasks_short": len(sub) - len(ok),
                         "graded": int(sub["n"].sum())})
    return pd.DataFrame(rows, columns=list(PASS_COLUMNS))


def table3(ours: pd.DataFrame, label: str = "ours",
           proxies: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return Table 3 of the Codex paper with our rows beside it, in percent.

    Args:
        ours: :func:`pass_at_k_table` output (pass@1 and pass@10 rows used).
        label: Prefix of our rows (``"ours"`` → ``"ours: ada"``).
        proxies: Optional :func:`pass_at_k_table` of :func:`proxy_grades`: the automatic
            proxies' pass@k, added as rows with source ``proxy`` so the committed table
            carries a number even before anyone grades.

    Returns:
        Columns ``source`` (``paper`` / ``ours`` / ``proxy``), ``model`` (paper model, our
        grader or the proxy), ``pass@1``, ``pass@10`` (percent), ``pass@1 CI``, ``pass@10 CI``
        (text), ``note``. When ``ours`` is empty, one row of ours says ``no grades yet``.
    """
    _require(ours, ("grader", "metric", "estimate", "low", "high"), "ours",
             "pass grading.pass_at_k_table(grades)")
    rows: list[dict[str, Any]] = []
    for model, vals in PAPER_TABLE3.items():
        rows.append({"source": "paper", "model": model, "pass@1": vals["pass@1"],
                     "pass@10": vals["pass@10"], "pass@1 CI": "", "pass@10 CI": "",
                     "note": "Codex paper Table 3: hand-graded, 10 samples/task, T = 0.8"
                             + ("" if model.startswith("Codex-D") else " (code generation)")})
    if not len(ours):
        rows.append({"source": label, "model": "-", "pass@1": np.nan, "pass@10": np.nan,
                     "pass@1 CI": "", "pass@10 CI": "", "note": "no grades yet"})
    parts = [(label, ours)]
    if proxies is not None and len(proxies):
        _require(proxies, ("grader", "metric", "estimate", "low", "high"), "proxies",
                 "pass grading.pass_at_k_table(grading.proxy_grades(proxies), pooled=False)")
        parts.append(("proxy", proxies))
    for source, table in parts:
        rows.extend(_table3_rows(table, source))
    return pd.DataFrame(rows, columns=["source", "model", "pass@1", "pass@10", "pass@1 CI",
                                       "pass@10 CI", "note"])


def _table3_rows(ours: pd.DataFrame, label: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for grader, sub in ours.groupby("grader", sort=False):
        row: dict[str, Any] = {"source": label, "model": f"{label}: {grader}"}
        notes = []
        for metric in ("pass@1", "pass@10"):
            r = sub[sub["metric"] == metric]
            if not len(r) or pd.isna(r["estimate"].iat[0]):
                row[metric], row[f"{metric} CI"] = np.nan, ""
                notes.append(f"{metric}: no task has {metric[5:]} graded samples")
                continue
            r0 = r.iloc[0]
            row[metric] = 100 * r0["estimate"]
            row[f"{metric} CI"] = f"[{100 * r0['low']:.1f}, {100 * r0['high']:.1f}]"
            if "tasks" in r0:
                notes.append(f"{metric}: {int(r0['tasks'])} tasks")
        row["note"] = "; ".join(notes)
        rows.append(row)
    return rows


def grades_note(grades: pd.DataFrame, total: int | None = None) -> str:
    """Return one line about the grades: who graded how many (or ``no grades yet``)."""
    df = _check_grades(grades)
    if not len(df):
        return "no grades yet: grade some docstrings with the widget above, then re-run this cell"
    per = df.groupby("grader")["correct"].agg(["count", "sum"])
    of = f" of {total}" if total is not None else ""
    parts = [f"{g}: {int(r['count'])}{of} graded, {int(r['sum'])} correct"
             for g, r in per.iterrows()]
    return "grades: " + "; ".join(parts)


# -- agreement with the proxies ------------------------------------------------------------------
def cohen_kappa(a: Iterable[Any], b: Iterable[Any]) -> float:
    """Cohen's kappa of two raters' labels on the same items.

    ``kappa = (p_o - p_e) / (1 - p_e)``, where ``p_o`` is the fraction of items on which the
    raters agree and ``p_e = sum_l p_a(l) p_b(l)`` the agreement expected by chance from each
    rater's own label frequencies. 1 is perfect agreement, 0 chance level, < 0 worse than
    chance.

    Source: J. Cohen (1960), "A coefficient of agreement for nominal scales", Educational
    and Psychological Measurement 20(1):37–46, eq. (1).

    Args:
        a: Labels of rater a (any hashable values, e.g. bools).
        b: Labels of rater b, same length and order.

    Returns:
        Kappa; NaN when undefined: no items, or ``p_e = 1`` (both raters gave one and the same
        label to every item, so chance explains all agreement).

    Raises:
        ValueError: ``a`` and ``b`` differ in length.
    """
    la, lb = list(a), list(b)
    if len(la) != len(lb):
        raise ValueError(f"cohen_kappa needs two label lists of one length, got {len(la)} and "
                         f"{len(lb)}; align them on the same items first")
    n = len(la)
    if n == 0:
        return float("nan")
    p_o = sum(x == y for x, y in zip(la, lb, strict=True)) / n
    labels = set(la) | set(lb)
    p_e = sum((la.count(lab) / n) * (lb.count(lab) / n) for lab in labels)
    if p_e >= 1.0:
        return float("nan")
    return (p_o - p_e) / (1.0 - p_e)


def proxy_table(samples: pd.DataFrame, roundtrip: pd.DataFrame | None = None, *,
                bleu_threshold: float = DEFAULT_BLEU_THRESHOLD) -> pd.DataFrame:
    """Return each docstring sample's proxy verdicts.

    Args:
        samples: Docstring samples with ``task_id``, ``idx``, ``bleu``
            (:func:`codexlab.codex_d.docstring_samples`).
        roundtrip: Round-trip outcomes with ``task_id``, ``idx``, ``roundtrip_pass``
            (:func:`codexlab.codex_d.roundtrip`); None: no round-trip column values (NA).
        bleu_threshold: BLEU (0–100) at or above which ``bleu_pass`` is True.

    Returns:
        Columns ``task_id``, ``idx``, ``bleu``, ``bleu_pass``, ``roundtrip_pass`` (nullable
        booleans: NA where the proxy has no value).
    """
    _require(samples, ("task_id", "idx", "bleu"), "samples",
             "pass codexlab.codex_d.docstring_samples(...)")
    if not 0 <= bleu_threshold <= 100:
        raise ValueError(f"bleu_threshold is a BLEU score in [0, 100], got {bleu_threshold}")
    out = samples[["task_id", "idx", "bleu"]].copy()
    out["idx"] = out["idx"].astype(int)
    bleu = pd.to_numeric(out["bleu"], errors="coerce")
    out["bleu_pass"] = pd.array([pd.NA if pd.isna(v) else bool(v >= bleu_threshold)
                                 for v in bleu], dtype="boolean")
    if roundtrip is not None and len(roundtrip):
        _require(roundtrip, ("task_id", "idx", "roundtrip_pass"), "roundtrip",
                 "pass codexlab.codex_d.roundtrip(...)")
        rt = roundtrip[["task_id", "idx", "roundtrip_pass"]].copy()
        rt["idx"] = rt["idx"].astype(int)
        out = out.merge(rt, on=["task_id", "idx"], how="left")
    else:
        out["roundtrip_pass"] = pd.NA
    out["roundtrip_pass"] = out["roundtrip_pass"].astype("boolean")
    return out


#: Names of the proxies as "graders" in :func:`proxy_grades` (column → name).
PROXY_NAMES = {"bleu_pass": "BLEU", "roundtrip_pass": "round trip"}


def proxy_grades(proxies: pd.DataFrame, bleu_threshold: float | None = None) -> pd.DataFrame:
    """Return the proxies' verdicts as a grades table, one "grader" per proxy.

    So :func:`pass_at_k_table` gives the proxies' pass@1 / pass@10 exactly as a person's
    (samples without a proxy value are left out, like ungraded ones).

    Args:
        proxies: :func:`proxy_table` output.
        bleu_threshold: Written into the BLEU proxy's name (``BLEU >= 30``) when given.

    Returns:
        Columns ``task_id``, ``idx``, ``grader`` (``BLEU``, ``round trip``), ``correct``.
    """
    _require(proxies, ("task_id", "idx"), "proxies", "pass grading.proxy_table(...)")
    frames = []
    for column, name in PROXY_NAMES.items():
        if column not in proxies:
            continue
        have = proxies[proxies[column].notna()]
        if column == "bleu_pass" and bleu_threshold is not None:
            name = f"{name} >= {bleu_threshold:g}"
        frames.append(pd.DataFrame({"task_id": have["task_id"].to_numpy(),
                                    "idx": have["idx"].astype(int).to_numpy(),
                                    "grader": name,
                                    "correct": have[column].astype(bool).to_numpy()}))
    if not frames:
        return pd.DataFrame(columns=["task_id", "idx", "grader", "correct"])
    return pd.concat(frames, ignore_index=True)


def proxy_summary(proxies: pd.DataFrame) -> pd.DataFrame:
    """Return per proxy: samples with a value, how many it calls correct, and the fraction."""
    rows = []
    for proxy in ("bleu_pass", "roundtrip_pass"):
        col = proxies[proxy] if proxy in proxies else pd.Series(dtype="boolean")
        have = col.dropna()
        rows.append({"proxy": proxy, "samples": len(have), "correct": int(have.astype(bool).sum()),
                     "fraction": float(have.astype(bool).mean()) if len(have) else np.nan})
    return pd.DataFrame(rows)


def agreement_table(grades: pd.DataFrame, proxies: pd.DataFrame,
                    proxy_columns: Sequence[str] = ("bleu_pass", "roundtrip_pass"), *,
                    pooled: bool = True) -> pd.DataFrame:
    """Agreement between each grader (and the pooled verdict) and each proxy.

    Only samples that both the grader graded and the proxy scored count. The counts form the
    2×2 table (grader × proxy); ``agreement`` is the fraction on its diagonal and ``kappa``
    Cohen's kappa (:func:`cohen_kappa`).

    Args:
        grades: Grades table (module docstring).
        proxies: :func:`proxy_table` output.
        proxy_columns: Boolean columns of ``proxies`` to compare.
        pooled: Add the :data:`POOLED` grader when there are several.

    Returns:
        One row per (grader, proxy), columns :data:`AGREEMENT_COLUMNS`; empty without grades.

    Raises:
        ValueError: a needed column is missing.
    """
    _require(proxies, ("task_id", "idx", *proxy_columns), "proxies",
             "pass grading.proxy_table(samples, roundtrip)")
    rows = []
    for name, sub in _with_pooled(grades, pooled):
        g = sub[["task_id", "idx", "correct"]].copy()
        g["idx"] = g["idx"].astype(int)
        p = proxies[["task_id", "idx", *proxy_columns]].copy()
        p["idx"] = p["idx"].astype(int)
        both = g.merge(p, on=["task_id", "idx"], how="inner")
        for proxy in proxy_columns:
            m = both[both[proxy].notna()]
            a = m["correct"].astype(bool).tolist()
            b = m[proxy].astype(bool).tolist()
            n = len(a)
            counts = {"both_correct": sum(x and y for x, y in zip(a, b, strict=True)),
                      "grader_only": sum(x and not y for x, y in zip(a, b, strict=True)),
                      "proxy_only": sum(y and not x for x, y in zip(a, b, strict=True)),
                      "both_wrong": sum(not x and not y for x, y in zip(a, b, strict=True))}
            rows.append({"grader": name, "proxy": proxy, "n": n, **counts,
                         "agreement": (counts["both_correct"] + counts["both_wrong"]) / n
                         if n else np.nan,
                         "kappa": cohen_kappa(a, b)})
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))
