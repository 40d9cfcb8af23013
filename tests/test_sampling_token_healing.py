"""Token healing: exact against a brute-force reference, on every engine path, and its plumbing.

The reference here is written independently of the engine: allowed tokens are found by
decoding every vocabulary id and comparing strings, each step's distribution comes from a
plain full forward pass masked, renormalised and put through temperature/nucleus in float64,
and multi-token healing is checked by enumerating every healing path.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from shipped import LARGEST
from test_sampling_engine import assert_same_sample

from codexlab.cli import main as cli_main
from codexlab.sampling import SamplingConfig, SamplingEngine, sample_to_store
from codexlab.sampling.healing import HealTable, VocabBytes, back_off, vocab_bytes
from codexlab.sampling.rng import sample_uniforms
from codexlab.sampling.runner import resolve_token_healing, sample_set_extra
from codexlab.sampling.sampler import nucleus_distribution
from codexlab.sampling.text import find_stop
from codexlab.sampling.toy import bpe_tokenizer, char_tokenizer, random_model
from codexlab.store import Store, sample_set_id

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# A hand-made tokenizer where "\n", "\n " and "\n  " are all tokens (like codex-mini's
# newline+indent merges), and every single character is a token.
CHARS = "\n :()abdefirtnx=+1"
MERGES = [("\n", " "), ("\n ", " "), (" ", " ")]
NL_PROMPT = "def f(x):\n"           # ends in a bare "\n" token: R = "\n"
WS_PROMPT = "def f(x):  \n"         # ends in "  ", "\n": with token_healing=2, R = "  \n"


@pytest.fixture(scope="module")
def tiny():
    tok = char_tokenizer(CHARS, MERGES)
    model = random_model("llama", len(tok), hidden=32, layers=1, heads=2, logit_scale=2.0,
                         eos_token_id=tok.eos_token_id, seed=5)
    return tok, model


# -- the brute-force reference ---------------------------------------------------------------
def ref_allowed(tok, left: str) -> list[int]:
    """Ids whose decoded text t is non-empty and a prefix of ``left`` or extends it."""
    special = set(tok.all_special_ids)
    out = []
    for i in range(len(tok)):
        t = tok.decode([i])
        if i not in special and t and (left.startswith(t) or t.startswith(left)):
            out.append(i)
    return out


def ref_dist(model, tok, ids: list[int], left: str, temperature: float, top_p: float):
    """Exact float64 distribution of the next token given ``ids`` while ``left`` is to come."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1].double()
    if left:
        masked = torch.full_like(logits, -math.inf)
        keep = torch.tensor(ref_allowed(tok, left))
        masked[keep] = logits[keep]
    else:
        masked = logits
    if temperature == 0:
        q = torch.zeros_like(logits)
        q[int(masked.argmax())] = 1.0
        return q.numpy()
    return nucleus_distribution(masked, temperature, top_p).numpy()


def ref_pick(q: np.ndarray, u: float, tol: float = 1e-6) -> int | None:
    """Inverse-CDF draw in descending-probability order (ties by id); None if u is at a edge."""
    order = np.argsort(-q, kind="stable")
    cum = np.cumsum(q[order])
    if np.min(np.abs(cum[q[order] > 0] - u)) < tol:
        return None
    return int(order[np.searchsorted(cum, u, side="right")])


def ref_paths(model, tok, head: list[int], removed: str, temperature: float, top_p: float):
    """Every healing path (tokens until their text covers ``removed``) with its probability."""
    out: dict[tuple[int, ...], float] = {}

    def walk(path: tuple[int, ...], prob: float) -> None:
        text = tok.decode(list(path))
        if len(text) >= len(removed):
            out[path] = out.get(path, 0.0) + prob
            return
        q = ref_dist(model, tok, head + list(path), removed[len(text):], temperature, top_p)
        for i in np.flatnonzero(q > 0):
            walk(path + (int(i),), prob * float(q[i]))

    walk((), 1.0)
    return out


def chi2_pvalue(counts: np.ndarray, probs: np.ndarray) -> float:
    from test_sampling_sampler import chi2_pvalue as chi2

    return chi2(counts, probs)


def run(model, tok, cfg, problems, **kw):
    eng = SamplingEngine(model, tok, cfg, **kw)
    rows = list(eng.run(problems, progress=False, return_tokens=True))
    return {(r["task_id"], r["idx"]): r for r in rows}, eng


