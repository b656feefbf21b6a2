"""The capability store: divergences, quarantine, listing, and crash safety."""

from arch import X86_64, RISCV64
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import keystone

from discovery.fingerprint import riscv_fingerprint, x86_fingerprint
from probes.store import CapabilityStore, StoredResult
from contract.probe_abi import Outcome
from probes.campaign import Campaign
from testing.fake_guest import FakeGuest
from testing.loopback import Loopback
from probes.probe import Observation, Probe
from probes.vet import vet

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
                            FP, "tcg", [StoredResult(r.probe, r.observation, r.prediction) for r in b]))
    report = campaign.run(items)
    assert report.divergences == len(odd)
    rows = store.divergences()
    assert {h for h, _, _ in rows} == odd
    for probe_hash, predicted, observed in rows:
        square = (int.from_bytes(next(p for p, _ in items if p.content_hash == probe_hash).input, "little") ** 2)
        assert predicted.endswith(square.to_bytes(8, "little"))  # the emulator was right
        assert predicted != observed
    summary = store.capabilities()[0]
    assert summary.results == 40 and summary.divergences == len(odd)
    assert summary.by_family == {"adhoc": {"returned": 40}}


def test_fingerprints_are_separate_and_quarantine_keeps_bytes(tmp_path):
    store = CapabilityStore(tmp_path / "m.db")
    rv = riscv_fingerprint("virt", misa=0x800000000014112D, mvendorid=0, marchid=0, mimpid=0)
    killer = Probe(RISCV64, bytes.fromhex("6f000000"))
    store.quarantine(rv, killer, "board hung")
    store.record_batch(FP, "kvm", [StoredResult(Probe(X86_64, b"\xc3"), Observation(Outcome.RETURNED))])
    listing = {s.board: s for s in store.capabilities()}
    assert listing["virt"].quarantined == 1 and listing["virt"].results == 0
    assert listing["q35"].results == 1 and listing["q35"].identity["family"] == 6
    code = store.conn.execute("SELECT code FROM cap_probe WHERE hash = ?", (killer.content_hash,)).fetchone()[0]
    assert code == killer.code
    assert store.quarantined(rv) == {killer.content_hash}
    assert store.quarantined(FP) == set()  # other hardware may survive it


WRITER = """
import sys
from arch import X86_64
from discovery.fingerprint import x86_fingerprint
from probes.store import CapabilityStore, StoredResult
from contract.probe_abi import Outcome
from probes.probe import Observation, Probe
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
        assert conn.execute("SELECT COUNT(*) FROM cap_result WHERE batch_id = ?", (batch_id,)).fetchone()[0] == expected
    orphans = conn.execute("SELECT COUNT(*) FROM cap_result WHERE batch_id NOT IN (SELECT id FROM cap_batch)")
    assert orphans.fetchone()[0] == 0
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
