"""Serve a model through a real OpenAI-compatible server on this machine (llama.cpp).

What it is for: :func:`llama_cpp_server` starts llama.cpp's server (``python -m
llama_cpp.server`` from ``llama-cpp-python[server]``, ``pip install 'codexlab[serve]'``) for
a built-in model (or any Llama-layout folder with a byte-level BPE tokenizer), exported to
GGUF on first use (:mod:`codexlab.models.gguf`; a codex-mini v2 tokenizer, which llama.cpp
cannot split prompts for, is served with the model's own Hugging Face tokenizer through
llama-cpp-python's ``--hf_pretrained_model_name_or_path``), waits until it answers, and
stops it on exit. ``codexlab serve MODEL`` is the same from the command line. It lets a laptop
try the ``openai`` sampling backend end to end, and it is what the backend's tests and
benchmark run against.

What it is not for: serving at scale. For many GPUs use vLLM (``vllm serve``), SGLang or TGI,
and point ``codexlab sample --backend openai --base-url ...`` at them.

The server is started with the settings the Codex protocol needs from it: float32 KV cache
(so greedy decoding follows the local engine's float32 arithmetic), the raw model's
log-probs (llama.cpp's only kind), and a fixed seed. Its sampling defaults (top-k 40, min-p
0.05, repeat penalty 1.1) are not settable at start-up; requests must override them, which
:data:`LLAMA_CPP_CODEX_FIELDS` does through ``BackendConfig.extra_body``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: Request fields that turn llama.cpp's own sampling defaults off, leaving the Codex
#: protocol's temperature and nucleus (top_p) sampling (``--extra-body`` for llama.cpp).
LLAMA_CPP_CODEX_FIELDS: dict[str, float] = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}


class ServerError(RuntimeError):
    """The server could not be started or did not answer; the message has its log's tail."""


@dataclass(frozen=True)
class Server:
    """A running server.

    Attributes:
        base_url: The API root for ``--base-url`` (``http://127.0.0.1:PORT/v1``).
        served_model: The model id it answers to (``--served-model``).
        pid: The server process id.
        gguf: The GGUF file it serves.
        log: The file that holds the server's stdout and stderr.
        process: The server process (``running()`` says whether it still is).
    """

    base_url: str
    served_model: str
    pid: int
    gguf: Path
    log: Path
    process: subprocess.Popen = field(repr=False, compare=False)

    def running(self) -> bool:
        """Return True while the server process is alive."""
        return self.process.poll() is None


