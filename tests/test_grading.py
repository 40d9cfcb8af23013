"""Codex-D (Table 3): docstring sampling, the BLEU and round-trip proxies, grades → pass@k and
kappa, the grading widget driven headless, and the 09_codex_d notebook under papermill.

Metrics are checked against hand-computed exact fractions; the round trip runs real code in
the sandbox (consent given here, as in the other execution tests) with a stand-in code model
whose output is decided by the docstring it is given; sampling uses tiny random models.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import threading
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest

from codexlab import codex_d, grading
from codexlab.docstrings import DOCSTRING_STOPS, docstring_problems
from codexlab.problems import Problem, load_humaneval, select_tasks
from codexlab.store import Store

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- fixtures ----------------------------------------------------------------------------------
def _grades(rows: list[tuple[str, str, int, bool]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["grader", "task_id", "idx", "correct"])


def _table3_grades() -> pd.DataFrame:
    """ada: A 3/10, B 0/10, C 1/4 (half graded); bob: A 5/10 (idx 0-4)."""
    rows = [("ada", "A", i, i < 3) for i in range(10)]
    rows += [("ada", "B", i, False) for i in range(10)]
    rows += [("ada", "C", i, i == 0) for i in range(4)]
    rows += [("bob", "A", i, i < 5) for i in range(10)]
    return _grades(rows)


@pytest.fixture(scope="module")
def humaneval() -> dict:
    return select_tasks(load_humaneval(), ":3")


def _hand_set(store: Store, problems: dict, texts: dict[tuple[str, int], str]) -> str:
    """A docstring set of hand-written 'generated' docstrings."""
    sid = store.ensure_sample_set(model="hand", temperature=0.8, top_p=0.95, seed=0,
                                  max_new_tokens=64, stop=list(DOCSTRING_STOPS),
                                  problems_sha256="hand-written")
    store.add_samples(sid, [{"task_id": t, "idx": i, "completion": c, "finish_reason": "stop"}
                            for (t, i), c in texts.items()], None)
    return sid


# -- grades → pass@k -----------------------------------------------------------------------------
def test_pass_at_k_from_grades_matches_hand_computed_fractions() -> None:
    table = grading.pass_at_k_table(_table3_grades(), ks=(1, 2, 10), n_boot=200, seed=0)
    got = {(r.grader, r.k): r for r in table.itertuples()}
    # ada pass@1: mean of 3/10, 0/10, 1/4 over the three tasks.
    assert Fraction(got["ada", 1].estimate).limit_denominator(1000) == \
        (Fraction(3, 10) + 0 + Fraction(1, 4)) / 3 == Fraction(11, 60)
    assert got["ada", 1].tasks == 3 and got["ada", 1].graded == 24
    # pass@2 of C (n=4, c=1) = 1 - C(3,2)/C(4,2) = 1/2; of A (n=10, c=3) = 1 - C(7,2)/C(10,2).
    a2 = 1 - Fraction(21, 45)
    assert got["ada", 2].estimate == pytest.approx(float((a2 + 0 + Fraction(1, 2)) / 3), abs=1e-12)
    # pass@10 only where 10 are graded: A (c=3 → 1) and B (0); C is left out, not counted 0.
    assert got["ada", 10].estimate == pytest.approx(0.5, abs=1e-12)
    assert (got["ada", 10].tasks, got["ada", 10].tasks_short) == (2, 1)
    assert got["bob", 1].estimate == pytest.approx(0.5, abs=1e-12)
    assert got["bob", 10].estimate == 1.0
    # Pooled (two graders): strict majority, a tie counts as wrong. A: idx 0-2 both say
    # correct (3), idx 3-4 tie (wrong); B and C have one grader (ada's verdicts).
    assert got["pooled", 1].estimate == pytest.approx(float(Fraction(11, 60)), abs=1e-12)
    for r in table.itertuples():
        if r.tasks:
            assert r.low <= r.estimate <= r.high


def test_pooled_majority_and_single_grader_tables() -> None:
    pooled = grading.pooled_grades(_table3_grades()).set_index(["task_id", "idx"])
    assert pooled.loc[("A", 2), "correct"] and not pooled.loc[("A", 3), "correct"]  # 2/2 vs tie
    assert pooled.loc[("A", 3), "graders"] == 2 and pooled.loc[("C", 0), "correct"]
    only_ada = grading.pass_at_k_table(_table3_grades().query("grader == 'ada'"), ks=(1,))
    assert list(only_ada["grader"]) == ["ada"]  # no pooled row for one grader
    assert grading.pass_at_k_table(_grades([]), ks=(1, 10)).empty


def test_table3_puts_the_paper_beside_ours_and_says_when_there_are_no_grades() -> None:
    empty = grading.table3(grading.pass_at_k_table(_grades([])))
    paper = empty[empty["source"] == "paper"].set_index("model")
    assert paper.loc["Codex-D-12B", "pass@1"] == 20.3 and paper.loc["Codex-D-12B", "pass@10"] == 46.5
    assert paper.loc["Codex-S-12B", "pass@1"] == 32.2 and paper.loc["Codex-S-12B", "pass@10"] == 59.5
    assert empty[empty["source"] == "ours"]["note"].tolist() == ["no grades yet"]
    full = grading.table3(grading.pass_at_k_table(_table3_grades(), n_boot=100))
    ada = full.set_index("model").loc["ours: ada"]
    assert ada["pass@1"] == pytest.approx(100 * 11 / 60) and ada["pass@10"] == pytest.approx(50)
    assert ada["pass@1 CI"].startswith("[")


def test_grade_errors_name_the_input_and_the_fix() -> None:
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['correct'\].*load_grades"):
        grading.pass_at_k_table(pd.DataFrame({"grader": ["a"], "task_id": ["A"], "idx": [0]}))
    with pytest.raises(ValueError, match="two verdicts of grader 'a'"):
        grading.pass_at_k_table(_grades([("a", "A", 0, True), ("a", "A", 0, False)]))
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        grading.grade_counts([{"grader": "a"}])
    with pytest.raises(ValueError, match="same length|one length"):
        grading.cohen_kappa([True], [True, False])


# -- kappa and agreement --------------------------------------------------------------------------
def test_cohen_kappa_on_a_hand_example() -> None:
    # 50 items: both yes 20, a yes / b no 5, a no / b yes 10, both no 15.
    # p_o = 35/50 = 0.7; p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = (0.7-0.5)/(1-0.5) = 2/5.
    a = [True] * 20 + [True] * 5 + [False] * 10 + [False] * 15
    b = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    assert Fraction(grading.cohen_kappa(a, b)).limit_denominator(100) == Fraction(2, 5)
    assert grading.cohen_kappa(a, a) == 1.0
    assert pd.isna(grading.cohen_kappa([False] * 3, [False] * 3))  # p_e = 1: undefined
    assert pd.isna(grading.cohen_kappa([], []))
    # Perfect disagreement on a balanced pair is -1.
    assert grading.cohen_kappa([True, False], [False, True]) == -1.0


def test_agreement_table_counts_and_kappa() -> None:
    grades = _grades([("ada", "A", i, c) for i, c in enumerate([True, True, False, False])])
    samples = pd.DataFrame({"task_id": ["A"] * 4, "idx": range(4), "bleu": [50.0, 10.0, 40.0, 5.0]})
    roundtrip = pd.DataFrame({"task_id": ["A"] * 3, "idx": [0, 1, 2],
                              "roundtrip_pass": [True, True, False]})
    proxies = grading.proxy_table(samples, roundtrip, bleu_threshold=30)
    assert proxies["bleu_pass"].tolist() == [True, False, True, False]
    assert proxies["roundtrip_pass"].isna().tolist() == [False, False, False, True]
    table = grading.agreement_table(grades, proxies).set_index("proxy")
    b = table.loc["bleu_pass"]
    assert (b.n, b.both_correct, b.grader_only, b.proxy_only, b.both_wrong) == (4, 1, 1, 1, 1)
    assert b.agreement == 0.5 and b.kappa == 0.0   # p_o = p_e = 1/2
    r = table.loc["roundtrip_pass"]  # sample 3 has no round trip: left out
    assert (r.n, r.both_correct, r.both_wrong) == (3, 2, 1) and r.kappa == 1.0
    summary = grading.proxy_summary(proxies).set_index("proxy")
    assert summary.loc["roundtrip_pass", "samples"] == 3
    assert grading.agreement_table(_grades([]), proxies).empty


def test_proxy_rows_in_table3_are_pass_at_k_of_the_proxy_verdicts() -> None:
    # Task A: BLEU calls 2 of 4 correct; round trip 1 of 3 (sample 3 has none). Task B: 0 of 2.
    samples = pd.DataFrame({"task_id": ["A"] * 4 + ["B"] * 2, "idx": [0, 1, 2, 3, 0, 1],
                            "bleu": [50.0, 10.0, 40.0, 5.0, 1.0, 2.0]})
    roundtrip = pd.DataFrame({"task_id": ["A", "A", "A", "B", "B"], "idx": [0, 1, 2, 0, 1],
                              "roundtrip_pass": [True, False, False, False, False]})
    proxies = grading.proxy_table(samples, roundtrip, bleu_threshold=30)
    pg = grading.proxy_grades(proxies, bleu_threshold=30)
    assert sorted(pg["grader"].unique()) == ["BLEU >= 30", "round trip"]
    assert len(pg[pg["grader"] == "round trip"]) == 5  # the sample without a round trip left out
    pk = grading.pass_at_k_table(pg, ks=(1, 2), n_boot=50, pooled=False)
    assert "pooled" not in set(pk["grader"])
    table = grading.table3(grading.pass_at_k_table(_grades([])), proxies=pk).set_index("model")
    # pass@1 = mean over tasks of c/n: BLEU (2/4 + 0/2) / 2, round trip (1/3 + 0/2) / 2.
    assert table.loc["proxy: BLEU >= 30", "pass@1"] == pytest.approx(100 * (0.5 + 0) / 2)
    assert table.loc["proxy: round trip", "pass@1"] == pytest.approx(100 * (1 / 3) / 2)
    assert table.loc["proxy: BLEU >= 30", "source"] == "proxy"
    assert "no grades yet" in table["note"].tolist()


# -- docstring sampling ---------------------------------------------------------------------------
def _quote_biased_model():
    """A tiny random model whose head favours the docstring-closing token."""
    import torch

    from codexlab.sampling.toy import bpe_tokenizer, random_model

    tok = bpe_tokenizer(384)
    model = random_model("llama", len(tok), hidden=32, layers=1, heads=2, kv_heads=1,
                         eos_token_id=tok.eos_token_id)
    # Every token made of double quotes only ('"', '""', ...): three in a row close the docstring.
    quotes = [i for i in range(len(tok)) if set(tok.decode([i])) == {'"'}]
    head = torch.nn.Linear(model.lm_head.in_features, model.lm_head.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
        head.bias.zero_()
        head.bias[quotes] = 4.0
    model.lm_head = head
    return model, tok


def test_docstring_sampling_stores_a_set_that_ends_before_the_closing_quotes(tmp_path,
                                                                            humaneval) -> None:
    model, tok = _quote_biased_model()
    st = Store(tmp_path / "s.sqlite")
    sid = codex_d.sample_docstrings(st, "toy-d", humaneval, n=4, max_new_tokens=24, tasks=":2",
                                    progress=False, model_and_tokenizer=(model, tok))
    rows = st.samples(sid)
    assert {(r["task_id"], r["idx"]) for r in rows} == {
        (f"HumanEval/{t}", i) for t in (0, 1) for i in range(4)}
    assert all('"""' not in r["completion"] and "'''" not in r["completion"] for r in rows)
    assert any(r["finish_reason"] == "stop" for r in rows)
    (info,) = [s for s in st.sample_sets() if s["set_id"] == sid]
    assert info["stop"] == list(DOCSTRING_STOPS) and info["temperature"] == 0.8
    # Keyed by the derived (reverse-prompt) problems, not the code prompts.
    from codexlab.sampling.runner import prompts_sha256

    assert info["problems_sha256"] == prompts_sha256(docstring_problems(humaneval))
    assert info["problems_sha256"] != prompts_sha256(humaneval)
    # Found again without sampling; resumable (growing n draws only the new indices).
    assert codex_d.find_docstring_set(st, "toy-d", humaneval, max_new_tokens=24) == sid
    sid2 = codex_d.sample_docstrings(st, "toy-d", humaneval, n=5, max_new_tokens=24, tasks=":2",
                                     progress=False, model_and_tokenizer=(model, tok))
    assert sid2 == sid and len(st.samples(sid)) == 10
    assert {r["completion"] for r in rows} <= {r["completion"] for r in st.samples(sid)}
    # BLEU against the original docstring, stored like code BLEU.
    assert codex_d.score_bleu(st, sid, humaneval) == 10
    assert codex_d.score_bleu(st, sid, humaneval) == 0
    table = codex_d.docstring_samples(st, sid, humaneval, n=4)
    assert len(table) == 8 and table["bleu"].between(0, 100).all()
    first = table.iloc[0]
    assert first["code"].startswith("from typing import List") and "return False" in first["code"]
    assert first["docstring"].strip().startswith("Check if in given list of numbers")


