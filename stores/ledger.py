"""The ledger: an append-only, tamper-evident log of opaque entries, kept in the shared
MetaOS database as an RFC 9162 Merkle tree (stores/merkle.py) with Ed25519-signed tree
heads.  The mutation market appends every experiment's outcome to it.

Tables (all reject UPDATE and DELETE by trigger, so ordinary code cannot rewrite history;
someone with the file can drop the triggers, and `verify` is what catches that):
    ledger_entries(idx, entry)        entry idx's bytes, idx = 0, 1, 2, ... with no gap
    ledger_nodes(pos, hash)           every perfect-subtree hash, leaf hashes included,
                                      in the order appends complete them (`node_position`)
    ledger_heads(size, timestamp, root, signature)   the signed tree heads
Keeping every perfect subtree (2n nodes for n entries) makes an inclusion or consistency
proof, against any tree size, O(log n) primary-key lookups with no leaf rehashed.

A signed head is an Ed25519 signature over RFC 9162's TreeHeadDataV2 in its TLS encoding
(`head_bytes`): uint64 timestamp (ms since the Unix epoch) | uint64 tree_size |
uint8 32 | the 32-byte root | uint16 0 (no extensions), integers big-endian.  A head is
signed, in the same transaction, whenever the size reaches a multiple of `head_every`
(1,000), and on demand by `sign_head()`.

The signing key is a PEM (PKCS#8) Ed25519 private key in its own file, by default next
to the database as `<db>.ledger-key`, created on first use with mode 0600; its public key
is the trust anchor that `verify` takes.  It is not in the database because the heads
exist to catch whoever can rewrite the database: with the key beside the entries, that
person could re-sign a rewritten history, and every copy or backup of the database would
carry the key.  Keep a copy of the public key (`./run ledger show` prints it) somewhere
the database's writers cannot change.

Durability: each `append`/`append_many` is one transaction (WAL, synchronous=FULL, as
stores/db.py opens every connection), so entries are on disk once the call returns
and a process killed mid-batch leaves none of that batch.  Any reader can rebuild its own
state by scanning `entries()`.

`verify(trusted_key)` recomputes every leaf hash from the stored entry bytes, rebuilds the
tree, compares every stored node with its recomputed value, checks every head's
signature against the trusted key and its root against the recomputed tree, and requires
a head at every multiple of `head_every` (else deleting the heads would leave a rewritten
history nothing to disagree with); it stops at the first problem and names the entry (or
head) it concerns.  A changed entry is named
exactly while its stored leaf hash is intact; if the hashes were rewritten to match, the
first stored node or signed head that disagrees bounds it.  Entries after the last signed
head are protected by their stored hashes only: sign a head when a batch of work ends.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from stores import merkle
from stores.db import connect, database_path, ensure_schema
from stores.merkle import Frontier, Node, leaf_hash

PART, VERSION = "ledger", 1
HEAD_EVERY = 1000
KEY_SUFFIX = ".ledger-key"

_TABLES = ("ledger_entries", "ledger_nodes", "ledger_heads")
DDL = """
CREATE TABLE IF NOT EXISTS ledger_entries (
    idx INTEGER PRIMARY KEY,          -- 0, 1, 2, ... in append order, no gap
    entry BLOB NOT NULL               -- the entry's bytes, opaque to the ledger
);
CREATE TABLE IF NOT EXISTS ledger_nodes (
    pos INTEGER PRIMARY KEY,          -- node_position(level, index)
    hash BLOB NOT NULL                -- SHA-256 of that perfect subtree (RFC 9162)
);
CREATE TABLE IF NOT EXISTS ledger_heads (
    size INTEGER PRIMARY KEY,         -- tree size the head covers
    timestamp INTEGER NOT NULL,       -- ms since the Unix epoch
    root BLOB NOT NULL,
    signature BLOB NOT NULL           -- Ed25519 over head_bytes(size, timestamp, root)
);
""" + "".join(
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} BEFORE {action} ON {table}\n"
    f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;\n"
    for table in _TABLES for action in ("UPDATE", "DELETE")
)


class LedgerError(Exception):
    """A ledger operation that cannot be done; the message says why and what to do."""


def node_position(level: int, index: int) -> int:
    """Where the perfect subtree (level, index) is stored: the number of nodes completed
    before it.  Appending leaf i completes the leaf, then one parent per trailing 1 bit of
    i, and leaves [0, i) complete 2i - popcount(i) nodes before it."""
    last = ((index + 1) << level) - 1
    return 2 * last - last.bit_count() + level


def nodes_for(size: int) -> int:
    """How many perfect subtrees a tree of `size` entries has."""
    return 2 * size - size.bit_count()


def head_bytes(size: int, timestamp: int, root: bytes) -> bytes:
    """The TLS encoding of RFC 9162's TreeHeadDataV2 with no extensions: what a head signs."""
    return struct.pack(">QQB", timestamp, size, len(root)) + root + b"\x00\x00"


