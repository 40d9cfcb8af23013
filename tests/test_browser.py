"""The workbench as a person sees it: JupyterLab in headless Chromium, two notebooks run.

Starts JupyterLab from this interpreter (the project's venv) on a free loopback port, opens
copies of ``06_explorer`` and ``00_tour`` in Debian's Chromium driven by Playwright (the
system browser through ``executable_path``: no ``playwright install``, which downloads a
browser), runs all cells from the Run menu and checks what is on the screen: the explorer's
widgets are controls (not text such as ``VBox(...)``), a status filter click changes the list,
the tour's sandbox table has its four rows; and saving an executed notebook leaves what git
stores unchanged (the notebook filter of ``make venv``). Screenshots are kept under
``test-artifacts/browser/`` (gitignored; ``CODEXLAB_TEST_ARTIFACTS`` moves it).

Like a fresh clone: no run store (``CODEXLAB_RESULTS_DIR`` is empty), so the notebooks read
the committed compact results; consent is given so the tour's sandbox demo runs. Without
Chromium or Playwright the test skips, except under CI (``CI=true``), where it fails: CI
installs both (.ci/run), and a browser test that silently skipped would prove nothing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from codexlab.paths import NOTEBOOKS_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = NOTEBOOKS_DIR.parent
ARTIFACTS = Path(os.environ.get("CODEXLAB_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"

#: Flags for Chromium as root on a machine with no network beyond loopback (without the
#: background-networking ones it keeps trying to reach Google's hosts).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what}; CI must install it (.ci/run) rather than skip the browser test")
    pytest.skip(what)


def _chromium() -> str:
    exe = os.environ.get("CODEXLAB_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if not exe:
        _missing("no Chromium found (Debian: apt-get install chromium)")
    return str(exe)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(name: str, folder: Path, out: Path) -> Path:
    """Copy a notebook with its figures folder set to ``out`` (as papermill would inject)."""
    nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source, n = re.subn(r'^OUT: str = "".*$', f"OUT: str = {str(out)!r}", cell.source,
                             flags=re.M)
    assert n == 1, "the parameters cell lost its OUT line"
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A JupyterLab server on a free loopback port, serving copies of two notebooks."""
    pytest.importorskip("jupyterlab")
    root = tmp_path_factory.mktemp("lab")
    nbdir, out = root / "notebooks", root / "figures"
    nbdir.mkdir()
    paths = {n: _prepare(n, nbdir, out) for n in ("00_tour", "06_explorer")}
    # No "get notified about Jupyter news?" toast over the page (and no fetch attempts).
    settings = root / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), uuid.uuid4().hex
    env = {**os.environ,
           "CODEXLAB_RESULTS_DIR": str(root / "results"),  # no run store: a fresh clone
           "CODEXLAB_ALLOW_CODE_EXEC": "1",  # the tour's sandbox demo runs code
           "JUPYTER_CONFIG_DIR": str(root / "jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(root / "jupyter-runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(root / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / "lab-workspaces"),
           "IPYTHONDIR": str(root / "ipython")}
    log = open(root / "jupyterlab.log", "w")  # noqa: SIM115 - closed after the server stops
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={nbdir}",
           "--ServerApp.allow_root=True", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=nbdir)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start:\n"
                                + (root / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield {"base": base, "token": token, "paths": paths, "out": out, "root": root}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    exe = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser: object, lab: dict, name: str) -> object:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(60_000)
    page.goto(f"{lab['base']}/lab/tree/{name}.ipynb?token={lab['token']}&reset")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    # The kernel named by the notebook ("python3": this venv's) starts on its own; Run All
    # before it is ready would run nothing.
    page.locator(".jp-Toolbar-kernelName", has_text="Python 3").first.wait_for(timeout=120_000)
    page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle")).first.wait_for(
        timeout=120_000)
    return page


def _run_all(page: object, lab: dict, name: str, timeout_s: float = 240) -> dict:
    """Run > Run All Cells, then wait for the notebook's last cell (its record file)."""
    record = lab["out"] / "records" / f"{name}.json"
    record.unlink(missing_ok=True)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
    deadline = time.monotonic() + timeout_s
    while not record.exists():
        errors = page.locator(".jp-OutputArea-output[data-mime-type="
                              "'application/vnd.jupyter.stderr'] .jp-RenderedText")
        tb = page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")
        if tb.count():
            _shot(page, f"{name}-error")
            pytest.fail(f"{name}: a cell raised:\n{tb.first.inner_text()[-2000:]}")
        if time.monotonic() > deadline:
            _shot(page, f"{name}-timeout")
            pytest.fail(f"{name}: Run All did not finish in {timeout_s:.0f} s "
                        f"({errors.count()} stderr outputs)")
        time.sleep(0.5)
    return json.loads(record.read_text())


def _shot(page: object, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)  # type: ignore[attr-defined]
    return path