def healing_path(tok, token_ids: list[int], removed: str) -> tuple[int, ...]:
    for k in range(1, len(token_ids) + 1):
        if len(tok.decode(token_ids[:k])) >= len(removed):
            return tuple(token_ids[:k])
    return tuple(token_ids)


# -- exactness ------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.8, 0.95), (0.5, 0.6), (0, 1.0)])
def test_first_token_matches_the_brute_force_reference(tiny, temperature, top_p):
    tok, model = tiny
    n = 1 if temperature == 0 else 3000
    cfg = SamplingConfig(temperature=temperature, top_p=top_p, n=n, max_new_tokens=1, stop=(),
                         token_healing=1, batch_size=1000)
    rows, eng = run(model, tok, cfg, {"H/0": NL_PROMPT})
    ids = tok(NL_PROMPT)["input_ids"]
    head = ids[:-1]
    assert eng.stats["healed_prompts"] == 1
    q = ref_dist(model, tok, head, "\n", temperature, top_p)
    assert set(np.flatnonzero(q > 0)) <= {tok.convert_tokens_to_ids(t) for t in
                                          ("\n", "\n ", "\n  ")}
    first = np.array([r["token_ids"][0] for r in rows.values()])
    assert all(r["prompt_ids"] == head and r["heal_text"] == "\n" for r in rows.values())
    counts = np.bincount(first, minlength=len(q))
    assert counts[q == 0].sum() == 0, "a token outside the healed nucleus was drawn"
    if temperature:
        assert (q > 0).sum() >= 2, "the test lost its point: one allowed token"
        assert chi2_pvalue(counts[q > 0], q[q > 0]) > 1e-3
    # Sample by sample: the draw is the inverse CDF of the reference at the sample's uniform.
    skipped = 0
    for (tid, idx), r in rows.items():
        want = ref_pick(q, float(sample_uniforms(cfg.seed, tid, idx, 1)[0]))
        skipped += want is None
        assert want is None or r["token_ids"][0] == want
    assert skipped <= n // 100
    # Log-probs are the raw, unmasked T=1 model's.
    with torch.no_grad():
        raw = torch.log_softmax(model(torch.tensor([head])).logits[0, -1].double(), -1)
    for r in list(rows.values())[:50]:
        assert abs(r["sum_logprob"] - float(raw[r["token_ids"][0]])) < 1e-5


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.9)])
def test_multi_token_healing_paths_match_enumeration(tiny, temperature, top_p):
    tok, model = tiny
    ids = tok(WS_PROMPT)["input_ids"]
    assert tok.convert_ids_to_tokens(ids[-2:]) == ["  ", "\n"]
    head = ids[:-2]
    n = 3000
    cfg = SamplingConfig(temperature=temperature, top_p=top_p, n=n, max_new_tokens=4, stop=(),
                         token_healing=2, batch_size=1000)
    rows, _ = run(model, tok, cfg, {"H/1": WS_PROMPT})
    ref = ref_paths(model, tok, head, "  \n", temperature, top_p)
    assert len(ref) >= 4 and any(len(p) == 3 for p in ref), "too few healing paths"
    assert math.isclose(sum(ref.values()), 1.0, abs_tol=1e-9)
    got: dict[tuple[int, ...], int] = {}
    for r in rows.values():
        assert r["heal_text"] == "  \n" and r["prompt_ids"] == head
        path = healing_path(tok, r["token_ids"], "  \n")
        got[path] = got.get(path, 0) + 1
    assert set(got) <= set(ref), "a healing path the reference gives probability 0"
    keys = sorted(ref)
    counts = np.array([got.get(k, 0) for k in keys])
    assert chi2_pvalue(counts, np.array([ref[k] for k in keys])) > 1e-3
    # Sample by sample for the first 60 samples: each healing step is the reference's draw.
    for (tid, idx), r in list(rows.items())[:60]:
        u = sample_uniforms(cfg.seed, tid, idx, 4)
        path = healing_path(tok, r["token_ids"], "  \n")
        for t, token in enumerate(path):
            text = tok.decode(list(path[:t]))
            q = ref_dist(model, tok, head + list(path[:t]), "  \n"[len(text):], temperature,
                         top_p)
            want = ref_pick(q, float(u[t]))
            assert want is None or want == token


