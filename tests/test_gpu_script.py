"""scripts/gpu_train.sh end to end at toy scale on the CPU: corpus, two sizes, card samples,
parts, fetch, unpack.

The GPU machine runs the same script with the real sizes and time budgets (DEVELOPERS.md); this
toy run (TOY=1: the two smallest sizes, token budgets, no compile, a generated corpus, the card
protocol on two tasks with n=2/1) checks every phase it goes through, that what comes back fits
the device tool's limits and unpacks into loadable Hugging Face models whose cards carry the
measured throughput, and that the card samples drawn there are found here by the card script.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_train.sh"
MIB = 1024 * 1024
#: The device tool's limits on what one call returns.
TOOL_FILES, TOOL_FILE_BYTES, TOOL_BYTES = 8, 16 * MIB, 64 * MIB


def _orchestrator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_train", REPO / "scripts" / "gpu_train.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[spec.name]
    return mod


def _run(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHON": sys.executable, "NICE": "0", **env}
    return subprocess.run(["bash", str(SCRIPT), *args], env=full, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def _write_corpus(src: Path) -> None:
    """Six packages of documented standalone functions, each line distinct (no near-dups)."""
    for p in range(6):
        pkg = src / f"pkg{p}"
        pkg.mkdir(parents=True)
        for m in range(4):
            text = ""
            for j in range(6):
                k = p * 100 + m * 10 + j
                text += (f"def scale_{k}(values, factor={k}):\n"
                         f"    \"\"\"Return each value times {k} plus the factor {k + 1}.\"\"\"\n"
                         f"    out_{k} = []\n    for v in values:\n"
                         f"        out_{k}.append(v * {k} + factor - {k % 7})\n"
                         f"    return out_{k}\n\n\n")
            (pkg / f"mod{m}.py").write_text(text)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the script with TOY=1 (small parts so that three calls are needed), then fetch."""
    root = tmp_path_factory.mktemp("gpu")
    _write_corpus(root / "src")
    env = {"TOY": "1", "WORK": str(root / "work"), "ROOTS": str(root / "src"),
           "PART_SIZE": str(MIB), "CALL_FILES": "6", "CALL_BYTES": str(5 * MIB)}
    t0 = time.time()
    res = _run([], {**env, "OUT": str(root / "out1")})
    took = time.time() - t0
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    outs = [root / "out1"]
    meta = json.loads((root / "out1" / "gpu_train.json").read_text())
    for call in range(2, meta["calls"] + 1):
        out = root / f"out{call}"
        r = _run(["--fetch"], {**env, "OUT": str(out), "PART": str(call)})
        assert r.returncode == 0, r.stderr
        outs.append(out)
    return {"root": root, "env": env, "outs": outs, "meta": meta, "stdout": res.stdout,
            "seconds": took}


def test_toy_run_phases_and_returned_files(toy_run: dict[str, Any]) -> None:
    meta, outs = toy_run["meta"], toy_run["outs"]
    assert meta["calls"] == len(outs) >= 2  # the toy parts are small on purpose
    log = (outs[0] / "gpu_train.log").read_text()
    for phase in ("start:", "corpus:", "training window", "pretrain: start",
                  "functions: start", "call 1 of", "card sampling:", "done in", "--fetch"):
        assert phase in log, phase
    assert meta["corpus"]["train"]["files"] > 0 and meta["functions"]["kept_functions"] > 0
    # The largest size gets a Codex-S copy (S_SIZES' toy default); the other is base only.
    small, big = meta["sizes"]["codex-mini-0.2m"], meta["sizes"]["codex-mini-1.2m"]
    assert small["trained"] and [s["stage"] for s in small["stages"]] == ["pretrain"]
    assert big["trained"] and [s["stage"] for s in big["stages"]] == ["pretrain", "functions"]
    assert big["stages"][0]["tokens"] == 2048 and big["stages"][1]["tokens"] == 512
    assert big["stages"][1]["model"] == "codex-mini-s-1.2m"
    assert set(meta["timings_s"]) >= {"prepare", "train", "pack", "total"}
    # Every part is returned by exactly one call, each call within the tool's limits.
    seen: list[str] = []
    for call, out in enumerate(outs, 1):
        files = sorted(out.iterdir())
        assert len(files) <= 6 <= TOOL_FILES
        assert all(f.stat().st_size <= TOOL_FILE_BYTES for f in files)
        assert sum(f.stat().st_size for f in files) <= min(5 * MIB, TOOL_BYTES)
        parts = [f.name for f in files if ".tar.part-" in f.name]
        assert parts == sorted(p["file"] for p in meta["parts"] if p["call"] == call)
        seen += parts
    assert sorted(seen) == sorted(p["file"] for p in meta["parts"])
    assert not any("training_state" in p["file"] for p in meta["parts"])


