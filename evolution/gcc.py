"""The user's alternative: gcc -O3 on the routine's C view, for the features the board
was found to have, as machine code in the platform calling convention.

    compiled = compile_c(isa, spec, features)
    compiled.code, compiled.instructions, compiled.asm, compiled.flags

gcc compiles the C view (sem/views/c.py) to an object file; the function's bytes are
read from it with pyelftools (its symbol's value and size in its section) and refused
if anything in them needs relocating (the code must run wherever the probe form puts
it).  Its instructions are counted, the return included, from objdump's disassembly of
that symbol, which is also the `asm` shown.  x86-64 uses the host's gcc; riscv64 the
Debian cross compiler (gcc-riscv64-linux-gnu, which ./run installs).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection

from evolution.isa import Isa
from evolution.program import MachineProgram, ParseError, parse, split_statement
from evolution.proof import Proof, prove_traces
from evolution.semantics import Branch, Trace
from evolution.starts import Start
from sem.ir import Routine
from sem.views import Naming, render


def _x86_march(features: frozenset[str]) -> tuple[str, ...]:
    """The baseline x86-64 and one -m flag per feature found (gcc's names)."""
    flags = {"bmi1": "-mbmi", "bmi2": "-mbmi2", "lzcnt": "-mlzcnt", "popcnt": "-mpopcnt",
             "adx": "-madx"}
    return ("-march=x86-64", "-mtune=generic", *(flags[f] for f in sorted(features)))


def _riscv_march(features: frozenset[str]) -> tuple[str, ...]:
    """rv64gc (G includes M) or, on a board without M, rv64iafdc; then the Zb* found."""
    base = "rv64gc" if "m" in features else "rv64iafdc"
    extensions = "".join(f"_{f}" for f in ("zba", "zbb", "zbs") if f in features)
    return (f"-march={base}{extensions}", "-mabi=lp64d")


@dataclass(frozen=True)
class Toolchain:
    """A compiler and disassembler for one ISA, and how its features become flags."""

    gcc: str
    objdump: str
    package: str  # the Debian package that brings them
    march: Callable[[frozenset[str]], tuple[str, ...]]
    objdump_flags: tuple[str, ...]
    base_flags: tuple[str, ...]  # besides -O3 and march


TOOLCHAINS: dict[str, Toolchain] = {
    "x86_64": Toolchain("gcc", "objdump", "gcc", _x86_march, ("-M", "intel"),
                        ("-fno-pic", "-fcf-protection=none", "-fno-stack-protector")),
    "riscv64": Toolchain("riscv64-linux-gnu-gcc", "riscv64-linux-gnu-objdump",
                         "gcc-riscv64-linux-gnu", _riscv_march, (),
                         ("-fno-pic", "-fno-stack-protector", "-mno-relax")),
}


class GccUnavailable(RuntimeError):
    """The compiler for this ISA is not installed."""


class GccCodeUnusable(RuntimeError):
    """gcc's function cannot run as a probe (it needs relocating, or was not found)."""


@dataclass(frozen=True)
class Compiled:
    code: bytes
    instructions: int  # every instruction, the return included
    asm: str  # objdump's lines for the function
    flags: tuple[str, ...]  # the gcc command line's flags
    version: str  # gcc --version's first line
    features: frozenset[str] = frozenset()  # the board's, that the flags ask for
    # each asm line's address as objdump numbers it (in its section), which its jumps name
    addresses: tuple[int, ...] = ()


def available(isa: Isa) -> bool:
    tools = TOOLCHAINS[isa.name]
    return shutil.which(tools.gcc) is not None and shutil.which(tools.objdump) is not None


def compile_c(isa: Isa, spec: Routine, features: frozenset[str]) -> Compiled:
    """gcc -O3 of the C view of `spec` for `features` (the engine's names)."""
    tools = TOOLCHAINS[isa.name]
    if not available(isa):
        raise GccUnavailable(f"{tools.gcc} (or {tools.objdump}) is not installed; install the "
                             f"Debian package {tools.package} (./run installs it as root)")
    name = spec.hint_name or "routine"
    source = render("c", spec, Naming.default(spec, "0" * 64, name, ()))
    flags = ("-O3", *tools.march(features), *tools.base_flags)
    with tempfile.TemporaryDirectory(prefix="metaos-gcc-") as work:
        c, obj = Path(work, f"{name}.c"), Path(work, f"{name}.o")
        c.write_text(source)
        done = subprocess.run([tools.gcc, *flags, "-c", str(c), "-o", str(obj)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise GccCodeUnusable(f"{tools.gcc} refused the C view of {name}: "
                                  f"{done.stderr.strip().splitlines()[-1:]}")
        code, start, section = _function(obj, name)
        listing = subprocess.run(
            [tools.objdump, "-d", "--no-show-raw-insn", *tools.objdump_flags, "-j", section,
             str(obj)], capture_output=True, text=True, check=True)
    version = subprocess.run([tools.gcc, "--version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
    lines = _instruction_lines(listing.stdout, start, start + len(code))
    return Compiled(code, len(lines), "\n".join(text for _, text in lines), flags, version,
                    features, tuple(address for address, _ in lines))


def _function(path: Path, name: str) -> tuple[bytes, int, str]:
    """The function's bytes, its offset and its section's name."""
    with path.open("rb") as f:
        elf = ELFFile(f)
        symbols = elf.get_section_by_name(".symtab")
        found = [s for s in symbols.get_symbol_by_name(name) or ()
                 if s["st_info"]["type"] == "STT_FUNC"]
        if not found:
            raise GccCodeUnusable(f"gcc's object has no function {name}")
        index = found[0]["st_shndx"]
        section = elf.get_section(index)
        start, end = found[0]["st_value"], found[0]["st_value"] + found[0]["st_size"]
        for rel in elf.iter_sections():
            if not isinstance(rel, RelocationSection) or rel["sh_info"] != index:
                continue
            for r in rel.iter_relocations():
                if not start <= r["r_offset"] < end:
                    continue
                # riscv's assembler keeps a relocation for a branch to a local label even
                # with -mno-relax, the offset filled in: one inside the function is resolved
                target = symbols.get_symbol(r["r_info_sym"])
                if not (target["st_shndx"] == index and start <= target["st_value"] < end):
                    raise GccCodeUnusable(f"gcc's {name} needs relocating (it refers to data "
                                          "or calls out); it cannot run as a probe")
        return section.data()[start:end], start, section.name


def _address(text: str) -> int | None:
    """objdump's hexadecimal address (an instruction's, or a jump's target), or None."""
    if not text or not all(ch in "0123456789abcdef" for ch in text):
        return None
    return int(text, 16)


def _instruction_lines(listing: str, start: int, end: int) -> list[tuple[int, str]]:
    """objdump's instruction lines ("  addr:\\tmnemonic operands") in [start, end), each
    as its address and its text (riscv objects keep local labels as symbols, so a listing
    of the function's symbol alone would stop at its first branch target)."""
    out = []
    for line in listing.splitlines():
        head, sep, rest = line.partition(":\t")
        address = _address(head.strip())
        if sep and address is not None and start <= address < end:
            out.append((address, " ".join(rest.split())))
    return out


# objdump writes a riscv64 instruction with an immediate under its register form's name
# where the two share an opcode family (`addw a5,a0,-1` for addiw); the parser wants the
# assembler's names
_RISCV_IMMEDIATE_FORMS = {"add": "addi", "addw": "addiw", "and": "andi", "or": "ori",
                          "xor": "xori", "sll": "slli", "srl": "srli", "sra": "srai",
                          "sllw": "slliw", "srlw": "srliw", "sraw": "sraiw", "slt": "slti",
                          "sltu": "sltiu"}
_NUMBER = re.compile(r"-?(0x[0-9a-f]+|[0-9]+)")


def _riscv_statement(line: str, features: frozenset[str]) -> str:
    # objdump comments a constant it can place (`addi a3,a3,-1 # ffff <p25+0xffff>`)
    line = line.partition("#")[0].strip()
    mnemonic, _, operands = line.partition(" ")
    last = operands.rsplit(",", 1)[-1].strip()
    if mnemonic in _RISCV_IMMEDIATE_FORMS and _NUMBER.fullmatch(last):
        return f"{_RISCV_IMMEDIATE_FORMS[mnemonic]} {operands}"
    return line


def _x86_statement(line: str, features: frozenset[str]) -> str:
    # without BMI1 gcc still writes `rep bsf` for a count of trailing zeros (where the input
    # cannot be 0), which objdump shows as tzcnt: such a board runs it as bsf
    mnemonic, _, operands = line.partition(" ")
    return f"bsf {operands}" if mnemonic == "tzcnt" and "bmi1" not in features else line


# (objdump's line, the features compiled for) -> the statement the parser reads
STATEMENTS: dict[str, Callable[[str, frozenset[str]], str]] = {
    "x86_64": _x86_statement, "riscv64": _riscv_statement}


def _statements(isa: Isa, compiled: Compiled) -> list[str]:
    return [STATEMENTS[isa.name](line, compiled.features) for line in compiled.asm.splitlines()]


def as_start(isa: Isa, compiled: Compiled) -> Start | None:
    """gcc's function as a program the search can start from (STOKE's optimisation mode
    begins at the compiler's output), or None when it is not one straight-line program
    of the forms the engine knows (branches, alignment padding).  Like every start, it is
    proven before it is used."""
    try:
        return Start("gcc -O3", parse(isa, "\n".join(_statements(isa, compiled)) + "\n"))
    except ParseError:
        return None


MAX_TRACES = 64  # a function with more ways through it is not read (gcc's riscv64 sort4 has 512)


def traces(isa: Isa, compiled: Compiled) -> tuple[MachineProgram, tuple[Trace, ...]] | None:
    """gcc's function as its paths from the entry to a return (semantics.Trace), each the
    instructions it runs, the jumps taken out, and the branches it meets; with them, every
    instruction some path runs, in the listing's order, as one program (what the code
    needs of the board: features, Unicorn).  None where it is not that: an instruction
    the engine cannot read on some path, a jump to no instruction of the function, a
    loop, running past the end, or more than MAX_TRACES paths."""
    lines = _statements(isa, compiled)
    if len(lines) != len(compiled.addresses):
        return None
    line_at = {address: k for k, address in enumerate(compiled.addresses)}

    def target(text: str) -> int | None:
        address = _address(text.split()[0] if text.split() else "")
        return None if address is None else line_at.get(address)

    # each line as what it does: ("run", its instructions), ("branch", condition, target),
    # ("jump", target), ("return",) or ("skip",) for a nop
    kinds: list[tuple] = []
    for line in lines:
        mnemonic, operands = split_statement(line)
        branch = isa.conditional_jump(mnemonic, operands)
        if branch is not None:
            kinds.append(("branch", branch[0], target(branch[1])))
        elif mnemonic == isa.jump_text and len(operands) == 1:
            kinds.append(("jump", target(operands[0])))
        elif line == isa.return_text:
            kinds.append(("return",))
        elif "nop" in line.split():
            kinds.append(("skip",))
        else:
            try:
                kinds.append(("run", parse(isa, f"{line}\n{isa.return_text}\n").insns))
            except ParseError:
                kinds.append(("unreadable",))
    found: list[Trace] = []
    reached: set[int] = set()
    # a path so far: its next line, its instructions, its branches, the lines it ran
    pending: list[tuple[int | None, tuple, tuple[Branch, ...], frozenset[int]]] = [
        (0, (), (), frozenset())]
    while pending:
        k, insns, branches, seen = pending.pop()
        while True:
            if k is None or k >= len(lines) or k in seen or kinds[k][0] == "unreadable":
                return None
            seen = seen | {k}
            kind = kinds[k]
            if kind[0] == "return":
                found.append(Trace(MachineProgram(isa.name, insns), branches))
                reached |= seen
                if len(found) > MAX_TRACES:
                    return None
                break
            if kind[0] == "branch":
                _, taken, to = kind
                pending.append((to, insns, (*branches, Branch(len(insns), taken, True)), seen))
                branches = (*branches, Branch(len(insns), taken, False))
            elif kind[0] == "jump":
                k = kind[1]
                continue
            elif kind[0] == "run":
                insns = (*insns, *kind[1])
            k += 1
    everything = tuple(i for k in sorted(reached) if kinds[k][0] == "run" for i in kinds[k][1])
    return MachineProgram(isa.name, everything), tuple(found)


@dataclass(frozen=True)
class ProvenCompiled:
    """gcc's code with Z3's proof that it equals the routine: a candidate beside ours
    that the guest may choose (fitness.against)."""

    compiled: Compiled
    program: MachineProgram  # every instruction a path runs (traces): its bytes read back
    proof: Proof
    traces: tuple[Trace, ...]  # one, the program itself, where it does not branch

    @property
    def branching(self) -> bool:
        """Whether it branches (then its text is gcc's listing, not the program's)."""
        return len(self.traces) > 1


def proven(isa: Isa, spec: Routine, compiled: Compiled,
           timeout_ms: int = 20_000) -> ProvenCompiled | None:
    """gcc's code proven at full width like every candidate, or None where it cannot be
    a candidate: not read as its paths (traces: one where it is straight-line; gcc's
    sort3 on x86-64 branches six ways, its p20 jumps over its last shift where x = 0), or
    not proven (Z3 gave up in `timeout_ms`, or found it wrong under the engine's reading
    of the ABI)."""
    read = traces(isa, compiled)
    if read is None:
        return None
    program, ways = read
    proof = prove_traces(isa, spec, ways, timeout_ms)
    return ProvenCompiled(compiled, program, proof, ways) if proof.proven else None
