"""The one SQLite database of a MetaOS installation.

Every store (the semantic store, the capability store) keeps its tables in the
same file, so identifiers can be joined across them.  The path comes from the
caller, else $METAOS_DB, else ./metaos.db.  Connections run in WAL mode with
full synchronous commits: a process killed mid-write leaves the last committed
transaction intact and nothing of the interrupted one.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

DEFAULT_NAME = "metaos.db"


def database_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get("METAOS_DB") or DEFAULT_NAME)


class DatabaseFileError(sqlite3.DatabaseError):
    """The database path names something SQLite cannot open or read as a database."""


def connect(path: str | os.PathLike | None = None) -> sqlite3.Connection:
    """Open (creating if needed) the database; callers use `with conn:` per transaction.
    Raises DatabaseFileError when the file is not a database, damaged or unreadable."""
    target = database_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(target, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_parts"
                     " (part TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    except sqlite3.DatabaseError as error:  # also OperationalError: cannot open it at all
        raise DatabaseFileError(
            f"{target} cannot be used as the database ({error}); give another path with --db "
            "or $METAOS_DB, or move this file away") from None
    return conn


@dataclass(frozen=True)
class Migration:
    """What takes one store's tables from version `to - 1` to version `to`."""

    to: int
    why: str  # one line, for people reading the code and the error when it fails
    sql: str  # statements run in order inside the upgrade's transaction


@dataclass(frozen=True)
class Schema:
    """One store's tables (a *part* of the database) and how each older version of them
    becomes the current one.

    `ddl` creates the current tables in a new database; a database holding an older
    version runs `migrations` from its version up, instead.  Version 1 has no migration,
    so the current version is 1 + len(migrations)."""

    part: str
    ddl: str
    migrations: tuple[Migration, ...] = ()

    def __post_init__(self) -> None:
        for expected, m in enumerate(self.migrations, start=2):
            if m.to != expected:
                raise ValueError(f"{self.part}: migration {m.why!r} goes to version {m.to};"
                                 f" the migrations must go to 2, 3, ... in order ({expected} here)")

    @property
    def version(self) -> int:
        return 1 + len(self.migrations)


def statements(sql: str) -> list[str]:
    """`sql` cut into single statements (what sqlite3's execute takes); a `;` inside a
    comment or a string does not end one."""
    out, pending = [], ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):
        raise ValueError(f"unfinished SQL statement: {pending.strip()[:60]!r}")
    return [s for s in out if s.strip(" \n;")]


def append_only(*tables: str) -> str:
    """Triggers that make `tables` history: rows are appended, and an UPDATE or DELETE of
    one fails (a migration that must rewrite history drops them first, and says why)."""
    return "".join(
        f"CREATE TRIGGER IF NOT EXISTS {table}_append_only_{verb.lower()}"
        f" BEFORE {verb} ON {table} BEGIN"
        f" SELECT RAISE(ABORT, '{table} is history: rows are appended, never changed'); END;\n"
        for table in tables for verb in ("UPDATE", "DELETE"))


def ensure_schema(conn: sqlite3.Connection, schema: Schema) -> None:
    """Bring one store's tables to `schema.version`: created in a new database, migrated
    one version at a time in an older one, left alone when current.  All of it is one
    transaction, taken before the version is read, so two processes opening the same
    old database migrate it once and a crash leaves it wholly at its old version.  A
    database written by a newer version of that store is refused, not altered."""
    # sqlite3's executescript would commit an open transaction first: run statement by
    # statement inside our own.
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT version FROM schema_parts WHERE part = ?",
                           (schema.part,)).fetchone()
        if row is None:
            for statement in statements(schema.ddl):
                conn.execute(statement)
        elif row[0] > schema.version:
            raise RuntimeError(
                f"{_file_of(conn)}: the {schema.part} tables are version {row[0]}, this MetaOS"
                f" knows {schema.version}; upgrade MetaOS or point METAOS_DB at another file")
        else:
            for migration in schema.migrations[row[0] - 1:]:
                try:
                    for statement in statements(migration.sql):
                        conn.execute(statement)
                except sqlite3.Error as e:
                    raise RuntimeError(
                        f"{_file_of(conn)}: migrating the {schema.part} tables to version"
                        f" {migration.to} ({migration.why}) failed: {e}; nothing was changed:"
                        " report it with this line") from e
        conn.execute(
            "INSERT INTO schema_parts (part, version) VALUES (?, ?)"
            " ON CONFLICT(part) DO UPDATE SET version = excluded.version",
            (schema.part, schema.version),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _file_of(conn: sqlite3.Connection) -> str:
    return conn.execute("PRAGMA database_list").fetchone()[2] or ":memory:"
