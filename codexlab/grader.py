"""An ipywidgets grader of generated docstrings; every verdict goes to the run store at once.

A person reads each generated docstring beside its code and says whether it is correct.

What it is for: the hand grading behind the Codex paper's Table 3 (§6: Codex-D's docstrings
"evaluated by hand-grading 10 samples per task"), in JupyterLab (``notebooks/09_codex_d``).
A grader types their name (required: grades are per person), reads the generated docstring
beside the function's code (signature and body), may reveal the original docstring (hidden
by default so it does not anchor the verdict), and clicks **Correct**, **Wrong** or **Skip**,
with an optional note. Each verdict is written with :meth:`codexlab.store.Store.add_grade`
(which records the time) before the next docstring shows, so closing the notebook loses
nothing; reopening it resumes at the first docstring this grader has not graded. **Previous**
goes back, and a new click there changes that verdict. What it is not for: metrics over
the grades (:mod:`codexlab.grading`) or sampling (:mod:`codexlab.codex_d`).

The HTML of one view is built by a pure function (:func:`render_item`), testable without a
browser; :class:`Grader` holds the state and the widgets, so tests drive it with
``grader.name.value = "ada"`` and ``grader.correct_button.click()``.

Exported HTML (``jupyter nbconvert --to html``): like the explorer, the grader's output
carries a static ``text/html`` snapshot (the first docstring and a note that grading needs a
live kernel) beside the widget, shown when the notebook holds no widget state.

Example:
    >>> from codexlab import grader  # doctest: +SKIP
    >>> grader.build_grader("results/codexlab.sqlite", set_id, samples)  # doctest: +SKIP
"""

from __future__ import annotations

import html
import inspect
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from codexlab.store import Store

#: What a verdict means, shown above the buttons. Our wording: the paper gives no rubric
#: beyond hand grading and the failure modes it names (important details left out,
#: a docstring written from the function's name rather than its body).
INSTRUCTIONS = (
    "<b>Correct</b>: the docstring says what this code does, precisely enough that someone "
    "could write the function from it. <b>Wrong</b>: it leaves out an important detail, "
    "describes something else (e.g. guesses from the function's name), or is not a docstring. "
    "<b>Skip</b>: decide later (it stays ungraded).")

#: Columns a samples table must have (:func:`codexlab.codex_d.docstring_samples`).
REQUIRED_COLUMNS = ("task_id", "idx", "generated", "docstring", "code")


def _task_key(tid: str) -> tuple[str, int]:
    head, _, num = str(tid).rpartition("/")
    return (head, int(num)) if num.isdigit() else (str(tid), -1)


def _pretty(docstring: str) -> str:
    """Dedent a docstring for reading (its first line is not indented, the rest are)."""
    return inspect.cleandoc(docstring) if docstring.strip() else "(empty)"


def render_item(item: dict[str, Any], *, show_original: bool = False,
                verdict: dict[str, Any] | None = None, position: int = 0,
                total: int = 0) -> str:
    """Return the HTML of one docstring to grade: generated docstring | code, original below.

    Args:
        item: A row of :func:`codexlab.codex_d.docstring_samples` (``task_id``, ``idx``,
            ``generated``, ``docstring``, ``code``; ``finish_reason`` optional).
        show_original: Show the original docstring (else a note that it is hidden).
        verdict: This grader's stored grade of the item (``correct``, ``note``), if any.
        position: 0-based position of the item, for the heading.
        total: Number of items, for the heading.

    Returns:
        An HTML fragment.
    """
    gen = _pretty(str(item["generated"]))
    unfinished = ""
    if item.get("finish_reason") not in (None, "stop") and not pd.isna(item.get("finish_reason")):
        unfinished = ("<div style='color:#8a6d3b;font-size:11px'>the model did not close the "
                      f"docstring ({html.escape(str(item['finish_reason']))}): it is cut where "
                      "sampling stopped</div>")
    if verdict is None:
        mine = "<span style='color:#555'>not graded yet</span>"
    else:
        word, colour = ("correct", "#0072B2") if verdict["correct"] else ("wrong", "#D55E00")
        note = f" · note: {html.escape(str(verdict['note']))}" if verdict.get("note") else ""
        mine = f"your verdict: <b style='color:{colour}'>{word}</b>{note}"
    if show_original:
        original = (f"<pre class='codexlab-original' style='font-size:11px;background:#f6f6f6;"
                    f"padding:6px;white-space:pre-wrap'>{html.escape(_pretty(str(item['docstring'])))}"
                    "</pre>")
    else:
        original = ("<p style='color:#777;font-size:11px'><i>hidden, so it does not anchor "
                    "your verdict (tick “show the original docstring” to compare)</i></p>")
    pre = "font-size:11px;white-space:pre-wrap;margin:0;padding:6px;background:#f6f6f6"
    return (
        f"<div class='codexlab-grade-item' data-task='{html.escape(str(item['task_id']))}' "
        f"data-idx='{int(item['idx'])}'>"
        f"<h4 style='margin:4px 0'>{html.escape(str(item['task_id']))} · docstring sample "
        f"#{int(item['idx'])} <span style='font-weight:normal;color:#555'>({position + 1} of "
        f"{total})</span> · {mine}</h4>"
        "<div style='display:flex;gap:12px;align-items:flex-start'>"
        "<div style='flex:1;min-width:0'><b>generated docstring</b>"
        f"<pre class='codexlab-generated' style='{pre};border-left:4px solid #0072B2'>"
        f"{html.escape(gen)}</pre>{unfinished}</div>"
        "<div style='flex:1;min-width:0'><b>code (signature + body)</b>"
        f"<pre style='{pre}'>{html.escape(str(item['code']))}</pre></div></div>"
        f"<div style='margin-top:6px'><b>original docstring</b>{original}</div></div>"
    )


