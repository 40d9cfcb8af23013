"""``codexlab store``: inspect a run store, import or export human-eval JSONL."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``store`` sub-command."""
    p = sub.add_parser(
        "store",
        help="inspect the run store; import/export human-eval JSONL",
        description="Inspect a codexlab run store (SQLite), or move sample sets in and out as "
                    "human-eval JSONL.",
    )
    p.add_argument("action", choices=["info", "runs", "export", "import", "check"])
    p.add_argument("file", nargs="?", help="for import/export: the JSONL file")
    p.add_argument("--store", metavar="PATH", help="store file or directory (default: results dir)")
    p.add_argument("--set", dest="set_id", help="for export: the sample set id (see `store info`)")
    p.add_argument("--with-verdicts", action="store_true", help="for export: add passed/result")
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``codexlab store``."""
    import json
    import sys

    from codexlab.paths import default_store_path
    from codexlab.store import Store

    st = Store(args.store or default_store_path())
    if args.action == "info":
        print(f"store: {st.path}")
        for s in st.sample_sets():
            print(f"{s['set_id']}  model={s['model']}  T={s['temperature']}  top_p={s['top_p']}  "
                  f"seed={s['seed']}  samples={s['n_samples']}  verdicts={s['n_verdicts']}")
        return 0
    if args.action == "runs":
        for r in st.runs():
            keys = ("run_id", "kind", "status", "started", "finished")
            print(json.dumps({k: r[k] for k in keys}))
        return 0
    if args.action == "check":
        ok = st.integrity_ok()
        print("ok" if ok else "CORRUPT")
        return 0 if ok else 1
    if not args.file:
        print(f"codexlab store {args.action}: give the JSONL file", file=sys.stderr)
        return 2
    if args.action == "import":
        run_id = st.start_run("import", {"file": args.file})
        set_id, keys = st.import_samples_jsonl(args.file, run_id=run_id)
        st.finish_run(run_id, "done", {"rows": len(keys)})
        print(f"imported {len(keys)} rows into set {set_id}")
        return 0
    if not args.set_id:
        print("codexlab store export: give --set SET_ID (list them with `codexlab store info`)",
              file=sys.stderr)
        return 2
    n = st.export_jsonl(args.set_id, args.file, with_verdicts=args.with_verdicts)
    print(f"wrote {n} rows to {args.file}")
    return 0
