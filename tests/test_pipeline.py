"""codexlab.config and codexlab.pipeline: presets, resumable grid runs, compact tables.

The sampling and execution engines are replaced by fakes, so these tests need no model and
run no untrusted code; the engines have their own tests.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from codexlab import config, pipeline
from codexlab.store import Store
from codexlab.synthetic import SYNTHETIC_MODELS, make_synthetic_run


# -- config ------------------------------------------------------------------------------
def test_presets_have_the_documented_values() -> None:
    q, p = config.preset("quick"), config.preset("paper")
    assert (q.n, q.temperatures, q.max_new_tokens, q.k_max, q.full_grid, q.sample_workers) == (
        10, (0.2, 0.6, 1.0), 128, 10, False, 2)
    assert q.all_temperatures == (0.2, 0.6, 0.8, 1.0)
    assert (p.n, p.temperatures, p.top_p, p.max_new_tokens, p.k_max, p.full_grid) == (
        200, (0.2, 0.4, 0.6, 0.8, 1.0), 0.95, 300, 100, True)
    assert q.stop == p.stop == ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
    assert p.pass_k_label == "pass@100" and q.pass_k_label == "pass@10"
    with pytest.raises(ValueError, match="choose one of"):
        config.preset("huge")


def test_figure_config_overrides_and_validation(tmp_path) -> None:
    cfg = config.figure_config("quick", models=["a", "b"], n=5, temperatures=[0.4, 0.8],
                               store=str(tmp_path / "s.sqlite"))
    assert cfg.n == 5 and cfg.k_max == 5 and cfg.ks == (1, 2, 5)
    assert cfg.all_temperatures == (0.2, 0.4, 0.8)
    assert cfg.grid() == [("a", 0.2), ("a", 0.8), ("b", 0.2), ("b", 0.4), ("b", 0.8)]
    full = config.figure_config("paper", models=["a", "b"])
    assert len(full.grid()) == 2 * 5
    with pytest.raises(ValueError, match="k_max"):
        config.figure_config("quick", models=["a"], n=5, k_max=10)
    with pytest.raises(dataclass_error()):
        cfg.n = 3  # frozen
    assert json.dumps(cfg.to_dict())


def dataclass_error() -> type[Exception]:
    import dataclasses

    return dataclasses.FrozenInstanceError


# -- fake engines ------------------------------------------------------------------------
class FakeEngines:
    """Sampler writes canonical (pass) or broken (fail) samples; executor checks the text."""

    def __init__(self) -> None:
        self.sampled = 0
        self.executed = 0
        self.fail_after: int | None = None

    def sample(self, model, problems, cfg, temperature, store, progress, problems_sha256):
        sid = store.ensure_sample_set(model=pipeline.model_label(model), temperature=temperature,
                                      top_p=cfg.top_p, seed=cfg.seed,
                                      max_new_tokens=cfg.max_new_tokens, stop=cfg.stop,
                                      problems_sha256=problems_sha256)
        missing = store.missing_indices(sid, list(problems), cfg.n)
        rows = []
        for tid, idxs in missing.items():
            for i in idxs:
                ok = i % 3 == 0
                rows.append({"task_id": tid, "idx": i, "n_tokens": 5, "sum_logprob": -5.0,
                             "mean_logprob": -1.0,
                             "completion": problems[tid].canonical_solution if ok
                             else "    return None\n"})
        self.sampled += store.add_samples(sid, rows, None)
        return sid

    def execute(self, problems, samples, cfg, progress):
        if self.fail_after is not None and self.executed >= self.fail_after:
            raise KeyboardInterrupt
        self.executed += len(samples)
        return [{"status": "failed" if "return None" in s["completion"] else "passed",
                 "passed": "return None" not in s["completion"], "result": "x"}
                for s in samples]


@pytest.fixture()
def grid_cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    return config.figure_config("quick", models=["tiny-a", "tiny-b"], n=4, tasks=":3",
                                temperatures=[0.8], store=str(tmp_path / "store.sqlite"))


def test_run_grid_samples_executes_scores_then_resumes_idle(grid_cfg) -> None:
    fake = FakeEngines()
    df = pipeline.run_grid(grid_cfg, sample_fn=fake.sample, execute_fn=fake.execute,
                           progress=False)
    assert len(df) == 2 * 2 * 3 * 4  # models × T × tasks × n
    assert fake.sampled == fake.executed == len(df)
    assert df["passed"].notna().all() and df["bleu"].notna().all()
    assert df.groupby("idx")["passed"].all().to_dict() == {0: True, 1: False, 2: False, 3: True}
    status = pipeline.grid_status(grid_cfg)
    assert status["complete"].all()
    again = pipeline.run_grid(grid_cfg, sample_fn=fake.sample, execute_fn=fake.execute,
                              progress=False)
    assert fake.sampled == fake.executed == len(df)  # nothing redone
    pd.testing.assert_frame_equal(df, again)


def test_run_grid_resumes_after_interrupt_and_force_reexecutes(grid_cfg, monkeypatch) -> None:
    monkeypatch.setattr(pipeline, "EXEC_CHUNK", 5)
    fake = FakeEngines()
    fake.fail_after = 10
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_grid(grid_cfg, sample_fn=fake.sample, execute_fn=fake.execute,
                          progress=False)
    with Store(grid_cfg.store_path()) as st:
        assert st.runs()[-1]["status"] == "interrupted"
    fake.fail_after = None
    df = pipeline.run_grid(grid_cfg, sample_fn=fake.sample, execute_fn=fake.execute,
                           progress=False)
    assert fake.executed == len(df)  # each sample executed once across both runs
    pipeline.run_grid(grid_cfg, force=True, sample_fn=fake.sample, execute_fn=fake.execute,
                      progress=False)
    assert fake.executed == 2 * len(df) and fake.sampled == len(df)  # force never re-samples


def test_stages_are_skippable_and_consent_is_required(grid_cfg, monkeypatch) -> None:
    fake = FakeEngines()
    df = pipeline.run_grid(grid_cfg, stages=["sample"], sample_fn=fake.sample,
                           execute_fn=fake.execute, progress=False)
    assert fake.executed == 0 and df["passed"].isna().all() and df["bleu"].isna().all()
    monkeypatch.delenv("CODEXLAB_ALLOW_CODE_EXEC")
    with pytest.raises(PermissionError, match="CODEXLAB_ALLOW_CODE_EXEC=1"):
        pipeline.run_grid(grid_cfg, sample_fn=fake.sample, execute_fn=fake.execute,
                          progress=False)
    assert "NOT allowed" in pipeline.consent_status()
    with pytest.raises(ValueError, match="unknown stages"):
        pipeline.run_grid(grid_cfg, stages=["plot"])


def test_ensure_results_reads_without_sampling_when_complete(tmp_path, monkeypatch) -> None:
    cfg = make_synthetic_run(tmp_path, tasks=":5", n=4)

    def boom(*a, **k):
        raise AssertionError("must not sample")

    monkeypatch.setattr(pipeline, "_default_sample_fn", boom)
    df = pipeline.ensure_results(cfg)
    assert len(df) == len(cfg.grid()) * 5 * 4
    assert set(df["model"]) == set(SYNTHETIC_MODELS)


def test_compact_export_import_roundtrip(tmp_path) -> None:
    cfg = make_synthetic_run(tmp_path / "run", tasks=":5", n=4)
    out = pipeline.export_compact(cfg, out_dir=tmp_path / "compact")
    assert {p.name for p in out.iterdir()} == {
        *(f"samples-{m}.parquet" for m in SYNTHETIC_MODELS), "models.csv", "meta.json"}
    table = pipeline.read_compact(out)
    assert list(table.columns) == list(pipeline.COMPACT_COLUMNS)
    assert "completion" not in table
    original = pipeline.compact_table(pipeline.load_results(cfg))
    pd.testing.assert_frame_equal(pipeline.compact_table(table), original)
    # Same bytes on a second export: the committed table only changes when results do.
    first = (out / "samples-synth-3m.parquet").read_bytes()
    pipeline.export_compact(cfg, out_dir=out)
    assert (out / "samples-synth-3m.parquet").read_bytes() == first
    with Store(tmp_path / "imported.sqlite") as st:
        ids = pipeline.import_compact(out, st)
        assert len(ids) == len(cfg.grid())
        back = st.samples_df(ids, with_text=False)
    assert int(back["passed"].sum()) == int(table["passed"].sum())
    csv_path = pipeline.write_compact(table, tmp_path / "samples.csv")
    pd.testing.assert_frame_equal(pipeline.compact_table(pipeline.read_compact(csv_path)),
                                  original)


def test_load_results_from_compact_without_store(tmp_path, monkeypatch) -> None:
    cfg = make_synthetic_run(tmp_path / "run", tasks=":5", n=4)
    compact_dir = tmp_path / "data" / "results" / "quick"
    pipeline.export_compact(cfg, out_dir=compact_dir)
    monkeypatch.setattr("codexlab.paths.DATA_DIR", tmp_path / "data")
    gone = config.figure_config("quick", models=list(cfg.models), n=4, tasks=":5",
                                temperatures=list(cfg.temperatures),
                                store=str(tmp_path / "absent.sqlite"))
    df = pipeline.load_results(gone)
    assert len(df) == len(cfg.grid()) * 5 * 4
    assert pipeline.ensure_results(gone).shape == df.shape


def test_model_table_reads_cards(tmp_path) -> None:
    cfg = make_synthetic_run(tmp_path, tasks=":2", n=2)
    t = pipeline.model_table(cfg)
    assert t["model"].tolist() == list(SYNTHETIC_MODELS)
    assert t["params_non_embedding"].tolist() == [v[1] for v in SYNTHETIC_MODELS.values()]
    assert t["heldout_loss"].is_monotonic_decreasing


def test_task_samples_has_text(tmp_path) -> None:
    cfg = make_synthetic_run(tmp_path, tasks=":3", n=3)
    s = pipeline.task_samples(cfg, "HumanEval/1", temperature=0.8)
    assert len(s) == 3 and s["completion"].str.len().gt(0).all()


def test_results_cache_follows_store_changes(tmp_path) -> None:
    cfg = make_synthetic_run(tmp_path, tasks=":3", n=3)
    first = pipeline.load_results(cfg)
    assert any((tmp_path / ".codexlab-cache").glob("samples-*.parquet"))
    pd.testing.assert_frame_equal(first, pipeline.load_results(cfg))  # served from the cache
    row = first.iloc[0]
    with Store(cfg.store_path()) as st:
        st.add_verdicts([{"set_id": row["set_id"], "task_id": row["task_id"], "idx": 0,
                          "status": "timeout", "passed": False, "result": "timed out"}], None)
    after = pipeline.load_results(cfg)
    assert after.iloc[0]["status"] == "timeout"


def _save_toy_model(tmp_path):
    """Save a tiny random Llama with its tokenizer under tmp_path/toy-model."""
    from codexlab.sampling import toy

    tok = toy.bpe_tokenizer(300)
    model = toy.random_model("llama", len(tok), hidden=64, layers=1, heads=1,
                             eos_token_id=tok.eos_token_id)
    mdir = tmp_path / "toy-model"
    model.save_pretrained(mdir)
    tok.save_pretrained(mdir)
    return mdir, model


@pytest.mark.slow
def test_run_grid_with_the_real_engines(tmp_path, monkeypatch) -> None:
    """End to end on a tiny random model: parallel sampling workers, sandbox, BLEU."""
    pytest.importorskip("torch")
    mdir, _ = _save_toy_model(tmp_path)
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    cfg = config.figure_config("quick", models=[str(mdir)], tasks=":2", n=2,
                               temperatures=[0.8], max_new_tokens=8,
                               store=str(tmp_path / "store.sqlite"))
    assert cfg.sample_workers == 2
    df = pipeline.run_grid(cfg, progress=False)
    assert len(df) == 2 * 2 * 2  # T × tasks × n
    assert df["status"].notna().all() and df["bleu"].notna().all()
    assert df["mean_logprob"].notna().all()
    assert set(df["model"]) == {"toy-model"}
    assert pipeline.grid_status(cfg)["complete"].all()
    assert pipeline.model_table(cfg)["params_total"].iloc[0] > 0  # counted from the weights


def test_figures_command_grid_only(tmp_path, results_dir, capsys) -> None:
    from codexlab.cli import main

    cfg = make_synthetic_run(tmp_path, tasks=":3", n=3)
    # The synthetic models hold stored samples only, no weights: leave out the notebooks
    # whose grid step samples new problem sets (Fig 11's chains); nothing here is executed,
    # so no consent is needed.
    from codexlab.commands.figures import NOTEBOOKS

    names = ",".join(n for n in NOTEBOOKS if n != "08_chained_ops")
    common = ["figures", "--models", ",".join(cfg.models), "--store", cfg.store, "--tasks",
              cfg.tasks, "--n", "3", "--temperatures", "0.2,0.5,0.8", "--notebooks", names,
              "--out", str(tmp_path / "figs"), "--no-notebooks"]
    assert main(common) == 0
    assert "grid:" in capsys.readouterr().out
    assert not (results_dir / "notebooks").exists()
    assert main([*common, "--stages", "plot"]) == 2
    assert main(["figures", "--notebooks", "99_nope"]) == 2


def test_retrained_weights_do_not_reuse_old_samples(tmp_path) -> None:
    """A model trained further under the same name gets a new sample set, not the old one."""
    pytest.importorskip("torch")
    import torch

    from codexlab.sampling.runner import weights_fingerprint

    mdir, model = _save_toy_model(tmp_path)
    before = weights_fingerprint(str(mdir))
    assert before and weights_fingerprint("some-org/hub-model") is None
    # codexlab train's exact-resume state is not weights: the folder it trained in and the
    # shipped copy without it (how scripts/gpu_train.sh brings models back) print alike.
    (mdir / "training_state.pt").write_bytes(b"optimizer state")
    assert weights_fingerprint(str(mdir)) == before
    (mdir / "training_state.pt").unlink()

    cfg = config.figure_config("quick", models=[str(mdir)], tasks=":1", n=1,
                               temperatures=[0.8], max_new_tokens=4,
                               store=str(tmp_path / "store.sqlite"))
    from codexlab.problems import file_sha256, humaneval_path

    st = Store(cfg.store_path())
    he_sha = file_sha256(humaneval_path())
    # A set of the same model and settings drawn for another problem file is not this grid's.
    other = st.ensure_sample_set(model=str(mdir), temperature=0.8, top_p=cfg.top_p,
                                 seed=cfg.seed, max_new_tokens=cfg.max_new_tokens,
                                 stop=list(cfg.stop), problems_sha256="mbpp-file-sha",
                                 extra={"weights": before})
    st.add_samples(other, [{"task_id": f"MBPP/{i}", "idx": 0, "completion": "x"}
                           for i in range(5)], None)
    sid = st.ensure_sample_set(model=str(mdir), temperature=0.8, top_p=cfg.top_p, seed=cfg.seed,
                               max_new_tokens=cfg.max_new_tokens, stop=list(cfg.stop),
                               problems_sha256=he_sha, extra={"weights": before})
    assert pipeline.find_set(st, cfg, str(mdir), 0.8) == sid

    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    model.save_pretrained(mdir)
    after = weights_fingerprint(str(mdir))
    assert after and after != before
    assert pipeline.find_set(st, cfg, str(mdir), 0.8) is None


def test_exec_dedup_is_in_the_recorded_config() -> None:
    from codexlab.config import figure_config

    assert figure_config("quick").to_dict()["exec_dedup"] is True
    assert figure_config("quick", exec_dedup=False).to_dict()["exec_dedup"] is False


def _shipped_models(tmp_path, monkeypatch, specs) -> None:
    """Make ``data/models`` a folder of weightless models: (name, non-embedding params)."""
    from codexlab import paths
    from codexlab.models.card import write_model_card

    models = tmp_path / "models"
    for name, n in specs:
        (models / name).mkdir(parents=True)
        (models / name / "config.json").write_text("{}")
        write_model_card(models / name, {"name": name, "params": {"non_embedding": n}})
    monkeypatch.setattr(paths, "MODELS_DIR", models)


def test_variant_config_and_codex_s_grid(tmp_path, monkeypatch) -> None:
    """Codex-S figures: a second config over the variant's models, same protocol and store."""
    from codexlab import paths
    from codexlab.commands.figures import _codex_s_config

    _shipped_models(tmp_path, monkeypatch, (("codex-mini-1.3m", 1), ("codex-mini-3m", 3),
                                            ("codex-mini-s-3m", 3), ("codex-mini-s-1.3m", 1),
                                            ("codex-mini-d-3m", 3)))
    cfg = config.figure_config("quick", store=str(tmp_path / "s.sqlite"))
    assert cfg.resolved_models() == ("codex-mini-1.3m", "codex-mini-3m")
    assert cfg.resolved_backtranslation_model() == "codex-mini-d-3m"
    s = cfg.variant_config("s")
    assert s.resolved_models() == ("codex-mini-s-1.3m", "codex-mini-s-3m")
    assert s.reference() == "codex-mini-s-3m" and s.n == cfg.n and s.store == cfg.store
    assert s.compact_results_dir() == cfg.compact_results_dir() / "codex-s"
    assert ("codex-mini-s-3m", 0.6) in s.grid() and ("codex-mini-s-1.3m", 0.6) not in s.grid()
    assert not set(s.grid()) & set(cfg.grid())
    with pytest.raises(ValueError, match="variant must be one of"):
        cfg.variant_config("x")
    # codexlab figures: built-in bases pair with built-in Codex-S; user models only on request.
    assert _codex_s_config(cfg, [], "").resolved_models() == s.resolved_models()
    assert _codex_s_config(cfg, [], "none") is None
    user = config.figure_config("quick", models=["a/b"])
    assert _codex_s_config(user, ["a/b"], "") is None
    assert _codex_s_config(user, ["a/b"], "c/d").resolved_models() == ("c/d",)
    monkeypatch.setattr(paths, "MODELS_DIR", tmp_path / "empty")
    # No Codex-S weights, but the committed Codex-S results: re-plotted from those.
    committed = _codex_s_config(config.figure_config("quick"), [], "")
    assert committed is not None and committed.resolved_models()
    assert all(m.startswith("codex-mini-s-") for m in committed.resolved_models())
    # Neither weights nor results: no Codex-S run.
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path / "nodata")
    assert _codex_s_config(config.figure_config("quick"), [], "") is None


