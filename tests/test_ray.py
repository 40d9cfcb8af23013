"""Distributed execution over a real Ray cluster: the same verdicts as a local run.

The module fixture starts a two-node Ray cluster on this machine: a head node and one more
worker node, each with one CPU, both as ``ray start --block`` processes of this test in their
own sessions, sharing a private ``--temp-dir`` and a fresh authentication token (so nothing
in ``~/.ray`` or ``/tmp/ray`` is read or written, and no other cluster can join). Teardown
stops them (SIGTERM to ``ray start --block``, which stops its node), then kills anything
left in those two sessions, by pid.

Checked: verdicts through Ray equal local :func:`evaluate_samples` verdicts (status, passed,
result, error_type, mode, isolation) on canonical solutions and mutants, with dedup, a
syntax error and a timed-out group; both nodes take part; ``codexlab evaluate --ray`` and
``FigureConfig(ray_address=...)`` take the Ray path; killing the Ray worker process in the
middle of a batch, or every process of the worker node (the machine lost), loses no verdict
(Ray runs the batch again) and leaves no sandbox process behind. Without Ray: a clear error naming ``pip install 'codexlab[ray]'``, and consent is
refused before Ray is even imported.

Without Ray installed the cluster tests skip, except under CI (``CI=true``), where they fail:
CI installs the ``ray`` extra (``make venv``), and a skipped test would prove nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codexlab.execution import CodeExecutionNotAllowed, evaluate_samples
from codexlab.execution.distributed import RayNotInstalled, evaluate_samples_ray
from codexlab.execution.mutants import calibration_samples
from codexlab.problems import load_humaneval

pytestmark = [pytest.mark.ray,
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="the sandbox needs Linux")]

#: A spread of HumanEval tasks: enough kinds of tests, little CI time.
TASKS = [f"HumanEval/{i}" for i in (0, 12, 53, 87, 120, 151)]
#: Seconds per sample; the timed-out group costs two of them (first run, then the rerun).
TIMEOUT = 2.0
START_S = 120.0  # a node start takes 10-20 s on a loaded 2-core machine


def _fields(v: Any) -> tuple:
    return (v.status, v.passed, v.result, v.error_type, v.mode, v.isolation)


def _ray_missing(what: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what}; CI must install the ray extra (make venv) rather than skip")
    pytest.skip(what)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stat(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` fields after the command name (state first), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def _session_pids(sid: int) -> list[int]:
    """Live processes of session ``sid`` (a ``ray start`` this test started: its node)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None and st[0] not in ("Z", "X") and int(st[3]) == sid:
                out.append(int(name))
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


