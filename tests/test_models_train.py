"""Toy training, save -> load, cards, scaling fit, names, exact resume, WSD, loss weights."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from codexlab.models import builtin_models, resolve_model, update_model_card
from codexlab.models.card import read_model_card, write_model_card
from codexlab.models.scaling import fit_power_law

FAKE_PROBLEMS = {
    "Fake/0": {"prompt": "def add(a, b):\n    \"\"\"Add a and b.\n    >>> add(1, 2)\n    3\n    \"\"\"\n",
               "canonical_solution": "    return a + b\n"},
}


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    """Prepare a tiny corpus and train codex-mini-0.1m on it for a few seconds."""
    import torch

    from codexlab.models.data import prepare_data
    from codexlab.models.training import TrainConfig, train

    # One thread: the project's 2 shared cores are often busy, and spinning OpenMP threads
    # on an oversubscribed CPU make this tiny run 10x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("toy")
    src = root / "src"
    src.mkdir()
    for i in range(60):
        body = "".join(f"    if x == {j}:\n        return {j * i}\n" for j in range(8))
        (src / f"m{i}.py").write_text(
            f"def f{i}(x):\n    \"\"\"Map x to a multiple of {i}.\"\"\"\n{body}    return 0\n")
    data = prepare_data(root / "cache", roots=[src], problems=FAKE_PROBLEMS, vocab_size=384,
                        held_out_fraction=0.2, progress=False)
    cfg = TrainConfig(size="codex-mini-0.1m", out_dir=root / "models" / "codex-mini-0.1m",
                      data_dir=data.root, seq_len=64, batch_size=8, max_tokens=8 * 64 * 60,
                      eval_every_s=1e9, warmup_steps=5, progress=False, command="pytest")
    card = train(cfg)
    yield cfg.out_dir, card
    torch.set_num_threads(threads)


def test_toy_training_lowers_loss(toy_model: tuple[Path, dict]) -> None:
    _, card = toy_model
    hist = card["training"]["stages"][0]["history"]
    assert hist[-1]["heldout_loss"] < hist[0]["heldout_loss"] - 1.0
    assert card["eval"]["heldout_loss"] < math.log(384) - 2.0
    assert card["training"]["tokens_seen"] == 8 * 64 * 60
    assert card["provisional"] is True
    assert card["params"]["non_embedding"] == 94_528
    for key in ("manifest_sha256", "train_tokens"):
        assert card["data"][key]


def test_save_load_roundtrip(toy_model: tuple[Path, dict]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    path, card = toy_model
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == "llama" and model.config.head_dim == 64
    assert model.config.tie_word_embeddings
    src = "def f3(x):\n    if x == 2:\n        return 6\n"
    ids = tok(src, return_tensors="pt").input_ids
    assert tok.decode(ids[0]) == src
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.eos_token_id)
    assert out.shape[1] > ids.shape[1]
    files = list(path.glob("*.safetensors"))
    assert files and all(f.stat().st_size < 16 * 2**20 for f in files)
    gen = GenerationConfig.from_pretrained(path)
    assert gen.temperature in (None, 1.0) and gen.top_k in (None, 50) and not gen.do_sample
    assert json.loads((path / "model_card.json").read_text())["name"] == path.name
    assert "Provisional" in (path / "README.md").read_text()


def test_resume_continues_and_accumulates(toy_model: tuple[Path, dict], tmp_path: Path) -> None:
    import shutil

    from codexlab.models.training import TrainConfig, train

    path, card = toy_model
    copy = tmp_path / path.name
    shutil.copytree(path, copy)
    update_model_card(copy, humaneval={"pass@1": 0.5, "pass@100": 0.9})
    data_dir = path.parents[1] / "cache"
    cfg = TrainConfig(size="codex-mini-0.1m", out_dir=copy, data_dir=data_dir, seq_len=64,
                      batch_size=8, max_tokens=8 * 64 * 5, resume=True, progress=False,
                      warmup_steps=1, lr=1e-4, command="pytest resume")
    card2 = train(cfg)
    assert card2["training"]["tokens_seen"] == card["training"]["tokens_seen"] + 8 * 64 * 5
    assert len(card2["training"]["stages"]) == 2 and card2["training"]["stages"][1]["resumed"]
    # A small-lr continuation starts from the trained weights, not from scratch.
    assert card2["eval"]["heldout_loss"] < card["eval"]["heldout_loss"] + 0.2
    # pass@k measured on the old weights is not carried over to the new ones.
    assert card2["humaneval"]["pass@1"] is None and card2["humaneval"]["pass@100"] is None


def test_update_model_card_merges(tmp_path: Path) -> None:
    write_model_card(tmp_path, {"name": "m", "eval": {"heldout_loss": 3.0}, "provisional": True})
    card = update_model_card(tmp_path, humaneval={"pass@1": 0.01}, eval={"x": 1})
    assert card["eval"] == {"heldout_loss": 3.0, "x": 1}
    assert read_model_card(tmp_path)["humaneval"]["pass@1"] == 0.01
    assert "pass@1" in (tmp_path / "README.md").read_text()


def test_resolve_and_builtin_models(tmp_path: Path) -> None:
    for name, n in (("codex-mini-3m", 3_000_000), ("codex-mini-0.1m", 94_000),
                    ("codex-mini-1.3m", 1_300_000)):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text("{}")
        write_model_card(d, {"name": name, "params": {"non_embedding": n}})
    (tmp_path / "codex-mini-untrained").mkdir()  # no config.json: not a model
    models = builtin_models(tmp_path)
    assert list(models) == ["codex-mini-0.1m", "codex-mini-1.3m", "codex-mini-3m"]
    assert resolve_model("codex-mini-3m", tmp_path) == str((tmp_path / "codex-mini-3m").resolve())
    assert Path(resolve_model("codex-mini-3m", tmp_path)).is_absolute()
    assert resolve_model("gpt2", tmp_path) == "gpt2"
    assert resolve_model("bigcode/tiny_starcoder_py", tmp_path) == "bigcode/tiny_starcoder_py"
    assert resolve_model(str(tmp_path), tmp_path) == str(tmp_path)
    with pytest.raises(ValueError, match="codex-mini-0.1m"):
        resolve_model("codex-mini-7b", tmp_path)
    with pytest.raises(ValueError, match="not trained"):
        resolve_model("codex-mini-4.7m", tmp_path)
    # A retired v1 name (not in tmp_path's family) says where its weights went.
    with pytest.raises(ValueError, match="v1 family, retired"):
        resolve_model("codex-mini-s-0.4m", tmp_path)


def test_power_law_fit_recovers_parameters() -> None:
    n = [1e5, 4e5, 1.3e6, 3e6]
    loss = [(x / 5.92e7) ** -0.13 for x in n]
    fit = fit_power_law(n, loss)
    assert fit["alpha"] == pytest.approx(0.13, rel=1e-6)
    assert fit["n_c"] == pytest.approx(5.92e7, rel=1e-5)
    assert fit["r2"] == pytest.approx(1.0)


def test_cli_list_and_help_fast() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "codexlab", "train", "--list"],
                         capture_output=True, text=True, check=True).stdout
    assert "codex-mini-0.2m" in out and "codex-mini-22m" in out


def test_shipped_weights_fit_the_repository_budget() -> None:
    """Issue 10: every shipped weights file together <= 120 MB in git, each < 100 MB."""
    from codexlab.models.configs import WEIGHTS_BUDGET_BYTES
    from codexlab.paths import models_dir

    files = sorted(models_dir().glob("*/*.safetensors"))
    assert files, f"no shipped weights under {models_dir()}"
    assert all(f.stat().st_size < 100_000_000 for f in files)
    total = sum(f.stat().st_size for f in files)
    assert total <= WEIGHTS_BUDGET_BYTES, (
        f"shipped weights {total / 1e6:.1f} MB > {WEIGHTS_BUDGET_BYTES / 1e6:.0f} MB: "
        + ", ".join(f"{f.parent.name} {f.stat().st_size / 1e6:.1f}" for f in files))


def test_prepare_data_reuses_a_models_tokenizer(toy_model: tuple[Path, dict],
                                                tmp_path: Path) -> None:
    """Resuming elsewhere rebuilds the corpus but must keep the model's vocabulary."""
    from codexlab.models.data import prepare_data
    from codexlab.models.tokenizer import load_tokenizer

    path, _ = toy_model
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"other{i}.py").write_text(f"class C{i}:\n    value = {i}\n" * 5)
    data = prepare_data(tmp_path / "cache", roots=[src], problems=FAKE_PROBLEMS, vocab_size=300,
                        held_out_fraction=0.3, progress=False,
                        tokenizer_file=path / "tokenizer.json")
    assert load_tokenizer(data.tokenizer_path).get_vocab() == \
        load_tokenizer(path / "tokenizer.json").get_vocab()
    assert int(data.tokens("train").max()) < 384