def canonical_json(record: Mapping) -> bytes:
    """Sorted keys, no spaces, UTF-8, no NaN/Infinity: one byte string per record."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


@dataclass(frozen=True)
class SignedHead:
    size: int
    timestamp: int  # ms since the Unix epoch
    root: bytes
    signature: bytes

    def signed_by(self, key: Ed25519PublicKey) -> bool:
        try:
            key.verify(self.signature, head_bytes(self.size, self.timestamp, self.root))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class InclusionProof:
    """Entry `index` (whose leaf hash is `leaf`) is in the tree of `size` entries."""
    index: int
    size: int
    leaf: bytes
    path: tuple[bytes, ...]
    root: bytes

    def verify(self) -> bool:
        return merkle.verify_inclusion(self.index, self.size, self.leaf, self.path, self.root)


@dataclass(frozen=True)
class ConsistencyProof:
    """The tree of `old` entries is a prefix of the tree of `new` entries."""
    old: int
    new: int
    old_root: bytes
    new_root: bytes
    path: tuple[bytes, ...]

    def verify(self) -> bool:
        return merkle.verify_consistency(self.old, self.new, self.old_root, self.new_root,
                                         self.path)


@dataclass(frozen=True)
class LedgerAudit:
    """What `Ledger.verify` found: all good, or the first bad entry and/or head, and why."""
    entries: int  # entries checked
    heads: int  # signed heads checked
    bad_entry: int | None = None
    bad_head: int | None = None  # the tree size of the head
    reason: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


# -- the signing key ---------------------------------------------------------

def key_path(db: str | os.PathLike | None = None) -> Path:
    """Where the ledger key of database `db` lives by default: `<db>.ledger-key`."""
    path = database_path(db)
    return path.with_name(path.name + KEY_SUFFIX)


def load_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise LedgerError(f"no ledger key at {path}: appending to the ledger creates it, or "
                          "pass the trusted public key") from None
    if mode & 0o077:
        raise LedgerError(f"{path} can be read by other users (mode {mode & 0o777:o}): "
                          f"chmod 600 {path}")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_or_create_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    """The key at `path`; a new one, written with mode 0600, if there is none."""
    path = Path(path)
    if path.exists():
        return load_key(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: of two processes creating it at once, one writes and both use its key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_key(path)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())
    return key


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def parse_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise LedgerError(f"{text!r} is not an Ed25519 public key: give its 32 bytes as 64 "
                          "hex digits (as `./run ledger show` prints)")
    return Ed25519PublicKey.from_public_bytes(raw)


# -- the log -----------------------------------------------------------------

class Ledger:
    """The append-only log over one database connection.  `key` signs the heads; without
    it the ledger is read-only (proofs, verification, reading entries)."""

    def __init__(self, conn: sqlite3.Connection, key: Ed25519PrivateKey | None = None,
                 head_every: int = HEAD_EVERY) -> None:
        ensure_schema(conn, PART, VERSION, DDL)
        self._conn = conn
        self._key = key
        self.head_every = head_every
        self._frontier = Frontier()
        self._sync()

    @classmethod
    def open(cls, db: str | os.PathLike | None = None, *, read_only: bool = False) -> Ledger:
        """The ledger of database `db` (default $METAOS_DB, else ./metaos.db), signing with
        the key beside it (created on first use) unless `read_only`."""
        if read_only and not database_path(db).exists():
            raise LedgerError(f"no database at {database_path(db)}: give its path "
                              "(--db) or set METAOS_DB")
        key = None if read_only else load_or_create_key(key_path(db))
        return cls(connect(db), key)

    @property
    def public_key(self) -> Ed25519PublicKey | None:
        return self._key.public_key() if self._key else None

    @property
    def size(self) -> int:
        self._sync()
        return self._frontier.size

    def _stored_size(self) -> int:
        return self._conn.execute(
            "SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries").fetchone()[0]

    def _sync(self) -> None:
        """Catch up with appends made through another connection (one query)."""
        size = self._stored_size()
        if size != self._frontier.size:
            self._frontier = Frontier(size, self.hashes(merkle.pieces(0, size)))

    def hashes(self, nodes: Sequence[Node]) -> list[bytes]:
        """The stored hashes of perfect subtrees (a merkle.NodeSource), one query."""
        positions = [node_position(level, index) for level, index in nodes]
        marks = ",".join("?" * len(positions))
        found = dict(self._conn.execute(
            f"SELECT pos, hash FROM ledger_nodes WHERE pos IN ({marks})", positions))
        try:
            return [found[pos] for pos in positions]
        except KeyError as missing:
            raise LedgerError(f"the ledger's stored node {missing.args[0]} is missing: "
                              "run `./run ledger verify`") from None

    # -- appending --------------------------------------------------------------

    def append(self, entry: bytes) -> int:
        """Append one entry; returns its index once it is on disk."""
        return self.append_many([entry]).start

    def append_many(self, entries: Iterable[bytes]) -> range:
        """Append entries in one transaction; returns their indexes."""
        if self._key is None:
            raise LedgerError("this ledger was opened read-only (no signing key): "
                              "open it with Ledger.open(db) to append")
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")  # one writer at a time, from here on
            self._sync()
            frontier = self._frontier.copy()
            start, pos = frontier.size, nodes_for(frontier.size)
            entry_rows, node_rows, heads = [], [], []
            for entry in entries:
                if not isinstance(entry, bytes):
                    raise TypeError(f"a ledger entry is bytes, not {type(entry).__name__}: "
                                    "use append_record for a dict")
                entry_rows.append((frontier.size, entry))
                for h in frontier.append(leaf_hash(entry)):
                    node_rows.append((pos, h))
                    pos += 1
                if frontier.size % self.head_every == 0:
                    heads.append(self._sign(frontier.size, frontier.root()))
            self._conn.executemany("INSERT INTO ledger_entries (idx, entry) VALUES (?, ?)",
                                   entry_rows)
            self._conn.executemany("INSERT INTO ledger_nodes (pos, hash) VALUES (?, ?)",
                                   node_rows)
            self._insert_heads(heads)
        self._frontier = frontier
        return range(start, frontier.size)

    def append_record(self, record: Mapping) -> int:
        """Append a record as canonical JSON (`canonical_json`); returns its index."""
        return self.append(canonical_json(record))

    def append_records(self, records: Iterable[Mapping]) -> range:
        return self.append_many(canonical_json(r) for r in records)

    def _sign(self, size: int, root: bytes) -> SignedHead:
        timestamp = time.time_ns() // 1_000_000
        return SignedHead(size, timestamp, root, self._key.sign(head_bytes(size, timestamp, root)))

    def _insert_heads(self, heads: Iterable[SignedHead]) -> None:
        self._conn.executemany(
            "INSERT INTO ledger_heads (size, timestamp, root, signature) VALUES (?, ?, ?, ?)",
            [(h.size, h.timestamp, h.root, h.signature) for h in heads])

    def sign_head(self) -> SignedHead:
        """A signed head for the current size (the stored one if there is one already)."""
        if self._key is None:
            raise LedgerError("this ledger was opened read-only (no signing key): "
                              "open it with Ledger.open(db) to sign")
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._sync()
            size = self._frontier.size
            if size == 0:
                raise LedgerError("the ledger is empty: append an entry before signing a head")
            head = self.head(size)
            if head is None:
                head = self._sign(size, self._frontier.root())
                self._insert_heads([head])
        return head

    # -- reading -----------------------------------------------------------------

    def entry(self, index: int) -> bytes:
        row = self._conn.execute("SELECT entry FROM ledger_entries WHERE idx = ?",
                                 (index,)).fetchone()
        if row is None:
            raise LedgerError(f"the ledger has no entry {index} (it holds {self.size})")
        return row[0]

    def record(self, index: int) -> dict:
        return json.loads(self.entry(index))

    def entries(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """(index, bytes) of every entry from `start` on, in order."""
        yield from self._conn.execute(
            "SELECT idx, entry FROM ledger_entries WHERE idx >= ? ORDER BY idx", (start,))

    def heads(self) -> list[SignedHead]:
        return [SignedHead(*row) for row in self._conn.execute(
            "SELECT size, timestamp, root, signature FROM ledger_heads ORDER BY size")]

    def head(self, size: int) -> SignedHead | None:
        row = self._conn.execute("SELECT size, timestamp, root, signature FROM ledger_heads "
                                 "WHERE size = ?", (size,)).fetchone()
        return SignedHead(*row) if row else None

    def latest_head(self) -> SignedHead | None:
        row = self._conn.execute("SELECT size, timestamp, root, signature FROM ledger_heads "
                                 "ORDER BY size DESC LIMIT 1").fetchone()
        return SignedHead(*row) if row else None

    def head_covering(self, index: int) -> SignedHead | None:
        """The latest signed head that covers entry `index` (None if none does yet)."""
        head = self.latest_head()
        return head if head is not None and head.size > index else None

    # -- proofs ------------------------------------------------------------------

    def _within(self, size: int | None) -> int:
        current = self.size
        if size is None:
            return current
        if not 0 <= size <= current:
            raise LedgerError(f"the ledger has {current} entries, not {size}")
        return size

    def root(self, size: int | None = None) -> bytes:
        """The tree hash of the first `size` entries (default: all)."""
        return merkle.root(self._within(size), self)

    def prove(self, index: int, size: int | None = None) -> InclusionProof:
        """Entry `index` is in the tree of the first `size` entries (default: all); its leaf
        hash is computed from the stored entry bytes, the path read from stored nodes."""
        size = self._within(size)
        if not 0 <= index < size:
            raise LedgerError(f"no entry {index} in a tree of {size} entries")
        ranges = merkle.inclusion_ranges(index, size)
        *path, root = merkle.range_hashes(ranges + [(0, size)], self)
        return InclusionProof(index, size, leaf_hash(self.entry(index)), tuple(path), root)

    def consistency(self, old: int, new: int | None = None) -> ConsistencyProof:
        """The first `old` entries' tree is a prefix of the first `new` entries' tree."""
        new = self._within(new)
        if not 0 <= old <= new:
            raise LedgerError(f"no consistency proof from {old} to {new} entries: "
                              "need 0 <= OLD <= NEW")
        ranges = merkle.consistency_ranges(old, new)
        *path, old_root, new_root = merkle.range_hashes(ranges + [(0, old), (0, new)], self)
        return ConsistencyProof(old, new, old_root, new_root, tuple(path))

    # -- auditing ----------------------------------------------------------------

    def verify(self, trusted: Ed25519PublicKey) -> LedgerAudit:
        """Recompute everything from the entry bytes and check it against what is stored
        and what the trusted key signed; see the module docstring."""
        with self._conn:
            self._conn.execute("BEGIN")  # one snapshot for every read below
            return self._audit(trusted)

    def _audit(self, trusted: Ed25519PublicKey) -> LedgerAudit:
        heads = iter(self.heads())
        head = next(heads, None)
        stored_nodes = self._conn.execute("SELECT pos, hash FROM ledger_nodes ORDER BY pos")
        frontier, pos, checked = Frontier(), 0, 0

        def bad(reason: str, entry: int | None = None, at: int | None = None) -> LedgerAudit:
            return LedgerAudit(frontier.size, checked, entry, at, reason)

        def check_heads() -> LedgerAudit | None:
            nonlocal head, checked
            if (head is None or head.size != frontier.size) and frontier.size and \
                    frontier.size % self.head_every == 0:
                return bad(f"the signed head at size {frontier.size} is missing (one is signed "
                           f"every {self.head_every:,} entries)", at=frontier.size)
            while head is not None and head.size == frontier.size:
                if not head.signed_by(trusted):
                    return bad(f"the head at size {head.size} is not signed by the trusted key "
                               "(another key signed it, or it was altered): refused",
                               at=head.size)
                if head.root != frontier.root():
                    return bad(f"the signed head at size {head.size} has another root than "
                               f"its entries: an entry or stored hash before {head.size} "
                               "was changed", at=head.size)
                checked += 1
                head = next(heads, None)
            return None

        for idx, entry in self.entries():
            found = check_heads()
            if found:
                return found
            if idx != frontier.size:
                return bad(f"entry {frontier.size} is missing (the next stored entry is {idx})",
                           entry=frontier.size)
            if not isinstance(entry, bytes):
                return bad(f"entry {idx} is stored as {type(entry).__name__}, not bytes",
                           entry=idx)
            for level, h in enumerate(frontier.append(leaf_hash(entry))):
                row = stored_nodes.fetchone()
                first = idx + 1 - (1 << level)
                if row is None or row[0] != pos:
                    return bad(f"the stored hash of entries {first}..{idx} is missing",
                               entry=first)
                if row[1] != h:
                    if level == 0:
                        return bad(f"entry {idx} does not match its stored leaf hash "
                                   "(its bytes were changed, or it was moved)", entry=idx)
                    return bad(f"the stored hash of entries {first}..{idx} differs from the "
                               "one recomputed from them", entry=first)
                pos += 1
        found = check_heads()
        if found:
            return found
        if head is not None:
            return bad(f"entry {frontier.size} is missing: the signed head at size {head.size} "
                       f"covers it, the ledger ends at {frontier.size}", entry=frontier.size,
                       at=head.size)
        if stored_nodes.fetchone() is not None:
            return bad(f"entry {frontier.size} is missing: stored hashes go on past the last "
                       "entry", entry=frontier.size)
        return LedgerAudit(frontier.size, checked)
