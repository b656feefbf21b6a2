"""The ledger (stores/ledger.py) on a real SQLite file: RFC 9162 roots and proofs of the
published reference tree, signed heads in RFC 9162's TreeHeadDataV2 encoding, tampering
with the file through raw SQL (each caught by `verify`, which names the entry or head),
the key file, resuming after a writer is killed, and `./run ledger`."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cli import ledger as ledger_commands
from cli.ledger import CheckFailed
from stores import merkle
from stores.ledger import (
    Ledger,
    LedgerError,
    SignedHead,
    canonical_json,
    head_bytes,
    key_path,
    node_position,
    public_key_hex,
)
from tests.ct_vectors import CONSISTENCY, INPUTS, PATHS, ROOTS

REPO = Path(__file__).resolve().parents[1]
N = 2500  # two signed heads (1,000 and 2,000) and 500 entries past the last one


def _entry(i: int) -> bytes:
    return canonical_json({"experiment": i, "outcome": "ok" if i % 3 else "failed"})


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "metaos.db"


@pytest.fixture
def filled(db) -> Path:
    Ledger.open(db).append_many(_entry(i) for i in range(N))
    return db


def _raw(db: Path) -> sqlite3.Connection:
    """The file opened as an attacker would: plain sqlite3, the append-only triggers gone."""
    conn = sqlite3.connect(db, isolation_level=None)
    for table in ("ledger_entries", "ledger_nodes", "ledger_heads"):
        for action in ("update", "delete"):
            conn.execute(f"DROP TRIGGER {table}_no_{action}")
    return conn


def _audit(db: Path):
    ledger = Ledger.open(db, read_only=True)
    return ledger.verify(Ledger.open(db).public_key)


def _naive_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, written straight from its recursive definition."""
    if not leaves:
        return merkle.EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = merkle.split(len(leaves))
    return merkle.node_hash(_naive_mth(leaves[:k]), _naive_mth(leaves[k:]))


# -- the tree in the database -----------------------------------------------------

def test_reference_tree_roots_and_proofs_from_the_database(db):
    ledger = Ledger.open(db)
    assert ledger.append_many(INPUTS) == range(8)
    assert ledger.root(0) == merkle.EMPTY_ROOT
    assert [ledger.root(n) for n in range(1, 9)] == ROOTS
    for leaf, size, path in PATHS:
        proof = ledger.prove(leaf - 1, size)
        assert proof.path == tuple(bytes.fromhex(x) for x in path) and proof.verify()
    for old, new, path in CONSISTENCY:
        proof = ledger.consistency(old, new)
        assert proof.path == tuple(bytes.fromhex(x) for x in path) and proof.verify()
        assert (proof.old_root, proof.new_root) == (ROOTS[old - 1], ROOTS[new - 1])


def test_nodes_are_stored_where_node_position_says(filled):
    conn = sqlite3.connect(filled)
    assert conn.execute("SELECT COUNT(*), MAX(pos) FROM ledger_nodes").fetchone() == (
        2 * N - N.bit_count(), 2 * N - N.bit_count() - 1)
    for i in (0, 1, 999, N - 1):
        stored = conn.execute("SELECT hash FROM ledger_nodes WHERE pos = ?",
                              (node_position(0, i),)).fetchone()[0]
        assert stored == merkle.leaf_hash(_entry(i))
    # the perfect subtree over entries 1024..2047 against the RFC's recursive definition
    stored = conn.execute("SELECT hash FROM ledger_nodes WHERE pos = ?",
                          (node_position(10, 1),)).fetchone()[0]
    assert stored == _naive_mth([merkle.leaf_hash(_entry(i)) for i in range(1024, 2048)])


