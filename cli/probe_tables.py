"""The tables of `./run probe` and `./run capabilities`: a campaign's counts, one
table per kind of family summary (probes/summary.py), and the store's listing."""

from __future__ import annotations

from functools import singledispatch

from rich import box
from rich.table import Table

from discovery.fingerprint import identity_text
from discovery.x86 import lscpu_size
from probes.catalogue import Family
from probes.families.discovery import DiscoverySummary
from probes.families.memlat import LatencySummary
from probes.families.timing import TimingSummary
from probes.run import Tally
from probes.store import CapabilitySummary
from probes.summary import accelerator_meaning
from qemu.boards import Board
from stores.fingerprint import Fingerprint

SHOWN_REASONS = 5  # rejection reasons listed in the campaign table
SHOWN_FINDINGS = 8  # kinds of discovery finding listed


def campaign_rows(tally: Tally, accelerator: str, probe_line: str,
                  fingerprint: Fingerprint) -> list[tuple[str, object, str]]:
    """(what, value, note) for every count a campaign keeps, in the order shown."""
    return [
        ("generated", tally.generated, ""),
        ("rejected by the vetter", sum(tally.rejected.values()), "never sent to the guest"),
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
        ("probe line", probe_line, "--line"),
        ("frames rejected", tally.frames_rejected, "bad CRC / COBS on the line"),
        ("seconds", f"{tally.seconds:.2f}", ""),
        ("generated/s", f"{tally.generated_per_second:,.0f}", "probes generated, vetting included"),
        ("executed/s", f"{tally.executed_per_second:,.0f}", "run in the guest and stored"
         + ("; under TCG timings describe QEMU" if accelerator == "tcg" else "")),
        ("fingerprint", fingerprint.digest.hex()[:16], fingerprint.board),
    ]


def campaign_table(family: Family, board: Board, accelerator: str, rows: list) -> Table:
    """The campaign's counts, titled with its family and board, its family said in words."""
    table = Table(title=f"probe campaign: {family.name} on {board.name} ({board.arch},"
                        f" {accelerator})", caption=family.about,
                  box=box.SIMPLE_HEAVY, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_column("note")
    for what, value, note in rows:
        table.add_row(what, str(value), note)
    return table


@singledispatch
def summary_table(summary: object) -> Table:
    """The table of one kind of family summary."""
    raise TypeError(f"no table for a {type(summary).__name__}: register one in cli/probe_tables.py")


@summary_table.register
def _(summary: DiscoverySummary) -> Table:
    """Discovery findings by kind: disagreements with capstone and with the CPU's claims."""
    table = Table(title="instruction discovery findings", box=box.SIMPLE_HEAVY,
                  caption=f"claimed: {', '.join(sorted(summary.claims))}")
    table.add_column("finding", style="bold")
    table.add_column("candidates", justify="right")
    table.add_column("e.g.")
    for kind in summary.kinds[:SHOWN_FINDINGS]:
        table.add_row(kind.kind, str(kind.count), " ".join(e.hex() for e in kind.examples))
    if not summary.kinds:
        table.add_row("none", "0", "capstone, the claims and the machine agree")
    return table


@summary_table.register
def _(summary: LatencySummary) -> Table:
    meaning = accelerator_meaning(summary.accelerator)
    table = Table(title=f"memory latency by working set ({meaning})", box=box.SIMPLE_HEAVY)
    table.add_column("working set", justify="right")
    table.add_column("cycles / load", justify="right")
    table.add_column("level", justify="right")
    for size, cycles in summary.curve:
        table.add_row(lscpu_size(size), f"{cycles:.2f}", str(summary.level_of(size)))
    return table


@summary_table.register
def _(summary: TimingSummary) -> Table:
    table = Table(title=f"timing of {summary.sequence!r} "
                        f"({accelerator_meaning(summary.accelerator)})", box=box.SIMPLE_HEAVY)
    table.add_column("variant", style="bold")
    table.add_column("cycles / instance", justify="right")
    table.add_column("spread", justify="right")
    table.add_column("overhead", justify="right")
    table.add_column("runs", justify="right")
    for kind, est in summary.estimates.items():
        table.add_row(kind, f"{est.per_instance:.2f}", f"{est.spread:.2f}", f"{est.overhead:.0f}",
                      str(est.runs))
    return table


OUTCOMES = ("returned", "fault", "timeout", "refused")


def capability_table(summary: CapabilitySummary) -> Table:
    """One fingerprint's results per family and outcome."""
    table = Table(title=f"{summary.arch} on {summary.board}: "
                        f"{identity_text(summary.arch, summary.identity)}",
                  box=box.SIMPLE_HEAVY,
                  caption=f"{summary.results} results, {summary.divergences} divergences,"
                          f" {summary.quarantined} quarantined")
    table.add_column("family", style="bold")
    for outcome in OUTCOMES:
        table.add_column(outcome, justify="right")
    for family, counts in sorted(summary.by_family.items()):
        table.add_row(family, *(str(counts.get(o, 0)) for o in OUTCOMES))
    return table
