"""Function-level fine-tuning data (a Codex-S analogue) mined from the training split.

What it is for: extracting standalone, documented functions from the corpus's *training*
files, so a second training stage can show small models many HumanEval-shaped documents: the
paper's Codex-S was fine-tuned on standalone functions (signature + docstring -> body) and
gained much more pass@k than size alone gives (Codex paper §4). Each function is split into a
*prompt* (everything up to and including the docstring's line) and a *body*; the two are
tokenised separately, exactly as HumanEval's prompt and a completion are, and written to
``functions.bin`` (token ids) with ``functions.mask.bin`` (1 for body and EOS tokens, 0 for
prompt tokens) so training can weight the loss of the prompt down (Codex-S masked it;
``TrainConfig.prompt_loss_weight``). What it is not for: held-out evaluation (held-out files
are never mined).

Filters (each counted in the stats): module-level, undecorated, first parameter not
``self``/``cls``; a docstring of at least :data:`MIN_DOCSTRING_CHARS` characters; a body of
:data:`MIN_BODY_LINES`..:data:`MAX_BODY_LINES` lines; the dedented function parses on its
own; exact duplicates after whitespace normalisation removed; **decontaminated** against
HumanEval: dropped if it contains a problem's prompt or non-trivial canonical body (the
corpus :class:`~codexlab.models.corpus.Decontaminator`) or its docstring contains the first
sentence of a HumanEval docstring.

The Codex-S set (:func:`prepare_functions`, set version :data:`FUNCTION_SET_VERSION`) keeps
only **self-contained** functions: every name the function reads from module scope (in its
body, defaults, annotations) is a builtin or is bound by one of its module's absolute
imports, and those imports open the prompt, as HumanEval's prompts open with theirs
(``from typing import List``). A function that calls a helper or reads a constant of its
module is left out: a HumanEval completion has no such module around it, and a model trained
on them learns to call names that do not exist (the card of codex-mini-s-1.2m as trained on
set v1, T=0.8: 3,663 of its 16,400 samples, 46 % of those that parsed, failed with
``NameError``; on set v3, 20 %). The Codex-D set
(:func:`prepare_docstrings`) keeps every standalone function, imports or not: a docstring
can be written for a function whatever it calls.
"""

from __future__ import annotations

import ast
import builtins
import gzip
import hashlib
import json
import re
import symtable
import textwrap
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np

#: Bodies (after the docstring) with this many lines are kept: one-liners to short algorithms,
#: the range of HumanEval's canonical solutions (1 to 30 lines but for two tasks).
MIN_BODY_LINES, MAX_BODY_LINES = 1, 30
MAX_FUNCTION_CHARS = 3000
MIN_DOCSTRING_CHARS = 20
#: First docstring sentences shorter than this are too generic to call a leak ("Add x and y").
MIN_DOC_SENTENCE_CHARS = 30
_WS = re.compile(r"\s+")

#: Version of the Codex-S set's format; a cached ``functions.bin`` of another version is
#: rebuilt. 1: every standalone documented function; 2: self-contained ones only, their
#: module imports opening the prompt (the Codex-S models shipped in commit a07bf5b); 3: as 2,
#: and a builtin name the module rebinds counts as the module's, every ``import a.x`` that
#: binds ``a`` is written, imports in source order (the shipped Codex-S models since commit
#: 598339b).
FUNCTION_SET_VERSION = 3

#: Names a self-contained function may read without an import. The module attributes that
#: ``dir(builtins)`` also lists (``__name__``, ``__doc__``, ...) are left out: in a function
#: they name its module's, which a HumanEval completion does not have.
#: Fixed, not the running process's: IPython adds ``display``/``get_ipython`` to builtins and
#: hides ``exit``/``quit``, and an interactive session binds ``_``.
_BUILTIN_NAMES = ((frozenset(dir(builtins)) | {"exit", "quit", "copyright", "credits",
                                                "license", "help"})
                  - {"__name__", "__doc__", "__spec__", "__loader__", "__package__", "_",
                     "display", "get_ipython", "__IPYTHON__"})


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip()