def test_docstring_bleu_rewards_the_original() -> None:
    original = "Return the sum of a and b.\n    "
    assert codex_d.docstring_bleu(original, original) == pytest.approx(100.0)
    assert codex_d.docstring_bleu("Open a file and read it.", original) < 20


# -- round trip -------------------------------------------------------------------------------------
ADD = {"T/0": Problem(task_id="T/0", entry_point="add",
                      prompt='def add(a, b):\n    """Return a + b.\n    >>> add(2, 3)\n    5\n'
                             '    """\n',
                      test="def check(candidate):\n    assert candidate(2, 3) == 5\n"
                           "    assert candidate(-1, 1) == 0\n",
                      canonical_solution="    return a + b\n")}


@pytest.fixture
def fake_coder(monkeypatch):
    """Stand-in code model: writes a + b when the docstring says 'sum', else a * b."""
    from codexlab.sampling import runner

    seen: list[dict] = []

    def sample_to_store(model, problems, cfg, store, *, progress=True, problems_sha256=None,
                        model_and_tokenizer=None, **_):
        seen.append(dict(problems))
        sid = store.ensure_sample_set(**codex_d.set_fields(model, cfg, problems_sha256))
        have = store.existing_indices(sid)
        rows = [{"task_id": t, "idx": i, "finish_reason": "stop",
                 "completion": "    return a + b\n" if "sum" in p.prompt else "    return a * b\n"}
                for t, p in problems.items() for i in range(cfg.n) if i not in have.get(t, ())]
        store.add_samples(sid, rows, None)
        return sid

    monkeypatch.setattr(runner, "sample_to_store", sample_to_store)
    return seen