def test_fig9_sweeps_the_base_of_the_largest_codex_s_model(tmp_path, monkeypatch) -> None:
    """A larger base model without a Codex-S copy: Fig 9's pair is swept, no other model."""
    _shipped_models(tmp_path, monkeypatch, (("codex-mini-1.3m", 1), ("codex-mini-3m", 3),
                                            ("codex-mini-9m", 9), ("codex-mini-s-1.3m", 1),
                                            ("codex-mini-s-3m", 3)))
    cfg = config.figure_config("quick", store=str(tmp_path / "s.sqlite"))
    s = cfg.variant_config("s")
    assert cfg.reference() == "codex-mini-9m" and cfg.paired_base(s) == "codex-mini-3m"
    swept = cfg.sweeping_base_of(s)
    assert swept.swept_models == ("codex-mini-3m",) and swept.reference() == "codex-mini-9m"
    temps = {m: [t for mm, t in swept.grid() if mm == m] for m in swept.resolved_models()}
    assert temps == {"codex-mini-1.3m": [0.2, 0.8], "codex-mini-3m": [0.2, 0.6, 0.8, 1.0],
                     "codex-mini-9m": [0.2, 0.6, 0.8, 1.0]}
    assert set(cfg.grid()) < set(swept.grid())
    # Idempotent; no change when the pair's base is the reference; not inherited by Codex-S.
    assert swept.sweeping_base_of(s) == swept
    small = config.figure_config("quick", models=["codex-mini-1.3m", "codex-mini-3m"])
    assert small.sweeping_base_of(s) == small
    assert swept.variant_config("s").swept_models == ()
    # A Codex-S model whose base is not in the run: nothing to sweep.
    only9 = config.figure_config("quick", models=["codex-mini-9m"])
    assert only9.paired_base(s) is None and only9.sweeping_base_of(s) == only9
    # The figures command samples and exports the swept grid.
    from codexlab.commands import figures

    seen = []
    monkeypatch.setattr(pipeline, "run_grid", lambda c, **kw: seen.append(c) or pd.DataFrame())
    monkeypatch.setattr(figures, "_concat_runs", lambda a, b: a)
    monkeypatch.setenv("CODEXLAB_ALLOW_CODE_EXEC", "1")
    from codexlab.cli import main

    main(["figures", "--store", str(tmp_path / "s.sqlite"), "--no-notebooks", "--notebooks",
          "02_scaling,07_codex_s", "--out", str(tmp_path / "figs")])
    assert [c.swept_models for c in seen] == [("codex-mini-3m",), ()]


