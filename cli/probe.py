"""What `./run probe` and `./run capabilities` do: a campaign on a QEMU board with
a live progress bar and a summary table, and the capability store's listing.

Both return a process exit status and print their errors as sentences (what
went wrong and what to do), never tracebacks.
"""

from __future__ import annotations

from discovery.inventory import Inventory
import dataclasses
import itertools
import json
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from discovery.fingerprint import FingerprintError, fingerprint_of
from probes.store import CapabilityStore, CapabilitySummary
from stores.fingerprint import Fingerprint
from contract.protocol import ProbeLine
from link.session import DiscoveryError
from kernel.guest import build_guest
from discovery.x86 import lscpu_size
from probes.catalogue import family_probes
from arch import RISCV64, X86_64, Arch, by_name
from probes.families import PRIVILEGED_FAMILIES, discovery, memlat, timing
from probes.probe import Probe
from link.line_faults import LineFaults
from link.qemu_link import QemuLink
from probes.run import ProbeRunError, Tally, run_campaign
from qemu.boards import Board
from qemu.errors import QemuError

SHOWN_REASONS = 5  # rejection reasons listed in the summary
SHOWN_FINDINGS = 8  # kinds of discovery finding listed in the summary
LINE_NAMES = {ProbeLine.VIRTIO_CONSOLE: "virtio console", ProbeLine.SERIAL: "serial port"}
ACCELERATOR_MEANING = {"tcg": "TCG: this measures QEMU's emulation, not silicon", "kvm": "KVM: hardware"}


def probe_command(board: Board, family: str, *, budget: int | None = None, json_path: str | None = None,
                  db: str | None = None, limit: int | None = None, unsafe_unvetted: bool = False,
                  faults: LineFaults | None = None, console: Console | None = None,
                  sequence: str | None = None, line: str = "console") -> int:
    """Run family `family` on `board` (`sequence`: what the timing family measures)
    over the probe line `line` (link/qemu_link.py LINES); store the results; 0 on
    success."""
    console = console or Console()
    latest: dict[str, Tally] = {}  # the progress so far, for an interrupted run's last word
    try:
        probes = family_probes(family, board.arch, sequence=sequence)
        if budget is not None:
            probes = (dataclasses.replace(p, budget=budget) for p in probes)
        if limit is not None:
            probes = itertools.islice(probes, limit)
        guest = build_guest(board.arch)
        store = CapabilityStore(db)
        try:
            with QemuLink(board, guest, privileged=family in PRIVILEGED_FAMILIES, faults=faults,
                          line=line) as link:
                fingerprint = fingerprint_of(Inventory.from_boot(link.first_boot), board.name)
                claims = _claims(link)
                results: list = []
                keep = json_path or family in ("timing", "isa", "memlat")
                tally = _run_with_progress(console, link, probes, store, fingerprint, unsafe_unvetted,
                                           results.extend if keep else None, latest)
            estimates = timing.summarise((r.probe, r.observation) for r in results) if family == "timing" else {}
            latencies = memlat.curve((r.probe, r.observation) for r in results) if family == "memlat" else []
        finally:
            store.close()
    except (ProbeRunError, FingerprintError, ValueError, DiscoveryError, QemuError) as error:
        console.print(f"[bold red]probe failed:[/] {error}", highlight=False)
        return 1
    except KeyboardInterrupt:
        done = latest.get("tally")
        stored = f"{done.stored} results" if done is not None else "the results"
        console.print(f"[bold yellow]interrupted:[/] {stored} stored so far stay in the store", highlight=False)
        return 130
    console.print(summary_table(family, board, link.accelerator, fingerprint, tally, link.line))
    if family == "isa":
        console.print(findings_table(board.arch, results, claims))
    if estimates:
        console.print(timing_table(sequence or "", link.accelerator, estimates))
    if latencies:
        console.print(memlat_table(link.accelerator, latencies))
    if json_path:
        _write_json(Path(json_path), family, board, link.accelerator, fingerprint, tally, link.line, results,
                    claims, estimates, latencies)
        console.print(f"results written to {json_path}")
    return 0


def _run_with_progress(console: Console, link: QemuLink, probes, store: CapabilityStore,
                       fingerprint: Fingerprint, unsafe: bool, on_results, latest: dict) -> Tally:
    stats = "[cyan]{task.fields[rate]:>7.0f}[/] probes/s  faults {task.fields[faults]}" \
            "  divergences {task.fields[divergences]}  timeouts {task.fields[timeouts]}" \
            "  refusals {task.fields[refusals]}  rejected {task.fields[rejected]}"
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn(stats), TimeElapsedColumn(), console=console, transient=False) as progress:
        task = progress.add_task("vetting", total=None, rate=0.0, faults=0, divergences=0, timeouts=0,
                                 refusals=0, rejected=0)

        def update(tally: Tally) -> None:
            latest["tally"] = tally
            running = tally.sent > 0
            progress.update(task, description="running" if running else "vetting",
                            total=tally.sent if running else None,
                            completed=tally.stored if running else tally.generated,
                            rate=tally.probes_per_second, faults=tally.outcomes["fault"],
                            divergences=tally.divergences, timeouts=tally.outcomes["timeout"],
                            refusals=tally.outcomes["refused"], rejected=sum(tally.rejected.values()))

        tally = run_campaign(link, probes, store, fingerprint, link.accelerator, unsafe_unvetted=unsafe,
                             on_progress=update, on_results=on_results)
        update(tally)
    return tally


