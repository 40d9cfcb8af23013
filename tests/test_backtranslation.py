"""Back-translation ranking: scores against a direct computation, storage, and the Fig 7 curve."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from codexlab.backtranslation import SCORE_NAME, backtranslation_scores, score_sample_set
from codexlab.docstrings import docstring_target, reverse_prompt, split_docstring
from codexlab.problems import load_humaneval
from codexlab.sampling import toy

TASKS = ("HumanEval/0", "HumanEval/53", "HumanEval/115")


@pytest.fixture(scope="module")
def tiny() -> tuple:
    torch.set_num_threads(1)
    tok = toy.bpe_tokenizer(300)
    model = toy.random_model("llama", len(tok), hidden=32, layers=1, heads=2,
                             eos_token_id=tok.eos_token_id, logit_scale=4.0, seed=3)
    return model, tok


def _direct(model, tok, prompt: str, entry: str, completion: str) -> float:
    """One unbatched forward pass over context + target; mean log p of the target tokens."""
    s = split_docstring(prompt, entry)
    ctx = tok(reverse_prompt(s, completion), add_special_tokens=False)["input_ids"]
    tgt = tok(docstring_target(s), add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + tgt])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
    return float(np.mean([logp[len(ctx) + j - 1, t].item() for j, t in enumerate(tgt)]))


def test_scores_match_a_direct_computation(tiny: tuple) -> None:
    model, tok = tiny
    problems = load_humaneval()
    rows = [{"task_id": t, "completion": c} for t in TASKS
            for c in (problems[t].canonical_solution, "    return None\n", "    pass")]
    got = backtranslation_scores(model, tok, problems, rows, batch_size=4)  # padded batches
    for row, g in zip(rows, got, strict=True):
        p = problems[row["task_id"]]
        want = _direct(model, tok, p.prompt, p.entry_point, row["completion"])
        assert g == pytest.approx(want, abs=2e-4), row
        assert g < 0
    # The score depends on the code: two different bodies of one task score differently.
    assert len({round(v, 6) for v in got[:3]}) == 3


def test_context_is_cut_from_the_left_when_too_long(tiny: tuple) -> None:
    model, tok = tiny
    problems = load_humaneval()
    long_body = "    x = 1\n" * 400
    (full,) = backtranslation_scores(model, tok, problems,
                                     [{"task_id": "HumanEval/53", "completion": long_body}],
                                     max_length=128)
    assert full is not None and math.isfinite(full)


def test_no_docstring_gives_none(tiny: tuple) -> None:
    model, tok = tiny
    problems = {"X/0": {"prompt": "def f(x):\n", "entry_point": "f"}}
    assert backtranslation_scores(model, tok, problems,
                                  [{"task_id": "X/0", "completion": "    return x\n"}]) == [None]


def test_score_sample_set_stores_once_and_feeds_the_ranking_curve(tiny: tuple, tmp_path: Path,
                                                                 monkeypatch) -> None:
    from codexlab import analysis, plotting
    from codexlab.sampling import runner
    from codexlab.store import Store

    model, tok = tiny
    monkeypatch.setattr(runner, "load_model", lambda name, device=None: (model, tok))
    problems = load_humaneval()
    st = Store(tmp_path / "s.sqlite")
    sid = st.ensure_sample_set(model="m", temperature=0.8, top_p=0.95, seed=0,
                               max_new_tokens=64, stop=[], problems_sha256="x")
    bodies = [problems["HumanEval/53"].canonical_solution, "    return x - y\n",
              "    return 0\n", "    pass\n"]
    st.add_samples(sid, [{"task_id": "HumanEval/53", "idx": i, "completion": b, "n_tokens": 3,
                          "sum_logprob": -1.0 - i, "mean_logprob": -0.3 - i / 10}
                         for i, b in enumerate(bodies)], None)
    st.add_verdicts([{"set_id": sid, "task_id": "HumanEval/53", "idx": i, "status": s,
                      "passed": s == "passed"} for i, s in
                     enumerate(["passed", "failed", "failed", "failed"])], None)
    assert score_sample_set(st, sid, problems, "tiny", progress=False) == 4
    assert score_sample_set(st, sid, problems, "tiny", progress=False) == 0  # resumable
    stored = st.scores(sid, SCORE_NAME)
    assert len(stored) == 4 and "tiny" in st.score_scorers(sid, SCORE_NAME)[0]
    df = st.samples_df([sid], with_text=False)
    assert df[SCORE_NAME].notna().all()
    table = analysis.ranking_table(df, "m", 0.8, 4, n_boot=50)
    bt = table[table["heuristic"] == SCORE_NAME].set_index("k")["pass_rate"]
    # k = n: the chosen sample is the best-scoring one overall.
    best = max(stored, key=lambda key: stored[key])
    assert bt[4] == pytest.approx(1.0 if best[1] == 0 else 0.0)
    assert bt[1] == pytest.approx(0.25)  # k = 1 is random
    ax = plotting.plot_ranking(table)
    assert "back-translation" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_ranking_curves_rank_missing_scores_last() -> None:
    from codexlab.metrics import ranking_curves

    t = {"a": {"passed": [False, True, False], "mean_logprob": [0, 0, 0],
               "sum_logprob": [0, 0, 0], "backtranslation": [np.nan, -1.0, -2.0]}}
    r = ranking_curves(t, 3, scores=("mean_logprob", "backtranslation"))
    # k=3: the present best score (-1.0) wins, and that sample passes.
    assert r["backtranslation"][2] == pytest.approx(1.0)
    # k=2: subsets {0,1}->1 passes, {0,2}->2 fails, {1,2}->1 passes: 2/3 exactly.
    assert r["backtranslation"][1] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no column"):
        ranking_curves(pd.DataFrame({"task_id": ["a"], "passed": [True], "mean_logprob": [0.0]}),
                       1)


def test_pipeline_stage_scores_the_ranking_set(tiny: tuple, tmp_path: Path) -> None:
    """run_grid's backtranslation stage scores the reference model's ranking set only."""
    import dataclasses

    from codexlab import analysis, pipeline
    from codexlab.synthetic import make_synthetic_run

    model, tok = tiny
    scorer = tmp_path / "docstring-model"
    model.save_pretrained(scorer)
    tok.save_pretrained(scorer)
    cfg = make_synthetic_run(tmp_path / "run", tasks=":3", n=4, temperatures=(0.2, 0.8))
    assert cfg.resolved_backtranslation_model() is None  # user models: only a named scorer
    cfg = dataclasses.replace(cfg, backtranslation_model=str(scorer), k_max=4, ks=(1, 2, 4))
    pipeline.run_grid(cfg, stages=["backtranslation"], progress=False)
    df = pipeline.load_results(cfg, source="store")
    ref = df[(df["model"] == cfg.reference_label())
             & (df["temperature"] == cfg.ranking_temperature)]
    assert ref[SCORE_NAME].notna().all() and len(ref) == 3 * 4
    assert df.loc[~df.index.isin(ref.index), SCORE_NAME].isna().all()
    table = analysis.ranking_table(df, cfg.reference_label(), cfg.ranking_temperature, 4,
                                   n_boot=20)
    assert SCORE_NAME in set(table["heuristic"])
    # The compact table keeps the score, so the figure re-plots without the scorer.
    compact = pipeline.compact_table(df)
    assert compact[SCORE_NAME].notna().sum() == 12
    assert dataclasses.replace(cfg, backtranslation_model="none"
                               ).resolved_backtranslation_model() is None
