"""The hostile-program suite (tests/hostile/programs.py) run through the real sandbox.

After every program: its verdict is one of the expected statuses; no process of the
sandbox uids survives and no zombie is left; no file outside the sandbox changed; the
loopback TCP and UDP listeners this test opened received nothing; and the harness still
passes a correct sample and fails a wrong one in the same call.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hostile.programs import BAD, ENTRY, GOOD, PROGRAMS, PROMPT, TEST  # noqa: E402

from codexlab.execution import Pool, evaluate_samples  # noqa: E402
from codexlab.execution.pool import UIDS_PER_POOL  # noqa: E402
from codexlab.problems import Problem, humaneval_path  # noqa: E402

pytestmark = [pytest.mark.hostile, pytest.mark.skipif(not sys.platform.startswith("linux"),
                                                      reason="the sandbox needs Linux")]

TIMEOUT = 1.5
SECRET = "CODEXLAB_HOSTILE_TEST_SECRET"
PROBLEMS = {"Hostile/add": Problem("Hostile/add", PROMPT, ENTRY, TEST, GOOD)}
OUTSIDE_FILES = ("/tmp/codexlab_hostile_pwned", "/dev/shm/codexlab_hostile_pwned",
                 "/var/tmp/codexlab_hostile_pwned")


class Env:
    def __init__(self, tmp: Path) -> None:
        self.canary = tmp / "canary"
        self.canary.mkdir()
        os.chmod(self.canary, 0o777)  # only the sandbox layers may stop writes here
        (self.canary / "canary.txt").write_text("original")
        os.chmod(self.canary / "canary.txt", 0o666)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.tcp.setblocking(False)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setblocking(False)
        self.saved = {k: os.environ.get(k) for k in (SECRET, "CODEXLAB_ALLOW_CODE_EXEC")}
        os.environ[SECRET] = "hunter2"  # set before the pool starts: must not leak
        os.environ["CODEXLAB_ALLOW_CODE_EXEC"] = "1"
        self.pool = Pool(2)

    def fill(self, completion: str) -> str:
        return (completion.replace("{CANARY}", str(self.canary))
                .replace("{TCP_PORT}", str(self.tcp.getsockname()[1]))
                .replace("{UDP_PORT}", str(self.udp.getsockname()[1]))
                .replace("{SECRET}", SECRET)
                .replace("{TESTS_FILE}", str(humaneval_path())))

    def snapshot(self) -> list[tuple[str, int, int]]:
        out = []
        for p in sorted(self.canary.rglob("*")):
            st = p.lstat()
            out.append((str(p.relative_to(self.canary)), st.st_size, st.st_mtime_ns))
        return out

    def close(self) -> None:
        self.pool.close()
        self.tcp.close()
        self.udp.close()
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    e = Env(tmp_path_factory.mktemp("hostile"))
    yield e
    e.close()


def _sandbox_processes(pool: Pool) -> list[str]:
    """Processes running as one of the pool's sandbox uids, or zombies of its zygotes.

    Each slot keeps up to two pre-forked children waiting for their samples (named
    ``cx-spare``, sleeping, direct children of the zygote): one held by the zygote, one
    already handed to the checker for the next sample.
    """
    lo, hi = pool.uid_base, pool.uid_base + UIDS_PER_POOL
    zygotes = {s.zygote.pid for s in pool.slots}
    spares: dict[int, int] = {}  # zygote pid -> idle children seen
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            status = Path(f"/proc/{d}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uid = int(fields.get("Uid", "0").split()[0])
        ppid = int(fields.get("PPid", "0"))
        state = fields.get("State", "").strip()
        name = fields.get("Name", "").strip()
        if (lo <= uid < hi and name == "cx-spare" and ppid in zygotes
                and state.startswith("S") and spares.get(ppid, 0) < 2):
            spares[ppid] = spares.get(ppid, 0) + 1
            continue
        if lo <= uid < hi or (ppid in zygotes and state.startswith("Z")):
            found.append(f"pid {d} uid {uid} ppid {ppid} {name} {state}")
    return found


@pytest.mark.parametrize("prog", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_hostile_program(env: Env, prog) -> None:
    before = env.snapshot()
    samples = [
        {"task_id": "Hostile/add", "completion": env.fill(prog.completion)},
        {"task_id": "Hostile/add", "completion": GOOD},
        {"task_id": "Hostile/add", "completion": BAD},
    ]
    verdicts = evaluate_samples(PROBLEMS, samples, timeout=TIMEOUT, progress=False,
                                pool=env.pool)
    v = verdicts[0]
    assert v.status in prog.expected, f"{prog.name}: got {v.status} ({v.result})"
    assert v.passed == (v.status == "passed")
    assert v.mode == "proxy"
    # Harness still works after the attack.
    assert verdicts[1].passed, verdicts[1]
    assert not verdicts[2].passed and verdicts[2].status == "failed", verdicts[2]
    # No process survives, no zombie stays.
    deadline = time.monotonic() + 5
    while (left := _sandbox_processes(env.pool)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"surviving sandbox processes: {left}"
    # Nothing outside the sandbox's temporary directory changed.
    assert env.snapshot() == before
    assert (env.canary / "canary.txt").read_text() == "original"
    for f in OUTSIDE_FILES:
        assert not os.path.exists(f), f
    # No connection reached the loopback listeners.
    with pytest.raises(BlockingIOError):
        env.tcp.accept()
    with pytest.raises(BlockingIOError):
        env.udp.recvfrom(16)


def test_suite_size() -> None:
    hostile = [p for p in PROGRAMS if p.category != "fidelity"]
    assert len(hostile) >= 40
    assert {p.category for p in PROGRAMS} == {"tampering", "resources", "lifecycle", "escape",
                                              "fidelity"}
