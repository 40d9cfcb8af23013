import json
import os
import subprocess
import sys
import time

from codexlab.cli import COMMANDS, build_parser, main


def test_help_is_fast_and_does_not_import_torch():
    code = ("import sys, time; t=time.perf_counter(); from codexlab.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit: pass\n"
            "print('TIME', time.perf_counter()-t, 'torch' in sys.modules, 'pandas' in sys.modules)")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("TIME")][0].split()
    assert line[2] == "False" and line[3] == "False", "heavy imports at CLI start-up"
    assert float(line[1]) < 1.0 and wall < 5.0


def test_every_command_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert {"problems", "passk", "store"} <= set(sub.choices)
    for name in sub.choices:
        assert name in COMMANDS
        try:
            main([name, "--help"])
        except SystemExit as exc:
            assert exc.code == 0
        assert "usage: codexlab " + name in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly():
    """`codexlab problems list | head -1`: no BrokenPipeError traceback when head exits."""
    code = "import sys; from codexlab.cli import main; sys.exit(main(['problems', 'list']))"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write, so every write fails
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=write_end,
                            stderr=subprocess.PIPE)
    os.close(write_end)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_problems_show(capsys):
    assert main(["problems", "show", "HumanEval/0", "--field", "entry_point"]) == 0
    assert capsys.readouterr().out.strip() == "has_close_elements"
    assert main(["problems", "show", "Nope/3"]) == 2