def test_function_mining_and_stage(toy_model: tuple[Path, dict], tmp_path: Path) -> None:
    import shutil

    from codexlab.models.data import PreparedData
    from codexlab.models.functions import extract_functions, prepare_functions
    from codexlab.models.tokenizer import EOS_TOKEN, load_tokenizer
    from codexlab.models.training import TrainConfig, train

    src = (
        "import os\n\n\ndef documented(x):\n    \"\"\"Return x doubled, for the test.\"\"\"\n"
        "    y = x * 2\n    return y\n\n\n@decorated\ndef skipped(x):\n"
        "    \"\"\"A decorated function is left out.\"\"\"\n    return x\n\n\n"
        "def nodoc(x):\n    return x\n\n\nclass K:\n    def method(self):\n"
        "        \"\"\"Methods are left out too.\"\"\"\n        return 1\n"
    )
    funcs = extract_functions(src)
    assert funcs == ["def documented(x):\n    \"\"\"Return x doubled, for the test.\"\"\"\n"
                     "    y = x * 2\n    return y\n"]
    assert extract_functions("def broken(:\n") == []

    path, card = toy_model
    data = PreparedData(path.parents[1] / "cache")
    stats = prepare_functions(data, workers=1, progress=False)
    assert stats["unique_functions"] >= 40 and stats["tokens"] > 0
    assert stats["version"] == 3 and stats["not_self_contained"] == 0
    # The held-out packages' functions are the stage's validation set, none of them trained on.
    held_n = stats["heldout"]["functions"]
    assert held_n > 0 and stats["heldout"]["body_tokens"] > 0
    held_ids = np.asarray(data.tokens("functions_heldout"))
    assert (held_ids == load_tokenizer(data.tokenizer_path).token_to_id(EOS_TOKEN)).sum() \
        == held_n
    # A cache from before the held-out part existed is mined again.
    (data.root / "functions_heldout.bin").unlink()
    assert prepare_functions(data, workers=1, progress=False) == stats
    assert (data.root / "functions_heldout.bin").exists()
    # So is one mined from another corpus build (its files, and so its splits, differ).
    stale = dict(stats, built_from={**stats["built_from"], "manifest_sha256": "0" * 64})
    stats_path = data.root / "functions.json"
    stats_path.write_text(json.dumps(stale))
    assert prepare_functions(data, workers=1, progress=False) == stats
    assert json.loads(stats_path.read_text())["built_from"]["manifest_sha256"] != "0" * 64
    # A set cached by an older version (no "version": v1, every function) is mined again.
    stats_path = data.root / "functions.json"
    stats_path.write_text(json.dumps({k: v for k, v in stats.items() if k != "version"}))
    assert prepare_functions(data, workers=1, progress=False) == stats
    assert json.loads(stats_path.read_text())["version"] == 3
    # The shipped corpus record carries the function set's counts beside the corpus summary
    # (a plain `codexlab train --size ...` rewrote it without them).
    record = data.record()
    assert record["functions"] == stats and record["train"] == data.summary()["train"]
    copy = tmp_path / path.name
    shutil.copytree(path, copy)
    card2 = train(TrainConfig(size="codex-mini-0.1m", out_dir=copy, data_dir=data.root,
                              seq_len=64, batch_size=8, max_tokens=8 * 64 * 3, resume=True,
                              split="functions", progress=False, command="pytest functions"))
    assert card2["training"]["stages"][-1]["data_split"] == "functions"
    assert card2["eval"]["functions_heldout_loss"] > 0
    assert card2["eval"]["functions_heldout_tokens"] == int(
        np.asarray(data.loss_mask("functions_heldout")).sum())
    # A corpus whose held-out packages hold no function: the split is empty, training still
    # saves its model, and the card has no held-out function loss.
    for name in ("functions_heldout.bin", "functions_heldout.mask.bin"):
        (data.root / name).write_bytes(b"")
    assert data.tokens("functions_heldout").shape == (0,)
    card3 = train(TrainConfig(size="codex-mini-0.1m", out_dir=copy, data_dir=data.root,
                              seq_len=64, batch_size=8, max_tokens=8 * 64, resume=True,
                              split="functions", progress=False, command="pytest functions"))
    assert "functions_heldout_loss" not in card3["eval"] and (copy / "model.safetensors").exists()


