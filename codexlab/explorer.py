"""An ipywidgets explorer of stored samples: pick a task, model, temperature; read the samples.

What it is for: browsing what the models actually wrote, next to the verdict, log-probs and
BLEU of each sample, in JupyterLab (``notebooks/06_explorer.ipynb``). The HTML is built by a
pure function (:func:`render_samples`) so it is testable without a browser. What it is not
for: computing results (it only reads a DataFrame from :func:`codexlab.pipeline.load_results`).

Statuses are the execution engine's vocabulary (:data:`codexlab.execution.verdicts.STATUSES`:
``passed``, ``failed``, ``error``, ``syntax_error``, ``timeout``, ...) plus ``not_executed``;
the same words are the store's ``status`` column, ``codexlab evaluate``'s counts and the
columns of :func:`codexlab.analysis.summary_table`. Every status is a filter, and the filter
counts of a selection sum to its sample count.

Exported HTML (``jupyter nbconvert --to html``): the explorer's output carries a static
``text/html`` snapshot of its first view beside the widget, so a notebook exported without
saved widget state shows that snapshot, offline. With saved widget state (JupyterLab's
*Save Widget State Automatically*), nbconvert prefers the live widget, whose renderer it loads
from a CDN: such an HTML file is blank offline.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from codexlab.analysis import NOT_EXECUTED, status_counts

#: The filter that shows every sample.
ALL = "all"

#: Colour of each status in the list (passed blue, failures red/orange, no verdict grey).
STATUS_COLORS = {"passed": "#0072B2", "failed": "#D55E00", "error": "#CC79A7",
                 "syntax_error": "#E69F00", "timeout": "#56B4E9", NOT_EXECUTED: "#888888"}

#: Shown instead of a completion when the results come from the committed compact tables.
NO_TEXT = ("(completion text is not in the committed compact results; run `make figures` to "
           "sample into your own run store)")


def _task_sort_key(tid: str) -> tuple[str, int]:
    head, _, num = tid.rpartition("/")
    return (head, int(num)) if num.isdigit() else (tid, -1)


def load_samples(cfg: Any) -> pd.DataFrame:
    """Return the samples of cfg's grid for the explorer, never creating a run store.

    From the run store, with completion text, when it holds any of the grid; else from the
    committed compact tables (``data/results/<mode>/``: verdicts, log-probs and BLEU, no
    text); else an empty table. ``df.attrs["source"]`` says which (``store``, ``compact``,
    ``none``).
    """
    from codexlab import pipeline

    df = None
    if cfg.store_path().exists():
        df = pipeline.load_results(cfg, source="store", with_text=True)
        source = "store"
    if (df is None or not len(df)) and pipeline.has_compact_results(cfg.compact_results_dir()):
        df = pipeline.load_results(cfg, source="compact")
        source = "compact"
    if df is None:
        df = pd.DataFrame(columns=list(pipeline.COMPACT_COLUMNS))
        source = "none"
    df.attrs["source"] = source
    df.attrs["compact_dir"] = str(cfg.compact_results_dir())
    return df


def results_source(cfg: Any) -> str:
    """Return one line saying where a notebook's results come from (never creates a store)."""
    from codexlab import pipeline

    compact = cfg.compact_results_dir()
    has_compact = pipeline.has_compact_results(compact)
    if not cfg.store_path().exists():
        if has_compact:
            return (f"results: the committed compact results in {compact} (no run store at "
                    f"{cfg.store_path()}; `make figures` samples your own)")
        return f"results: none yet (no run store at {cfg.store_path()}, no committed results)"
    status = pipeline.grid_status(cfg)
    if bool(status["complete"].all()):
        return f"results: the run store {cfg.store_path()} (every set of the grid complete)"
    done = int(status["complete"].sum())
    fallback = (f"; the figures use the committed results in {compact} until it is"
                if has_compact and not bool((status["samples"] > 0).all()) else "")
    return (f"results: the run store {cfg.store_path()} ({done} of {len(status)} sets of the "
            f"grid complete{fallback})")


