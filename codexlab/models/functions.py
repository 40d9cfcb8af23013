"""Function-level fine-tuning data (a Codex-S analogue) mined from the training split.

What it is for: extracting standalone, documented functions (signature + docstring + body)
from the corpus's *training* files, so a second training stage can show small models many
HumanEval-shaped documents: the paper's Codex-S was fine-tuned on standalone functions and
gained much more pass@k than size alone gives. The mined functions are tokenised into
``functions.bin`` in the corpus cache. What it is not for: decontamination (the files are
already decontaminated) or held-out evaluation (held-out files are never mined).
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np

#: Bodies (after the docstring) with this many lines are kept: one-liners to short algorithms,
#: the range of HumanEval's canonical solutions.
MIN_BODY_LINES, MAX_BODY_LINES = 1, 40
MAX_FUNCTION_CHARS = 3000
MIN_DOCSTRING_CHARS = 20


def extract_functions(source: str) -> list[str]:
    """Return the standalone documented functions of a module's source, dedented.

    Kept: module-level functions (plain or async, no decorators) whose first parameter is not
    ``self``/``cls``, with a docstring of at least :data:`MIN_DOCSTRING_CHARS` characters and a
    body of :data:`MIN_BODY_LINES`..:data:`MAX_BODY_LINES` lines after it. Methods are left
    out: they depend on their class, HumanEval's functions do not.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return []
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.decorator_list:
            continue
        args = node.args.posonlyargs + node.args.args
        if args and args[0].arg in ("self", "cls"):
            continue
        doc = ast.get_docstring(node)
        if not doc or len(doc) < MIN_DOCSTRING_CHARS or len(node.body) < 2:
            continue
        body_lines = (node.end_lineno or node.lineno) - node.body[1].lineno + 1
        if not MIN_BODY_LINES <= body_lines <= MAX_BODY_LINES:
            continue
        text = textwrap.dedent("".join(lines[node.lineno - 1 : node.end_lineno]))
        if len(text) <= MAX_FUNCTION_CHARS:
            out.append(text if text.endswith("\n") else text + "\n")
    return out


def _mine_file(path_and_sha: tuple[str, str]) -> list[str]:
    """Read one manifest file (skipped if its content changed) and extract its functions."""
    path, sha = path_and_sha
    try:
        raw = Path(path).read_bytes()
    except OSError:
        return []
    if hashlib.sha256(raw).hexdigest() != sha:
        return []
    return extract_functions(raw.decode("utf-8", errors="replace"))


def prepare_functions(data, workers: int | None = None, progress: bool = True) -> dict:
    """Mine the training split of a prepared corpus into ``functions.bin``; return stats.

    Args:
        data: A :class:`codexlab.models.data.PreparedData` (its manifest lists the files).
        workers: Processes for parsing (default: all CPUs).
        progress: Print a summary line.

    Returns:
        Counts (files, functions, unique functions, tokens), also saved as
        ``functions.json`` in the cache.
    """
    import os
    from multiprocessing import Pool

    from codexlab.models.tokenizer import EOS_TOKEN, load_tokenizer

    out_bin = data.root / "functions.bin"
    stats_path = data.root / "functions.json"
    if out_bin.exists() and stats_path.exists():
        return json.loads(stats_path.read_text())
    with gzip.open(data.manifest_path, "rt", encoding="utf-8") as fh:
        files = [json.loads(line) for line in fh]
    todo = sorted(((f["path"], f["sha256"]) for f in files if f["split"] == "train"),
                  key=lambda t: t[1])
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(todo) > 200:
        with Pool(workers) as pool:
            mined = pool.map(_mine_file, todo, chunksize=64)
    else:
        mined = [_mine_file(t) for t in todo]
    tok = load_tokenizer(data.tokenizer_path)
    eos = tok.token_to_id(EOS_TOKEN)
    seen: set[str] = set()
    n_funcs = n_tokens = 0
    with open(out_bin, "wb") as fh:
        funcs = [f for per_file in mined for f in per_file]
        n_funcs = len(funcs)
        unique = []
        for f in funcs:
            h = hashlib.sha256(f.encode()).hexdigest()
            if h not in seen:
                seen.add(h)
                unique.append(f)
        for start in range(0, len(unique), 1024):
            for enc in tok.encode_batch(unique[start : start + 1024]):
                ids = np.asarray(enc.ids + [eos], dtype=np.uint16)
                fh.write(ids.tobytes())
                n_tokens += len(ids)
    stats = {"files": len(todo), "functions": n_funcs, "unique_functions": len(seen),
             "tokens": n_tokens}
    stats_path.write_text(json.dumps(stats, indent=2) + "\n")
    if progress:
        print(f"functions: {stats}", flush=True)
    return stats
