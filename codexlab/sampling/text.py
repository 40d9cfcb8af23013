"""From sampled token ids to the stored completion: decoding, stop sequences, finish reason.

What it is for: deciding, for one sample, where generation ended and what is stored:

* the completion is the decoded text of the generated tokens (decoded together with the last
  few prompt tokens and that prefix removed, so that SentencePiece-style tokenizers keep the
  leading space of the first generated word), cut before the earliest stop sequence;
* with token healing (:mod:`~codexlab.sampling.healing`) the prompt was backed off by a text
  ``R`` that the first generated tokens re-produce; ``R`` is removed from the start of the
  generated text, so the completion is exactly the text after the *original* prompt
  (``prompt + completion`` is what the model wrote) and stop sequences are matched on it as
  without healing. Until the generated text covers ``R`` the completion is empty;
* stop sequences are matched on decoded *text*, so one spanning several tokens is found;
* the recorded tokens (``n_tokens`` and the log-prob sums) are every token sampled until
  generation ended: up to and including the token that completed the first stop sequence,
  or the EOS token, or all ``max_new_tokens``. That is the probability of the completion
  *together with its terminator*, the quantity the sampler actually drew.

What it is not for: choosing tokens (:mod:`~codexlab.sampling.sampler`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Prompt tokens decoded in front of the completion (see module docstring).
CONTEXT_TOKENS = 4


def prompt_text(problem: Any) -> str:
    """Return a problem's prompt: a ``Problem``, a dict with ``prompt``, or the string itself."""
    if isinstance(problem, str):
        return problem
    if isinstance(problem, Mapping):
        return str(problem["prompt"])
    return str(problem.prompt)


def find_stop(text: str, stops: Sequence[str]) -> int:
    """Return the index in ``text`` where the earliest stop sequence begins, or -1."""
    best = -1
    for s in stops:
        i = text.find(s)
        if i != -1 and (best == -1 or i < best):
            best = i
    return best


class CompletionDecoder:
    """Decode generated ids of one prompt into completion text.

    Args:
        tokenizer: A Hugging Face tokenizer.
        prompt_ids: The prompt's token ids (only the last :data:`CONTEXT_TOKENS` are used);
            with token healing, the backed-off prompt's.
        skip: Token healing's removed text ``R``: dropped from the start of the generated
            text (see the module docstring).
    """

    def __init__(self, tokenizer: Any, prompt_ids: Sequence[int], skip: str = "") -> None:
        self.tokenizer = tokenizer
        self.context = list(prompt_ids[-CONTEXT_TOKENS:])
        self.context_text = tokenizer.decode(self.context, skip_special_tokens=True)
        self.skip = skip
        self._rust = _rust_decoder(tokenizer, list(prompt_ids))

    def generated(self, ids: Sequence[int]) -> str:
        """Return the text that ``ids`` add after the (backed-off) prompt, ``R`` included."""
        full = self.tokenizer.decode(self.context + list(ids), skip_special_tokens=True)
        if full.startswith(self.context_text):
            return full[len(self.context_text):]
        # A tokenizer whose decoding of the context changes once more tokens follow (rare
        # normalisers): decode the generated ids alone.
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def after_prompt(self, text: str) -> str:
        """Map generated text to the text after the original prompt (drop ``R``)."""
        if not self.skip:
            return text
        if text.startswith(self.skip):
            return text[len(self.skip):]
        # Healing not finished (a strict prefix of R, possibly ending in a partial
        # character): nothing after the original prompt yet.
        return ""

    def decode(self, ids: Sequence[int]) -> str:
        """Return the text that ``ids`` add after the original prompt."""
        return self.after_prompt(self.generated(ids))

    def decode_many(self, seqs: Sequence[Sequence[int]]) -> list[str]:
        """Decode several id sequences at once (one Rust call for fast tokenizers)."""
        fulls = self.raw_many([self.context + list(s) for s in seqs])
        n = len(self.context_text)
        return [
            self.after_prompt(f[n:]) if f.startswith(self.context_text) else self.decode(s)
            for f, s in zip(fulls, seqs, strict=True)
        ]

    def raw_many(self, seqs: Sequence[Sequence[int]]) -> list[str]:
        """Decode id sequences as they are (no prompt context), as fast as possible.

        Uses the Rust tokenizer's ``decode_batch`` when it was verified to agree with
        ``tokenizer.decode`` on the prompt (transformers' Python wrapper inspects every id
        and costs ~30 us per sequence, which adds up at every decode step).
        """
        if self._rust is not None:
            return self._rust.decode_batch([list(s) for s in seqs], skip_special_tokens=True)
        return self.tokenizer.batch_decode([list(s) for s in seqs], skip_special_tokens=True)