def task_samples(cfg: Any, task_id: str, model: str = "",
                 temperature: float | None = None) -> pd.DataFrame:
    """Return one task's samples (text when the run store has it), as :func:`load_samples`.

    Args:
        cfg: The run config.
        task_id: The task.
        model: Model label (default: the reference model).
        temperature: Temperature (default: every sampled one).

    Returns:
        DataFrame sorted by temperature and index: status, verdict, log-probs, BLEU and, from
        a run store, the completion.
    """
    df = load_samples(cfg)
    label = model or cfg.reference_label()
    sub = df[(df["task_id"] == task_id) & (df["model"] == label)]
    if temperature is not None:
        sub = sub[(sub["temperature"].astype(float) - temperature).abs() < 1e-9]
    cols = [c for c in ("model", "temperature", "idx", "status", "passed", "mean_logprob",
                        "sum_logprob", "n_tokens", "bleu", "completion") if c in sub]
    return sub[cols].sort_values(["temperature", "idx"]).reset_index(drop=True)


def selection(df: pd.DataFrame, task_id: str, model: str, temperature: float) -> pd.DataFrame:
    """Return the samples of one (task, model, T), by index."""
    return df[(df["task_id"] == task_id) & (df["model"] == model)
              & ((df["temperature"].astype(float) - temperature).abs() < 1e-9)].sort_values("idx")


def sample_statuses(sub: pd.DataFrame) -> pd.Series:
    """Return each sample's status word (:data:`~codexlab.analysis.NOT_EXECUTED` if none)."""
    if "status" in sub:
        st = sub["status"].astype("object")
    else:
        st = sub["passed"].map({True: "passed", False: "failed"})
    return st.where(st.notna(), NOT_EXECUTED).astype(str)


def filter_counts(sub: pd.DataFrame) -> dict[str, int]:
    """Return ``{"all": n, status: count, ...}`` for a selection; the statuses sum to n."""
    st = sample_statuses(sub)
    counts = status_counts(st.where(st != NOT_EXECUTED))
    return {ALL: len(sub), **counts}


def render_samples(df: pd.DataFrame, problems: dict[str, Any], task_id: str, model: str,
                   temperature: float, status: str = ALL, limit: int = 50) -> str:
    """Return HTML showing the prompt of a task and its samples for one (model, T).

    Args:
        df: Per-sample results (``completion`` shown when present: :func:`load_samples`).
        problems: task_id → problem (for the prompt).
        task_id: The task.
        model: Model label.
        temperature: Sampling temperature.
        status: ``"all"`` or a status word (see the module docstring).
        limit: Most samples shown.

    Returns:
        An HTML fragment.
    """
    sub = selection(df, task_id, model, temperature)
    counts = filter_counts(sub)
    statuses = sample_statuses(sub)
    shown = sub if status == ALL else sub[statuses == status]
    prompt = problems[task_id].prompt if task_id in problems else ""
    tally = " · ".join(f"{n} {st}" for st, n in counts.items() if st != ALL)
    parts = [
        f"<h4>{html.escape(task_id)} · {html.escape(model)} · T={temperature:g}: "
        f"{counts[ALL]} samples ({html.escape(tally)})</h4>",
        "<details><summary>prompt</summary>"
        f"<pre style='font-size:11px'>{html.escape(prompt)}</pre></details>",
    ]
    if not len(shown):
        parts.append(f"<p><i>no sample has status {html.escape(status)}</i></p>")
    has_text = "completion" in shown
    if not has_text and len(shown):
        parts.append(f"<p style='color:#555'><i>{html.escape(NO_TEXT)}</i></p>")
    for r, st in zip(shown.head(limit).itertuples(index=False), statuses[shown.index],
                     strict=False):
        colour = STATUS_COLORS.get(st, "#D55E00")
        stats = (f"mean log-prob {r.mean_logprob:.3f} · sum {r.sum_logprob:.1f} · "
                 f"{int(r.n_tokens)} tokens" if pd.notna(r.mean_logprob) else "no log-probs")
        bleu = f" · BLEU {r.bleu:.1f}" if pd.notna(r.bleu) else ""
        result = getattr(r, "result", None)
        detail = (f" <span style='color:#555'>{html.escape(str(result))}</span>"
                  if isinstance(result, str) and result and result != st else "")
        text = (f"<pre style='font-size:11px;margin:2px 0'>{html.escape(str(r.completion))}</pre>"
                if has_text else "")
        parts.append(
            f"<div class='codexlab-sample' data-status='{html.escape(st)}' "
            f"style='border-left:4px solid {colour};padding-left:8px;margin:6px 0'>"
            f"<b>#{int(r.idx)}</b> <b style='color:{colour}'>{html.escape(st)}</b>{detail}"
            f" · {stats}{bleu}{text}</div>"
        )
    if len(shown) > limit:
        parts.append(f"<p><i>{len(shown) - limit} more not shown</i></p>")
    return "\n".join(parts)