def extract_functions(source: str, self_contained: bool = False) -> list[str]:
    r"""Return the standalone documented functions of a module's source, dedented.

    Kept: module-level functions (plain or async, no decorators) whose first parameter is not
    ``self``/``cls``, with a docstring of at least :data:`MIN_DOCSTRING_CHARS` characters and a
    body of :data:`MIN_BODY_LINES`..:data:`MAX_BODY_LINES` lines after it, that parse on their
    own once dedented. Methods are left out: they depend on their class, HumanEval's
    functions do not.

    Args:
        source: A module's source text.
        self_contained: Keep only functions whose module-scope names are builtins or bound
            by the module's absolute imports (:func:`module_names`), each returned with
            those imports first (``"import os\n\n\ndef f(...)"``), as a HumanEval
            prompt; see the module docstring.
    """
    return _extract(source, self_contained)[0]


def _extract(source: str, self_contained: bool) -> tuple[list[str], int]:
    """:func:`extract_functions`, plus how many were left out as not self-contained."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return [], 0
    lines = source.splitlines(keepends=True)
    imports = _module_imports(tree) if self_contained else {}
    # A builtin name the module rebinds (``from numpy import max``, its own ``def open``)
    # means the module's object there, so it needs an import like any other module name.
    rebound = _module_bindings(source) & _BUILTIN_NAMES if self_contained else set()
    out: list[str] = []
    dropped = 0
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
        if not text.endswith("\n"):
            text += "\n"
        if len(text) > MAX_FUNCTION_CHARS or split_function(text) is None:
            continue
        if self_contained:
            needed = _global_names(text)
            if needed is None:  # ast accepts it, the compiler does not: not a function
                continue
            needed -= _BUILTIN_NAMES - rebound
            if not needed <= imports.keys():
                dropped += 1
                continue
            if needed:
                text = (_render_imports([b for n in needed for b in imports[n]]) + "\n\n\n"
                        + text)
        out.append(text)
    return out, dropped


def module_names(function_text: str) -> set[str] | None:
    """Return the names one function reads or writes in module scope, builtins excluded.

    The names its body, nested functions and classes take from the global scope (read,
    written through ``global``, deleted), and those its decorators, defaults and annotations
    read (evaluated in module scope), found by :mod:`symtable`; a reference to the function
    itself (recursion) does not count. As the compiler sees them: an annotation of a local
    variable counts although it is never evaluated, and a class body's ``x = x`` reads a
    global ``x`` that is not counted (both rare).

    Args:
        function_text: The source of one function (dedented).

    Returns:
        The set of names (empty for a function that needs nothing but builtins), or ``None``
        if the text does not compile.
    """
    names = _global_names(function_text)
    return None if names is None else names - _BUILTIN_NAMES


def _global_names(function_text: str) -> set[str] | None:
    """:func:`module_names` with the builtins left in (None if it does not compile)."""
    try:
        top = symtable.symtable(function_text, "<function>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    own = {t.get_name() for t in top.get_children()}
    names = {s.get_name() for s in top.get_symbols() if s.is_referenced()}
    stack = list(top.get_children())
    while stack:
        table = stack.pop()
        names.update(s.get_name() for s in table.get_symbols()
                     if s.is_global() and (s.is_referenced() or s.is_assigned()))
        stack.extend(table.get_children())
    return names - own


def _module_bindings(source: str) -> set[str]:
    """Return the names a module binds at module level (assignments, defs, imports, ...)."""
    try:
        top = symtable.symtable(source, "<module>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    return {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}


_Binding = tuple[int, int, str, str, str]


def _module_imports(tree: ast.Module) -> dict[str, list[_Binding]]:
    """Map each name a module binds by an absolute import to the import(s) that bind it.

    Imports at module level count, also inside module-level ``if``/``try`` blocks (``if
    TYPE_CHECKING:``, ``try: import x except ImportError: ...``), not inside functions or
    classes. In source order the first statement that binds a name wins (in a ``try:``
    fallback, the ``try`` body's), except that every ``import a.x`` binding ``a`` is kept
    (``a.x`` and ``a.y`` are both reachable through ``a``). Relative imports,
    ``__future__`` and ``*`` imports bind nothing here: a HumanEval-like prompt cannot carry
    them. Each binding: (source line, position in the statement, module for ``from`` imports
    or ``""``, imported name, alias or ``""``), enough to write the statement again.
    """
    found: dict[str, list[_Binding]] = {}
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, ast.Import):
            for i, a in enumerate(node.names):
                bound = a.asname or a.name.split(".")[0]
                binding = (node.lineno, i, "", a.name, a.asname or "")
                if bound not in found:
                    found[bound] = [binding]
                elif not a.asname and "." in a.name and not found[bound][0][4]:
                    found[bound].append(binding)
        elif isinstance(node, ast.ImportFrom):
            if node.level or not node.module or node.module == "__future__":
                continue
            for i, a in enumerate(node.names):
                if a.name != "*":
                    found.setdefault(a.asname or a.name,
                                     [(node.lineno, i, node.module, a.name, a.asname or "")])
        elif isinstance(node, ast.If | ast.Try | getattr(ast, "TryStar", ast.Try)):
            blocks = [node.body, *(h.body for h in getattr(node, "handlers", [])),
                      node.orelse, getattr(node, "finalbody", [])]
            # Depth first, so the bindings are met in source order.
            stack[0:0] = [stmt for block in blocks for stmt in block]
    return found


def _render_imports(bindings: list[_Binding]) -> str:
    """Write the import statements for ``bindings`` (from :func:`_module_imports`).

    In source order; the names one module gives are joined in one ``from`` statement, at the
    place of its first.
    """
    order: list[tuple[str, str]] = []  # ("import", "x as y") or ("from", module)
    names: dict[str, list[str]] = {}
    for _, _, module, name, alias in sorted(set(bindings)):
        item = f"{name} as {alias}" if alias else name
        if not module:
            order.append(("import", item))
        elif module in names:
            names[module].append(item)
        else:
            names[module] = [item]
            order.append(("from", module))
    return "\n".join(f"import {what}" if kind == "import"
                     else f"from {what} import {', '.join(names[what])}"
                     for kind, what in order)


def split_function(text: str) -> tuple[str, str] | None:
    r"""Split a function's source into (prompt, body) at the end of its docstring's line.

    The prompt ends with ``"\n"`` as every HumanEval prompt does, and prompt + body is the
    function. Import statements may come first (a self-contained function's, see
    :func:`extract_functions`); they open the prompt. Returns ``None`` if ``text`` is not one
    function with a docstring followed by code, or does not parse on its own.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if (not tree.body or not isinstance(tree.body[-1], ast.FunctionDef | ast.AsyncFunctionDef)
            or not all(isinstance(n, ast.Import | ast.ImportFrom) for n in tree.body[:-1])):
        return None
    fn = tree.body[-1]
    if len(fn.body) < 2 or ast.get_docstring(fn) is None:
        return None
    lines = text.splitlines(keepends=True)
    end = fn.body[0].end_lineno or 0
    if fn.body[1].lineno <= end:  # code on the docstring's own line
        return None
    prompt, body = "".join(lines[:end]), "".join(lines[end:])
    if not body.strip():
        return None
    return prompt, body


class FunctionDecontaminator:
    """Drop functions that leak HumanEval: prompt or canonical body, or docstring sentence."""

    def __init__(self, problems: Mapping[str, object]):
        from codexlab.models.corpus import Decontaminator

        self.files = Decontaminator(problems)
        self.sentences: dict[str, str] = {}
        for tid, prob in problems.items():
            prompt = str(prob["prompt"])  # type: ignore[index]
            try:
                fns = [n for n in ast.parse(prompt).body if isinstance(n, ast.FunctionDef)]
            except SyntaxError:
                continue
            for fn in fns:
                doc = ast.get_docstring(fn) or ""
                first = _norm(re.split(r"(?<=[.!?])\s|\n\s*\n|>>>", doc, maxsplit=1)[0])
                if len(first) >= MIN_DOC_SENTENCE_CHARS:
                    self.sentences[first.lower()] = tid

    def match(self, function_text: str) -> tuple[str, str] | None:
        """Return ``(task_id, kind)`` of the HumanEval problem ``function_text`` leaks, or None."""
        hit = self.files.match(function_text)
        if hit is not None:
            return hit.task_id, hit.kind
        norm = _norm(function_text).lower()
        for sentence, tid in self.sentences.items():
            if sentence in norm:
                return tid, "docstring"
        return None


def _mine_file(job: tuple[str, str, bool]) -> tuple[list[str], int]:
    """Read one manifest file (skipped if its content changed) and extract its functions.

    ``job``: (path, sha256, self_contained). Returns the functions and how many were left
    out as not self-contained.
    """
    path, sha, self_contained = job
    try:
        raw = Path(path).read_bytes()
    except OSError:
        return [], 0
    if hashlib.sha256(raw).hexdigest() != sha:
        return [], 0
    return _extract(raw.decode("utf-8", errors="replace"), self_contained)


def _digest(text: str) -> str:
    """Return the sha256 of a function's whitespace-normalised text (the deduplication key)."""
    return hashlib.sha256(_norm(text).encode()).hexdigest()


def mine_functions(data, workers: int | None = None,
                   problems: Mapping[str, object] | None = None,
                   self_contained: bool = False, split: str = "train") -> tuple[list[str], dict]:
    """Mine, deduplicate and decontaminate one corpus split's standalone functions.

    Args:
        data: A :class:`codexlab.models.data.PreparedData` (its manifest lists the files).
        workers: Processes for parsing (default: all CPUs).
        problems: Problems to decontaminate against; default HumanEval.
        self_contained: Keep only self-contained functions, their imports first (see
            :func:`extract_functions`).
        split: The manifest split whose files are mined: ``"train"`` or ``"heldout"``.

    Returns:
        ``(texts, stats)``: the kept function sources (unique, decontaminated, splittable by
        :func:`split_function`), in a deterministic order, and the counts (files, functions
        mined, those left out as not self-contained, unique, decontaminated hits by kind and
        task).
    """
    import os
    from multiprocessing import Pool

    if problems is None:
        from codexlab.problems import load_humaneval

        problems = load_humaneval()
    with gzip.open(data.manifest_path, "rt", encoding="utf-8") as fh:
        files = [json.loads(line) for line in fh]
    todo = sorted(((f["path"], f["sha256"], self_contained) for f in files
                   if f["split"] == split), key=lambda t: t[1])
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(todo) > 200:
        with Pool(workers) as pool:
            mined = pool.map(_mine_file, todo, chunksize=64)
    else:
        mined = [_mine_file(t) for t in todo]
    funcs = [f for per_file, _ in mined for f in per_file]
    not_self_contained = sum(n for _, n in mined)
    decon = FunctionDecontaminator(problems)
    seen: set[str] = set()
    kept: list[str] = []
    hits: Counter = Counter()
    hit_tasks: set[str] = set()
    for f in funcs:
        h = _digest(f)
        if h in seen:
            continue
        seen.add(h)
        leak = decon.match(f)
        if leak is not None:
            hits[leak[1]] += 1
            hit_tasks.add(leak[0])
            continue
        if split_function(f) is not None:
            kept.append(f)
    stats = {"files": len(todo), "functions": len(funcs) + not_self_contained,
             **({"not_self_contained": not_self_contained} if self_contained else {}),
             "unique_functions": len(seen),
             "decontaminated": dict(sorted(hits.items())),
             "decontaminated_tasks": sorted(hit_tasks), "kept_functions": len(kept)}
    return kept, stats


def unseen_pairs(candidates: list[str], trained: list[tuple[str, str]]
                 ) -> list[tuple[str, str]]:
    """Return the (prompt, body) pairs of ``candidates`` that training has not seen.

    A candidate is left out when its body is a trained body, whitespace-normalised (the
    same code under another docstring or import line would make a validation loss read as
    generalisation when it is recall), or its whole text is a trained function's (prompt +
    body; in practice implied by the body rule, kept as the stated criterion). Order is
    kept; a candidate :func:`split_function` cannot split is left out too.

    Args:
        candidates: Function sources (e.g. the held-out packages', from
            :func:`mine_functions`).
        trained: The training set's (prompt, body) pairs, from :func:`split_function`.
    """
    seen = {_digest(p + b) for p, b in trained} | {_digest(b) for _, b in trained}
    return [parts for f in candidates if _digest(f) not in seen
            and (parts := split_function(f)) is not None and _digest(parts[1]) not in seen]


def _write_pairs(data, split: str, pairs: list[tuple[str, str]]) -> tuple[int, int]:
    """Tokenise (context, target) pairs separately; write ``<split>.bin`` and its mask.

    The mask is 1 on target tokens and the EOS after them. Returns (context, target) tokens.
    """
    from codexlab.models.tokenizer import EOS_TOKEN, load_tokenizer

    tok = load_tokenizer(data.tokenizer_path)
    eos = tok.token_to_id(EOS_TOKEN)
    n_ctx = n_tgt = 0
    with open(data.root / f"{split}.bin", "wb") as fh, \
            open(data.root / f"{split}.mask.bin", "wb") as mh:
        for start in range(0, len(pairs), 1024):
            chunk = pairs[start : start + 1024]
            contexts = tok.encode_batch([c for c, _ in chunk])
            targets = tok.encode_batch([t for _, t in chunk])
            for ce, te in zip(contexts, targets, strict=True):
                ids = np.asarray(ce.ids + te.ids + [eos], dtype=np.uint16)
                mask = np.zeros(len(ids), dtype=np.uint8)
                mask[len(ce.ids):] = 1
                fh.write(ids.tobytes())
                mh.write(mask.tobytes())
                n_ctx += len(ce.ids)
                n_tgt += len(te.ids) + 1
    return n_ctx, n_tgt


def _built_from(data) -> dict[str, str | None]:
    """Return the corpus build and tokenizer a set is made from, by their hashes.

    A rebuilt corpus or another tokenizer makes a cached set stale: other files in each
    split, other token ids.
    """
    return {"manifest_sha256": data.summary().get("manifest_sha256"),
            "tokenizer_sha256": hashlib.sha256(data.tokenizer_path.read_bytes()).hexdigest()}


def prepare_functions(data, workers: int | None = None, progress: bool = True,
                      problems: Mapping[str, object] | None = None, force: bool = False) -> dict:
    """Mine the training split of a prepared corpus into ``functions.bin``; return stats.

    Args:
        data: A :class:`codexlab.models.data.PreparedData` (its manifest lists the files).
        workers: Processes for parsing (default: all CPUs).
        progress: Print a summary line.
        problems: Problems to decontaminate against; default HumanEval.
        force: Mine again even if the files exist.

    Returns:
        Counts (files, functions mined, not self-contained, unique, decontaminated hits by
        kind, kept functions, prompt and body tokens), the held-out part's counts
        (``heldout``) and the set's ``version`` (:data:`FUNCTION_SET_VERSION`), also saved as
        ``functions.json`` in the cache. The held-out part (``functions_heldout.bin`` and its
        mask) holds the held-out packages' functions, mined the same way, less any also in
        the training set; training scores it as ``eval.functions_heldout_loss``. A cached set
        of another version, of another corpus build or tokenizer (``built_from``), or without
        the held-out part, is mined again.
    """
    stats_path = data.root / "functions.json"
    if (all((data.root / f).exists() for f in ("functions.bin", "functions.mask.bin",
                                               "functions_heldout.bin",
                                               "functions_heldout.mask.bin"))
            and stats_path.exists() and not force):
        cached = json.loads(stats_path.read_text())
        if (cached.get("version", 1) == FUNCTION_SET_VERSION
                and cached.get("built_from") == _built_from(data)):
            return cached
        if progress:
            print(f"functions: the cached set (version {cached.get('version', 1)}) is not "
                  f"version {FUNCTION_SET_VERSION} of this corpus build and tokenizer; mining "
                  "again", flush=True)
    kept, stats = mine_functions(data, workers, problems, self_contained=True)
    pairs = [parts for f in kept if (parts := split_function(f)) is not None]
    n_prompt, n_body = _write_pairs(data, "functions", pairs)
    # The held-out packages' functions, less any that is also in the training set: the
    # function stage's own validation set (``eval.functions_heldout_loss`` of a card).
    held, _ = mine_functions(data, workers, problems, self_contained=True, split="heldout")
    held_pairs = unseen_pairs(held, pairs)
    h_prompt, h_body = _write_pairs(data, "functions_heldout", held_pairs)
    stats.update({"version": FUNCTION_SET_VERSION, "built_from": _built_from(data),
                  "kept_functions": len(pairs),
                  "tokens": n_prompt + n_body, "prompt_tokens": n_prompt, "body_tokens": n_body,
                  "heldout": {"functions": len(held_pairs), "prompt_tokens": h_prompt,
                              "body_tokens": h_body,
                              "source": "the held-out packages' files, mined the same way, "
                                        "less functions whose text or body is also in "
                                        "the training set"},
                  "format": "prompt (the imports the function needs, if any, then signature + "
                            "docstring, tokenised alone) + body + EOS; functions.mask.bin "
                            "marks body and EOS tokens with 1"})
    stats_path.write_text(json.dumps(stats, indent=2) + "\n")
    if progress:
        print(f"functions: {stats['kept_functions']:,} kept of {stats['functions']:,} mined "
              f"({stats['not_self_contained']:,} not self-contained), {stats['tokens']:,} "
              f"tokens; decontaminated {stats['decontaminated']}; held out: "
              f"{stats['heldout']['functions']:,} functions", flush=True)
    return stats


def prepare_docstrings(data, workers: int | None = None, progress: bool = True,
                       problems: Mapping[str, object] | None = None, force: bool = False) -> dict:
    """Write the Codex-D set ``docstrings.bin``: signature + body, then the docstring.

    The mined, deduplicated, decontaminated functions of :func:`prepare_functions`, but all
    of them, self-contained or not (a docstring can be written whatever a function calls),
    rearranged as the Codex paper's Codex-D training problems ("the function signature, the
    reference solution, and then the docstring", §6) by
    :func:`codexlab.docstrings.function_docstring_document`: the context (signature, body,
    opening quotes) and the target (docstring text, closing quotes) are tokenised separately,
    and ``docstrings.mask.bin`` marks the target and EOS tokens with 1, so training with
    ``prompt_loss_weight=0`` puts the loss on the docstring only.

    Returns:
        Counts (as :func:`prepare_functions`, with context and docstring tokens), also saved
        as ``docstrings.json`` in the cache.
    """
    from codexlab.docstrings import function_docstring_document

    stats_path = data.root / "docstrings.json"
    if ((data.root / "docstrings.bin").exists() and (data.root / "docstrings.mask.bin").exists()
            and stats_path.exists() and not force):
        return json.loads(stats_path.read_text())
    kept, stats = mine_functions(data, workers, problems)
    pairs = [doc for f in kept if (doc := function_docstring_document(f)) is not None]
    n_ctx, n_doc = _write_pairs(data, "docstrings", pairs)
    stats.update({"kept_functions": len(pairs), "tokens": n_ctx + n_doc,
                  "context_tokens": n_ctx, "docstring_tokens": n_doc,
                  "format": "context (signature + body + opening quotes, tokenised alone) + "
                            "docstring + closing quotes + EOS; docstrings.mask.bin marks the "
                            "docstring, closing quotes and EOS with 1"})
    stats_path.write_text(json.dumps(stats, indent=2) + "\n")
    if progress:
        print(f"docstrings: {stats['kept_functions']:,} functions, {stats['tokens']:,} tokens "
              f"({n_doc:,} docstring)", flush=True)
    return stats
