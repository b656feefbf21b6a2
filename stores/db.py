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
from pathlib import Path

DEFAULT_NAME = "metaos.db"


def database_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get("METAOS_DB") or DEFAULT_NAME)


def connect(path: str | os.PathLike | None = None) -> sqlite3.Connection:
    """Open (creating if needed) the database; callers use `with conn:` per transaction."""
    target = database_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(target, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_parts (part TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    return conn


def ensure_schema(conn: sqlite3.Connection, part: str, version: int, ddl: str) -> None:
    """Create one store's tables (idempotent).  `ddl` must use IF NOT EXISTS; a
    database written by a newer version of that store is refused, not altered."""
    row = conn.execute("SELECT version FROM schema_parts WHERE part = ?", (part,)).fetchone()
    if row and row[0] > version:
        raise RuntimeError(
            f"{database_path()}: the {part} tables are version {row[0]}, this MetaOS knows {version};"
            " upgrade MetaOS or point METAOS_DB at another file"
        )
    with conn:
        conn.executescript(ddl)
        conn.execute(
            "INSERT INTO schema_parts (part, version) VALUES (?, ?)"
            " ON CONFLICT(part) DO UPDATE SET version = excluded.version",
            (part, version),
        )
