"""Proof artifacts: what a claimed improvement carries so that anyone can check it
without trusting the claimant's verdict.

An artifact (format `metaos.proof/1`, JSON) holds the routine's canonical form (its
hash is the routine's ID, so the specification cannot be swapped), the ISA, the program
as text, and the SMT-LIB 2 query whose unsatisfiability is the proof: the disjunction of
every way the program could differ from the routine (evolution/proof.py `obligations`:
result register, memory, callee-saved registers, out-of-bounds accesses, over every
input and machine state), with its SHA-256.

`check_artifact` re-derives the query itself from the routine and the program (so the
stored query cannot be an easier one), requires it to be the stored one, asks Z3 about
the stored query, and requires the machine code to be what the program assembles to on
the checking board's features.  It trusts nothing in the artifact but the text it
re-checks.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass

import z3

from evolution.isa import Isa
from evolution.program import MachineProgram, ParseError, assemble, parse, text
from evolution.proof import obligations
from evolution.registry import ISAS
from sem.canon import canonicalize
from sem.canon import parse as parse_routine
from sem.ir import Routine

FORMAT = "metaos.proof/1"
TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class ArtifactCheck:
    ok: bool
    detail: str
    seconds: float
    routine: Routine | None = None
    program: MachineProgram | None = None


def obligation(isa: Isa, spec: Routine, program: MachineProgram) -> z3.BoolRef:
    """The condition whose unsatisfiability says `program` implements `spec`."""
    wrong, _, _ = obligations(isa, spec, program)
    if not wrong:
        raise ValueError("the routine has neither a result nor a memory effect: nothing "
                         "to prove")
    return z3.Or(wrong)


def query(isa: Isa, spec: Routine, program: MachineProgram) -> str:
    """The obligation as an SMT-LIB 2 script.  Solver.sexpr names shared subterms by
    their order in the formula (to_smt2 by Z3's internal term ids, which depend on what
    else the process built), so the same obligation always prints the same text."""
    solver = z3.Solver()
    solver.add(obligation(isa, spec, program))
    return solver.sexpr() + "(check-sat)\n"


def features_used(isa: Isa, program: MachineProgram) -> frozenset[str]:
    """The CPU features the program's instructions need (BMI1, Zbb, ...)."""
    return frozenset(f for i in program.insns if (f := isa.by_name[i.form].feature))


def make_artifact(isa: Isa, spec: Routine, program: MachineProgram) -> dict:
    """The artifact of `program` for `spec`.  The query is derived from what the artifact
    stores (the canonical form and the program text, read back), as a checker will."""
    canon = canonicalize(spec)
    source = text(isa, program)
    smt2 = query(isa, parse_routine(canon.text), parse(isa, source))
    return {"format": FORMAT, "routine": canon.id, "canonical": canon.text, "isa": isa.name,
            "program": source, "features": sorted(features_used(isa, program)),
            "smt2": smt2, "sha256": hashlib.sha256(smt2.encode()).hexdigest(),
            "z3": z3.get_version_string()}


def check_artifact(artifact: Mapping, code: bytes, features: frozenset[str],
                   timeout_ms: int = TIMEOUT_MS) -> ArtifactCheck:
    """Check a claimed proof from scratch for a board with `features`; see the module
    docstring.  Never raises on a bad artifact: a bad one is a refusal with its reason."""
    started = time.process_time()

    def refuse(why: str) -> ArtifactCheck:
        return ArtifactCheck(False, why, time.process_time() - started)

    if artifact.get("format") != FORMAT:
        return refuse(f"not a {FORMAT} artifact")
    isa = ISAS.get(artifact.get("isa", ""))
    if isa is None:
        return refuse(f"the artifact names no instruction set we know ({artifact.get('isa')!r})")
    try:
        spec = parse_routine(artifact["canonical"])
    except (KeyError, ValueError) as error:
        return refuse(f"the artifact's routine does not parse: {error}")
    if canonicalize(spec).id != artifact.get("routine"):
        return refuse("the artifact's canonical form is not the routine it names (its hash "
                      "differs from the ID)")
    try:
        program = parse(isa, artifact["program"])
    except (KeyError, ParseError) as error:
        return refuse(f"the artifact's program does not parse: {error}")
    used = features_used(isa, program)
    if not used <= features:
        return refuse(f"the program uses {', '.join(sorted(used - features))}, which this "
                      "board was not found to have")
    smt2 = artifact.get("smt2", "")
    if hashlib.sha256(smt2.encode()).hexdigest() != artifact.get("sha256"):
        return refuse("the artifact's query does not match its SHA-256")
    if query(isa, spec, program) != smt2:
        return refuse("the artifact's query is not the proof obligation of its program "
                      "(re-derived here from the routine and the program)")
    if assemble(isa, program, features) != code:
        return refuse("the machine code is not what the proven program assembles to")
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.from_string(smt2)
    verdict = solver.check()
    if verdict == z3.sat:
        return refuse("z3: the program differs from the routine (the query is satisfiable)")
    if verdict == z3.unknown:
        return refuse(f"z3 could not decide the query ({solver.reason_unknown()})")
    return ArtifactCheck(True, "z3: unsat, re-derived from the routine and the program",
                         time.process_time() - started, spec, program)
