"""The semantic store: names as an overlay, the tasks' functions, and crash safety."""

from arch import RISCV64
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stores.db import connect
from cli import sem as cli
from sem.canon import canonicalize, parse
from sem.library import FILES
from sem.store import SemStore, UnknownRoutine

ROOT = Path(__file__).resolve().parents[1]


def test_names_are_an_overlay_and_renaming_touches_no_code(tmp_path):
    db = tmp_path / "m.db"
    cli.add(str(FILES[0]), str(db))
    store = SemStore(connect(db))
    rid = store.resolve("hd:p01")
    code_before = store.conn.execute("SELECT canonical FROM sem_routines").fetchall()
    cli.rename("hd:p01", "bits:clear_lowest_one", str(db))
    assert store.conn.execute("SELECT canonical FROM sem_routines").fetchall() == code_before
    assert store.resolve("bits:clear_lowest_one") == rid == store.resolve(rid[:8])
    with pytest.raises(UnknownRoutine):
        store.resolve("hd:p01")
    assert "bits:clear_lowest_one" in cli.names(rid[:12], str(db))


def test_tasks_show_every_view_equiv_links_classes_and_history_lists_impls(tmp_path):
    db = str(tmp_path / "m.db")
    for f in FILES:
        cli.add(str(f), db)
    assert "(x: bv32) -> bv32" in cli.show("p09", "semantic", db=db)
    assert "define-fun p09" in cli.show("p09", "smtlib", db=db)
    assert "uint32_t p09(uint32_t x)" in cli.show("p09", "c", db=db)
    assert "1000 vectors" in cli.show("sort3", "asm", RISCV64, db=db)
    assert "riscv64" in cli.history("sort3", db)
    assert cli.equiv("p22", "p23", db).startswith("different")
    store = SemStore(connect(db))
    (tmp_path / "alt.py").write_text(
        "from sem.ir import bv32, popcount, routine\n"
        "@routine\ndef parity(x: bv32) -> bv32:\n    return popcount(x) & 1\n")
    cli.add(str(tmp_path / "alt.py"), db)
    assert cli.equiv("hd:p22", "alt:parity", db).startswith("equivalent")
    spec = store.resolve("hd:p22")
    assert store.class_of(store.resolve("alt:parity")) == spec
    impl = store.implementations(store.resolve("sort3"), RISCV64)[0]
    store.record_performance(impl.id, "qemu-virt-rv64", "cycles", 41.0, 1000, "tcg")
    assert "cycles = 41 over 1000 samples" in cli.history("sort3", db)


WRITER = """
import random, sys
from stores.db import connect
from sem.ir import Node, Routine, bv32
from sem.store import Name, SemStore
store = SemStore(connect(sys.argv[1]))
rng = random.Random(int(sys.argv[2]))
batch = 0
while True:
    items = []
    for i in range(200):  # big transactions: routine rows, then name rows
        x = Node("param", 32, (), 0)
        k = rng.getrandbits(32)
        items.append((Routine((bv32,), (x ^ k) + (k >> 3), None), (Name("crash", f"s{sys.argv[2]}_{batch}_{i}"),)))
    store.add_many(items)
    batch += 1
    print(batch, flush=True)
"""


def test_a_writer_killed_mid_write_leaves_no_partial_routine(tmp_path):
    db = tmp_path / "crash.db"
    for seed in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(seed)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline()  # at least one batch committed
        time.sleep(0.05 * (seed + 1))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT id, canonical FROM sem_routines").fetchall()
        for rid, text in rows:
            assert canonicalize(parse(text)).id == rid
        unnamed = conn.execute("SELECT count(*) FROM sem_routines r WHERE NOT EXISTS"
                               " (SELECT 1 FROM sem_names n WHERE n.routine_id = r.id)").fetchone()[0]
        names = conn.execute("SELECT count(*) FROM sem_names").fetchone()[0]
        assert unnamed == 0
        assert names % 200 == 0  # whole batches only
        conn.close()
