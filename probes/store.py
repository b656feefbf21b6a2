"""The capability store: every probe result, per hardware fingerprint.

Lives in the one MetaOS database (stores/db.py), tables prefixed `cap_`.  A batch
of results is written in one transaction together with its `cap_batch` row, so
a crash leaves each batch either wholly present or absent (WAL, synchronous=FULL).
Results, divergences and quarantines are history: appended, never changed (the
tables refuse it).  Every row is filed under its probe's full identity
(Probe.content_hash, identity scheme 2); rows a version 1 store wrote keep their
scheme-1 hashes (see the migration below).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

from contract.probe_abi import Outcome
from probes.probe import IDENTITY_SCHEME, Fault, Observation, Probe
from stores.db import Migration, Schema, append_only, connect, ensure_schema
from stores.fingerprint import Fingerprint

_SQL_VARIABLES = 500  # hashes per query: SQLite caps the parameters of one statement
# What was measured, and what happened to whom: appended, never changed.
HISTORY = ("cap_batch", "cap_result", "cap_divergence", "cap_quarantine")
DDL = """
CREATE TABLE IF NOT EXISTS cap_fingerprint (
    id INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,          -- BLAKE2b-256 of arch, board, identity
    arch TEXT NOT NULL,
    board TEXT NOT NULL,
    identity TEXT NOT NULL,               -- JSON: CPUID words or misa/mvendorid/...
    first_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cap_probe (
    hash BLOB PRIMARY KEY,                -- Probe.content_hash, computed by identity_scheme
    arch TEXT NOT NULL, privilege INTEGER NOT NULL, family TEXT NOT NULL,
    code BLOB NOT NULL, input BLOB NOT NULL, budget INTEGER NOT NULL, output_size INTEGER NOT NULL,
    -- 2: probes.probe.IDENTITY_SCHEME: the hash covers every other column but family.
    -- 1: rows from a version 1 store: the hash covers arch, privilege, code, input only;
    --    budget and output_size are the first stored probe's, and results filed under
    --    the hash may come from other budgets (so these rows were not re-keyed).
    identity_scheme INTEGER NOT NULL,
    run_flags INTEGER                     -- PROBE_RUN flags; NULL: not recorded (scheme 1)
);
CREATE TABLE IF NOT EXISTS cap_batch (
    id INTEGER PRIMARY KEY,
    fingerprint_id INTEGER NOT NULL REFERENCES cap_fingerprint(id),
    accelerator TEXT NOT NULL,            -- tcg / kvm / none: whose numbers these are
    results INTEGER NOT NULL,             -- rows in cap_result for this batch
    recorded_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cap_result (
    id INTEGER PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES cap_batch(id),
    fingerprint_id INTEGER NOT NULL REFERENCES cap_fingerprint(id),
    probe_hash BLOB NOT NULL REFERENCES cap_probe(hash),
    outcome TEXT NOT NULL, status INTEGER NOT NULL,
    fault_vector INTEGER, fault_address INTEGER, fault_ip INTEGER,
    output BLOB NOT NULL, cycles INTEGER, instret INTEGER,
    recorded_at REAL NOT NULL,
    length INTEGER                        -- the first instruction's, when the run measured it
);
CREATE INDEX IF NOT EXISTS cap_result_by_probe ON cap_result(fingerprint_id, probe_hash);
CREATE TABLE IF NOT EXISTS cap_divergence (
    result_id INTEGER PRIMARY KEY REFERENCES cap_result(id),
    predicted BLOB NOT NULL, observed BLOB NOT NULL   -- Observation.comparable() of each
);
CREATE TABLE IF NOT EXISTS cap_quarantine (
    id INTEGER PRIMARY KEY,
    fingerprint_id INTEGER NOT NULL REFERENCES cap_fingerprint(id),
    probe_hash BLOB NOT NULL REFERENCES cap_probe(hash),
    reason TEXT NOT NULL, recorded_at REAL NOT NULL
);
""" + append_only(*HISTORY)
SCHEMA = Schema("capabilities", DDL, migrations=(
    # Every row is kept under its old hash, marked scheme 1: its result may be of
    # another budget than its cap_probe row says, so no scheme-2 hash can be claimed
    # for it.  New campaigns run those experiments again under their full identity.
    Migration(2, "probe identity covers budget, output size and run flags", """
        ALTER TABLE cap_probe ADD COLUMN identity_scheme INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE cap_probe ADD COLUMN run_flags INTEGER;
        ALTER TABLE cap_result ADD COLUMN length INTEGER;
    """ + append_only(*HISTORY)),
))


@dataclass(frozen=True)
class StoredResult:
    probe: Probe
    observation: Observation
    prediction: bytes | None = None  # from the vetter; a mismatch is stored as a divergence


@dataclass(frozen=True)
class CapabilitySummary:
    arch: str
    board: str
    identity: dict[str, int]
    results: int
    by_family: dict[str, dict[str, int]]  # family -> outcome -> count
    divergences: int
    quarantined: int


def _unsigned(value: int | None) -> int | None:
    """A register stored by _signed, as the u64 it was."""
    return None if value is None else value & (2**64 - 1)


def _signed(value: int | None) -> int | None:
    """SQLite integers are signed 64-bit; store u64 registers bit-for-bit."""
    if value is None:
        return None
    value &= 2**64 - 1
    return value - 2**64 if value >= 2**63 else value


class CapabilityStore:
    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.conn: sqlite3.Connection = connect(path)
        ensure_schema(self.conn, SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def fingerprint_id(self, fp: Fingerprint) -> int:
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO cap_fingerprint (digest, arch, board, identity, first_seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (fp.digest, fp.arch.name, fp.board, json.dumps(dict(fp.identity)), time.time()),
            )
        return self.conn.execute("SELECT id FROM cap_fingerprint WHERE digest = ?",
                                 (fp.digest,)).fetchone()[0]

    def record_batch(self, fp: Fingerprint, accelerator: str, results: list[StoredResult]) -> int:
        """Store `results` all together or not at all; returns the batch id."""
        fid, now = self.fingerprint_id(fp), time.time()
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO cap_batch (fingerprint_id, accelerator, results, recorded_at)"
                " VALUES (?, ?, ?, ?)",
                (fid, accelerator, len(results), now),
            )
            batch = cur.lastrowid
            for r in results:
                self._insert_probe(r.probe)
                obs, fault = r.observation, r.observation.fault
                rid = self.conn.execute(
                    "INSERT INTO cap_result (batch_id, fingerprint_id, probe_hash, outcome, status,"
                    " fault_vector, fault_address, fault_ip, output, cycles, instret, recorded_at,"
                    " length) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (batch, fid, r.probe.content_hash, obs.outcome.name.lower(),
                     _signed(obs.status), fault and fault.vector, fault and _signed(fault.address),
                     fault and _signed(fault.ip), obs.output, _signed(obs.cycles),
                     _signed(obs.instret), now, obs.length),
                ).lastrowid
                observed = obs.comparable()
                if r.prediction is not None and observed != r.prediction:
                    self.conn.execute(
                        "INSERT INTO cap_divergence (result_id, predicted, observed)"
                        " VALUES (?, ?, ?)",
                        (rid, r.prediction, observed),
                    )
        return batch

    def observations(self, fp: Fingerprint, accelerator: str,
                     hashes: Iterable[bytes]) -> dict[bytes, Observation]:
        """The latest stored run of each probe (by content hash) on this hardware under
        this accelerator; probes never run there are left out.  What a later session
        reuses instead of probing the same board again."""
        fid, found = self.fingerprint_id(fp), {}
        wanted = list(dict.fromkeys(hashes))
        for start in range(0, len(wanted), _SQL_VARIABLES):
            chunk = wanted[start:start + _SQL_VARIABLES]
            rows = self.conn.execute(
                "SELECT r.probe_hash, r.outcome, r.status, r.fault_vector, r.fault_address,"
                " r.fault_ip, r.output, r.cycles, r.instret, r.length FROM cap_result r"
                " JOIN cap_batch b ON b.id = r.batch_id"
                " WHERE r.fingerprint_id = ? AND b.accelerator = ? AND r.probe_hash IN"
                f" ({', '.join('?' * len(chunk))}) ORDER BY r.id", (fid, accelerator, *chunk))
            for probe_hash, outcome, status, vector, address, ip, output, cycles, instret, \
                    length in rows:
                fault = (Fault(vector, _unsigned(address), _unsigned(ip))
                         if vector is not None else None)
                found[probe_hash] = Observation(  # ordered by id: the latest run wins
                    Outcome[outcome.upper()], _unsigned(status), fault, output,
                    _unsigned(cycles), _unsigned(instret), length)
        return found

    def quarantine(self, fp: Fingerprint, probe: Probe, reason: str) -> None:
        fid = self.fingerprint_id(fp)
        with self.conn:
            self._insert_probe(probe)
            self.conn.execute(
                "INSERT INTO cap_quarantine (fingerprint_id, probe_hash, reason, recorded_at)"
                " VALUES (?, ?, ?, ?)",
                (fid, probe.content_hash, reason, time.time()),
            )

    def quarantined(self, fp: Fingerprint) -> set[bytes]:
        """Content hashes of the probes that killed this hardware (others may survive them).
        Hashes of identity scheme 1 (from version 1 stores) equal no probe's today."""
        rows = self.conn.execute("SELECT probe_hash FROM cap_quarantine WHERE fingerprint_id = ?",
                                 (self.fingerprint_id(fp),))
        return {row[0] for row in rows}

    def divergences(self) -> list[tuple[bytes, bytes, bytes]]:
        """(probe hash, predicted, observed) for every recorded divergence."""
        return self.conn.execute(
            "SELECT r.probe_hash, d.predicted, d.observed FROM cap_divergence d"
            " JOIN cap_result r ON r.id = d.result_id ORDER BY d.result_id"
        ).fetchall()

    def capabilities(self) -> list[CapabilitySummary]:
        out = []
        for fid, arch, board, identity in self.conn.execute(
            "SELECT id, arch, board, identity FROM cap_fingerprint ORDER BY id"
        ).fetchall():
            by_family: dict[str, dict[str, int]] = {}
            for family, outcome, count in self.conn.execute(
                "SELECT p.family, r.outcome, COUNT(*) FROM cap_result r"
                " JOIN cap_probe p ON p.hash = r.probe_hash"
                " WHERE r.fingerprint_id = ? GROUP BY p.family, r.outcome", (fid,)
            ):
                by_family.setdefault(family, {})[outcome] = count
            out.append(CapabilitySummary(
                arch, board, json.loads(identity),
                self._count(fid, "SELECT COUNT(*) FROM cap_result WHERE fingerprint_id = ?"),
                by_family,
                self._count(fid, "SELECT COUNT(*) FROM cap_divergence d"
                                 " JOIN cap_result r ON r.id = d.result_id"
                                 " WHERE r.fingerprint_id = ?"),
                self._count(fid, "SELECT COUNT(*) FROM cap_quarantine WHERE fingerprint_id = ?"),
            ))
        return out

    def _count(self, fingerprint_id: int, sql: str) -> int:
        """The count `sql` selects, its one parameter the fingerprint's id."""
        return self.conn.execute(sql, (fingerprint_id,)).fetchone()[0]

    def _insert_probe(self, p: Probe) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO cap_probe (hash, arch, privilege, family, code, input, budget,"
            " output_size, identity_scheme, run_flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (p.content_hash, p.arch.name, int(p.privilege), p.family, p.code, p.input, p.budget,
             p.output_size, IDENTITY_SCHEME, p.run_flags),
        )
