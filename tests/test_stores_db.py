"""The shared database's schema versions: creation, ordered migrations, refusal of newer
versions, and append-only history tables."""

import sqlite3
import threading

import pytest

from stores.db import Migration, Schema, append_only, connect, ensure_schema, statements

V1 = "CREATE TABLE IF NOT EXISTS t_item (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
V3 = """
CREATE TABLE IF NOT EXISTS t_item (id INTEGER PRIMARY KEY, name TEXT NOT NULL, size INTEGER);
CREATE TABLE IF NOT EXISTS t_log (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, note TEXT);
"""
TO_2 = Migration(2, "items have a size", "ALTER TABLE t_item ADD COLUMN size INTEGER;")
TO_3 = Migration(3, "a log of items", """
    CREATE TABLE t_log (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, note TEXT);
    -- every item found gets its first entry; this comment's ; ends nothing
    INSERT INTO t_log (item_id, note) SELECT id, 'was there; before v3' FROM t_item ORDER BY id;
""")
CURRENT = Schema("test", V3, (TO_2, TO_3))


def version(conn: sqlite3.Connection, part: str = "test") -> int | None:
    row = conn.execute("SELECT version FROM schema_parts WHERE part = ?", (part,)).fetchone()
    return row and row[0]


def test_statements_are_cut_at_semicolons_outside_comments_strings_and_triggers():
    sql = ("CREATE TABLE a (x TEXT DEFAULT 'p;q'); -- a; comment\n"
           "INSERT INTO a VALUES ('r;s');\n" + append_only("a") + "\n")
    got = statements(sql)
    assert len(got) == 4  # table, insert, and the two triggers with their inner ';'
    conn = sqlite3.connect(":memory:")
    for statement in got:
        conn.execute(statement)  # sqlite3 itself refuses more than one statement per call
    assert conn.execute("SELECT x FROM a").fetchall() == [("r;s",)]
    with pytest.raises(ValueError, match="unfinished"):
        statements("INSERT INTO a VALUES ('never closed; at all);")


def test_migrations_must_be_numbered_in_order():
    assert CURRENT.version == 3
    with pytest.raises(ValueError, match="in order"):
        Schema("test", V3, (TO_3, TO_2))


def test_a_new_database_gets_the_current_tables_directly(tmp_path):
    conn = connect(tmp_path / "m.db")
    ensure_schema(conn, CURRENT)
    assert version(conn) == 3
    conn.execute("INSERT INTO t_item (name, size) VALUES ('a', 1)")
    assert conn.execute("SELECT COUNT(*) FROM t_log").fetchone()[0] == 0  # TO_3 did not run


def test_an_old_database_runs_each_missing_migration_once_in_order_and_keeps_its_rows(tmp_path):
    path = tmp_path / "m.db"
    conn = connect(path)
    ensure_schema(conn, Schema("test", V1))
    with conn:
        conn.executemany("INSERT INTO t_item (name) VALUES (?)", [("a",), ("b",)])
    conn.close()

    conn = connect(path)
    ensure_schema(conn, Schema("test", V3, (TO_2,)))  # a MetaOS between the two
    assert version(conn) == 2
    conn.close()
    conn = connect(path)
    ensure_schema(conn, CURRENT)
    ensure_schema(conn, CURRENT)  # current: nothing runs again
    assert version(conn) == 3
    assert conn.execute("SELECT id, name, size FROM t_item").fetchall() == [
        (1, "a", None), (2, "b", None)]
    assert conn.execute("SELECT item_id, note FROM t_log").fetchall() == [
        (1, "was there; before v3"), (2, "was there; before v3")]


def test_a_failing_migration_changes_nothing_and_says_which(tmp_path):
    path = tmp_path / "m.db"
    conn = connect(path)
    ensure_schema(conn, Schema("test", V1))
    with conn:
        conn.execute("INSERT INTO t_item (name) VALUES ('a')")
    broken = Migration(3, "a broken step", "CREATE TABLE t_log (id INTEGER);"
                                           " INSERT INTO nowhere VALUES (1);")
    with pytest.raises(RuntimeError, match="version 3 .a broken step. failed.*nothing was changed"):
        ensure_schema(conn, Schema("test", V3, (TO_2, broken)))
    assert version(conn) == 1  # TO_2 ran, and was rolled back with the rest
    assert [c[1] for c in conn.execute("PRAGMA table_info(t_item)")] == ["id", "name"]
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 't_log'").fetchone() is None
    assert conn.execute("SELECT name FROM t_item").fetchall() == [("a",)]


def test_a_newer_database_is_refused_untouched(tmp_path):
    conn = connect(tmp_path / "m.db")
    ensure_schema(conn, CURRENT)
    with pytest.raises(RuntimeError, match="version 3, this MetaOS knows 1"):
        ensure_schema(conn, Schema("test", V1))
    assert version(conn) == 3


def test_two_processes_opening_an_old_database_migrate_it_once(tmp_path):
    path = tmp_path / "m.db"
    conn = connect(path)
    ensure_schema(conn, Schema("test", V1))
    with conn:
        conn.execute("INSERT INTO t_item (name) VALUES ('a')")
    conn.close()
    errors = []

    def open_it():
        try:
            ensure_schema(connect(path), CURRENT)
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert connect(path).execute("SELECT COUNT(*) FROM t_log").fetchone()[0] == 1  # TO_3 once


def test_append_only_tables_refuse_update_and_delete(tmp_path):
    conn = connect(tmp_path / "m.db")
    ensure_schema(conn, Schema("test", V1 + append_only("t_item")))
    with conn:
        conn.execute("INSERT INTO t_item (name) VALUES ('a')")
    for change in ("UPDATE t_item SET name = 'b'", "DELETE FROM t_item"):
        with pytest.raises(sqlite3.IntegrityError, match="t_item is history"), conn:
            conn.execute(change)
    assert conn.execute("SELECT name FROM t_item").fetchall() == [("a",)]
