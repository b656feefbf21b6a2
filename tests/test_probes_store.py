"""The capability store: divergences, quarantine, listing, and crash safety."""

import dataclasses
import hashlib
import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import keystone
import pytest
from schema_shape import shape

from arch import RISCV64, X86_64
from contract.probe_abi import Outcome
from discovery.fingerprint import riscv_fingerprint, x86_fingerprint
from probes.campaign import Campaign
from probes.probe import IDENTITY_SCHEME, Observation, Probe
from probes.store import HISTORY, CapabilityStore, StoredResult
from probes.vet import vet
from testing.fake_guest import FakeGuest
from testing.loopback import Loopback

FP = x86_fingerprint("q35", "GenuineIntel", 6, 85, 4, {"1.ecx": 0x7FFAFBFF, "1.edx": 0xBFEBFBFF})


def _square_probes(n: int) -> list[tuple[Probe, bytes | None]]:
    code = bytes(keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64).asm(
        "mov rax, [rdi]; imul rax, rax; mov [rsi], rax; ret")[0])
    out = []
    for i in range(n):
        probe = Probe(X86_64, code, input=i.to_bytes(8, "little"), output_size=8)
        verdict = vet(probe)
        assert verdict.accepted and verdict.prediction is not None
        out.append((probe, verdict.prediction))
    return out


def test_divergence_is_recorded_when_the_guest_disagrees(tmp_path):
    items = _square_probes(40)
    odd = {p.content_hash for p, _ in items if int.from_bytes(p.input, "little") % 7 == 0}

    def flaky_hardware(probe, obs):  # flips a bit of the answer on some probes
        if probe.content_hash in odd:
            return dataclasses.replace(obs, output=bytes([obs.output[0] ^ 1]) + obs.output[1:])
        return obs

    store = CapabilityStore(tmp_path / "m.db")
    campaign = Campaign(Loopback(FakeGuest(X86_64, perturb=flaky_hardware)),
                        on_batch=lambda b: store.record_batch(
                            FP, "tcg",
                            [StoredResult(r.probe, r.observation, r.prediction) for r in b]))
    report = campaign.run(items)
    assert report.divergences == len(odd)
    rows = store.divergences()
    assert {h for h, _, _ in rows} == odd
    for probe_hash, predicted, observed in rows:
        probe = next(p for p, _ in items if p.content_hash == probe_hash)
        square = int.from_bytes(probe.input, "little") ** 2
        assert predicted.endswith(square.to_bytes(8, "little"))  # the emulator was right
        assert predicted != observed
    summary = store.capabilities()[0]
    assert summary.results == 40 and summary.divergences == len(odd)
    assert summary.by_family == {"adhoc": {"returned": 40}}


def test_fingerprints_are_separate_and_quarantine_keeps_bytes(tmp_path):
    store = CapabilityStore(tmp_path / "m.db")
    rv = riscv_fingerprint("virt", misa=0x800000000014112D, mvendorid=0, marchid=0, mimpid=0,
                           isa="rv64imafdch")
    killer = Probe(RISCV64, bytes.fromhex("6f000000"))
    store.quarantine(rv, killer, "board hung")
    store.record_batch(FP, "kvm",
                       [StoredResult(Probe(X86_64, b"\xc3"), Observation(Outcome.RETURNED))])
    listing = {s.board: s for s in store.capabilities()}
    assert listing["virt"].quarantined == 1 and listing["virt"].results == 0
    assert listing["q35"].results == 1 and listing["q35"].identity["family"] == 6
    code = store.conn.execute("SELECT code FROM cap_probe WHERE hash = ?",
                              (killer.content_hash,)).fetchone()[0]
    assert code == killer.code
    assert store.quarantined(rv) == {killer.content_hash}
    assert store.quarantined(FP) == set()  # other hardware may survive it


WRITER = """
import sys
from arch import X86_64
from discovery.fingerprint import x86_fingerprint
from probes.store import HISTORY, CapabilityStore, StoredResult
from contract.probe_abi import Outcome
from probes.probe import IDENTITY_SCHEME, Observation, Probe
store = CapabilityStore(sys.argv[1])
fp = x86_fingerprint("q35", "GenuineIntel", 6, 85, 4, {})
n = 0
while True:
    batch = [StoredResult(Probe(X86_64, b"\\xc3", input=(n * 5000 + i).to_bytes(8, "little")),
                          Observation(Outcome.RETURNED, status=i)) for i in range(5000)]
    store.record_batch(fp, "tcg", batch)
    n += 1
    print(n, flush=True)
"""


