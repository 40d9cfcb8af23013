import gzip
import json

import pytest

from codexlab.problems import (
    ProblemFormatError,
    file_sha256,
    humaneval_path,
    load_humaneval,
    load_problems,
    resolve_problems,
    select_tasks,
)


def test_load_humaneval_has_164_problems_with_fields():
    probs = load_humaneval()
    assert len(probs) == 164
    p = probs["HumanEval/0"]
    assert p.entry_point == "has_close_elements"
    assert "def check(candidate)" in p.test
    assert p["prompt"] == p.prompt and p.canonical_solution


def test_resolve_records_sha256():
    _, info = resolve_problems()
    assert info["problems_sha256"] == file_sha256(humaneval_path())
    assert len(info["problems_sha256"]) == 64 and info["n_problems"] == "164"


def test_plain_and_gz_jsonl(tmp_path):
    row = {"task_id": "X/0", "prompt": "def f():\n", "entry_point": "f", "test": "def check(c): pass"}
    plain = tmp_path / "p.jsonl"
    plain.write_text(json.dumps(row) + "\n\n")
    gz = tmp_path / "p.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(json.dumps(row) + "\n")
    for path in (plain, gz):
        probs = load_problems(path)
        assert list(probs) == ["X/0"] and probs["X/0"].canonical_solution == ""


def test_malformed_row_names_file_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = {"task_id": "X/0", "prompt": "p", "entry_point": "f", "test": "t"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"task_id": "X/1", "prompt": "p"}) + "\n")
    with pytest.raises(ProblemFormatError) as err:
        load_problems(path)
    msg = str(err.value)
    assert "bad.jsonl:2" in msg and "entry_point" in msg and "test" in msg
    path.write_text("{not json\n")
    with pytest.raises(ProblemFormatError, match="bad.jsonl:1"):
        load_problems(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(ProblemFormatError, match="duplicate"):
        load_problems(path)
    with pytest.raises(FileNotFoundError):
        load_problems(tmp_path / "missing.jsonl")


def test_select_tasks():
    probs = load_humaneval()
    assert list(select_tasks(probs, ":2")) == ["HumanEval/0", "HumanEval/1"]
    assert list(select_tasks(probs, "3-4,HumanEval/9")) == ["HumanEval/3", "HumanEval/4", "HumanEval/9"]
    assert len(select_tasks(probs, None)) == 164
    with pytest.raises(KeyError, match="unknown task"):
        select_tasks(probs, "Nope/1")


def test_a_utf8_byte_order_mark_is_read_as_nothing(tmp_path):
    """Windows editors may start a JSONL file with a BOM; it is not part of the first row."""
    from codexlab.problems import iter_jsonl

    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"task_id": "T/0"}).encode() + b"\n")
    assert list(iter_jsonl(path)) == [(1, {"task_id": "T/0"})]