def test_masked_examples_loss_scores_each_example_alone() -> None:
    """The held-out function loss equals a per-example brute force over the masked targets."""
    import torch
    import torch.nn.functional as F
    from transformers import LlamaConfig, LlamaForCausalLM

    from codexlab.models.training import masked_examples_loss

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=16, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2,
                                         max_position_embeddings=32))
    eos = 0
    examples = [([3, 4, 5], [6, 7]), ([8, 9], [10, 11, 12]), ([13], [14])]
    tokens = np.concatenate([p + b + [eos] for p, b in examples]).astype(np.uint16)
    mask = np.concatenate([[0] * len(p) + [1] * (len(b) + 1) for p, b in examples])
    mask[-1] = 0  # a masked-out target is not scored, wherever it is
    total, count = 0.0, 0
    with torch.no_grad():
        start = 0
        for p, b in examples:
            ids = torch.tensor([[eos] + p + b + [eos]])
            nll = F.cross_entropy(model(input_ids=ids[:, :-1]).logits[0], ids[0, 1:],
                                  reduction="none")
            keep = torch.from_numpy(mask[start:start + len(p) + len(b) + 1].astype(bool))
            total, count = total + nll[keep].sum().item(), count + int(keep.sum())
            start += len(p) + len(b) + 1
    loss, n = masked_examples_loss(model, tokens, mask, eos, torch.device("cpu"), None)
    assert n == count == 8  # bodies + EOS: 3 + 4 + 2, less the masked-out last EOS
    assert loss == pytest.approx(total / count, rel=1e-5)
    nothing = masked_examples_loss(model, tokens, np.zeros_like(mask), eos,
                                   torch.device("cpu"), None)
    assert nothing[1] == 0 and np.isnan(nothing[0])


_MODULE = '''"""A module whose functions need different things from module scope."""
from __future__ import annotations
import os
import numpy as np, collections.abc
from typing import List, Optional as Opt
from . import sibling
from .core import helper
try:
    import simplejson as json
except ImportError:
    import json
if TYPE_CHECKING:
    from pathlib import Path

LIMIT = 3


def builtins_only(xs):
    """Return the sum of the squares of xs, for the test."""
    return sum(x * x for x in xs)


def uses_os(p):
    """Join p under the home folder, for the test."""
    return os.path.join(os.path.expanduser("~"), p)


def typed(xs: List[int], y: Opt[Path] = None) -> List[int]:
    """Return xs sorted, ignoring y, for the test here."""
    return sorted(xs)


def calls_helper(x):
    """Call a helper of the module, for the test."""
    return helper(x) + 1


def reads_constant(x):
    """Compare with a module constant, for the test."""
    return x < LIMIT


def relative(x):
    """Use a relatively imported module, for the test."""
    return sibling.f(x)


def recursive(n):
    """Factorial by recursion, for the test, simple."""
    if n < 2:
        return 1
    return n * recursive(n - 1)


def nested(xs):
    """A nested function reads np, for the test here."""
    def inner(v):
        return np.asarray(v) * 2
    return [inner(x) for x in xs]


def writes_global(x):
    """Write a module global, for the test here, ok."""
    global LIMIT
    LIMIT = x


def dumps(x):
    """Dump x with the json module, for the test."""
    return json.dumps(x)
'''


def test_function_set_keeps_self_contained_functions_with_their_imports() -> None:
    from codexlab.models.functions import extract_functions, module_names, split_function

    kept = extract_functions(_MODULE, self_contained=True)
    # A helper, a module constant, a relative import and a global write are not available
    # to a HumanEval completion; absolute imports are, written first as in HumanEval prompts.
    assert [f.split("def ", 1)[1].split("(")[0] for f in kept] == [
        "builtins_only", "uses_os", "typed", "recursive", "nested", "dumps"]
    by_name = {f.split("def ", 1)[1].split("(")[0]: f for f in kept}
    assert by_name["builtins_only"].startswith("def builtins_only(xs):\n")
    assert by_name["uses_os"].startswith("import os\n\n\ndef uses_os(p):\n")
    # Annotation and default names count; TYPE_CHECKING imports are found; one `from`
    # statement per module, aliases kept.
    assert by_name["typed"].startswith(
        "from typing import List, Optional as Opt\nfrom pathlib import Path\n\n\ndef typed(")
    assert by_name["nested"].startswith("import numpy as np\n\n\ndef nested(")
    assert by_name["dumps"].startswith("import simplejson as json\n\n\n")  # first binding
    for f in kept:
        prompt, body = split_function(f)
        assert prompt + body == f and prompt.endswith('"""\n') and body.startswith("    ")
    # Without the filter every documented function is kept, without imports.
    assert len(extract_functions(_MODULE)) == 10
    assert all(f.startswith("def ") for f in extract_functions(_MODULE))
    assert module_names("def f(x):\n    return len(x) + g(x)\n") == {"g"}
    assert module_names("def f(:\n") is None