def test_roundtrip_prompt_replaces_only_the_docstring_and_parses() -> None:
    prob = ADD["T/0"]
    new = codex_d.roundtrip_prompt(prob.prompt, "add", "Return the sum of a and b.")
    assert new == 'def add(a, b):\n    """Return the sum of a and b."""\n'
    ast.parse(new + prob.canonical_solution)
    for text in ("ends in a backslash \\", 'ends in a quote "', 'has """ inside',
                 "a broken escape \\x and \\N here"):
        ast.parse(codex_d.roundtrip_prompt(prob.prompt, "add", text) + prob.canonical_solution)
    he = load_humaneval()["HumanEval/0"]
    new = codex_d.roundtrip_prompt(he.prompt, he.entry_point, "Say hi.")
    assert new.startswith("from typing import List\n\n\ndef has_close_elements(")
    assert '    """Say hi."""\n' in new and "Check if in given list" not in new
    assert codex_d.parse_roundtrip_task_id(codex_d.roundtrip_task_id("HumanEval/3", 7)) == (
        "HumanEval/3", 7)
    with pytest.raises(ValueError, match="not a round-trip task id"):
        codex_d.parse_roundtrip_task_id("HumanEval/3")


def test_roundtrip_runs_code_from_the_generated_docstring(tmp_path, monkeypatch,
                                                          fake_coder) -> None:
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    st = Store(tmp_path / "rt.sqlite")
    sid = _hand_set(st, ADD, {("T/0", 0): "Return the sum of a and b.",
                              ("T/0", 1): "Multiply the two numbers."})
    table = codex_d.roundtrip(st, sid, ADD, "fake-coder", progress=False)
    assert table.set_index("idx")["roundtrip_pass"].to_dict() == {0: True, 1: False}
    assert table["code_n"].tolist() == [1, 1] and table["statuses"].tolist() == ["passed", "failed"]
    (prompts,) = fake_coder
    assert set(prompts) == {"T/0#0", "T/0#1"}
    assert "Return the sum of a and b." in prompts["T/0#0"].prompt
    assert "Return a + b." not in prompts["T/0#0"].prompt and prompts["T/0#0"].test == ADD["T/0"].test
    # Stored: a second call (and one that may not sample) reads, samples nothing new.
    rt_set = table.attrs["set_id"]
    assert codex_d.find_roundtrip_set(st, sid, "fake-coder") == rt_set
    again = codex_d.roundtrip(st, sid, ADD, "fake-coder", sample=False)
    assert again["roundtrip_pass"].tolist() == [True, False] and again.attrs["set_id"] == rt_set
    assert next(s for s in st.sample_sets() if s["set_id"] == rt_set)["n_verdicts"] == 2
    # A new docstring: without consent nothing is sampled (checked first) ...
    st.add_samples(sid, [{"task_id": "T/0", "idx": 2, "completion": "Add them: the sum."}], None)
    monkeypatch.delenv("CODEXLAB_ALLOW_CODE_EXEC")
    with pytest.raises(PermissionError, match="CODEXLAB_ALLOW_CODE_EXEC"):
        codex_d.roundtrip(st, sid, ADD, "fake-coder", progress=False)
    assert len(fake_coder) == 1
    partial = codex_d.roundtrip(st, sid, ADD, "fake-coder", sample=False)
    assert partial["roundtrip_pass"].isna().tolist() == [False, False, True]
    # ... with it, only the new docstring's code is written and run, in the same set.
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    grown = codex_d.roundtrip(st, sid, ADD, "fake-coder", progress=False)
    assert grown["roundtrip_pass"].tolist() == [True, False, True]
    assert grown.attrs["set_id"] == rt_set
    assert len(st.samples(rt_set)) == 3