def _source_note(df: pd.DataFrame) -> str:
    if df.attrs.get("source") != "compact":
        return ""
    where = html.escape(str(df.attrs.get("compact_dir", "data/results/")))
    return ("<p style='color:#555'><i>No run store here: showing the committed compact "
            f"results ({where}): verdicts, log-probs and BLEU, no completion text. "
            "<code>make figures</code> samples into your own store.</i></p>")


def _box_class() -> type:
    """Return a VBox whose output also carries a static HTML snapshot (for exported HTML)."""
    import ipywidgets as w

    class ExplorerBox(w.VBox):
        """The explorer: a VBox whose display bundle adds a ``text/html`` snapshot."""

        snapshot = ""

        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            data = super()._repr_mimebundle_(**kwargs)
            if isinstance(data, dict) and self.snapshot:
                # Live JupyterLab prefers the widget view; nbconvert uses this when the
                # notebook holds no widget state (and would otherwise print "VBox(...)").
                data["text/html"] = (
                    "<p><i>A static snapshot of the explorer (the live controls need a running "
                    "kernel in JupyterLab).</i></p>" + self.snapshot)
            return data

    return ExplorerBox


def build_explorer(df: pd.DataFrame, problems: dict[str, Any]) -> Any:
    """Return an ipywidgets box: task, model, temperature and status pickers over the samples.

    Args:
        df: Per-sample results (:func:`load_samples`).
        problems: task_id → problem.

    Returns:
        An ``ipywidgets.VBox``; display it as the last expression of a cell.
    """
    import ipywidgets as w

    if not len(df):
        return w.HTML("<p><b>No stored samples.</b> Run <code>00_tour</code> or "
                      "<code>codexlab figures --mode quick</code> first.</p>")
    tasks = sorted(df["task_id"].unique(), key=_task_sort_key)
    models = list(dict.fromkeys(df["model"]))
    task = w.Dropdown(options=tasks, description="task")
    model = w.Dropdown(options=models, value=models[-1], description="model")
    temp = w.Dropdown(description="T")
    # Every status of the data (and the core ones) is a filter; labels carry the counts of
    # the current selection.
    values = list(filter_counts(df))
    status = w.ToggleButtons(options=[(v, v) for v in values], value=ALL, description="status",
                             style={"button_width": "auto"})
    out = w.HTML()
    busy = [False]

    def temps_for(m: str) -> list[float]:
        return sorted(float(t) for t in df.loc[df["model"] == m, "temperature"].unique())

    def refresh(*_: Any) -> None:
        if temp.value is None or busy[0]:
            return
        counts = filter_counts(selection(df, task.value, model.value, temp.value))
        keep = status.value
        busy[0] = True
        try:  # relabelling resets the selection: put it back without re-entering
            status.options = [(f"{v} ({counts.get(v, 0)})", v) for v in values]
            status.value = keep
        finally:
            busy[0] = False
        out.value = render_samples(df, problems, task.value, model.value, temp.value,
                                   status.value)

    def on_model(*_: Any) -> None:
        opts = temps_for(model.value)
        keep = temp.value if temp.value in opts else opts[-1]
        busy[0] = True
        try:
            temp.options = opts
            temp.value = keep
        finally:
            busy[0] = False
        refresh()

    temp.options = temps_for(model.value)
    temp.value = temp.options[-1]
    model.observe(on_model, names="value")
    for widget in (task, temp, status):
        widget.observe(refresh, names="value")
    refresh()
    box = _box_class()([w.HBox([task, model, temp]), status, w.HTML(_source_note(df)), out])
    box.snapshot = _source_note(df) + out.value
    return box
