"""``codexlab serve``: serve a built-in model through llama.cpp's OpenAI-compatible server.

What it is for: trying the ``openai`` sampling backend on one machine. It exports the model
to GGUF (once), starts ``python -m llama_cpp.server`` on loopback with the settings the
Codex protocol needs (:func:`codexlab.serving.llama_cpp_server`), prints the matching
``codexlab sample --backend openai`` command, and runs until Ctrl-C. What it is not for:
serving at scale (use vLLM, SGLang or TGI and point ``--base-url`` at them).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``serve`` sub-command."""
    p = sub.add_parser(
        "serve",
        help="serve a built-in model with llama.cpp's OpenAI-compatible server (loopback)",
        description=(
            "Export a built-in model (or a Llama-layout folder) to GGUF and serve it with "
            "llama.cpp's OpenAI-compatible server on 127.0.0.1 until Ctrl-C. Needs "
            "pip install 'codexlab[serve]'. Prints the `codexlab sample --backend openai` "
            "command that samples from it."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="built-in name (e.g. codex-mini-1.2m) or folder")
    p.add_argument("--port", type=_int_in(0, 65535), default=8000,
                   help="TCP port (default 8000; 0 = any free)")
    p.add_argument("--threads", type=_int_in(1, 1024), default=1, help="CPU threads (default 1)")
    p.add_argument("--n-ctx", type=_int_in(16, 1 << 20), default=2048,
                   help="context length (default 2048)")
    p.add_argument("--api-key-env", metavar="VAR", default=None,
                   help="require the API key held by this environment variable")
    return p


def _int_in(lo: int, hi: int) -> object:
    """Return an argparse type accepting a whole number in ``[lo, hi]`` (else a clear error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def run(args: argparse.Namespace) -> int:
    """Execute ``codexlab serve``."""
    import json
    import signal
    import sys
    import time

    from codexlab.serving import LLAMA_CPP_CODEX_FIELDS, ServerError, llama_cpp_server

    # `kill`, `timeout` and service managers send SIGTERM: leave through the context manager,
    # which stops the llama.cpp child, instead of dying and orphaning it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # A shell starts background jobs with SIGINT ignored; `kill -INT` should still stop us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with llama_cpp_server(args.model, port=args.port, threads=args.threads,
                              n_ctx=args.n_ctx, api_key_env=args.api_key_env) as srv:
            extra = json.dumps(LLAMA_CPP_CODEX_FIELDS)
            key = f" --api-key-env {args.api_key_env}" if args.api_key_env else ""
            print(f"codexlab serve: {srv.served_model} at {srv.base_url} (pid {srv.pid}, log "
                  f"{srv.log}); Ctrl-C stops it. Sample from it with:\n"
                  f"  codexlab sample --backend openai --base-url {srv.base_url} "
                  f"--model {srv.served_model} --extra-body '{extra}'{key} "
                  # One slot, and KV reuse only for the last prompt: 1 in flight is fastest.
                  "--max-in-flight 1 "
                  "--temperature 0.8 --n 10 --out samples.jsonl", flush=True)
            while srv.running():
                time.sleep(1)
            print(f"codexlab serve: the llama.cpp server exited with "
                  f"{srv.process.returncode}; its log: {srv.log}", file=sys.stderr)
            return 2
    except ServerError as exc:
        print(f"codexlab serve: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codexlab serve: stopped", file=sys.stderr)
        return 0
