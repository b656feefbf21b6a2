"""Probe campaigns on real QEMU boards (TCG): the CPUID and CSR sweeps against
QEMU's own CPU model, the vetter as the guest's gatekeeper, containment of
unvetted code, board deaths noticed and survived, transport faults, watchdog."""

from __future__ import annotations

import dataclasses
import io
import os
import signal
import statistics
import struct
import time

import pytest
from rich.console import Console

from arch import RISCV64, X86_64
from cli.probe import capabilities_command
from contract.frames import FrameDecoder, encode_frame
from contract.probe_abi import Privilege
from contract.protocol import LAYOUTS, Msg, ProbeLine, ProbeRefusal
from discovery.devicetree import parse_devicetree
from discovery.fingerprint import fingerprint_of, riscv_fingerprint
from discovery.harts import isa_string_letters
from discovery.inventory import Inventory
from kernel.guest import build_guest
from link.boot import BootError
from link.line_faults import LineFaults
from link.qemu_link import QemuLink
from probes.campaign import Campaign
from probes.catalogue import random_probes
from probes.families.cpuid import cpuid_sweep
from probes.families.csr import csr_probe
from probes.probe import Probe
from probes.run import POLICY, Tally, run_campaign
from probes.store import CapabilityStore
from probes.vet import vet
from qemu.boards import board
from qemu.groundtruth import cpu_model_expectation, running_cpu_feature_words
from testing.asm import x86 as assemble

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(240)]

X86, RV = X86_64, RISCV64
BOARDS = {X86: "q35", RV: "virt"}
RANDOM_OFFERED = 10_000
# mcause 2 (RISC-V Privileged Architecture, table "mcause values")
ILLEGAL_INSTRUCTION = 2
# CSR numbers (RISC-V Privileged Architecture, "CSR listing"): all exist on QEMU's rv64.
MSTATUS, MISA, MTVEC, MSCRATCH, MIP, MHARTID, MVENDORID, CYCLE = (
    0x300, 0x301, 0x305, 0x340, 0x344, 0xF14, 0xF11, 0xC00)
# M-mode custom read/write space: QEMU's virt implements none
CUSTOM_UNUSED = range(0x7C0, 0x7D0)


def tcg_board(arch: str):
    return board(BOARDS[arch], accel="tcg")


@pytest.fixture(scope="module")
def guests():
    return {arch: build_guest(arch) for arch in (X86, RV)}


def campaign(link: QemuLink, probes, db, **options) -> Tally:
    store = CapabilityStore(db)
    try:
        fingerprint = fingerprint_of(Inventory.from_boot(link.first_boot), link.board.name)
        return run_campaign(link, probes, store, fingerprint, link.accelerator, **options)
    finally:
        store.close()


def stored_results(db) -> dict[bytes, tuple[str, bytes]]:
    store = CapabilityStore(db)
    try:
        rows = store.conn.execute("SELECT probe_hash, outcome, output FROM cap_result").fetchall()
    finally:
        store.close()
    return {bytes(h): (outcome, bytes(output)) for h, outcome, output in rows}


def load_inside(frame) -> tuple[dict, bytes] | None:
    """The PROBE_LOAD fields and tail a PROBE_LOAD or PROBE_LOAD_RUN frame carries."""
    if frame.type == Msg.PROBE_LOAD:
        return LAYOUTS[Msg.PROBE_LOAD].unpack(frame.body)
    if frame.type == Msg.PROBE_LOAD_RUN:
        return LAYOUTS[Msg.PROBE_LOAD].unpack(LAYOUTS[Msg.PROBE_LOAD_RUN].unpack(frame.body)[1])
    return None


def loads_sent(link: QemuLink) -> list[bytes]:
    """The code of every probe the link loaded on the line (before fault injection)."""
    codes = []
    for frame in FrameDecoder().feed(bytes(link.sent)):
        if (load := load_inside(frame)) is not None:
            fields, tail = load
            codes.append(tail[: fields["code_length"]])
    return codes


