"""What `./run probe` and `./run capabilities` do: a campaign on a QEMU board with a
live progress bar, its counts and its family's summary as tables (cli/probe_tables.py),
the JSON document (cli/schemas.py); and the capability store's listing.

A request that cannot run (unknown family, a family the board's architecture
lacks, a sequence that does not assemble) is refused before any board boots.
Errors end in cli/errors.py; the results a campaign stored stay stored, also
when it is interrupted.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli import arguments, terminal
from cli.errors import Failure, Interrupted, UsageError
from cli.probe_tables import campaign_rows, campaign_table, capability_table, summary_table
from cli.schemas import campaign_document
from contract.protocol import ProbeLine
from discovery.fingerprint import fingerprint_of
from discovery.inventory import Inventory
from kernel.guest import build_guest
from link.line_faults import LineFaults
from link.qemu_link import LINES, QemuLink
from probes import catalogue
from probes.catalogue import Family, FamilyRequest
from probes.probe import Probe
from probes.run import Tally, run_campaign
from probes.store import CapabilityStore
from probes.summary import CampaignContext
from qemu.boards import Board
from stores.fingerprint import Fingerprint

LINE_NAMES = {ProbeLine.VIRTIO_CONSOLE: "virtio console", ProbeLine.SERIAL: "serial port"}


def _family(name: str, board: Board, sequence: str | None) -> Family:
    try:
        return catalogue.family(name, board.arch, sequence)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _probes(family: Family, request: FamilyRequest, budget: int | None,
            limit: int | None) -> Iterator[Probe]:
    """The family's probes, the first one made now: a request the family refuses (a
    sequence that does not assemble...) is refused before a board boots."""
    try:
        made = family.make(request)
        first = next(made, None)
    except ValueError as error:
        raise UsageError(str(error)) from None
    probes: Iterator[Probe] = itertools.chain([] if first is None else [first], made)
    if budget is not None:
        probes = (dataclasses.replace(p, budget=budget) for p in probes)
    if limit is not None:
        probes = itertools.islice(probes, limit)
    return probes


def probe_command(board: Board, family: str, *, budget: int | None = None,
                  json_path: str | None = None, db: str | None = None, limit: int | None = None,
                  unsafe_unvetted: bool = False, faults: LineFaults | None = None,
                  console: Console | None = None, sequence: str | None = None,
                  line: str = "console") -> int:
    """Run family `family` on `board` (`sequence`: what a measuring family times) over
    the probe line `line` (link/qemu_link.py LINES); store the results; print the
    tables; 0 on success."""
    console = console or terminal.console()
    chosen = _family(family, board, sequence)
    arguments.choice(line, "--line", LINES)
    if unsafe_unvetted and chosen.privileged:
        raise UsageError(f"unsafe mode sends user probes only; the {family} family is privileged "
                         "and must be vetted: drop --unsafe-unvetted")
    probes = _probes(chosen, FamilyRequest(board.arch, sequence=sequence), budget, limit)
    guest = build_guest(board.arch)
    latest: dict[str, Tally] = {}  # the progress so far, for an interrupted run's last word
    results: list = []
    store = CapabilityStore(db)
    try:
        with QemuLink(board, guest, privileged=chosen.privileged, faults=faults, line=line) as link:
            inventory = Inventory.from_boot(link.first_boot)
            fingerprint = fingerprint_of(inventory, board.name)
            keep = json_path or chosen.summarise is not None
            tally = _run_with_progress(console, link, probes, store, fingerprint, unsafe_unvetted,
                                       results.extend if keep else None, latest)
    except KeyboardInterrupt:
        done = latest.get("tally")
        stored = f"{done.stored} results" if done is not None else "the results"
        raise Interrupted(f"{stored} stored so far stay in the store") from None
    finally:
        store.close()
    summary = None
    if chosen.summarise is not None:
        context = CampaignContext(board.arch, link.accelerator, inventory, sequence)
        try:
            summary = chosen.summarise([(r.probe, r.observation) for r in results], context)
        except ValueError as error:  # e.g. every timing run faulted
            raise Failure(f"the {tally.stored} results are stored, but they say nothing: {error}")\
                from None
    probe_line = LINE_NAMES[link.line]
    console.print(campaign_table(chosen, board, link.accelerator,
                                 campaign_rows(tally, link.accelerator, probe_line, fingerprint)))
    if summary is not None:
        console.print(summary_table(summary))
    if json_path:
        document = campaign_document(family, board, link.accelerator, fingerprint, tally,
                                     probe_line, results, summary)
        Path(json_path).write_text(json.dumps(document, indent=2))
        console.print(f"results written to {json_path}")
    return 0


def probe_task(family: str, arch: str, board: str | None, cpu: str | None, smp: str | None,
               memory: str | None, accel: str, qemu_args: str, budget: str | None,
               json_path: str | None, db: str | None, limit: str | None, unsafe_unvetted: bool,
               line_faults: str | None, line: str, sequence: str | None) -> None:
    """`./run probe`: the options as typed, checked, then the campaign."""
    chosen = arguments.board(arch, board, cpu, smp, memory, accel, qemu_args)
    rate = arguments.number(line_faults, "--line-faults")
    if rate is not None and rate > 1:
        raise UsageError(f"--line-faults is a rate from 0 to 1, not {line_faults}")
    probe_command(chosen, family, budget=arguments.whole(budget, "--budget", minimum=1),
                  json_path=arguments.output(json_path, "--json"), db=db,
                  limit=arguments.whole(limit, "--limit", minimum=1),
                  unsafe_unvetted=unsafe_unvetted, faults=LineFaults(rate, rate) if rate else None,
                  sequence=sequence, line=line)


def _run_with_progress(console: Console, link: QemuLink, probes, store: CapabilityStore,
                       fingerprint: Fingerprint, unsafe: bool, on_results, latest: dict) -> Tally:
    stats = "[cyan]{task.fields[rate]:>7.0f}[/] executed/s  faults {task.fields[faults]}" \
            "  divergences {task.fields[divergences]}  timeouts {task.fields[timeouts]}" \
            "  refusals {task.fields[refusals]}  rejected {task.fields[rejected]}"
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn(stats), TimeElapsedColumn(), console=console,
                  transient=False) as progress:
        task = progress.add_task("vetting", total=None, rate=0.0, faults=0, divergences=0,
                                 timeouts=0, refusals=0, rejected=0)

        def update(tally: Tally) -> None:
            latest["tally"] = tally
            running = tally.sent > 0
            progress.update(task, description="running" if running else "vetting",
                            total=tally.sent if running else None,
                            completed=tally.stored if running else tally.generated,
                            rate=tally.executed_per_second, faults=tally.outcomes["fault"],
                            divergences=tally.divergences, timeouts=tally.outcomes["timeout"],
                            refusals=tally.outcomes["refused"],
                            rejected=sum(tally.rejected.values()))

        tally = run_campaign(link, probes, store, fingerprint, link.accelerator,
                             unsafe_unvetted=unsafe, on_progress=update, on_results=on_results)
        update(tally)
    return tally


# -- capabilities --------------------------------------------------------------------------

def capabilities_command(db: str | None = None, console: Console | None = None) -> int:
    """List what the store knows, per hardware fingerprint."""
    console = console or terminal.console()
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
