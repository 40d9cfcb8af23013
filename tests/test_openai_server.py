"""The openai backend against a real OpenAI-compatible server: llama.cpp serving a built-in model.

The server (``python -m llama_cpp.server``, from pyproject's ``serve`` extra) is started on
loopback by the fixture and stopped after the module. Without llama-cpp-python the tests
skip with the reason, except under ``CI=true``, where the suite must have it.
"""

from __future__ import annotations

import os

import pytest
from shipped import LARGEST_S, SMALLEST

from codexlab.problems import load_humaneval, select_tasks
from codexlab.sampling import SamplingConfig, sample_to_store
from codexlab.sampling.backends import BackendConfig, BackendError
from codexlab.store import Store

#: The largest shipped Codex-S model (else base model): its greedy bodies end by EOS, the
#: base models' mostly by a stop sequence or the token cap; the tests compare all three.
MODEL = LARGEST_S

try:
    import llama_cpp.server  # noqa: F401

    HAVE_SERVER = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_SERVER = False

pytestmark = pytest.mark.skipif(
    not HAVE_SERVER and os.environ.get("CI") != "true",
    reason="llama-cpp-python[server] is not installed (pip install 'codexlab[serve]')")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from codexlab.serving import llama_cpp_server

    cache = tmp_path_factory.mktemp("gguf")
    os.environ.setdefault("CODEXLAB_CACHE_DIR", str(cache))
    os.environ["CODEXLAB_TEST_SERVER_KEY"] = "sk-loopback-test"
    with llama_cpp_server(MODEL, api_key_env="CODEXLAB_TEST_SERVER_KEY",
                          log_dir=cache) as srv:
        yield srv


def _backend(srv, **kw):
    from codexlab.serving import LLAMA_CPP_CODEX_FIELDS

    kw.setdefault("max_in_flight", 2)
    return BackendConfig(name="openai", base_url=srv.base_url, served_model=srv.served_model,
                         api_key_env="CODEXLAB_TEST_SERVER_KEY",
                         extra_body=LLAMA_CPP_CODEX_FIELDS, **kw)


def test_greedy_rows_agree_with_the_local_engine(server, tmp_path) -> None:
    """Same model, same settings: same completions; log-probs within float tolerance.

    The tasks are chosen from a local greedy pass so that every way a completion ends (a stop
    sequence, EOS, the token cap) is compared, whichever model is shipped: a few of each.
    """
    # Codex stops plus one that ends some function bodies early, so "stop" occurs for a
    # Codex-S model too (its greedy bodies mostly end with EOS or run to the cap).
    cfg = SamplingConfig(temperature=0.0, n=1, max_new_tokens=160, token_healing=0,
                         stop=(*SamplingConfig().stop, "\n    return"))
    store = Store(tmp_path / "s.sqlite")
    every_other = select_tasks(load_humaneval(), "::2")
    first = sample_to_store(MODEL, every_other, cfg, store, progress=False)
    by_reason: dict[str, list[str]] = {}
    for r in store.samples(first):
        by_reason.setdefault(r["finish_reason"], []).append(r["task_id"])
    assert set(by_reason) == {"stop", "eos", "length"}, (
        f"{MODEL}'s greedy completions of every second task end only by "
        f"{sorted(by_reason)}: choose another stop sequence for this test")
    chosen = {t for ids in by_reason.values() for t in ids[:4]}
    problems = {t: p for t, p in every_other.items() if t in chosen}
    remote = sample_to_store(MODEL, problems, cfg, store, progress=False,
                             backend=_backend(server))
    assert remote != first
    a = {r["task_id"]: r for r in store.samples(first, list(problems))}
    b = {r["task_id"]: r for r in store.samples(remote)}
    assert set(a) == set(b) == set(problems)
    for t in problems:
        la, lb = a[t], b[t]
        assert lb["completion"] == la["completion"], t
        assert lb["finish_reason"] == la["finish_reason"], t
        # llama.cpp's server does not report the EOS token (the local engine counts it).
        eos = 1 if la["finish_reason"] == "eos" else 0
        assert lb["n_tokens"] == la["n_tokens"] - eos, t
        if not eos:
            # Float32 on both sides (llama.cpp with an F32 KV cache), different kernels: the
            # sums agree to ~3e-5 nats over 300 tokens (measured), not bit for bit.
            assert lb["sum_logprob"] == pytest.approx(la["sum_logprob"], abs=1e-3), t
    assert {a[t]["finish_reason"] for t in problems} == {"stop", "eos", "length"}
    store.close()


