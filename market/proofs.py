"""Proof artifacts: what a claimed improvement carries so that anyone can check it
without trusting the claimant's verdict.

An artifact (format `metaos.proof/1`, JSON) holds the routine's canonical form (its
hash is the routine's ID, so the specification cannot be swapped), the ISA, the program
as text, and the proof as SMT-LIB 2 queries that must all be unsatisfiable, each with
its SHA-256: one per way the program could differ from the routine (evolution/proof.py
`obligations`: the result register, the routine's memory, each callee-saved register,
each access outside the routine's memory; over every input inside the routine's domain,
its precondition, and every machine state).  As the
engine's prover does, a result computed by multiplying is stated over integers
(evolution/proof_int.py: bit-blasting two multipliers of different shapes is hopeless,
the integer reading is exact), every other obligation over bit-vectors.  One query per
obligation keeps each small, and makes the list the same whoever derives it.

`check_artifact` re-derives the queries itself from the routine and the program (so no
stored query can be an easier one), requires them to be the stored ones, asks Z3 about
each, and requires the machine code to be what the program assembles to on the
checking board's features.  It trusts nothing in the artifact but the text it re-checks.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass

import z3

from evolution.isa import Isa
from evolution.program import MachineProgram, ParseError, assemble, parse, text
from evolution.proof import integer_result_obligation, multiplies, obligations
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


def _script(constraints: list) -> str:
    """SMT-LIB 2 text.  Solver.sexpr names shared subterms by their order in the formula
    (to_smt2 by Z3's internal term ids, which depend on what else the process built), so
    the same constraints always print the same text."""
    solver = z3.Solver()
    solver.add(*constraints)
    return solver.sexpr() + "(check-sat)\n"


def queries(isa: Isa, spec: Routine, program: MachineProgram) -> list[tuple[str, str]]:
    """(what it states, SMT-LIB 2) for every obligation; all unsat: the program
    implements the routine."""
    wrong, _, comp = obligations(isa, spec, program)
    if not wrong:
        raise ValueError("the routine has neither a result nor a memory effect: nothing "
                         "to prove")
    out = []
    if spec.result is not None:  # obligations() states the result first
        result = comp.registers[isa.number(isa.abi.result)]
        integer = (integer_result_obligation(isa, spec, comp)
                   if multiplies(spec.result) or multiplies(result) else None)
        if integer is not None:
            out.append(("the result, over integers", _script(integer)))
        else:
            out.append(("the result", _script([wrong[0]])))
        wrong = wrong[1:]
    out += [(f"obligation {k} (memory, a callee-saved register or an access)", _script([c]))
            for k, c in enumerate(wrong, 1)]
    return out


def features_used(isa: Isa, program: MachineProgram) -> frozenset[str]:
    """The CPU features the program's instructions need (BMI1, Zbb, ...)."""
    return frozenset(f for i in program.insns if (f := isa.by_name[i.form].feature))


def make_artifact(isa: Isa, spec: Routine, program: MachineProgram) -> dict:
    """The artifact of `program` for `spec`.  The queries are derived from what the
    artifact stores (the canonical form and the program text, read back), as a checker
    will derive them."""
    canon = canonicalize(spec)
    source = text(isa, program)
    stated = queries(isa, parse_routine(canon.text), parse(isa, source))
    return {"format": FORMAT, "routine": canon.id, "canonical": canon.text, "isa": isa.name,
            "program": source, "features": sorted(features_used(isa, program)),
            "queries": [{"what": what, "smt2": smt2,
                         "sha256": hashlib.sha256(smt2.encode()).hexdigest()}
                        for what, smt2 in stated],
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
    stored = artifact.get("queries")
    if not isinstance(stored, list) or not all(isinstance(q, Mapping) for q in stored):
        return refuse("the artifact holds no list of queries")
    for q in stored:
        if hashlib.sha256(str(q.get("smt2", "")).encode()).hexdigest() != q.get("sha256"):
            return refuse(f"the query for {q.get('what')!r} does not match its SHA-256")
    if [q.get("smt2") for q in stored] != [smt2 for _, smt2 in queries(isa, spec, program)]:
        return refuse("the artifact's queries are not the proof obligations of its program "
                      "(re-derived here from the routine and the program)")
    if assemble(isa, program, features) != code:
        return refuse("the machine code is not what the proven program assembles to")
    for q in stored:
        solver = z3.Solver()
        solver.set("timeout", timeout_ms)
        solver.from_string(q["smt2"])
        verdict = solver.check()
        if verdict == z3.sat:
            return refuse(f"z3: the program can differ from the routine ({q['what']}: "
                          "the query is satisfiable)")
        if verdict == z3.unknown:
            return refuse(f"z3 could not decide {q['what']} ({solver.reason_unknown()})")
    return ArtifactCheck(True, f"z3: all {len(stored)} queries unsat, re-derived from the "
                               "routine and the program",
                         time.process_time() - started, spec, program)