def test_the_function_validation_part_leaves_out_what_training_saw() -> None:
    from codexlab.models.functions import split_function, unseen_pairs

    trained_fn = 'def add(a, b):\n    """Add two numbers."""\n    total = a + b\n    return total\n'
    trained = [split_function(trained_fn)]
    same_text = trained_fn.replace("total = a + b", "total  =  a + b")  # whitespace only
    # (the whole-text rule is implied by the body rule for any candidate that splits)
    same_body = ('import os\n\n\ndef plus(a, b):\n    """Sum of a and b, another docstring."""\n'
                 '    total = a + b\n    return total\n')
    new = 'def sub(a, b):\n    """Subtract b from a."""\n    diff = a - b\n    return diff\n'
    no_doc = "def f(x):\n    return x\n"
    assert unseen_pairs([same_text, same_body, new, no_doc, new], trained) == [
        split_function(new), split_function(new)]
    assert unseen_pairs([same_body], []) == [split_function(same_body)]


def test_function_set_treats_rebound_builtins_and_submodules_as_module_names() -> None:
    from codexlab.models.functions import extract_functions

    src = ('from numpy import max\nimport a.b\nimport a.c\nfrom typing import Optional, List\n\n\n'
           'def open(p):\n    """The module\'s own open, shadowing the builtin."""\n    return p\n\n\n'
           'def colmax(a):\n    """Column maxima of an array, numpy max."""\n    x = 1\n'
           '    return max(a, axis=0)\n\n\n'
           'def reads(p):\n    """Read a file with the module\'s own open."""\n    x = 1\n'
           '    return open(p)\n\n\n'
           'def both(x):\n    """Two submodules reached through one name."""\n    y = a.b.f(x)\n'
           '    return a.c.g(y)\n\n\n'
           'def typed(x: Optional[List[int]]) -> int:\n    """Names keep their order in a from."""\n'
           '    y = 1\n    return len(x or [])\n')
    kept = {f.split("def ", 1)[1].split("(")[0]: f for f in extract_functions(src, True)}
    # `max` here is numpy's: it needs its import; `open` is the module's own: not importable.
    assert kept["colmax"].startswith("from numpy import max\n\n\ndef colmax(")
    assert "reads" not in kept and "open" in kept
    assert kept["both"].startswith("import a.b\nimport a.c\n\n\ndef both(")
    assert kept["typed"].startswith("from typing import Optional, List\n\n\ndef typed(")


def test_family_readme_lists_the_cards_humaneval() -> None:
    from codexlab.models.scaling import render_family_readme

    rows = [{"model": "m-small", "non_embedding_params": 10, "total_params": 20,
             "tokens_seen": 5, "heldout_loss": 5.0, "humaneval_text_loss": 5.1,
             "wall_time_s": 1.0, "provisional": True},
            {"model": "m-big", "non_embedding_params": 40, "total_params": 60,
             "tokens_seen": 9, "heldout_loss": 4.0, "humaneval_text_loss": 4.2,
             "wall_time_s": 2.0, "provisional": True}]
    he = {"m-big": {"pass@1": 0.0125, "pass@100": 0.05, "source": "data/results/cards/ (x)",
                    "pass@1_T0.2": {"value": 0.0125, "n": 20, "tasks_solved": 3},
                    "pass@100_T0.8": {"value": 0.05, "n": 100, "tasks_solved": 8}}}
    text = render_family_readme(rows, {}, he)
    assert "| m-big | 0.0125 | 20 (0.2) | 0.0500 | 100 (0.8) | 8 | data/results/cards/ |" in text
    # The cards' bootstrap intervals are shown beside the point estimates.
    he["m-big"]["pass@100_T0.8"]["ci95"] = [0.0183, 0.0854]
    he["m-big"]["pass@1_T0.2"]["ci95"] = [0.0031, 0.025]
    text = render_family_readme(rows, {}, he)
    assert ("| m-big | 0.0125 [0.0031, 0.0250] | 20 (0.2) | 0.0500 [0.0183, 0.0854] | "
            "100 (0.8) | 8 |") in text
    # A model without a measured entry is not given invented numbers, and is named as such.
    assert "| m-small | 0." not in text
    assert "Not measured with this protocol yet: m-small (" in text
    assert "pass@100" not in render_family_readme(rows, {}, {})


# -- v2 recipe: exact resume, WSD, prompt-loss weight, optimizers, config validation ----------
def _toy_cfg(out: Path, data_dir: Path, **kw):
    from codexlab.models.configs import toy_size
    from codexlab.models.training import TrainConfig

    base = dict(size="codex-mini-toy", size_spec=toy_size(), out_dir=out, data_dir=data_dir,
                seq_len=32, batch_size=8, max_tokens=8 * 32 * 12, warmup_steps=3,
                eval_every_s=1e9, progress=False, humaneval_limit=2, command="pytest")
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("optimizer", ["muon", "adamw"])
def test_interrupted_run_resumes_bit_identically(toy_model: tuple[Path, dict], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 optimizer: str) -> None:
    """SIGTERM midway, then resume=True: the same weights as an uninterrupted run, bit for bit."""
    import os
    import signal

    import torch

    from codexlab.models import training
    from codexlab.models.training import TrainingInterrupted, train

    data_dir = toy_model[0].parents[1] / "cache"
    straight = train(_toy_cfg(tmp_path / "a", data_dir, optimizer=optimizer))
    # Both optimizers learn: the held-out loss falls well below its start within 12 steps.
    hist = straight["training"]["stages"][0]["history"]
    assert hist[-1]["heldout_loss"] < hist[0]["heldout_loss"] - 0.5

    real = training._lr_factor

    def term_at_step_5(step: int, *args, **kw) -> float:
        if step == 5:  # the signal arrives mid-step; the loop stops after this step
            os.kill(os.getpid(), signal.SIGTERM)
        return real(step, *args, **kw)

    monkeypatch.setattr(training, "_lr_factor", term_at_step_5)
    with pytest.raises(TrainingInterrupted, match="interrupted at step 6"):
        train(_toy_cfg(tmp_path / "b", data_dir, optimizer=optimizer))
    monkeypatch.setattr(training, "_lr_factor", real)
    assert not (tmp_path / "b" / "config.json").exists()  # only the state was saved
    resumed = train(_toy_cfg(tmp_path / "b", data_dir, optimizer=optimizer, resume=True))

    a = torch.load(tmp_path / "a" / training.STATE_FILE, weights_only=False)
    b = torch.load(tmp_path / "b" / training.STATE_FILE, weights_only=False)
    assert a["finished"] and b["finished"] and a["step"] == b["step"] == 12
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert resumed["eval"]["heldout_loss"] == straight["eval"]["heldout_loss"]
    assert resumed["training"]["tokens_seen"] == straight["training"]["tokens_seen"]
    assert len(resumed["training"]["stages"]) == 1  # one stage, continued, not a new one


