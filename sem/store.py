"""The semantic store: routines by ID, names over them, implementations per
architecture, performance history per hardware, equivalence classes.

Tables live in the shared MetaOS database (stores/db.py).  Every public write is
one transaction, so a process killed mid-write leaves either all of a routine
(its canonical form, its names) or none of it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

from arch import Arch, by_name
from stores.db import ensure_schema
from sem.canon import SHORT, Canonical, canonicalize, parse
from sem.ir import Routine

PART, VERSION = "sem", 1
DDL = """
CREATE TABLE IF NOT EXISTS sem_routines (
    id TEXT PRIMARY KEY,              -- BLAKE2b-256 of canonical, hex
    canonical TEXT NOT NULL,          -- the canonical form (sem/canon.py)
    inputs TEXT NOT NULL,             -- input types, e.g. 'bv32,bv32'
    result_width INTEGER,             -- NULL when the routine returns nothing
    uses_memory INTEGER NOT NULL,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sem_names (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    routine_id TEXT NOT NULL REFERENCES sem_routines(id),
    input_names TEXT NOT NULL DEFAULT '',   -- comma-separated: the inputs' names in this view
    PRIMARY KEY (namespace, name)
);
CREATE INDEX IF NOT EXISTS sem_names_by_routine ON sem_names(routine_id);
CREATE TABLE IF NOT EXISTS sem_implementations (
    id INTEGER PRIMARY KEY,
    routine_id TEXT NOT NULL REFERENCES sem_routines(id),
    arch TEXT NOT NULL,
    code BLOB NOT NULL,
    assembly TEXT NOT NULL,
    established TEXT NOT NULL,        -- how correctness was established
    added REAL NOT NULL,
    UNIQUE (routine_id, arch, code)
);
CREATE TABLE IF NOT EXISTS sem_performance (
    implementation_id INTEGER NOT NULL REFERENCES sem_implementations(id),
    hardware TEXT NOT NULL,           -- hardware fingerprint
    metric TEXT NOT NULL,             -- e.g. 'cycles', 'ns'
    value REAL NOT NULL,
    samples INTEGER NOT NULL,
    accelerator TEXT NOT NULL,        -- e.g. 'kvm', 'tcg', 'unicorn', 'metal'
    measured REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sem_equivalence (
    routine_id TEXT PRIMARY KEY REFERENCES sem_routines(id),
    class_id TEXT NOT NULL REFERENCES sem_routines(id),   -- the class's specification
    established TEXT NOT NULL
);
"""


class UnknownRoutine(LookupError):
    """A reference matched no routine (or more than one)."""


@dataclass(frozen=True)
class Name:
    namespace: str
    name: str
    input_names: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.namespace}:{self.name}"

    @classmethod
    def parse(cls, text: str, default_namespace: str = "user") -> Name:
        namespace, _, name = text.rpartition(":")
        if not name:
            raise ValueError(f"{text!r} is not a name; write NAMESPACE:NAME or NAME")
        return cls(namespace or default_namespace, name)


@dataclass(frozen=True)
class Implementation:
    id: int
    routine_id: str
    arch: Arch
    code: bytes
    assembly: str
    established: str


@dataclass(frozen=True)
class Measurement:
    arch: Arch
    hardware: str
    metric: str
    value: float
    samples: int
    accelerator: str
    measured: float


class SemStore:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        ensure_schema(conn, PART, VERSION, DDL)

    # routines and names ------------------------------------------------------
    def add(self, r: Routine, names: Iterable[Name] = ()) -> str:
        return self.add_many([(r, tuple(names))])[0]

    def add_many(self, items: Iterable[tuple[Routine, tuple[Name, ...]]]) -> list[str]:
        """Store routines and their names in one transaction; returns the IDs."""
        rows = [(canonicalize(r), r, names) for r, names in items]
        with self.conn:
            for canon, r, names in rows:
                self._insert(canon, r, names)
        return [canon.id for canon, _, _ in rows]

    def _insert(self, canon: Canonical, r: Routine, names: tuple[Name, ...]) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO sem_routines VALUES (?, ?, ?, ?, ?, ?)",
            (canon.id, canon.text, ",".join(t.name for t in r.params), r.result_width,
             int(r.uses_memory), time.time()),
        )
        for n in names:
            self.conn.execute(
                "INSERT INTO sem_names VALUES (?, ?, ?, ?) ON CONFLICT(namespace, name) DO UPDATE"
                " SET routine_id = excluded.routine_id, input_names = excluded.input_names",
                (n.namespace, n.name, canon.id, ",".join(n.input_names)),
            )

    def resolve(self, ref: str) -> str:
        """A full ID from an ID prefix (>= 4 hex digits), NAMESPACE:NAME or a NAME."""
        namespace, _, name = ref.rpartition(":")
        if namespace:
            rows = self.conn.execute("SELECT routine_id FROM sem_names WHERE namespace = ? AND name = ?",
                                     (namespace, name)).fetchall()
        else:
            rows = self.conn.execute("SELECT DISTINCT routine_id FROM sem_names WHERE name = ?",
                                     (name,)).fetchall()
        if not rows and len(ref) >= 4 and all(ch in "0123456789abcdef" for ch in ref.lower()):
            rows = self.conn.execute("SELECT id FROM sem_routines WHERE id >= ? AND id < ? LIMIT 2",
                                     (ref.lower(), ref.lower() + "g")).fetchall()
        if len(rows) == 1:
            return rows[0][0]
        if not rows:
            raise UnknownRoutine(f"no routine is called or identified by {ref!r}; "
                                 "`sem add FILE.py` stores routines, `sem names ID` lists names")
        raise UnknownRoutine(f"{ref!r} is ambiguous ({', '.join(r[0][:SHORT] for r in rows)}); "
                             "give more ID digits or NAMESPACE:NAME")

    def routine(self, routine_id: str) -> Routine:
        row = self.conn.execute("SELECT canonical FROM sem_routines WHERE id = ?", (routine_id,)).fetchone()
        if row is None:
            raise UnknownRoutine(f"no routine {routine_id}")
        return parse(row[0])

    def names(self, routine_id: str) -> list[Name]:
        rows = self.conn.execute(
            "SELECT namespace, name, input_names FROM sem_names WHERE routine_id = ? ORDER BY 1, 2",
            (routine_id,)).fetchall()
        return [Name(ns, nm, tuple(filter(None, inputs.split(",")))) for ns, nm, inputs in rows]

    def name_for(self, ref: str, routine_id: str) -> Name | None:
        """The name `ref` spells if it is one, else the routine's first name."""
        namespace, _, name = ref.rpartition(":")
        names = self.names(routine_id)
        exact = [n for n in names if n.name == name and namespace in ("", n.namespace)]
        return (exact or names or [None])[0]

    def rename(self, old: Name, new: Name) -> str:
        """Move a name; the code it points to is untouched."""
        with self.conn:
            cur = self.conn.execute(
                "UPDATE sem_names SET namespace = ?, name = ? WHERE namespace = ? AND name = ?",
                (new.namespace, new.name, old.namespace, old.name))
            if cur.rowcount == 0:
                raise UnknownRoutine(f"there is no name {old}; `sem names ID` lists a routine's names")
        return self.resolve(str(new))

    # implementations and performance ----------------------------------------
    def add_implementation(self, routine_id: str, arch: Arch, code: bytes, assembly: str,
                           established: str) -> int:
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO sem_implementations (routine_id, arch, code, assembly,"
                " established, added) VALUES (?, ?, ?, ?, ?, ?)",
                (routine_id, arch.name, code, assembly, established, time.time()))
        return self.conn.execute(
            "SELECT id FROM sem_implementations WHERE routine_id = ? AND arch = ? AND code = ?",
            (routine_id, arch.name, code)).fetchone()[0]

    def implementations(self, routine_id: str, arch: Arch | None = None) -> list[Implementation]:
        name = arch.name if arch is not None else None
        rows = self.conn.execute(
            "SELECT id, routine_id, arch, code, assembly, established FROM sem_implementations"
            " WHERE routine_id = ? AND (? IS NULL OR arch = ?) ORDER BY id",
            (routine_id, name, name)).fetchall()
        return [Implementation(i, rid, by_name(a), code, asm, how)
                for i, rid, a, code, asm, how in rows]

    def record_performance(self, implementation_id: int, hardware: str, metric: str, value: float,
                           samples: int, accelerator: str) -> None:
        with self.conn:
            self.conn.execute("INSERT INTO sem_performance VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (implementation_id, hardware, metric, value, samples, accelerator,
                               time.time()))

    def performance(self, routine_id: str) -> list[Measurement]:
        rows = self.conn.execute(
            "SELECT i.arch, p.hardware, p.metric, p.value, p.samples, p.accelerator, p.measured"
            " FROM sem_performance p JOIN sem_implementations i ON i.id = p.implementation_id"
            " WHERE i.routine_id = ? ORDER BY p.measured", (routine_id,)).fetchall()
        return [Measurement(by_name(a), *rest) for a, *rest in rows]

    # equivalence classes -----------------------------------------------------
    def class_of(self, routine_id: str) -> str:
        row = self.conn.execute("SELECT class_id FROM sem_equivalence WHERE routine_id = ?",
                                (routine_id,)).fetchone()
        return row[0] if row else routine_id

    def link_equivalent(self, spec_id: str, other_id: str, established: str) -> str:
        """Put `other` (and its class) into the class of `spec`; returns the class ID."""
        class_id = self.class_of(spec_id)
        old_class = self.class_of(other_id)
        with self.conn:
            self.conn.execute("INSERT OR IGNORE INTO sem_equivalence VALUES (?, ?, ?)",
                              (class_id, class_id, "specification"))
            self.conn.execute("UPDATE sem_equivalence SET class_id = ? WHERE class_id = ?",
                              (class_id, old_class))
            self.conn.execute(
                "INSERT INTO sem_equivalence VALUES (?, ?, ?) ON CONFLICT(routine_id) DO UPDATE"
                " SET class_id = excluded.class_id, established = excluded.established",
                (other_id, class_id, established))
        return class_id

    def members(self, class_id: str) -> list[str]:
        rows = self.conn.execute("SELECT routine_id FROM sem_equivalence WHERE class_id = ? ORDER BY 1",
                                 (class_id,)).fetchall()
        return [r[0] for r in rows] or [class_id]
