"""The semantic store: routines by ID, names over them, implementations per
architecture, performance history per hardware fingerprint, equivalence classes.

Tables live in the shared MetaOS database (stores/db.py).  Every public write is
one transaction, so a process killed mid-write leaves either all of a routine
(its canonical form, its names) or none of it.

Routines and implementations are content and only ever added.  Measurements are
history: appended, never changed (the tables refuse it).  Names and class
membership are current state, changed in place, and every change is also appended
to a history table, so what a name pointed to, and when, is never lost.

An implementation names the CPU features its code needs beyond the base ISA, as
discovery names them (CPUID flags such as popcnt, RISC-V extensions such as zbb), so a
board uses only what its CPU has; its `established` says how it was shown correct,
and one that begins with PROVEN was proven for all inputs (Z3), not only tested.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

from arch import Arch, by_name
from sem.canon import SHORT, Canonical, canonicalize, parse
from sem.ir import Routine
from stores.db import Migration, Schema, append_only, ensure_schema
from stores.fingerprint import Fingerprint

PROVEN = "proven"  # how an implementation's `established` begins when a proof covers all inputs
# Measurements and the changes of names and classes: appended, never changed.
HISTORY = ("sem_performance", "sem_name_history", "sem_equivalence_history")
DDL = """
CREATE TABLE IF NOT EXISTS sem_routines (
    id TEXT PRIMARY KEY,              -- BLAKE2b-256 of canonical, hex
    canonical TEXT NOT NULL,          -- the canonical form (sem/canon.py)
    inputs TEXT NOT NULL,             -- input types, e.g. 'bv32,bv32'
    result_width INTEGER,             -- NULL when the routine returns nothing
    uses_memory INTEGER NOT NULL,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sem_names (   -- what each name points to now
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
    features TEXT NOT NULL DEFAULT '',   -- CPU features the code needs, comma-separated
    UNIQUE (routine_id, arch, code)
);
CREATE TABLE IF NOT EXISTS sem_implementation_evidence (   -- why an implementation is right
    implementation_id INTEGER PRIMARY KEY REFERENCES sem_implementations(id),
    verdict TEXT NOT NULL,            -- the proof's verdict, e.g. 'z3: equivalent at full width'
    vectors TEXT NOT NULL             -- JSON: the vectors it was checked on
);
CREATE TABLE IF NOT EXISTS sem_equivalence (   -- each routine's class now
    routine_id TEXT PRIMARY KEY REFERENCES sem_routines(id),
    class_id TEXT NOT NULL REFERENCES sem_routines(id),   -- the class's specification
    established TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sem_performance (   -- appended, never updated
    id INTEGER PRIMARY KEY,           -- the order measurements were recorded in
    implementation_id INTEGER NOT NULL REFERENCES sem_implementations(id),
    fingerprint BLOB,                 -- Fingerprint.digest (= cap_fingerprint.digest);
                                      -- NULL: recorded by a version 1 store, label only
    hardware_label TEXT NOT NULL,     -- Fingerprint.label, for people: never a key
    metric TEXT NOT NULL,             -- e.g. 'cycles', 'ns'
    value REAL NOT NULL,
    samples INTEGER NOT NULL,
    accelerator TEXT NOT NULL,        -- e.g. 'kvm', 'tcg', 'unicorn', 'metal'
    measured REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sem_performance_by_implementation
    ON sem_performance(implementation_id, fingerprint);
CREATE TABLE IF NOT EXISTS sem_name_history (   -- appended at every change of sem_names
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    routine_id TEXT REFERENCES sem_routines(id),   -- what it points to from then on; NULL: nothing
    input_names TEXT NOT NULL,
    cause TEXT NOT NULL,              -- e.g. 'added', 'renamed from user:f'
    changed REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sem_name_history_by_name ON sem_name_history(namespace, name);
CREATE TABLE IF NOT EXISTS sem_equivalence_history (   -- appended at each change of sem_equivalence
    id INTEGER PRIMARY KEY,
    routine_id TEXT NOT NULL REFERENCES sem_routines(id),
    class_id TEXT NOT NULL REFERENCES sem_routines(id),   -- its class from then on
    established TEXT NOT NULL,
    cause TEXT NOT NULL,              -- e.g. 'proven equivalent', 'its class joined 1a2b...'
    changed REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sem_equivalence_history_by_routine
    ON sem_equivalence_history(routine_id);
""" + append_only(*HISTORY)
_BEFORE_HISTORY = "held when the store reached version 2 (earlier changes were not kept)"
_NOW = "(julianday('now') - 2440587.5) * 86400.0"  # Unix time in SQL, as time.time() gives it
SCHEMA = Schema("sem", DDL, migrations=(
    Migration(2, "performance keyed by the full fingerprint; names and classes keep history", f"""
        CREATE TABLE sem_performance_v2 (
            id INTEGER PRIMARY KEY,
            implementation_id INTEGER NOT NULL REFERENCES sem_implementations(id),
            fingerprint BLOB,
            hardware_label TEXT NOT NULL,
            metric TEXT NOT NULL,
            value REAL NOT NULL,
            samples INTEGER NOT NULL,
            accelerator TEXT NOT NULL,
            measured REAL NOT NULL
        );
        -- v1 kept only a label (board and 12 hex digits of the digest): it stays a label
        INSERT INTO sem_performance_v2 (implementation_id, fingerprint, hardware_label, metric,
                                        value, samples, accelerator, measured)
            SELECT implementation_id, NULL, hardware, metric, value, samples, accelerator, measured
            FROM sem_performance ORDER BY measured, rowid;
        DROP TABLE sem_performance;
        ALTER TABLE sem_performance_v2 RENAME TO sem_performance;
        CREATE INDEX sem_performance_by_implementation
            ON sem_performance(implementation_id, fingerprint);
        CREATE TABLE sem_name_history (
            id INTEGER PRIMARY KEY,
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            routine_id TEXT REFERENCES sem_routines(id),
            input_names TEXT NOT NULL,
            cause TEXT NOT NULL,
            changed REAL NOT NULL
        );
        CREATE INDEX sem_name_history_by_name ON sem_name_history(namespace, name);
        INSERT INTO sem_name_history (namespace, name, routine_id, input_names, cause, changed)
            SELECT namespace, name, routine_id, input_names, '{_BEFORE_HISTORY}', {_NOW}
            FROM sem_names ORDER BY namespace, name;
        CREATE TABLE sem_equivalence_history (
            id INTEGER PRIMARY KEY,
            routine_id TEXT NOT NULL REFERENCES sem_routines(id),
            class_id TEXT NOT NULL REFERENCES sem_routines(id),
            established TEXT NOT NULL,
            cause TEXT NOT NULL,
            changed REAL NOT NULL
        );
        CREATE INDEX sem_equivalence_history_by_routine ON sem_equivalence_history(routine_id);
        INSERT INTO sem_equivalence_history (routine_id, class_id, established, cause, changed)
            SELECT routine_id, class_id, established, '{_BEFORE_HISTORY}', {_NOW}
            FROM sem_equivalence ORDER BY 1;
    """ + append_only(*HISTORY)),
    Migration(3, "implementations name the CPU features their code needs and keep their"
                 " evidence (proof verdict, vectors)", """
        ALTER TABLE sem_implementations ADD COLUMN features TEXT NOT NULL DEFAULT '';
        CREATE TABLE sem_implementation_evidence (
            implementation_id INTEGER PRIMARY KEY REFERENCES sem_implementations(id),
            verdict TEXT NOT NULL,
            vectors TEXT NOT NULL
        );
    """),
))


class UnknownRoutine(LookupError):
    """A reference matched no routine (or more than one)."""


class NameTaken(ValueError):
    """A rename to a name that already points to a routine."""


class BadName(ValueError):
    """Text that does not spell a name (NAMESPACE:NAME or NAME)."""


@dataclass(frozen=True)
class Name:
    namespace: str
    name: str
    input_names: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.namespace}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> Name:
        """NAMESPACE:NAME, or NAME in the user's namespace."""
        namespace, _, name = text.rpartition(":")
        if not name:
            raise BadName(f"{text!r} is not a name; write NAMESPACE:NAME or NAME")
        return cls(namespace or "user", name)


@dataclass(frozen=True)
class Implementation:
    id: int
    routine_id: str
    arch: Arch
    code: bytes
    assembly: str
    established: str
    features: frozenset[str] = frozenset()  # CPU features the code needs (discovery's names)

    @property
    def proven(self) -> bool:
        return self.established.startswith(PROVEN)


@dataclass(frozen=True)
class ImplementationEvidence:
    """Why an implementation is right: the proof's verdict and the vectors it was checked
    on (JSON, as the prover's caller wrote them)."""

    verdict: str
    vectors: str


@dataclass(frozen=True)
class Measurement:
    implementation_id: int
    arch: Arch
    fingerprint: bytes | None  # Fingerprint.digest; None when a version 1 store recorded it
    hardware_label: str  # for people
    metric: str
    value: float
    samples: int
    accelerator: str
    measured: float

    @property
    def series(self) -> tuple:
        """What makes measurements comparable: one implementation, on one piece of
        hardware, under one accelerator, of one metric."""
        hardware = self.fingerprint if self.fingerprint is not None else self.hardware_label
        return (self.implementation_id, hardware, self.accelerator, self.metric)


def latest(measurements: Iterable[Measurement]) -> list[tuple[Measurement, int]]:
    """The latest measurement of each series (in the order the series began) and how many
    the series holds; `measurements` oldest first, as SemStore.performance gives them."""
    by_series: dict[tuple, list[Measurement]] = {}
    for m in measurements:
        by_series.setdefault(m.series, []).append(m)
    return [(ms[-1], len(ms)) for ms in by_series.values()]


@dataclass(frozen=True)
class NameChange:
    name: Name
    routine_id: str | None  # what the name points to from then on; None: nothing
    cause: str
    changed: float


@dataclass(frozen=True)
class ClassChange:
    routine_id: str
    class_id: str  # the routine's class from then on
    established: str
    cause: str
    changed: float


class SemStore:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        ensure_schema(conn, SCHEMA)

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
            inputs = ",".join(n.input_names)
            before = self.conn.execute(
                "SELECT routine_id, input_names FROM sem_names WHERE namespace = ? AND name = ?",
                (n.namespace, n.name)).fetchone()
            if before == (canon.id, inputs):
                continue  # added again as it was: nothing changes, nothing to remember
            self.conn.execute(
                "INSERT INTO sem_names VALUES (?, ?, ?, ?) ON CONFLICT(namespace, name) DO UPDATE"
                " SET routine_id = excluded.routine_id, input_names = excluded.input_names",
                (n.namespace, n.name, canon.id, inputs),
            )
            cause = "added" if before is None else f"moved from {before[0][:SHORT]}"
            self._name_changed(n.namespace, n.name, canon.id, inputs, cause)

    def _name_changed(self, namespace: str, name: str, routine_id: str | None, inputs: str,
                      cause: str) -> None:
        self.conn.execute(
            "INSERT INTO sem_name_history (namespace, name, routine_id, input_names, cause,"
            " changed) VALUES (?, ?, ?, ?, ?, ?)",
            (namespace, name, routine_id, inputs, cause, time.time()))

    def resolve(self, ref: str) -> str:
        """A full ID from an ID prefix (>= 4 hex digits), NAMESPACE:NAME or a NAME."""
        namespace, _, name = ref.rpartition(":")
        if namespace:
            rows = self.conn.execute(
                "SELECT routine_id FROM sem_names WHERE namespace = ? AND name = ?",
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
        row = self.conn.execute("SELECT canonical FROM sem_routines WHERE id = ?",
                                (routine_id,)).fetchone()
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
        """Move a name; the code it points to is untouched (both ends of the move are
        remembered in the name history)."""
        with self.conn:
            row = self.conn.execute(
                "SELECT routine_id, input_names FROM sem_names WHERE namespace = ? AND name = ?",
                (old.namespace, old.name)).fetchone()
            if row is None:
                raise UnknownRoutine(f"there is no name {old};"
                                     " `sem names ID` lists a routine's names")
            taken = self.conn.execute(
                "SELECT routine_id FROM sem_names WHERE namespace = ? AND name = ?",
                (new.namespace, new.name)).fetchone()
            if taken is not None:
                raise NameTaken(f"{new} already names routine {taken[0][:12]}: rename that one"
                                " first, or choose another name")
            self.conn.execute(
                "UPDATE sem_names SET namespace = ?, name = ? WHERE namespace = ? AND name = ?",
                (new.namespace, new.name, old.namespace, old.name))
            self._name_changed(old.namespace, old.name, None, "", f"renamed to {new}")
            self._name_changed(new.namespace, new.name, row[0], row[1], f"renamed from {old}")
        return self.resolve(str(new))

    def name_history(self, routine_id: str) -> list[NameChange]:
        """Every change, oldest first, of every name that has ever pointed to the routine."""
        rows = self.conn.execute(
            "SELECT namespace, name, routine_id, input_names, cause, changed FROM sem_name_history"
            " WHERE (namespace, name) IN (SELECT namespace, name FROM sem_name_history"
            " WHERE routine_id = ?) ORDER BY id", (routine_id,)).fetchall()
        return [NameChange(Name(ns, nm, tuple(filter(None, inputs.split(",")))), rid, cause, when)
                for ns, nm, rid, inputs, cause, when in rows]

    # implementations and performance ----------------------------------------
    def add_implementation(self, routine_id: str, arch: Arch, code: bytes, assembly: str,
                           established: str, features: Iterable[str] = ()) -> int:
        """`features`: the CPU features the code needs beyond the base ISA."""
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO sem_implementations (routine_id, arch, code, assembly,"
                " established, added, features) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (routine_id, arch.name, code, assembly, established, time.time(),
                 ",".join(sorted(set(features)))))
        return self.conn.execute(
            "SELECT id FROM sem_implementations WHERE routine_id = ? AND arch = ? AND code = ?",
            (routine_id, arch.name, code)).fetchone()[0]

    def add_evidence(self, implementation_id: int, evidence: ImplementationEvidence) -> None:
        """Keep why an implementation is right (once: the first evidence stays)."""
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO sem_implementation_evidence (implementation_id, verdict,"
                " vectors) VALUES (?, ?, ?)",
                (implementation_id, evidence.verdict, evidence.vectors))

    def evidence(self, implementation_id: int) -> ImplementationEvidence | None:
        row = self.conn.execute(
            "SELECT verdict, vectors FROM sem_implementation_evidence"
            " WHERE implementation_id = ?", (implementation_id,)).fetchone()
        return None if row is None else ImplementationEvidence(*row)

    def implementations(self, routine_id: str, arch: Arch | None = None) -> list[Implementation]:
        name = arch.name if arch is not None else None
        rows = self.conn.execute(
            "SELECT id, routine_id, arch, code, assembly, established, features"
            " FROM sem_implementations WHERE routine_id = ? AND (? IS NULL OR arch = ?)"
            " ORDER BY id", (routine_id, name, name)).fetchall()
        return [Implementation(i, rid, by_name(a), code, asm, how,
                               frozenset(f for f in features.split(",") if f))
                for i, rid, a, code, asm, how, features in rows]

    def recorded_runs(self, hardware: Fingerprint) -> dict[str, int]:
        """Per routine, the runs its implementations' measurements on `hardware` covered."""
        rows = self.conn.execute(
            "SELECT i.routine_id, SUM(p.samples) FROM sem_performance p"
            " JOIN sem_implementations i ON i.id = p.implementation_id"
            " WHERE p.fingerprint = ? GROUP BY i.routine_id", (hardware.digest,)).fetchall()
        return {rid: int(runs) for rid, runs in rows}

    def record_performance(self, implementation_id: int, hardware: Fingerprint, metric: str,
                           value: float, samples: int, accelerator: str) -> None:
        """Append one measurement; earlier ones of the same series stay."""
        with self.conn:
            self.conn.execute(
                "INSERT INTO sem_performance (implementation_id, fingerprint, hardware_label,"
                " metric, value, samples, accelerator, measured) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (implementation_id, hardware.digest, hardware.label, metric, value, samples,
                 accelerator, time.time()))

    def performance(self, routine_id: str) -> list[Measurement]:
        """Every measurement of the routine's implementations, oldest first."""
        rows = self.conn.execute(
            "SELECT p.implementation_id, i.arch, p.fingerprint, p.hardware_label, p.metric,"
            " p.value, p.samples, p.accelerator, p.measured"
            " FROM sem_performance p JOIN sem_implementations i ON i.id = p.implementation_id"
            " WHERE i.routine_id = ? ORDER BY p.id", (routine_id,)).fetchall()
        return [Measurement(impl, by_name(a), *rest) for impl, a, *rest in rows]

    # equivalence classes -----------------------------------------------------
    def class_of(self, routine_id: str) -> str:
        row = self.conn.execute("SELECT class_id FROM sem_equivalence WHERE routine_id = ?",
                                (routine_id,)).fetchone()
        return row[0] if row else routine_id

    def link_equivalent(self, spec_id: str, other_id: str, established: str) -> str:
        """Put `other` (and its class) into the class of `spec`; returns the class ID.
        Every routine whose class changes gets a row in the class history."""
        class_id = self.class_of(spec_id)
        old_class = self.class_of(other_id)
        with self.conn:
            if self.conn.execute("INSERT OR IGNORE INTO sem_equivalence VALUES (?, ?, ?)",
                                 (class_id, class_id, "specification")).rowcount:
                self._class_changed(class_id, class_id, "specification",
                                    "its class's specification")
            if old_class != class_id:
                moved = self.conn.execute(
                    "SELECT routine_id, established FROM sem_equivalence WHERE class_id = ?"
                    " ORDER BY 1", (old_class,)).fetchall()
                self.conn.execute("UPDATE sem_equivalence SET class_id = ? WHERE class_id = ?",
                                  (class_id, old_class))
                for routine_id, how in moved:
                    if routine_id != other_id:  # `other` gets its own row below
                        self._class_changed(routine_id, class_id, how, f"its class"
                                            f" {old_class[:SHORT]} joined {class_id[:SHORT]}")
            self.conn.execute(
                "INSERT INTO sem_equivalence VALUES (?, ?, ?) ON CONFLICT(routine_id) DO UPDATE"
                " SET class_id = excluded.class_id, established = excluded.established",
                (other_id, class_id, established))
            self._class_changed(other_id, class_id, established,
                                f"proven equivalent to {spec_id[:SHORT]}")
        return class_id

    def _class_changed(self, routine_id: str, class_id: str, established: str, cause: str) -> None:
        self.conn.execute(
            "INSERT INTO sem_equivalence_history (routine_id, class_id, established, cause,"
            " changed) VALUES (?, ?, ?, ?, ?)",
            (routine_id, class_id, established, cause, time.time()))

    def class_history(self, routine_id: str) -> list[ClassChange]:
        """Every change of the routine's class, oldest first."""
        rows = self.conn.execute(
            "SELECT routine_id, class_id, established, cause, changed FROM sem_equivalence_history"
            " WHERE routine_id = ? ORDER BY id", (routine_id,)).fetchall()
        return [ClassChange(*row) for row in rows]

    def members(self, class_id: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT routine_id FROM sem_equivalence WHERE class_id = ? ORDER BY 1",
            (class_id,)).fetchall()
        return [r[0] for r in rows] or [class_id]