def test_sampled_rows_are_reproducible_through_the_server(server, tmp_path) -> None:
    """Per-sample seeds: a second store drawing the same set gets the same samples."""
    problems = select_tasks(load_humaneval(), "0-1")
    cfg = SamplingConfig(temperature=0.8, n=3, max_new_tokens=32, seed=3)
    rows = []
    for name in ("a", "b"):
        store = Store(tmp_path / f"{name}.sqlite")
        set_id = sample_to_store(MODEL, problems, cfg, store, progress=False,
                                 backend=_backend(server, max_in_flight=3))
        rows.append([(r["task_id"], r["idx"], r["completion"], r["n_tokens"])
                     for r in store.samples(set_id)])
        store.close()
    assert len(rows[0]) == 6 and rows[0] == rows[1]
    # Different seeds are different draws (at T=0.8 six samples are not all equal).
    assert len({r[2] for r in rows[0]}) > 1


def test_wrong_api_key_is_a_clear_error(server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WRONG_KEY", "sk-nope")
    cfg = SamplingConfig(temperature=0.8, n=1, max_new_tokens=8)
    b = BackendConfig(name="openai", base_url=server.base_url, served_model=server.served_model,
                      api_key_env="WRONG_KEY")
    with pytest.raises(BackendError, match="HTTP 401"):
        sample_to_store(MODEL, select_tasks(load_humaneval(), "0"), cfg, tmp_path / "s.sqlite",
                        progress=False, backend=b)


def test_server_n_is_ignored_by_llama_cpp_and_refused(server, tmp_path) -> None:
    cfg = SamplingConfig(temperature=0.8, n=2, max_new_tokens=8)
    with pytest.raises(BackendError, match="ignores `n`"):
        sample_to_store(MODEL, select_tasks(load_humaneval(), "0"), cfg, tmp_path / "s.sqlite",
                        progress=False, backend=_backend(server, samples_per_request=2))


def test_figure_pipeline_samples_through_the_server(server, tmp_path) -> None:
    """FigureConfig(backend="openai") fills the grid from the server; the hf grid stays apart."""
    import json

    from codexlab import pipeline
    from codexlab.config import figure_config
    from codexlab.serving import LLAMA_CPP_CODEX_FIELDS
    from codexlab.store import Store

    common = dict(models=[MODEL], tasks="0-1", n=2, temperatures=[0.8],
                  scaling_temperatures=(0.8, 0.8), store=str(tmp_path / "s.sqlite"))
    cfg = figure_config("quick", backend="openai", base_url=server.base_url,
                        api_key_env="CODEXLAB_TEST_SERVER_KEY",
                        extra_body=json.dumps(LLAMA_CPP_CODEX_FIELDS), **common)
    pipeline.run_grid(cfg, progress=False, stages=("sample",))
    with Store(cfg.store_path()) as store:
        sid = pipeline.find_set(store, cfg, MODEL, 0.8)
        assert sid is not None and len(store.samples(sid)) == 4
        s = next(x for x in store.sample_sets() if x["set_id"] == sid)
        assert s["extra"]["backend"] == "openai" and "token_healing" not in s["extra"]
        # The local engine's grid does not see the server's samples.
        assert pipeline.find_set(store, figure_config("quick", **common), MODEL, 0.8) is None


def test_codexlab_serve_prints_a_working_command_and_stops_on_ctrl_c(tmp_path) -> None:
    import re
    import signal
    import subprocess
    import sys

    import openai

    env = dict(os.environ, CODEXLAB_CACHE_DIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "codexlab", "serve", SMALLEST,
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        first = proc.stdout.readline()
        assert f"codexlab serve: {SMALLEST} at http://127.0.0.1:" in first, (
            first, proc.stderr.read() if proc.poll() is not None else "")
        command = proc.stdout.readline()
        url = re.search(r"--base-url (\S+)", command).group(1)
        assert "--backend openai" in command and '"top_k": 0' in command
        r = openai.OpenAI(base_url=url, api_key="EMPTY").completions.create(
            model=SMALLEST, prompt="def f(x):\n", max_tokens=4, temperature=0,
            logprobs=1)
        assert len(r.choices[0].logprobs.token_logprobs) >= 1
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
    assert rc == 0


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0): look at its state.
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(")")[-1].split()[0] == "Z"


def test_codexlab_serve_refuses_a_taken_port_and_stops_its_server_on_sigterm(tmp_path) -> None:
    import re
    import signal
    import socket
    import subprocess
    import sys
    import time

    env = dict(os.environ, CODEXLAB_CACHE_DIR=str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "codexlab", "serve", SMALLEST,
                            "--port", str(port)], capture_output=True, text=True, env=env,
                           timeout=120)
    assert r.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in r.stderr
    r = subprocess.run([sys.executable, "-m", "codexlab", "serve", "codex-mini-absent"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("codexlab serve: cannot serve")
    assert "Traceback" not in r.stderr

    proc = subprocess.Popen([sys.executable, "-m", "codexlab", "serve", SMALLEST,
                             "--port", "0"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()
        child = int(re.search(r"\(pid (\d+)", first).group(1))
        assert not _gone(child)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _gone(child), "SIGTERM to codexlab serve left its llama.cpp server running"
