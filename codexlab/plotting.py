"""Figures: the house style, fixed colours, one plot function per paper figure, and saving.

What it is for: drawing the tidy tables of :mod:`codexlab.analysis` the way the paper drew
them (plus bootstrap bands it did not draw), and writing each figure through one
:func:`save_figure` that produces PNG + PDF + the CSV behind it with byte-identical reruns.
Plot functions take ``ax=None`` (a new figure) or the axes to draw into, and return the axes.
What it is not for: computing statistics (a figure's table is computed before it is drawn;
the exception is the statistical display of Fig 8, where seaborn estimates the BLEU densities
and jitters the strip plot from the per-sample table written beside the figure).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from codexlab import analysis

#: House style: small, light, readable in print and in a notebook. Applied through
#: :func:`style` so importing this module never changes a user's global settings.
STYLE: dict[str, Any] = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 5,
    "svg.hashsalt": "codexlab",
    "pdf.fonttype": 42,
}

#: Palette for models, smallest to largest (colour-blind-safe, ordered light→dark in hue).
MODEL_PALETTE = ("#4477AA", "#66CCEE", "#228833", "#CCBB44", "#EE6677", "#AA3377", "#BBBBBB",
                 "#000000")

#: The paper's colours in Fig 7 (mean log-prob red, oracle blue), kept so our figure reads
#: like theirs.
HEURISTIC_COLORS = {"mean_logprob": "#d62728", "sum_logprob": "#9467bd",
                    "backtranslation": "#ff7f0e", "random": "#7f7f7f", "oracle": "#1f77b4"}
HEURISTIC_LABELS = {"mean_logprob": "mean log-prob", "sum_logprob": "sum log-prob",
                    "backtranslation": "back-translation", "random": "random",
                    "oracle": "oracle (pass@k)"}
#: Fig 8's correct / wrong pair: Okabe-Ito blue and orange, told apart with any colour
#: vision (the paper's blue / green is not).
OUTCOME_COLORS = {"correct": "#0072B2", "wrong": "#E69F00"}
REFERENCE_COLOR = "#888888"

#: Paper's best temperatures for the 679M model (§3.3): marked on Fig 5 (bottom).
PAPER_T_STAR = analysis.PAPER_T_STAR


@contextmanager
def style() -> Iterator[None]:
    """Apply the house style inside a ``with`` block (restores rcParams afterwards)."""
    with plt.rc_context(STYLE):
        yield


F = TypeVar("F", bound=Callable[..., Any])


def styled(func: F) -> F:
    """Run a plot function inside :func:`style`, so its figure and artists take the style."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with style():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """Return a fixed colour per model.

    Built-in models (and any list given in size order) take palette colours by rank, so a
    model keeps its colour in every figure of a run; names outside the list fall back to a
    colour chosen by a hash of the name, stable across runs and machines.
    """
    try:
        from codexlab.models.registry import builtin_model_names

        family = builtin_model_names()
    except Exception:  # noqa: BLE001 - colours must never fail a plot
        family = []
    out: dict[str, str] = {}
    order = [m for m in family if m in models] + [m for m in models if m not in family]
    for i, m in enumerate(order):
        if i < len(MODEL_PALETTE):
            out[m] = MODEL_PALETTE[i]
        else:
            h = int(hashlib.sha256(m.encode()).hexdigest(), 16)
            out[m] = MODEL_PALETTE[h % len(MODEL_PALETTE)]
    return out


def temperature_color(t: float) -> Any:
    """Return the fixed colour of temperature ``t`` (dark blue at 0 → orange-yellow at 1.2).

    A perceptually uniform map truncated before its pale end, so every T stays visible.
    """
    return plt.get_cmap("plasma")(0.05 + 0.8 * min(max(t / 1.2, 0.0), 1.0))


def _k_axis(ax: Any, k_max: int) -> None:
    """Log-x axis for k with plain integer ticks (1, 2, 5, 10, 20, 50, 100)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if t <= k_max]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _pct(ax: Any, axis: str = "y") -> None:
    """Format a rate axis in percent, from 0 up (at least to 5 %, so all-zero data shows)."""
    from matplotlib.ticker import PercentFormatter

    fmt = PercentFormatter(xmax=1.0, decimals=None)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)
    if axis == "y":
        lo, hi = ax.get_ylim()
        top = max(hi, 0.05)
        ax.set_ylim(max(lo, -0.02 * top), top)


def _note_if_all_zero(ax: Any, values: Any, what: str = "no sample passed",
                      x: float | None = None) -> None:
    """Say so on the axes when every plotted rate is 0, so a flat line reads as a result.

    ``x``: where to centre the note, in data coordinates (default: the middle of the axes).
    """
    # abs: a ranking gain can be below 0 (the pick did worse than random) without every
    # curve being at 0.
    if len(values) and float(np.nanmax(np.abs(np.asarray(values, dtype=float)))) == 0.0:
        if x is None:
            ax.text(0.5, 0.55, f"{what}: every curve is at 0", transform=ax.transAxes,
                    ha="center", fontsize=8, color="#555555")
        else:
            ax.text(x, 0.55, f"{what}:\nevery curve is at 0", transform=ax.get_xaxis_transform(),
                    ha="center", fontsize=8, color="#555555")