def test_sigkill_mid_batch_leaves_whole_batches_only(tmp_path):
    db = tmp_path / "crash.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout.readline()  # at least one batch committed
        time.sleep(0.15)  # and now somewhere inside a later one
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    conn = sqlite3.connect(db)
    batches = conn.execute("SELECT id, results FROM cap_batch").fetchall()
    assert batches
    for batch_id, expected in batches:
        assert conn.execute("SELECT COUNT(*) FROM cap_result WHERE batch_id = ?",
                            (batch_id,)).fetchone()[0] == expected
    orphans = conn.execute("SELECT COUNT(*) FROM cap_result"
                           " WHERE batch_id NOT IN (SELECT id FROM cap_batch)")
    assert orphans.fetchone()[0] == 0
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- schema version 1 to 2 ------------------------------------------------------------

# probes/store.py as schema version 1 wrote it
V1_DDL = """
CREATE TABLE IF NOT EXISTS cap_fingerprint (
    id INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,          -- BLAKE2b-256 of arch, board, identity
    arch TEXT NOT NULL,
    board TEXT NOT NULL,
    identity TEXT NOT NULL,               -- JSON: CPUID words or misa/mvendorid/...
    first_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cap_probe (
    hash BLOB PRIMARY KEY,                -- Probe.content_hash
    arch TEXT NOT NULL, privilege INTEGER NOT NULL, family TEXT NOT NULL,
    code BLOB NOT NULL, input BLOB NOT NULL, budget INTEGER NOT NULL, output_size INTEGER NOT NULL
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
    recorded_at REAL NOT NULL
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
"""


def _v1_hash(arch: str, privilege: int, code: bytes, inp: bytes) -> bytes:
    """Probe.content_hash as identity scheme 1 computed it: arch, class, code, input."""
    h = hashlib.blake2b(digest_size=32)
    for part in (arch.encode(), bytes([privilege]), code, inp):
        h.update(struct.pack("<I", len(part)))
        h.update(part)
    return h.digest()


def _v1_database(path: Path) -> dict[str, bytes]:
    """A capability store as version 1 left it: one fingerprint, a probe with a result
    that diverged, a quarantined probe."""
    ret, hang = _v1_hash("x86_64", 0, b"\xc3", b""), _v1_hash("x86_64", 0, b"\xeb\xfe", b"")
    conn = sqlite3.connect(path)
    with conn:
        conn.executescript(V1_DDL)
        conn.execute("CREATE TABLE schema_parts (part TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_parts VALUES ('capabilities', 1)")
        conn.execute("INSERT INTO cap_fingerprint VALUES (1, ?, 'x86_64', 'q35', ?, 100.0)",
                     (FP.digest, json.dumps(dict(FP.identity))))
        conn.executemany("INSERT INTO cap_probe VALUES (?, 'x86_64', 0, 'adhoc', ?, x'', 64, 8)",
                         [(ret, b"\xc3"), (hang, b"\xeb\xfe")])
        conn.execute("INSERT INTO cap_batch VALUES (1, 1, 'tcg', 1, 101.0)")
        conn.execute("INSERT INTO cap_result VALUES (1, 1, 1, ?, 'returned', 0, NULL, NULL, NULL,"
                     " x'0102030405060708', 17, 2, 101.0)", (ret,))
        conn.execute("INSERT INTO cap_divergence VALUES (1, x'00', x'01')")
        conn.execute("INSERT INTO cap_quarantine VALUES (1, 1, ?, 'board hung', 102.0)", (hang,))
    conn.close()
    return {"ret": ret, "hang": hang}


