"""What a board was found to have: the features its own claims name (x86-64: the CPUID
flags discovery read; riscv64: misa and the device tree's `riscv,isa`), each checked by
running its instructions on the board as probes.

Claims alone are not enough: a CPU model may claim what it does not run (or run it
differently: without ABM, `lzcnt` decodes as `bsr` and answers something else), and a
search that trusts a claim would prove code the board then gets wrong.  So every form
of every feature, and every base form, goes to the board as case probes
(validate.cases: random and edge operands, the IR semantics predicting the output);
a feature is *found* when the board claims it and runs its forms as their semantics
say; a form of it that disagrees on some case is *avoided* (never searched), the rest of
the feature used (QEMU 7.2's rv64 counts `ctzw` over all 64 bits: ctzw of 1 << 63 gives
63, not 32).  A feature none of whose forms agree is not working (an instruction that
faults, or that decodes as another: `lzcnt` as `bsr` without ABM).  A base form that
disagrees means the semantics is wrong for this board: nothing may be evolved for it
(BaseFormsDisagree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from arch import RISCV64, X86_64, Arch
from discovery.inventory import Inventory
from evolution.isa import Isa
from evolution.program import statement
from evolution.validate import cases, run_on_link
from probes.campaign import Campaign, Link
from probes.campaign_state import CampaignResult
from probes.families.discovery import SEARCHES
from probes.probe import Observation, Probe

# where the engine's feature name and the one discovery's claims use differ (Linux calls
# the CPUID bit that brings LZCNT "abm")
CLAIM_NAMES: dict[Arch, dict[str, str]] = {X86_64: {"lzcnt": "abm"}, RISCV64: {}}
CASES_PER_FORM = 4


class BaseFormsDisagree(RuntimeError):
    """Instructions every board of the ISA has gave answers other than their semantics."""


@dataclass(frozen=True)
class FeatureFinding:
    """The board's claims, what its probes showed, and so what the search may use."""

    claimed: frozenset[str]  # engine feature names the board's claims include
    working: frozenset[str]  # features with a form whose every case agreed
    avoid: frozenset[str]  # claimed features' forms with a case that disagreed (never searched)
    failing: tuple[str, ...]  # per disagreeing case: the instruction and what differed
    probes: int  # case probes whose answers the finding rests on
    reused: int = 0  # of them, answers this board gave before, taken from the store

    @property
    def found(self) -> frozenset[str]:
        return self.claimed & self.working

    @property
    def unclaimed_working(self) -> frozenset[str]:
        """Features the board runs correctly without claiming them (not used)."""
        return self.working - self.claimed

    @property
    def claimed_failing(self) -> frozenset[str]:
        """Features the board claims but does not run as their semantics say (not used)."""
        return self.claimed - self.working


def claimed_features(isa: Isa, inventory: Inventory) -> frozenset[str]:
    """The engine's features (isa.features) that the board's claims name."""
    claims = SEARCHES[isa.arch].claimed(inventory)
    names = CLAIM_NAMES.get(isa.arch, {})
    return frozenset(f for f in isa.features if names.get(f, f) in claims)


def find_features(isa: Isa, claimed: frozenset[str], link: Link,
                  campaign: Campaign | None = None, seed: int = 0,
                  on_results: Callable[[list[CampaignResult]], None] | None = None,
                  stored: Callable[[list[Probe]], Mapping[bytes, Observation]] | None = None,
                  ) -> FeatureFinding:
    """Run every form's cases on the board behind `link` (claimed features or not) and
    judge each feature against the board's claims (`claimed_features` of its inventory).
    `on_results` gets the probes' results (to file in the capability store); `stored`
    the answers this board (its fingerprint, under this accelerator) gave before, which
    are not asked again.  Raises BaseFormsDisagree when a form of no feature fails."""
    batch = [c for form in isa.forms for c in cases(isa, form, CASES_PER_FORM, seed)]
    held = stored([c.probe for c in batch]) if stored is not None else {}
    failures = run_on_link(link, batch, campaign, on_results, lambda _: held)
    failed_forms = frozenset(d.case.insn.form for d in failures)
    agreeing = {form.feature for form in isa.forms if form.name not in failed_forms}
    base = [d for d in failures if isa.by_name[d.case.insn.form].feature is None]
    if base:
        shown = "; ".join(f"{statement(isa, d.case.insn)}: {d.detail}" for d in base[:3])
        raise BaseFormsDisagree(
            f"{len(base)} case probe(s) of base {isa.name} instructions disagree with their "
            f"semantics on this board ({shown}); evolution cannot trust it: report this line")
    return FeatureFinding(
        claimed=claimed,
        working=frozenset(f for f in isa.features if f in agreeing),
        # an unclaimed feature's forms are never searched anyway: only the claimed ones
        avoid=frozenset(f for f in failed_forms if isa.by_name[f].feature in claimed),
        failing=tuple(f"{statement(isa, d.case.insn)}: {d.detail}" for d in failures),
        probes=len(batch), reused=len(held))
