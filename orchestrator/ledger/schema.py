"""The ledger's tables, each column declared once, and bringing a file up to the current schema.

The CREATE and ALTER statements are made from the declarations below, writes insert by these
column names and queries read rows by them: a column added here is added everywhere. A new column
or table carries ``since``, the next SCHEMA_VERSION; its migration follows from that.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestrator import __version__
from orchestrator.errors import LedgerError
from orchestrator.ledger.errors import one_line
from orchestrator.ledger.paths import ENV_VAR
from orchestrator.ledger.records import now

SCHEMA_VERSION = 2
# PRAGMA application_id: "krmv". Tells a kremove ledger from any other SQLite file.
APPLICATION_ID = 0x6B726D76
BUSY_TIMEOUT_S = 10.0

# How a query hands a stored value back: as stored, parsed from JSON, or 0/1 made a bool.
Form = Literal["plain", "json", "flag"]


@dataclass(frozen=True)
class Column:
    name: str
    decl: str  # type and constraints, as CREATE TABLE spells them
    form: Form = "plain"
    since: int = 1  # the schema version that added it


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    constraints: tuple[str, ...] = ()
    since: int = 1

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def select(self, *names: str) -> str:
        """``SELECT`` the named columns (all when none are named) ``FROM`` this table."""
        return f"SELECT {', '.join(self.known(names or self.names))} FROM {self.name}"

    def insert(self, *names: str, replace: bool = False) -> str:
        """``INSERT`` (``OR REPLACE``) of the named columns, a parameter ``:name`` for each."""
        names = self.known(names)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        values = ", ".join(f":{n}" for n in names)
        return f"{verb} INTO {self.name} ({', '.join(names)}) VALUES ({values})"

    def assign(self, *names: str) -> str:
        """An UPDATE's ``SET`` list: ``name = :name, ...``."""
        return ", ".join(f"{n} = :{n}" for n in self.known(names))

    def known(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """``names``, if each is a column of this table."""
        unknown = set(names) - set(self.names)
        if unknown:
            raise KeyError(f"table {self.name} has no column {', '.join(sorted(unknown))}")
        return names


@dataclass(frozen=True)
class Index:
    name: str
    table: Table
    columns: tuple[str, ...]
    since: int = 1

    def create(self) -> str:
        columns = ", ".join(self.table.known(self.columns))
        return f"CREATE INDEX {self.name} ON {self.table.name} ({columns})"


META = Table("meta", (Column("key", "TEXT PRIMARY KEY"), Column("value", "TEXT NOT NULL")))
RUNS = Table(
    "runs",
    (
        Column("id", "TEXT PRIMARY KEY"),
        Column("kind", "TEXT NOT NULL"),
        Column("status", "TEXT NOT NULL"),
        Column("operator", "TEXT NOT NULL"),
        Column("command_line", "TEXT NOT NULL"),
        Column("inventory_digest", "TEXT NOT NULL"),
        Column("playbook_version", "TEXT NOT NULL"),
        Column("meta", "TEXT NOT NULL", "json"),  # an object
        Column("started", "TEXT NOT NULL"),
        Column("finished", "TEXT"),
    ),
)
RUN_HOSTS = Table(
    "run_hosts",
    (
        Column("run_id", "TEXT NOT NULL REFERENCES runs (id)"),
        Column("host", "TEXT NOT NULL"),
        Column("position", "INTEGER NOT NULL"),  # order of selection, as given to start_run
        Column("status", "TEXT"),  # NULL until the host has an outcome
        Column("reason", "TEXT"),
        Column("findings", "TEXT NOT NULL", "json"),  # an array of objects
        Column("started", "TEXT"),
        Column("finished", "TEXT"),
        # What detection found after removal; NULL when nothing was removed.
        Column("post_findings", "TEXT", "json", since=2),
        # A dry run's reviewed steps for the host, which `run --plan` executes.
        Column("plan", "TEXT", "json", since=2),
    ),
    ("PRIMARY KEY (run_id, host)", "UNIQUE (run_id, position)"),
)
STEPS = Table(
    "steps",
    (
        # AUTOINCREMENT: a step key is never reused, even after a deletion an audit must notice.
        Column("key", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        Column("run_id", "TEXT NOT NULL"),
        Column("host", "TEXT NOT NULL"),
        Column("seq", "INTEGER NOT NULL"),  # 1, 2, ... per (run, host)
        Column("step_id", "TEXT NOT NULL"),
        Column("kind", "TEXT NOT NULL"),
        Column("readonly", "INTEGER NOT NULL CHECK (readonly IN (0, 1))", "flag"),
        Column("command", "TEXT NOT NULL"),
        Column("started", "TEXT NOT NULL"),
        Column("finished", "TEXT"),  # NULL: journaled, outcome never recorded
        Column("exit_code", "INTEGER"),
        Column("timed_out", "INTEGER NOT NULL DEFAULT 0 CHECK (timed_out IN (0, 1))", "flag"),
        Column("stdout", "TEXT NOT NULL DEFAULT ''"),
        Column("stderr", "TEXT NOT NULL DEFAULT ''"),
        Column("error", "TEXT"),
    ),
    (
        "FOREIGN KEY (run_id, host) REFERENCES run_hosts (run_id, host)",
        "UNIQUE (run_id, host, seq)",
    ),
)
# Things that happened in a run beside steps: a host key pinned, a batch started, a halt.
EVENTS = Table(
    "events",
    (
        Column("key", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        Column("run_id", "TEXT NOT NULL REFERENCES runs (id)"),
        Column("host", "TEXT"),  # NULL for run-wide events; may name a jump host
        Column("kind", "TEXT NOT NULL"),
        Column("detail", "TEXT NOT NULL", "json"),  # an object
        Column("at", "TEXT NOT NULL"),
    ),
    since=2,
)
# Every write above, in order, each entry hashing its predecessor (see chain.py and audit.py).
JOURNAL = Table(
    "journal",
    (
        Column("seq", "INTEGER PRIMARY KEY"),
        Column("at", "TEXT NOT NULL"),
        Column("run_id", "TEXT NOT NULL"),
        Column("op", "TEXT NOT NULL"),
        Column("body", "TEXT NOT NULL"),  # canonical JSON of what was written
        Column("prev", "TEXT NOT NULL"),  # hash of the previous entry ('' for the first)
        Column("hash", "TEXT NOT NULL"),  # SHA-256 (or HMAC-SHA-256) of prev and this entry
    ),
    since=2,
)
# One run works a host at a time; a second run skips it while the first holds it.
HOST_LOCKS = Table(
    "host_locks",
    (
        Column("host", "TEXT PRIMARY KEY"),
        Column("run_id", "TEXT NOT NULL"),
        Column("node", "TEXT NOT NULL"),  # hostname of the controller holding it
        Column("pid", "INTEGER NOT NULL"),
        Column("acquired", "TEXT NOT NULL"),
    ),
    since=2,
)
TABLES = (META, RUNS, RUN_HOSTS, STEPS, EVENTS, JOURNAL, HOST_LOCKS)
INDEXES = (
    Index("runs_by_start", RUNS, ("started",)),
    Index("events_by_run", EVENTS, ("run_id", "key"), since=2),
)


def migration(version: int) -> tuple[str, ...]:
    """The statements that take a file from schema ``version - 1`` to ``version``."""
    statements: list[str] = []
    for table in TABLES:
        added = [c for c in table.columns if max(c.since, table.since) == version]
        if table.since == version:
            lines = [f"{c.name} {c.decl}" for c in added] + list(table.constraints)
            statements.append(f"CREATE TABLE {table.name} (\n    " + ",\n    ".join(lines) + "\n)")
        else:
            statements += [f"ALTER TABLE {table.name} ADD COLUMN {c.name} {c.decl}" for c in added]
    statements += [i.create() for i in INDEXES if i.since == version]
    return tuple(statements)


def prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Check the file is a kremove ledger this code can use, switch to WAL, bring the schema up."""
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    schema_version(conn, path)  # refuse foreign or newer files before writing anything
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if str(mode).lower() != "wal":
        raise LedgerError(
            f"ledger {path} cannot use write-ahead logging (journal mode {mode!r});"
            " put it on a local filesystem with --ledger"
        )
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn, path)  # again: another process may have just created it
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in migration(target):
                conn.execute(statement)
        if version < SCHEMA_VERSION:
            _stamp(conn, version)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise


def _stamp(conn: sqlite3.Connection, version: int) -> None:
    """Say what the file is and which schema it now has (from ``version``, 0 when new)."""
    if version == 0:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.executemany(
            META.insert("key", "value"),
            [
                {"key": "created", "value": now()},
                {"key": "created_by", "value": f"kremove {__version__}"},
            ],
        )
    conn.execute(
        META.insert("key", "value", replace=True),
        {"key": "schema_version", "value": str(SCHEMA_VERSION)},
    )
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def schema_version(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version (0: empty, new). Raises for foreign files and newer versions."""
    (app_id,) = conn.execute("PRAGMA application_id").fetchone()
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    (tables,) = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or tables != 0):
        raise LedgerError(
            one_line(
                f"ledger {path} is a SQLite database but not a kremove ledger;"
                f" choose another file with --ledger or ${ENV_VAR}"
            )
        )
    if version > SCHEMA_VERSION:
        raise LedgerError(
            one_line(
                f"ledger {path} has schema version {version}, this kremove knows up to"
                f" {SCHEMA_VERSION}; upgrade kremove"
            )
        )
    return int(version)
