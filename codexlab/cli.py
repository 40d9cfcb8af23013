"""The ``codexlab`` command line: one sub-command per pipeline stage.

What it is for: parsing arguments and dispatching to the command modules in
:mod:`codexlab.commands`. What it is not for: any computation. Start-up stays fast because
each command module imports only ``argparse`` at module level; torch, transformers, pandas
and friends are imported inside the command's ``run`` function.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

#: Sub-command name → module in ``codexlab.commands`` that defines ``register`` and ``run``.
COMMANDS: dict[str, str] = {
    "problems": "problems",
    "passk": "passk",
    "evaluate": "evaluate",
    "sample": "sample",
    "serve": "serve",
    "train": "train",
    "figures": "figures",
    "store": "store",
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="codexlab",
        description="Reproduce the Codex paper's figures for any causal code language model.",
    )
    from codexlab import __version__

    parser.add_argument("--version", action="version", version=f"codexlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        try:
            mod = importlib.import_module(f"codexlab.commands.{module}")
        except ModuleNotFoundError as exc:
            # A command whose module is not written yet is simply not offered.
            if exc.name == f"codexlab.commands.{module}":
                continue
            raise
        p = mod.register(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        rc = args._run(args)
    except KeyboardInterrupt:
        if args.command == "evaluate" and not getattr(args, "store", None):
            # Without --store, evaluate keeps its verdicts in memory until it writes them.
            print("interrupted; nothing was written (pass --store to keep finished verdicts "
                  "across an interrupt)", file=sys.stderr)
        else:
            print("interrupted; completed work is kept in the store, rerun to resume",
                  file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`codexlab problems list | head`): stop quietly, as a
        # Unix tool does. Point stdout at /dev/null so the flush at exit does not raise again
        # (the recipe of Python's signal module docs, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