def listing(db) -> str:
    out = io.StringIO()
    assert capabilities_command(str(db), Console(file=out, width=200)) == 0
    return out.getvalue()


def returns_42(arch: str) -> Probe:
    code = assemble("mov eax, 42; ret") if arch is X86 else RV.assemble("li a0, 42\nret")
    return Probe(arch, code, family="sanity")


# -- sweeps against QEMU's own description of the CPU ------------------------------------

def test_cpuid_sweep_matches_qemus_cpu_model_and_is_listed(guests, tmp_path):
    db = tmp_path / "cap.db"
    with QemuLink(tcg_board(X86), guests[X86]) as link:
        tally = campaign(link, cpuid_sweep(), db)
        expected = cpu_model_expectation(link.machine, link.board.cpu)
        feature_words = running_cpu_feature_words(link.machine)
    assert (tally.stored == tally.sent == tally.generated
            and tally.outcomes["returned"] == tally.stored)
    outputs = {}
    for probe in cpuid_sweep():
        outcome, output = stored_results(db)[probe.content_hash]
        outputs[probe.meta["leaf"], probe.meta["subleaf"]] = dict(zip(
            ("EAX", "EBX", "ECX", "EDX"),
            (int.from_bytes(output[i:i + 4], "little") for i in range(0, 16, 4)), strict=True))
    leaf0 = outputs[0, 0]
    vendor = b"".join(leaf0[r].to_bytes(4, "little") for r in ("EBX", "EDX", "ECX")).decode()
    assert vendor == expected.vendor and leaf0["EAX"] == expected.level
    assert outputs[1, 0]["EAX"] == expected.signature
    assert outputs[0x8000_0000, 0]["EAX"] == expected.xlevel
    # every feature bit QEMU gives the CPU, seen from ring 3
    for word, bits in feature_words.items():
        if (word.leaf, word.subleaf or 0) in outputs:
            assert outputs[word.leaf, word.subleaf or 0][word.register] & bits == bits, word
    text = listing(db)
    assert "x86_64 on q35" in text and expected.vendor in text
    assert f"cpuid  {tally.stored}" in " ".join(text.split()).replace(" ", "  ")


def test_csr_sweep_subset_privileged_matches_the_device_tree(guests, tmp_path):
    db = tmp_path / "cap.db"
    numbers = [MSTATUS, MISA, MTVEC, MSCRATCH, MHARTID, MVENDORID, CYCLE, *CUSTOM_UNUSED,
               *range(0x3A0, 0x3F0)]
    with QemuLink(tcg_board(RV), guests[RV], privileged=True) as link:
        tally = campaign(link, (csr_probe(n) for n in numbers), db)
        (devicetree,) = [f for f in link.boots[0].frames if f.type == Msg.DEVICETREE]
    assert tally.stored == len(numbers) and tally.outcomes["refused"] == 0
    results = stored_results(db)
    value = {n: int.from_bytes(results[csr_probe(n).content_hash][1], "little") for n in numbers
             if results[csr_probe(n).content_hash][0] == "returned"}
    isa = parse_devicetree(devicetree.fields()[1]).harts[0].isa  # QEMU's own riscv,isa string
    misa_letters = "".join(chr(ord("a") + b) for b in range(26) if value[MISA] >> b & 1)
    assert set(isa_string_letters(isa)) <= set(misa_letters) and value[MISA] >> 62 == 2  # MXL = 64
    assert value[MHARTID] == 0 and value[MVENDORID] == 0
    assert value[MSTATUS] >> 32 & 0xF == 0b1010  # UXL = SXL = 2: U and S mode are 64-bit too
    assert all(results[csr_probe(n).content_hash][0] == "fault" for n in CUSTOM_UNUSED)
    text = listing(db)
    assert "riscv64 on virt" in text and "csr" in text and misa_letters in text


# -- the vetter as gatekeeper; containment ---------------------------------------------------