def test_toy_run_unpacks_into_loadable_models(toy_run: dict[str, Any], tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest = tmp_path / "models"
    res = _run(["--unpack", *map(str, toy_run["outs"])], {"MODELS": str(dest)})
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in dest.iterdir()) == [
        "codex-mini-0.2m", "codex-mini-1.2m", "codex-mini-s-1.2m"]
    for d in dest.iterdir():
        assert not (d / "training_state.pt").exists()
        model = AutoModelForCausalLM.from_pretrained(d)
        tok = AutoTokenizer.from_pretrained(d)
        ids = tok("def f(x):\n    return", return_tensors="pt").input_ids
        with torch.no_grad():
            assert torch.isfinite(model(ids).logits).all()
        card = json.loads((d / "model_card.json").read_text())
        stages = card["training"]["stages"]
        assert all(s["tokens_per_s"] > 0 and s["first_step_s"] > 0 for s in stages)
        if d.name.startswith("codex-mini-s-"):
            # Codex-S: the base's pretraining, then the function stage, prompt masked.
            assert [s["data_split"] for s in stages] == ["train", "functions"]
            assert stages[1]["prompt_loss_weight"] == 0.0
            assert card["variant"] == "s" and card["base_model"] == "codex-mini-1.2m"
        else:
            assert [s["data_split"] for s in stages] == ["train"]
        assert card["training"]["gpu_run"]["script"] == "scripts/gpu_train.sh"
        assert card["tokenizer"]["version"] == 2


def test_unpack_retires_v1_and_fine_tunes_of_replaced_bases(toy_run: dict[str, Any],
                                                              tmp_path: Path) -> None:
    """The CPU-trained family a GPU run replaces: what goes and what stays."""
    dest = tmp_path / "models"
    before = {"codex-mini-3m": {"family_version": 1},  # v1: retired
              "codex-mini-s-0.2m": {"family_version": 2, "variant": "s",
                                    "base_model": "codex-mini-0.2m"},  # its base is replaced
              "codex-mini-d-1.2m": {"family_version": 2, "variant": "d",
                                    "base_model": "codex-mini-1.2m"},  # kept, with a hint
              "codex-mini-4.7m": {"family_version": 2}}  # not in this run: kept
    for name, card in before.items():
        (dest / name).mkdir(parents=True)
        (dest / name / "model_card.json").write_text(json.dumps({"name": name, **card}))
    res = _run(["--unpack", *map(str, toy_run["outs"])], {"MODELS": str(dest)})
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in dest.iterdir()) == [
        "codex-mini-0.2m", "codex-mini-1.2m", "codex-mini-4.7m", "codex-mini-d-1.2m",
        "codex-mini-s-1.2m"]
    assert "removed codex-mini-3m (family v1" in res.stdout
    assert "removed codex-mini-s-0.2m (its base codex-mini-0.2m was retrained" in res.stdout
    assert "kept codex-mini-d-1.2m" in res.stdout and "--stage docstrings" in res.stdout


def test_parts_come_most_important_first(toy_run: dict[str, Any]) -> None:
    """Largest base first, then the card samples, then its Codex-S copy, the smallest last:
    a fetch call the device time cannot pay for loses what a CPU can redo."""
    order: list[str] = []
    for p in toy_run["meta"]["parts"]:
        if p["model"] not in order:
            order.append(p["model"])
    assert order == ["codex-mini-1.2m", "cards-store", "codex-mini-s-1.2m", "codex-mini-0.2m"]
    assert [p["call"] for p in toy_run["meta"]["parts"]] == sorted(
        p["call"] for p in toy_run["meta"]["parts"])


