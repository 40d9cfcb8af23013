r"""Byte-level BPE tokenizer for Python, with whitespace-run tokens, trained offline.

What it is for: training the family's tokenizer with the ``tokenizers`` library, wrapping it
as a Hugging Face fast tokenizer (so ``AutoTokenizer.from_pretrained`` loads it), and
measuring how many tokens the whitespace-run tokens save on held-out code. What it is not
for: building the corpus or tokenising it in bulk (see :mod:`codexlab.models.data`).

Whitespace runs: Codex added tokens for runs of spaces to the GPT-3 text tokenizer and saw
~30% fewer tokens on code. With the GPT-2 pre-tokenizer regex a run of spaces stays one
pre-token (``\\s+(?!\\S)``), so a BPE *trained on code* learns space-run tokens by itself
(indentation is the most frequent pattern in Python). We therefore keep them as learned
merges, record which run lengths the vocabulary holds, and measure the saving against the
*same* BPE trained with space runs broken into single
spaces (the situation of a text tokenizer). Appending space runs as "added tokens" after
training was measured too and is worse (added tokens are matched before the BPE, so they
break the learned ``newline + indent`` and ``space + word`` merges).

Tokenizer versions (the ``pre_tokenizer`` recorded in the corpus summary and model cards):

* **v1** (the first codex-mini models): the GPT-2 byte-level regex alone, so ``"\n    "``
  (a newline and the indentation after it) is one pre-token and BPE merges it into one token.
  Every HumanEval prompt ends in a bare ``"\n"``, which such a tokenizer only emits before
  column-0 code or the end of a file: the model then rarely writes an indented body.
* **v2** (default): newline runs are split off first (``Split(r"\n+", isolated)``), so a
  newline is never merged with the indentation that follows it; space runs still become tokens
  (``"\n"``, ``"   "``, ``" return"``). A prompt ending in ``"\n"`` then ends on a token
  boundary that training text also has before every indented line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

EOS_TOKEN = "<|endoftext|>"
#: The tokenizer version new corpora get (see the module docstring).
TOKENIZER_VERSION = 2
#: Newline runs isolated before the byte-level regex (tokenizer v2).
NEWLINE_RUN_PATTERN = r"\n+"


def _new_bpe(split_space_runs: bool, version: int = TOKENIZER_VERSION):
    """Return an untrained byte-level BPE ``Tokenizer``.

    Args:
        split_space_runs: If true, break runs of spaces into single-space pre-tokens so that
            no space-run token can be learned (the "without whitespace tokens" baseline).
        version: 2 keeps newlines apart from the indentation that follows them; 1 is the
            plain GPT-2 byte-level pre-tokenizer of the first models.

    Raises:
        ValueError: for a version other than 1 or 2.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    if version not in (1, 2):
        raise ValueError(f"tokenizer version must be 1 or 2, not {version!r}")
    tok = Tokenizer(models.BPE())
    steps = []
    if version >= 2:
        steps.append(pre_tokenizers.Split(Regex(NEWLINE_RUN_PATTERN), behavior="isolated"))
    if split_space_runs:
        # A space followed by another space becomes its own piece; the last space of a run
        # still attaches to the next word as in GPT-2 (" if").
        steps.append(pre_tokenizers.Split(Regex(" (?= )"), behavior="isolated"))
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    tok.pre_tokenizer = steps[0] if len(steps) == 1 else pre_tokenizers.Sequence(steps)
    tok.decoder = decoders.ByteLevel()
    return tok


def tokenizer_version(tok) -> int:
    """Return 2 if ``tok`` keeps newline runs apart from indentation (v2), else 1."""
    import json

    pre = json.loads(tok.to_str()).get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre])
    for step in steps:
        pattern = (step.get("pattern") or {}).get("Regex")
        if step.get("type") == "Split" and pattern == NEWLINE_RUN_PATTERN:
            return 2
    return 1


def train_bpe(texts: Iterable[str], vocab_size: int = 8192, split_space_runs: bool = False,
              version: int = TOKENIZER_VERSION):
    """Train a byte-level BPE on ``texts`` and return the ``tokenizers.Tokenizer``.

    Args:
        texts: Training texts (an iterable of strings).
        vocab_size: Final vocabulary size including the EOS token.
        split_space_runs: Build the baseline without space-run tokens (see :func:`_new_bpe`).
        version: Pre-tokenizer version (see the module docstring).
    """
    from tokenizers import pre_tokenizers, trainers

    tok = _new_bpe(split_space_runs, version)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def space_run_tokens(tok) -> list[int]:
    """Return the run lengths n (>= 2) for which ``n`` spaces are one token of ``tok``."""
    vocab = tok.get_vocab()
    return [n for n in range(2, 65) if "\u0120" * n in vocab]


def count_tokens(tok, texts: Sequence[str]) -> int:
    """Return the total number of tokens of ``texts`` under ``tok``."""
    return sum(len(e.ids) for e in tok.encode_batch(list(texts)))


def measure_space_token_reduction(
    train_texts: Sequence[str], heldout_texts: Sequence[str], vocab_size: int, tok=None
) -> dict:
    """Measure the token saving of whitespace-run tokens on held-out code, v2 against v1.

    Three tokenizers of the same vocabulary size are trained on the same ``train_texts``: the
    family's (v2: newline apart from indentation, space runs as tokens), v1 (newline merged
    with the indentation after it) and v2 without space-run tokens (the situation of a text
    tokenizer; the Codex paper reports ~30 % fewer tokens with whitespace tokens, §3.2).

    Args:
        train_texts: Texts to train the tokenizers on.
        heldout_texts: Texts to count tokens on.
        vocab_size: Vocabulary size of every tokenizer.
        tok: The already trained family tokenizer (trained as v2 if ``None``).

    Returns:
        Token counts of the three tokenizers, the reduction of space-run tokens
        (``1 - with / without``) and v2's token count relative to v1.
    """
    with_runs = tok or train_bpe(train_texts, vocab_size)
    version = tokenizer_version(with_runs)
    without = train_bpe(train_texts, vocab_size, split_space_runs=True, version=version)
    v1 = with_runs if version == 1 else train_bpe(train_texts, vocab_size, version=1)
    n_with = count_tokens(with_runs, heldout_texts)
    n_without = count_tokens(without, heldout_texts)
    n_v1 = count_tokens(v1, heldout_texts)
    n_bytes = sum(len(t.encode()) for t in heldout_texts)
    return {
        "tokenizer_version": version,
        "heldout_bytes": n_bytes,
        "tokens_with_space_runs": n_with,
        "tokens_without_space_runs": n_without,
        "tokens_v1_newline_merged": n_v1,
        "reduction": round(1 - n_with / n_without, 4),
        "tokens_vs_v1": round(n_with / n_v1, 4),
        "bytes_per_token": round(n_bytes / n_with, 3),
        "space_run_lengths_in_vocab": space_run_tokens(with_runs),
    }


def to_hf(tok, model_max_length: int = 2048):
    """Wrap a ``tokenizers.Tokenizer`` as a ``PreTrainedTokenizerFast`` with EOS = BOS = PAD."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        bos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        unk_token=None,
        model_max_length=model_max_length,
        # Code must round-trip byte for byte; the default clean-up would eat spaces.
        clean_up_tokenization_spaces=False,
    )


def load_tokenizer(path: str | Path):
    """Load a saved ``tokenizers`` JSON file (the family tokenizer in the corpus cache)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))
