"""The JSON documents the tasks write, each named by its schema and version.

    metaos.inventory/1        ./run discover --json: what one discovery found
    metaos.probe-campaign/1   ./run probe --json: a campaign's summary and every result

A document's first key is "schema"; a consumer checks it before reading on.
Keys are only ever added within a version; a change of meaning is a new version.
The records inside come from the layers that own them (Inventory, Tally, Board
and a family's Summary each say how they read as JSON); this module decides
what a document holds.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the inventory document must not load the probe layer (./run discover)
    from discovery.inventory import Inventory
    from probes.probe import Observation, Probe
    from probes.run import Tally
    from probes.summary import Summary
    from qemu.boards import Board
    from stores.fingerprint import Fingerprint

INVENTORY = "metaos.inventory/1"
PROBE_CAMPAIGN = "metaos.probe-campaign/1"

# The keys a family's summary may set: every campaign document has them (null, or
# empty, when the family has no such summary).
SUMMARY_KEYS = {"claimed_extensions": None, "timing": {}, "memory_latency": None}


def inventory_document(inventory: Inventory) -> dict:
    return {"schema": INVENTORY, **inventory.to_json()}


def result_json(probe: Probe, observation: Observation) -> dict:
    fault = observation.fault
    return {"hash": probe.content_hash.hex(), "code": probe.code.hex(),
            "privilege": probe.privilege.name.lower(),
            "meta": {k: v for k, v in probe.meta.items() if isinstance(v, (int, str))},
            "outcome": observation.outcome.name.lower(), "status": observation.status,
            "fault": dataclasses.asdict(fault) if fault else None,
            "output": observation.output.hex(),
            "cycles": observation.cycles, "instret": observation.instret}


def campaign_document(family: str, board: Board, accelerator: str, fingerprint: Fingerprint,
                      tally: Tally, probe_line: str, results: list,
                      summary: Summary | None = None) -> dict:
    """`results`: the campaign's results (probe, observation, prediction, diverges)."""
    document = {
        "schema": PROBE_CAMPAIGN, "family": family, "arch": board.arch.name,
        "board": board.to_json(), "accelerator": accelerator, "probe_line": probe_line,
        "fingerprint": {"digest": fingerprint.digest.hex(), "board": fingerprint.board,
                        "identity": dict(fingerprint.identity)},
        "summary": tally.to_json(),
        **SUMMARY_KEYS,
        **(summary.to_json() if summary is not None else {}),
    }
    document["results"] = [
        {**result_json(r.probe, r.observation),
         **(summary.result_json(r.probe) if summary is not None else {}),
         "prediction": r.prediction.hex() if r.prediction else None, "diverges": r.diverges}
        for r in results]
    return document