def test_a_version_1_store_opens_keeps_its_rows_under_their_old_hashes_and_takes_new_ones(tmp_path):
    old = _v1_database(tmp_path / "v1.db")
    store = CapabilityStore(tmp_path / "v1.db")
    conn = store.conn
    version = "SELECT version FROM schema_parts WHERE part = 'capabilities'"
    assert conn.execute(version).fetchone() == (2,)
    assert conn.execute("SELECT hash, code, budget, output_size, identity_scheme, run_flags"
                        " FROM cap_probe ORDER BY code").fetchall() == [
        (old["ret"], b"\xc3", 64, 8, 1, None), (old["hang"], b"\xeb\xfe", 64, 8, 1, None)]
    assert conn.execute("SELECT probe_hash, outcome, output, cycles, instret, length"
                        " FROM cap_result").fetchall() == [
        (old["ret"], "returned", bytes(range(1, 9)), 17, 2, None)]
    assert store.divergences() == [(old["ret"], b"\x00", b"\x01")]
    assert store.quarantined(FP) == {old["hang"]}
    (summary,) = store.capabilities()
    assert (summary.results, summary.divergences, summary.quarantined) == (1, 1, 1)

    # The same code and input, asked again: another experiment now (its budget and
    # output size are in its identity), filed beside the old row, not over it.
    again = Probe(X86_64, b"\xc3", budget=64, output_size=8, measure_length=True)
    assert again.content_hash != old["ret"]
    store.record_batch(FP, "tcg", [StoredResult(again, Observation(Outcome.RETURNED, length=1))])
    assert conn.execute("SELECT identity_scheme, run_flags FROM cap_probe WHERE hash = ?",
                        (again.content_hash,)).fetchone() == (IDENTITY_SCHEME, again.run_flags)
    assert conn.execute("SELECT length FROM cap_result WHERE probe_hash = ?",
                        (again.content_hash,)).fetchone() == (1,)
    assert store.capabilities()[0].results == 2
    store.close()


def test_a_migrated_store_has_the_tables_of_a_new_one(tmp_path):
    _v1_database(tmp_path / "v1.db")
    migrated, fresh = CapabilityStore(tmp_path / "v1.db"), CapabilityStore(tmp_path / "new.db")
    assert shape(migrated.conn, "cap_") == shape(fresh.conn, "cap_")


def test_results_quarantines_and_divergences_are_append_only(tmp_path):
    _v1_database(tmp_path / "v1.db")
    for store in (CapabilityStore(tmp_path / "v1.db"), CapabilityStore(tmp_path / "new.db")):
        store.quarantine(FP, Probe(X86_64, b"\xeb\xfe"), "board hung")
        store.record_batch(FP, "tcg", [StoredResult(Probe(X86_64, b"\xc3"),
                                                    Observation(Outcome.RETURNED), b"\x00")])
        for table in HISTORY:
            for change in (f"UPDATE {table} SET rowid = rowid", f"DELETE FROM {table}"):
                with pytest.raises(sqlite3.IntegrityError, match="history"), store.conn:
                    store.conn.execute(change)


def test_stored_observations_come_back_bit_for_bit_per_hardware_and_accelerator(tmp_path):
    """What a later session reuses: the latest run of each probe on this fingerprint under
    this accelerator, with u64 registers as they were (SQLite stores them signed)."""
    from probes.probe import Fault

    store = CapabilityStore(tmp_path / "m.db")
    (first, _), (second, _), (never, _) = _square_probes(3)
    faulted = Observation(Outcome.FAULT, 2**64 - 1, Fault(14, 2**63 + 8, 2**64 - 16),
                          b"", cycles=2**63, instret=7)
    store.record_batch(FP, "tcg", [StoredResult(first, Observation(Outcome.RETURNED, 0,
                                                                   output=b"old"), None)])
    store.record_batch(FP, "tcg", [StoredResult(first, faulted, None),
                                   StoredResult(second, Observation(Outcome.RETURNED, 5,
                                                                    output=b"x"), None)])
    store.record_batch(FP, "kvm", [StoredResult(never, faulted, None)])
    other = x86_fingerprint("q35", "AuthenticAMD", 0x19, 1, 1, {"1.ecx": 0})
    store.record_batch(other, "tcg", [StoredResult(never, faulted, None)])
    found = store.observations(FP, "tcg", [first.content_hash, second.content_hash,
                                           never.content_hash])
    assert found == {first.content_hash: faulted,
                     second.content_hash: Observation(Outcome.RETURNED, 5, output=b"x")}
    assert store.observations(FP, "kvm", [first.content_hash]) == {}
