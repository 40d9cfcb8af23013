r"""Token healing: let the model choose how the prompt's last token(s) join the completion.

What it is for: prompts that end at a token boundary the model rarely saw. The codex-mini
BPE merges a newline with the indentation after it (``"\n   "`` is one token), so a HumanEval
prompt ending in a bare ``"\n"`` token tells the model that the line break is *not* followed
by indentation. Healing backs the prompt off by its trailing token(s), removing their text
``R``, and constrains the first generated token(s) to re-produce ``R``: at a healing step only
tokens whose bytes ``b`` satisfy ``R_left.startswith(b)`` or ``b.startswith(R_left)`` are
allowed (``R_left`` = the part of ``R`` not yet produced), the model's distribution is
renormalised over them (then temperature and nucleus apply as usual), and once the generated
bytes cover ``R`` sampling is unconstrained. The token that exactly re-produces ``R`` is always
allowed, so the original tokenisation stays reachable.

Rules (all exact, documented in :class:`~codexlab.sampling.config.SamplingConfig`):

* **What is backed off**: the prompt's last token, then (up to ``token_healing`` tokens in
  all) earlier tokens while the whole removed text is whitespace. Never the first token of the
  prompt, never a special token, never a token whose bytes are unknown (see below); further
  tokens are also taken while the removed bytes are not valid UTF-8 (a character split over
  byte-level tokens), at most 4.
* **Matching is on bytes**: every vocabulary id's bytes are computed once per tokenizer
  (:func:`vocab_bytes`, cached). Byte-level BPE pieces (GPT-2, codex-mini, Llama 3, Qwen) map
  back to their exact bytes, including pieces that are only part of a UTF-8 character;
  other tokenizers use each id's decoded text (in context, so SentencePiece's leading space is
  kept), ``<0xNN>`` byte-fallback pieces their byte. Ids whose bytes cannot be known (a
  partial character in a non-byte-level tokenizer), special tokens (EOS included) and empty
  pieces are never allowed while healing: they cannot make progress on ``R``.
* **Dead ends are pruned**: a token that is a strict prefix of what is left of ``R`` is allowed
  only if ``R`` can still be completed after it (always so for byte-level BPE, whose single
  bytes are all tokens); so the allowed set is "the tokens that can start a tokenisation of
  ``R`` (or of ``R`` + more text)".
* **Per-row state** is one integer, the number of bytes of ``R`` produced so far; the allowed
  set for "``R`` from offset ``o`` on" is one row of a small boolean table
  (:class:`HealTable`), so the constraint is a cheap gather + mask on any device, CUDA graphs
  included.

What it is not for: choosing tokens (:mod:`~codexlab.sampling.sampler`), or the completion text
(:class:`~codexlab.sampling.text.CompletionDecoder` strips ``R`` from the generated text, so the
stored completion is exactly the text after the original prompt).
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: ``token_healing`` the runner uses for the built-in codex-mini models when none is given.
BUILTIN_TOKEN_HEALING = 1
#: Upper bound of ``token_healing`` (tokens backed off at most).
MAX_TOKEN_HEALING = 8
#: Extra tokens backed off at most to complete a UTF-8 character split across tokens.
_MAX_PARTIAL_EXTRA = 4

_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def default_token_healing(name_or_path: str | None) -> int:
    r"""Return the default ``token_healing`` for a model: on for the built-in family, else 0.

    A built-in model is a shipped short name (``codex-mini-3m``), a shipped model's folder, or
    any model folder whose name starts with ``codex-mini`` (a copy trained elsewhere). Their
    v1 tokenizer merges ``"\n"`` with the following indentation, the case healing fixes.

    Args:
        name_or_path: What the user gave as the model (short name, folder or hub id).

    Returns:
        :data:`BUILTIN_TOKEN_HEALING` for a built-in model, else 0.
    """
    if not name_or_path:
        return 0
    try:
        from codexlab.models import builtin_models
        from codexlab.models.configs import FAMILY
    except ImportError:
        return 0
    try:
        shipped = builtin_models(variant="*")
    except Exception:  # noqa: BLE001 - an unreadable models folder: no built-ins
        shipped = {}
    if name_or_path in shipped:
        return BUILTIN_TOKEN_HEALING
    p = Path(str(name_or_path)).expanduser()
    try:
        if p.resolve() in set(shipped.values()):
            return BUILTIN_TOKEN_HEALING
        if p.name.startswith(FAMILY) and (p / "config.json").is_file():
            return BUILTIN_TOKEN_HEALING
    except OSError:
        return 0
    return 0


def normalize_token_healing(value: Any) -> int | None:
    """Validate a ``token_healing`` setting: ``None`` (auto), a bool, or 0..MAX tokens.

    Raises:
        ValueError: for anything else, with a one-line message.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, np.integer)) and 0 <= int(value) <= MAX_TOKEN_HEALING:
        return int(value)
    raise ValueError(
        f"token_healing must be None (auto), a bool, or the number of prompt tokens to back "
        f"off (0 = off, at most {MAX_TOKEN_HEALING}), got {value!r}")