def test_every_size_has_the_rfc_root_and_proofs_verify(filled):
    ledger = Ledger.open(filled, read_only=True)
    leaves = [merkle.leaf_hash(_entry(i)) for i in range(N)]
    for size in (1, 2, 3, 1000, 1023, 1024, 1025, 2000, N):
        assert ledger.root(size) == _naive_mth(leaves[:size])
    for index in range(0, N, 97):
        proof = ledger.prove(index)
        assert proof.size == N and proof.root == ledger.root() and proof.verify()
        assert proof.leaf == leaves[index]
    heads = ledger.heads()
    for old, new in [(h.size, N) for h in heads] + [(1000, 2000), (1, N), (1500, 2001)]:
        assert ledger.consistency(old, new).verify()


def test_entries_records_and_canonical_json(db):
    ledger = Ledger.open(db)
    index = ledger.append_record({"zeta": [1, 2.5, None], "alpha": "é", "mid": {"b": 1, "a": 2}})
    assert ledger.entry(index) == (
        b'{"alpha":"\xc3\xa9","mid":{"a":2,"b":1},"zeta":[1,2.5,null]}')
    assert ledger.record(index)["alpha"] == "é"
    assert ledger.append_records([{"n": 1}, {"n": 2}]) == range(1, 3)
    assert list(ledger.entries(1)) == [(1, b'{"n":1}'), (2, b'{"n":2}')]
    with pytest.raises(ValueError):
        ledger.append_record({"score": float("nan")})
    with pytest.raises(LedgerError, match="no entry 3"):
        ledger.entry(3)


# -- signed heads ----------------------------------------------------------------

def test_a_head_is_signed_every_1000_entries_and_on_demand(filled):
    ledger = Ledger.open(filled)
    heads = ledger.heads()
    assert [h.size for h in heads] == [1000, 2000]
    assert all(h.signed_by(ledger.public_key) and h.root == ledger.root(h.size) for h in heads)
    head = ledger.sign_head()
    assert (head.size, head.root) == (N, ledger.root()) and head.signed_by(ledger.public_key)
    assert ledger.sign_head() == head  # nothing appended since: the same head
    assert ledger.latest_head() == head


def test_head_encoding_is_rfc_9162_tree_head_data_v2():
    # struct { uint64 timestamp; uint64 tree_size; opaque root_hash<32..2^8-1>;
    #          Extension sth_extensions<0..2^16-1>; } TreeHeadDataV2, TLS-encoded
    encoded = head_bytes(8, 0x0102030405060708, ROOTS[7])
    assert encoded.hex() == ("0102030405060708" "0000000000000008" "20"
                             "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
                             "0000")
    key = Ed25519PrivateKey.generate()
    head = SignedHead(8, 0x0102030405060708, ROOTS[7], key.sign(encoded))
    assert head.signed_by(key.public_key())
    assert not SignedHead(9, head.timestamp, head.root, head.signature).signed_by(key.public_key())


def test_an_empty_ledger_has_no_head_to_sign(db):
    with pytest.raises(LedgerError, match="empty"):
        Ledger.open(db).sign_head()


# -- tampering with the file -----------------------------------------------------

def test_an_intact_ledger_verifies(filled):
    audit = _audit(filled)
    assert audit.ok and (audit.entries, audit.heads) == (N, 2)


@pytest.mark.parametrize("index", [0, 1234, N - 1])
def test_one_changed_byte_names_its_entry(filled, index):
    conn = _raw(filled)
    entry = bytearray(_entry(index))
    entry[5] ^= 0x01
    conn.execute("UPDATE ledger_entries SET entry = ? WHERE idx = ?", (bytes(entry), index))
    audit = _audit(filled)
    assert not audit.ok and audit.bad_entry == index and f"entry {index}" in audit.reason


def test_a_deleted_entry_is_named(filled):
    _raw(filled).execute("DELETE FROM ledger_entries WHERE idx = 777")
    audit = _audit(filled)
    assert audit.bad_entry == 777 and "missing" in audit.reason


def test_cutting_off_signed_entries_is_caught(filled):
    conn = _raw(filled)
    conn.execute("DELETE FROM ledger_entries WHERE idx >= 1990")
    conn.execute("DELETE FROM ledger_nodes WHERE pos >= ?", (node_position(0, 1990),))
    audit = _audit(filled)
    assert (audit.bad_entry, audit.bad_head) == (1990, 2000)