def _rust_decoder(tokenizer: Any, probe: list[int]) -> Any:
    """Return the backing ``tokenizers.Tokenizer`` if it decodes exactly like ``tokenizer``."""
    rust = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if rust is None or not hasattr(rust, "decode_batch"):
        return None
    try:
        for ids in (probe, probe[-CONTEXT_TOKENS:], probe[: max(1, len(probe) // 2)]):
            if rust.decode(ids, skip_special_tokens=True) != tokenizer.decode(
                    ids, skip_special_tokens=True):
                return None
    except Exception:  # noqa: BLE001 - any mismatch in API: use the slow, exact path
        return None
    return rust


def stop_lookback(stops: Sequence[str]) -> int:
    """Tokens to re-decode before new ones so a stop that began earlier is still seen.

    A stop sequence of c characters spans at most c tokens that produce characters; a few
    extra tokens cover byte-level tokens that only complete a multi-byte character.
    """
    return max((len(s) for s in stops), default=0) + 4


@dataclass
class Finished:
    """Where one sample ended.

    Attributes:
        n_tokens: Tokens recorded (see module docstring).
        completion: Stored text (cut before the stop; EOS not included).
        finish_reason: ``"stop"``, ``"eos"`` or ``"length"``.
    """

    n_tokens: int
    completion: str
    finish_reason: str


def finish_sample(
    decoder: CompletionDecoder,
    ids: Sequence[int],
    *,
    stops: Sequence[str],
    eos_at: int | None,
    max_new_tokens: int,
    checked: int = 0,
    text: str | None = None,
) -> Finished | None:
    """Decide whether a sample has ended, and how.

    Args:
        decoder: The prompt's :class:`CompletionDecoder`.
        ids: All tokens generated so far (including a possible EOS and later tokens).
        stops: Stop sequences.
        eos_at: Index in ``ids`` of the first EOS token, or None.
        max_new_tokens: The length cap.
        checked: A prefix length already known to contain no stop sequence (speeds up the
            search for the exact token that completed the stop).
        text: ``decoder.decode(ids[:limit])`` if the caller already has it, where ``limit``
            is ``eos_at`` or ``len(ids)``.

    Returns:
        A :class:`Finished`, or None while the sample is still running.
    """
    limit = eos_at if eos_at is not None else len(ids)
    if text is None:
        text = decoder.decode(ids[:limit])
    cut = find_stop(text, stops) if stops else -1
    if cut != -1:
        # Smallest m such that the first m tokens already contain a stop sequence: the
        # token at which generation would have ended had we checked after every step.
        lo, hi = max(checked, 0), limit  # invariant: prefix lo has no stop, prefix hi has one
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if find_stop(decoder.decode(ids[:mid]), stops) != -1:
                hi = mid
            else:
                lo = mid
        short = decoder.decode(ids[:hi])
        return Finished(hi, short[: find_stop(short, stops)], "stop")
    if eos_at is not None:
        return Finished(eos_at + 1, text, "eos")
    if len(ids) >= max_new_tokens:
        return Finished(max_new_tokens, text, "length")
    return None