def test_roundtrip_settings_refuse_greedy_with_several_samples() -> None:
    with pytest.raises(ValueError, match="greedy"):
        codex_d.RoundTripSettings(n=3, temperature=0.0)
    cfg = codex_d.codex_d_config("quick", roundtrip_n=3, roundtrip_temperature=0.2, n=2)
    assert (cfg.roundtrip.n, cfg.roundtrip.temperature, cfg.n, cfg.tasks) == (3, 0.2, 2, ":4")
    with pytest.raises(ValueError, match="unknown mode"):
        codex_d.codex_d_config("fast")


# -- the grading widget ----------------------------------------------------------------------------
@pytest.fixture
def graded_set(tmp_path, humaneval):
    st = Store(tmp_path / "g.sqlite")
    texts = {(f"HumanEval/{t}", i): f"Docstring {i} of task {t}." for t in (0, 1) for i in range(3)}
    sid = _hand_set(st, humaneval, texts)
    samples = codex_d.docstring_samples(st, sid, humaneval)
    return st, sid, samples


def _stored(st: Store, sid: str, grader: str) -> dict:
    return {(g["task_id"], g["idx"]): (bool(g["correct"]), g["note"]) for g in st.grades(sid, grader)}


def test_grader_widget_records_resumes_skips_and_changes_verdicts(graded_set) -> None:
    from codexlab.grader import Grader, build_grader

    st, sid, samples = graded_set
    g = Grader(st, sid, samples)
    assert g.correct_button.disabled and "Type your name" in g.view.value
    g.correct_button.click()  # no name: nothing stored, the person is told why
    assert st.grades(sid) == [] and "name" in g.message.value

    g.name.value = "ada"
    assert not g.correct_button.disabled and g.position == 0
    assert "Docstring 0 of task 0." in g.view.value and "graded 0 of 6" in g.progress.value
    # The original docstring stays hidden until asked for.
    assert "Check if in given list" not in g.view.value
    g.show_original.value = True
    assert "Check if in given list" in g.view.value
    g.show_original.value = False

    g.correct_button.click()
    g.note.value = "too vague"
    g.wrong_button.click()
    g.skip_button.click()          # item 2 stays ungraded
    # JupyterLab sends widget events to a kernel subshell: the handler runs on another thread.
    clicker = threading.Thread(target=g.correct_button.click)   # item 3
    clicker.start()
    clicker.join()
    assert _stored(st, sid, "ada") == {("HumanEval/0", 0): (True, ""),
                                       ("HumanEval/0", 1): (False, "too vague"),
                                       ("HumanEval/1", 0): (True, "")}
    assert g.position == 4 and "graded 3 of 6" in g.progress.value
    assert all(gr["created"] for gr in st.grades(sid))  # the store timestamps each verdict

    # Resume: a new widget (the notebook reopened) starts at the skipped item.
    again = build_grader(st.path, sid, samples, name="ada").grader
    assert again.position == 2 and "Docstring 2 of task 0." in again.view.value
    assert "graded 3 of 6" in again.progress.value

    # Change a verdict: back to item 1 (wrong, with its note shown), click Correct.
    g.go_to(2)
    g.previous_button.click()
    assert g.position == 1 and g.note.value == "too vague" and "wrong" in g.view.value
    g.note.value = ""
    g.correct_button.click()
    assert _stored(st, sid, "ada")[("HumanEval/0", 1)] == (True, "")
    assert len(st.grades(sid, "ada")) == 3 and g.position == 2  # next ungraded after it

    # Another grader has their own progress; the first grader's grades are untouched.
    g.name.value = "bob"
    assert g.position == 0 and "graded 0 of 6" in g.progress.value
    g.wrong_button.click()
    assert len(st.grades(sid, "bob")) == 1 and len(st.grades(sid, "ada")) == 3

    # Finishing: every item graded → the done view, grading buttons off, Previous still on.
    g.name.value = "ada"
    while g.current is not None:
        g.correct_button.click()
    assert "All 6 docstrings are graded by ada" in g.view.value
    assert g.correct_button.disabled and not g.previous_button.disabled
    pass1 = grading.pass_at_k_table(grading.load_grades(st, sid), ks=(1,))
    assert pass1.set_index("grader").loc["ada", "estimate"] == 1.0