class _Cluster:
    """Two ``ray start --block`` processes (head + worker node), each its own session."""

    def __init__(self, ray_bin: str) -> None:
        # A short private temp dir (Ray's unix socket paths must stay under ~107 bytes, which
        # pytest's tmp_path does not guarantee), removed at teardown.
        self.temp = tempfile.mkdtemp(prefix="cxray-")
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
                        RAY_AUTH_TOKEN=secrets.token_hex(32))
        common = ["--num-cpus=1", "--disable-usage-stats", "--object-store-memory=100000000",
                  f"--temp-dir={self.temp}"]
        self.procs: list[subprocess.Popen] = []
        self.head = self._start(ray_bin, "head", [
            "--head", f"--port={self.port}", "--include-dashboard=false",
            f"--dashboard-port={_free_port()}", f"--dashboard-agent-listen-port={_free_port()}",
            *common])
        self.worker = self._start(ray_bin, "worker", [
            f"--address={self.address}", f"--dashboard-agent-listen-port={_free_port()}",
            *common])

    def _start(self, ray_bin: str, name: str, args: list[str]) -> subprocess.Popen:
        log = Path(self.temp) / f"{name}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen([ray_bin, "start", "--block", *args], stdout=fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.env, start_new_session=True)
        self.procs.append(proc)
        deadline = time.monotonic() + START_S
        while b"Ray runtime started" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"ray {name} node did not start:\n{tail}")
            time.sleep(0.1)
        return proc

    def stop(self) -> None:
        for p in reversed(self.procs):  # the worker node first, then the head
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        # `ray start --block` stops its node's processes; sweep what may remain of them (the
        # two sessions this test created), by pid.
        for p in self.procs:
            for pid in _session_pids(p.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[_Cluster]:
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        _ray_missing("ray is not installed (pip install 'codexlab[ray]')")
    ray_bin = str(Path(sys.executable).with_name("ray"))
    if not os.access(ray_bin, os.X_OK):
        ray_bin = shutil.which("ray") or ""
    if not ray_bin:
        _ray_missing("the `ray` command is not installed next to this interpreter")
    c = _Cluster(ray_bin)
    # The driver (this process) authenticates with the cluster's token too. Ray reads its
    # auth settings when it is first imported, so set them before that.
    mp = pytest.MonkeyPatch()
    for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        mp.setenv(k, c.env[k])
    mp.delenv("RAY_ADDRESS", raising=False)
    already = sys.modules.get("ray") is not None
    import ray

    if already:  # imported earlier in this session: re-read the settings (as Ray itself does)
        from ray._raylet import Config

        Config.initialize("")
    try:
        ray.init(address=c.address, logging_level="WARNING")
        try:
            # Ready means: a task has run on each node. That also waits until the head's
            # scheduler knows the worker node's CPU (it may not yet when the node first shows
            # as alive, and then every batch would run on the head) and warms one Python
            # worker process per node.
            @ray.remote(num_cpus=1, scheduling_strategy="SPREAD")
            def where() -> str:
                time.sleep(0.2)
                return ray.get_runtime_context().get_node_id()

            seen: set[str] = set()
            deadline = time.monotonic() + START_S
            while len(seen) < 2:
                assert time.monotonic() < deadline, f"tasks ran on {len(seen)} node(s) only"
                seen.update(ray.get([where.remote() for _ in range(2)]))
        finally:
            ray.shutdown()  # the tests connect themselves (evaluate_samples_ray does)
        yield c
    finally:
        mp.undo()
        c.stop()


@pytest.fixture(autouse=True)
def consent(monkeypatch):
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")


@pytest.fixture(scope="module")
def problems():
    return load_humaneval()


def test_ray_verdicts_equal_local_ones(cluster, problems):
    rows = calibration_samples(problems, per_kind=1, tasks=TASKS)
    assert sum(r["kind"] == "canonical" for r in rows) == len(TASKS) and len(rows) > 30
    extra = [
        # Identical samples (dedup), a syntax error (decided by the driver's compile), and a
        # timed-out group of two (run again before its timeout is copied).
        rows[0], rows[1],
        {"task_id": "HumanEval/0", "completion": "    return (\n"},
        {"task_id": "HumanEval/53", "completion": "    while True:\n        pass\n"},
        {"task_id": "HumanEval/53", "completion": "    while True:\n        pass\n"},
    ]
    rows = rows + extra
    local = evaluate_samples(problems, rows, timeout=TIMEOUT, progress=False)
    report: dict[str, Any] = {}
    # A small batch size so the work is spread over both nodes.
    got = evaluate_samples_ray(problems, rows, address=cluster.address, timeout=TIMEOUT,
                               batch_size=6, progress=False, report=report)
    assert [_fields(v) for v in got] == [_fields(v) for v in local]
    statuses = {v.status for v in got}
    assert {"passed", "failed", "syntax_error", "timeout"} <= statuses
    assert report["timeout_reruns"] == 1 and report["programs_run"] == len(rows) - 4
    # Both nodes ran batches; each is named with the isolation it ran under (this machine's).
    nodes = report["nodes"]
    assert len(nodes) == 2, nodes
    isolation = next(v.isolation for v in local if v.status == "passed")
    for node in nodes.values():
        assert node["hostname"] == socket.gethostname()
        assert node["isolation"] == isolation and node["batches"] >= 1
    assert sum(n["programs"] for n in nodes.values()) == report["programs_run"] + 1  # rerun
    assert sum(b["jobs"] for b in report["batches"]) == report["programs_run"] + 1


def _evaluate_here_and_on_ray(tmp_path: Path, capsys: Any, cluster: _Cluster,
                              rows: list[dict], common: list[str],
                              ray_extra: list[str]) -> tuple[list[dict], list[dict]]:
    """Run `codexlab evaluate` on ``rows`` here and with ``--ray``; return both results files'
    rows without ``duration_s`` (the one field that may differ)."""
    from codexlab.cli import main

    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = []
    for name, extra in (("local", []), ("ray", ["--ray", cluster.address, *ray_extra])):
        out = tmp_path / f"{name}.jsonl"
        assert main(["evaluate", str(samples), *common, "--no-progress", "--k", "1",
                     "--out", str(out), *extra]) == 0
        err = capsys.readouterr().err
        assert ("# ray node" in err) == (name == "ray"), err
        got.append([{k: v for k, v in json.loads(line).items() if k != "duration_s"}
                    for line in out.read_text().splitlines()])
    return got[0], got[1]


def test_cli_and_pipeline_take_the_ray_path(cluster, problems, tmp_path, capsys):
    from codexlab.cli import main
    from codexlab.config import figure_config
    from codexlab.pipeline import _default_execute_fn

    rows = [{"task_id": t, "completion": problems[t].canonical_solution} for t in TASKS[:3]]
    rows += [{"task_id": t, "completion": "    return None\n"} for t in TASKS[:3]]
    samples = tmp_path / "samples.jsonl"  # written by the helper
    db = tmp_path / "st.sqlite"
    local, on_ray = _evaluate_here_and_on_ray(tmp_path, capsys, cluster, rows, [],
                                              ["--store", str(db)])
    assert on_ray == local
    assert [r["passed"] for r in on_ray] == [True] * 3 + [False] * 3
    from codexlab.store import Store

    with Store(db) as st:
        run = st.runs()[-1]
    assert run["config"]["ray"] == cluster.address and run["status"] == "done"
    nodes = run["summary"]["execution"]["nodes"]
    assert nodes and all(n["hostname"] == socket.gethostname() for n in nodes.values())
    assert main(["evaluate", str(samples), "--ray", cluster.address, "--workers", "2"]) == 2
    assert "--workers does not apply with --ray" in capsys.readouterr().err

    cfg = figure_config("quick", ray_address=cluster.address)
    assert cfg.to_dict()["ray_address"] == cluster.address
    via_ray = _default_execute_fn(problems, rows, cfg, False)
    via_pool = _default_execute_fn(problems, rows, figure_config("quick"), False)
    drop = ("duration_s",)
    assert [{k: v for k, v in d.items() if k not in drop} for d in via_ray] == \
        [{k: v for k, v in d.items() if k not in drop} for d in via_pool]


# Kept after every other test that uses the cluster: the second case takes its worker node.
@pytest.mark.parametrize("lost", ["worker process", "node"])
def test_a_worker_lost_mid_batch_loses_no_verdict(cluster, problems, lost):
    fast = calibration_samples(problems, per_kind=1, tasks=TASKS[:3])[:12]
    # One slow but correct sample leads each batch of four (a module-level sleep: it runs
    # once, at load), so every batch is mid-run for over a second.
    rows: list[dict[str, Any]] = []
    for i in range(4):
        slow = (f"    return x + y\n\n\nimport time\ntime.sleep({1.5 + i / 100})\n")
        rows.append({"task_id": "HumanEval/53", "completion": slow})
        rows.extend(fast[3 * i:3 * i + 3])
    local = evaluate_samples(problems, rows, timeout=5.0, progress=False)
    assert local[0].passed

    report: dict[str, Any] = {}
    result: dict[str, Any] = {}

    def drive() -> None:
        try:
            result["verdicts"] = evaluate_samples_ray(
                problems, rows, address=cluster.address, timeout=5.0, batch_size=4,
                progress=False, report=report)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            result["error"] = exc

    t = threading.Thread(target=drive, daemon=True)
    t.start()
    # The worker node's first batch: a Ray worker process of that node's session titled
    # after the task (Ray sets `ray::<function>` while it runs one).
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and t.is_alive() and time.monotonic() < deadline:
        victim = next((pid for pid in _session_pids(cluster.worker.pid)
                       if _cmdline(pid).startswith("ray::_run_batch")), None)
        time.sleep(0.05)
    assert victim is not None, "no batch ever ran on the worker node"
    time.sleep(0.7)  # its pool is up and the slow sample is running
    sandbox = _children(victim)  # the batch's checker and fork-server processes
    assert sandbox, "the batch had not started its sandbox pool yet"
    if lost == "worker process":
        os.kill(victim, signal.SIGKILL)
    else:  # the machine is lost: every process of the worker node dies at once
        node = _session_pids(cluster.worker.pid)
        assert any("/raylet/raylet" in _cmdline(pid) for pid in node) and victim in node
        for pid in node:
            os.kill(pid, signal.SIGKILL)
    t.join(180)
    assert not t.is_alive(), "the distributed run did not finish"
    if "error" in result:
        raise result["error"]
    got = result["verdicts"]
    assert [_fields(v) for v in got] == [_fields(v) for v in local]
    # The lost process reported nothing; every job was reported exactly once, by others:
    # the lost batch ran again in full.
    assert victim not in {b["pid"] for b in report["batches"]}
    assert sum(b["jobs"] for b in report["batches"]) == len(rows)
    # The lost batch's sandbox did not outlive it (the checker sees its pipes close, the
    # fork-server follows, the children die with it).
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in [victim, *sandbox]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in [victim, *sandbox] if _alive(p)]