def test_toy_run_draws_the_card_protocol_after_a_device_check(toy_run: dict[str, Any]) -> None:
    cards = toy_run["meta"]["cards"]
    assert cards["rc"] == 0 and cards["tasks"] == 2
    check = cards["check"]  # on the CPU the "device" is the CPU: identical by construction
    assert check["same_completion"] == check["same_finish_reason"] == 1
    assert check["max_abs_delta_logprob_per_token"] == 0.0
    got = {(x["model"], x["temperature"]): x["samples"] for x in cards["stored"]}
    want = {(m, t): 2 * n for m in ("codex-mini-1.2m", "codex-mini-s-1.2m", "codex-mini-0.2m")
            for t, n in ((0.8, 2), (0.2, 1))}
    assert got == want
    assert all(s["tokens_per_s"] > 0 and "error" not in s for s in cards["sets"])


def test_unpack_names_the_models_whose_parts_are_missing(toy_run: dict[str, Any],
                                                         tmp_path: Path) -> None:
    meta = toy_run["meta"]
    res = _run(["--unpack", str(toy_run["outs"][0])],
               {"MODELS": str(tmp_path / "m"), "CARDS_STORE": str(tmp_path / "c.sqlite")})
    assert res.returncode == 1
    in_first = {p["model"] for p in meta["parts"] if p["call"] == 1}
    complete = {m for m in in_first if all(p["call"] == 1 for p in meta["parts"]
                                           if p["model"] == m)}
    for model in {p["model"] for p in meta["parts"]} - complete:
        assert model in res.stderr.split("parts missing for", 1)[1]
    for model in complete - {"cards-store"}:
        assert (tmp_path / "m" / model / "config.json").exists()