def test_grader_exports_a_static_snapshot_and_handles_nothing_to_grade(graded_set) -> None:
    from codexlab.grader import build_grader

    st, sid, samples = graded_set
    box = build_grader(st, sid, samples)
    bundle = box._repr_mimebundle_()
    assert "codexlab-grade-item" in bundle["text/html"] and "running kernel" in bundle["text/html"]
    empty = build_grader(st, None, samples.iloc[:0])
    assert "No docstring samples" in empty.value
    with pytest.raises(ValueError, match="lack column"):
        build_grader(st, sid, samples.drop(columns=["code"]))


# -- the notebook -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_model_dir(tmp_path_factory) -> Path:
    from codexlab.sampling.toy import bpe_tokenizer, random_model

    d = tmp_path_factory.mktemp("toy") / "toy-model"
    tok = bpe_tokenizer(384)
    model = random_model("llama", len(tok), hidden=32, layers=1, heads=2, kv_heads=1,
                         eos_token_id=tok.eos_token_id)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.mark.slow
def test_notebook_runs_in_quick_mode_and_replots_grades_without_sampling(tmp_path, monkeypatch,
                                                                         toy_model_dir) -> None:
    pm = pytest.importorskip("papermill")
    from codexlab.paths import NOTEBOOKS_DIR

    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    monkeypatch.setenv("CODEXLAB_RESULTS_DIR", str(tmp_path / "results"))
    store, out = tmp_path / "store.sqlite", tmp_path / "figs"
    params = {"MODEL": str(toy_model_dir), "CODE_MODEL": str(toy_model_dir), "TASKS": ":2",
              "N": 2, "MAX_NEW_TOKENS": 8, "ROUNDTRIP_MAX_NEW_TOKENS": 8, "STORE": str(store),
              "OUT": str(out)}

    def run(**extra) -> dict:
        pm.execute_notebook(str(NOTEBOOKS_DIR / "09_codex_d.ipynb"), str(tmp_path / "09.ipynb"),
                            parameters={**params, **extra}, kernel_name="python3",
                            cwd=str(NOTEBOOKS_DIR), progress_bar=False, execution_timeout=300,
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
        return json.loads((out / "records" / "09_codex_d.json").read_text())

    rec = run()
    sid0 = rec["set_id"]
    assert (rec["docstrings"], rec["tasks"], rec["bleu_scored"]) == (4, 2, 4)
    assert rec["roundtrip_executed"] == 4 and rec["graded"] == 0
    table = pd.read_csv(out / "table03_codex_d.csv")
    assert "no grades yet" in table["note"].tolist()

    # A person grades (as the widget would); SAMPLE = False re-plots from the store alone.
    with Store(store) as st:
        for i, (tid, idx) in enumerate([("HumanEval/0", 0), ("HumanEval/0", 1),
                                        ("HumanEval/1", 0), ("HumanEval/1", 1)]):
            st.add_grade(rec["set_id"], tid, idx, grader="ada", correct=i == 0)
        n_sets = len(st.sample_sets())
    rec = run(SAMPLE=False, GRADER="ada")
    assert rec["graded"] == 4 and rec["graders"] == ["ada"]
    assert rec["pass_at_1"] == {"ada": 0.25} and rec["roundtrip_executed"] == 4
    with Store(store) as st:
        assert len(st.sample_sets()) == n_sets
    table = pd.read_csv(out / "table03_codex_d.csv").set_index("model")
    assert table.loc["ours: ada", "pass@1"] == pytest.approx(25.0)
    assert table.loc["Codex-D-12B", "pass@10"] == 46.5

    # A fresh clone: no store, SAMPLE = False: the notebook still runs and creates none.
    empty = tmp_path / "nothing" / "store.sqlite"
    rec = run(SAMPLE=False, STORE=str(empty))
    assert rec["docstrings"] == 0 and rec["set_id"] is None and not empty.parent.exists()

    # Committed compact results stand in for the store: export, then a fresh clone (no store)
    # reads the same docstrings, BLEU and round trips; other settings never match them.
    import codexlab.paths

    monkeypatch.setattr(codexlab.paths, "DATA_DIR", tmp_path / "data")
    cfg = codex_d.codex_d_config("quick", model=str(toy_model_dir), code_model=str(toy_model_dir),
                                 tasks=":2", n=2, max_new_tokens=8, roundtrip_max_new_tokens=8,
                                 store=str(store))
    problems = codex_d.load_problems(cfg)
    sid = codex_d.ensure_docstrings(cfg, problems, sample=False, progress=False)
    assert sid == sid0 is not None
    path = codex_d.export_compact(cfg, sid, problems)
    assert path == tmp_path / "data" / "results" / "quick" / "codex-d" / "docstrings.parquet"
    fresh = dataclasses.replace(cfg, store=str(empty))
    assert codex_d.ensure_docstrings(fresh, problems, sample=False, progress=False) == sid
    pd.testing.assert_frame_equal(codex_d.load_docstrings(fresh, sid, problems),
                                  codex_d.load_docstrings(cfg, sid, problems), check_dtype=False)
    got = codex_d.ensure_roundtrip(fresh, sid, problems, sample=False)
    want = codex_d.ensure_roundtrip(cfg, sid, problems, sample=False)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert got.attrs["set_id"] == want.attrs["set_id"] and len(got) == 4
    assert not empty.parent.exists()
    assert codex_d.load_compact(dataclasses.replace(fresh, n=3), problems) is None
    assert codex_d.load_compact(dataclasses.replace(fresh, temperature=0.2), problems) is None
    with pytest.raises(ValueError, match="not in"):
        codex_d.export_compact(fresh, sid, problems)