def test_card_results_are_the_shipped_familys_on_the_weights_they_measured(monkeypatch,
                                                                          capsys) -> None:
    """Fig 6/10 at the cards' protocol re-plot data/results/cards/ for the built-in family."""
    from codexlab.models import builtin_models
    from codexlab.models.card import read_model_card
    from codexlab.sampling import runner

    cfg = config.figure_config("quick")
    df = pipeline.card_results(cfg)
    assert df is not None
    shipped = builtin_models()
    assert set(df["model"]) <= set(shipped)
    for name in set(df["model"]):
        # The rows are those the card's pass@100 was computed from.
        he = read_model_card(shipped[name])["humaneval"]
        high = df[(df["model"] == name) & (df["temperature"] == 0.8)]
        solved = high.groupby("task_id")["passed"].any()
        assert len(solved) == 164 and high.groupby("task_id").size().min() == 100
        assert int(solved.sum()) == he["pass@100_T0.8"]["tasks_solved"]
    # User models have no cards; weights changed since the measurement are left out.
    assert pipeline.card_results(config.figure_config("quick", models=["gpt2"])) is None
    # A card re-recorded from another run (quick mode) no longer vouches for these rows.
    real_card = pipeline._card
    monkeypatch.setattr(pipeline, "_card", lambda name: {**real_card(name), "humaneval": {
        **real_card(name)["humaneval"], "results_dir": "data/results/quick"}})
    assert pipeline.card_results(cfg) is None
    assert "measured on other weights" in capsys.readouterr().out
    monkeypatch.setattr(pipeline, "_card", real_card)
    assert pipeline.card_results(cfg) is not None
    monkeypatch.setattr(runner, "weights_fingerprint", lambda name: "retrained")
    assert pipeline.card_results(cfg) is None
    assert "measured on other weights" in capsys.readouterr().out
