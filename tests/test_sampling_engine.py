"""End-to-end tests of the sampling engine on tiny random Llama, GPT-2 and Qwen2 models."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from codexlab.sampling import SamplingConfig, SamplingEngine, sample_problems
from codexlab.sampling.healing import HealTable, vocab_bytes
from codexlab.sampling.rng import batch_uniforms
from codexlab.sampling.sampler import draw_margin, nucleus_distribution
from codexlab.sampling.text import find_stop
from codexlab.sampling.toy import bpe_tokenizer, char_tokenizer, random_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPTS = {
    "T/short": "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n",
    "T/long": (
        "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: "
        "float) -> bool:\n    \"\"\" Check if in given list of numbers, are any two numbers "
        "closer to each other than\n    given threshold.\n    >>> has_close_elements([1.0, 2.0, "
        "3.0], 0.5)\n    False\n    \"\"\"\n"
    ),
    "T/mid": "def fib(n: int) -> int:\n    \"\"\"Return the n-th Fibonacci number.\n    \"\"\"\n",
}


@pytest.fixture(scope="module")
def tok():
    return bpe_tokenizer(384)


@pytest.fixture(scope="module")
def models(tok):
    out = {arch: random_model(arch, len(tok), hidden=64, layers=2, heads=4,
                              kv_heads=2 if arch != "gpt2" else None, logit_scale=6.0,
                              eos_token_id=tok.eos_token_id)
           for arch in ("llama", "gpt2", "qwen2")}
    return out


def full_forward_logprobs(model, prompt_ids, token_ids):
    ids = torch.tensor([list(prompt_ids) + list(token_ids)])
    with torch.no_grad():
        logits = model(ids).logits[0].float()
    lp = torch.log_softmax(logits, -1)
    start = len(prompt_ids) - 1
    return lp[start:start + len(token_ids)].gather(-1, torch.tensor(token_ids)[:, None])[:, 0]


#: A draw this close to choosing another token (probability mass, see ``draw_margin``) may
#: go either way when its logits come from batches of other sizes (rounding ~1e-6).
TIE_MARGIN = 1e-4


def assert_same_sample(model, tok, cfg, a, b, what=None) -> bool:
    """Assert the documented batch-composition guarantee for two draws of one sample.

    Either the two are the same sample (tokens, text, finish reason; log-probs to rounding),
    or they part at a near-tie: at the first token where they differ, the draw's margin
    under a plain forward pass is below :data:`TIE_MARGIN`. Returns whether they are equal.
    """
    what = what or (a["task_id"], a["idx"])
    assert (a["task_id"], a["idx"], a["prompt_ids"]) == (b["task_id"], b["idx"], b["prompt_ids"])
    i = next((j for j, (x, y) in enumerate(zip(a["token_ids"], b["token_ids"], strict=False))
              if x != y), None)
    if i is None:
        assert (a["token_ids"], a["completion"], a["finish_reason"]) == (
            b["token_ids"], b["completion"], b["finish_reason"]), what
        assert abs(a["sum_logprob"] - b["sum_logprob"]) < 1e-4, what
        return True
    with torch.no_grad():
        logits = model(torch.tensor([a["prompt_ids"] + a["token_ids"][:i]])).logits[0, -1]
    u = float(batch_uniforms(cfg.seed, [(a["task_id"], a["idx"])], cfg.max_new_tokens)[0, i])
    allowed = None
    heal = a.get("heal_text", "").encode("utf-8")
    if heal:
        # Still healing at step i? Then the draw was restricted to the healing table's row.
        table = HealTable(vocab_bytes(tok), int(logits.shape[-1]))
        base = table.add(heal)
        done = int(sum(table.token_len[t] for t in a["token_ids"][:i]))
        if done < len(heal):
            allowed = table.tensor()[base + done]
    margin = draw_margin(logits, u, cfg.temperature, cfg.top_p, allowed=allowed)
    assert margin < TIE_MARGIN, (what, i, margin)
    return False


def run(model, tok, cfg, mode=None, indices=None, problems=PROMPTS, shared_prefix=None):
    eng = SamplingEngine(model, tok, cfg, mode=mode, shared_prefix=shared_prefix)
    rows = list(eng.run(problems, indices, progress=False, return_tokens=True))
    return {(r["task_id"], r["idx"]): r for r in rows}, eng


@pytest.mark.parametrize("arch", ["llama", "gpt2", "qwen2"])
@pytest.mark.parametrize("mode,shared_prefix", [("growing", True), ("growing", False),
                                                ("static", False)])
def test_logprobs_equal_a_separate_forward_pass(models, tok, arch, mode, shared_prefix):
    model = models[arch]
    attn = model.config._attn_implementation
    cfg = SamplingConfig(temperature=0.9, n=4, max_new_tokens=24, batch_size=5)
    rows, eng = run(model, tok, cfg, mode=mode, shared_prefix=shared_prefix)
    assert (eng.mode, eng.shared_prefix) == (mode, shared_prefix)
    assert model.config._attn_implementation == attn  # restored after the run
    assert len(rows) == 12
    for r in rows.values():
        ref = full_forward_logprobs(model, r["prompt_ids"], r["token_ids"])
        assert r["n_tokens"] == len(r["token_ids"])
        assert abs(r["sum_logprob"] - float(ref.double().sum())) < 1e-4
        assert abs(r["mean_logprob"] - float(ref.double().mean())) < 1e-4


@pytest.mark.parametrize("arch", ["llama", "gpt2", "qwen2"])
def test_modes_and_batching_give_the_same_samples_up_to_near_ties(models, tok, arch):
    model = models[arch]
    cfg = SamplingConfig(temperature=1.0, n=3, max_new_tokens=20, batch_size=4)
    base, eng = run(model, tok, cfg, mode="growing")
    assert eng.shared_prefix
    for mode, bs, sp in (("static", 7, None), ("dynamic", 2, None), ("growing", 64, False),
                         ("growing", 1, None)):
        other, _ = run(model, tok, cfg.replace(batch_size=bs), mode=mode, shared_prefix=sp)
        assert other.keys() == base.keys()
        same = sum(assert_same_sample(model, tok, cfg, r, other[key], (mode, bs, key))
                   for key, r in base.items())
        assert same >= len(base) - 2, (mode, bs)


def test_the_same_call_gives_bitwise_the_same_rows(models, tok):
    # Same work list, batch size, mode and threads: nothing may differ, not even in the
    # last bit of a log-prob.
    cfg = SamplingConfig(temperature=0.8, n=3, max_new_tokens=16, batch_size=5)
    for mode in ("growing", "static"):
        a, _ = run(models["llama"], tok, cfg, mode=mode)
        b, _ = run(models["llama"], tok, cfg, mode=mode)
        assert a == b


def test_a_sample_does_not_depend_on_which_other_samples_are_drawn(models, tok):
    model = models["llama"]
    cfg = SamplingConfig(temperature=0.8, n=6, max_new_tokens=20, batch_size=5)
    full, _ = run(model, tok, cfg)
    part, _ = run(model, tok, cfg, indices={"T/long": [4, 1], "T/mid": [5]})
    assert set(part) == {("T/long", 4), ("T/long", 1), ("T/mid", 5)}
    for key, r in part.items():
        assert_same_sample(model, tok, cfg, r, full[key])
    other_seed, _ = run(model, tok, cfg.replace(seed=1), indices={"T/long": [4]})
    assert other_seed[("T/long", 4)]["token_ids"] != full[("T/long", 4)]["token_ids"]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_growing_n_matches_a_fresh_draw_up_to_near_ties(tok, arch):
    # Near-uniform random models (logit_scale 1) have many near-ties: the documented
    # guarantee is that every sample that differs between n = 2 -> 4 and a fresh n = 4
    # parts at one, never elsewhere.
    model = random_model(arch, len(tok), hidden=64, layers=2, heads=4,
                         kv_heads=2 if arch != "gpt2" else None, logit_scale=1.0,
                         eos_token_id=tok.eos_token_id, seed=5)
    cfg = SamplingConfig(temperature=0.8, n=4, max_new_tokens=40, stop=())
    fresh, _ = run(model, tok, cfg)
    grown, _ = run(model, tok, cfg.replace(n=2, batch_size=1))
    more, _ = run(model, tok, cfg.replace(batch_size=3), indices={t: [2, 3] for t in PROMPTS})
    grown.update(more)
    assert grown.keys() == fresh.keys()
    same = sum(assert_same_sample(model, tok, cfg, r, grown[k]) for k, r in fresh.items())
    assert same >= len(fresh) // 2


def test_draw_margin_measures_the_distance_to_another_choice():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))
    # u * mass = 0.5 lies on the boundary between ranks 0 and 1: a tie.
    assert draw_margin(logits, 0.5, 1.0, 1.0) < 1e-12
    # u * mass = 0.65 is 0.15 from both boundaries; the probability gaps are 0.2 and 0.1.
    assert abs(draw_margin(logits, 0.65, 1.0, 1.0) - 0.1) < 1e-9
    # The nucleus edge: top_p = 0.8 sits exactly on the cdf after two tokens.
    assert draw_margin(logits, 0.1, 1.0, 0.8) < 1e-9
    assert abs(draw_margin(logits, 0.0, 0, 1.0) - float(logits[0] - logits[1])) < 1e-12
    # A healing mask restricts the draw: rank 0 is token 1 of {1, 2}, renormalised.
    allowed = torch.tensor([False, True, True])
    assert abs(draw_margin(logits, 0.6, 1.0, 1.0, allowed=allowed) - 0.0) < 1e-9
    assert abs(draw_margin(logits, 0.3, 1.0, 1.0, allowed=allowed) - 0.2) < 1e-9


def test_sliding_window_model_uses_the_dynamic_cache_and_stays_exact(tok):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
                      use_sliding_window=True, sliding_window=16, max_window_layers=1,
                      eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    model = Qwen2ForCausalLM(cfg).eval()
    rows, eng = run(model, tok, SamplingConfig(n=2, max_new_tokens=20, batch_size=8))
    assert eng.mode == "dynamic"
    for r in rows.values():
        ref = full_forward_logprobs(model, r["prompt_ids"], r["token_ids"])
        assert abs(r["sum_logprob"] - float(ref.double().sum())) < 1e-4


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_greedy_equals_transformers_generate_cut_at_first_stop(models, tok, arch):
    model = models[arch]
    max_new = 40
    with pytest.warns(UserWarning, match="n=5 is forced to 1"):
        cfg = SamplingConfig(temperature=0, n=5, max_new_tokens=max_new)
    assert cfg.n == 1
    ours = {r["task_id"]: r for r in sample_problems(model, tok, PROMPTS, cfg, progress=False)}
    for task_id, prompt in PROMPTS.items():
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, do_sample=False, max_new_tokens=max_new,
                                 pad_token_id=tok.eos_token_id)
        text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        cut = find_stop(text, cfg.stop)
        expected = text if cut == -1 else text[:cut]
        assert ours[task_id]["completion"] == expected


def test_first_token_distribution_end_to_end(models, tok):
    model = models["llama"]
    prompt = PROMPTS["T/mid"]
    ids = tok(prompt)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
    from test_sampling_sampler import chi2_pvalue

    for temperature, top_p in ((1.0, 0.95), (0.6, 0.8)):
        q = nucleus_distribution(logits, temperature, top_p).numpy()
        cfg = SamplingConfig(temperature=temperature, top_p=top_p, n=3000, max_new_tokens=1,
                             batch_size=1000, stop=())
        rows, _ = run(model, tok, cfg, problems={"T/mid": prompt})
        first = np.array([r["token_ids"][0] for r in rows.values()])
        counts = np.bincount(first, minlength=len(q))
        assert counts[q == 0].sum() == 0
        assert chi2_pvalue(counts[q > 0], q[q > 0]) > 1e-3


# -- stop sequences -------------------------------------------------------------------------
STOP_CHARS = "\ndefi#xp "
STOP_MERGES = [("\n", "d"), ("e", "f"), ("\n", "i"), ("x", " ")]


@pytest.fixture(scope="module")
def stop_setup():
    tk = char_tokenizer(STOP_CHARS, STOP_MERGES)
    model = random_model("llama", len(tk), hidden=32, layers=1, heads=2, logit_scale=1.0,
                         eos_token_id=tk.eos_token_id, seed=3)
    return tk, model


@pytest.mark.parametrize("check_every", [1, 5])
def test_stop_sequences_never_appear_and_cut_exactly(stop_setup, check_every):
    tk, model = stop_setup
    problems = {"S/0": "x x\n", "S/1": "dee "}
    cfg = SamplingConfig(temperature=1.0, top_p=1.0, n=60, max_new_tokens=50, batch_size=32,
                         stop_check_every=check_every)
    rows, _ = run(model, tk, cfg, problems=problems)
    reasons = {r["finish_reason"] for r in rows.values()}
    assert {"stop", "eos", "length"} <= reasons
    split = 0
    for r in rows.values():
        assert find_stop(r["completion"], cfg.stop) == -1
        text = tk.decode(r["token_ids"], skip_special_tokens=True)
        assert text.startswith(r["completion"])
        if r["finish_reason"] == "stop":
            # Generation ended at the token that completed the stop: not one token earlier.
            assert find_stop(text, cfg.stop) == len(r["completion"])
            assert find_stop(tk.decode(r["token_ids"][:-1]), cfg.stop) == -1
            last = tk.convert_ids_to_tokens(r["token_ids"][-1])
            split += not any(last.endswith(s) and len(s) <= len(last) for s in cfg.stop)
        elif r["finish_reason"] == "eos":
            assert r["token_ids"][-1] == tk.eos_token_id
            assert tk.eos_token not in r["completion"]
        else:
            assert r["n_tokens"] == cfg.max_new_tokens
    assert split > 0, "no stop sequence spanned several tokens; the test lost its point"


def test_stop_check_interval_changes_nothing(stop_setup):
    tk, model = stop_setup
    problems = {"S/0": "x x\n", "S/1": "dee "}
    cfg = SamplingConfig(temperature=1.0, top_p=1.0, n=30, max_new_tokens=40, batch_size=16)
    a, _ = run(model, tk, cfg, problems=problems)
    b, _ = run(model, tk, cfg.replace(stop_check_every=7), mode="static", problems=problems)
    for key, r in a.items():
        assert (b[key]["token_ids"], b[key]["completion"], b[key]["finish_reason"]) == (
            r["token_ids"], r["completion"], r["finish_reason"])


def test_compiled_static_step_traces_as_one_graph(models, tok):
    # The CUDA path compiles the static decode step (mode="reduce-overhead"). Without a GPU,
    # check that dynamo/AOT trace it as a single graph and that it gives the eager results.
    from torch._dynamo.utils import counters

    model = models["llama"]
    cfg = SamplingConfig(n=3, max_new_tokens=12, batch_size=4, stop_check_every=4)
    eager, _ = run(model, tok, cfg, mode="static")
    eng = SamplingEngine(model, tok, cfg.replace(compile=True), mode="static")
    eng.compile_backend = "aot_eager"
    counters.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to eager would warn
        rows = list(eng.run(PROMPTS, progress=False))
        again = list(eng.run(PROMPTS, progress=False))  # reuses buffers and the graph
    assert eng.use_compile
    assert not counters["graph_break"]
    assert counters["stats"]["unique_graphs"] == 1
    for r in rows + again:
        assert r["completion"] == eager[(r["task_id"], r["idx"])]["completion"]


def test_strip_prompt_and_config_validation():
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=0)
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature must be a finite number"):
            SamplingConfig(temperature=bad)
    with pytest.raises(ValueError, match="stop"):
        SamplingConfig(stop=("",))
    cfg = SamplingConfig(stop=["\ndef"])
    assert cfg.stop == ("\ndef",) and hash(cfg)


def test_prompt_longer_than_the_context_is_named(tok):
    model = random_model("gpt2", len(tok), hidden=32, layers=1, heads=2, max_positions=64,
                         eos_token_id=tok.eos_token_id)
    with pytest.raises(ValueError, match=r"T/short: prompt of \d+ tokens \+ max_new_tokens 300"):
        list(sample_problems(model, tok, PROMPTS, SamplingConfig(n=1), progress=False))


def test_strip_prompt_removes_trailing_whitespace_only(models, tok):
    eng = SamplingEngine(models["llama"], tok, SamplingConfig(strip_prompt=True))
    assert eng.encode("  def f():\n    ") == tok("  def f():")["input_ids"]
    eng = SamplingEngine(models["llama"], tok, SamplingConfig())
    assert eng.encode("def f():\n") == tok("def f():\n")["input_ids"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("compile_step", [False, True])
def test_cuda_static_path_is_exact(tok, compile_step):
    # The GPU path as a sampling run uses it (static slots, refills, CUDA graphs), in float32
    # so that log-probs can be checked against one plain forward pass on the same device.
    model = random_model("llama", len(tok), hidden=64, layers=2, heads=4, kv_heads=2,
                         logit_scale=6.0, eos_token_id=tok.eos_token_id).cuda()
    cfg = SamplingConfig(n=6, max_new_tokens=24, batch_size=5, dtype="float32",
                         compile=compile_step)
    rows, eng = run(model, tok, cfg)
    assert eng.mode == "static" and eng.use_compile == compile_step
    assert len(rows) == 18
    for r in rows.values():
        ids = torch.tensor([r["prompt_ids"] + r["token_ids"]], device="cuda")
        with torch.no_grad():
            lp = torch.log_softmax(model(ids).logits[0].float(), -1)
        start = len(r["prompt_ids"]) - 1
        ref = lp[start:start + len(r["token_ids"])].gather(
            -1, torch.tensor(r["token_ids"], device="cuda")[:, None])[:, 0]
        assert abs(r["sum_logprob"] - float(ref.double().sum())) < 1e-3
        assert find_stop(r["completion"], cfg.stop) == -1
