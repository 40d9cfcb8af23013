"""Sampling backends: the shared row contract, and the openai backend's fault handling.

The fault cases (429, 500, a timeout, truncated JSON, missing log-probs, an ignored ``n``,
a refused parameter) run against a scripted HTTP server on loopback. It adds cases a real
server cannot be made to produce on demand; the real server is in test_openai_server.py.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from shipped import LARGEST

from codexlab.sampling import SamplingConfig, sample_to_store
from codexlab.sampling.backends import (
    BACKENDS,
    BackendConfig,
    BackendError,
    parse_extra_body,
    sample_seed,
    server_row,
)
from codexlab.store import Store

PROBLEMS = {f"T/{i}": {"task_id": f"T/{i}", "prompt": f"def f{i}(x):\n"} for i in range(3)}


# ---------------------------------------------------------------------------------------------
# The row contract


def test_server_row_cuts_stops_and_tells_stop_from_eos() -> None:
    stops = ("\ndef", "\nclass")
    r = server_row("T", 3, "    return 1\ndef g", [-0.5, -0.25, -1.0], finish_reason="stop",
                   stops=stops)
    assert r == {"task_id": "T", "idx": 3, "completion": "    return 1", "n_tokens": 3,
                 "sum_logprob": -1.75, "mean_logprob": -1.75 / 3, "finish_reason": "stop"}
    # Server already cut the text: the tokens still show the stop sequence.
    r = server_row("T", 0, "    return 1", [-1.0, -1.0], finish_reason="stop", stops=stops,
                   tokens=["    return 1", "\ndef"])
    assert r["finish_reason"] == "stop" and r["completion"] == "    return 1"
    # No stop sequence anywhere: the model ended with EOS.
    r = server_row("T", 0, "    return 1\n", [-1.0], finish_reason="stop", stops=stops,
                   tokens=["    return 1\n"])
    assert r["finish_reason"] == "eos"
    # vLLM's stop_reason decides when present.
    assert server_row("T", 0, "x", [-1.0], finish_reason="stop", stops=stops,
                      stop_reason=0)["finish_reason"] == "eos"
    assert server_row("T", 0, "x", [-1.0], finish_reason="stop", stops=stops,
                      stop_reason="\ndef")["finish_reason"] == "stop"
    assert server_row("T", 0, "x" * 5, [-1.0] * 5, finish_reason="length",
                      stops=stops)["finish_reason"] == "length"


def test_server_row_refuses_missing_logprobs_and_unknown_finish() -> None:
    with pytest.raises(BackendError, match="no per-token log-probs"):
        server_row("T", 0, "x", None, finish_reason="stop", stops=())  # type: ignore[arg-type]
    with pytest.raises(BackendError, match="no log-prob for token 1"):
        server_row("T", 0, "xy", [-1.0, None], finish_reason="stop", stops=())
    with pytest.raises(BackendError, match="finish_reason 'abort'"):
        server_row("T", 0, "x", [-1.0], finish_reason="abort", stops=())


def test_sample_seed_is_stable_31_bit_and_distinct() -> None:
    seeds = {sample_seed(0, f"HumanEval/{t}", i) for t in range(20) for i in range(50)}
    assert len(seeds) == 1000
    assert all(0 <= s < 2**31 for s in seeds)
    assert sample_seed(0, "HumanEval/0", 0) == sample_seed(0, "HumanEval/0", 0)
    assert sample_seed(1, "HumanEval/0", 0) != sample_seed(0, "HumanEval/0", 0)


def test_backend_config_validates_and_keys() -> None:
    from codexlab.commands.sample import BACKEND_CHOICES

    assert BACKEND_CHOICES == BACKENDS
    with pytest.raises(ValueError, match="unknown sampling backend 'tgi'"):
        BackendConfig(name="tgi")
    with pytest.raises(ValueError, match="needs base_url"):
        BackendConfig(name="openai")
    with pytest.raises(ValueError, match="max_in_flight \\(--max-in-flight\\) must be >= 1"):
        BackendConfig(name="openai", base_url="http://x/v1", max_in_flight=0)
    b = BackendConfig(name="openai", base_url="http://127.0.0.1:1/v1", served_model="m",
                      extra_body={"top_k": 0})
    # The address is not part of the key (a moved server resumes the same set); what is
    # sampled is.
    assert b.key_fields("codex-mini-3m") == {"backend": "openai", "served_model": "m",
                                             "extra_body": {"top_k": 0}}
    assert BackendConfig().key_fields("x") == {}
    assert parse_extra_body('{"top_k": 0}') == {"top_k": 0}
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_extra_body("{top_k: 0}")
    with pytest.raises(ValueError, match="must be a JSON object"):
        parse_extra_body("[1]")


def test_vllm_backend_missing_is_a_clear_error() -> None:
    pytest.importorskip("numpy")
    try:
        import vllm  # noqa: F401
    except ImportError:
        from codexlab.sampling.vllm_backend import VLLMSampler

        with pytest.raises(BackendError, match="pip install 'codexlab\\[vllm\\]'"):
            VLLMSampler(BackendConfig(name="vllm"), "codex-mini-0.1m",
                        SamplingConfig(token_healing=0))
    else:  # pragma: no cover - only where vLLM is installed
        pytest.skip("vLLM is installed here")


def test_vllm_row_converts_a_request_output() -> None:
    from types import SimpleNamespace as NS

    from codexlab.sampling.vllm_backend import vllm_row

    lp = lambda v: NS(logprob=v)  # noqa: E731
    comp = NS(text="    return x\n", token_ids=[5, 6, 0],
              logprobs=[{5: lp(-0.5)}, {6: lp(-0.25), 9: lp(-3.0)}, {0: lp(-0.125)}],
              finish_reason="stop", stop_reason=0)
    row = vllm_row("T", 2, NS(outputs=[comp]), ("\ndef",))
    assert row["n_tokens"] == 3 and row["sum_logprob"] == -0.875
    assert row["finish_reason"] == "eos" and row["completion"] == "    return x\n"
    comp.logprobs = None
    with pytest.raises(BackendError, match="no log-probs"):
        vllm_row("T", 2, NS(outputs=[comp]), ())


# ---------------------------------------------------------------------------------------------
# A scripted OpenAI-compatible server on loopback


class Script:
    """What the fake server answers: a queue of faults, then well-formed completions."""

    def __init__(self) -> None:
        self.faults: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.lock = threading.Lock()
        self.ignore_n = False
        self.no_logprobs = False
        self.refuse = False
        self.models: list[str] | None = None  # None: no GET /v1/models (501)
        self.status: int | None = None  # answer every POST with this HTTP status

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        n = 1 if self.ignore_n else int(body.get("n", 1))
        choices = []
        for i in range(n):
            # Deterministic in (prompt, seed, i): the text a seeded server would return.
            text = f"    return {body['seed'] % 1000 + i}  # {len(body['prompt'])}"
            choices.append({
                "index": i, "text": text, "finish_reason": "length",
                "logprobs": None if self.no_logprobs else {
                    "tokens": [text[:4], text[4:]], "token_logprobs": [-0.5, -1.5],
                    "top_logprobs": None, "text_offset": [0, 4]}})
        return {"id": "cmpl-1", "object": "text_completion", "created": 0,
                "model": body["model"], "choices": choices}


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def _send(self, code: int, payload: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            if code == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if script.models is None or not self.path.endswith("/models"):
                return self._send(501, b'{"error": {"message": "not here"}}')
            self._send(200, json.dumps({"object": "list", "data": [
                {"id": m, "object": "model"} for m in script.models]}).encode())

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with script.lock:
                script.requests.append(body)
                script.auth.append(self.headers.get("Authorization"))
                fault = script.faults.pop(0) if script.faults else None
            if fault == "429":
                return self._send(429, b'{"error": {"message": "slow down"}}')
            if fault == "500":
                return self._send(500, b'{"error": {"message": "boom"}}')
            if fault == "sleep":
                time.sleep(1.5)
            if script.status:
                return self._send(script.status, b'{"error": {"message": "nope"}}')
            if script.refuse:
                return self._send(400, json.dumps({"error": {
                    "message": "seed is not supported by this server"}}).encode())
            payload = json.dumps(script.completion(body)).encode()
            if fault == "truncate":
                payload = payload[: len(payload) // 2]
            self._send(200, payload)

    return H


@pytest.fixture
def fake_server():
    script = Script()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield script, f"http://127.0.0.1:{srv.server_address[1]}/v1"
    finally:
        srv.shutdown()
        srv.server_close()


def _backend(url: str, **kw: Any) -> BackendConfig:
    kw.setdefault("max_retries", 3)
    kw.setdefault("request_timeout_s", 1.0)
    return BackendConfig(name="openai", base_url=url, served_model="served", **kw)


def test_openai_backend_samples_into_the_store_and_resumes_only_missing(fake_server, tmp_path,
                                                                        monkeypatch) -> None:
    script, url = fake_server
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    cfg = SamplingConfig(n=4, temperature=0.8, top_p=0.95, max_new_tokens=16, seed=7)
    store = Store(tmp_path / "s.sqlite")
    b = _backend(url, api_key_env="MY_KEY", max_in_flight=3, extra_body={"top_k": 0})
    set_id = sample_to_store("codex-mini-3m", PROBLEMS, cfg, store, progress=False, backend=b)
    rows = store.samples(set_id, list(PROBLEMS))
    assert len(rows) == 12 and len(script.requests) == 12
    req = script.requests[0]
    assert req["model"] == "served" and req["n"] == 1 and req["logprobs"] == 1
    assert req["temperature"] == 0.8 and req["top_p"] == 0.95 and req["max_tokens"] == 16
    assert req["stop"] == list(cfg.stop) and req["top_k"] == 0
    assert set(script.auth) == {"Bearer sk-secret-123"}
    # Each sample's seed is its own: the server saw sample_seed(seed, task, idx).
    seeds = {(r["prompt"], r["seed"]) for r in script.requests}
    want = {(PROBLEMS[t]["prompt"], sample_seed(7, t, i)) for t in PROBLEMS for i in range(4)}
    assert seeds == want
    r0 = next(r for r in rows if r["task_id"] == "T/1" and r["idx"] == 2)
    assert r0["completion"].startswith(f"    return {sample_seed(7, 'T/1', 2) % 1000}")
    assert r0["n_tokens"] == 2 and r0["sum_logprob"] == -2.0
    assert r0["finish_reason"] == "length"
    # The key is never stored, only the variable's name.
    store.close()
    assert b"sk-secret-123" not in (tmp_path / "s.sqlite").read_bytes()
    store = Store(tmp_path / "s.sqlite")
    run = [r for r in store.runs() if r["kind"] == "sample"][-1]
    assert run["config"]["backend"]["api_key_env"] == "MY_KEY"
    assert run["provenance"]["backend"]["name"] == "openai"

    # Asking for n=6 draws only indices 4 and 5; the same set (same key) is continued.
    script.requests.clear()
    set2 = sample_to_store("codex-mini-3m", PROBLEMS, cfg.replace(n=6), store, progress=False,
                           backend=_backend(url.replace("127.0.0.1", "localhost"),
                                            api_key_env="MY_KEY", extra_body={"top_k": 0}))
    assert set2 == set_id
    assert {r["seed"] for r in script.requests} == {sample_seed(7, t, i) for t in PROBLEMS
                                                     for i in (4, 5)}
    # A local-engine set of the same model and settings is a different set.
    assert set_id not in {s for s in [store.ensure_sample_set(
        model="codex-mini-3m", temperature=0.8, top_p=0.95, seed=7, max_new_tokens=16,
        stop=list(cfg.stop), problems_sha256="x")]}
    store.close()


def test_openai_backend_retries_429_500_timeouts_and_truncated_json(fake_server,
                                                                    tmp_path) -> None:
    script, url = fake_server
    script.faults = ["429", "500", "sleep", "truncate"]
    cfg = SamplingConfig(n=2, temperature=0.8, max_new_tokens=8)
    store = Store(tmp_path / "s.sqlite")
    set_id = sample_to_store("m", {"T/0": PROBLEMS["T/0"]}, cfg, store, progress=False,
                             backend=_backend(url, max_in_flight=1))
    assert len(store.samples(set_id)) == 2
    # 2 samples + 4 faulty attempts.
    assert len(script.requests) == 6
    run = [r for r in store.runs() if r["kind"] == "sample"][-1]
    assert run["status"] == "done"
    store.close()


def test_openai_backend_samples_per_request_resumes_exactly(fake_server, tmp_path) -> None:
    """K > 1: aligned blocks, so a partly drawn block or a raised n redraws what it would have."""
    import sqlite3

    script, url = fake_server
    cfg = SamplingConfig(n=5, temperature=0.8, max_new_tokens=8, seed=3)
    whole = Store(tmp_path / "whole.sqlite")
    set_id = sample_to_store("m", PROBLEMS, cfg, whole, progress=False,
                             backend=_backend(url, samples_per_request=2))
    want = {(r["task_id"], r["idx"]): r["completion"] for r in whole.samples(set_id)}
    assert len(want) == 5 * len(PROBLEMS)
    # Blocks [0, 1], [2, 3], [4] per task, each seeded by its first index.
    blocks = sorted((r["seed"], r["n"]) for r in script.requests)
    assert blocks == sorted((sample_seed(3, t, i), min(2, 5 - i)) for t in PROBLEMS
                            for i in (0, 2, 4))
    whole.close()

    # A run cut mid-block (an interrupt between two rows of one request) left T/0's sample 1
    # and T/1's sample 4 missing: the rerun sends their whole blocks and keeps the missing.
    (tmp_path / "whole.sqlite").rename(tmp_path / "cut.sqlite")
    with sqlite3.connect(tmp_path / "cut.sqlite") as db:
        db.execute("DELETE FROM samples WHERE (task_id='T/0' AND idx=1) OR "
                   "(task_id='T/1' AND idx=4)")
    script.requests.clear()
    cut = Store(tmp_path / "cut.sqlite")
    before = {r["run_id"] for r in cut.runs()}
    assert sample_to_store("m", PROBLEMS, cfg, cut, progress=False,
                           backend=_backend(url, samples_per_request=2)) == set_id
    assert sorted((r["seed"], r["n"]) for r in script.requests) == sorted(
        [(sample_seed(3, "T/0", 0), 2), (sample_seed(3, "T/1", 4), 1)])
    assert {(r["task_id"], r["idx"]): r["completion"] for r in cut.samples(set_id)} == want
    [run] = [r for r in cut.runs() if r["run_id"] not in before]
    assert run["summary"]["redrawn"] == 1 and run["summary"]["added"] == 2
    # Raising n to 6 completes the block [4, 5]: the same request as a run with n = 6.
    script.requests.clear()
    sample_to_store("m", PROBLEMS, cfg.replace(n=6), cut, progress=False,
                    backend=_backend(url, samples_per_request=2))
    assert {(r["seed"], r["n"]) for r in script.requests} == {
        (sample_seed(3, t, 4), 2) for t in PROBLEMS}
    got = {(r["task_id"], r["idx"]): r["completion"] for r in cut.samples(set_id)}
    assert all(got[t, 5].startswith(f"    return {sample_seed(3, t, 4) % 1000 + 1} ")
               for t in PROBLEMS)
    cut.close()


def test_openai_backend_gives_up_after_retries_keeping_what_it_has(fake_server,
                                                                   tmp_path) -> None:
    script, url = fake_server
    cfg = SamplingConfig(n=3, temperature=0.8, max_new_tokens=8)
    store = Store(tmp_path / "s.sqlite")
    problems = {"T/0": PROBLEMS["T/0"]}
    # First request fine, then every attempt of the second fails.
    script.faults = [None, "500", "500", "500", "500"]  # type: ignore[list-item]
    with pytest.raises(BackendError):
        sample_to_store("m", problems, cfg, store, progress=False,
                        backend=_backend(url, max_in_flight=1))
    set_id = store.ensure_sample_set(
        model="m", temperature=0.8, top_p=0.95, seed=0, max_new_tokens=8, stop=list(cfg.stop),
        problems_sha256=_sha(problems), extra={"backend": "openai", "served_model": "served"})
    assert len(store.samples(set_id)) == 1
    run = [r for r in store.runs() if r["kind"] == "sample"][-1]
    assert run["status"] == "failed" and "BackendError" in run["summary"]["error"]
    # The rerun asks only for the two missing samples.
    script.requests.clear()
    sample_to_store("m", problems, cfg, store, progress=False,
                    backend=_backend(url, max_in_flight=1))
    assert len(script.requests) == 2 and len(store.samples(set_id)) == 3
    store.close()


def _sha(problems: dict[str, Any]) -> str:
    from codexlab.sampling.runner import prompts_sha256

    return prompts_sha256(problems)


@pytest.mark.parametrize("fault,match", [
    ("ignore_n", "returned 1 completion\\(s\\) for n=2.*--samples-per-request 1"),
    ("no_logprobs", "returned no log-probs"),
    ("refuse", "HTTP 400.*seed is not supported"),
])
def test_openai_backend_errors_name_the_problem(fake_server, tmp_path, fault, match) -> None:
    script, url = fake_server
    setattr(script, fault, True)
    cfg = SamplingConfig(n=2, temperature=0.8, max_new_tokens=8)
    with pytest.raises(BackendError, match=match):
        sample_to_store("m", {"T/0": PROBLEMS["T/0"]}, cfg, tmp_path / "s.sqlite",
                        progress=False, backend=_backend(url, samples_per_request=2))


def test_openai_backend_unreachable_and_token_healing_refused(tmp_path) -> None:
    cfg = SamplingConfig(n=1, temperature=0.8, max_new_tokens=8)
    with pytest.raises(BackendError, match="cannot reach server.*ending in /v1"):
        sample_to_store("m", {"T/0": PROBLEMS["T/0"]}, cfg, tmp_path / "s.sqlite",
                        progress=False,
                        backend=_backend("http://127.0.0.1:9/v1", max_retries=0))
    with pytest.raises(BackendError, match="token healing needs the local engine"):
        sample_to_store("m", {"T/0": PROBLEMS["T/0"]}, cfg.replace(token_healing=1),
                        tmp_path / "s.sqlite", progress=False,
                        backend=_backend("http://127.0.0.1:9/v1"))


def test_cli_sample_with_openai_backend(fake_server, tmp_path, capsys) -> None:
    from codexlab.cli import main

    script, url = fake_server
    out = tmp_path / "s.jsonl"
    rc = main(["sample", "--model", "codex-mini-3m", "--temperature", "0.8", "--n", "2",
               "--tasks", "0-1", "--max-new-tokens", "8", "--store", str(tmp_path / "st.sqlite"),
               "--out", str(out), "--backend", "openai", "--base-url", url,
               "--extra-body", '{"top_k": 0}', "--quiet"])
    assert rc == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 4 and {r["backend"] for r in rows} == {"openai"}
    assert rows[0]["token_healing"] == 0
    assert all(r["top_k"] == 0 for r in script.requests)
    rc = main(["sample", "--model", "m", "--temperature", "0.8", "--n", "1", "--tasks", "0",
               "--out", str(out), "--store", str(tmp_path / "st.sqlite"),
               "--backend", "openai", "--base-url", url, "--extra-body", "{bad"])
    assert rc == 2 and "--extra-body is not valid JSON" in capsys.readouterr().err
    rc = main(["sample", "--model", "m", "--temperature", "0.8", "--n", "1", "--tasks", "0",
               "--out", str(out), "--store", str(tmp_path / "st.sqlite"),
               "--backend", "openai", "--base-url", url, "--token-healing"])
    assert rc == 2 and "needs the local engine" in capsys.readouterr().err
    rc = main(["sample", "--model", "m", "--temperature", "0.8", "--n", "1", "--tasks", "0",
               "--out", str(out), "--store", str(tmp_path / "st.sqlite"), "--backend", "openai"])
    assert rc == 2 and "needs base_url (--base-url)" in capsys.readouterr().err
    rc = main(["sample", "--model", "m", "--temperature", "0.8", "--n", "1", "--tasks", "0",
               "--out", str(out), "--store", str(tmp_path / "st.sqlite"), "--base-url", url])
    assert rc == 2 and "are for --backend openai" in capsys.readouterr().err


def _have_vllm_gpu() -> str:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return "vLLM is not installed (pip install 'codexlab[vllm]' on a GPU machine)"
    import torch

    return "" if torch.cuda.is_available() else "vLLM needs a GPU; none here"


@pytest.mark.skipif(bool(_have_vllm_gpu()), reason=_have_vllm_gpu() or "runs")
def test_vllm_backend_agrees_with_the_local_engine_greedy(tmp_path) -> None:  # pragma: no cover
    from codexlab.problems import load_humaneval, select_tasks

    problems = select_tasks(load_humaneval(), "::16")
    cfg = SamplingConfig(temperature=0.0, n=1, max_new_tokens=128, token_healing=0,
                         dtype="float32")
    store = Store(tmp_path / "s.sqlite")
    local = sample_to_store(LARGEST, problems, cfg, store, progress=False)
    remote = sample_to_store(LARGEST, problems, cfg, store, progress=False,
                             backend=BackendConfig(name="vllm", dtype="float32",
                                                   gpu_memory_utilization=0.3))
    a = {r["task_id"]: r for r in store.samples(local)}
    b = {r["task_id"]: r for r in store.samples(remote)}
    same = sum(a[t]["completion"] == b[t]["completion"] for t in problems)
    assert same >= len(problems) - 1, (same, len(problems))


def test_figure_config_backend_fields_validate_and_reach_the_sample_stage() -> None:
    from codexlab.config import figure_config

    assert figure_config("quick", backend="").backend == "hf"
    with pytest.raises(ValueError, match="needs base_url"):
        figure_config("quick", backend="openai")
    with pytest.raises(ValueError, match="must be a JSON object"):
        figure_config("quick", backend="openai", base_url="http://h/v1", extra_body="[1]")
    cfg = figure_config("quick", backend="openai", base_url="http://h/v1",
                        extra_body='{"top_k": 0}', max_in_flight=4, api_key_env="K")
    b = cfg.sampling_backend()
    assert (b.name, b.base_url, b.max_in_flight, b.api_key_env, dict(b.extra_body)) == (
        "openai", "http://h/v1", 4, "K", {"top_k": 0})
    assert "sampling backend=openai at http://h/v1" in cfg.describe()


def test_fig11_chains_sample_through_the_figure_runs_backend(fake_server, tmp_path,
                                                              monkeypatch) -> None:
    """`codexlab figures --backend openai` draws the chain problems from the server too, and
    the notebook (SAMPLE = False, the same BACKEND) finds those sets again."""
    from codexlab import chains
    from codexlab.config import figure_config

    script, url = fake_server
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    spec = chains.ChainSpec(max_ops=2, per_length=1)
    cfg = figure_config("quick", models=["served"], n=2, store=str(tmp_path / "s.sqlite"),
                        backend="openai", base_url=url)
    counts = chains.ensure_chain_results(cfg, spec, progress=False)
    assert len(script.requests) == 2 * 2  # two problems, n = 2, one request per sample
    assert {r["max_tokens"] for r in script.requests} == {
        chains.chain_max_new_tokens(spec, cfg)}
    assert set(counts["model"]) == {"served"} and counts["n"].tolist() == [2, 2]
    # The fake server's `return <number>` never transforms the string: every sample fails.
    assert counts["c"].sum() == 0
    script.requests.clear()
    again = chains.ensure_chain_results(cfg, spec, allow_sampling=False)
    assert again.equals(counts) and not script.requests
    # A local-engine run of the same name is another set: not found in this store.
    local = figure_config("quick", models=["served"], n=2, store=str(tmp_path / "s.sqlite"))
    assert not len(chains.ensure_chain_results(local, spec, allow_sampling=False))


def test_cli_figures_refuses_openai_without_base_url(capsys) -> None:
    from codexlab.cli import main

    rc = main(["figures", "--no-run", "--no-notebooks", "--backend", "openai"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("codexlab figures: the openai backend needs base_url")


def test_openai_backend_hints_name_the_fix(fake_server, tmp_path, monkeypatch) -> None:
    script, url = fake_server
    cfg = SamplingConfig(n=1, temperature=0.8, max_new_tokens=8)
    one = {"T/0": PROBLEMS["T/0"]}
    # A server that lists its models and not ours: refused before any sample is drawn.
    script.models = ["codex-mini-3m"]
    with pytest.raises(BackendError, match=r"serves \['codex-mini-3m'\], not 'served'"):
        sample_to_store("m", one, cfg, tmp_path / "a.sqlite", progress=False,
                        backend=_backend(url))
    assert script.requests == []
    script.models = ["served"]
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    script.status = 401
    with pytest.raises(BackendError, match=r"HTTP 401.*\$NO_SUCH_KEY_VAR.*not set here"):
        sample_to_store("m", one, cfg, tmp_path / "b.sqlite", progress=False,
                        backend=_backend(url, api_key_env="NO_SUCH_KEY_VAR"))
    script.status = 404
    with pytest.raises(BackendError, match=r"HTTP 404.*ending in /v1"):
        sample_to_store("m", one, cfg, tmp_path / "c.sqlite", progress=False,
                        backend=_backend(url))


def test_cli_interrupt_says_what_is_kept(monkeypatch, capsys, tmp_path) -> None:
    import codexlab.commands.evaluate as ev
    from codexlab.cli import main

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(ev, "run", interrupted)
    assert main(["evaluate", str(tmp_path / "s.jsonl")]) == 130
    assert "nothing was written (pass --store" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "s.jsonl"), "--store", str(tmp_path / "x")]) == 130
    assert "completed work is kept in the store" in capsys.readouterr().err


def test_cli_figures_no_run_notes_that_backend_and_ray_do_nothing(capsys) -> None:
    from codexlab.cli import main

    rc = main(["figures", "--no-run", "--no-notebooks", "--backend", "openai",
               "--base-url", "http://127.0.0.1:1/v1", "--ray", "127.0.0.1:1"])
    assert rc == 0
    assert "--no-run samples and executes nothing" in capsys.readouterr().err