def _box_class() -> type:
    """Return a VBox whose output also carries a static HTML snapshot (for exported HTML)."""
    import ipywidgets as w

    class GraderBox(w.VBox):
        """The grader: a VBox whose display bundle adds a ``text/html`` snapshot."""

        snapshot = ""
        grader: Grader | None = None

        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            data = super()._repr_mimebundle_(**kwargs)
            if isinstance(data, dict) and self.snapshot:
                # Live JupyterLab shows the widget; nbconvert without widget state shows this.
                data["text/html"] = (
                    "<p><i>A static snapshot of the grader: grading needs a running kernel "
                    "in JupyterLab.</i></p>" + self.snapshot)
            return data

    return GraderBox


class Grader:
    """The grading widget's state and controls over one docstring set.

    Args:
        store: A :class:`codexlab.store.Store` or a path to one. Only its path is kept:
            every action opens its own connection (widget events may come on another
            thread).
        set_id: The docstring sample set the grades belong to.
        samples: Its samples (:func:`codexlab.codex_d.docstring_samples`), graded in task
            (numeric) then index order.
        name: Grader name to start with (the person may type another).
        show_original: Show the original docstring from the start.

    Attributes:
        name: ``Text``: the grader's name; grading is disabled while it is empty. Changing it
            (Enter or leaving the field) loads that grader's verdicts and resumes.
        correct_button: ``Button`` Correct.
        wrong_button: ``Button`` Wrong.
        skip_button: ``Button`` Skip (the item stays ungraded).
        previous_button: ``Button`` Previous (to read or change an earlier verdict).
        note: ``Text``: optional note stored with the next verdict.
        show_original: ``Checkbox``: reveal the original docstring.
        progress: ``HTML``: "graded x of y".
        view: ``HTML``: the current docstring (:func:`render_item`).
        box: The ``VBox`` to display (also what :func:`build_grader` returns).
        position: Index of the shown item in :attr:`items`; ``len(items)`` when all are graded.

    Raises:
        ValueError: ``samples`` lacks a needed column.
    """

    def __init__(self, store: Any, set_id: str, samples: pd.DataFrame, *, name: str = "",
                 show_original: bool = False) -> None:
        import ipywidgets as w

        missing = [c for c in REQUIRED_COLUMNS if c not in samples.columns]
        if missing:
            raise ValueError(f"samples lack column(s) {missing}; pass "
                             "codexlab.codex_d.docstring_samples(store, set_id, problems)")
        #: The run store's file. Each action opens its own connection: JupyterLab sends
        #: widget events to a kernel *subshell* (ipykernel 7), whose handlers run in another
        #: thread than the cell that built the widget, and a SQLite connection may only be
        #: used by the thread that opened it.
        self.store_path = Path(store.path if isinstance(store, Store) else store)
        self._lock = threading.RLock()  # one action at a time, whichever thread sends it
        self.set_id = set_id
        order = sorted(range(len(samples)), key=lambda i: (_task_key(samples["task_id"].iat[i]),
                                                           int(samples["idx"].iat[i])))
        self.items: list[dict[str, Any]] = [samples.iloc[i].to_dict() for i in order]
        self.position = 0
        self._verdicts: dict[tuple[str, int], dict[str, Any]] = {}

        self.name = w.Text(value=name, description="grader", placeholder="your name (required)",
                           continuous_update=False)
        self.correct_button = w.Button(description="Correct", button_style="success",
                                       icon="check", tooltip="the docstring is correct")
        self.wrong_button = w.Button(description="Wrong", button_style="danger", icon="times",
                                     tooltip="the docstring is wrong")
        self.skip_button = w.Button(description="Skip", icon="forward",
                                    tooltip="decide later: the docstring stays ungraded")
        self.previous_button = w.Button(description="Previous", icon="backward",
                                        tooltip="back one docstring (to change its verdict)")
        self.note = w.Text(description="note", placeholder="optional, stored with the verdict")
        self.show_original = w.Checkbox(value=show_original,
                                        description="show the original docstring", indent=False)
        self.progress = w.HTML()
        self.bar = w.IntProgress(min=0, max=max(1, len(self.items)), value=0)
        self.message = w.HTML()
        self.view = w.HTML()
        for b in (self.correct_button, self.wrong_button, self.skip_button, self.previous_button):
            b.add_class("codexlab-grade-button")

        self.correct_button.on_click(lambda _b: self._safe(lambda: self._clicked(True)))
        self.wrong_button.on_click(lambda _b: self._safe(lambda: self._clicked(False)))
        self.skip_button.on_click(lambda _b: self._safe(self.skip))
        self.previous_button.on_click(lambda _b: self._safe(self.previous))
        self.name.observe(lambda _c: self._safe(self._load), names="value")
        self.show_original.observe(lambda _c: self._safe(self._render), names="value")

        self.box = _box_class()([
            w.HTML(f"<p style='font-size:12px'>{INSTRUCTIONS}</p>"),
            w.HBox([self.name, self.progress, self.bar]),
            self.view,
            self.show_original,
            w.HBox([self.correct_button, self.wrong_button, self.skip_button,
                    self.previous_button, self.note]),
            self.message,
        ])
        self.box.grader = self
        self._load()
        # The export snapshot shows a docstring to grade even before a name is typed.
        pos = self.position if self.current is not None else 0
        self.box.snapshot = (render_item(self.items[pos], position=pos, total=len(self.items))
                             if self.items else self.view.value)

    # -- state ------------------------------------------------------------------------------
    @property
    def grader(self) -> str:
        """The grader's name, stripped (``""`` until typed)."""
        return self.name.value.strip()

    @property
    def current(self) -> dict[str, Any] | None:
        """The item shown, or None when every item is graded (or there are none)."""
        return self.items[self.position] if self.position < len(self.items) else None

    def verdicts(self) -> dict[tuple[str, int], dict[str, Any]]:
        """Return this grader's stored verdicts: ``(task_id, idx) -> grade row``."""
        return dict(self._verdicts)

    def graded_count(self) -> int:
        """Return how many of the items this grader has graded."""
        return sum((it["task_id"], int(it["idx"])) in self._verdicts for it in self.items)

    def first_ungraded(self, start: int = 0, *, exclude: int | None = None) -> int:
        """Return the position of the next item this grader has not graded.

        Searches from ``start`` on, wrapping around, skipping ``exclude``; ``len(items)``
        when there is none.
        """
        n = len(self.items)
        for step in range(n):
            i = (start + step) % n
            it = self.items[i]
            if i != exclude and (it["task_id"], int(it["idx"])) not in self._verdicts:
                return i
        return n

    # -- actions ------------------------------------------------------------------------------
    def grade(self, correct: bool) -> None:
        """Store this grader's verdict on the shown item, then show the next ungraded one.

        Raises:
            ValueError: no grader name yet (the buttons are disabled then, so only a call
                from code gets here).
        """
        if not self.grader:
            raise ValueError("type the grader's name first (grader.name.value = 'ada')")
        it = self.current
        if it is None:
            return
        note = self.note.value.strip()
        with self._lock, Store(self.store_path) as st:
            st.add_grade(self.set_id, it["task_id"], int(it["idx"]), grader=self.grader,
                         correct=bool(correct), note=note)
        self._verdicts[(it["task_id"], int(it["idx"]))] = {"correct": bool(correct), "note": note}
        self.message.value = (f"<span style='color:#555'>saved: {html.escape(it['task_id'])} "
                              f"#{int(it['idx'])} {'correct' if correct else 'wrong'}</span>")
        self.go_to(self.first_ungraded(self.position + 1))

    def skip(self) -> None:
        """Show the next ungraded item without grading the shown one (it stays ungraded)."""
        if self.current is None:
            return
        nxt = self.first_ungraded(self.position + 1, exclude=self.position)
        if nxt == len(self.items):
            self.message.value = "<i>this is the only docstring left to grade</i>"
            return
        self.message.value = ""
        self.go_to(nxt)

    def previous(self) -> None:
        """Show the item before the shown one (graded or not), to read or change its verdict."""
        self.message.value = ""
        self.go_to(max(0, self.position - 1))

    def go_to(self, position: int) -> None:
        """Show the item at ``position`` (``len(items)``: the "all graded" view)."""
        if not 0 <= position <= len(self.items):
            raise IndexError(f"position {position} outside 0..{len(self.items)}")
        self.position = position
        it = self.current
        verdict = self._verdicts.get((it["task_id"], int(it["idx"]))) if it else None
        # The note field follows the shown item: its stored note, else empty. (Only here, so
        # toggling the original docstring keeps what the person is typing.)
        self.note.value = verdict["note"] if verdict else ""
        self._render()

    def resume(self) -> int:
        """Go to the first item this grader has not graded; return its position."""
        self.go_to(self.first_ungraded(0))
        return self.position

    # -- internals ----------------------------------------------------------------------------
    def _safe(self, action: Callable[[], Any]) -> None:
        """Run a widget event's action, one at a time; show a failure instead of losing it.

        An exception in a widget callback never reaches the person (the kernel only logs
        it), so a verdict that was not saved must say so on the widget.
        """
        with self._lock:
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - reported on the widget, see above
                self.message.value = (f"<b style='color:#D55E00'>not done: "
                                      f"{html.escape(type(exc).__name__)}: "
                                      f"{html.escape(str(exc))}</b>")

    def _clicked(self, correct: bool) -> None:
        # A button's click handler must not raise (the kernel would print a traceback under
        # the widget); a disabled button can still be clicked from code or a stale view.
        if not self.grader:
            self.message.value = "<b>Type your name in the <i>grader</i> field first.</b>"
            return
        self.grade(correct)

    def _load(self) -> None:
        """Read this grader's verdicts from the store and resume."""
        self._verdicts = {}
        if self.grader:
            with Store(self.store_path) as st:
                stored = st.grades(self.set_id, self.grader)
            for g in stored:
                self._verdicts[(g["task_id"], int(g["idx"]))] = {
                    "correct": bool(g["correct"]), "note": g.get("note") or ""}
        self.message.value = ""
        if self.items:
            self.resume()
        else:
            self._render()

    def _render(self) -> None:
        total = len(self.items)
        done = self.graded_count()
        named = bool(self.grader)
        it = self.current
        for b in (self.correct_button, self.wrong_button, self.skip_button):
            b.disabled = not named or it is None
        self.previous_button.disabled = not named or self.position == 0
        self.bar.value = done
        who = html.escape(self.grader) if named else "nobody yet"
        self.progress.value = (f"<span class='codexlab-grade-progress'>graded {done} of {total}"
                               f" ({who})</span>")
        if not total:
            self.view.value = ("<p><b>No docstring samples to grade.</b> Sample them first "
                               "(<code>SAMPLE = True</code> in the parameters cell).</p>")
            return
        if not named:
            self.view.value = ("<p class='codexlab-grade-name'><b>Type your name in the "
                               "<i>grader</i> field and press Enter to start grading.</b> "
                               "Grades are stored per person.</p>")
            return
        if it is None:
            self.view.value = (f"<p class='codexlab-grade-done'><b>All {total} docstrings are "
                               f"graded by {who}.</b> <i>Previous</i> goes back to change a "
                               "verdict.</p>")
            return
        verdict = self._verdicts.get((it["task_id"], int(it["idx"])))
        self.view.value = render_item(it, show_original=self.show_original.value,
                                      verdict=verdict, position=self.position, total=total)


def build_grader(store: Any, set_id: str | None, samples: pd.DataFrame, *, name: str = "",
                 show_original: bool = False) -> Any:
    """Return the grading widget of a docstring set (display it as a cell's last expression).

    Args:
        store: A :class:`codexlab.store.Store` or a path to one.
        set_id: The docstring sample set; None (nothing sampled) gives a message instead.
        samples: Its samples (:func:`codexlab.codex_d.docstring_samples`).
        name: Grader name to start with.
        show_original: Show the original docstring from the start.

    Returns:
        An ``ipywidgets.VBox`` whose ``.grader`` is the :class:`Grader`; or an
        ``ipywidgets.HTML`` message when there is nothing to grade.
    """
    import ipywidgets as w

    if set_id is None or not len(samples):
        return w.HTML("<p><b>No docstring samples to grade.</b> Run this notebook with "
                      "<code>SAMPLE = True</code> (and a model) to sample them first.</p>")
    return Grader(store, set_id, samples, name=name, show_original=show_original).box