# -- without a cluster -------------------------------------------------------------------

def test_apps_programs_run_on_the_cluster_with_local_verdicts(cluster, tmp_path, capsys):
    """APPS: every (sample, test case) is a job on the cluster; the results file is a local run's."""
    from codexlab.apps import evaluate_apps, load_apps

    fixture = Path(__file__).resolve().parent / "fixtures" / "apps_small.jsonl"
    total = "n = int(input())\nprint(sum(map(int, input().split())))\n"
    rows = [{"task_id": "APPS/1001", "completion": total},
            {"task_id": "APPS/1001", "completion": total.replace("))\n", ")) + 1\n")},
            {"task_id": "APPS/1001", "completion": "print(\n"},
            {"task_id": "APPS/1002", "completion": "raise ValueError('no')\n"}]
    local, on_ray = _evaluate_here_and_on_ray(tmp_path, capsys, cluster, rows,
                                              ["--problems", str(fixture)], [])
    assert on_ray == local
    assert [r["passed"] for r in on_ray] == [True, False, False, False]
    with pytest.raises(ValueError, match="do not pass workers or pool"):
        evaluate_apps(load_apps(fixture), rows, ray_address=cluster.address, workers=2)


def test_a_run_of_many_chunks_connects_once(cluster, problems, monkeypatch):
    """ray_connection (evaluate --store's chunks, the pipeline's execute stage): one ray.init."""
    import ray

    from codexlab.execution import distributed

    owned: list[bool] = []
    real = distributed._connect
    monkeypatch.setattr(distributed, "_connect",
                        lambda r, address: owned.append(real(r, address)) or owned[-1])
    rows = [{"task_id": t, "completion": problems[t].canonical_solution} for t in TASKS[:4]]
    with distributed.ray_connection(cluster.address):
        got = [v for chunk in (rows[:2], rows[2:]) for v in evaluate_samples_ray(
            problems, chunk, address=cluster.address, progress=False)]
        assert ray.is_initialized()
    assert owned == [True, False, False] and not ray.is_initialized()
    assert all(v.passed for v in got)


