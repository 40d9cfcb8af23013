"""An ipywidgets explorer of stored samples: pick a task, model, temperature; read the samples.

What it is for: browsing what the models actually wrote, next to the verdict, log-probs and
BLEU of each sample, in JupyterLab (``notebooks/06_explorer.ipynb``). The HTML is built by a
pure function (:func:`render_samples`) so it is testable without a browser. What it is not
for: computing results (it only reads a DataFrame from :func:`codexlab.pipeline.load_results`).
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

#: Status filter choices; ``"all"`` shows every sample.
STATUS_CHOICES = ("all", "passed", "failed", "error", "timeout", "not passed")


def _task_sort_key(tid: str) -> tuple[str, int]:
    head, _, num = tid.rpartition("/")
    return (head, int(num)) if num.isdigit() else (tid, -1)


def render_samples(df: pd.DataFrame, problems: dict[str, Any], task_id: str, model: str,
                   temperature: float, status: str = "all", limit: int = 50) -> str:
    """Return HTML showing the prompt of a task and its samples for one (model, T).

    Args:
        df: Per-sample results with ``completion`` (``load_results(cfg, with_text=True)``).
        problems: task_id → problem (for the prompt).
        task_id: The task.
        model: Model label.
        temperature: Sampling temperature.
        status: One of :data:`STATUS_CHOICES`.
        limit: Most samples shown.

    Returns:
        An HTML fragment.
    """
    sub = df[(df["task_id"] == task_id) & (df["model"] == model)
             & ((df["temperature"] - temperature).abs() < 1e-9)].sort_values("idx")
    n, c = len(sub), int(sub["passed"].fillna(False).astype(bool).sum())
    if status == "not passed":
        sub = sub[~sub["passed"].fillna(False).astype(bool)]
    elif status != "all":
        sub = sub[sub["status"] == status]
    prompt = problems[task_id].prompt if task_id in problems else ""
    parts = [
        f"<h4>{html.escape(task_id)} · {html.escape(model)} · T={temperature:g}: "
        f"{c} of {n} samples pass</h4>",
        "<details><summary>prompt</summary>"
        f"<pre style='font-size:11px'>{html.escape(prompt)}</pre></details>",
    ]
    if not len(sub):
        parts.append("<p><i>no samples match this filter</i></p>")
    for r in sub.head(limit).itertuples(index=False):
        ok = bool(r.passed) if pd.notna(r.passed) else None
        colour = {True: "#1f77b4", False: "#d62728", None: "#888888"}[ok]
        stats = (f"mean log-prob {r.mean_logprob:.3f} · sum {r.sum_logprob:.1f} · "
                 f"{int(r.n_tokens)} tokens" if pd.notna(r.mean_logprob) else "no log-probs")
        bleu = f" · BLEU {r.bleu:.1f}" if pd.notna(r.bleu) else ""
        result = getattr(r, "result", None) or r.status or "not executed"
        parts.append(
            f"<div style='border-left:4px solid {colour};padding-left:8px;margin:6px 0'>"
            f"<b>#{int(r.idx)}</b> <span style='color:{colour}'>{html.escape(str(result))}</span>"
            f" · {stats}{bleu}"
            f"<pre style='font-size:11px;margin:2px 0'>{html.escape(str(r.completion))}</pre>"
            "</div>"
        )
    if len(sub) > limit:
        parts.append(f"<p><i>{len(sub) - limit} more not shown</i></p>")
    return "\n".join(parts)


def build_explorer(df: pd.DataFrame, problems: dict[str, Any]) -> Any:
    """Return an ipywidgets box: task, model, temperature and status pickers over the samples.

    Args:
        df: Per-sample results with text (``load_results(cfg, with_text=True)``).
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
    status = w.ToggleButtons(options=STATUS_CHOICES, value="all", description="status")
    out = w.HTML()

    def temps_for(m: str) -> list[float]:
        return sorted(float(t) for t in df.loc[df["model"] == m, "temperature"].unique())

    def refresh(*_: Any) -> None:
        if temp.value is None:
            return
        out.value = render_samples(df, problems, task.value, model.value, temp.value,
                                   status.value)

    def on_model(*_: Any) -> None:
        opts = temps_for(model.value)
        keep = temp.value if temp.value in opts else opts[-1]
        temp.options = opts
        temp.value = keep
        refresh()

    temp.options = temps_for(model.value)
    temp.value = temp.options[-1]
    model.observe(on_model, names="value")
    for widget in (task, temp, status):
        widget.observe(refresh, names="value")
    refresh()
    return w.VBox([w.HBox([task, model, temp]), status, out])
