import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from codexlab.store import Store, StoreError, sample_set_id

SET = dict(model="m", temperature=0.8, top_p=0.95, seed=0, max_new_tokens=64,
           stop=["\ndef"], problems_sha256="abc")
TASKS = [f"T/{i}" for i in range(8)]
N = 400
BATCH = 50

# A stand-in for a sampling run: it asks the store which indices are missing and writes
# them in batches (one transaction each), as the sampling engine does.
WRITER = textwrap.dedent(f"""
    import sys, time
    from codexlab.store import Store
    st = Store(sys.argv[1])
    run = st.start_run("sample", {{"n": {N}}}, provenance={{}})
    sid = st.ensure_sample_set(**{SET!r})
    todo = [(t, i) for t, idxs in st.missing_indices(sid, {TASKS!r}, {N}).items() for i in idxs]
    print("todo", len(todo), flush=True)
    for start in range(0, len(todo), {BATCH}):
        rows = [dict(task_id=t, idx=i, completion="x" * 2000 + str(i), n_tokens=i,
                     sum_logprob=-1.0 * i, mean_logprob=-1.0, finish_reason="stop")
                for t, i in todo[start:start + {BATCH}]]
        st.add_samples(sid, rows, run)
        time.sleep(float(sys.argv[2]))
    st.finish_run(run, "done")
    print("done", flush=True)
""")


def _start_writer(db, delay):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(delay)],
                            stdout=subprocess.PIPE, text=True)


def test_sigkill_mid_write_loses_only_inflight_batch_and_resume_fills_the_gap(tmp_path):
    db = tmp_path / "store.sqlite"
    proc = _start_writer(db, 0.02)
    assert proc.stdout.readline().startswith("todo")
    # Let it commit a few batches, then kill it without warning.
    deadline = time.time() + 30
    st = Store(db)
    sid = sample_set_id(**SET)
    while time.time() < deadline:
        have = sum(len(v) for v in st.existing_indices(sid).values())
        if have >= 5 * BATCH:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    assert st.integrity_ok()
    have = st.existing_indices(sid)
    stored = sum(len(v) for v in have.values())
    assert 0 < stored < len(TASKS) * N
    assert stored % BATCH == 0  # every committed batch whole, the in-flight one absent
    missing = st.missing_indices(sid, TASKS, N)
    expected_missing = len(TASKS) * N - stored
    assert sum(len(v) for v in missing.values()) == expected_missing
    runs = st.runs()
    assert runs[0]["status"] == "running"  # the killed run stays visible as unfinished

    # Resume: the rerun is told exactly the missing indices and writes only those.
    proc = _start_writer(db, 0.0)
    todo_line = proc.stdout.readline()
    assert todo_line.split() == ["todo", str(expected_missing)]
    assert proc.stdout.readline().strip() == "done"
    proc.wait(timeout=60)
    df = st.samples_df([sid], with_text=False)
    assert len(df) == len(TASKS) * N
    assert not df.duplicated(["task_id", "idx"]).any()
    for tid in TASKS:
        assert sorted(df.loc[df.task_id == tid, "idx"]) == list(range(N))
    assert st.missing_indices(sid, TASKS, N) == {}
    assert st.integrity_ok()


def test_duplicates_ignored_and_verdicts_replace(tmp_path):
    st = Store(tmp_path)  # a directory: uses codexlab.sqlite inside
    assert st.path.name == "codexlab.sqlite"
    run = st.start_run("sample", {"x": 1}, provenance={"git": {"commit": "abc"}})
    sid = st.ensure_sample_set(**SET)
    assert st.ensure_sample_set(**SET) == sid
    rows = [{"task_id": "T/0", "idx": i, "completion": f"c{i}"} for i in range(3)]
    assert st.add_samples(sid, rows, run) == 3
    assert st.add_samples(sid, rows + [{"task_id": "T/0", "idx": 3, "completion": "d"}], run) == 1
    assert st.missing_indices(sid, ["T/0"], 5) == {"T/0": [4]}
    v = dict(set_id=sid, task_id="T/0", idx=0, status="failed", passed=False, result="failed: x")
    st.add_verdicts([v], run)
    st.add_verdicts([{**v, "status": "passed", "passed": True, "result": "passed",
                      "isolation": {"uid": True}}], run)
    counts = st.task_counts(sid)
    assert counts.to_dict("records") == [{"task_id": "T/0", "n": 1, "c": 1}]
    assert [r["idx"] for r in st.unexecuted(sid)] == [1, 2, 3]
    st.finish_run(run, "done", {"samples": 4})
    (r,) = st.runs()
    assert r["status"] == "done" and r["provenance"]["git"]["commit"] == "abc"
    df = st.samples_df()
    assert df["passed"].isna().sum() == 3 and bool(df.loc[0, "passed"]) is True