def test_missing_ray_is_a_clear_error(monkeypatch, problems, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    rows = [{"task_id": "HumanEval/0", "completion": problems["HumanEval/0"].canonical_solution}]
    with pytest.raises(RayNotInstalled, match=r"pip install 'codexlab\[ray\]'"):
        evaluate_samples_ray(problems, rows, address="127.0.0.1:1", progress=False)

    from codexlab.cli import main

    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps(rows[0]) + "\n")
    assert main(["evaluate", str(samples), "--ray", "--no-progress"]) == 2
    assert "pip install 'codexlab[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "s.jsonl_results.jsonl").exists()


def test_consent_is_refused_before_ray_is_touched(monkeypatch, problems):
    monkeypatch.delenv("CODEXLAB_ALLOW_CODE_EXEC", raising=False)
    # No Ray at all: were Ray imported (let alone contacted) before the consent check, this
    # would raise RayNotInstalled instead.
    monkeypatch.setitem(sys.modules, "ray", None)
    rows = [{"task_id": "HumanEval/0", "completion": "    return True\n"}]
    with pytest.raises(CodeExecutionNotAllowed):
        evaluate_samples_ray(problems, rows, address="127.0.0.1:1", progress=False)
    with pytest.raises(CodeExecutionNotAllowed):
        evaluate_samples_ray(problems, rows, address="127.0.0.1:1", progress=False,
                             allow_code_exec=False)


def test_nodes_with_missing_layers_or_other_checker_code_are_warned_about():
    from codexlab.execution import SandboxWarning
    from codexlab.execution.distributed import _warn_nodes, execution_fingerprint

    mine = execution_fingerprint()
    assert len(mine) == 16 and mine == execution_fingerprint()
    nodes = {"a" * 56: {"hostname": "n1", "fingerprint": mine, "missing": {}},
             "b" * 56: {"hostname": "n2", "fingerprint": "0" * 16,
                        "missing": {"seccomp": "libseccomp unavailable"}}}
    with pytest.warns(Warning) as rec:
        _warn_nodes(nodes)
    got = {(w.category, "n2" in str(w.message)) for w in rec}
    assert got == {(SandboxWarning, True), (RuntimeWarning, True)}  # n1 is fine: no warning


def test_an_address_with_no_cluster_fails_in_seconds(problems):
    """ray.init would retry a dead HOST:PORT for minutes; the probe answers at once."""
    import time

    pytest.importorskip("ray")
    from codexlab.execution.distributed import evaluate_samples_ray

    samples = [{"task_id": "HumanEval/0", "completion": "    return True\n"}]
    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match="no Ray cluster at '127.0.0.1:1'.*ray start --head"):
        evaluate_samples_ray(problems, samples, address="127.0.0.1:1", progress=False)
    assert time.monotonic() - t0 < 30
    with pytest.raises(ConnectionError, match="is not HOST:PORT"):
        evaluate_samples_ray(problems, samples, address="nonsense", progress=False)
