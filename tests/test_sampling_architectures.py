"""The sampling engine on 20 architectures: exact log-probs on every path, shared prefix checked.

Tiny random-weight models built from transformers' config classes (no downloads); each
architecture keeps its config's defaults apart from the size, so Mistral has its 4096-token
sliding window, Gemma-2 soft-capping and alternating sliding layers, Phi/StableLM partial
rotary embeddings, GPT-BigCode multi-query attention, Bloom ALiBi.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from codexlab.sampling import SamplingConfig, SamplingEngine
from codexlab.sampling import prefix as prefix_attn
from codexlab.sampling.toy import TOY_ARCHITECTURES, bpe_tokenizer, random_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPTS = {
    "A/0": "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n",
    "A/1": "def fib(n: int) -> int:\n    \"\"\"Return the n-th Fibonacci number.\n    \"\"\"\n",
}
#: Architectures whose layers do not hand the prompt KV to the attention function.
NO_PREFIX = {"bloom", "falcon", "stablelm"}


@pytest.fixture(scope="module")
def tok():
    return bpe_tokenizer(384)


def toy(arch, tok, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return random_model(arch, len(tok), hidden=32, layers=2, heads=4, kv_heads=2,
                            logit_scale=4.0, eos_token_id=tok.eos_token_id, **kw)


def draw(model, tok, cfg, problems=PROMPTS, **kw):
    eng = SamplingEngine(model, tok, cfg, **kw)
    rows = {(r["task_id"], r["idx"]): r
            for r in eng.run(problems, progress=False, return_tokens=True)}
    return rows, eng


def assert_exact(model, rows):
    """Every row's sum log-prob equals one plain forward pass over prompt + tokens."""
    for r in rows.values():
        ids = torch.tensor([r["prompt_ids"] + r["token_ids"]])
        with torch.no_grad():
            lp = torch.log_softmax(model(ids).logits[0].float(), -1)
        start = len(r["prompt_ids"]) - 1
        ref = lp[start:start + len(r["token_ids"])].gather(
            -1, torch.tensor(r["token_ids"])[:, None])[:, 0]
        assert abs(r["sum_logprob"] - float(ref.double().sum())) < 1e-4, r["task_id"]


def test_every_shared_prefix_architecture_is_verified_here():
    assert prefix_attn.SUPPORTED_MODEL_TYPES <= set(TOY_ARCHITECTURES)
    assert not prefix_attn.SUPPORTED_MODEL_TYPES & NO_PREFIX
    assert set(TOY_ARCHITECTURES) - prefix_attn.SUPPORTED_MODEL_TYPES == NO_PREFIX


@pytest.mark.parametrize("arch", TOY_ARCHITECTURES)
def test_architecture_samples_exactly_on_every_path(tok, arch):
    model = toy(arch, tok)
    assert model.config.model_type == arch
    cfg = SamplingConfig(temperature=0.9, n=3, max_new_tokens=12, batch_size=4)
    # Default path on a CPU: growing cache (sliding windows of 4096 cover these prompts),
    # shared prefix wherever the architecture is on the list.
    base, eng = draw(model, tok, cfg)
    assert eng.mode == "growing"
    assert eng.shared_prefix == (arch not in NO_PREFIX)
    assert len(base) == 6
    assert_exact(model, base)
    # The static (CUDA-graph) slot logic, eager on the CPU.
    static, eng = draw(model, tok, cfg, mode="static")
    assert eng.mode == "static"
    assert_exact(model, static)
    # Forcing the shared prefix: same samples where it is exact, a clear error elsewhere.
    if arch in NO_PREFIX:
        with pytest.raises(ValueError, match="shared_prefix=True cannot be used with this"):
            draw(model, tok, cfg, shared_prefix=True)
    else:
        forced, eng = draw(model, tok, cfg, shared_prefix=True)
        assert eng.shared_prefix
        assert {k: r["token_ids"] for k, r in forced.items()} == {
            k: r["token_ids"] for k, r in base.items()}


def test_a_wrongly_listed_architecture_falls_back_with_a_warning(tok, monkeypatch):
    model = toy("stablelm", tok)
    monkeypatch.setattr(prefix_attn, "SUPPORTED_MODEL_TYPES",
                        prefix_attn.SUPPORTED_MODEL_TYPES | {"stablelm"})
    cfg = SamplingConfig(temperature=0.9, n=2, max_new_tokens=10, batch_size=4)
    eng = SamplingEngine(model, tok, cfg)
    assert eng.shared_prefix
    with pytest.warns(UserWarning, match="shared-prefix attention is wrong for this stablelm"):
        rows = {(r["task_id"], r["idx"]): r
                for r in eng.run(PROMPTS, progress=False, return_tokens=True)}
    assert not eng.shared_prefix and eng.mode == "growing"
    assert_exact(model, rows)


def test_the_prefix_check_catches_a_path_that_is_called_but_wrong(tok):
    # Every layer takes the prefix here, but the result is off by a little: only the
    # comparison with a plain forward pass can tell.
    from transformers import AttentionInterface

    model = toy("llama", tok)
    prefix_attn.register()
    original = prefix_attn.shared_prefix_attention

    def skewed(*args, **kwargs):
        out, w = original(*args, **kwargs)
        return out * 1.05, w

    AttentionInterface.register(prefix_attn.NAME, skewed)
    try:
        with pytest.raises(ValueError, match="differ from a plain forward pass"):
            draw(model, tok, SamplingConfig(n=2, max_new_tokens=8), shared_prefix=True)
    finally:
        AttentionInterface.register(prefix_attn.NAME, original)


def test_a_sliding_window_that_covers_the_run_keeps_the_fast_path(tok):
    # Mistral, window 40: the short prompt (+ 12 new tokens) fits, the long one does not.
    model = toy("mistral", tok, max_positions=256)
    model.config.sliding_window = 40
    short = {"A/0": PROMPTS["A/0"]}
    long_ = {"L/0": PROMPTS["A/1"] * 2}
    n_short = len(tok(short["A/0"])["input_ids"])
    n_long = len(tok(long_["L/0"])["input_ids"])
    assert n_short + 12 <= 40 < n_long
    cfg = SamplingConfig(temperature=0.9, n=2, max_new_tokens=12, batch_size=4)
    eng = SamplingEngine(model, tok, cfg)
    assert eng.mode == "dynamic"           # provisional: no prompt lengths known yet
    rows = {(r["task_id"], r["idx"]): r
            for r in eng.run(short, progress=False, return_tokens=True)}
    assert (eng.mode, eng.shared_prefix) == ("growing", True)
    assert_exact(model, rows)
    rows = {(r["task_id"], r["idx"]): r
            for r in eng.run(long_, progress=False, return_tokens=True)}
    assert (eng.mode, eng.shared_prefix) == ("dynamic", False)
    assert_exact(model, rows)
    # Asking for the slot cache where the window would cut keys is refused.
    with pytest.raises(ValueError, match="sliding window .40 tokens. does not cover"):
        draw(model, tok, cfg, problems=long_, mode="growing")
    # Static mode's buffer (prompt rounded up to 64 + new tokens) exceeds 40 columns.
    static, eng = draw(model, tok, cfg, problems=short, mode=None)
    assert eng.mode == "growing"
    with pytest.raises(ValueError, match="does not cover"):
        draw(model, tok, cfg, problems=short, mode="static")