def test_cutting_off_unsigned_entries_leaves_their_hashes_behind(filled):
    _raw(filled).execute("DELETE FROM ledger_entries WHERE idx >= 2400")
    audit = _audit(filled)
    assert audit.bad_entry == 2400 and "missing" in audit.reason


def test_two_swapped_entries_are_caught_at_the_first(filled):
    conn = _raw(filled)
    conn.execute("UPDATE ledger_entries SET idx = -1 WHERE idx = 20")
    conn.execute("UPDATE ledger_entries SET idx = 20 WHERE idx = 10")
    conn.execute("UPDATE ledger_entries SET idx = 10 WHERE idx = -1")
    audit = _audit(filled)
    assert audit.bad_entry == 10 and not audit.ok


def test_rewriting_an_entry_with_all_its_hashes_is_caught_by_the_signed_head(filled):
    """A careful forger changes entry 1500 and rewrites every stored node to match."""
    conn = _raw(filled)
    entries = [_entry(i) for i in range(N)]
    entries[1500] = canonical_json({"experiment": 1500, "outcome": "forged"})
    conn.execute("UPDATE ledger_entries SET entry = ? WHERE idx = 1500", (entries[1500],))
    frontier, rows = merkle.Frontier(), []
    for e in entries:
        rows += frontier.append(merkle.leaf_hash(e))
    conn.execute("DELETE FROM ledger_nodes")
    conn.executemany("INSERT INTO ledger_nodes VALUES (?, ?)", enumerate(rows))
    audit = _audit(filled)
    assert (audit.bad_entry, audit.bad_head) == (None, 2000) and "root" in audit.reason


def test_deleting_the_heads_to_hide_a_rewrite_is_caught(filled):
    _raw(filled).execute("DELETE FROM ledger_heads WHERE size = 2000")
    audit = _audit(filled)
    assert audit.bad_head == 2000 and "missing" in audit.reason
    _raw(filled).execute("DELETE FROM ledger_heads")  # opening the ledger made new triggers
    assert _audit(filled).bad_head == 1000


def test_a_changed_interior_hash_is_named(filled):
    conn = _raw(filled)
    conn.execute("UPDATE ledger_nodes SET hash = ? WHERE pos = ?",
                 (bytes(32), node_position(3, 40)))  # entries 320..327
    audit = _audit(filled)
    assert audit.bad_entry == 320 and "320..327" in audit.reason


def test_a_head_signed_by_another_key_is_refused(filled):
    ledger = Ledger.open(filled)
    other = Ed25519PrivateKey.generate()
    root = ledger.root(2000)  # the right root: only the key is wrong
    forged = other.sign(head_bytes(2000, 1_700_000_000_000, root))
    _raw(filled).execute("UPDATE ledger_heads SET timestamp = ?, signature = ? WHERE size = 2000",
                         (1_700_000_000_000, forged))
    audit = _audit(filled)
    assert audit.bad_head == 2000 and "refused" in audit.reason
    with pytest.raises(CheckFailed, match="refused"):
        ledger_commands.prove(1500, str(filled))


def test_verifying_with_another_trusted_key_refuses_the_first_head(filled):
    audit = Ledger.open(filled).verify(Ed25519PrivateKey.generate().public_key())
    assert audit.bad_head == 1000 and audit.heads == 0


def test_the_tables_refuse_ordinary_updates_and_deletes(filled):
    conn = sqlite3.connect(filled)
    for sql in ("UPDATE ledger_entries SET entry = x'00' WHERE idx = 1",
                "DELETE FROM ledger_nodes WHERE pos = 1", "DELETE FROM ledger_heads"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)


# -- appending: batches, other writers, the key -------------------------------------

def test_a_failed_batch_appends_nothing(db):
    ledger = Ledger.open(db)
    ledger.append_many(_entry(i) for i in range(10))
    with pytest.raises(TypeError):
        ledger.append_many([_entry(10), "not bytes"])
    assert ledger.size == 10 and ledger.append(_entry(10)) == 10
    assert _audit(db).ok


