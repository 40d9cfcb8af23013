import json
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