def test_resume_keeps_the_newton_schulz_precision_the_run_started_with(
        toy_model: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys) -> None:
    """A run begun where Muon ran in bf16 and resumed where it would run in fp32 stays bf16."""
    import os
    import signal

    import torch

    from codexlab.models import training
    from codexlab.models.training import TrainingInterrupted, train

    data_dir = toy_model[0].parents[1] / "cache"
    monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda: True)  # bf16 NS machine
    straight = train(_toy_cfg(tmp_path / "a", data_dir, precision="fp32"))
    assert "Newton-Schulz in fp32" not in straight["training"]["optimizer"]
    real = training._lr_factor

    def term_at_step_5(step: int, *args, **kw) -> float:
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(step, *args, **kw)

    monkeypatch.setattr(training, "_lr_factor", term_at_step_5)
    with pytest.raises(TrainingInterrupted):
        train(_toy_cfg(tmp_path / "b", data_dir, precision="fp32"))
    monkeypatch.setattr(training, "_lr_factor", real)
    monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda: False)  # an fp32 NS machine
    resumed = train(_toy_cfg(tmp_path / "b", data_dir, precision="fp32", resume=True))
    assert "stays in bf16" in capsys.readouterr().err
    assert "Newton-Schulz in fp32" not in resumed["training"]["optimizer"]
    a = torch.load(tmp_path / "a" / training.STATE_FILE, weights_only=False)
    b = torch.load(tmp_path / "b" / training.STATE_FILE, weights_only=False)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["muon_ns_fp32"] is b["muon_ns_fp32"] is False


