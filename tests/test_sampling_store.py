"""Store-backed sampling: resume with only the missing indices (also after SIGKILL), and the CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from shipped import LARGEST

from codexlab.cli import main as cli_main
from codexlab.sampling import SamplingConfig, SamplingEngine, sample_to_store
from codexlab.sampling.toy import bpe_tokenizer, random_model
from codexlab.store import Store

PROBLEMS = {
    "T/0": "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n",
    "T/1": "def fib(n: int) -> int:\n    \"\"\"Return the n-th Fibonacci number.\n    \"\"\"\n",
    "T/2": "def is_even(n):\n",
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy():
    tok = bpe_tokenizer(384)
    model = random_model("llama", len(tok), hidden=64, layers=2, heads=4, kv_heads=2,
                         logit_scale=6.0, eos_token_id=tok.eos_token_id)
    return model, tok


def reference(model, tok, cfg):
    rows = SamplingEngine(model, tok, cfg).run(PROBLEMS, progress=False)
    return {(r["task_id"], r["idx"]): r for r in rows}


def assert_same(stored, ref):
    # Stored rows carry no token ids, so a near-tie (the engine's batch-composition guarantee,
    # see tests/test_sampling_engine.py) could not be told from a real difference here; the
    # toy model's peaky distributions (logit_scale 6) keep its draws far from ties.
    assert {(r["task_id"], r["idx"]) for r in stored} == set(ref)
    for r in stored:
        e = ref[(r["task_id"], r["idx"])]
        assert (r["completion"], r["n_tokens"], r["finish_reason"]) == (
            e["completion"], e["n_tokens"], e["finish_reason"])
        assert abs(r["sum_logprob"] - e["sum_logprob"]) < 1e-4


def test_growing_n_draws_only_the_new_indices(tmp_path):
    model, tok = toy()
    st = Store(tmp_path / "s.sqlite")
    cfg = SamplingConfig(n=3, max_new_tokens=24, batch_size=4)
    sid = sample_to_store("toy", PROBLEMS, cfg, st, progress=False,
                          model_and_tokenizer=(model, tok))
    assert len(st.samples(sid)) == 9
    sid2 = sample_to_store("toy", PROBLEMS, cfg.replace(n=5), st, progress=False,
                           model_and_tokenizer=(model, tok))
    assert sid2 == sid
    runs = [r for r in st.runs() if r["kind"] == "sample"]
    # (runs() orders by start second, so two quick runs may come in either order)
    assert sorted(r["summary"]["added"] for r in runs) == [6, 9]
    assert all(r["status"] == "done" for r in runs)
    assert_same(st.samples(sid), reference(model, tok, cfg.replace(n=5)))
    # Nothing missing: returns at once, without a new run.
    sample_to_store("toy", PROBLEMS, cfg.replace(n=5), st, progress=False,
                    model_and_tokenizer=(model, tok))
    assert len([r for r in st.runs() if r["kind"] == "sample"]) == 2


CHILD = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from test_sampling_store import PROBLEMS, toy
    from codexlab.sampling import SamplingConfig, sample_to_store
    model, tok = toy()
    cfg = SamplingConfig(n={n}, max_new_tokens=32, batch_size=6)
    print("ready", flush=True)
    sample_to_store("toy", PROBLEMS, cfg, {store!r}, progress=False,
                    model_and_tokenizer=(model, tok), commit_rows=1)
    print("finished", flush=True)
""")


def test_resume_after_sigkill_draws_exactly_the_missing_indices(tmp_path):
    n = 60
    store_path = tmp_path / "kill.sqlite"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(Path(__file__).parent), n=n, store=str(store_path)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    count = 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if store_path.exists():
                try:
                    with sqlite3.connect(f"file:{store_path}?mode=ro", uri=True) as con:
                        count = con.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
                except sqlite3.OperationalError:
                    count = 0
                if count >= 10:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, f"child ended early: {proc.communicate()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert 10 <= count < 3 * n

    st = Store(store_path)
    assert st.integrity_ok()
    (run,) = st.runs()
    assert run["status"] == "running"  # killed: never marked finished
    cfg = SamplingConfig(n=n, max_new_tokens=32, batch_size=6)
    (sid,) = [s["set_id"] for s in st.sample_sets()]
    missing = st.missing_indices(sid, list(PROBLEMS), n)
    n_missing = sum(len(v) for v in missing.values())
    assert 0 < n_missing < 3 * n - 9
    have_before = {(r["task_id"], r["idx"]) for r in st.samples(sid)}

    model, tok = toy()
    sample_to_store("toy", PROBLEMS, cfg, st, progress=False, model_and_tokenizer=(model, tok))
    resumed = next(r for r in st.runs() if r["status"] != "running")
    assert resumed["status"] == "done"
    assert resumed["summary"]["added"] == n_missing == resumed["summary"]["todo"]
    rows = st.samples(sid)
    assert len(rows) == 3 * n
    assert {(r["task_id"], r["idx"]) for r in rows} - have_before == {
        (t, i) for t, idxs in missing.items() for i in idxs}
    assert_same(rows, reference(model, tok, cfg))