def test_passk_from_results_file(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    rows = [{"task_id": "a", "passed": i < 2} for i in range(4)]
    rows += [{"task_id": "b", "passed": False} for _ in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["passk", str(path), "--k", "1,2,10"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert out["pass@1"] == 0.25
    assert abs(out["pass@2"] - (1 - 1 / 6) / 2) < 1e-12
    assert out["pass@1_low"] <= out["pass@1"] <= out["pass@1_high"]
    assert "pass@10" not in out and "pass@10: skipped" in captured.err
    assert "repeat a (task_id, idx)" not in captured.err
    # A file joined to itself: the same sample indices again are counted, and flagged.
    indexed = [{**r, "idx": i % 4} for i, r in enumerate(rows)]
    path.write_text("".join(json.dumps(r) + "\n" for r in indexed * 2))
    assert main(["passk", str(path), "--k", "1"]) == 0
    assert "8 row(s) repeat a (task_id, idx) of an earlier row (e.g. line 9 repeats line 1)" \
        in capsys.readouterr().err


# ------------------------------------------------------------------ bad input (issue 11 item 4)


def _rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_passk_on_an_empty_file_is_one_line(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["passk", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"codexlab passk: {empty}: no results (empty file?)"


def test_passk_when_no_k_can_be_computed(tmp_path, capsys):
    path = _rows(tmp_path / "r.jsonl",
                 [{"task_id": f"T/{t}", "passed": i < 2} for t in range(3) for i in range(5)])
    assert main(["passk", path, "--k", "10"]) == 2
    captured = capsys.readouterr()
    assert "{}" not in captured.out
    assert "nothing to compute" in captured.err and "(5 in" in captured.err
    assert main(["passk", path, "--k", "1,10"]) == 0  # what can be computed still is
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "pass@1" in out and "pass@10" not in out


def test_passk_rejects_non_bool_passed_with_file_and_line(tmp_path, capsys):
    path = _rows(tmp_path / "r.jsonl", [{"task_id": "a", "passed": True},
                                        {"task_id": "a", "passed": "false"}])
    assert main(["passk", path]) == 2
    assert f"{path}:2: passed must be true or false" in capsys.readouterr().err


def test_evaluate_names_the_file_and_line_of_a_non_utf8_byte(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"task_id": "HumanEval/0", "completion": "    return 1\\n"}\n'
                     b'{"task_id": "HumanEval/0", "completion": "    return \xff\\n"}\n')
    assert main(["evaluate", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"codexlab evaluate: {path}:2: not valid UTF-8")
    assert "\n" not in err


def test_evaluate_bad_inputs_are_one_line_each(tmp_path, capsys, monkeypatch):
    import gzip

    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    ok = _rows(tmp_path / "ok.jsonl", [{"task_id": "HumanEval/0", "completion": "    pass\n"}])
    null = _rows(tmp_path / "null.jsonl", [{"task_id": "HumanEval/0", "completion": None}])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    trunc = tmp_path / "t.jsonl.gz"
    line = json.dumps({"task_id": "HumanEval/0", "completion": os.urandom(2000).hex()})
    blob = gzip.compress((line + "\n").encode())
    trunc.write_bytes(blob[: len(blob) // 2])
    cases = [
        ([null], f"{null}:1: completion must be a string"),
        ([str(empty)], "no samples (empty file?)"),
        ([str(trunc)], "truncated"),
        ([str(tmp_path / "missing.jsonl")], "cannot read"),
        ([ok, "--problems", str(tmp_path / "nope.jsonl")], "cannot read problems"),
        ([ok, "--out", str(tmp_path / "no" / "dir" / "r.jsonl")], "cannot write"),
    ]
    for argv, want in cases:
        assert main(["evaluate", *argv, "--no-progress"]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert want in err and "\n" not in err and "Traceback" not in err, (argv, err)


def test_task_ranges_past_the_last_problem_are_refused(capsys):
    import pytest

    from codexlab.problems import load_humaneval, select_tasks

    he = load_humaneval()
    for sel in ("0-999", ":200", "164", "5-3"):
        with pytest.raises(KeyError) as exc:
            select_tasks(he, sel)
        assert sel in exc.value.args[0]
    assert "164 problems" in str(pytest.raises(KeyError, select_tasks, he, "0-999").value)
    assert len(select_tasks(he, "0-163")) == len(select_tasks(he, ":164")) == 164
    assert list(select_tasks(he, "163")) == ["HumanEval/163"]
    # A stride spreads evenly over the file, from the first problem; zero is refused.
    every2 = list(select_tasks(he, "::2"))
    assert len(every2) == 82 and every2[:3] == ["HumanEval/0", "HumanEval/2", "HumanEval/4"]
    assert every2[-1] == "HumanEval/162" and len(select_tasks(he, "::1")) == 164
    for sel in ("::0", "::x"):
        with pytest.raises(KeyError) as exc:
            select_tasks(he, sel)
        assert sel in exc.value.args[0]


def test_store_options_may_follow_the_action(tmp_path, capsys):
    from codexlab.store import Store

    samples = _rows(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "x"}] * 2)
    db = str(tmp_path / "st.sqlite")
    assert main(["store", "import", samples, "--store", db]) == 0
    st = Store(db)
    (set_id,) = [s["set_id"] for s in st.sample_sets()]
    st.close()
    capsys.readouterr()
    out1, out2, out3 = (str(tmp_path / f"o{i}.jsonl") for i in range(3))
    assert main(["store", "export", "--set", set_id, "--store", db, out1]) == 0
    assert main(["store", "--store", db, "export", out2, "--set", set_id]) == 0
    assert main(["store", "export", out3, "--with-verdicts", "--set", set_id, "--store", db]) == 0
    for o in (out1, out2, out3):
        assert len(open(o).read().splitlines()) == 2
    assert main(["store", "info", "--store", db]) == 0
    assert set_id in capsys.readouterr().out
    assert main(["store", "export", "--set", "nope", "--store", db, out1]) == 2
    assert "no sample set 'nope'" in capsys.readouterr().err


def test_problems_show_unknown_task_has_no_stray_quotes() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "codexlab", "problems", "show", "HumanEval/999"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("codexlab problems show: unknown task 'HumanEval/999'")
    assert not line.endswith('"')


def test_problems_and_figures_bad_inputs_are_one_line_each(tmp_path, capsys, monkeypatch):
    """A malformed problems file, a bad --tasks, and --no-run of a model with no results."""
    monkeypatch.setenv("CODEXLAB_RESULTS_DIR", str(tmp_path / "results"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "x"}\n')
    for action in (["list"], ["show", "x"]):
        assert main(["problems", *action, "--problems", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{bad}:1: missing field(s)" in err
    for tasks, words in (("::0", "must be ::N"), ("999", "out of range"), ("::x", "must be ::N")):
        assert main(["figures", "--no-run", "--tasks", tasks, "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("codexlab figures: ") and words in err and "Traceback" not in err
    assert main(["figures", "--no-run", "--models", "codex-mini-7m", "--notebooks",
                 "02_scaling", "--out", str(tmp_path / "figs")]) == 2
    assert "nothing is stored for ['codex-mini-7m']" in capsys.readouterr().err
    assert not (tmp_path / "figs").exists() and not (tmp_path / "results").exists()


def test_store_reading_commands_never_create_or_convert_a_file(tmp_path, capsys):
    """A typo'd --store path, or a samples .jsonl passed as the store, is refused as it is."""
    import sqlite3

    from codexlab.store import Store

    typo = tmp_path / "typo" / "codexlab.sqlite"
    empty_jsonl = tmp_path / "empty.jsonl"
    empty_jsonl.write_bytes(b"")
    for action in ("info", "runs", "check"):
        assert main(["store", action, "--store", str(typo)]) == 2
        assert f"no store at {typo}" in capsys.readouterr().err
        assert main(["store", action, "--store", str(empty_jsonl)]) == 2
        assert "is not a codexlab store" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists() and empty_jsonl.read_bytes() == b""
    # Importing an empty file is an error and leaves no set; orphans fail the check.
    db = tmp_path / "st.sqlite"
    assert main(["store", "import", str(_rows(tmp_path / "none.jsonl", [])), "--store",
                 str(db)]) == 2
    assert "no samples (empty file?)" in capsys.readouterr().err
    with Store(db) as st:
        assert st.sample_sets() == []
    assert main(["store", "check", "--store", str(db)]) == 0
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO samples(set_id, task_id, idx, completion, created) "
                     "VALUES ('gone', 'T/0', 0, 'x', 'now')")
    assert main(["store", "check", "--store", str(db)]) == 1
    assert "1 sample(s) and 0 verdict(s) name a sample set" in capsys.readouterr().out


def test_sample_and_problems_bad_inputs_fail_before_any_work(tmp_path, capsys, monkeypatch):
    """Each is one line and exit 2: a directory as --out, a selection naming no task, an
    unknown --field, a model that does not load (which leaves no empty set in the store)."""
    from codexlab.store import Store

    monkeypatch.setenv("CODEXLAB_RESULTS_DIR", str(tmp_path / "results"))
    base = ["sample", "--temperature", "0.8", "--n", "1", "--max-new-tokens", "4", "--quiet"]
    cases = [
        (base + ["--model", "codex-mini-0.2m", "--tasks", ":1", "--out", str(tmp_path)],
         "is a directory"),
        (base + ["--model", "codex-mini-0.2m", "--tasks", ",,", "--out", "x.jsonl"],
         "names no task"),
        (base + ["--model", "codex-mini-0.2m", "--tasks", ":1", "--temperature", "nan",
                 "--out", "x.jsonl"], "temperature must be a finite number"),
        (["problems", "show", "HumanEval/0", "--field", "nope"], "no field 'nope'"),
        (["figures", "--no-run", "--temperatures", "abc"], "must be comma-separated numbers"),
    ]
    for argv, want in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert want in err and "Traceback" not in err, (argv, err)
    db = tmp_path / "st.sqlite"
    assert main(base + ["--model", str(tmp_path / "no-such-model"), "--tasks", ":1",
                        "--store", str(db), "--out", str(tmp_path / "o.jsonl")]) == 2
    capsys.readouterr()
    with Store(db) as st:
        assert st.sample_sets() == []


def test_evaluate_with_no_computable_k_exits_2_as_passk_does(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    ok = _rows(tmp_path / "ok.jsonl", [{"task_id": "HumanEval/0", "completion": "    pass\n"}])
    assert main(["evaluate", ok, "--no-progress", "--k", "5"]) == 2
    out, err = capsys.readouterr()
    assert "no pass@k could be computed for k = [5]" in err and out.strip() == "{}"
    assert (tmp_path / "ok.jsonl_results.jsonl").exists()  # the verdicts are kept


def test_serve_refuses_out_of_range_numbers_before_starting(capsys):
    import pytest

    for argv, want in ((["--port", "70000"], "--port: must be between 0 and 65535"),
                       (["--threads", "0"], "--threads: must be between 1 and 1024")):
        with pytest.raises(SystemExit) as exc:
            main(["serve", "codex-mini-0.2m", *argv])
        assert exc.value.code == 2 and want in capsys.readouterr().err