def test_interrupt_outside_a_step_boundary_saves_no_state(toy_model: tuple[Path, dict],
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyboardInterrupt raised inside a step (a second Ctrl-C) must not save a torn state."""
    from codexlab.models import training
    from codexlab.models.training import TrainingInterrupted, train

    real = training._lr_factor

    def boom(step: int, *args, **kw) -> float:
        if step == 3:
            raise KeyboardInterrupt
        return real(step, *args, **kw)

    monkeypatch.setattr(training, "_lr_factor", boom)
    with pytest.raises(TrainingInterrupted, match="no state saved"):
        train(_toy_cfg(tmp_path / "c", toy_model[0].parents[1] / "cache"))
    assert not (tmp_path / "c" / training.STATE_FILE).exists()


def test_wsd_and_cosine_schedule_values() -> None:
    from codexlab.models.training import _lr_factor

    wsd = dict(warmup=10, min_frac=0.1, schedule="wsd", decay_frac=0.2)
    assert _lr_factor(0, 0.0, **wsd) == pytest.approx(0.1)  # warm-up: (step + 1) / warmup
    assert _lr_factor(4, 0.0, **wsd) == pytest.approx(0.5)
    assert _lr_factor(50, 0.3, **wsd) == 1.0  # stable
    assert _lr_factor(50, 0.8, **wsd) == pytest.approx(1.0)  # the cool-down starts here
    # Halfway through the cool-down: min + (1 - min) (1 - sqrt(0.5)).
    assert _lr_factor(50, 0.9, **wsd) == pytest.approx(0.1 + 0.9 * (1 - math.sqrt(0.5)))
    assert _lr_factor(50, 1.0, **wsd) == pytest.approx(0.1)
    assert _lr_factor(50, 1.7, **wsd) == pytest.approx(0.1)  # clamped past the end
    values = [_lr_factor(50, p / 100, **wsd) for p in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    cos = dict(warmup=10, min_frac=0.1, schedule="cosine")
    assert _lr_factor(50, 0.0, **cos) == pytest.approx(1.0)
    assert _lr_factor(50, 0.5, **cos) == pytest.approx(0.55)
    assert _lr_factor(50, 1.0, **cos) == pytest.approx(0.1)


def test_peak_flops_names_the_pcie_h100_apart_from_the_sxm_part() -> None:
    """MFU's denominator: the PCIe H100 (756 TFLOP/s bf16) is not the SXM part (989)."""
    from codexlab.models.training import peak_flops_of

    assert peak_flops_of("NVIDIA H100 PCIe") == 756e12
    assert peak_flops_of("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_flops_of("NVIDIA H200") == 989e12
    assert peak_flops_of("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_flops_of("Tesla T4") is None


def test_prompt_loss_weight_on_masked_targets() -> None:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from codexlab.models.training import token_weights, weighted_loss

    mask = np.array([0, 0, 1, 1, 1], dtype=np.uint8)  # two prompt targets, three completion
    assert token_weights(mask, 0.2).tolist() == pytest.approx([0.2, 0.2, 1, 1, 1])
    assert token_weights(mask, 1.0).tolist() == [1.0] * 5
    torch.manual_seed(0)
    logits = torch.randn(5, 11)
    targets = torch.tensor([1, 2, 3, 4, 5])
    w0 = torch.from_numpy(token_weights(mask, 0.0))
    ce = F.cross_entropy(logits, targets, reduction="none")
    # Weight 0: the mean over completion targets alone; prompt logits do not matter.
    assert weighted_loss(logits, targets, w0).item() == pytest.approx(ce[2:].mean().item())
    other = logits.clone()
    other[:2] = torch.randn(2, 11) * 10
    assert weighted_loss(other, targets, w0).item() == pytest.approx(ce[2:].mean().item())
    # Weight 1 is plain language modelling; 0.2 lies in between.
    w1 = torch.from_numpy(token_weights(mask, 1.0))
    assert weighted_loss(logits, targets, w1).item() == pytest.approx(ce.mean().item())
    expected = (0.2 * ce[:2].sum() + ce[2:].sum()) / (0.2 * 2 + 3)
    assert weighted_loss(logits, targets, torch.from_numpy(token_weights(mask, 0.2))).item() \
        == pytest.approx(expected.item())
    assert weighted_loss(logits, targets).item() == pytest.approx(ce.mean().item())


def test_prompt_loss_weight_changes_the_function_stage_loss(toy_model: tuple[Path, dict],
                                                            tmp_path: Path) -> None:
    from codexlab.models.data import PreparedData
    from codexlab.models.functions import prepare_functions
    from codexlab.models.training import train

    data = PreparedData(toy_model[0].parents[1] / "cache")
    prepare_functions(data, workers=1, progress=False)
    assert data.loss_mask("functions") is not None
    first = {}
    for w in (0.0, 1.0):
        card = train(_toy_cfg(tmp_path / f"w{w}", data.root, split="functions",
                              prompt_loss_weight=w, max_tokens=8 * 32))
        first[w] = card["training"]["stages"][0]["history"][0]["train_loss"]
        assert card["training"]["stages"][0]["prompt_loss_weight"] == (w if w < 1 else None)
    assert first[0.0] != pytest.approx(first[1.0], abs=1e-3)  # same init, other tokens weighed


@pytest.mark.parametrize("field,value,match", [
    ("optimizer", "sgd", "optimizer must be"),
    ("schedule", "linear", "schedule must be"),
    ("prompt_loss_weight", 1.5, "prompt_loss_weight"),
    ("prompt_loss_weight", -0.1, "prompt_loss_weight"),
    ("decay_frac", 0.0, "decay_frac"),
    ("decay_frac", 1.5, "decay_frac"),
])
def test_train_config_rejects_bad_settings(tmp_path: Path, field: str, value: object,
                                           match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _toy_cfg(tmp_path, tmp_path, **{field: value})


def test_train_needs_a_budget(tmp_path: Path) -> None:
    from codexlab.models.training import train

    with pytest.raises(ValueError, match="budget"):
        train(_toy_cfg(tmp_path, tmp_path, max_tokens=None, time_budget_s=None))


# -- model registry (codexlab.models.registry) -------------------------------------------------
def test_config_names_models_without_importing_the_pipeline() -> None:
    """codexlab.config resolves models through codexlab.models, never codexlab.pipeline."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import codexlab.config as c\n"
        "cfg = c.figure_config('quick')\n"
        "models = cfg.resolved_models()\n"
        "print(cfg.reference_label(), len(models))\n"
        "bad = [m for m in ('codexlab.pipeline', 'torch', 'pandas') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_registry_helpers(tmp_path: Path) -> None:
    import struct

    from codexlab import pipeline
    from codexlab.models import (
        card_fields,
        compact_model_names,
        model_aliases,
        model_dir,
        model_label,
        params_from_weights,
    )

    class Cfg:
        def compact_results_dir(self) -> Path:
            return tmp_path

    assert compact_model_names(Cfg()) == []
    (tmp_path / "models.csv").write_text(
        "model,params_total\nbig,3000\nunknown,\nsmall,10\nmid,200\n")
    assert compact_model_names(Cfg()) == ["small", "mid", "big", "unknown"]
    d = tmp_path / "m"
    d.mkdir()
    header = json.dumps({"model.embed_tokens.weight": {"dtype": "BF16", "shape": [10, 4],
                                                       "data_offsets": [0, 80]},
                         "model.layers.0.w": {"dtype": "BF16", "shape": [4, 4],
                                              "data_offsets": [80, 112]}}).encode()
    (d / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(112))
    assert params_from_weights(d) == {"total": 56, "non_embedding": 16}
    assert model_dir(str(d)) == d and model_dir("org/hub-id") is None
    assert model_label(str(d)) == "m" and model_label("org/hub-id") == "org/hub-id"
    assert {str(d), "m"} <= model_aliases(str(d))
    assert card_fields({"params": {"total": 5}, "eval": {"heldout_loss": 2.0}})["params_total"] == 5
    assert card_fields({"params_total": 7})["params_total"] == 7
    assert pipeline.model_label is model_label  # the old import location keeps working


def test_models_dir_override_names_another_family(toy_model: tuple[Path, dict],
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """CODEXLAB_MODELS_DIR: short names resolve to a family kept elsewhere (a GPU run's)."""
    import shutil

    from codexlab import paths
    from codexlab.models import builtin_models, model_dir, resolve_model
    from codexlab.sampling.healing import default_token_healing

    other = tmp_path / "family"
    shutil.copytree(toy_model[0], other / "codex-mini-0.1m")
    monkeypatch.setenv("CODEXLAB_MODELS_DIR", str(other))
    assert paths.models_dir() == other.resolve()
    assert builtin_models() == {"codex-mini-0.1m": other.resolve() / "codex-mini-0.1m"}
    assert Path(resolve_model("codex-mini-0.1m")) == other.resolve() / "codex-mini-0.1m"
    assert model_dir("codex-mini-0.1m") == other.resolve() / "codex-mini-0.1m"
    assert default_token_healing("codex-mini-0.1m") > 0
    monkeypatch.delenv("CODEXLAB_MODELS_DIR")
    assert paths.models_dir() == paths.MODELS_DIR


# -- fine-tuned variants: Codex-S and Codex-D (issue 13) ---------------------------------------
def test_variant_names_and_registry(tmp_path: Path) -> None:
    from codexlab.models.registry import base_model_name, model_variant, variant_name

    assert model_variant("codex-mini-s-3m") == "s" and model_variant("codex-mini-3m") == ""
    assert model_variant("/x/codex-mini-d-1.3m") == "d" and model_variant("gpt2") == ""
    assert variant_name("codex-mini-3m", "s") == "codex-mini-s-3m"
    assert base_model_name("codex-mini-d-1.3m") == "codex-mini-1.3m"
    with pytest.raises(ValueError, match="unknown variant"):
        variant_name("codex-mini-3m", "x")
    with pytest.raises(ValueError, match="not a base"):
        variant_name("codex-mini-s-3m", "s")
    for name, n in (("codex-mini-3m", 30), ("codex-mini-s-3m", 30), ("codex-mini-1.3m", 10),
                    ("codex-mini-d-1.3m", 10)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
        write_model_card(tmp_path / name, {"name": name, "params": {"non_embedding": n}})
    assert list(builtin_models(tmp_path)) == ["codex-mini-1.3m", "codex-mini-3m"]
    assert list(builtin_models(tmp_path, variant="s")) == ["codex-mini-s-3m"]
    assert list(builtin_models(tmp_path, variant="*")) == [
        "codex-mini-1.3m", "codex-mini-d-1.3m", "codex-mini-3m", "codex-mini-s-3m"]
    assert resolve_model("codex-mini-s-3m", tmp_path) == str((tmp_path / "codex-mini-s-3m")
                                                             .resolve())


def test_docstring_stage_masks_the_context_and_names_the_base(toy_model: tuple[Path, dict],
                                                              tmp_path: Path) -> None:
    """Codex-D data: context = signature + body + quotes, loss mask on the docstring only."""
    import numpy as np

    from codexlab.models.data import PreparedData
    from codexlab.models.functions import prepare_docstrings
    from codexlab.models.tokenizer import load_tokenizer
    from codexlab.models.training import train

    path, _ = toy_model
    data = PreparedData(path.parents[1] / "cache")
    stats = prepare_docstrings(data, workers=1, progress=False)
    assert stats["kept_functions"] >= 40
    ids, mask = data.tokens("docstrings"), data.loss_mask("docstrings")
    assert mask is not None and len(ids) == len(mask) == stats["tokens"]
    assert int(mask.sum()) == stats["docstring_tokens"]
    tok = load_tokenizer(data.tokenizer_path)
    eos = tok.token_to_id("<|endoftext|>")
    first_end = int(np.flatnonzero(np.asarray(ids) == eos)[0])
    doc = np.asarray(ids[: first_end + 1])
    m = np.asarray(mask[: first_end + 1]).astype(bool)
    context, target = tok.decode(doc[~m].tolist()), tok.decode(doc[m][:-1].tolist())
    assert context.startswith("def f") and context.endswith('    """')
    assert "return 0" in context and target.startswith("Map x to a multiple of")
    assert target.endswith('"""')
    out = tmp_path / "codex-mini-d-0.1m"
    import shutil

    shutil.copytree(path, out)
    card = train(_toy_cfg(out, data.root, size="codex-mini-0.1m", size_spec=None,
                          split="docstrings", prompt_loss_weight=0.0,
                          max_tokens=8 * 32, resume=True))
    assert card["variant"] == "d" and card["base_model"] == "codex-mini-0.1m"
    assert card["data"]["docstrings"]["kept_functions"] == stats["kept_functions"]
    assert card["training"]["stages"][-1]["data_split"] == "docstrings"


def test_cli_init_copies_the_base_and_refuses_to_overwrite(tmp_path: Path) -> None:
    import argparse

    from codexlab.commands import train as cmd

    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    cmd.register(sub)
    args = p.parse_args(["train", "--size", "codex-mini-0.1m", "--init", "codex-mini-0.1m"])
    assert args.init == "codex-mini-0.1m"
    # --init needs a fine-tuning stage.
    assert cmd.run(args) == 2
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "config.json").write_text("{}")
    args = p.parse_args(["train", "--size", "codex-mini-0.1m", "--stage", "functions", "--init",
                         "codex-mini-0.1m", "--out", str(tmp_path / "dst")])
    assert cmd.run(args) == 2
    args = p.parse_args(["train", "--size", "codex-mini-0.1m", "--stage", "functions", "--init",
                         "codex-mini-nope", "--out", str(tmp_path / "dst2")])
    assert cmd.run(args) == 2


def test_cli_refuses_what_would_overwrite_mix_or_never_end(tmp_path: Path, capsys) -> None:
    """Refused in one line before any corpus work: an unknown size, a budget of 0 (no limit),
    a folder holding a model without --resume/--overwrite, --resume or --init of another
    size's weights, a file as --out."""
    import shutil

    from codexlab.cli import main
    from codexlab.models import builtin_models

    small = builtin_models()["codex-mini-0.2m"]
    held = tmp_path / "held"
    held.mkdir()
    shutil.copy(small / "config.json", held / "config.json")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        (["--size", "codex-mini-99m"], "unknown size"),
        (["--size", "codex-mini-0.2m", "--time-budget", "0"], "--time-budget must be above 0"),
        (["--size", "codex-mini-0.2m", "--max-tokens", "-5"], "--max-tokens must be at least 1"),
        (["--family", "--budget-scale", "-1"], "--budget-scale must be above 0"),
        (["--size", "codex-mini-0.2m", "--out", str(held)], "already holds a model: --resume"),
        (["--size", "codex-mini-1.2m", "--out", str(held), "--resume"],
         "holds a model of d_model 64, 4 layers; codex-mini-1.2m is d_model 128"),
        (["--size", "codex-mini-1.2m", "--stage", "functions", "--init", "codex-mini-0.2m",
          "--out", str(tmp_path / "s")], "--init codex-mini-0.2m is d_model 64"),
        (["--size", "codex-mini-0.2m", "--out", str(a_file)], "is a file"),
        (["--size", "codex-mini-0.2m", "--max-tokens", "0.5"], "--max-tokens must be at least 1"),
        (["--size", "codex-mini-0.2m", "--out", str(held), "--resume", "--overwrite"],
         "--overwrite trains anew"),
        (["--size", "codex-mini-0.2m", "--stage", "functions", "--init", "codex-mini-0.2m",
          "--out", str(held)], "or --overwrite to replace it with a copy"),
    ]
    for argv, want in cases:
        assert main(["train", *argv, "--data-dir", str(tmp_path / "data")]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert want in err and "\n" not in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "data").exists() and not (tmp_path / "s").exists()


def test_continue_command_names_the_size_the_stage_and_a_folder_off_the_default(
        tmp_path: Path) -> None:
    from codexlab.models.training import continue_command
    from codexlab.paths import models_dir

    fam = models_dir()
    assert continue_command("codex-mini-1.2m", "train", fam / "codex-mini-1.2m") == (
        "codexlab train --size codex-mini-1.2m --resume --time-budget 600")
    assert continue_command("codex-mini-1.2m", "functions", fam / "codex-mini-s-1.2m") == (
        "codexlab train --size codex-mini-1.2m --stage functions --resume --out "
        "data/models/codex-mini-s-1.2m --time-budget 600")
    # A folder of one's own: its path, and --size is still the preset (not the folder name).
    assert continue_command("codex-mini-0.2m", "train", tmp_path / "m") == (
        f"codexlab train --size codex-mini-0.2m --resume --out {(tmp_path / 'm').as_posix()} "
        "--time-budget 600")


def test_family_readme_lists_the_variants() -> None:
    from codexlab.models.scaling import render_family_readme

    rows = [{"model": "m-big", "non_embedding_params": 40, "total_params": 60, "tokens_seen": 9,
             "heldout_loss": 4.0, "humaneval_text_loss": 4.2, "wall_time_s": 2.0}]
    variants = [{"model": "m-s-big", "variant": "s", "base_model": "m-big", "stage": "functions",
                 "stage_tokens": 1234, "stage_wall_time_s": 60.0, "heldout_loss": 4.5,
                 "humaneval_text_loss": 3.5}]
    he = {"m-s-big": {"pass@1": 0.0, "pass@100": 0.0061, "source": "data/results/cards/codex-s",
                      "pass@1_T0.2": {"value": 0.0, "n": 20, "tasks_solved": 0},
                      "pass@100_T0.8": {"value": 0.0061, "n": 100, "tasks_solved": 1}}}
    text = render_family_readme(rows, {}, he, variants)
    assert "| m-s-big | m-big | Codex-S: function-level stage (signature" in text
    assert "| 1,234 | 60 | 4.500 | 3.500 | ? |" in text
    # A Codex-S model trained on set v2 says so (its card's data.functions.version).
    text2 = render_family_readme(rows, {}, he, [{**variants[0], "set_version": 2}])
    assert "| m-s-big | m-big | Codex-S: function-level stage, set v2 (self-contained" in text2
    assert "| m-s-big | 0.0000 | 20 (0.2) | 0.0061 | 100 (0.8) | 1 |" in text
    # Training resets a card's pass@k to None (measured on older weights): no pass@k row then,
    # and the solution loss shows when the card has it.
    variants[0]["humaneval_solution_loss"] = 2.3756
    reset = {"m-s-big": {"pass@1": None, "pass@100": None, "note": "to be filled"}}
    text = render_family_readme(rows, {}, reset, variants)
    assert "| 4.500 | 3.500 | 2.376 |" in text
    assert "| m-s-big | 0.0000" not in text and "tasks solved" not in text


def test_a_continued_function_stage_counts_as_one_stage() -> None:
    from codexlab.models.scaling import variant_stage

    card = {"training": {"stages": [
        {"data_split": "train", "tokens": 3_387_392, "wall_time_s": 4502.5},
        {"data_split": "functions", "tokens": 2_387_968, "wall_time_s": 2502.4},
        {"data_split": "functions", "tokens": 3_133_440, "wall_time_s": 2703.0}]}}
    assert variant_stage(card) == {"stage": "functions", "stage_tokens": 5_521_408,
                                   "stage_wall_time_s": pytest.approx(5205.4)}
    assert variant_stage({})["stage_tokens"] == 0


def test_example_level_windows_start_at_an_example() -> None:
    """Function/docstring windows open on an example's first token, never inside one."""
    import numpy as np

    from codexlab.models.training import example_starts

    eos = 0
    # Examples of lengths 3, 4, 2, 5 (EOS included), then a tail too short for a window.
    tokens = np.array([5, 6, 0, 7, 8, 9, 0, 4, 0, 1, 2, 3, 4, 0, 9, 9], dtype=np.uint16)
    assert example_starts(tokens, eos, seq_len=4).tolist() == [0, 3, 7, 9]
    assert example_starts(tokens, eos, seq_len=8).tolist() == [0, 3, 7]
    for s in example_starts(tokens, eos, seq_len=4):
        assert s == 0 or tokens[s - 1] == eos
    with pytest.raises(ValueError, match="lower --seq-len"):
        example_starts(tokens, eos, seq_len=16)


@pytest.mark.parametrize("fast", [False, True])
def test_auto_precision_asks_the_cpu_for_native_bf16(toy_model: tuple[Path, dict],
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     fast: bool) -> None:
    """precision="auto" on a CPU: bf16 autocast only where bf16 is native (else ~7-10x slower)."""
    from codexlab.models import training

    monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda: fast)
    data_dir = toy_model[0].parents[1] / "cache"
    card = training.train(_toy_cfg(tmp_path / "m", data_dir, max_tokens=8 * 32 * 2))
    assert card["training"]["precision"] == ("bf16 autocast" if fast else "fp32")
    # Muon's Newton-Schulz follows the same question: bf16 (torch.optim.Muon) only where
    # native, else fp32 (emulated bf16 made the optimizer step 5x the rest of a CPU step).
    assert ("Newton-Schulz in fp32" in card["training"]["optimizer"]) is (not fast)
    forced = training.train(_toy_cfg(tmp_path / "b", data_dir, max_tokens=8 * 32 * 2,
                                     precision="bf16"))
    assert forced["training"]["precision"] == "bf16 autocast"


def test_cpu_has_fast_bf16_answers_a_bool() -> None:
    from codexlab.models.training import cpu_has_fast_bf16

    assert cpu_has_fast_bf16() in (True, False)