# -- the vocabulary's bytes ---------------------------------------------------------------------
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (byte-level BPE pieces)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


def _is_byte_level(tokenizer: Any) -> bool:
    """Return whether the tokenizer's decoder is byte-level (pieces spell raw bytes)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    try:
        dec = json.loads(backend.to_str()).get("decoder") or {}
    except Exception:  # noqa: BLE001 - unknown backend: treat as text-level
        return False
    kinds = [dec.get("type")] + [d.get("type") for d in dec.get("decoders") or []]
    return "ByteLevel" in kinds


@dataclass
class VocabBytes:
    """Every vocabulary id's bytes, for one tokenizer.

    Attributes:
        pieces: ``pieces[id]``: the id's bytes, or None where they are unknown or the id is
            special (never allowed while healing).
        lengths: int64 ``(len(pieces),)`` byte lengths (0 for None and empty pieces).
        by_first: First byte -> int64 array of the ids whose bytes start with it.
        byte_level: Whether the bytes came from a byte-level BPE's pieces.
    """

    pieces: list[bytes | None]
    lengths: np.ndarray
    by_first: dict[int, np.ndarray]
    byte_level: bool

    def allowed_ids(self, left: bytes) -> np.ndarray:
        """Return the ids allowed while ``left`` (non-empty) is still to be produced.

        An id is allowed when its bytes ``b`` are non-empty and ``left.startswith(b)`` or
        ``b.startswith(left)``.
        """
        cand = self.by_first.get(left[0])
        if cand is None:
            return np.zeros(0, dtype=np.int64)
        keep = [int(i) for i in cand
                if left.startswith(self.pieces[i]) or self.pieces[i].startswith(left)]
        return np.asarray(keep, dtype=np.int64)


_CACHE: weakref.WeakKeyDictionary[Any, VocabBytes] = weakref.WeakKeyDictionary()


def vocab_bytes(tokenizer: Any) -> VocabBytes:
    """Return the bytes of every vocabulary id of ``tokenizer`` (computed once, cached).

    See the module docstring for how each kind of tokenizer is handled.
    """
    try:
        return _CACHE[tokenizer]
    except (KeyError, TypeError):
        pass
    vb = _build_vocab_bytes(tokenizer)
    try:
        _CACHE[tokenizer] = vb
    except TypeError:  # not weak-referenceable: recompute next time
        pass
    return vb


def _build_vocab_bytes(tokenizer: Any) -> VocabBytes:
    size = len(tokenizer)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    added: dict[int, Any] = dict(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    special |= {i for i, t in added.items() if getattr(t, "special", False)}
    pieces: list[bytes | None] = [None] * size
    byte_level = _is_byte_level(tokenizer)
    todo: list[int] = []
    if byte_level:
        back = {c: b for b, c in _bytes_to_unicode().items()}
        for i, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(size)))):
            if i in special or piece is None:
                continue
            if i in added:  # added tokens keep their literal content
                pieces[i] = str(getattr(added[i], "content", piece)).encode("utf-8")
            elif all(c in back for c in piece):
                pieces[i] = bytes(back[c] for c in piece)
            else:
                todo.append(i)
    else:
        todo = [i for i in range(size) if i not in special]
    if todo:
        _text_pieces(tokenizer, todo, pieces)
    lengths = np.array([len(p) if p is not None else 0 for p in pieces], dtype=np.int64)
    firsts: dict[int, list[int]] = {}
    for i, p in enumerate(pieces):
        if p:
            firsts.setdefault(p[0], []).append(i)
    by_first = {b: np.asarray(ids, dtype=np.int64) for b, ids in firsts.items()}
    return VocabBytes(pieces, lengths, by_first, byte_level)


def _text_pieces(tokenizer: Any, ids: list[int], pieces: list[bytes | None]) -> None:
    """Fill ``pieces[i]`` from decoded text, decoded after an anchor to keep leading spaces."""
    anchor = list(tokenizer.encode("a", add_special_tokens=False))[-1:]
    base = tokenizer.decode(anchor) if anchor else ""
    texts = tokenizer.batch_decode([anchor + [i] for i in ids])
    names = tokenizer.convert_ids_to_tokens(ids)
    for i, text, name in zip(ids, texts, names, strict=True):
        if text.startswith(base):
            text = text[len(base):]
        else:
            text = tokenizer.decode([i])
        if "\ufffd" in text and "\ufffd" not in str(name):
            m = _BYTE_FALLBACK.match(str(name))
            pieces[i] = bytes([int(m.group(1), 16)]) if m else None
        else:
            pieces[i] = text.encode("utf-8")


# -- backing off a prompt ------------------------------------------------------------------
def back_off(vb: VocabBytes, ids: Sequence[int], max_tokens: int) -> tuple[int, bytes]:
    """Choose how many trailing prompt tokens to remove; return ``(count, removed bytes)``.

    Args:
        vb: The tokenizer's :func:`vocab_bytes`.
        ids: The prompt's token ids.
        max_tokens: ``token_healing`` (0 = off).

    Returns:
        ``(k, R)``: the last ``k`` ids are removed and their bytes ``R`` (valid UTF-8) must be
        re-produced; ``(0, b"")`` when the prompt cannot be healed.
    """
    if max_tokens <= 0 or len(ids) < 2:
        return 0, b""
    best: tuple[int, bytes] = (0, b"")
    removed = b""
    for k in range(1, len(ids)):           # keep at least one prompt token
        tid = int(ids[-k])
        piece = vb.pieces[tid] if 0 <= tid < len(vb.pieces) else None
        if not piece:
            break
        cand = piece + removed
        valid = _is_utf8(cand)
        # The last token is always taken; an earlier one must be taken when the removed
        # bytes start inside a character, and may be taken (within the budget) while the
        # removed text stays whitespace.
        forced = k == 1 or not _is_utf8(removed)
        if forced:
            if k > max_tokens + _MAX_PARTIAL_EXTRA:
                break
        elif k > max_tokens or not (valid and cand.decode("utf-8").isspace()):
            break
        removed = cand
        if valid:
            best = (k, removed)
    return best


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- the allowed-set table -------------------------------------------------------------------
class HealTable:
    """Allowed-token masks for every suffix of every removed text ``R`` of a run.

    Row 0 allows every token (a row that is not healing); the rows of one ``R`` are
    contiguous, ``base + o`` holding the allowed set while ``R[o:]`` is left to produce.

    Args:
        vb: The tokenizer's :func:`vocab_bytes`.
        vocab: Logit width (may exceed the tokenizer's size; extra ids are never allowed
            while healing).
    """

    def __init__(self, vb: VocabBytes, vocab: int) -> None:
        self.vb = vb
        self.vocab = int(vocab)
        self.base: dict[bytes, int] = {}
        self._rows: list[np.ndarray] = [np.ones(self.vocab, dtype=bool)]
        lengths = np.zeros(self.vocab, dtype=np.int64)
        n = min(self.vocab, len(vb.lengths))
        lengths[:n] = vb.lengths[:n]
        self.token_len = lengths

    def add(self, removed: bytes) -> int:
        """Add the masks of ``removed`` (once) and return its base row."""
        if not removed:
            return 0
        if removed in self.base:
            return self.base[removed]
        base = len(self._rows)
        n = len(removed)
        rows: list[np.ndarray] = [np.zeros(0, dtype=bool)] * n
        viable = [False] * n + [True]      # viable[o]: R[o:] can still be produced
        lengths = self.vb.lengths
        for o in range(n - 1, -1, -1):
            ids = self.vb.allowed_ids(removed[o:])
            ids = ids[ids < self.vocab]
            # A token that is a strict prefix of what is left must lead somewhere: drop those
            # after which R could not be completed (never happens with byte-level BPE, whose
            # single bytes are all tokens; the original tokens always stay allowed).
            ends = o + lengths[ids]
            keep = np.array([e >= n or viable[int(e)] for e in ends], dtype=bool)
            ids = ids[keep] if ids.size else ids
            row = np.zeros(self.vocab, dtype=bool)
            row[ids] = True
            viable[o] = bool(ids.size)
            # An unreachable offset gets an all-true row so no row is ever empty (NaN).
            rows[o] = row if ids.size else np.ones(self.vocab, dtype=bool)
        self._rows.extend(rows)
        self.base[removed] = base
        return base

    @property
    def rows(self) -> int:
        """Rows of the table (1 + the total length of the distinct removed texts)."""
        return len(self._rows)

    def tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """Return the ``(rows, vocab)`` boolean table."""
        return torch.from_numpy(np.stack(self._rows)).to(device)


def allowed_rows(table: torch.Tensor, base: torch.Tensor, off: torch.Tensor,
                 length: torch.Tensor) -> torch.Tensor:
    """Return each row's allowed set ``(rows, vocab)``: all tokens once healed (row 0).

    Args:
        table: :meth:`HealTable.tensor`.
        base: int64 ``(rows,)`` first table row of each row's removed text.
        off: int64 ``(rows,)`` bytes of it produced so far.
        length: int64 ``(rows,)`` its length in bytes (0: no healing).
    """
    idx = torch.where(off < length, base + off, torch.zeros_like(off))
    return table.index_select(0, idx)


def advance(off: torch.Tensor, length: torch.Tensor, token_len: torch.Tensor,
            tokens: torch.Tensor) -> torch.Tensor:
    """Return the produced-bytes offsets after ``tokens`` (capped at ``length``)."""
    return torch.minimum(off + token_len.index_select(0, tokens.view(-1)), length)
