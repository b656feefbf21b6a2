"""After the proof: the program's machine code, called by the platform ABI, agrees
with the interpreter on vectors in Unicorn.

The code runs in sem's probe form (as_probe: a wrapper that loads the
arguments as 64-bit words, calls the routine and stores its result register and
memory window), so the same probes can go to a guest later.  Arguments carry
what the ABI allows: junk above a 32-bit x86-64 argument, sign extension on
riscv64; the raw result register is compared as the ABI returns it.
"""

from __future__ import annotations

from dataclasses import dataclass

from evolution.isa import Isa
from evolution.program import MachineProgram
from evolution.testset import MachineVector, expected
from evolution.validate import UNICORN_ERRATA, UNICORN_LACKS, UnicornMachine
from probes.routine import RESULT_OFFSET, WORD, probe_form, probe_result
from sem import interp
from sem.interp import Memory
from sem.ir import Routine
from sem.vectors import DATA_ADDRESS, DATA_SIZE, Vector


@dataclass(frozen=True)
class MachineMismatch:
    vector: MachineVector
    detail: str


def probe_vector(isa: Isa, spec: Routine, v: MachineVector) -> Vector:
    """The probe form's input: each argument register's full 64 bits, memory padded."""
    args = tuple(v.registers[isa.number(name)] for name in isa.abi.args[: len(spec.params)])
    memory = None
    if spec.uses_memory:
        memory = Memory(DATA_ADDRESS, v.memory + bytes(DATA_SIZE - len(v.memory)))
    return Vector(args, memory)


def unicorn_cannot(isa: Isa, program: MachineProgram) -> str | None:
    """Why Unicorn cannot judge `program` (a form it lacks or gets wrong), or None."""
    lacks = UNICORN_LACKS[isa.name]
    for insn in program.insns:
        form = isa.by_name[insn.form]
        if form.feature in lacks:
            return f"{form.mnemonic} is {form.feature}, which Unicorn lacks"
        if (isa.name, form.name) in UNICORN_ERRATA:
            return f"Unicorn gets {form.name} wrong: {UNICORN_ERRATA[(isa.name, form.name)].why}"
    return None


def unicorn_check(isa: Isa, spec: Routine, code: bytes,
                  vectors: list[MachineVector]) -> list[MachineMismatch]:
    """Every vector inside the routine's domain on which the code's result (as the ABI
    returns it) or memory differs, or that did not return."""
    form = probe_form(spec, isa.arch, code)
    machine = UnicornMachine(isa)
    mask = (1 << spec.result_width) - 1 if spec.result is not None else 0
    out = []
    for v in vectors:
        pv = probe_vector(isa, spec, v)
        output = machine.run(form.probe(pv))
        if output is None:
            out.append(MachineMismatch(v, "the code did not return"))
            continue
        if not interp.admits(spec, pv.args):
            continue  # outside the routine's domain every answer is right
        raw = int.from_bytes(output[RESULT_OFFSET : RESULT_OFFSET + WORD], "little")
        want = interp.run(spec, pv.args, pv.memory)
        got = probe_result(spec, output)
        if spec.result is not None:
            abi_result, _ = expected(isa, spec, v)
            wide = isa.abi.narrow_result == "sign" or spec.result_width == 64
            if (raw if wide else raw & mask) != abi_result:
                detail = f"result register {raw:#x}, the routine's {abi_result:#x}"
                out.append(MachineMismatch(v, detail))
                continue
        if got.memory != want.memory:
            out.append(MachineMismatch(v, "memory differs"))
    return out


def unicorn_verdict(isa: Isa, spec: Routine, program: MachineProgram, code: bytes,
                    vectors: list[MachineVector]) -> str:
    """The machine check's verdict on `program` (assembled as `code`), in words."""
    cannot = unicorn_cannot(isa, program)
    if cannot:
        return f"unicorn: not run ({cannot}); the guest checks it"
    mismatches = unicorn_check(isa, spec, code, vectors)
    if mismatches:
        return f"unicorn: DISAGREES on {len(mismatches)} of {len(vectors)} vectors"
    return f"unicorn: agrees with the interpreter on {len(vectors)} vectors"