def _label_small_values(ax: Any, points: Sequence[tuple[float, float, str, str]],
                        limit: float = 0.05) -> None:
    """Print ``(x, y, text, colour)`` points beside themselves when all are small.

    On a rate axis that reaches 5 % or more (Codex's curves, or :func:`_pct`'s floor), values
    under ``limit`` in absolute value sit on the axis and read as 0: each non-zero one gets
    its text, stacked one row per point (at most five rows) so neighbours do not overlap.
    Nothing is printed when any value reaches ``limit``: the axis shows those.
    """
    ys = [abs(y) for _, y, _, _ in points]
    if not ys or max(ys) == 0.0 or max(ys) >= limit:
        return
    shown = sorted((pt for pt in points if pt[1] != 0.0), key=lambda pt: pt[0])
    for i, (x, y, text, colour) in enumerate(shown):
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(0, 48 + 13 * (i % 5)),
                    ha="center", fontsize=7, color=colour,
                    arrowprops={"arrowstyle": "-", "color": "#999999", "lw": 0.6})


# -- saving --------------------------------------------------------------------------------
def save_figure(fig: Any, name: str, data: pd.DataFrame | None = None,
                out_dir: str | Path | None = None,
                formats: Sequence[str] = ("png", "pdf")) -> dict[str, Path]:
    """Write ``fig`` as PNG and PDF plus ``data`` as CSV, with deterministic bytes.

    Metadata that changes between runs is stripped: the PNG's ``Software`` text chunk and
    the PDF's creation/modification dates and producer; the SVG hash salt is fixed. So a
    rerun on the same data, fonts and matplotlib gives identical files, and git shows a
    figure as changed only when it did.

    Args:
        fig: A matplotlib figure (``ax.figure`` for axes).
        name: File stem; contains the figure kind (``scaling``, ``loss``, ``temperature``,
            ``ranking``, ``bleu``, ``estimator``).
        data: The tidy table behind the figure, written as ``<name>.csv``.
        out_dir: Folder (default: ``figures/quick``).
        formats: Image formats.

    Returns:
        Mapping format → path written (``csv`` included when data is given).
    """
    from codexlab.paths import FIGURES_DIR

    out = Path(out_dir) if out_dir is not None else FIGURES_DIR / "quick"
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    meta = {
        "png": {"Software": None},
        "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
        "svg": {"Date": None, "Creator": None},
    }
    with plt.rc_context({"svg.hashsalt": "codexlab", "pdf.fonttype": 42}):
        for fmt in formats:
            path = out / f"{name}.{fmt}"
            fig.savefig(path, format=fmt, dpi=STYLE["savefig.dpi"], metadata=meta.get(fmt))
            written[fmt] = path
    if data is not None:
        path = out / f"{name}.csv"
        data.to_csv(path, index=False, lineterminator="\n", float_format="%.6g")
        written["csv"] = path
    return written


def save_table(data: pd.DataFrame, name: str, out_dir: str | Path | None = None) -> Path:
    """Write a second table behind a figure as ``<name>.csv`` (same format as save_figure)."""
    from codexlab.paths import FIGURES_DIR

    out = Path(out_dir) if out_dir is not None else FIGURES_DIR / "quick"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.csv"
    data.to_csv(path, index=False, lineterminator="\n", float_format="%.6g")
    return path


def record(notebook: str, values: dict[str, Any], out_dir: str | Path | None = None) -> Path:
    """Write a notebook's key values as ``records/<notebook>.json`` beside its figures.

    Tests read these to check a notebook's results without parsing its outputs.

    Returns:
        The JSON path.
    """
    from codexlab.paths import FIGURES_DIR

    out = (Path(out_dir) if out_dir is not None else FIGURES_DIR / "quick") / "records"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{notebook}.json"

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, (np.integer,)):
            return int(v)
        if isinstance(v, (np.floating, float)):
            return None if not np.isfinite(v) else round(float(v), 6)
        return v

    path.write_text(json.dumps(clean(values), indent=2, sort_keys=True) + "\n")
    return path


