"""The workspace index (SQLite): runs, tasks, attempts, and the file-hash memo.

The memo maps (path, device, inode, size, mtime_ns) to the file's sha256 (and DICOM series UID), so a
no-op rerun over thousands of files stats them and reads nothing. Only the process holding the workspace
lock writes; WAL mode lets ``dicompose runs``/``show`` read while a run is going on.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicompose.errors import DicomposeError, UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, started REAL NOT NULL, ended REAL, status TEXT NOT NULL,
    kind TEXT NOT NULL, target TEXT NOT NULL, engine TEXT, engine_why TEXT, scheduler TEXT,
    out_dir TEXT, details TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, step TEXT NOT NULL, task_key TEXT NOT NULL,
    task_label TEXT NOT NULL, attempt INTEGER NOT NULL, status TEXT NOT NULL, cached INTEGER NOT NULL,
    started REAL, ended REAL, exit_code INTEGER, engine TEXT, image_digest TEXT, log_dir TEXT,
    inputs TEXT NOT NULL DEFAULT '[]', outputs TEXT NOT NULL DEFAULT '[]', message TEXT
);
CREATE INDEX IF NOT EXISTS attempts_run ON attempts (run_id, step);
CREATE TABLE IF NOT EXISTS launches (
    id TEXT PRIMARY KEY, run_id TEXT NOT NULL, step TEXT NOT NULL, tasks TEXT NOT NULL DEFAULT '[]',
    processes INTEGER, exit_code INTEGER, started REAL, ended REAL, command TEXT NOT NULL DEFAULT '[]',
    message TEXT
);
CREATE INDEX IF NOT EXISTS launches_run ON launches (run_id, step);
CREATE TABLE IF NOT EXISTS audit_anchors (
    seq INTEGER NOT NULL, hash TEXT NOT NULL, time TEXT NOT NULL, log_id TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS published (
    scope TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER, mtime_ns INTEGER,
    PRIMARY KEY (scope, path)
);
CREATE INDEX IF NOT EXISTS published_path ON published (path);
CREATE TABLE IF NOT EXISTS file_lists (sha256 TEXT PRIMARY KEY, list TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS file_memo2 (
    path TEXT PRIMARY KEY, device INTEGER NOT NULL, inode INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, series TEXT, instance TEXT
);
"""


#: An attempt's inputs or outputs of at least this many files are stored once, by content, in ``file_lists``
#: and named in the attempt by ``sha256:<hex>``: a no-op rerun of a 10,000-file pipeline repeats the same
#: lists in every run, which was 5.5 MB of index per rerun.
SHARED_LIST_MIN = 16
_LIST_REF = "sha256:"

_MEMO_ALL = "SELECT path, device, inode, size, mtime_ns, sha256, series, instance FROM file_memo2"
_MEMO_BY_PATH = _MEMO_ALL + " WHERE path = ?"