@pytest.mark.parametrize("arch", [X86, RV])
def test_random_bytes_rejected_never_reach_the_guest_and_accepted_never_bring_it_down(
        guests, tmp_path, arch):
    # the first RANDOM_OFFERED of the endless stream
    offered = [p for p, _ in zip(random_probes(arch, seed=7), range(RANDOM_OFFERED), strict=False)]
    verdicts = {p.content_hash: vet(p).accepted for p in offered}
    with QemuLink(tcg_board(arch), guests[arch], keep_sent=True) as link:
        tally = campaign(link, offered + [returns_42(arch)], tmp_path / "cap.db")
        sent = set(loads_sent(link))
        assert link.restarts == 0 and link.machine.running
    accepted = {p.code for p in offered if verdicts[p.content_hash]}
    rejected = {p.code for p in offered if not verdicts[p.content_hash]} - accepted
    assert rejected and accepted  # both kinds were really offered
    assert sent == accepted | {returns_42(arch).code} and not sent & rejected
    assert tally.restarts == 0 and not tally.quarantined
    assert stored_results(tmp_path / "cap.db")[returns_42(arch).content_hash][0] == "returned"


@pytest.mark.parametrize("arch", [X86, RV])
def test_unsafe_unvetted_user_code_leaves_the_kernel_standing(guests, tmp_path, arch):
    db = tmp_path / "cap.db"
    offered = [p for p, _ in zip(random_probes(arch, seed=8), range(1500), strict=False)]
    offered.append(returns_42(arch))
    with QemuLink(tcg_board(arch), guests[arch]) as link:
        tally = campaign(link, offered, db, unsafe_unvetted=True)
        assert link.restarts == 0 and link.machine.running
    assert (sum(tally.rejected.values()) == 0
            and tally.sent == len({p.content_hash for p in offered}))
    assert tally.stored == tally.sent and tally.outcomes["fault"] > 0
    assert (stored_results(db)[returns_42(arch).content_hash]
            == ("returned", bytes(returns_42(arch).output_size)))


class StrikesOnLoad:
    """A link that strikes QEMU as it sends the LOAD of one probe, once per QEMU:
    SIGKILL (the board dies) or SIGSTOP (the board hangs, silent but alive).  The
    strike comes first, so the probe never runs (a guest on the virtio console
    answers faster than a signal lands).  The campaign cannot tell either from a
    probe that brought the board down."""

    def __init__(self, link: QemuLink, killer: Probe, strike: signal.Signals) -> None:
        self.link, self.tag, self.strike = link, killer.tag, strike
        self.struck_at: list[float] = []
        self.struck_pids: set[int] = set()
        self.now, self.poll, self.restart = link.now, link.poll, link.restart

    def send(self, data: bytes) -> None:
        machine = self.link.machine
        for frame in FrameDecoder().feed(b"\0" + data):
            load = load_inside(frame)
            if (load is not None and machine.pid not in self.struck_pids
                    and load[0]["tag"] == self.tag):
                os.kill(machine.pid, self.strike)
                self.struck_pids.add(machine.pid)
                self.struck_at.append(time.monotonic())
        self.link.send(data)


@pytest.mark.parametrize("strike", [signal.SIGKILL, signal.SIGSTOP], ids=["dies", "hangs"])
def test_a_dead_or_hung_board_is_noticed_within_a_second_and_its_probe_quarantined(
        guests, tmp_path, strike):
    db = tmp_path / "cap.db"
    offered = [p for p, _ in zip(random_probes(X86, seed=9), range(400), strict=False)]
    killer = offered[150]
    with QemuLink(tcg_board(X86), guests[X86]) as link:
        striking = StrikesOnLoad(link, killer, strike)
        store = CapabilityStore(db)
        fingerprint = fingerprint_of(Inventory.from_boot(link.first_boot), "q35")
        tally = run_campaign(striking, offered, store, fingerprint, "tcg", unsafe_unvetted=True)
        quarantined = store.conn.execute(
            "SELECT p.code FROM cap_quarantine q"
            " JOIN cap_probe p ON p.hash = q.probe_hash").fetchall()
        store.close()
    # in the window, then alone
    assert len(striking.struck_at) == 2 == link.restarts == tally.restarts
    # Noticed within a second (the campaign's silence deadline), restarted right then.
    assert all(0 < restart - struck < 1.2
               for restart, struck in zip(link.restarted_at, striking.struck_at, strict=True))
    assert [p.code for p in tally.quarantined] == [killer.code] and quarantined == [(killer.code,)]
    results = stored_results(db)
    assert set(results) == {p.content_hash for p in offered} - {killer.content_hash}  # nothing lost