# -- Fig 3/13: estimator -------------------------------------------------------------------
@styled
def plot_estimator(bias: pd.DataFrame, data: pd.DataFrame | None = None,
                   axes: Sequence[Any] | None = None) -> Sequence[Any]:
    """Draw the naive estimator's bias: exact mean ± 1 sd vs n, and both on measured counts.

    Reproduces: Codex paper Fig 13 (left panel; the right panel is ours, on our samples).

    Args:
        bias: :func:`codexlab.analysis.estimator_bias_table`.
        data: :func:`codexlab.analysis.estimator_data_table` (optional right panel).
        axes: Two axes to draw into (default: a new 1×2 figure, or 1×1 without ``data``).

    Returns:
        The axes.
    """
    ncols = 1 if data is None else 2
    if axes is None:
        fig, axs = plt.subplots(1, ncols, figsize=(4.2 * ncols, 3.2), layout="constrained",
                                squeeze=False)
        axes = list(axs[0])
    ax = axes[0]
    colors = {"unbiased": "#1f77b4", "naive": "#d62728"}
    labels = {"unbiased": r"unbiased $1-\binom{n-c}{k}/\binom{n}{k}$",
              "naive": r"naive $1-(1-c/n)^k$"}
    k, p, true = int(bias["k"].iloc[0]), float(bias["p"].iloc[0]), float(bias["true"].iloc[0])
    # The unbiased mean lies exactly on the true value: draw the truth as a wide pale band
    # underneath and the unbiased mean as a marked line on top, so both stay visible.
    ax.axhline(true, color="#bbbbbb", linewidth=5, alpha=0.8, zorder=1, solid_capstyle="butt",
               label=f"true pass@{k} = {true:.3f}")
    for est, g in bias.groupby("estimator", sort=False):
        ax.fill_between(g["n"], g["mean"] - g["sd"], g["mean"] + g["sd"], color=colors[est],
                        alpha=0.12, linewidth=0, zorder=0)
        ax.plot(g["n"], g["mean"], color=colors[est], zorder=3,
                linestyle="-" if est == "unbiased" else "--",
                marker="o" if est == "unbiased" else None, markersize=3,
                markevery=max(1, len(g) // 12), label=labels[est] + " (mean ± 1 sd)")
    ax.set(xlabel="samples per task n", ylabel=f"estimated pass@{k}",
           title=f"Estimators vs truth for one task (p = {p:g}, k = {k})")
    _pct(ax)
    ax.legend(loc="lower right")
    if data is not None:
        ax2 = axes[1]
        # Wide hollow markers for the unbiased estimator, small filled ones on top for the
        # naive: where they agree (k = 1, or no passing sample) both still show.
        style = {"unbiased": {"marker": "o", "markersize": 8, "markerfacecolor": "white",
                              "linewidth": 2.2, "zorder": 2},
                 "naive": {"marker": "o", "markersize": 3, "linewidth": 1.0,
                           "linestyle": "--", "zorder": 3}}
        for est, g in data.groupby("estimator", sort=False):
            ax2.plot(g["k"], g["pass_at_k"], color=colors[est], label=est, **style[est])
        ax2.set(xlabel="k", ylabel="pass@k (mean over tasks)", title="Both on our samples")
        _pct(ax2)
        _note_if_all_zero(ax2, data["pass_at_k"])
        ax2.legend(loc="upper left")
    return axes


# -- Fig 1/6: scaling ----------------------------------------------------------------------
@styled
def plot_scaling(table: pd.DataFrame, ax: Any = None, *, reference: bool = True,
                 x: str = "params_non_embedding") -> Any:
    """Draw pass@1 (T=0.2) and pass@k (T=0.8) against non-embedding parameters, log-x.

    Codex's Table 1 rows (pass@1 and pass@100) are drawn grey and hollow as the reference
    the paper's curves pass through, at the sizes the paper names them by. Our models are
    named along the top edge, clear of the data and of the Codex points.

    Reproduces: Codex paper Fig 1 and Fig 6.

    Args:
        table: :func:`codexlab.analysis.scaling_table`.
        ax: Axes (default: new figure).
        reference: Overlay Codex Table 1.
        x: Parameter column for the x axis: ``params_non_embedding`` (the paper's axis, as
            in Fig 4) or ``params_total``. Falls back to ``params_total`` when no model has
            a non-embedding count.

    Returns:
        The axes.
    """
    from matplotlib.ticker import NullLocator

    ax = _axes(ax, (6.8, 3.8))
    if x == "params_non_embedding" and table[x].isna().all():
        x = "params_total"
    # pass@k first (big hollow squares), pass@1 on top (filled circles): when both are at
    # the same value (e.g. 0) the circle shows inside the square.
    order = sorted(table["metric"].unique(), key=lambda m: -int(m.split("@")[1]))
    for metric in order:
        g = table[table["metric"] == metric].sort_values(x)
        k = int(g["k"].iloc[0])
        t = float(g["temperature"].iloc[0])
        first = k == 1
        ax.errorbar(g[x], g["value"], yerr=[g["value"] - g["lo"], g["hi"] - g["value"]],
                    color="#0072B2" if first else "#D55E00", marker="o" if first else "s",
                    markersize=5 if first else 9, markerfacecolor=None if first else "white",
                    markeredgewidth=1.4, linestyle="-" if first else "--", capsize=3,
                    zorder=4 if first else 3, label=f"ours: {metric} (T={t:g})")
    if reference:
        ref = analysis.codex_table1()
        ax.plot(ref["params"], ref["pass@1"], color=REFERENCE_COLOR, marker="o",
                markerfacecolor="none", linestyle="-", linewidth=1,
                label="Codex Table 1: pass@1")
        ax.plot(ref["params"], ref["pass@100"], color=REFERENCE_COLOR, marker="s",
                markerfacecolor="none", linestyle="--", linewidth=1,
                label="Codex Table 1: pass@100")
        ax.annotate("Codex-12M", (ref["params"].iloc[0], ref["pass@100"].iloc[0]),
                    textcoords="offset points", xytext=(-7, 0), ha="right", va="center",
                    fontsize=6.5, color=REFERENCE_COLOR)
    ax.set_xscale("log")
    names = table.drop_duplicates("model").dropna(subset=[x]).sort_values(x)
    if len(names):
        # After set_xscale: a scale change resets the secondary axis' ticks.
        top = ax.secondary_xaxis("top")
        top.set_xticks(names[x].tolist(), labels=names["model"].tolist(), rotation=35,
                       ha="left", rotation_mode="anchor", fontsize=6.5, color="#444444")
        top.xaxis.set_minor_locator(NullLocator())
        top.tick_params(axis="x", length=3, pad=2)
    ax.set(xlabel="non-embedding parameters" if x == "params_non_embedding"
           else "parameters (total)", ylabel="pass rate")
    ax.set_title("HumanEval pass rate vs model size", pad=4)
    _pct(ax)
    ax.set_ylim(bottom=-0.02)
    ours_max = float(np.nanmax(table["value"].to_numpy(dtype=float))) if len(table) else 0.0
    if ours_max == 0.0:
        ax.text(0.02, 0.5, "ours: no sample passed,\nevery point at 0", transform=ax.transAxes,
                fontsize=7, color="#555555", va="center")
    else:
        # Beside Codex's curves (up to ~70 %) rates under 5 % sit on the axis: print them
        # (well above the axis, clear of the "Codex-12M" label at ~9 %).
        _label_small_values(ax, [(getattr(r, x), r.value, f"{r.metric} = {r.value:.2%}",
                                  "#0072B2" if int(r.k) == 1 else "#D55E00")
                                 for r in table.itertuples(index=False)])
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


# -- Fig 4: loss ---------------------------------------------------------------------------
@styled
def plot_loss(table: pd.DataFrame, ax: Any = None, *, paper: bool = True) -> Any:
    """Draw held-out loss against non-embedding parameters (log-log) with power-law fits.

    Our fit is drawn through our points; the paper's fit ``(N/5.92e7)^-0.13`` is drawn over
    the same range as a dashed reference. Its level is in Codex-tokenizer nats and does not
    compare with ours; its slope does.

    Reproduces: Codex paper Fig 4.

    Args:
        table: :func:`codexlab.analysis.loss_table`.
        ax: Axes (default: new figure).
        paper: Draw the paper's fit.

    Returns:
        The axes.
    """
    ax = _axes(ax, (7.0, 3.4))
    t = table.dropna(subset=["params_non_embedding", "loss"]).sort_values("params_non_embedding")
    colors = model_colors(list(t["model"]))
    for r in t.itertuples(index=False):
        ax.scatter(r.params_non_embedding, r.loss, color=colors[r.model], zorder=3, s=30,
                   label=r.model)
    if len(t) >= 2:
        n = np.geomspace(t["params_non_embedding"].min() / 1.5,
                         t["params_non_embedding"].max() * 1.5, 50)
        nc, a = float(t["fit_N_c"].iloc[0]), float(t["fit_alpha"].iloc[0])
        ax.plot(n, (n / nc) ** (-a), color="black", linewidth=1.2,
                label=f"ours: L = (N / {nc:.2g})$^{{-{a:.3f}}}$")
        if paper:
            pnc, pa = float(t["paper_N_c"].iloc[0]), float(t["paper_alpha"].iloc[0])
            ax.plot(n, (n / pnc) ** (-pa), color=REFERENCE_COLOR, linestyle="--", linewidth=1.2,
                    label=f"Codex: L = (N / {pnc:.3g})$^{{-{pa:g}}}$ (other tokenizer)")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="non-embedding parameters N", ylabel="held-out loss (nats/token)",
           title="Test loss vs model size")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return ax


# -- Fig 5: temperature --------------------------------------------------------------------
@styled
def plot_temperature(temps: pd.DataFrame, best: pd.DataFrame, axes: Sequence[Any] | None = None,
                     *, paper_t_star: bool = True) -> Sequence[Any]:
    """Draw pass@k vs k per temperature (with bands) and the best temperature per k.

    The paper's T* (0.2 at k = 1, 0.8 at k = 100) is drawn at its true k: when our samples
    stop short of k = 100 (quick mode: k ≤ n = 10), the k axis is extended to 100 and the
    stretch beyond our n is shaded and labelled, rather than moving the star.

    Reproduces: Codex paper Fig 5 (top and bottom panels).

    Args:
        temps: :func:`codexlab.analysis.temperature_table`.
        best: :func:`codexlab.analysis.best_temperature_table`; its rows with a ``source``
            other than ``"ours"`` (``paper=True``) are the paper's T*.
        axes: Two axes (default: a new figure with two stacked panels).
        paper_t_star: Mark the paper's T* on the bottom panel (from ``best``'s paper rows,
            else :data:`PAPER_T_STAR`).

    Returns:
        ``(top, bottom)`` axes.
    """
    if axes is None:
        fig, axs = plt.subplots(2, 1, figsize=(5.6, 5.6), layout="constrained", sharex=True,
                                gridspec_kw={"height_ratios": [2, 1]})
        axes = list(axs)
    top, bottom = axes
    source = best["source"] if "source" in best else pd.Series("ours", index=best.index)
    ours = best[source == "ours"]
    paper = best[source != "ours"][["k", "temperature"]]
    if not len(paper):
        paper = pd.DataFrame({"k": list(PAPER_T_STAR), "temperature": list(PAPER_T_STAR.values())})
    if not paper_t_star:
        paper = paper.iloc[:0]
    for t, g in temps.groupby("temperature", sort=True):
        g = g.sort_values("k")
        c = temperature_color(float(t))
        top.plot(g["k"], g["pass_at_k"], color=c, label=f"T = {t:g}")
        top.fill_between(g["k"], g["lo"], g["hi"], color=c, alpha=0.12, linewidth=0)
    kmax = int(temps["k"].max())
    k_hi = max([kmax, *paper["k"].astype(int).tolist()])
    model = temps["model"].iloc[0]
    top.set(ylabel="pass@k", title=f"pass@k vs k per temperature ({model}, n = {kmax})")
    _note_if_all_zero(top, temps["pass_at_k"], x=float(np.sqrt(kmax)) if k_hi > kmax else None)
    _pct(top)
    top.legend(loc="upper left", ncols=2 if temps["temperature"].nunique() > 3 else 1)
    bottom.plot(ours["k"], ours["temperature"], color="black", marker="o", markersize=3,
                drawstyle="steps-mid", label="ours: best T")
    if "tied" in ours:
        # Where several temperatures reach the same pass@k the "best" is only the lowest
        # of them; hollow grey markers say so instead of claiming a preference.
        tie = ours[ours["tied"] > 1]
        if len(tie):
            bottom.scatter(tie["k"], tie["temperature"], s=28, facecolors="white",
                           edgecolors="#888888", zorder=3, label="tie between temperatures")
    for i, r in enumerate(paper.itertuples(index=False)):
        k, t = int(r.k), float(r.temperature)
        bottom.scatter([k], [t], marker="*", s=120, color="#d62728", zorder=4,
                       label="paper T* (679M model)" if i == 0 else None, gid="paper_t_star")
        right = k >= k_hi
        bottom.annotate(f"paper: k={k}, T*={t:g}", (k, t), textcoords="offset points",
                        xytext=(-8, 6) if right else (6, 7), ha="right" if right else "left",
                        fontsize=7, color="#d62728")
    for ax in (top, bottom):
        _k_axis(ax, k_hi)
        ax.set_xlim(0.9, k_hi * 1.12)
    if k_hi > kmax:
        # Our n caps k; the paper's k = 100 lies beyond it. Shade that stretch and say why.
        for ax in (top, bottom):
            ax.axvspan(kmax * 1.04, k_hi * 1.12, color="#eeeeee", zorder=0, linewidth=0)
        top.text(np.sqrt(kmax * 1.04 * k_hi * 1.12), 0.5,
                 f"k > n = {kmax}:\nnot estimable from\n{kmax} samples per task",
                 transform=top.get_xaxis_transform(), ha="center", va="center", fontsize=7,
                 color="#555555")
    bottom.set(xlabel="k (samples)", ylabel="best T", ylim=(-0.05, 1.15))
    bottom.legend(loc="upper left", fontsize=7)
    return axes


# -- Fig 7: ranking ------------------------------------------------------------------------
@styled
def plot_ranking(table: pd.DataFrame, ax: Any = None) -> Any:
    """Draw the pass rate of the one sample each heuristic picks out of k, with bands.

    Reproduces: Codex paper Fig 7 (mean log-prob red, back-translation orange, oracle blue
    as in the paper; the back-translation curve is drawn when the table has it, i.e. when
    the samples were scored with a docstring model, :mod:`codexlab.backtranslation`).

    Args:
        table: :func:`codexlab.analysis.ranking_table`.
        ax: Axes (default: new figure).

    Returns:
        The axes.
    """
    ax = _axes(ax, (4.8, 3.4))
    for h in analysis.HEURISTICS:
        g = table[table["heuristic"] == h].sort_values("k")
        if not len(g):
            continue
        ax.plot(g["k"], g["pass_rate"], color=HEURISTIC_COLORS[h], label=HEURISTIC_LABELS[h],
                linestyle="--" if h == "random" else "-")
        ax.fill_between(g["k"], g["lo"], g["hi"], color=HEURISTIC_COLORS[h], alpha=0.12,
                        linewidth=0)
    _note_if_all_zero(ax, table["pass_rate"])
    _k_axis(ax, int(table["k"].max()))
    title = "Choosing one sample out of k"
    if {"model", "temperature"} <= set(table.columns) and len(table):
        n = f", n = {int(table['n_min'].iloc[0])}" if "n_min" in table else ""
        title += f"\n{table['model'].iloc[0]}, T = {float(table['temperature'].iloc[0]):g}{n}"
    ax.set(xlabel="k (samples drawn)", ylabel="pass rate of the chosen sample", title=title)
    _pct(ax)
    ax.legend(loc="upper left")
    return ax


# -- Figs 9, 10: Codex-S vs Codex ----------------------------------------------------------
#: Fixed colours of the two families (Okabe-Ito blue and vermilion).
FAMILY_COLORS = {"Codex": "#0072B2", "Codex-S": "#D55E00"}


@styled
def plot_codex_s_temperature(best: pd.DataFrame, ax: Any = None, *,
                             paper_t_star: bool = True) -> Any:
    """Draw the best temperature per k of Codex and Codex-S (step lines, one per family).

    The paper's T* are starred at their true k: Codex-679M 0.2 / 0.8 at k = 1 / 100, Codex-S
    0 / 1. Ties (several temperatures reach the same pass@k, e.g. all at 0) are hollow.

    Reproduces: Codex paper Fig 9.

    Args:
        best: :func:`codexlab.analysis.best_temperature_compare`.
        ax: Axes (default: new figure).
        paper_t_star: Star the paper's T*.

    Returns:
        The axes.
    """
    ax = _axes(ax, (5.2, 3.2))
    kmax = int(best["k"].max()) if len(best) else 1
    k_hi = max(kmax, 100) if paper_t_star else kmax
    for i, (family, g) in enumerate(best.groupby("family", sort=False)):
        g = g.sort_values("k")
        c = FAMILY_COLORS.get(str(family), MODEL_PALETTE[i % len(MODEL_PALETTE)])
        # Offset so two families at the same T stay visible as two lines.
        off = (-0.012, 0.012)[i % 2]
        ax.plot(g["k"], g["temperature"] + off, color=c, marker="o", markersize=3,
                drawstyle="steps-mid", label=f"ours: {family} ({g['model'].iloc[0]})")
        tie = g[g["tied"] > 1]
        if len(tie):
            ax.scatter(tie["k"], tie["temperature"] + off, s=26, facecolors="white",
                       edgecolors=c, zorder=3)
    if paper_t_star:
        for family, stars in (("Codex", analysis.PAPER_T_STAR),
                              ("Codex-S", analysis.PAPER_T_STAR_S)):
            c = FAMILY_COLORS[family]
            ax.scatter(list(stars), list(stars.values()), marker="*", s=110, color=c,
                       edgecolors="black", linewidths=0.4, zorder=4,
                       label=f"paper T*: {family}" + (" (679M)" if family == "Codex" else ""))
        if k_hi > kmax:
            ax.axvspan(kmax * 1.04, k_hi * 1.12, color="#eeeeee", zorder=0, linewidth=0)
            ax.text(np.sqrt(kmax * 1.04 * k_hi * 1.12), 0.5, f"k > n = {kmax}",
                    transform=ax.get_xaxis_transform(), ha="center", fontsize=7,
                    color="#555555")
    _k_axis(ax, k_hi)
    ax.set_xlim(0.9, k_hi * 1.12)
    if len(best) and (best["tied"] > 1).any():
        ax.scatter([], [], s=26, facecolors="white", edgecolors="#888888",
                   label="tie between temperatures")
    if len(best) and "pass_at_k" in best and float(best["pass_at_k"].max()) == 0.0:
        # Every temperature ties at 0: the drawn "best" is only the lowest T; say so.
        ax.text(np.sqrt(kmax), 0.5, "no sample passed: every temperature\nties at 0 "
                "(the line shows the lowest)", transform=ax.get_xaxis_transform(),
                ha="center", fontsize=7, color="#555555")
    ax.set(xlabel="k (samples)", ylabel="best T", ylim=(-0.08, 1.15),
           title="Best sampling temperature per k: Codex vs Codex-S")
    # Below the axes: a best T of 1.0 (Codex-S's, the paper's too) runs along the top,
    # where a legend inside would cover it.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, fontsize=7)
    return ax


@styled
def plot_codex_s(table: pd.DataFrame, axes: Sequence[Any] | None = None) -> Sequence[Any]:
    """Draw Codex-S against Codex per size: pass@1, pass@k and the ranking gain.

    Three panels sharing a log x axis of non-embedding parameters (the base model's): pass@1
    (T = 0.2), pass@k (T = 0.8; k = 100 in the paper, n in quick mode) and the mean-log-prob
    ranking gain over random averaged over k, each with 95 % bootstrap intervals over tasks.

    Reproduces: Codex paper Fig 10.

    Args:
        table: :func:`codexlab.analysis.codex_s_table`.
        axes: Three axes (default: a new figure).

    Returns:
        The three axes.
    """
    from matplotlib.ticker import NullFormatter

    if axes is None:
        fig, axs = plt.subplots(1, 3, figsize=(10.5, 3.4), layout="constrained", sharex=True)
        axes = list(axs)
    metrics = [m for m in sorted(table["metric"].unique(), key=lambda m: (
        m == "ranking gain", int(m.split("@")[1]) if "@" in m else 0))]
    for ax, metric in zip(axes, metrics, strict=False):
        g_all = table[table["metric"] == metric]
        for family, g in g_all.groupby("family", sort=False):
            g = g.sort_values("params_non_embedding")
            c = FAMILY_COLORS.get(str(family), "#333333")
            base = family == "Codex"
            # Codex as small filled circles over Codex-S's larger hollow squares (as in Fig 6):
            # where the two families coincide (both at 0, or the same pass@100) both show.
            ax.errorbar(g["params_non_embedding"], g["value"],
                        yerr=[g["value"] - g["lo"], g["hi"] - g["value"]], color=c,
                        marker="o" if base else "s", markersize=5 if base else 8,
                        markerfacecolor=None if base else "white", markeredgewidth=1.4,
                        capsize=3, linestyle="-" if base else "--", zorder=4 if base else 3,
                        label=str(family))
        t = float(g_all["temperature"].iloc[0])
        if metric == "ranking gain":
            k = int(g_all["k"].max())
            title = f"mean log-prob pick − random\n(avg over k = 1..{k}, T = {t:g})"
            ax.axhline(0, color="#999999", linewidth=0.8)
        else:
            title = f"{metric} (T = {t:g})"
            ax.set_ylim(bottom=-0.02)
        ax.set_xscale("log")
        # Sizes within about a decade get labelled minor ticks (2x10^5, 3x10^5, ...) that
        # collide in a narrow panel; the decades suffice to read the axis.
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(title=title, xlabel="non-embedding parameters")
        _pct(ax)
        _note_if_all_zero(ax, g_all["value"])
        gain = metric == "ranking gain"
        _label_small_values(ax, [
            (r.params_non_embedding, r.value,
             f"{r.family}: {r.value * 100:+.3f} pp" if gain else f"{r.family}: {r.value:.2%}",
             FAMILY_COLORS.get(str(r.family), "#333333"))
            for r in g_all.itertuples(index=False)])
    axes[0].set_ylabel("pass rate")
    axes[0].legend(loc="upper left")
    return axes


# -- Fig 8: BLEU ---------------------------------------------------------------------------
@contextmanager
def _numpy_global_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator inside the block and restore it afterwards.

    seaborn's strip-plot jitter draws from the global generator; seeding it keeps the figure's
    bytes identical across reruns without changing the caller's random state.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _bleu_title(samples: pd.DataFrame) -> str:
    if {"model", "temperature"} <= set(samples.columns) and len(samples):
        return f"{samples['model'].iloc[0]}, T = {float(samples['temperature'].iloc[0]):g}"
    return ""


@styled
def plot_bleu(samples: pd.DataFrame, axes: Sequence[Any] | None = None) -> Sequence[Any]:
    """Draw BLEU densities of correct vs wrong samples: one panel per task, then all pooled.

    seaborn's kernel density estimate (clipped to BLEU's [0, 100], not extended past the
    data) with a rug of the samples themselves under it; each panel's x axis is scaled to its
    data, and the y axis keeps its density ticks. A group whose scores are all equal has no
    density: a spike at its value and a note show it.

    Reproduces: Codex paper Fig 8 (correct blue, wrong orange: a colour-blind-safe pair in
    place of the paper's blue / green), plus a pooled panel the paper did not show.

    Args:
        samples: :func:`codexlab.analysis.bleu_samples_table`.
        axes: One axes per panel (default: a new 1×P figure).

    Returns:
        The axes.
    """
    import seaborn as sns
    from matplotlib.patches import Patch

    panels = list(dict.fromkeys(samples["panel"]))
    if axes is None:
        fig, axs = plt.subplots(1, len(panels), figsize=(2.5 * len(panels), 2.9),
                                layout="constrained", squeeze=False)
        axes = list(axs[0])
    for ax, panel in zip(axes, panels, strict=False):
        g = samples[samples["panel"] == panel]
        hi = float(g["bleu"].max()) if len(g) else 0.0
        xmax = min(103.0, max(hi * 1.08, 1.0))  # a spike at 100 stays inside
        handles, notes = [], []
        for outcome in ("correct", "wrong"):
            vals = g.loc[g["outcome"] == outcome, "bleu"].astype(float)
            color = OUTCOME_COLORS[outcome]
            handles.append(Patch(facecolor=color, alpha=0.6, label=f"{outcome} ({len(vals)})"))
            if not len(vals):
                continue
            if vals.nunique() > 1:
                sns.kdeplot(x=vals, ax=ax, color=color, fill=True, alpha=0.25, linewidth=1.5,
                            cut=0, clip=(0.0, 100.0), warn_singular=False)
            else:  # a point mass: no density to estimate, so draw it as a spike
                ax.axvline(float(vals.iloc[0]), ymax=0.8, color=color, linewidth=3, alpha=0.7)
                notes.append(f"all {len(vals)} {outcome}: BLEU {vals.iloc[0]:.3g}")
            sns.rugplot(x=vals, ax=ax, color=color, height=0.06, linewidth=0.8,
                        alpha=float(np.clip(40.0 / len(vals), 0.05, 0.8)))
        if notes:
            ax.text(0.5, 0.55, "\n".join(notes), transform=ax.transAxes, ha="center",
                    fontsize=6.5, color="#555555")
        ax.set(title=str(panel), xlabel="BLEU", ylabel="", xlim=(0, xmax))
        ax.set_ylim(bottom=0)
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(handles=handles, loc="upper right", fontsize=6.5, handlelength=1.0)
    axes[0].set_ylabel("density")
    title = _bleu_title(samples)
    axes[0].figure.suptitle(
        "BLEU vs the canonical solution, correct vs wrong samples"
        + (f" ({title})" if title else ""), fontsize=9)
    return axes


@styled
def plot_bleu_scatter(samples: pd.DataFrame, tasks: pd.DataFrame,
                      axes: Sequence[Any] | None = None, seed: int = 0) -> Sequence[Any]:
    """Draw each sample's BLEU against its verdict, and per-task mean BLEU against pass rate.

    Left: a seaborn strip plot of every pooled sample (jitter seeded, so reruns give the same
    bytes) with each group's median. Right: one point per task.

    Reproduces: the BLEU-vs-correctness comparison behind Codex paper Fig 8 (§2.1: BLEU is
    not a reliable proxy for functional correctness).

    Args:
        samples: :func:`codexlab.analysis.bleu_samples_table` (its pooled panel is used).
        tasks: :func:`codexlab.analysis.bleu_task_table`.
        axes: Two axes (default: new 1×2 figure).
        seed: Seed of the horizontal jitter.

    Returns:
        The axes.
    """
    import seaborn as sns

    if axes is None:
        fig, axs = plt.subplots(1, 2, figsize=(8.0, 3.3), layout="constrained")
        axes = list(axs)
    left, right = axes
    pooled = samples[samples["panel"] == analysis.POOLED]
    order = ["wrong", "correct"]
    for i, outcome in enumerate(order):
        v = pooled.loc[pooled["outcome"] == outcome, "bleu"].to_numpy(dtype=float)
        if not len(v):
            left.text(i, 0.5, f"no {outcome}\nsamples", transform=left.get_xaxis_transform(),
                      ha="center", fontsize=7, color="#555555")
            continue
        # Thousands of points (paper mode) would be a solid block: fade them with the count.
        alpha = float(np.clip(60.0 / len(v), 0.04, 0.5))
        with _numpy_global_seed(seed + i):
            sns.stripplot(x=np.full(len(v), i), y=v, native_scale=True, orient="v",
                          jitter=0.25, size=2.5, alpha=alpha, color=OUTCOME_COLORS[outcome],
                          linewidth=0, ax=left)
        left.hlines(np.median(v), i - 0.35, i + 0.35, color="black", linewidth=1.5, zorder=5)
    left.set_xticks([0, 1], [f"{o} ({int((pooled['outcome'] == o).sum())})" for o in order])
    left.set(ylabel="BLEU vs canonical solution", xlim=(-0.6, 1.6), xlabel="",
             title="Each sample (line: median)")
    left.set_ylim(bottom=0)
    right.scatter(tasks["mean_bleu"], tasks["pass_rate"], s=14, color="#444444", alpha=0.7,
                  linewidths=0)
    right.set(xlabel="mean BLEU of the task's samples", ylabel="task pass rate",
              title=f"Each task ({len(tasks)})")
    _pct(right)
    title = _bleu_title(samples)
    if title:
        axes[0].figure.suptitle(f"BLEU and correctness ({title})", fontsize=9)
    return axes


# -- a convenience for notebooks -----------------------------------------------------------
def show_paths(paths: dict[str, Path]) -> str:
    """Return a one-line listing of files written by :func:`save_figure`."""
    return "  ".join(f"{fmt}: {p}" for fmt, p in paths.items())
