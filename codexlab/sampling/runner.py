"""Model loading and the resumable, store-backed sampling run.

What it is for: :func:`load_model` (built-in short name, local folder or Hugging Face id →
model on its device + tokenizer, with errors that say how to fix the input) and
:func:`sample_to_store` (draw only the sample indices a store lacks, committing finished
samples every few seconds so a ``kill -9`` loses at most the samples in flight). What it is
not for: the decoding itself (:mod:`~codexlab.sampling.engine`) or the store's schema
(:mod:`codexlab.store`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from codexlab.sampling.config import SamplingConfig
from codexlab.sampling.healing import default_token_healing


class ModelLoadError(ValueError):
    """A model name or path cannot be loaded; the message says what to give instead."""


def _builtin_names() -> list[str]:
    try:
        from codexlab.models import builtin_models
    except ImportError:
        return []
    try:
        return list(builtin_models(variant="*"))
    except Exception:  # noqa: BLE001 - only used to improve an error message
        return []


def resolve_model_name(name_or_path: str) -> str:
    """Map a built-in short name to its folder; pass paths and Hugging Face ids through."""
    try:
        from codexlab.models import resolve_model
    except ImportError:
        return name_or_path
    try:
        return resolve_model(name_or_path)
    except (KeyError, ValueError) as exc:
        raise ModelLoadError(str(exc)) from None


def load_model(name_or_path: str, *, device: str | None = None,
               dtype: str | None = None) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, ready for sampling.

    Args:
        name_or_path: Built-in short name (``codex-mini-1.2m``), local folder with
            ``config.json``, or a Hugging Face id (from the local cache or the hub).
        device: Target device; default CUDA, then MPS, then CPU.
        dtype: ``float32``/``bfloat16``/``float16``; default bf16 on CUDA, fp32 elsewhere.

    Returns:
        ``(model, tokenizer)`` with the model in eval mode on ``device``.

    Raises:
        ModelLoadError: The name is neither a built-in model, a model folder nor a loadable id.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from codexlab.sampling.engine import resolve_device, resolve_dtype

    resolved = resolve_model_name(name_or_path)
    path = Path(resolved).expanduser()
    looks_local = path.exists() or resolved.startswith((".", "/", "~")) or resolved.count("/") > 1
    if looks_local and not (path / "config.json").is_file():
        raise ModelLoadError(_load_hint(name_or_path, "no config.json there"))
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    src = str(path) if path.exists() else resolved
    try:
        tokenizer = AutoTokenizer.from_pretrained(src)
        model = AutoModelForCausalLM.from_pretrained(src, dtype=torch_dtype)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(_load_hint(name_or_path, str(exc).splitlines()[0])) from exc
    model.to(dev).eval()
    return model, tokenizer


def _load_hint(name: str, why: str) -> str:
    names = _builtin_names()
    builtins = ", ".join(names) if names else "none trained yet (codexlab train)"
    return (f"cannot load model {name!r}: {why}. Give a built-in name ({builtins}), a local "
            "folder holding a Hugging Face model (config.json + weights + tokenizer), or a "
            "Hugging Face id that is in the local cache")


def resolve_token_healing(cfg: SamplingConfig, model_name_or_path: str) -> SamplingConfig:
    r"""Return ``cfg`` with ``token_healing`` decided: as given, else by the model.

    ``None`` (the default) becomes 1 for a built-in codex-mini model (the v1 tokenizer merged
    ``"\n"`` with the indentation that follows, and every HumanEval prompt ends with a bare
    ``"\n"`` token; kept on for v2 so all built-in sets share one key rule) and 0 for any
    other model
    (:func:`~codexlab.sampling.healing.default_token_healing`). Every caller that keys a
    sample set (:func:`sample_to_store`, the CLI, the figure pipeline through it) resolves
    here, so the default lives in one place.
    """
    if cfg.token_healing is not None:
        return cfg
    return cfg.replace(token_healing=default_token_healing(model_name_or_path))


def sample_set_extra(cfg: SamplingConfig, model_name_or_path: str) -> dict[str, Any]:
    """Return the ``extra`` part of a sample set's key for ``(model, cfg)``.

    Holds what the store's fixed columns do not: ``strip_prompt`` and ``token_healing`` when
    on (absent when off, so sets drawn before either existed keep their ids), and the weights
    fingerprint of a local model. Sets that differ in any of these never share samples.
    """
    cfg = resolve_token_healing(cfg, model_name_or_path)
    extra: dict[str, Any] = {"strip_prompt": True} if cfg.strip_prompt else {}
    if cfg.token_healing:
        extra["token_healing"] = int(cfg.token_healing)
    fingerprint = weights_fingerprint(model_name_or_path)
    if fingerprint:
        extra["weights"] = fingerprint
    return extra


def set_key_rules(model_name_or_path: str, backend: str = "hf") -> dict[str, Any]:
    """Return what a run of ``backend`` with the default token healing puts in its set key.

    ``token_healing``: the model's default (:func:`resolve_token_healing`) on the local engine
    (``hf``), 0 on a remote backend (an API cannot constrain the first token). ``weights``:
    the local folder's :func:`weights_fingerprint`, None for ``openai`` (the server's weights
    are not this machine's folder of the same name; vLLM loads the local folder, so it keeps
    the print). :func:`sample_to_store` writes sets by these rules and
    :func:`codexlab.pipeline.find_set` finds them by the same.
    """
    remote = backend != "hf"
    return {"token_healing": 0 if remote else default_token_healing(model_name_or_path),
            "weights": None if backend == "openai" else weights_fingerprint(model_name_or_path)}


def sample_set_key(model_name_or_path: str, cfg: SamplingConfig, problems_sha256: str,
                   backend: Any = None) -> dict[str, Any]:
    """Return the store key of the set :func:`sample_to_store` draws ``(model, cfg)`` into.

    The keyword arguments of ``Store.ensure_sample_set`` / ``Store.find_sample_set``, so a
    caller can find a set again without loading the model or sampling (a notebook that
    re-plots, a figure stage that counts what is missing).

    Args:
        model_name_or_path: Built-in name, local folder or Hugging Face id.
        cfg: The sampling settings (``token_healing=None``: by :func:`set_key_rules`).
        problems_sha256: The problems hash the set is drawn under.
        backend: A :class:`~codexlab.sampling.backends.BackendConfig`; None or ``hf``: the
            local engine.
    """
    remote = backend is not None and backend.remote
    rules = set_key_rules(model_name_or_path, backend.name if remote else "hf")
    if cfg.token_healing is None:
        cfg = cfg.replace(token_healing=rules["token_healing"])
    extra = sample_set_extra(cfg, model_name_or_path)
    if rules["weights"] is None:
        extra.pop("weights", None)
    if remote:
        extra.update(backend.key_fields(model_name_or_path))
    return dict(model=model_key(model_name_or_path), temperature=cfg.temperature,
                top_p=cfg.top_p, seed=cfg.seed, max_new_tokens=cfg.max_new_tokens,
                stop=list(cfg.stop), problems_sha256=problems_sha256, extra=extra or None)


def prompts_sha256(problems: Mapping[str, Any]) -> str:
    """Hash of the task ids and prompts (used when the caller has no file hash)."""
    h = hashlib.sha256()
    for task_id, prob in problems.items():
        prompt = prob if isinstance(prob, str) else (
            prob["prompt"] if isinstance(prob, Mapping) else prob.prompt)
        h.update(task_id.encode() + b"\0" + str(prompt).encode() + b"\0")
    return h.hexdigest()


def model_key(name_or_path: str) -> str:
    """Return the model field of a sample set: names/ids as given, local paths absolute."""
    p = Path(name_or_path).expanduser()
    return str(p.resolve()) if p.exists() else name_or_path


def weights_fingerprint(name_or_path: str) -> str | None:
    """Return a short fingerprint of a local model's weight files, or None for hub ids.

    Part of the sample-set key, so that a model retrained or trained further under the same
    name (the built-in family is meant to be continued on a GPU) never reuses samples drawn
    from its old weights. Hashes each weight file's name, size and its first and last MiB:
    any real change of the weights changes these, and it stays fast for multi-GB models.
    ``codexlab train``'s exact-resume state (``training_state.pt``) is not weights: a folder
    and its copy without that file (how trained models are shipped) have one fingerprint.
    """
    try:
        from codexlab.models import resolve_model

        resolved = resolve_model(name_or_path)
    except Exception:  # noqa: BLE001 - resolution errors surface later, when loading
        resolved = name_or_path
    d = Path(resolved).expanduser()
    if not d.is_dir():
        return None
    files = sorted(f for f in d.iterdir()
                   if f.suffix in (".safetensors", ".bin", ".pt", ".pth") and f.is_file()
                   and not f.name.startswith("training_state"))
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.name}:{size}:".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), 2)
                h.update(fh.read())
    return h.hexdigest()[:16]


def sample_to_store(
    model_name_or_path: str,
    problems: Mapping[str, Any],
    cfg: SamplingConfig,
    store: Any,
    *,
    progress: bool = True,
    problems_sha256: str | None = None,
    model_and_tokenizer: tuple[Any, Any] | None = None,
    commit_every_s: float = 5.0,
    commit_rows: int = 256,
    backend: Any = None,
) -> str:
    """Draw the samples a store lacks for ``(model, problems, cfg)``; return the set id.

    Resumable: the sample set (model, temperature, top_p, seed, max_new_tokens, stop,
    problems hash, and :func:`sample_set_extra`: strip_prompt, token healing, weights) is the
    cache unit; only indices ``< cfg.n`` missing from it are drawn, and
    because each sample's randomness is keyed by ``(seed, task_id, idx)`` a resumed run
    produces exactly what an uninterrupted one would have. Finished samples are committed in
    one transaction every ``commit_every_s`` seconds or ``commit_rows`` rows, so a SIGKILL
    loses at most those in flight.

    Args:
        model_name_or_path: Built-in name, local folder or Hugging Face id.
        problems: task_id → problem (only these tasks are sampled).
        cfg: Sampling settings (``cfg.n`` is the target count per task;
            ``token_healing=None`` is resolved by :func:`resolve_token_healing`).
        store: A :class:`codexlab.store.Store` or a path to one.
        progress: Show a progress bar.
        problems_sha256: Hash of the problems file (``resolve_problems`` info); default: a
            hash of the given prompts. Use the file hash so task subsets share one set.
        model_and_tokenizer: An already-loaded pair to use instead of loading.
        commit_every_s: Commit buffered samples at least this often.
        commit_rows: ... or once this many are buffered.
        backend: A :class:`~codexlab.sampling.backends.BackendConfig` naming the engine
            (``hf``, ``openai``, ``vllm``); None means ``hf``, the local engine. Remote
            backends add ``backend`` (and the served model id) to the set's key, resolve
            ``token_healing=None`` to off and refuse it on, and draw each sample with its own
            seed (:func:`~codexlab.sampling.backends.sample_seed`).

    Returns:
        The sample set id (``store.samples(set_id)`` reads the rows).

    Raises:
        BackendError: a remote backend cannot sample as asked (its message says why).
    """
    from codexlab.store import Store

    own = not isinstance(store, Store)
    st = Store(store) if own else store
    try:
        return _sample_into(st, model_name_or_path, problems, cfg, progress=progress,
                            problems_sha256=problems_sha256,
                            model_and_tokenizer=model_and_tokenizer,
                            commit_every_s=commit_every_s, commit_rows=commit_rows,
                            backend=backend)
    finally:
        if own:
            st.close()


def _sample_into(st: Any, model_name_or_path: str, problems: Mapping[str, Any],
                 cfg: SamplingConfig, *, progress: bool, problems_sha256: str | None,
                 model_and_tokenizer: tuple[Any, Any] | None, commit_every_s: float,
                 commit_rows: int, backend: Any = None) -> str:
    """Body of :func:`sample_to_store` with an open store."""
    remote = backend is not None and backend.remote
    if cfg.token_healing is None:
        cfg = cfg.replace(token_healing=set_key_rules(
            model_name_or_path, backend.name if remote else "hf")["token_healing"])
    key = sample_set_key(model_name_or_path, cfg, problems_sha256 or prompts_sha256(problems),
                         backend)
    created = st.find_sample_set(**key) is None
    set_id = st.ensure_sample_set(**key)
    missing = st.missing_indices(set_id, list(problems), cfg.n)
    if not missing:
        return set_id
    try:
        return _draw_missing(st, set_id, model_name_or_path, problems, missing, cfg,
                             progress=progress, problems_sha256=problems_sha256,
                             model_and_tokenizer=model_and_tokenizer,
                             commit_every_s=commit_every_s, commit_rows=commit_rows,
                             backend=backend if remote else None)
    except Exception:
        # A run that failed before its first sample (a model that does not load, a server
        # that refuses) leaves no empty set behind to be listed as if it were data. Only a set
        # this call created: another process that found it may be about to fill it (a second
        # run started before this one's set existed still can; the next run of the same key
        # re-creates the set, and `codexlab store check` names such samples meanwhile).
        if created:
            st.discard_empty_set(set_id)
        raise


def _draw_missing(st: Any, set_id: str, model_name_or_path: str, problems: Mapping[str, Any],
                  missing: Mapping[str, list[int]], cfg: SamplingConfig, *, progress: bool,
                  problems_sha256: str | None, model_and_tokenizer: tuple[Any, Any] | None,
                  commit_every_s: float, commit_rows: int, backend: Any) -> str:
    """Draw the ``missing`` samples of the set ``set_id`` (the body of :func:`_sample_into`)."""
    if backend is not None:
        return _sample_remote(st, set_id, backend, model_name_or_path, problems, missing, cfg,
                              progress=progress, problems_sha256=problems_sha256,
                              commit_every_s=commit_every_s, commit_rows=commit_rows)
    if model_and_tokenizer is None:
        model, tokenizer = load_model(model_name_or_path, device=cfg.device, dtype=cfg.dtype)
    else:
        model, tokenizer = model_and_tokenizer

    from codexlab.provenance import collect
    from codexlab.sampling.engine import SamplingEngine

    engine = SamplingEngine(model, tokenizer, cfg)
    todo_problems = {t: problems[t] for t in missing}
    engine.settle(todo_problems, missing)       # record the run's real decode path
    todo = sum(len(v) for v in missing.values())
    config = {"model": model_name_or_path, "set_id": set_id, "sampling": cfg.to_dict(),
              "tasks": len(missing), "todo": todo}
    prov = collect(extra={"engine_mode": engine.mode, "device": str(engine.device),
                          "dtype": str(next(model.parameters()).dtype),
                          "problems_sha256": problems_sha256})
    run_id = st.start_run(kind="sample", config=config, provenance=prov)

    def summary() -> dict[str, Any]:
        s = engine.stats
        rate = round(s["tokens"] / s["seconds"], 1) if s["seconds"] else None
        return {"tokens": s["tokens"], "seconds": round(s["seconds"], 3),
                "tokens_per_s": rate, "batch_size": engine.batch_size,
                "engine_mode": engine.mode, "shared_prefix": engine.shared_prefix,
                "token_healing": engine.token_healing,
                "healed_prompts": s.get("healed_prompts", 0)}

    _store_run(st, set_id, run_id, engine.run(todo_problems, missing, progress=progress),
               todo=todo, summary=summary, commit_every_s=commit_every_s,
               commit_rows=commit_rows)
    return set_id


def _store_run(st: Any, set_id: str, run_id: str, rows: Any, *, todo: int,
               summary: Any, commit_every_s: float, commit_rows: int) -> None:
    """Add ``rows`` to the store as they come and close the run with its status and summary.

    Rows are committed in transactions of ``commit_rows`` or every ``commit_every_s``
    seconds; whatever happens (an error, ``KeyboardInterrupt``), the rows already received
    are committed before the exception propagates, and the run is finished as ``done``,
    ``interrupted`` or ``failed`` (with the error) with ``added``, ``todo`` and
    ``summary()``'s engine figures.
    """
    buf: list[dict[str, Any]] = []
    last = time.monotonic()
    added = 0
    status = "failed"
    info: dict[str, Any] = {}
    try:
        try:
            for row in rows:
                buf.append(row)
                if len(buf) >= commit_rows or time.monotonic() - last >= commit_every_s:
                    added += st.add_samples(set_id, buf, run_id)
                    buf = []
                    last = time.monotonic()
        finally:
            if buf:
                added += st.add_samples(set_id, buf, run_id)
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        info.update({"added": added, "todo": todo, **summary()})
        st.finish_run(run_id, status=status, summary=info)


def _sample_remote(st: Any, set_id: str, backend: Any, model_name_or_path: str,
                   problems: Mapping[str, Any], missing: Mapping[str, list[int]],
                   cfg: SamplingConfig, *, progress: bool, problems_sha256: str | None,
                   commit_every_s: float, commit_rows: int) -> str:
    """Draw the missing samples with a remote backend (``openai``/``vllm``) into the store."""
    from codexlab.provenance import collect
    from codexlab.sampling.backends import open_backend

    sampler = open_backend(backend, model_name_or_path, cfg)
    todo_problems = {t: problems[t] for t in missing}
    todo = sum(len(v) for v in missing.values())
    config = {"model": model_name_or_path, "set_id": set_id, "sampling": cfg.to_dict(),
              "backend": sampler.describe(), "tasks": len(missing), "todo": todo}
    prov = collect(extra={"engine_mode": f"backend:{backend.name}",
                          "backend": sampler.describe(), "problems_sha256": problems_sha256})
    run_id = st.start_run(kind="sample", config=config, provenance=prov)

    def summary() -> dict[str, Any]:
        s = sampler.stats
        rate = round(s["tokens"] / s["seconds"], 1) if s["seconds"] else None
        return {"tokens": s["tokens"], "seconds": round(s["seconds"], 3),
                "tokens_per_s": rate, "requests": s.get("requests", 0),
                "retries": s.get("retries", 0), "redrawn": s.get("redrawn", 0),
                "engine_mode": f"backend:{backend.name}"}

    _store_run(st, set_id, run_id, sampler.run(todo_problems, missing, progress=progress),
               todo=todo, summary=summary, commit_every_s=commit_every_s,
               commit_rows=commit_rows)
    return set_id