def test_a_probe_the_guest_cannot_survive_is_quarantined(guests):
    """An M-mode probe that clears mstatus.MPRV (which confines its stores to its own
    areas) and writes sifive_test's FAIL code: QEMU exits every time it runs.  The
    vetter rejects it (a store outside the probe areas), so it is handed to the
    campaign directly, as a vetter bug would."""
    fail = (1 << 16) | 0x3333
    killer = Probe(RV, RV.assemble(f"""\
lui t2, 0x20           # t2 = mstatus.MPRV
csrc mstatus, t2
lui t0, 0x100          # t0 = sifive_test
li t1, {fail:#x}
sw t1, 0(t0)
ret
"""), Privilege.PRIVILEGED, family="csr")
    assert not vet(killer).accepted
    items = [(csr_probe(n), None) for n in range(0x300, 0x340)]
    items.insert(20, (killer, None))
    quarantined = []
    with QemuLink(tcg_board(RV), guests[RV], privileged=True) as link:
        report = Campaign(link, POLICY,
                          on_quarantine=lambda p, _why: quarantined.append(p)).run(items)
        assert link.machine.running
    assert quarantined == report.quarantined == [killer] and link.restarts == report.restarts == 2
    assert set(report.results) == {p.content_hash for p, _ in items} - {killer.content_hash}