def gguf_cache_dir() -> Path:
    """Return where exported GGUF files are kept (``CODEXLAB_CACHE_DIR`` or ~/.cache/codexlab)."""
    root = os.environ.get("CODEXLAB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "codexlab")
    return Path(root) / "gguf"


def exported_gguf(model: str, cache_dir: str | Path | None = None) -> Path:
    """Return a GGUF export of ``model``, writing it on first use.

    The file name carries the weights' fingerprint and the tokenizer's hash, so retrained
    weights or a changed tokenizer get a new export.
    """
    from codexlab.models import resolve_model
    from codexlab.models.gguf import export_gguf
    from codexlab.sampling.runner import weights_fingerprint

    src = Path(resolve_model(model)).expanduser()
    fp = weights_fingerprint(str(src)) or "nofp"
    tok = src / "tokenizer.json"
    tok_hash = hashlib.sha256(tok.read_bytes()).hexdigest()[:8] if tok.is_file() else "notok"
    out = Path(cache_dir) if cache_dir else gguf_cache_dir()
    path = out / f"{src.name}-{fp}-{tok_hash}.gguf"
    if not path.is_file():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        # The server started by llama_cpp_server tokenizes prompts with the model's own
        # tokenizer where llama.cpp cannot (codex-mini v2), so such a tokenizer may be written.
        export_gguf(src, tmp, hf_tokenizer=True)
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return path


def _free_port(port: int = 0) -> int:
    """Return ``port`` if nothing listens on it on 127.0.0.1 (any free port for 0).

    Raises:
        ServerError: ``port`` is taken (another server's answers would pass for ours).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", int(port)))
        except OSError:
            raise ServerError(f"port {port} on 127.0.0.1 is in use (another server?); "
                              "choose another with --port, or --port 0 for any free one"
                              ) from None
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


@contextlib.contextmanager
def llama_cpp_server(model: str, *, port: int = 0, threads: int = 1, n_ctx: int = 2048,
                     api_key_env: str | None = None, log_dir: str | Path | None = None,
                     startup_timeout_s: float = 120.0) -> Iterator[Server]:
    """Run llama.cpp's OpenAI-compatible server for ``model`` on loopback while in the block.

    Args:
        model: Built-in name or Llama-layout model folder (exported to GGUF once, cached).
        port: TCP port on 127.0.0.1; 0 picks a free one. A port in use is refused (another
            server's answers would pass for this model's).
        threads: CPU threads of the server.
        n_ctx: Context length in tokens (prompt + completion).
        api_key_env: Name of an environment variable holding an API key the server will
            require (passed to the server through its environment, never its command line).
        log_dir: Folder for the server's log (default: next to the GGUF file).
        startup_timeout_s: Seconds to wait for the server to answer ``/v1/models``.

    Yields:
        The running :class:`Server`.

    Raises:
        ServerError: llama-cpp-python[server] is missing, the model cannot be exported, the
            port is in use, or the server exited or did not answer in time (the message
            quotes its log).
    """
    try:
        import llama_cpp  # noqa: F401
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        raise ServerError("serving needs llama-cpp-python with its server extra: pip install "
                          "'codexlab[serve]' (it compiles llama.cpp, a few minutes)") from exc
    try:
        gguf = exported_gguf(model)
    except (KeyError, ValueError, OSError) as exc:
        # Unknown name, not a Llama folder, unsupported tokenizer: one line, not a traceback.
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise ServerError(f"cannot serve {model!r}: {msg}") from None
    from codexlab.models import resolve_model
    from codexlab.models.gguf import pretokenizer_kind

    src = Path(resolve_model(model)).expanduser()
    port = _free_port(port)
    alias = Path(model).name if os.sep in model else model
    logs = Path(log_dir) if log_dir else gguf.parent
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"llama-server-{port}-{os.getpid()}.log"
    env = dict(os.environ)
    if api_key_env:
        key = os.environ.get(api_key_env, "")
        if not key:
            raise ServerError(f"{api_key_env} is not set; it should hold the API key the server "
                              "will require")
        env["API_KEY"] = key  # llama_cpp.server reads its settings from the environment
    # GGML type 0 is F32: a float32 KV cache keeps greedy decoding on the local engine's path.
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
           "--model_alias", alias, "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", str(int(n_ctx)), "--n_threads", str(int(threads)),
           "--n_threads_batch", str(int(threads)), "--type_k", "0", "--type_v", "0",
           "--seed", "0", "--verbose", "False"]
    if pretokenizer_kind(src) == "newline-split":
        # llama.cpp has no pre-tokenizer that splits newline runs off first (codex-mini v2):
        # prompts are tokenized by the model's own Hugging Face tokenizer instead, so the
        # server samples from the same token sequence as the local engine.
        cmd += ["--hf_pretrained_model_name_or_path", str(src)]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if proc.poll() is not None:
                raise ServerError(f"the llama.cpp server exited with {proc.returncode}:\n"
                                  f"{_tail(log)}")
            try:
                req = urllib.request.Request(f"{base}/models")
                if api_key_env:
                    req.add_header("Authorization", f"Bearer {env['API_KEY']}")
                with urllib.request.urlopen(req, timeout=2) as r:
                    served = [m.get("id") for m in json.loads(r.read()).get("data", [])]
                # Ours, not a server that took the port between the check and the start.
                if proc.poll() is None and alias in served:
                    break
                if proc.poll() is not None:
                    continue  # reported at the top of the loop, with the log
                raise ServerError(f"the server on {base} serves {served}, not {alias!r}")
            except (urllib.error.URLError, OSError, ValueError):
                if time.monotonic() > deadline:
                    raise ServerError(f"the llama.cpp server did not answer on {base} within "
                                      f"{startup_timeout_s:.0f} s:\n{_tail(log)}") from None
                time.sleep(0.25)
        yield Server(base_url=base, served_model=alias, pid=proc.pid, gguf=gguf, log=log,
                     process=proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


__all__ = ["LLAMA_CPP_CODEX_FIELDS", "Server", "ServerError", "exported_gguf",
           "gguf_cache_dir", "llama_cpp_server"]