def summary_table(family: str, board: Board, accelerator: str, fingerprint: Fingerprint, tally: Tally,
                  line: ProbeLine) -> Table:
    table = Table(title=f"probe campaign: {family} on {board.name} ({board.arch}, {accelerator})",
                  box=box.SIMPLE_HEAVY, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_column("note")
    rejected = sum(tally.rejected.values())
    rows = [
        ("generated", tally.generated, ""),
        ("rejected by the vetter", rejected, "never sent to the guest"),
        *[("", count, reason) for reason, count in tally.rejected.most_common(SHOWN_REASONS)],
        ("duplicates", tally.duplicates, "same content hash as an earlier probe"),
        ("skipped (quarantined)", tally.skipped_quarantined, "quarantined by an earlier campaign"),
        ("sent to the guest", tally.sent, ""),
        ("returned", tally.outcomes["returned"], ""),
        ("faults", tally.outcomes["fault"], "contained and reported"),
        ("timeouts", tally.outcomes["timeout"], "stopped by the guest's watchdog"),
        ("refusals", tally.outcomes["refused"], "the guest would not load or run it"),
        ("divergences", tally.divergences, "the guest disagrees with Unicorn's prediction"),
        ("quarantined", len(tally.quarantined), "killed the board (bytes kept in the store)"),
        ("board restarts", tally.restarts, ""),
        ("retransmissions", tally.retransmissions, ""),
        ("probe line", LINE_NAMES[line], "--line"),
        ("frames rejected", tally.frames_rejected, "bad CRC / COBS on the line"),
        ("seconds", f"{tally.seconds:.2f}", ""),
        ("probes/s", f"{tally.probes_per_second:,.0f}",
         "end to end; under TCG timings describe QEMU" if accelerator == "tcg" else "end to end"),
        ("fingerprint", fingerprint.digest.hex()[:16], fingerprint.board),
    ]
    for what, value, note in rows:
        table.add_row(what, str(value), note)
    return table


def _claims(link: QemuLink) -> frozenset[str]:
    """What the CPU claims: CPUID flags (x86-64), misa and riscv,isa (riscv64)."""
    return discovery.SEARCHES[link.board.arch].claimed(Inventory.from_boot(link.first_boot))


def _finding(arch: Arch, candidate, observation, claims: frozenset[str] | None) -> discovery.Finding:
    search = discovery.SEARCHES[arch]
    claimed = search.claimed_supported(candidate, claims) if claims is not None else None
    return discovery.finding(arch, candidate, observation, observation.length, claimed_supported=claimed)


def findings_table(arch: Arch, results: list, claims: frozenset[str] | None) -> Table:
    """Discovery findings by kind: disagreements with capstone and with the CPU's claims."""
    kinds: dict[str, list[str]] = {}
    for r in results:
        candidate = r.probe.meta.get("candidate")
        if candidate is None:
            continue
        found = _finding(arch, candidate, r.observation, claims)
        for problem in (found.disagreement or "").split("; "):
            if problem:
                kind = ("capstone decodes an instruction but the machine raises #UD"
                        if problem.startswith("capstone decodes") else problem)
                kinds.setdefault(kind, []).append(candidate.encoding.hex())
    claimed = ", ".join(sorted(claims))
    table = Table(title="instruction discovery findings", box=box.SIMPLE_HEAVY, caption=f"claimed: {claimed}")
    table.add_column("finding", style="bold")
    table.add_column("candidates", justify="right")
    table.add_column("e.g.")
    for kind, encodings in sorted(kinds.items(), key=lambda item: -len(item[1]))[:SHOWN_FINDINGS]:
        table.add_row(kind, str(len(encodings)), " ".join(encodings[:3]))
    if not kinds:
        table.add_row("none", "0", "capstone, the claims and the machine agree")
    return table


def memlat_table(accelerator: str, latencies: list[tuple[int, float]]) -> Table:
    meaning = ACCELERATOR_MEANING.get(accelerator, f"{accelerator}: unknown what these cycles measure")
    levels = memlat.levels(latencies)
    table = Table(title=f"memory latency by working set ({meaning})", box=box.SIMPLE_HEAVY)
    table.add_column("working set", justify="right")
    table.add_column("cycles / load", justify="right")
    table.add_column("level", justify="right")
    for size, cycles in latencies:
        level = next(number for number, lv in enumerate(levels, 1) if size <= lv.up_to)
        table.add_row(lscpu_size(size), f"{cycles:.2f}", str(level))
    return table


def timing_table(sequence: str, accelerator: str, estimates: dict) -> Table:
    meaning = ACCELERATOR_MEANING.get(accelerator, f"{accelerator}: unknown what these cycles measure")
    table = Table(title=f"timing of {sequence!r} ({meaning})", box=box.SIMPLE_HEAVY)
    table.add_column("variant", style="bold")
    table.add_column("cycles / instance", justify="right")
    table.add_column("spread", justify="right")
    table.add_column("overhead", justify="right")
    table.add_column("runs", justify="right")
    for kind, est in estimates.items():
        table.add_row(kind, f"{est.per_instance:.2f}", f"{est.spread:.2f}", f"{est.overhead:.0f}", str(est.runs))
    return table


def _result_json(arch: Arch, probe: Probe, observation, claims: frozenset[str] | None = None) -> dict:
    fault = observation.fault
    entry = {"hash": probe.content_hash.hex(), "code": probe.code.hex(), "privilege": probe.privilege.name.lower(),
             "meta": {k: v for k, v in probe.meta.items() if isinstance(v, (int, str))},
             "outcome": observation.outcome.name.lower(), "status": observation.status,
             "fault": dataclasses.asdict(fault) if fault else None, "output": observation.output.hex(),
             "cycles": observation.cycles, "instret": observation.instret}
    candidate = probe.meta.get("candidate")
    if candidate is not None:  # instruction discovery: cross-check with capstone
        finding = _finding(arch, candidate, observation, claims)
        entry["candidate"] = {"encoding": candidate.encoding.hex(), "space": candidate.space,
                              "capstone": candidate.capstone_text, "capstone_length": candidate.capstone_length,
                              "measured_length": finding.measured_length, "behaviour": finding.behaviour.value,
                              "disagreement": finding.disagreement}
    return entry


def _write_json(path: Path, family: str, board: Board, accelerator: str, fingerprint: Fingerprint,
                tally: Tally, line: ProbeLine, results: list, claims: frozenset[str] | None = None,
                estimates: dict | None = None, latencies: list | None = None) -> None:
    document = {
        "schema": "metaos.probe-campaign/1", "family": family, "arch": board.arch.name, "board": board.to_json(),
        "accelerator": accelerator, "probe_line": LINE_NAMES[line],
        "fingerprint": {"digest": fingerprint.digest.hex(), "board": fingerprint.board,
                        "identity": dict(fingerprint.identity)},
        "summary": tally.to_json(),
        "claimed_extensions": sorted(claims) if claims is not None else None,
        "timing": {kind: {**dataclasses.asdict(est), "accelerator_meaning": ACCELERATOR_MEANING.get(accelerator)}
                   for kind, est in (estimates or {}).items()},
        "memory_latency": {
            "curve": [{"working_set": size, "cycles_per_load": round(cycles, 3)} for size, cycles in latencies or []],
            "levels": [dataclasses.asdict(level) for level in memlat.levels(latencies or [])],
        } if latencies else None,
        "results": [dict(_result_json(board.arch, r.probe, r.observation, claims),
                         prediction=r.prediction.hex() if r.prediction else None, diverges=r.diverges)
                    for r in results],
    }
    path.write_text(json.dumps(document, indent=2))


# -- capabilities ------------------------------------------------------------------------

def capabilities_command(db: str | None = None, console: Console | None = None) -> int:
    """List what the store knows, per hardware fingerprint."""
    console = console or Console()
    store = CapabilityStore(db)
    try:
        summaries = store.capabilities()
    finally:
        store.close()
    if not summaries:
        console.print("the capability store is empty: run `./run probe --family NAME` first")
        return 0
    for summary in summaries:
        console.print(capability_table(summary))
    return 0


def identity_text(summary: CapabilitySummary) -> str:
    return _IDENTITY_TEXT[by_name(summary.arch)](summary.identity)


def _x86_identity_text(ident: dict[str, int]) -> str:
    vendor = ident["vendor"].to_bytes(12, "little").rstrip(b"\0").decode("latin-1")
    return f"{vendor} family {ident['family']:#x} model {ident['model']:#x} stepping {ident['stepping']}"


def _riscv_identity_text(ident: dict[str, int]) -> str:
    misa = ident["misa"]
    letters = "".join(chr(ord("a") + bit) for bit in range(26) if misa >> bit & 1)
    return (f"misa {misa:#x} ({letters}) mvendorid {ident['mvendorid']:#x} marchid {ident['marchid']:#x}"
            f" mimpid {ident['mimpid']:#x}")


_IDENTITY_TEXT = {X86_64: _x86_identity_text, RISCV64: _riscv_identity_text}


def capability_table(summary: CapabilitySummary) -> Table:
    outcomes = ("returned", "fault", "timeout", "refused")
    table = Table(title=f"{summary.arch} on {summary.board}: {identity_text(summary)}", box=box.SIMPLE_HEAVY,
                  caption=f"{summary.results} results, {summary.divergences} divergences,"
                          f" {summary.quarantined} quarantined")
    table.add_column("family", style="bold")
    for outcome in outcomes:
        table.add_column(outcome, justify="right")
    for family, counts in sorted(summary.by_family.items()):
        table.add_row(family, *(str(counts.get(o, 0)) for o in outcomes))
    return table
