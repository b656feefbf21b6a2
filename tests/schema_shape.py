"""The shape of a store's tables as SQLite reports it, to compare a migrated database
with a new one."""

import sqlite3


def shape(conn: sqlite3.Connection, prefix: str) -> dict[str, object]:
    """Per table named `prefix*`: its columns (name, type, not-null, primary-key place) in
    order, foreign keys, indexes with their columns, triggers.  Column defaults are left
    out: a column added to old rows needs one that a new table does not."""
    out: dict[str, object] = {}
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? ORDER BY 1",
        (prefix + "%",))]
    for table in tables:
        indexes = {}
        for row in conn.execute(f"PRAGMA index_list({table})"):
            name = row[1]
            key = f"auto:{row[3]}" if name.startswith("sqlite_autoindex") else name
            indexes[key] = [c[2] for c in conn.execute(f"PRAGMA index_info({name})")]
        out[table] = {
            "columns": [(c[1], c[2], c[3], c[5])
                        for c in conn.execute(f"PRAGMA table_info({table})")],
            "foreign keys": sorted((f[2], f[3], f[4]) for f in conn.execute(
                f"PRAGMA foreign_key_list({table})")),
            "indexes": dict(sorted(indexes.items())),
            "triggers": sorted(r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                (table,))),
        }
    return out