def test_completion_is_the_text_after_the_original_prompt(tiny):
    tok, model = tiny
    problems = {"H/0": NL_PROMPT, "H/1": WS_PROMPT, "H/2": "x = (a"}
    cfg = SamplingConfig(temperature=1.0, top_p=1.0, n=40, max_new_tokens=30,
                         stop=("\nd", "\n1"), token_healing=2, batch_size=50)
    rows, _ = run(model, tok, cfg, problems)
    heals = {tid: r["heal_text"] for (tid, _), r in rows.items()}
    assert heals == {"H/0": "\n", "H/1": "  \n", "H/2": "a"}
    reasons = set()
    for (tid, _), r in rows.items():
        prompt, removed = problems[tid], r["heal_text"]
        assert tok.decode(r["prompt_ids"]) + removed == prompt
        generated = tok.decode(r["token_ids"], skip_special_tokens=True)
        # prompt + completion is exactly what the model wrote after the backed-off prompt.
        assert generated.startswith(removed)
        assert (tok.decode(r["prompt_ids"]) + generated).startswith(prompt + r["completion"])
        assert find_stop(r["completion"], cfg.stop) == -1
        if r["finish_reason"] == "stop":
            assert find_stop(generated[len(removed):], cfg.stop) == len(r["completion"])
        reasons.add(r["finish_reason"])
        # Log-probs: every generated token, healing ones included, under the raw model.
        with torch.no_grad():
            lp = torch.log_softmax(
                model(torch.tensor([r["prompt_ids"] + r["token_ids"]])).logits[0].double(), -1)
        start = len(r["prompt_ids"]) - 1
        ref = lp[start:start + len(r["token_ids"])].gather(
            -1, torch.tensor(r["token_ids"])[:, None])[:, 0]
        assert r["n_tokens"] == len(r["token_ids"])
        assert abs(r["sum_logprob"] - float(ref.sum())) < 1e-4
        assert abs(r["mean_logprob"] - float(ref.mean())) < 1e-4
    assert {"stop", "length"} <= reasons


# -- every engine path ----------------------------------------------------------------------
BPE_PROMPTS = {
    "B/nl": "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n",
    "B/indent": "def fib(n: int) -> int:\n    \"\"\"Fibonacci.\"\"\"\n    ",
    "B/word": "def is_even(n):\n    return n %",
}


@pytest.fixture(scope="module")
def bpe():
    tok = bpe_tokenizer(384)
    models = {arch: random_model(arch, len(tok), hidden=64, layers=2, heads=4,
                                 kv_heads=2 if arch != "gpt2" else None, logit_scale=6.0,
                                 eos_token_id=tok.eos_token_id)
              for arch in ("llama", "gpt2")}
    return tok, models


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("healing", [0, 1, 2])
def test_shared_prefix_plain_static_and_dynamic_paths_agree(bpe, arch, healing):
    tok, models = bpe
    model = models[arch]
    cfg = SamplingConfig(temperature=1.0, n=5, max_new_tokens=20, batch_size=6,
                         token_healing=healing)
    base, eng = run(model, tok, cfg, BPE_PROMPTS, mode="growing", shared_prefix=True)
    assert eng.shared_prefix
    heals = {tid: r["heal_text"] for (tid, _), r in base.items()}
    if healing == 0:
        assert set(heals.values()) == {""}
    else:
        def last(task: str) -> str:
            return tok.decode(tok(BPE_PROMPTS[task])["input_ids"][-1:])

        assert heals["B/nl"] == "\n" and heals["B/word"] == last("B/word") == "%"
        # Two tokens of whitespace backed off: a multi-byte healing (in-graph masked step).
        assert heals["B/indent"] == ("\n    " if healing == 2 else last("B/indent"))
    for mode, bs, sp, every in (("growing", 4, False, 1), ("static", 7, None, 1),
                                ("static", 5, None, 3), ("dynamic", 3, None, 1)):
        other, _ = run(model, tok, cfg.replace(batch_size=bs, stop_check_every=every),
                       BPE_PROMPTS, mode=mode, shared_prefix=sp)
        assert other.keys() == base.keys()
        for key, r in base.items():
            o = other[key]
            assert o["heal_text"] == r["heal_text"]
            # The same sample, or parted at a near-tie (the documented guarantee).
            assert_same_sample(model, tok, cfg, r, o, (mode, key))