def test_stored_samples_are_never_redrawn(tmp_path):
    # The exact half of the determinism guarantee: growing n (or resuming) keeps every stored
    # sample bit for bit and draws only the missing indices. Shown with other weights under
    # the same name, which would draw different samples for every index.
    model, tok = toy()
    st = Store(tmp_path / "s.sqlite")
    cfg = SamplingConfig(n=2, max_new_tokens=16, batch_size=4)
    sid = sample_to_store("toy", PROBLEMS, cfg, st, progress=False,
                          model_and_tokenizer=(model, tok))
    before = {(r["task_id"], r["idx"]): r for r in st.samples(sid)}
    other = random_model("llama", len(tok), hidden=64, layers=2, heads=4, kv_heads=2,
                         logit_scale=6.0, eos_token_id=tok.eos_token_id, seed=7)
    assert sample_to_store("toy", PROBLEMS, cfg.replace(n=4), st, progress=False,
                           model_and_tokenizer=(other, tok)) == sid
    after = {(r["task_id"], r["idx"]): r for r in st.samples(sid)}
    assert set(after) == {(t, i) for t in PROBLEMS for i in range(4)}
    assert {k: after[k] for k in before} == before
    fresh = reference(other, tok, cfg.replace(n=4))
    assert all(after[k]["completion"] == fresh[k]["completion"] for k in after if k[1] >= 2)
    assert any(before[k]["completion"] != fresh[k]["completion"] for k in before)


def test_cli_writes_evaluate_ready_jsonl_and_resumes(tmp_path, capsys):
    model, tok = toy()
    mdir = tmp_path / "toy-model"
    model.save_pretrained(mdir)
    tok.save_pretrained(mdir)
    probs = tmp_path / "problems.jsonl"
    with open(probs, "w") as fh:
        for tid, prompt in PROBLEMS.items():
            fh.write(json.dumps({"task_id": tid, "prompt": prompt, "entry_point": "f",
                                 "test": "def check(candidate):\n    pass\n",
                                 "canonical_solution": "    pass\n"}) + "\n")
    out = tmp_path / "samples.jsonl"
    args = ["sample", "--model", str(mdir), "--temperature", "0.8", "--n", "3",
            "--problems", str(probs), "--tasks", "0-1", "--max-new-tokens", "16",
            "--store", str(tmp_path / "cli.sqlite"), "--out", str(out), "--quiet",
            "--device", "cpu", "--threads", "1"]
    assert cli_main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rows"] == 6 and summary["added"] == summary["last_run"]["added"] == 6
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["task_id"] for r in rows} == {"T/0", "T/1"}
    for r in rows:
        assert {"task_id", "completion", "sum_logprob", "mean_logprob", "n_tokens",
                "finish_reason", "model", "temperature", "top_p", "seed", "idx"} <= set(r)
        assert r["model"] == str(mdir) and r["temperature"] == 0.8
    # Same command again: nothing sampled, same file, and the summary says so.
    first = out.read_text()
    assert cli_main(args) == 0
    assert out.read_text() == first
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["rows"], summary["added"], summary["last_run"]) == (6, 0, None)
    # Growing n continues the set: only the new indices are drawn and reported.
    assert cli_main(args[:6] + ["4"] + args[7:]) == 0
    assert len(out.read_text().splitlines()) == 8
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["rows"], summary["added"], summary["last_run"]["added"]) == (8, 2, 2)


def test_cli_names_bad_model_and_bad_tasks(tmp_path, capsys):
    base = ["sample", "--temperature", "0.8", "--n", "1", "--out", str(tmp_path / "o.jsonl"),
            "--store", str(tmp_path / "s.sqlite"), "--quiet"]
    assert cli_main(base + ["--model", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "cannot load model" in err and "built-in name" in err
    assert cli_main(base + ["--model", "codex-mini-nonexistent"]) == 2
    assert "codex-mini-nonexistent" in capsys.readouterr().err
    assert cli_main(base + ["--model", "x", "--tasks", "HumanEval/999"]) == 2
    assert "--tasks" in capsys.readouterr().err
    assert cli_main(base + ["--model", "x", "--threads", "0"]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err


def test_an_imported_healed_jsonl_is_found_for_a_builtin_model(tmp_path):
    # `codexlab sample` writes token_healing into every row; importing that file (or a store
    # export of the set) must key the set as healed, which is what the figure pipeline looks
    # for on the built-in models.
    from codexlab import pipeline
    from codexlab.config import FigureConfig

    cfg = FigureConfig()
    common = {"model": LARGEST, "temperature": 0.8, "top_p": cfg.top_p,
              "seed": cfg.seed, "max_new_tokens": cfg.max_new_tokens}
    healed = tmp_path / "healed.jsonl"
    healed.write_text("".join(
        json.dumps({"task_id": f"HumanEval/{i}", "idx": 0, "completion": "    return 1\n",
                    **common, "token_healing": 1}) + "\n" for i in range(3)))
    plain = tmp_path / "plain.jsonl"
    plain.write_text("".join(
        json.dumps({"task_id": f"HumanEval/{i}", "idx": 0, "completion": "    return 2\n",
                    **common}) + "\n" for i in range(3)))
    st = Store(tmp_path / "s.sqlite")
    sid, _ = st.import_samples_jsonl(healed)
    sid_plain, _ = st.import_samples_jsonl(plain)
    extras = {s["set_id"]: s["extra"] for s in st.sample_sets()}
    assert extras[sid]["token_healing"] == 1 and "token_healing" not in extras[sid_plain]
    assert pipeline.find_set(st, cfg, LARGEST, 0.8) == sid
    # A store export carries the key fields, so it imports back as the same kind of set.
    back = tmp_path / "back.jsonl"
    assert st.export_jsonl(sid, back) == 3
    other = Store(tmp_path / "other.sqlite")
    sid_back, _ = other.import_samples_jsonl(back)
    assert pipeline.find_set(other, cfg, LARGEST, 0.8) == sid_back
    assert other.sample_sets()[0]["max_new_tokens"] == cfg.max_new_tokens
