"""The ``openai`` sampling backend: any OpenAI-compatible ``/v1/completions`` server.

What it is for: drawing the Codex protocol's samples from a model served elsewhere (vLLM,
SGLang, TGI, llama.cpp, a hosted API) with a bounded number of requests in flight, retries
with backoff, per-sample seeds and per-token log-probs, yielding rows in the store's format
(:func:`~codexlab.sampling.backends.server_row`) as requests finish, so the store-backed run
(:func:`~codexlab.sampling.sample_to_store`) commits them and a killed run resumes with only
the missing indices.

What it is not for: starting or configuring servers, chat endpoints (the Codex protocol
continues a raw prompt), or token healing (it constrains the first sampled token, which an
API cannot express; a run that asks for it is refused).

HTTP, retries and backoff are the official ``openai`` client's (a well-kept library, also
used by every server's own examples): retried are connection errors, timeouts, HTTP
408/409/429 and 5xx, honouring ``Retry-After``. A 200 response whose body is not a valid
completion (truncated JSON, missing fields) is retried here the same number of times, since
it is a transient failure of a proxy or server, not an answer.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from codexlab.sampling.backends import (
    BackendConfig,
    BackendError,
    prompt_of,
    sample_seed,
    server_row,
    work_items,
)


def _client(backend: BackendConfig) -> Any:
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendError("the openai backend needs the openai package: pip install "
                           "'codexlab[serve]' (or pip install openai)") from exc
    return openai.OpenAI(base_url=backend.base_url, api_key=backend.api_key(),
                         max_retries=int(backend.max_retries),
                         timeout=float(backend.request_timeout_s))


class OpenAISampler:
    """Samples through an OpenAI-compatible completions endpoint.

    Args:
        backend: The server settings (:class:`~codexlab.sampling.backends.BackendConfig`).
        model: The run's model name (the served id when ``backend.served_model`` is empty).
        cfg: The :class:`~codexlab.sampling.SamplingConfig` (``token_healing`` must be off).

    Raises:
        BackendError: token healing asked for, or the openai package missing.
    """

    def __init__(self, backend: BackendConfig, model: str, cfg: Any) -> None:
        if cfg.token_healing:
            raise BackendError(
                "token healing needs the local engine (it constrains the first sampled token "
                "to re-produce the prompt's last token, which a completions API cannot "
                "express); sample with --no-token-healing, or with --backend hf")
        self.backend = backend
        self.cfg = cfg
        self.model = backend.served_model or model
        self.client = _client(backend)
        self.stats: dict[str, Any] = {"tokens": 0, "seconds": 0.0, "requests": 0,
                                      "retries": 0, "samples": 0, "redrawn": 0}
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        """Return the backend settings and served model for the run's provenance."""
        return {**self.backend.describe(), "served_model": self.model}

    def _params(self, prompt: str, n: int, seed: int) -> dict[str, Any]:
        cfg = self.cfg
        params: dict[str, Any] = {
            "model": self.model, "prompt": prompt, "n": n, "max_tokens": int(cfg.max_new_tokens),
            "temperature": float(cfg.temperature), "top_p": float(cfg.top_p), "logprobs": 1,
            "seed": seed, "stream": False,
        }
        if cfg.stop:
            params["stop"] = list(cfg.stop)
        return params

    def _hint(self, status: int) -> str:
        """Return what to check for an HTTP error status."""
        env = self.backend.api_key_env
        if status in (401, 403):
            state = "set" if os.environ.get(env) else "not set"
            return (f"The API key is read from ${env} (--api-key-env), which is {state} here; "
                    "set it to the key the server expects")
        if status == 404:
            return ("Is --base-url the API root, ending in /v1 (e.g. http://HOST:8000/v1), and "
                    f"does the server serve {self.model!r} (--served-model)?")
        return ("Check --served-model, and that the server accepts the fields sent (n, "
                "temperature, top_p, max_tokens, stop, logprobs, seed, and --extra-body)")

    def check_model(self) -> None:
        """Refuse a server whose model list does not hold the served id.

        A server that ignores the ``model`` field (llama.cpp does) would otherwise answer
        with whatever it serves, stored under a name it is not. Servers without
        ``/v1/models`` are not checked.

        Raises:
            BackendError: the server lists models and the served id is not among them, or
                it refuses the key (401/403).
        """
        import openai

        try:
            listed = [m.id for m in self.client.with_options(max_retries=0).models.list()]
        except openai.APIStatusError as exc:
            if exc.status_code in (401, 403):
                raise BackendError(f"server {self.backend.base_url} refused the API key "
                                   f"(HTTP {exc.status_code}). {self._hint(exc.status_code)}"
                                   ) from None
            return  # no model list here: nothing to check against
        except (openai.APIConnectionError, openai.APITimeoutError):
            return  # the first request reports an unreachable server, with its retries
        if listed and self.model not in listed:
            raise BackendError(
                f"server {self.backend.base_url} serves {listed}, not {self.model!r}: pass the "
                "served id as --served-model (or --model)")

    def request(self, task_id: str, prompt: str, idxs: list[int]) -> list[dict[str, Any]]:
        """Draw the samples ``idxs`` of one task in one request; return their rows.

        Raises:
            BackendError: the server refused the request (4xx other than 408/409/429: a bad
                or unsupported parameter; its message is quoted), kept failing after the
                retries, returned fewer choices than asked, or no log-probs.
        """
        import openai

        seed = sample_seed(self.cfg.seed, task_id, idxs[0])
        params = self._params(prompt, len(idxs), seed)
        where = f"server {self.backend.base_url}"
        attempts = int(self.backend.max_retries) + 1
        for attempt in range(attempts):
            try:
                resp = self.client.completions.create(
                    **params, extra_body=dict(self.backend.extra_body) or None)
                choices = sorted(resp.choices, key=lambda c: c.index)
                if len(choices) != len(idxs):
                    raise BackendError(
                        f"{where} returned {len(choices)} completion(s) for n={len(idxs)}; it "
                        "ignores `n` (llama.cpp does): use samples_per_request=1 "
                        "(--samples-per-request 1)")
                rows = []
                for idx, ch in zip(idxs, choices, strict=True):
                    lp = ch.logprobs
                    if lp is None or lp.token_logprobs is None:
                        raise BackendError(
                            f"{where} returned no log-probs for {task_id}: it must support "
                            "the completions API's `logprobs` field (vLLM, SGLang, TGI and "
                            "llama.cpp do)")
                    rows.append(server_row(
                        task_id, idx, ch.text or "", lp.token_logprobs,
                        finish_reason=ch.finish_reason, stops=self.cfg.stop,
                        stop_reason=getattr(ch, "stop_reason", None), tokens=lp.tokens,
                        source=where))
                with self._lock:
                    self.stats["requests"] += 1
                    self.stats["retries"] += attempt
                return rows
            except openai.APIStatusError as exc:
                # 408/409/429/5xx were already retried by the client; the rest is an answer.
                raise BackendError(
                    f"{where} refused the request for {task_id} (HTTP {exc.status_code}): "
                    f"{_message(exc)}. {self._hint(exc.status_code)}") from None
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:
                raise BackendError(
                    f"cannot reach {where} after {attempts} attempt(s): {exc}. Is the server "
                    "running, and is --base-url its API root (ending in /v1)?") from None
            except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError,
                    KeyError) as exc:
                # A 200 whose body is not a completion (truncated JSON, missing fields).
                if attempt + 1 >= attempts:
                    raise BackendError(
                        f"{where} kept returning malformed completions for {task_id} "
                        f"({attempts} attempt(s)); last: {type(exc).__name__}: {exc}"
                        ) from None
                time.sleep(min(8.0, 0.5 * 2 ** attempt) * (0.75 + 0.5 * random.random()))
        raise AssertionError("unreachable")  # pragma: no cover

    def run(self, problems: Mapping[str, Any], indices: Mapping[str, Iterable[int]],
            *, progress: bool = True) -> Iterator[dict[str, Any]]:
        """Yield one row per sample as its request finishes (any order).

        At most ``max_in_flight`` requests are outstanding; on an error or an interrupt the
        rows already yielded stay valid, requests not yet sent are never sent, and requests in
        flight are abandoned (their samples stay missing and a rerun draws them).
        """
        self.check_model()
        group = int(self.backend.samples_per_request)
        wanted = {t: {int(i) for i in v} for t, v in indices.items()}
        # Whole aligned blocks (see work_items): rows of a block's indices the store already
        # holds are drawn again, for exact seeds, and dropped here.
        items = work_items(problems, wanted, group, n=int(self.cfg.n))
        total = sum(len(v) for v in wanted.values())
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, unit="sample", desc=f"sampling ({self.model})",
                       dynamic_ncols=True)
        prompts: dict[str, str] = {}
        limit = int(self.backend.max_in_flight)
        pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="codexlab-openai")
        pending: set[Future[list[dict[str, Any]]]] = set()
        t0 = time.perf_counter()
        try:
            exhausted = False
            while True:
                while not exhausted and len(pending) < limit:
                    nxt = next(items, None)
                    if nxt is None:
                        exhausted = True
                        break
                    task_id, idxs = nxt
                    if task_id not in prompts:
                        prompts[task_id] = prompt_of(problems[task_id], self.cfg.strip_prompt)
                    pending.add(pool.submit(self.request, task_id, prompts[task_id], idxs))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    for row in fut.result():
                        if row["idx"] not in wanted[row["task_id"]]:
                            self.stats["redrawn"] += 1
                            continue
                        self.stats["tokens"] += int(row["n_tokens"])
                        self.stats["samples"] += 1
                        yield row
                        if bar is not None:
                            bar.update(1)
                if bar is not None:
                    secs = time.perf_counter() - t0
                    bar.set_postfix(tok_s=f"{self.stats['tokens'] / max(secs, 1e-9):.0f}",
                                    refresh=False)
        finally:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            self.stats["seconds"] += time.perf_counter() - t0
            if bar is not None:
                bar.close()


def _message(exc: Any) -> str:
    """Return the server's error message of an ``APIStatusError`` (its JSON ``message``)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:500]
        if isinstance(body.get("detail"), (str, list)):
            return str(body["detail"])[:500]
    return str(getattr(exc, "message", exc))[:500]


__all__ = ["OpenAISampler"]