def test_the_link_says_when_qemu_knows_the_board_is_gone(guests):
    with QemuLink(tcg_board(RV), guests[RV]) as link:
        assert link.stopped() is None  # running
        os.kill(link.machine.pid, signal.SIGSTOP)
        started = time.monotonic()
        assert link.stopped() is None  # hung: QEMU cannot say, and asking does not block
        assert time.monotonic() - started < 1.0
        os.kill(link.machine.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while link.machine.running and time.monotonic() < deadline:
            time.sleep(0.02)
        assert link.stopped() == "QEMU exited"


# -- PROBE_LOAD_RUN ------------------------------------------------------------------------

@pytest.mark.parametrize("arch", [X86, RV])
def test_load_run_answers_the_result_or_the_refusal_and_a_resend_gets_the_cached_result(
        guests, arch):
    probe = returns_42(arch)
    load = LAYOUTS[Msg.PROBE_LOAD].pack(probe.code, slot=5, privilege=0, budget=probe.budget,
                                        tag=probe.tag, code_length=len(probe.code), input_length=0,
                                        output_size=8)
    load_run = encode_frame(Msg.PROBE_LOAD_RUN, 1,
                            LAYOUTS[Msg.PROBE_LOAD_RUN].pack(load, run_id=77, flags=0))
    bad_slot = LAYOUTS[Msg.PROBE_LOAD].pack(probe.code, slot=999, privilege=0, budget=probe.budget,
                                            tag=7, code_length=len(probe.code), input_length=0,
                                            output_size=8)
    refused = encode_frame(Msg.PROBE_LOAD_RUN, 2,
                           LAYOUTS[Msg.PROBE_LOAD_RUN].pack(bad_slot, run_id=78, flags=0))
    with QemuLink(tcg_board(arch), guests[arch]) as link:
        link.send(b"\0" + load_run + refused + load_run)
        decoder, frames = FrameDecoder(), []
        decoder.feed(b"\0")
        deadline = time.monotonic() + 20
        while len(frames) < 3 and time.monotonic() < deadline:
            frames += decoder.feed(link.poll(0.1))
    assert [f.type for f in frames] == [Msg.PROBE_RESULT, Msg.PROBE_LOADED, Msg.PROBE_RESULT]
    result, loaded, again = (f.fields()[0] for f in frames)
    assert (result["run_id"], result["outcome"], result["status"]) == (77, 0, 42)
    assert (loaded["slot"], loaded["status"], loaded["tag"]) == (999, ProbeRefusal.BAD_SLOT, 7)
    assert frames[2].body == frames[0].body  # run 77 again: the cached answer, not a rerun


def adds(arch: str, k: int) -> bytes:
    """Code returning its input's first word plus k: the same length for every k < 128."""
    if arch is X86:
        return assemble(f"mov eax, dword ptr [rdi]; add eax, {k}; ret")
    return RV.assemble(f"lw a0, 0(a0)\naddi a0, a0, {k}\nret")


@pytest.mark.parametrize("arch", [X86, RV])
def test_code_the_code_area_holds_is_not_placed_again_and_other_code_is(guests, arch):
    """A task's batch probes all run the same code, each from a slot of its own: placed
    again every time, it had TCG translate it again (a write to the code page drops what
    was translated there), ~200,000 of a 2-vector probe's cycles (2026-12-07).  Code
    of the same length and bytes as the area holds is left there -- far fewer cycles
    than code taking turns with another of its length -- and code differing only in
    one immediate is placed: every answer is its own code's."""
    one, two = adds(arch, 1), adds(arch, 2)
    assert len(one) == len(two) and one != two

    def probe(code: bytes, x: int) -> Probe:
        return Probe(arch, code, input=struct.pack("<Q", x), family="placement")

    same = [probe(one, x) for x in range(100, 120)]
    turns = [probe((one, two)[i % 2], x) for i, x in enumerate(range(200, 220))]
    with QemuLink(tcg_board(arch), guests[arch]) as link:
        report = Campaign(link, POLICY).run([(p, vet(p).prediction) for p in same + turns])
    seen = {p: report.results[p.content_hash].observation for p in same + turns}
    assert [seen[p].status for p in same] == [x + 1 for x in range(100, 120)]
    assert [seen[p].status for p in turns] == [x + 1 + i % 2
                                               for i, x in enumerate(range(200, 220))]
    left = statistics.median(seen[p].cycles for p in same[1:])
    placed = statistics.median(seen[p].cycles for p in turns[1:])
    assert left * 3 < placed, (left, placed)


# -- transport faults ----------------------------------------------------------------------

@pytest.mark.parametrize("arch", [X86, RV])
def test_line_faults_end_with_the_same_results_as_a_clean_run(guests, tmp_path, arch):
    probes = deterministic_sweep(arch)
    with QemuLink(tcg_board(arch), guests[arch], privileged=arch == RV) as link:
        clean = campaign(link, probes, tmp_path / "clean.db")
    faults = LineFaults(drop_rate=0.0005, flip_rate=0.0005, seed=3)
    with QemuLink(tcg_board(arch), guests[arch], privileged=arch == RV, faults=faults) as link:
        faulty = campaign(link, probes, tmp_path / "faulty.db")
        assert link.dropped and link.flipped
    assert faulty.frames_rejected > 0 and faulty.retransmissions > 0  # the faults really happened
    assert faulty.restarts == 0  # a line that eats commands is not a dead board
    assert clean.stored == faulty.stored == len(probes)
    assert stored_results(tmp_path / "faulty.db") == stored_results(tmp_path / "clean.db")
    # Each resend is paid for by damage, and losses are resent on evidence: a resend that
    # waited out a timer (every one, before the campaign read evidence) is the exception.
    resends = faulty.resends
    assert faulty.retransmissions <= 3 * (link.dropped + link.flipped)
    assert resends.resent_on_timer + resends.resent_on_silence <= faulty.retransmissions / 10


# -- the probe line ------------------------------------------------------------------------

def deterministic_sweep(arch: str) -> list[Probe]:
    """Probes whose answers do not depend on when they run: CPUID, and the M-mode CSRs
    but mip, whose MEIP shows whether the probe line's interrupt happens to be pending."""
    if arch == X86:
        return list(cpuid_sweep(subleaves=2))
    return [csr_probe(n) for n in range(0x300, 0x3C0) if n != MIP]


@pytest.mark.parametrize("arch", [X86, RV])
def test_probes_go_over_the_virtio_console_with_the_results_the_serial_port_gives(
        guests, tmp_path, arch):
    probes = deterministic_sweep(arch)
    for line, expected in (("console", ProbeLine.VIRTIO_CONSOLE), ("serial", ProbeLine.SERIAL)):
        with QemuLink(tcg_board(arch), guests[arch], privileged=arch == RV, line=line) as link:
            final, _ = link.boots[0].final.fields()
            assert final["probe_line"] == expected
            tally = campaign(link, probes, tmp_path / f"{line}.db")
            assert tally.stored == len(probes) and tally.restarts == 0
            if line == "console":  # and nothing of it on the serial port
                assert link.machine.poll_serial(0.2) == b""
    assert stored_results(tmp_path / "console.db") == stored_results(tmp_path / "serial.db")


@pytest.mark.parametrize("arch", [X86, RV])
def test_a_console_the_guest_cannot_drive_is_an_error_not_a_silent_fallback(guests, arch):
    # A modern-only virtio device has no legacy interface, the one both kernels drive.
    modern_only = ("-global", "virtio-serial-pci.disable-legacy=on") if arch == X86 else \
        ("-global", "virtio-mmio.force-legacy=false")
    with pytest.raises(BootError, match="found no virtio console it can drive"):
        QemuLink(dataclasses.replace(tcg_board(arch), qemu_args=modern_only), guests[arch])


# -- the watchdog --------------------------------------------------------------------------

@pytest.mark.parametrize("arch", [X86, RV])
def test_a_probe_that_loops_forever_is_stopped_by_the_watchdog(guests, tmp_path, arch):
    spin = {X86: lambda: assemble("spin: jmp spin"), RV: lambda: RV.assemble("spin: j spin")}
    loop = Probe(arch, spin[arch](), family="loop")
    assert not vet(loop).accepted  # the vetter would never send it: only the unsafe mode does
    db = tmp_path / "cap.db"
    with QemuLink(tcg_board(arch), guests[arch]) as link:
        tally = campaign(link, [loop, returns_42(arch)], db, unsafe_unvetted=True)
        assert link.restarts == 0
    results = stored_results(db)
    assert results[loop.content_hash][0] == "timeout" and tally.outcomes["timeout"] == 1
    assert results[returns_42(arch).content_hash][0] == "returned"


# -- the task's functions ----------------------------------------------------------------

def test_probe_command_stores_writes_json_and_refuses_unsafe_privileged_runs(tmp_path):
    import json

    from cli.errors import UsageError
    from cli.probe import probe_command

    db, out = tmp_path / "cap.db", io.StringIO()
    console = Console(file=out, width=200)
    assert probe_command(tcg_board(RV), "csr", db=str(db), json_path=str(tmp_path / "r.json"),
                         limit=64, console=console) == 0
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["summary"]["stored"] == 64 == len(document["results"])
    summary = document["summary"]  # the rates say what they count: generated, and run and stored
    assert summary["executed"] == 64 and "probes_per_second" not in summary
    assert summary["generated_per_second"] == pytest.approx(64 / summary["seconds"], rel=0.05)
    assert summary["executed_per_second"] == pytest.approx(64 / summary["seconds"], rel=0.05)
    assert "generated/s" in out.getvalue() and "executed/s" in out.getvalue()
    assert document["probe_line"] == "virtio console"
    assert {r["meta"]["csr"] for r in document["results"]} == set(range(64))
    assert "sent to the guest" in out.getvalue() and "csr" in listing(db)
    with pytest.raises(UsageError,
                       match="--line 'telepathy' is not known; choose one of console, serial"):
        probe_command(tcg_board(RV), "csr", db=str(db), limit=4, line="telepathy", console=console)
    with pytest.raises(UsageError, match="unsafe mode sends user probes only"):
        probe_command(tcg_board(RV), "csr", db=str(db), unsafe_unvetted=True, limit=4,
                      console=console)
    with pytest.raises(UsageError, match="runs on x86_64, not riscv64"):
        probe_command(tcg_board(RV), "cpuid", db=str(db), console=console)


@pytest.mark.parametrize("arch", [X86, RV])
def test_memlat_chases_every_working_set_to_where_the_chain_leads(tmp_path, arch):
    import json

    from cli.probe import probe_command
    from probes.families import memlat

    out = io.StringIO()
    assert probe_command(tcg_board(arch), "memlat", db=str(tmp_path / "cap.db"),
                         json_path=str(tmp_path / "m.json"),
                         console=Console(file=out, width=200)) == 0
    document = json.loads((tmp_path / "m.json").read_text())
    sizes = memlat.working_sets()
    assert [p["working_set"] for p in document["memory_latency"]["curve"]] == sizes
    assert all(p["cycles_per_load"] > 0 for p in document["memory_latency"]["curve"])
    assert document["memory_latency"]["levels"]
    # each chase followed its chain: arithmetic says where it ends
    for result in document["results"]:
        size, steps = result["meta"]["size"], result["meta"]["steps"]
        end = int.from_bytes(bytes.fromhex(result["output"])[8:16], "little")
        assert end == memlat.chase_end(arch, size, steps)
    assert "memory latency by working set" in out.getvalue() and "8 MiB" in out.getvalue()


def test_ctrl_c_says_what_stayed_stored_and_shuts_the_board_down(tmp_path, monkeypatch):
    from cli import probe as cli
    from cli.errors import Interrupted

    real_campaign, machines = cli.run_campaign, []

    def interrupted(link, probes, store, fingerprint, accelerator, **options):
        machines.append(link.machine)
        stop_after = options.pop("on_results")

        def results_then_ctrl_c(batch):
            if stop_after is not None:
                stop_after(batch)
            raise KeyboardInterrupt
        return real_campaign(link, probes, store, fingerprint, accelerator,
                             on_results=results_then_ctrl_c, **options)

    monkeypatch.setattr(cli, "run_campaign", interrupted)
    # one batch
    with pytest.raises(Interrupted, match="^64 results stored so far stay in the store$"):
        cli.probe_command(tcg_board(RV), "csr", db=str(tmp_path / "cap.db"), limit=200,
                          console=Console(file=io.StringIO(), width=200))
    assert len(stored_results(tmp_path / "cap.db")) == 64
    assert not machines[0].running


def test_a_board_that_answers_nothing_aborts_the_campaign_without_quarantining(tmp_path):
    """Every probe 'kills' this (fake) board: the fault is the board's, not the probes'."""
    from probes.run import ProbeRunError
    from testing.fake_guest import FakeGuest
    from testing.loopback import Loopback

    probes = [csr_probe(n) for n in range(0x300, 0x310)]
    link = Loopback(FakeGuest(RV, killers=frozenset(p.content_hash for p in probes)))
    store = CapabilityStore(tmp_path / "cap.db")
    fingerprint = riscv_fingerprint("virt", misa=0, mvendorid=0, marchid=0, mimpid=0,
                                    isa="")
    with pytest.raises(ProbeRunError, match="answered none"):
        run_campaign(link, probes, store, fingerprint, "tcg")
    assert store.quarantined(fingerprint) == set()
    store.close()
