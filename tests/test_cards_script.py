"""The model-card measurement script: its protocol and what it writes into a card."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from codexlab.models.card import read_model_card

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "record_humaneval_in_cards.py"


@pytest.fixture(scope="module")
def cards():
    spec = importlib.util.spec_from_file_location("record_humaneval_in_cards", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def test_card_protocol_is_the_papers_at_two_temperatures(cards):
    low, high = cards.card_configs(n=100, n_low=20)
    assert {t for _, t in low.grid()} == {0.2} and low.n == 20
    assert {t for _, t in high.grid()} == {0.8} and high.n == 100 and high.k_max == 100
    for cfg in (low, high):
        assert (cfg.top_p, cfg.max_new_tokens) == (0.95, 300)
        assert [m for m, _ in cfg.grid()] == list(cfg.resolved_models())


def test_record_writes_exact_pass_at_k_and_replaces_the_old_entry(cards, tmp_path):
    d = tmp_path / "codex-mini-3m"
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"not really weights")
    (d / "model_card.json").write_text(json.dumps(
        {"name": "codex-mini-3m", "humaneval": {"pass@10_T0.8": {"value": 0.5}}}))
    rows = []
    for task, passes_high, passes_low in (("T/0", 1, 2), ("T/1", 0, 0)):
        rows += [{"model": "codex-mini-3m", "temperature": 0.8, "task_id": task, "idx": i,
                  "passed": i < passes_high, "status": "passed" if i < passes_high else
                  "syntax_error"} for i in range(100)]
        rows += [{"model": "codex-mini-3m", "temperature": 0.2, "task_id": task, "idx": i,
                  "passed": i < passes_low, "status": "passed" if i < passes_low else "failed"}
                 for i in range(20)]
    low, high = cards.card_configs()
    cards.record(pd.DataFrame(rows), low, high, cards.cards_dir(), "test",
                 models={"codex-mini-3m": d})
    he = read_model_card(d)["humaneval"]
    # pass@100 with n=100: 1 for a task with any pass, 0 otherwise; pass@1 = c/n per task.
    assert he["pass@100"] == pytest.approx(0.5, abs=1e-12)
    assert he["pass@1"] == pytest.approx((2 / 20 + 0) / 2, abs=1e-12)
    assert he["pass@100_T0.8"]["tasks_solved"] == 1 and he["pass@100_T0.8"]["n"] == 100
    assert he["statuses_T0.8"] == {"passed": 1, "syntax_error": 199}
    assert "pass@10_T0.8" not in he  # replaced, not merged with an older protocol's entry
    assert he["weights"] and he["note"] == "measured"
    # The folder the rows came from, exactly, for pipeline.card_results to compare.
    assert he["results_dir"] == "data/results/cards"
    assert "pass@100" in (d / "README.md").read_text()


def test_measuring_some_models_keeps_the_others_committed_rows(cards, tmp_path):
    from codexlab.pipeline import compact_table, write_compact

    def rows(model: str, passed: bool) -> pd.DataFrame:
        return pd.DataFrame([{"model": model, "temperature": 0.8, "task_id": f"T/{i}",
                              "idx": 0, "passed": passed, "status": "passed" if passed
                              else "failed"} for i in range(3)])

    out = tmp_path / "cards"
    for model, passed in (("codex-mini-a", True), ("codex-mini-b", False),
                          ("codex-mini-retired", False)):
        write_compact(compact_table(rows(model, passed)), out / f"samples-{model}.parquet")
    # codex-mini-b measured again (now passing); codex-mini-a kept; the retired one dropped.
    merged = cards.with_committed_rows(rows("codex-mini-b", True), out, ["codex-mini-a"])
    assert sorted(merged["model"].unique()) == ["codex-mini-a", "codex-mini-b"]
    assert len(merged) == 6 and merged["passed"].all()
    assert cards.with_committed_rows(rows("codex-mini-b", True), out, []).shape[0] == 3


def test_measure_names_an_unknown_model_and_the_choices(cards):
    with pytest.raises(ValueError, match=r"codex-mini-s-9m.*choose from.*codex-mini-s-"):
        cards.measure(2, 1, 1, variant="s", models=("codex-mini-s-9m",))
    with pytest.raises(ValueError, match="need --variant s"):
        cards.measure(2, 1, 1, models=("codex-mini-s-9m",))


def test_measuring_some_models_rewrites_only_their_cards(cards, monkeypatch):
    """--measure --models X: the cards of the other shipped models are left as they are."""
    calls = {}
    monkeypatch.setattr(cards, "measure", lambda *a: cards.card_configs())
    monkeypatch.setattr(cards, "read_compact", lambda folder: pd.DataFrame())
    monkeypatch.setattr(cards, "record", lambda df, low, high, results_dir, source,
                        models=None: calls.update(models=models, results_dir=results_dir))
    shipped = cards.builtin_models(variant="s")
    one = next(iter(shipped))
    cards.main(["--measure", "--variant", "s", "--models", one])
    assert calls["models"] == {one: shipped[one]}
    assert calls["results_dir"] == cards.cards_dir("s")
    calls.clear()
    cards.main(["--measure", "--variant", "s"])
    assert calls["models"] is None  # every shipped model
    with pytest.raises(SystemExit):  # the kept rows were measured with n = 100 / 20
        cards.main(["--measure", "--variant", "s", "--models", one, "--n", "50"])