def test_healing_off_is_unchanged_and_on_changes_the_boundary(bpe):
    tok, models = bpe
    model = models["llama"]
    cfg = SamplingConfig(temperature=0.8, n=4, max_new_tokens=16, batch_size=8)
    auto, eng = run(model, tok, cfg, BPE_PROMPTS)
    assert eng.token_healing == 0      # a model that is not a built-in: off by default
    off, _ = run(model, tok, cfg.replace(token_healing=0), BPE_PROMPTS)
    on, _ = run(model, tok, cfg.replace(token_healing=1), BPE_PROMPTS)
    for key, r in auto.items():
        assert r["prompt_ids"] == tok(BPE_PROMPTS[key[0]])["input_ids"]
        assert r["heal_text"] == ""
        assert (off[key]["token_ids"], off[key]["completion"], off[key]["sum_logprob"]) == (
            r["token_ids"], r["completion"], r["sum_logprob"])
    assert any(on[k]["token_ids"] != auto[k]["token_ids"] for k in auto)


def test_a_healed_sample_does_not_depend_on_batching_or_resumption(bpe):
    tok, models = bpe
    cfg = SamplingConfig(temperature=0.9, n=6, max_new_tokens=16, batch_size=5,
                         token_healing=2)
    full, _ = run(models["llama"], tok, cfg, BPE_PROMPTS)
    eng = SamplingEngine(models["llama"], tok, cfg.replace(batch_size=2))
    part = {(r["task_id"], r["idx"]): r for r in eng.run(
        BPE_PROMPTS, {"B/indent": [5, 2], "B/nl": [3]}, progress=False, return_tokens=True)}
    assert set(part) == {("B/indent", 5), ("B/indent", 2), ("B/nl", 3)}
    for key, r in part.items():
        assert_same_sample(models["llama"], tok, cfg, r, full[key])


def test_compiled_static_healing_step_traces_as_one_graph(bpe):
    # The CUDA path compiles a second, masked decode step used while a slot may be healing.
    from torch._dynamo.utils import counters

    tok, models = bpe
    model = models["llama"]
    cfg = SamplingConfig(n=3, max_new_tokens=10, batch_size=4, stop_check_every=4,
                         token_healing=2)
    problems = {"B/indent": BPE_PROMPTS["B/indent"], "B/nl": BPE_PROMPTS["B/nl"]}
    eager, _ = run(model, tok, cfg, problems, mode="static")
    eng = SamplingEngine(model, tok, cfg.replace(compile=True), mode="static")
    eng.compile_backend = "aot_eager"
    counters.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to eager would warn
        rows = list(eng.run(problems, progress=False))
    assert eng.use_compile and eng._compiled_heal is not None
    assert not counters["graph_break"]
    assert counters["stats"]["unique_graphs"] == 2      # the plain and the healing step
    for r in rows:
        assert r["completion"] == eager[(r["task_id"], r["idx"])]["completion"]


# -- the pieces -----------------------------------------------------------------------------
def test_back_off_rules(tiny, bpe):
    tok, _ = tiny
    vb = vocab_bytes(tok)
    assert vocab_bytes(tok) is vb                        # computed once per tokenizer
    ids = tok(WS_PROMPT)["input_ids"]
    assert back_off(vb, ids, 0) == (0, b"")
    assert back_off(vb, ids, 1) == (1, b"\n")
    assert back_off(vb, ids, 2) == (2, b"  \n")
    assert back_off(vb, ids, 8) == (2, b"  \n")          # ":" is not whitespace
    assert back_off(vb, tok("x")["input_ids"], 1) == (0, b"")   # never the whole prompt
    assert back_off(vb, tok("x = (a")["input_ids"], 3) == (1, b"a")
    # Byte-level BPE: a character split over byte tokens is backed off whole.
    btok, _ = bpe
    bvb = vocab_bytes(btok)
    assert bvb.byte_level
    text = "x = '\U0001f642"
    bids = btok(text)["input_ids"]
    assert b"".join(bvb.pieces[i] for i in bids) == text.encode()
    k, removed = back_off(bvb, bids, 1)
    assert removed.decode("utf-8").endswith("\U0001f642") and k >= 2
    assert b"".join(bvb.pieces[i] for i in bids[-k:]) == removed


