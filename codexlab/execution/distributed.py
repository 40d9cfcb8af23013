"""Distributed execution of samples over a Ray cluster: the same verdicts, on more machines.

What it is for: :func:`evaluate_samples_ray`, a drop-in for
:func:`codexlab.execution.evaluate_samples` when one machine's cores are too few (paper
scale: 164 tasks x 200 samples x 5 temperatures x several models). The driver (this process)
checks consent, deduplicates identical ``(task_id, completion)`` pairs and finds syntax
errors with ``compile`` exactly as the local path does; the remaining jobs travel in batches
to Ray tasks, and each task runs this project's own sandbox on its node
(:class:`codexlab.execution.pool.Pool`: a trusted checker process plus a fork-server per
slot). Verdicts come back in input order and are the ones a local run would give: the same
checker code decides them, and a timed-out group of identical samples is run again before its
timeout is copied (:func:`codexlab.execution.pool.rerun_timeouts`, reused as is).

What it is not for: sampling, scheduling on machines that are not trusted, or any sandbox of
its own. Ray is only the transport.

Trust: a Ray worker node runs the *trusted* half (the checker that runs a benchmark's tests
and decides the verdict) as an ordinary process, so worker nodes must be machines you trust
as much as the driver; anyone who can join the cluster can run code on it (Ray's own warning
about clusters without token authentication applies). The model-written code still runs only
inside the sandboxed child on each node, with that node's isolation layers; each verdict's
``isolation`` field is the summary of the node that ran it, and ``report["nodes"]`` names
every node with its host name, Ray node id, isolation and missing layers.

Lost workers: each batch is a Ray task with ``max_retries`` (default 3). When the worker
process or its whole node dies mid-batch, Ray runs the batch again (on any node with a free
CPU) and its verdicts replace nothing, because none came back from the lost attempt: no
sample is dropped or counted twice. A batch that fails more often than that, or raises in the
trusted code, makes the call raise :class:`RuntimeError` naming the cause.

Ray is an optional dependency (``pip install 'codexlab[ray]'``), imported only inside the
functions here.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from codexlab.execution import verdicts as V
from codexlab.execution.pool import (
    check_consent,
    fill_verdicts,
    finish_verdicts,
    group_samples,
    make_jobs,
    run_jobs,
    warn_missing_layers,
)

#: What to run when Ray is missing (the optional extra in pyproject.toml).
INSTALL_HINT = "pip install 'codexlab[ray]'"
#: Ray task retries after a lost worker process or node (Ray's own default is 3 too).
DEFAULT_RETRIES = 3
#: Bounds of the automatic batch size. A batch starts a pool on its node (~0.15 s: two
#: interpreters and the layer probe), so a batch should hold at least a second or so of work;
#: an upper bound keeps what a lost worker costs (one batch, run again) small.
MIN_BATCH, MAX_BATCH = 16, 256
#: Batches per cluster CPU when sizing automatically: more than one, so a slow batch (a few
#: timeouts) does not leave the other CPUs idle at the end of the run.
BATCHES_PER_CPU = 4


class RayNotInstalled(ImportError):
    """Ray is not importable; the message says how to install the optional extra."""


def require_ray() -> Any:
    """Return the ``ray`` module.

    Raises:
        RayNotInstalled: Ray is not importable; the message names the install command.
    """
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalled(
            f"distributed execution needs Ray, which is not installed here ({exc}); install "
            f"the optional extra with: {INSTALL_HINT}") from exc
    return ray


def execution_fingerprint() -> str:
    """Return a short hash of this machine's sandbox and checker source.

    Nodes whose fingerprint differs from the driver's run other checker code, so their
    verdicts may differ from a local run; :func:`evaluate_samples_ray` warns about them.
    """
    h = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _run_batch(jobs: list[dict[str, Any]], slots: int) -> dict[str, Any]:
    """Run one batch of jobs in a sandbox pool on this node (the body of each Ray task).

    Returns plain data only (so the driver needs nothing from this node's packages to read
    it): verdict dicts by job id, and who ran them.
    """
    import ray

    from codexlab.execution.pool import Pool

    t0 = time.monotonic()
    ctx = ray.get_runtime_context()
    with Pool(max(1, min(slots, len(jobs)))) as pool:
        results = pool.run(jobs)
        node = {"node_id": ctx.get_node_id(), "hostname": socket.gethostname(),
                "ip": ray.util.get_node_ip_address(), "isolation": pool.isolation,
                "missing": pool.missing_layers(), "python": sys.version.split()[0],
                "fingerprint": execution_fingerprint()}
    return {"verdicts": {jid: v.to_dict() for jid, v in results.items()}, "node": node,
            "pid": os.getpid(), "seconds": round(time.monotonic() - t0, 3)}


class _RayRunner:
    """Runs jobs as batches of Ray tasks (a :class:`~codexlab.execution.pool.JobRunner`).

    ``rerun_timeouts`` uses it for its reruns, so they run on the cluster too.
    """

    def __init__(self, ray: Any, *, batch_size: int, cpus_per_task: int, retries: int,
                 report: dict[str, Any]) -> None:
        self.ray = ray
        self.batch_size = batch_size
        self.cpus_per_task = cpus_per_task
        self.retries = retries
        self.nodes: dict[str, dict[str, Any]] = report.setdefault("nodes", {})
        self.batches: list[dict[str, Any]] = report.setdefault("batches", [])
        self.remote = ray.remote(_run_batch)

    def run(self, jobs: Sequence[dict[str, Any]],
            on_done: Callable[[dict[str, Any], V.Verdict], None] | None = None
            ) -> dict[Any, V.Verdict]:
        """Evaluate ``jobs`` on the cluster; return verdicts keyed by job id.

        Raises:
            RuntimeError: a batch was lost more than ``retries`` times, or the trusted code
                on a node raised (e.g. its sandbox could not start); the message names it.
        """
        ray = self.ray
        by_id = {j["id"]: j for j in jobs}
        task = self.remote.options(
            num_cpus=self.cpus_per_task,
            # System failures (the worker process or its node dies) are retried by Ray: the
            # whole batch runs again and nothing of the lost attempt is kept. Exceptions
            # raised by our own code are not: they are bugs or a broken node, and running the
            # batch again would hide them.
            max_retries=self.retries, retry_exceptions=False,
            # Ray's default policy fills the driver's node first (it spills over only once
            # that node is busy); batches are independent and CPU-bound, so spread them over
            # every node from the start.
            scheduling_strategy="SPREAD")
        pending: dict[Any, int] = {}
        for start in range(0, len(jobs), self.batch_size):
            batch = list(jobs[start:start + self.batch_size])
            pending[task.remote(batch, self.cpus_per_task)] = len(batch)
        results: dict[Any, V.Verdict] = {}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    size = pending.pop(ref)
                    try:
                        out = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        raise RuntimeError(
                            f"a batch of {size} programs failed on the Ray cluster (lost workers "
                            f"are retried {self.retries} times; errors in the checker are "
                            f"not): {type(exc).__name__}: {exc}") from exc
                    self._record(out)
                    for jid, d in out["verdicts"].items():
                        v = V.Verdict(**d)
                        results[jid] = v
                        if on_done is not None:
                            on_done(by_id[jid], v)
        finally:
            # Ctrl-C or an error: stop the other batches now rather than let them run on.
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001,S110 - already finished or lost: nothing to stop
                    pass
        return results

    def _record(self, out: dict[str, Any]) -> None:
        node = out["node"]
        info = self.nodes.setdefault(node["node_id"], {**node, "batches": 0, "programs": 0})
        info["batches"] += 1
        info["programs"] += len(out["verdicts"])
        self.batches.append({"node_id": node["node_id"], "pid": out["pid"],
                             "jobs": len(out["verdicts"]), "seconds": out["seconds"]})


def _connect(ray: Any, address: str | None) -> bool:
    """Connect this process to a Ray cluster unless it already is; True if we connected.

    ``None``, ``""`` and ``"auto"`` resolve the way ``ray.init(address="auto")`` does: the
    ``RAY_ADDRESS`` environment variable, else the cluster ``ray start`` last started on this
    machine (else any running on it); never a new cluster (a silent one-machine "cluster"
    would hide a forgotten ``ray start``).
    ``"local"`` starts a private cluster on this machine for the call. Anything else is a
    ``HOST:PORT`` of a head node (or a ``ray://`` client address).

    Raises:
        ConnectionError: no cluster at that address; the message says how to start one.
    """
    if ray.is_initialized():
        return False
    addr = (address or "").strip() or "auto"
    hint = ("Start one with `ray start --head` (and `ray start --address=HEAD:PORT` on each "
            "other machine) and pass its HEAD:PORT, or use `--ray local` (address='local') for "
            "this machine only")
    if addr not in ("auto", "local"):
        # ray.init retries an address where nothing listens for as long as it likes (minutes,
        # measured); a plain TCP connect answers in seconds.
        _probe(addr, hint)
    kwargs: dict[str, Any] = {"address": addr, "logging_level": logging.WARNING}
    if addr == "local":
        kwargs["include_dashboard"] = False
    try:
        ray.init(**kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        token = Path.home() / ".ray" / "auth_token"
        auth = (f" If that cluster was started while {token} existed, it requires token "
                "authentication: set RAY_AUTH_MODE=token here too." if token.exists()
                and not os.environ.get("RAY_AUTH_MODE") else "")
        raise ConnectionError(
            f"cannot connect to a Ray cluster at {addr!r}: {type(exc).__name__}: "
            f"{str(exc).strip().rstrip('.')}. {hint}.{auth}") from exc
    return True


@contextlib.contextmanager
def ray_connection(address: str | None) -> Iterator[None]:
    """Keep this process connected to the Ray cluster at ``address`` for a block.

    :func:`evaluate_samples_ray` calls inside the block use this connection instead of
    connecting (and, for ``"local"``, starting a private cluster) once per call. Nothing
    happens when the process is already connected. ``address``: as
    :func:`evaluate_samples_ray`'s.

    Raises:
        RayNotInstalled: Ray is not importable.
        ConnectionError: no cluster at ``address``.
    """
    ray = require_ray()
    own = _connect(ray, address)
    try:
        yield
    finally:
        if own:
            ray.shutdown()


def _probe(addr: str, hint: str, timeout_s: float = 5.0) -> None:
    """Raise ConnectionError unless something accepts TCP connections at ``addr``."""
    hostport = addr.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConnectionError(f"Ray address {addr!r} is not HOST:PORT (e.g. 10.0.0.5:6379), "
                              "'auto' or 'local'")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConnectionError(f"no Ray cluster at {addr!r}: nothing accepts connections there "
                              f"({exc.strerror or exc}). {hint}") from None


def _auto_batch_size(ray: Any, n_jobs: int, cpus_per_task: int) -> int:
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    tasks_at_once = max(1, int(cpus // cpus_per_task))
    want = math.ceil(n_jobs / (BATCHES_PER_CPU * tasks_at_once))
    return max(MIN_BATCH, min(MAX_BATCH, want))


def evaluate_samples_ray(
    problems: Mapping[str, Any],
    samples: Sequence[Mapping[str, Any]],
    *,
    address: str | None = None,
    timeout: float = 3.0,
    memory_mb: int = 2048,
    output_limit_mb: int = 16,
    mode: str = "auto",
    dedup: bool = True,
    batch_size: int | None = None,
    cpus_per_task: int = 1,
    retries: int = DEFAULT_RETRIES,
    progress: bool = True,
    allow_code_exec: bool | None = None,
    report: dict[str, Any] | None = None,
) -> list[V.Verdict]:
    """Like :func:`codexlab.execution.evaluate_samples`, with the sandbox runs on a Ray cluster.

    Consent, validation, deduplication and the syntax check happen here, before anything is
    shipped; each batch of distinct programs runs in a sandbox pool on some node of the
    cluster; verdicts are returned in input order. Nodes need Linux and this package
    installed (the same version: a node whose checker source differs is warned about).

    Args:
        problems: task_id → problem, as for ``evaluate_samples``.
        samples: Dicts with at least ``task_id`` and ``completion``; ``n`` samples.
        address: The cluster. ``None``/``""``/``"auto"``: ``RAY_ADDRESS``, else the cluster
            ``ray start`` runs on this machine (never starts one); ``"local"``: start a
            private one-machine cluster for this call; ``"HOST:PORT"``: that head node
            (``"ray://HOST:PORT"``: through Ray Client). If this process is already connected
            (``ray.init`` was called), that connection is used and ``address`` is ignored;
            otherwise the connection made here is closed on return.
        timeout: Wall-clock seconds per sample.
        memory_mb: Address-space limit of each sandboxed child.
        output_limit_mb: Bytes of stdout+stderr a sample may write before it is stopped.
        mode: ``"auto"``, ``"proxy"`` or ``"in_sandbox"`` (see ``evaluate_samples``).
        dedup: Run each distinct ``(task_id, completion)`` once (see ``evaluate_samples``;
            the timed-out-group rerun is the same).
        batch_size: Distinct programs per Ray task. ``None`` picks one from the cluster's CPU
            count (about four batches per CPU, between 16 and 256): small enough to balance
            the load and to make a lost batch cheap, large enough to amortise starting a
            pool (~0.15 s) on the node.
        cpus_per_task: CPUs each Ray task reserves; it runs that many sandbox slots.
        retries: Times Ray runs a batch again after its worker process or node is lost.
        progress: Show a tqdm bar on stderr, counted in samples, moved as batches finish.
        allow_code_exec: Consent (see :func:`codexlab.execution.check_consent`), checked
            before Ray is imported or contacted.
        report: Filled as by ``evaluate_samples`` (``dedup``, ``samples``, ``programs_run``,
            ``timeout_reruns``, ``split_groups``) plus ``address``, ``batch_size``,
            ``nodes`` (Ray node id → ``hostname``, ``ip``, ``isolation``, ``missing``,
            ``python``, ``fingerprint``, ``batches``, ``programs``) and ``batches`` (one
            ``{"node_id", "pid", "jobs", "seconds"}`` per finished Ray task, reruns included).

    Returns:
        ``n`` :class:`~codexlab.execution.Verdict` objects, in the order of ``samples``; each
        one's ``isolation`` is that of the node that ran it (``"parent-compile"`` for syntax
        errors, decided here).

    Raises:
        CodeExecutionNotAllowed: no consent (nothing imported, connected or shipped).
        ValueError: unknown ``mode``, or ``batch_size``/``cpus_per_task`` below 1, or
            ``retries`` below 0.
        KeyError: a sample names a task that is not in ``problems``.
        RayNotInstalled: Ray is not importable (an :class:`ImportError`; the message says
            ``pip install 'codexlab[ray]'``).
        ConnectionError: no Ray cluster at ``address``.
        RuntimeError: a batch failed beyond its retries (see the module docstring).
    """
    check_consent(allow_code_exec)
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if cpus_per_task < 1:
        raise ValueError(f"cpus_per_task must be >= 1, got {cpus_per_task}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    groups = group_samples(problems, samples, mode=mode, dedup=dedup)
    # Fail on a missing Ray now, not only once a sample needs the sandbox.
    ray = require_ray()
    out: list[V.Verdict | None] = [None] * len(samples)
    rep = report if report is not None else {}
    rep.update(dedup=bool(dedup), samples=len(samples), programs_run=0, timeout_reruns=0,
               split_groups=0, address=address or "auto", nodes={}, batches=[])
    jobs, job_idx = make_jobs(problems, groups, out, lambda: None, timeout=timeout,
                              memory_mb=memory_mb, mode=mode, output_limit_mb=output_limit_mb)
    if jobs:
        own = _connect(ray, address)
        try:
            size = batch_size or _auto_batch_size(ray, len(jobs), cpus_per_task)
            rep["batch_size"] = size
            runner = _RayRunner(ray, batch_size=size, cpus_per_task=cpus_per_task,
                                retries=retries, report=rep)
            results = run_jobs(runner, jobs, job_idx, out, rep, progress=progress,
                               desc="evaluate (ray)")
        finally:
            if own:
                ray.shutdown()
        _warn_nodes(rep["nodes"])
        fill_verdicts(out, jobs, job_idx, results)
    return finish_verdicts(out)


_warned: set[str] = set()


def _warn_nodes(nodes: Mapping[str, Mapping[str, Any]]) -> None:
    """Warn (once per process and node) about missing layers and foreign checker code."""
    mine = execution_fingerprint()
    for node_id, info in nodes.items():
        where = f"Ray node {info.get('hostname')} ({node_id[:12]})"
        miss = info.get("missing") or {}
        warn_missing_layers(miss, where, f"{node_id}:{sorted(miss.items())}", stacklevel=3)
        if info.get("fingerprint") != mine and f"{node_id}:fp" not in _warned:
            _warned.add(f"{node_id}:fp")
            warnings.warn(f"{where} runs different sandbox/checker code than this machine "
                          f"(fingerprint {info.get('fingerprint')} vs {mine}): its verdicts "
                          "may differ from a local run; install the same codexlab there",
                          RuntimeWarning, stacklevel=3)