@dataclass(frozen=True)
class FileStat:
    path: str
    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path | str) -> FileStat:
        """Stat ``path``; the key is its absolute path (no realpath: that costs a syscall per component)."""
        text = str(path)
        absolute = text if text.startswith("/") else str(Path(text).absolute())
        st = os.stat(absolute)  # noqa: PTH116 - hot path of no-op reruns: no Path objects
        return cls(absolute, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    @classmethod
    def maybe(cls, path: str) -> FileStat | None:
        """Like :meth:`of` for an absolute path, None if it does not exist."""
        try:
            st = os.stat(path)  # noqa: PTH116
        except FileNotFoundError:
            return None
        return cls(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Memo:
    sha256: str
    series: str | None
    instance: str | None = None  # SOP Instance UID (DICOM files): two inputs with one are refused


@dataclass(frozen=True)
class Attempt:
    """One attempt of one task (or a cache hit: ``cached``, attempt 0), as the index stores it."""

    run_id: str
    step: str
    task_key: str
    task_label: str
    attempt: int
    status: str
    cached: bool = False
    started: float | None = None
    ended: float | None = None
    exit_code: int | None = None
    engine: str | None = None
    image_digest: str | None = None
    log_dir: str | None = None
    inputs: list[dict[str, str]] = field(default_factory=list)
    outputs: list[dict[str, str]] = field(default_factory=list)
    message: str = ""
    launch_id: str | None = None


@dataclass(frozen=True)
class Launch:
    """One launch: a pack of tasks of one step, run as one container or process."""

    id: str
    run_id: str
    step: str
    tasks: list[str]
    processes: int
    exit_code: int | None
    started: float
    ended: float | None
    command: list[str]
    message: str = ""


#: A launch recorded when dispatched whose run ended before it did (Ctrl-C, SIGKILL, a failed run).
STOPPED_WITH_RUN = "stopped with its run; the tasks it had finished were sealed, and later runs reuse them"


class Index:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(attempts)")}
        if "launch_id" not in columns:  # indexes written before packed launches existed
            self.db.execute("ALTER TABLE attempts ADD COLUMN launch_id TEXT")

    def close(self) -> None:
        self.db.close()

    # --- file memo -------------------------------------------------------------------------------------
    def memo_lookup(self, stats: Iterable[FileStat]) -> dict[str, Memo]:
        """Memo entries still valid for these stats (same device, inode, size and mtime_ns)."""
        wanted = {s.path: s for s in stats}
        if len(wanted) <= 256:  # a few paths: primary-key lookups; many: one scan of the table
            rows = [row for path in wanted for row in self.db.execute(_MEMO_BY_PATH, (path,))]
        else:
            rows = self.db.execute(_MEMO_ALL).fetchall()
        found: dict[str, Memo] = {}
        for path, device, inode, size, mtime_ns, sha, series, instance in rows:
            stat = wanted.get(path)
            if stat is not None and (stat.device, stat.inode, stat.size, stat.mtime_ns) == (
                device,
                inode,
                size,
                mtime_ns,
            ):
                found[path] = Memo(sha, series, instance)
        return found

    def memo_store(self, entries: Iterable[tuple[FileStat, Memo]]) -> None:
        rows = [(s.path, s.device, s.inode, s.size, s.mtime_ns, m.sha256, m.series, m.instance) for s, m in entries]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO file_memo2 VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    # --- the audit log's checkpoints, kept outside it ----------------------------------------------------
    def add_anchor(self, checkpoint: dict[str, Any], log_id: str) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO audit_anchors VALUES (?, ?, ?, ?)",
                (checkpoint["seq"], checkpoint["hash"], checkpoint["time"], log_id),
            )

    def anchors(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT seq, hash, time, log_id FROM audit_anchors ORDER BY rowid")
        return [
            {"seq": seq, "hash": h, "time": t, "id": log_id, "source": "the workspace index"}
            for seq, h, t, log_id in rows
        ]

    # --- what runs published where ---------------------------------------------------------------------
    def published(self, scope: str) -> dict[str, tuple[str, int | None, int | None]]:
        """path → (sha256, size, mtime_ns) of every file published in ``scope`` (one --out, target, inputs)."""
        rows = self.db.execute("SELECT path, sha256, size, mtime_ns FROM published WHERE scope = ?", (scope,))
        return {path: (sha, size, mtime) for path, sha, size, mtime in rows}

    def published_by_content(self) -> dict[str, list[tuple[str, int | None]]]:
        """sha256 → (path, size) of every published copy (where a gc'd task's outputs still live)."""
        found: dict[str, list[tuple[str, int | None]]] = {}
        for sha, path, size in self.db.execute("SELECT sha256, path, size FROM published"):
            found.setdefault(sha, []).append((path, size))
        return found

    def series_by_content(self, shas: Iterable[str]) -> dict[str, str]:
        """sha256 → Series Instance UID, as the file memo saw the files (after they were deleted, too)."""
        wanted = sorted(set(shas))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):  # below SQLite's limit on parameters
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            query = f"SELECT sha256, series FROM file_memo2 WHERE series IS NOT NULL AND sha256 IN ({marks})"  # noqa: S608 - placeholders only
            found.update((str(sha), str(series)) for sha, series in self.db.execute(query, chunk))
        return found

    def published_elsewhere(self, scope: str, paths: Iterable[str]) -> set[str]:
        """Which of ``paths`` another scope has published too (theirs as well: never ours to move)."""
        found: set[str] = set()
        for path in paths:
            row = self.db.execute("SELECT 1 FROM published WHERE path = ? AND scope != ? LIMIT 1", (path, scope))
            if row.fetchone() is not None:
                found.add(path)
        return found

    def record_published(
        self, scope: str, rows: Iterable[tuple[str, str, int | None, int | None]], gone: Iterable[str] = ()
    ) -> None:
        """Remember (path, sha256, size, mtime_ns) as published in ``scope``; forget the ``gone`` paths."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO published VALUES (?, ?, ?, ?, ?)", [(scope, *row) for row in rows]
            )
            self.db.executemany("DELETE FROM published WHERE scope = ? AND path = ?", [(scope, p) for p in gone])

    # --- runs and attempts -----------------------------------------------------------------------------
    def start_run(
        self,
        run_id: str,
        kind: str,
        target: str,
        engine: str,
        why: str,
        scheduler: str,
        out_dir: str,
        details: dict[str, Any],
    ) -> None:
        self.db.execute(
            "INSERT INTO runs (id, started, status, kind, target, engine, engine_why, scheduler, out_dir, details)"
            " VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
            (run_id, time.time(), kind, target, engine, why, scheduler, out_dir, json.dumps(details)),
        )

    def end_run(self, run_id: str, status: str) -> None:
        self.db.execute("UPDATE runs SET ended = ?, status = ? WHERE id = ?", (time.time(), status, run_id))
        self._launches_stopped([run_id])

    def _launches_stopped(self, run_ids: list[str]) -> None:
        self.db.executemany(
            "UPDATE launches SET message = ? WHERE run_id = ? AND ended IS NULL",
            [(STOPPED_WITH_RUN, run_id) for run_id in run_ids],
        )

    def record_attempts(self, attempts: Iterable[Attempt]) -> None:
        shared: dict[str, str] = {}  # sha256 → a long file list's JSON, stored once (see SHARED_LIST_MIN)
        rows = [  # a shallow copy: asdict's deep copy of every input and output cost 1 s per 10,000 files
            {
                **vars(a),
                "cached": int(a.cached),
                "inputs": _list_column(a.inputs, shared),
                "outputs": _list_column(a.outputs, shared),
            }
            for a in attempts
        ]
        if not rows:
            return
        columns = list(rows[0])
        sql = f"INSERT INTO attempts ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"  # noqa: S608 - column names are Attempt fields
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO file_lists VALUES (?, ?)", shared.items())
            self.db.executemany(sql, rows)

    def record_attempt(self, attempt: Attempt) -> None:
        self.record_attempts([attempt])

    def record_launch(self, launch: Launch) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO launches (id, run_id, step, tasks, processes, exit_code, started, ended, command,"
            " message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                launch.id,
                launch.run_id,
                launch.step,
                json.dumps(launch.tasks),
                launch.processes,
                launch.exit_code,
                launch.started,
                launch.ended,
                json.dumps(launch.command),
                launch.message,
            ),
        )

    def launches(self, run_id: str) -> list[dict[str, Any]]:
        cursor = self.db.execute("SELECT * FROM launches WHERE run_id = ? ORDER BY started, id", (run_id,))
        names = [c[0] for c in cursor.description]
        result = []
        for row in cursor.fetchall():
            item = dict(zip(names, row, strict=True))
            item["tasks"], item["command"] = json.loads(item["tasks"]), json.loads(item["command"])
            result.append(item)
        return result

    def mark_interrupted(self) -> list[str]:
        """Runs still 'running' when nobody holds the workspace lock died (SIGKILL, power loss): say so."""
        rows = [r[0] for r in self.db.execute("SELECT id FROM runs WHERE status = 'running'")]
        if rows:
            try:
                self.db.executemany(
                    "UPDATE runs SET status = 'interrupted', ended = COALESCE(ended, ?) WHERE id = ?",
                    [(time.time(), run_id) for run_id in rows],
                )
                self._launches_stopped(rows)
            except sqlite3.OperationalError:  # a full (or read-only) disk: reading the records must still work
                return []
        return rows

    def mark_collected(self, run_ids: Iterable[str]) -> None:
        """Runs whose task and launch folders ``dicompose gc`` removed: their records stay, their logs are gone."""
        when = time.time()
        for run_id in run_ids:
            row = self.db.execute("SELECT details FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None:
                details = {**json.loads(row[0] or "{}"), "collected": when}
                self.db.execute("UPDATE runs SET details = ? WHERE id = ?", (json.dumps(details), run_id))

    def has_run(self, target: str) -> bool:
        """Whether this workspace has run ``target`` (as runs record it: the pipeline file or tool given) before."""
        return self.db.execute("SELECT 1 FROM runs WHERE target = ? LIMIT 1", (target,)).fetchone() is not None

    def runs(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM runs ORDER BY started, rowid").fetchall()
        return [self._run_row(row) for row in rows]

    def run(self, run_id: str) -> dict[str, Any] | None:
        """The run with this id, or the one run whose id starts with it (None: none, or several)."""
        row = self.db.execute("SELECT * FROM runs WHERE id = ? OR id LIKE ?", (run_id, f"{run_id}%")).fetchall()
        exact = [r for r in row if r[0] == run_id]
        return self._run_row((exact or row)[0]) if len(exact) == 1 or len(row) == 1 else None

    def run_ids_starting(self, prefix: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM runs WHERE id LIKE ? ORDER BY started", (f"{prefix}%",))]

    def attempts(self, run_id: str, step: str | None = None) -> list[dict[str, Any]]:
        if step:
            cursor = self.db.execute("SELECT * FROM attempts WHERE run_id = ? AND step = ? ORDER BY id", (run_id, step))
        else:
            cursor = self.db.execute("SELECT * FROM attempts WHERE run_id = ? ORDER BY id", (run_id,))
        names = [c[0] for c in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        shared = self._shared_lists({row[c] for row in rows for c in ("inputs", "outputs")})
        for item in rows:
            item["cached"] = bool(item["cached"])
            for column in ("inputs", "outputs"):
                text: str = item[column]
                item[column] = json.loads(shared.get(text, text))
        return rows

    def _shared_lists(self, columns: set[str]) -> dict[str, str]:
        """``sha256:<hex>`` → the file list's JSON, for the references among ``columns``."""
        wanted = sorted(c[len(_LIST_REF) :] for c in columns if c.startswith(_LIST_REF))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):  # below SQLite's limit on parameters
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            query = f"SELECT sha256, list FROM file_lists WHERE sha256 IN ({marks})"  # noqa: S608 - placeholders only
            found.update((_LIST_REF + sha, text) for sha, text in self.db.execute(query, chunk))
        if missing := [sha for sha in wanted if _LIST_REF + sha not in found]:
            raise DicomposeError(f"{self.path}: damaged, it lacks the file list {missing[0]} an attempt names")
        return found

    def task_keys(self, run_id: str) -> set[str]:
        """The task keys ``run_id`` ran or reused (no file lists read: ``gc`` asks this of every kept run)."""
        return {key for (key,) in self.db.execute("SELECT DISTINCT task_key FROM attempts WHERE run_id = ?", (run_id,))}

    def run_counts(self) -> dict[str, tuple[int, int, int]]:
        """run id → (launches, attempts that ran, cached tasks), counted by SQLite: ``runs`` lists every run,
        and decoding each attempt's file lists cost seconds once a workspace held a few 10,000-file runs."""
        counts: dict[str, list[int]] = {}
        query = "SELECT run_id, SUM(cached = 0), SUM(cached != 0) FROM attempts GROUP BY run_id"
        for run_id, ran, cached in self.db.execute(query):
            counts[run_id] = [0, int(ran or 0), int(cached or 0)]
        for run_id, launches in self.db.execute("SELECT run_id, COUNT(*) FROM launches GROUP BY run_id"):
            counts.setdefault(run_id, [0, 0, 0])[0] = int(launches)
        return {run_id: (c[0], c[1], c[2]) for run_id, c in counts.items()}

    def _run_row(self, row: tuple[Any, ...]) -> dict[str, Any]:
        names = [
            "id",
            "started",
            "ended",
            "status",
            "kind",
            "target",
            "engine",
            "engine_why",
            "scheduler",
            "out_dir",
            "details",
        ]
        item = dict(zip(names, row, strict=True))
        item["details"] = json.loads(item["details"])
        return item


def _list_column(files: list[dict[str, str]], shared: dict[str, str]) -> str:
    """What an attempt stores of a file list: its JSON, or for a long one a reference to it in ``shared``."""
    text = json.dumps(files)
    if len(files) < SHARED_LIST_MIN:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()
    shared[digest] = text
    return _LIST_REF + digest


def existing_index(workspace: Path) -> Index:
    """The index of the workspace at ``workspace``, or one line saying there is none (no index is created)."""
    from dicompose.records.workspace import Workspace

    path = Workspace(workspace).index_path
    if not path.is_file():
        raise UsageError(f"{workspace}: no dicompose workspace here (use --workspace DIR)")
    return Index(path)
