"""The functions behind `./run ledger.*`: each returns the text to print.

`db` is the database path (None: $METAOS_DB, else ./metaos.db); `key` the trusted public
key as 64 hex digits (None: the public half of `<db>.ledger-key`).  A request that cannot
be answered raises stores.ledger.LedgerError; a check that fails raises CheckFailed."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stores.ledger import (
    Ledger,
    LedgerError,
    SignedHead,
    key_path,
    load_key,
    parse_public_key,
    public_key_hex,
)


class CheckFailed(Exception):
    """The ledger, a proof or a head did not pass its check."""


def _trusted(db: str | None, key: str | None) -> Ed25519PublicKey:
    return parse_public_key(key) if key else load_key(key_path(db)).public_key()


def _number(text: str | int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise LedgerError(f"{what} must be a whole number, not {text!r}") from None


def _text(entry: bytes, width: int = 90) -> str:
    try:
        text = entry.decode("utf-8")
    except UnicodeDecodeError:
        text = "hex " + entry.hex()
    return text if len(text) <= width else text[:width - 3] + "..."


def _head(head: SignedHead) -> str:
    when = datetime.fromtimestamp(head.timestamp / 1000, UTC)
    return f"size {head.size:,}, signed {when:%Y-%m-%d %H:%M:%S} UTC, root {head.root.hex()}"


def show(db: str | None = None, key: str | None = None, last: int = 10) -> str:
    """Size, the trusted key, the latest signed head (signed by that key?), the last entries."""
    ledger = Ledger.open(db, read_only=True)
    size = ledger.size
    lines = [f"ledger  {size:,} entries"]
    trusted = _trusted(db, key) if key or key_path(db).exists() else None
    if trusted:
        lines.append(f"key     {public_key_hex(trusted)}" + ("" if key else f" ({key_path(db)})"))
    head = ledger.latest_head()
    if head is None:
        lines.append("head    none signed yet")
    else:
        signed = "" if trusted is None else (
            "  (signed by this key)" if head.signed_by(trusted) else "  (NOT signed by this key)")
        lines.append(f"head    {_head(head)}{signed}")
    lines += [f"{index:>7}  {_text(entry)}"
              for index, entry in ledger.entries(max(0, size - _number(last, "--last")))]
    return "\n".join(lines)


def verify(db: str | None = None, key: str | None = None) -> str:
    audit = Ledger.open(db, read_only=True).verify(_trusted(db, key))
    if not audit.ok:
        raise CheckFailed(audit.reason)
    return (f"verified: {audit.entries:,} entr{'y' if audit.entries == 1 else 'ies'} and"
            f" {audit.heads:,} signed head{'' if audit.heads == 1 else 's'}")


def prove(entry: str | int, db: str | None = None, key: str | None = None,
          size: str | int | None = None) -> str:
    """The audit path of ENTRY to the latest signed head that covers it (else to the whole
    ledger, or to the first `size` entries), checked."""
    index = _number(entry, "ENTRY")
    ledger = Ledger.open(db, read_only=True)
    head = None if size else ledger.head_covering(index)
    if head and not head.signed_by(_trusted(db, key)):
        raise CheckFailed(f"the head at size {head.size} is not signed by the trusted key: "
                          "refused (run `./run ledger verify`)")
    proof = ledger.prove(index, _number(size, "--size") if size else head.size if head else None)
    lines = [f"entry {index:,}: {_text(ledger.entry(index))}",
             f"tree    {proof.size:,} entries" + (
                 f" (signed head: {_head(head)})" if head else " (not under a signed head)"),
             f"leaf    {proof.leaf.hex()}"]
    lines += [f"path {step:>2} {h.hex()}" for step, h in enumerate(proof.path, 1)]
    lines.append(f"root    {proof.root.hex()}")
    if not proof.verify() or (head and proof.root != head.root):
        raise CheckFailed("the audit path does not lead to the root: run `./run ledger verify`")
    return "\n".join(lines + ["verified" + (": the entry is in the signed tree" if head else "")])


def consistency(old: str | int, new: str | int, db: str | None = None,
                key: str | None = None) -> str:
    """The consistency proof from OLD to NEW entries, checked, and the signed heads at
    those sizes, if any, checked against the trusted key and the proof's roots."""
    ledger = Ledger.open(db, read_only=True)
    proof = ledger.consistency(_number(old, "OLD"), _number(new, "NEW"))
    lines = [f"old     {proof.old:,} entries, root {proof.old_root.hex()}",
             f"new     {proof.new:,} entries, root {proof.new_root.hex()}"]
    lines += [f"path {step:>2} {h.hex()}" for step, h in enumerate(proof.path, 1)]
    heads = [h for h in (ledger.head(proof.old), ledger.head(proof.new)) if h]
    trusted = _trusted(db, key) if heads else None
    for head in heads:
        if not head.signed_by(trusted):
            raise CheckFailed(f"the head at size {head.size} is not signed by the trusted key: "
                              "refused")
        if head.root != (proof.old_root if head.size == proof.old else proof.new_root):
            raise CheckFailed(f"the signed head at size {head.size} has another root: "
                              "run `./run ledger verify`")
        lines.append(f"head    {_head(head)}: signed by the trusted key")
    if not proof.verify():
        raise CheckFailed("the proof does not verify: run `./run ledger verify`")
    return "\n".join(lines + ["verified"])