def test_explorer_widgets_are_controls_and_filter(browser, lab) -> None:
    page = _open(browser, lab, "06_explorer")
    rec = _run_all(page, lab, "06_explorer")
    assert rec["samples"] > 0
    box = page.locator(".widget-vbox").first
    box.wait_for()
    box.scroll_into_view_if_needed()
    # Controls, not their text representation.
    assert page.locator(".widget-vbox .widget-dropdown select").count() >= 3
    buttons = page.locator(".widget-vbox .widget-toggle-button")
    assert buttons.count() >= 6  # all + passed, failed, error, syntax_error, timeout
    texts = " ".join(page.locator(".jp-OutputArea-output").all_inner_texts())
    assert "VBox(" not in texts and "HBox(" not in texts
    samples = page.locator(".widget-vbox .codexlab-sample")
    labels = {m.group(1): int(m.group(2)) for t in buttons.all_inner_texts()
              if (m := re.match(r"^(\S+) \((\d+)\)$", t.strip()))}
    total = labels.pop("all")
    assert sum(labels.values()) == total, labels  # the filter counts add up
    assert samples.count() == total
    _shot(page, "06_explorer-all")
    # A status with some but not all samples, else one with none: the list must change.
    pick = next((s for s, n in labels.items() if 0 < n < total), None) or \
        next(s for s, n in labels.items() if n == 0)
    buttons.filter(has_text=re.compile(rf"^{re.escape(pick)} \(")).click()
    page.wait_for_function(
        "([n]) => document.querySelectorAll('.widget-vbox .codexlab-sample').length === n",
        arg=[labels[pick]], timeout=30_000)
    assert samples.count() == labels[pick] != total
    _shot(page, f"06_explorer-filter-{pick}")
    page.close()


def test_tour_runs_the_sandbox_and_saves_clean(browser, lab) -> None:
    page = _open(browser, lab, "00_tour")
    rec = _run_all(page, lab, "00_tour")
    assert rec["rows"] > 0
    table = page.locator("table.dataframe", has_text="canonical solution")
    table.wait_for()
    table.scroll_into_view_if_needed()
    rows = table.locator("tbody tr")
    assert rows.count() == 4
    cells = " ".join(rows.all_inner_texts())
    for status in ("passed", "failed", "timeout"):
        assert status in cells, cells
    _shot(page, "00_tour-sandbox")

    # Save the executed notebook as a person would; what git stores must not change.
    path = lab["paths"]["00_tour"]
    before = path.read_text()
    page.locator(".jp-Notebook").first.click()
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 60
    while path.read_text() == before and time.monotonic() < deadline:
        time.sleep(0.5)
    saved = path.read_text()
    assert any(c.get("outputs") for c in nbformat.reads(saved, as_version=4).cells)
    clean = subprocess.run(["git", "config", "filter.nbstripout.clean"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    if not clean:
        _missing("the notebook git filter is not installed (make venv sets it up)")
    res = subprocess.run(shlex.split(clean), input=saved, capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout == before, "saving in JupyterLab changed what git stores"
    page.close()


def test_codex_d_grader_records_a_grade(browser, lab) -> None:
    """09_codex_d: Run All samples a few docstrings; typing a name and clicking Correct stores
    the grade at once (read back from the run store by this process)."""
    from codexlab.store import Store

    store = lab["root"] / "codex_d.sqlite"
    path = _prepare("09_codex_d", lab["root"] / "notebooks", lab["out"])
    # A small run with its own store: two tasks, two docstrings each, short budgets.
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    for name, value in (("TASKS", '":2"'), ("N", "2"), ("MAX_NEW_TOKENS", "16"),
                        ("ROUNDTRIP_MAX_NEW_TOKENS", "16"), ("STORE", repr(str(store)))):
        cell.source, n = re.subn(rf"^{name}: (\w+) = .*$", rf"{name}: \g<1> = {value}",
                                 cell.source, flags=re.M)
        assert n == 1, f"the parameters cell lost its {name} line"
    nbformat.write(nb, path)
    page = _open(browser, lab, "09_codex_d")
    rec = _run_all(page, lab, "09_codex_d", timeout_s=300)
    assert rec["docstrings"] == 4 and rec["graded"] == 0
    correct = page.locator("button.codexlab-grade-button", has_text="Correct")
    correct.wait_for()
    correct.scroll_into_view_if_needed()
    assert correct.is_disabled()  # no grader name yet
    field = page.locator(".widget-text", has=page.locator("label", has_text=re.compile(
        r"^grader$"))).locator("input")
    field.fill("ada")
    field.press("Enter")
    page.wait_for_function(
        "() => { const b = [...document.querySelectorAll('button.codexlab-grade-button')]"
        ".find(e => e.textContent.includes('Correct')); return b && !b.disabled; }",
        timeout=30_000)
    first = page.locator(".codexlab-grade-item").first.get_attribute("data-task")
    correct.click()
    page.locator(".codexlab-grade-progress", has_text="graded 1 of 4").wait_for(timeout=30_000)
    _shot(page, "09_codex_d-graded")
    with Store(store) as st:
        grades = st.grades(rec["set_id"], "ada")
    assert [(g["task_id"], bool(g["correct"])) for g in grades] == [(first, True)]
    assert grades[0]["created"]
    page.close()