def test_two_writers_on_one_database_interleave(db):
    a, b = Ledger.open(db), Ledger.open(db)
    for i in range(15):
        assert (a if i % 2 else b).append(_entry(i)) == i
    assert a.size == b.size == 15
    assert a.append_many(_entry(i) for i in range(15, 1015)) == range(15, 1015)
    assert b.append(_entry(1015)) == 1015 and [h.size for h in b.heads()] == [1000]
    assert _audit(db).ok


def test_a_read_only_ledger_cannot_append(filled):
    ledger = Ledger.open(filled, read_only=True)
    with pytest.raises(LedgerError, match="read-only"):
        ledger.append(b"x")
    with pytest.raises(LedgerError, match="no database"):
        Ledger.open(filled.with_name("typo.db"), read_only=True)


def test_the_key_lives_beside_the_database_not_in_it(filled):
    path = key_path(filled)
    assert path == filled.with_name("metaos.db.ledger-key")
    assert path.stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    assert raw not in filled.read_bytes()
    assert public_key_hex(Ledger.open(filled).public_key) == public_key_hex(key)
    path.chmod(0o644)
    with pytest.raises(LedgerError, match="chmod 600"):
        Ledger.open(filled)


WRITER = """
import sys
from stores.ledger import Ledger
ledger = Ledger.open(sys.argv[1])
i = ledger.size
while True:
    index = ledger.append(b'{"experiment":%d}' % i)
    print(index, flush=True)
    i += 1
"""


def test_a_killed_writer_loses_no_acknowledged_entry_and_resumes(db):
    """Kill -9 a process appending one entry per transaction: every append it reported done
    is there, no partial entry is, and a new writer carries on from where it stopped."""
    for _ in range(2):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], cwd=REPO,
                                  stdout=subprocess.PIPE, text=True)
        acknowledged = [int(writer.stdout.readline()) for _ in range(60)]
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        ledger = Ledger.open(db, read_only=True)
        assert ledger.size >= acknowledged[-1] + 1
        assert [e for _, e in ledger.entries()] == [
            b'{"experiment":%d}' % i for i in range(ledger.size)]
        assert _audit(db).ok


# -- ./run ledger -----------------------------------------------------------------

def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "run"), "ledger", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO, check=False)


def test_the_ledger_commands(filled):
    db = str(filled)
    shown = _run("show", "--db", db)
    assert shown.returncode == 0, shown.stderr
    assert "2,500 entries" in shown.stdout and "size 2,000" in shown.stdout
    assert "(signed by this key)" in shown.stdout and '{"experiment":2499' in shown.stdout
    proved = _run("prove", "1234", "--db", db)
    assert proved.returncode == 0 and proved.stdout.splitlines()[-1].startswith("verified")
    assert ledger_root_hex(filled, 2000) in proved.stdout
    assert _run("consistency", "1000", "2500", "--db", db).stdout.splitlines()[-1] == "verified"
    assert _run("verify", "--db", db).stdout.startswith("verified: 2,500 entries")

    usage = _run("prove", "9999", "--db", db)
    assert usage.returncode == 2 and usage.stderr.strip() == (
        "error: no entry 9999 in a tree of 2500 entries")
    _raw(filled).execute("UPDATE ledger_entries SET entry = x'00' WHERE idx = 42")
    failed = _run("verify", "--db", db)
    assert failed.returncode == 1 and len(failed.stderr.strip().splitlines()) == 1
    assert "entry 42 " in failed.stderr


def ledger_root_hex(db: Path, size: int) -> str:
    return Ledger.open(db, read_only=True).root(size).hex()


def test_verify_takes_the_trusted_key_on_the_command_line(filled):
    other = public_key_hex(Ed25519PrivateKey.generate())
    refused = _run("verify", "--db", str(filled), "--key", other)
    assert refused.returncode == 1 and "refused" in refused.stderr
    assert _run("verify", "--db", str(filled), "--key", "abc").returncode == 2
    os.remove(key_path(filled))
    assert _run("verify", "--db", str(filled)).returncode == 2