def test_jsonl_import_export_roundtrip(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    src = tmp_path / "samples.jsonl"
    rows = [{"task_id": f"T/{i % 2}", "completion": f"return {i}", "model": "m",
             "temperature": 0.2} for i in range(6)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sid, keys = st.import_samples_jsonl(src)
    assert keys == [("T/0", 0), ("T/1", 0), ("T/0", 1), ("T/1", 1), ("T/0", 2), ("T/1", 2)]
    assert st.import_samples_jsonl(src)[0] == sid and len(st.samples(sid)) == 6  # idempotent
    info = st.sample_sets()[0]
    assert info["model"] == "m" and info["temperature"] == 0.2
    st.add_verdicts([dict(set_id=sid, task_id="T/0", idx=0, status="passed", passed=True,
                          result="passed")], None)
    out = tmp_path / "out.jsonl"
    assert st.export_jsonl(sid, out, with_verdicts=True) == 6
    back = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["task_id"], r["completion"]) for r in back} == {(r["task_id"], r["completion"]) for r in rows}
    assert sum("passed" in r for r in back) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "T/0"}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1.*completion"):
        st.import_samples_jsonl(bad)


def test_foreign_schema_version_is_refused(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st._conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    st.close()
    with pytest.raises(StoreError, match="schema version 99"):
        Store(tmp_path / "s.sqlite")


def test_runs_come_oldest_first_within_one_second(tmp_path):
    """``started`` has one-second resolution; runs started in the same second keep their order."""
    st = Store(tmp_path / "s.sqlite")
    ids = [st.start_run(kind="sample", config={"i": i}, provenance={}) for i in range(8)]
    assert [r["run_id"] for r in st.runs()] == ids
    st.close()


def test_a_file_naming_its_sampled_set_imports_as_that_set(tmp_path):
    """`codexlab sample --out` then `evaluate --store`: the verdicts join the sampled set."""
    st = Store(tmp_path / "s.sqlite")
    sid = st.ensure_sample_set(model="m", temperature=0.8, top_p=0.95, seed=0,
                               max_new_tokens=300, stop=["\ndef"], problems_sha256="abc")
    st.add_samples(sid, [{"task_id": "T/0", "idx": i, "completion": f"return {i}",
                          "sum_logprob": -1.0} for i in range(3)], None)
    rows = [{"task_id": "T/0", "idx": i, "completion": f"return {i}", "set_id": sid,
             "model": "m", "temperature": 0.8} for i in range(3)]
    src = tmp_path / "sampled.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert st.import_samples_jsonl(src, problems_sha256="abc") == (
        sid, [("T/0", 0), ("T/0", 1), ("T/0", 2)])
    assert len(st.sample_sets()) == 1
    # Evaluated against another problems file, the set's verdicts would be another
    # benchmark's: a set of its own (as without a problems hash).
    other, _ = st.import_samples_jsonl(src, problems_sha256="other")
    assert other != sid and st.import_samples_jsonl(src)[0] == other
    assert len(st.sample_sets()) == 2
    # An edited file is not that set's samples any more: it becomes a set of its own.
    rows[1]["completion"] = "return 'edited'"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    edited, _ = st.import_samples_jsonl(src, problems_sha256="abc")
    assert edited not in (sid, other) and len(st.sample_sets()) == 3
    st.close()