def test_split_character_is_healed_and_completed(bpe):
    tok, models = bpe
    prompt = "s = '\U0001f642"
    cfg = SamplingConfig(temperature=1.0, n=20, max_new_tokens=8, stop=(), token_healing=1,
                         batch_size=20)
    rows, _ = run(models["llama"], tok, cfg, {"U/0": prompt}, mode="static")
    for r in rows.values():
        assert r["heal_text"].endswith("\U0001f642")
        gen = tok.decode(r["token_ids"], skip_special_tokens=True)
        assert gen.startswith(r["heal_text"]) and gen[len(r["heal_text"]):] == r["completion"]


def test_dead_ends_are_pruned_and_the_original_tokens_stay_allowed():
    # Pieces: "a" leaves "bc", which no token can start: "a" must not be allowed for "abc".
    pieces = [None, b"a", b"ab", b"abc", b"c", b"bx", b"abcd", b"q"]
    lengths = np.array([len(p) if p else 0 for p in pieces])
    by_first: dict[int, list[int]] = {}
    for i, p in enumerate(pieces):
        if p:
            by_first.setdefault(p[0], []).append(i)
    vb = VocabBytes(pieces, lengths, {b: np.array(v) for b, v in by_first.items()}, False)
    ht = HealTable(vb, vocab=10)
    base = ht.add(b"abc")
    table = ht.tensor()
    assert table.shape == (1 + 3, 10) and bool(table[0].all())
    assert set(torch.nonzero(table[base]).flatten().tolist()) == {2, 3, 6}
    assert set(torch.nonzero(table[base + 2]).flatten().tolist()) == {4}
    assert bool(table[base + 1].all())                   # unreachable offset: never empty
    assert ht.add(b"abc") == base and ht.rows == 4


def test_config_validation_and_protocol():
    for bad in (-1, 9, 1.5, "yes"):
        with pytest.raises(ValueError, match=r"^token_healing must be .*got") as err:
            SamplingConfig(token_healing=bad)
        assert "\n" not in str(err.value)
    assert SamplingConfig(token_healing=True).token_healing == 1
    assert SamplingConfig(token_healing=False).token_healing == 0
    assert SamplingConfig().token_healing is None
    assert SamplingConfig(token_healing=2).protocol()["token_healing"] == 2


def test_default_resolution_and_store_key(tmp_path):
    cfg = SamplingConfig(n=2, max_new_tokens=8)
    assert resolve_token_healing(cfg, LARGEST).token_healing == 1
    assert resolve_token_healing(cfg, "some-org/some-model").token_healing == 0
    assert resolve_token_healing(cfg.replace(token_healing=0), LARGEST).token_healing == 0
    assert sample_set_extra(cfg, "toy") == {}
    assert sample_set_extra(cfg.replace(token_healing=1), "toy") == {"token_healing": 1}
    # A healed run never reuses samples drawn without healing (and vice versa); an unhealed
    # run keeps the set id it had before healing existed.
    tok = char_tokenizer(CHARS, MERGES)
    model = random_model("llama", len(tok), hidden=32, layers=1, heads=2,
                         eos_token_id=tok.eos_token_id)
    st = Store(tmp_path / "s.sqlite")
    problems = {"H/0": NL_PROMPT}
    off = sample_to_store("toy", problems, cfg, st, progress=False,
                          model_and_tokenizer=(model, tok), problems_sha256="p")
    assert off == sample_set_id(model="toy", temperature=cfg.temperature, top_p=cfg.top_p,
                                seed=cfg.seed, max_new_tokens=8, stop=list(cfg.stop),
                                problems_sha256="p")
    on = sample_to_store("toy", problems, cfg.replace(token_healing=1), st, progress=False,
                         model_and_tokenizer=(model, tok), problems_sha256="p")
    assert on != off and len(st.samples(on)) == 2
    run_summary = next(r for r in st.runs() if r["config"]["set_id"] == on)["summary"]
    assert run_summary["token_healing"] == 1 and run_summary["healed_prompts"] == 1


