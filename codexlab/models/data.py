"""The prepared training data of the family: corpus + tokenizer + token files, cached.

What it is for: one call, :func:`prepare_data`, that builds the corpus
(:mod:`codexlab.models.corpus`), trains the tokenizer (:mod:`codexlab.models.tokenizer`),
measures the whitespace-token saving, tokenises every kept file into flat ``uint16`` token
files (``train.bin``, ``heldout.bin``; documents separated by EOS) and writes the full
manifest and a compact summary. Everything lands in a cache folder under the results
directory (hundreds of MB: never committed); the compact summary is copied to
``data/codex_mini_corpus.json`` by the trainer. What it is not for: batching or training.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codexlab.paths import results_dir

#: Text sampled from the training split to train the tokenizer (BPE statistics saturate
#: long before the whole corpus; the whole corpus would cost minutes on two cores).
TOKENIZER_SAMPLE_BYTES = 40_000_000
#: Smaller sample for the with/without space-runs comparison (trains two tokenizers).
MEASURE_SAMPLE_BYTES = 8_000_000


def default_cache_dir() -> Path:
    """Return the folder that holds the prepared corpus (``<results>/codex-mini-corpus``)."""
    return results_dir() / "codex-mini-corpus"


@dataclass(frozen=True)
class PreparedData:
    """Paths of a prepared corpus cache."""

    root: Path

    @property
    def tokenizer_path(self) -> Path:
        """``tokenizers`` JSON of the family tokenizer."""
        return self.root / "tokenizer.json"

    @property
    def summary_path(self) -> Path:
        """Compact corpus + tokenizer statistics (JSON)."""
        return self.root / "summary.json"

    @property
    def manifest_path(self) -> Path:
        """Full per-file manifest (gzipped JSONL)."""
        return self.root / "manifest.jsonl.gz"

    def tokens(self, split: str) -> np.ndarray:
        """Return the token ids of ``split`` as a read-only memory map (empty file: ``(0,)``)."""
        path = self.root / f"{split}.bin"
        # numpy cannot map an empty file; a split can be empty (a held-out function set of a
        # small corpus), and its users see zero tokens, not an exception.
        if path.stat().st_size == 0:
            return np.zeros(0, dtype=np.uint16)
        return np.memmap(path, dtype=np.uint16, mode="r")

    def loss_mask(self, split: str) -> np.ndarray | None:
        """Return ``split``'s per-token mask (1 = completion token), or None if it has none.

        Only the function-level set has one (:mod:`codexlab.models.functions`): 0 marks the
        prompt (signature + docstring), whose loss training may weight down.
        """
        path = self.root / f"{split}.mask.bin"
        if not path.exists():
            return None
        if path.stat().st_size == 0:
            return np.zeros(0, dtype=np.uint8)
        return np.memmap(path, dtype=np.uint8, mode="r")

    def summary(self) -> dict:
        """Return the stored summary."""
        return json.loads(self.summary_path.read_text())

    def record(self) -> dict:
        """Return the summary plus, once mined, the function-level set's counts (``functions``).

        This is what ``data/codex_mini_corpus.json`` records for the shipped family; the
        function set's counts live in their own file (``functions.json``) because the set is
        mined after the corpus, by :func:`codexlab.models.functions.prepare_functions`.
        """
        out = self.summary()
        functions = self.root / "functions.json"
        if functions.exists():
            out["functions"] = json.loads(functions.read_text())
        return out

    def exists(self) -> bool:
        """Return whether every file of the cache is present."""
        return all(
            p.exists()
            for p in (self.tokenizer_path, self.summary_path, self.root / "train.bin",
                      self.root / "heldout.bin")
        )


def _sample(texts: list[str], idx: list[int], max_bytes: int) -> list[str]:
    """Return texts of ``idx`` in order until ``max_bytes`` (UTF-8 length ~ len) is reached."""
    out, total = [], 0
    for i in idx:
        out.append(texts[i])
        total += len(texts[i])
        if total >= max_bytes:
            break
    return out


def prepare_data(
    cache_dir: Path | None = None,
    roots: list[Path] | None = None,
    problems=None,
    vocab_size: int = 8192,
    held_out_fraction: float = 0.01,
    max_files: int | None = None,
    force: bool = False,
    progress: bool = True,
    tokenizer_file: Path | None = None,
    log: bool | None = None,
) -> PreparedData:
    """Build (or reuse) the corpus cache and return its paths.

    Args:
        cache_dir: Where to write; default :func:`default_cache_dir`.
        roots: Source directories; default stdlib + site-packages.
        problems: Decontamination problems; default HumanEval.
        vocab_size: BPE vocabulary size.
        held_out_fraction: Share of files in the held-out split.
        max_files: Cap on kept files, drawn over all packages (see
            :func:`codexlab.models.corpus.build_corpus`).
        force: Rebuild even if the cache exists.
        progress: Show the corpus scan's progress bar.
        log: Print a line per step (corpus, tokenizer, token files); None: as ``progress``.
            The command line's ``--no-progress`` keeps these lines and drops the bar.
        tokenizer_file: Use this tokenizer (e.g. a trained model's ``tokenizer.json``) instead
            of training one; a cache built with another vocabulary is rebuilt. Resuming
            training on another machine needs this: its corpus differs, the tokenizer must not.

    Returns:
        The :class:`PreparedData` handle.
    """
    from codexlab.models.corpus import build_corpus
    from codexlab.models.tokenizer import (
        EOS_TOKEN,
        load_tokenizer,
        measure_space_token_reduction,
        tokenizer_version,
        train_bpe,
    )

    log = progress if log is None else log
    data = PreparedData(Path(cache_dir or default_cache_dir()))
    given = load_tokenizer(tokenizer_file) if tokenizer_file else None
    if data.exists() and not force:
        if given is None or load_tokenizer(data.tokenizer_path).get_vocab() == given.get_vocab():
            return data
        if log:
            print(f"corpus cache {data.root} has another tokenizer; rebuilding", flush=True)
    data.root.mkdir(parents=True, exist_ok=True)
    if log:
        print(f"building the corpus cache in {data.root} from "
              f"{', '.join(str(r) for r in roots) if roots else 'the stdlib and site-packages'}"
              f"{f' (at most {max_files} files)' if max_files else ''}"
              f"{'' if given else ', then training a BPE tokenizer'}: minutes on a CPU, once "
              "(--max-files caps the corpus; --tokenizer data/tokenizer/codex-mini-v2.json "
              "skips the BPE)", flush=True)
    t0 = time.time()
    corpus = build_corpus(roots, problems, held_out_fraction, max_files, progress=progress)
    t_corpus = time.time() - t0
    # Hash order: deterministic and mixes packages, so a prefix of the stream is representative.
    train_idx = sorted(corpus.split_indices("train"), key=lambda i: corpus.files[i].sha256)
    held_idx = sorted(corpus.split_indices("heldout"), key=lambda i: corpus.files[i].sha256)
    if not train_idx or not held_idx:
        raise ValueError("corpus too small: need at least one train and one held-out file")
    if log:
        print(f"corpus: {len(train_idx)} train + {len(held_idx)} held-out files "
              f"in {t_corpus:.0f}s; dropped {dict(corpus.dropped)}", flush=True)

    t1 = time.time()
    if given is not None:
        tok = given
    else:
        tok = train_bpe(_sample(corpus.texts, train_idx, TOKENIZER_SAMPLE_BYTES), vocab_size)
    if tok.get_vocab_size() > 65535:
        raise ValueError("token files are uint16; vocab_size must be < 65536")
    tok.save(str(data.tokenizer_path))
    t_tok = time.time() - t1
    held_texts = [corpus.texts[i] for i in held_idx]
    if given is None:
        measure_train = _sample(corpus.texts, train_idx, MEASURE_SAMPLE_BYTES)
        measure = measure_space_token_reduction(measure_train, held_texts, vocab_size)
        measure["note"] = (
            "every tokenizer trained on the same sample of the training split "
            f"(~{MEASURE_SAMPLE_BYTES / 1e6:.0f} MB), counted on the whole held-out split"
        )
    else:
        # The tokenizer was measured where it was trained; training three more BPEs here
        # would only cost time (on the GPU machine, time taken from training).
        measure = {"note": f"not measured: tokenizer given ({tokenizer_file})"}
    if log:
        print(f"tokenizer trained in {t_tok:.0f}s; space-run tokens: {measure}", flush=True)

    eos = tok.token_to_id(EOS_TOKEN)
    for split, idx in (("train", train_idx), ("heldout", held_idx)):
        n = 0
        with open(data.root / f"{split}.bin", "wb") as fh:
            for start in range(0, len(idx), 512):
                chunk = idx[start : start + 512]
                encoded = tok.encode_batch([corpus.texts[i] for i in chunk])
                for i, enc in zip(chunk, encoded, strict=True):
                    ids = np.asarray(enc.ids + [eos], dtype=np.uint16)
                    corpus.files[i].tokens = len(enc.ids)
                    fh.write(ids.tobytes())
                    n += len(ids)
        if log:
            print(f"{split}: {n:,} tokens", flush=True)
    corpus.write_manifest(data.manifest_path)
    summary = corpus.summary()
    summary["tokenizer"] = {"vocab_size": tok.get_vocab_size(), "type": "byte-level BPE",
                            "version": tokenizer_version(tok),
                            "sample_bytes": None if given else TOKENIZER_SAMPLE_BYTES,
                            "from_file": str(tokenizer_file) if given else None,
                            "space_runs": measure}
    summary["seconds"] = {"corpus": round(t_corpus, 1), "tokenizer": round(t_tok, 1),
                          "total": round(time.time() - t0, 1)}
    summary["held_out_fraction"] = held_out_fraction
    data.summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return data