def test_card_samples_unpacked_here_are_found_by_the_card_script(
        toy_run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store drawn "there" matches the card protocol's sets of the models unpacked here
    (another folder, the same weights): --measure only executes them, or completes them."""
    import dataclasses
    import importlib
    import sqlite3

    from codexlab.pipeline import find_set, load_problems, sampling_config
    from codexlab.sampling import sample_to_store
    from codexlab.store import Store

    dest, store_path = tmp_path / "models", tmp_path / "cards.sqlite"
    res = _run(["--unpack", *map(str, toy_run["outs"])],
               {"MODELS": str(dest), "CARDS_STORE": str(store_path)})
    assert res.returncode == 0, res.stderr
    assert f"--measure --store {store_path}" in res.stdout
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        rec = importlib.import_module("record_humaneval_in_cards")
    finally:
        sys.path.remove(str(REPO / "scripts"))
    low, high = rec.card_configs(2, 1, store=str(store_path), tasks="::82")
    with Store(store_path) as store:
        for model in ("codex-mini-1.2m", "codex-mini-s-1.2m", "codex-mini-0.2m"):
            for cfg in (high, low):
                t = cfg.scaling_temperatures[0]
                one = dataclasses.replace(cfg, models=(str(dest / model),))
                sid = find_set(store, one, str(dest / model), t)
                assert sid is not None, (model, t)
                assert len(store.samples(sid)) == 2 * cfg.n
        # A set the deadline cut short is completed here under the same key: only the
        # missing indices are drawn, the GPU's rows stay. (Here the unpacked family is
        # the built-in one, as it is after --unpack into data/models.)
        monkeypatch.setenv("CODEXLAB_MODELS_DIR", str(dest))
        sid = find_set(store, dataclasses.replace(high, models=("codex-mini-1.2m",)),
                       "codex-mini-1.2m", 0.8)
        kept = {(r["task_id"], r["idx"]): r["completion"] for r in store.samples(sid)
                if r["idx"] == 0}
        with sqlite3.connect(store_path) as raw:
            assert raw.execute("DELETE FROM samples WHERE set_id=? AND idx=1",
                               (sid,)).rowcount == 2
        problems, pinfo = load_problems(high)
        again = sample_to_store("codex-mini-1.2m", problems, sampling_config(high, 0.8), store,
                                progress=False, problems_sha256=pinfo["problems_sha256"])
        assert again == sid
        rows = store.samples(sid)
        assert sorted((r["task_id"], r["idx"]) for r in rows) == sorted(
            (t, i) for t in problems for i in range(2))
        assert {(r["task_id"], r["idx"]): r["completion"] for r in rows
                if r["idx"] == 0} == kept
        # Other weights under the same name are not these samples.
        other = dest / "codex-mini-0.2m"
        (other / "model.safetensors").write_bytes(b"x" * 64)
        one = dataclasses.replace(high, models=(str(other),))
        assert find_set(store, one, str(other), 0.8) is None


def test_unpack_refuses_a_corrupted_part(toy_run: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(toy_run["outs"][0], bad)
    part = sorted(bad.glob("*.tar.part-*"))[0]
    part.write_bytes(part.read_bytes()[:-1] + b"\0")
    res = _run(["--unpack", str(bad)], {"MODELS": str(tmp_path / "m")})
    assert res.returncode == 6 and "checksum mismatch" in res.stderr


def test_fetch_without_a_run_and_bad_settings_fail_with_one_line(tmp_path: Path) -> None:
    res = _run(["--fetch"], {"OUT": str(tmp_path / "o"), "WORK": str(tmp_path / "w")})
    assert res.returncode == 5 and res.stderr.strip().startswith("gpu_train: nothing to fetch")
    res = _run([], {"OUT": str(tmp_path / "o"), "TOKENIZER": str(tmp_path / "none.json")})
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "tokenizer" in res.stderr
    res = _run([], {"OUT": str(tmp_path / "o"), "SIZES": "codex-mini-7b"})
    assert res.returncode == 2 and "unknown size" in res.stderr
    res = _run([], {"OUT": ""})
    assert res.returncode == 2 and "OUT is not set" in res.stderr


def test_codex_s_copies_fit_the_weights_budget_beside_what_the_unpack_keeps(
        tmp_path: Path) -> None:
    gt = _orchestrator()
    sizes = ["codex-mini-0.2m", "codex-mini-1.2m", "codex-mini-4.7m", "codex-mini-14m",
             "codex-mini-22m"]
    vocab = 8192  # tokenizer v2
    base = sum(gt.weight_bytes(s, vocab) for s in sizes)
    assert round(base / 1e6, 1) == 106.8
    assert gt.s_sizes_within(sizes, vocab, 0, 120_000_000) == [
        "codex-mini-0.2m", "codex-mini-1.2m"]
    # Room for one more large copy when the budget allows it; none when nothing fits.
    assert gt.s_sizes_within(sizes, vocab, 0, 122_000_000) == [
        "codex-mini-0.2m", "codex-mini-4.7m"]
    assert gt.s_sizes_within(sizes, vocab, 14_000_000, 120_000_000) == []
    # What the unpack keeps counts: a Codex-D model (kept), not a Codex-S copy of a retrained
    # base, an older family's model or a size being retrained.
    dest = tmp_path / "models"
    for name, card in {"codex-mini-d-1.2m": {"family_version": 2, "variant": "d",
                                             "base_model": "codex-mini-1.2m"},
                       "codex-mini-s-1.2m": {"family_version": 2, "variant": "s",
                                             "base_model": "codex-mini-1.2m"},
                       "codex-mini-3m": {"family_version": 1},
                       "codex-mini-1.2m": {"family_version": 2}}.items():
        (dest / name).mkdir(parents=True)
        (dest / name / "model_card.json").write_text(json.dumps(card))
        (dest / name / "model.safetensors").write_bytes(b"\0" * 1000)
    assert gt.kept_models(dest, sizes) == {"codex-mini-d-1.2m": 1000}


def test_call_plan_of_the_real_family_fits_three_calls() -> None:
    """The v2 family's folders (106.8 MB of bf16 weights) and the default Codex-S copies in
    15 MiB parts, with the card samples' store: three calls (13 parts, 6 per call)."""
    gt = _orchestrator()
    sizes = ["codex-mini-0.2m", "codex-mini-1.2m", "codex-mini-4.7m", "codex-mini-14m",
             "codex-mini-22m"]
    s_sizes = gt.s_sizes_within(sizes, 8192, 4_514_960, 120_000_000)
    # bf16 weights + tokenizer + card (~0.5 MB) per folder; the gzipped card store ~8 MB.
    folder_mb = [gt.weight_bytes(s, 8192) / 1e6 + 0.5 for s in [*sizes, *s_sizes]] + [8.0]
    parts = []
    for mb in folder_mb:
        left = int(mb * 1e6)
        while left > 0:
            parts.append(min(left, 15 * MIB))
            left -= 15 * MIB
    calls = gt.plan_calls(parts)
    assert calls == sorted(calls) and max(calls) == 3
    for c in set(calls):
        mine = [p for p, k in zip(parts, calls, strict=True) if k == c]
        assert len(mine) + gt.RESERVED_FILES <= TOOL_FILES
        assert sum(mine) + gt.RESERVED_BYTES <= TOOL_BYTES
    assert gt.plan_calls([MIB] * 13, call_files=6) == [1] * 4 + [2] * 4 + [3] * 4 + [4]
    with pytest.raises(ValueError):
        gt.plan_calls([70 * MIB])


def test_timed_run_samples_the_cards_even_after_the_deadline_signals(tmp_path: Path) -> None:
    """Time budgets (as on the GPU), with a trainer that overruns its window (a negative
    OVERHEAD stands for an unmeasured cost: each stage runs 20 s past its end, so the
    function stage meets the deadline SIGTERM): the pretrained base still comes back, and the
    card sampling still runs after the signals."""
    _write_corpus(tmp_path / "src")
    env = {"TOY": "1", "WORK": str(tmp_path / "work"), "ROOTS": str(tmp_path / "src"),
           "OUT": str(tmp_path / "out"), "STAGE1_TOKENS": "none", "STAGE2_TOKENS": "none",
           "SIZES": "codex-mini-0.2m", "S_SIZES": "codex-mini-0.2m", "TOTAL": "110",
           "MARGIN": "20", "SAMPLE_S": "40", "LANE_MIN_S": "20", "FUNC_MIN_S": "30",
           "FUNC_EPOCHS": "100", "MIN_STAGE_S": "3", "OVERHEAD": "-20"}
    t0 = time.time()
    res = _run([], env, timeout=200)
    took = time.time() - t0
    # The function stage was cut by the deadline: the run says so with rc 1.
    assert res.returncode == 1 and "no function-level stage" in res.stderr, res.stderr[-2000:]
    assert took < 110 + 15
    log = (tmp_path / "out" / "gpu_train.log").read_text()
    assert "deadline: SIGTERM" in log
    meta = json.loads((tmp_path / "out" / "gpu_train.json").read_text())
    assert meta["sizes"]["codex-mini-0.2m"]["trained"]
    cards = meta["cards"]
    assert cards["rc"] == 0, log[-3000:]
    assert {(x["model"], x["temperature"]) for x in cards["stored"]} == {
        ("codex-mini-0.2m", 0.8), ("codex-mini-0.2m", 0.2)}
    assert any(p["model"] == "cards-store" for p in meta["parts"])


def test_real_run_defaults_cap_the_corpus_and_sample_the_cards(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """The GPU run's defaults: corpus capped (its build comes off training), card sampling on
    with the card protocol's n; the toy run reads the whole (tiny) corpus."""
    gt = _orchestrator()
    for key in ("TOY", "MAX_FILES", "SAMPLE_S", "SAMPLE_N", "SAMPLE_N_LOW", "SAMPLE_TASKS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OUT", str(tmp_path))
    st = gt.Settings.from_env()
    assert st.max_files == "20000" and st.sample_s == 100
    assert (st.sample_n, st.sample_n_low, st.sample_tasks) == (100, 20, "")
    assert st.sizes[-1] == "codex-mini-22m"
    # Codex-S copies by default: those that fit the 120 MB weights budget beside the five base
    # models (106.8 MB) and the shipped Codex-D model the unpack keeps.
    assert st.s_sizes == ["codex-mini-0.2m", "codex-mini-1.2m"]
    assert "OVER BUDGET" not in st.weights_plan and "of the 120 MB budget" in st.weights_plan
    monkeypatch.setenv("S_SIZES", "codex-mini-22m")
    assert "OVER BUDGET" in gt.Settings.from_env().weights_plan
    monkeypatch.delenv("S_SIZES")
    monkeypatch.setenv("WEIGHTS_MB", "lots")
    with pytest.raises(gt.Fail, match="WEIGHTS_MB"):
        gt.Settings.from_env()
    monkeypatch.delenv("WEIGHTS_MB")
    monkeypatch.setenv("TOY", "1")
    assert gt.Settings.from_env().max_files == ""
    monkeypatch.setenv("SAMPLE_COMPILE", "maybe")
    with pytest.raises(gt.Fail, match="SAMPLE_COMPILE"):
        gt.Settings.from_env()