def test_pipeline_finds_only_sets_drawn_with_the_models_healing(tmp_path):
    from codexlab import config, pipeline
    from codexlab.models import builtin_models

    if LARGEST not in builtin_models():
        pytest.skip("no built-in model is shipped in data/models")
    cfg = config.figure_config("quick", models=[LARGEST], tasks=":1", n=1,
                               temperatures=[0.8], store=str(tmp_path / "store.sqlite"))
    from codexlab.problems import file_sha256, humaneval_path

    st = Store(cfg.store_path())
    common = dict(model=LARGEST, temperature=0.8, top_p=cfg.top_p, seed=cfg.seed,
                  max_new_tokens=cfg.max_new_tokens, stop=list(cfg.stop),
                  problems_sha256=file_sha256(humaneval_path()))
    st.ensure_sample_set(**common)
    assert pipeline.find_set(st, cfg, LARGEST, 0.8) is None
    healed = st.ensure_sample_set(**common, extra={"token_healing": 1})
    assert pipeline.find_set(st, cfg, LARGEST, 0.8) == healed
    # Another problems file's set (MBPP, chains, ...) with the same protocol is never the grid's.
    other = dict(common, problems_sha256="0" * 64)
    st.ensure_sample_set(**other, extra={"token_healing": 1})
    assert pipeline.find_set(st, cfg, LARGEST, 0.8) == healed


def _write_problems(path, problems):
    with open(path, "w") as fh:
        for tid, prompt in problems.items():
            fh.write(json.dumps({"task_id": tid, "prompt": prompt, "entry_point": "f",
                                 "test": "def check(candidate):\n    pass\n",
                                 "canonical_solution": "    pass\n"}) + "\n")


def test_cli_flags_default_and_errors(tmp_path, capsys, tiny):
    tok, model = tiny
    # A folder named like the built-in family gets healing by default.
    mdir = tmp_path / "codex-mini-toy"
    model.save_pretrained(mdir)
    tok.save_pretrained(mdir)
    probs = tmp_path / "problems.jsonl"
    _write_problems(probs, {"H/0": NL_PROMPT})
    out = tmp_path / "samples.jsonl"
    args = ["sample", "--model", str(mdir), "--temperature", "0.8", "--n", "3",
            "--problems", str(probs), "--max-new-tokens", "6", "--store",
            str(tmp_path / "cli.sqlite"), "--out", str(out), "--quiet", "--device", "cpu"]
    assert cli_main(args) == 0
    on = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["token_healing"] for r in on} == {1}
    assert cli_main([*args, "--no-token-healing"]) == 0
    off = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["token_healing"] for r in off} == {0}
    assert on[0]["set_id"] != off[0]["set_id"]
    assert cli_main([*args, "--token-healing"]) == 0      # bare flag = 1: the first set again
    assert json.loads(out.read_text().splitlines()[0])["set_id"] == on[0]["set_id"]
    capsys.readouterr()
    assert cli_main([*args, "--token-healing", "9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--token-healing" in err and "got 9" in err
    with pytest.raises(SystemExit) as exc:
        cli_main([*args, "--token-healing", "2", "--no-token-healing"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_cli_help_documents_token_healing(capsys):
    with pytest.raises(SystemExit):
        cli_main(["sample", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--token-healing [K]" in text and "--no-token-healing" in text
    assert "on (K=1) for the built-in codex-mini models" in text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("compile_step", [False, True])
def test_cuda_static_healing_matches_the_growing_path(bpe, compile_step):
    tok, _ = bpe
    model = random_model("llama", len(tok), hidden=64, layers=2, heads=4, kv_heads=2,
                         logit_scale=6.0, eos_token_id=tok.eos_token_id).cuda()
    cfg = SamplingConfig(n=6, max_new_tokens=20, batch_size=5, dtype="float32",
                         compile=compile_step, token_healing=2)
    gpu, eng = run(model, tok, cfg, BPE_PROMPTS)
    assert eng.mode == "static" and eng.use_compile == compile_step
    ref, _ = run(model, tok, cfg, BPE_PROMPTS, mode="growing")
    same = sum(gpu[k]["token_ids"] == r["token_ids"] for k, r in ref.items())
    assert same >= len(ref) - 1          # float32 on one device: at most a boundary draw
    for r in gpu.values():
        gen = tok.decode(r["token_ids"], skip_special_tokens=True)
        assert gen.startswith(r["heal_text"])
