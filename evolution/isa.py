"""Machine instruction sets as data: each instruction form once, with its operands,
the CPU feature that gates it, how it is written for our assemblers, and its
meaning as IR (sem.ir), so the interpreter, Z3 and the generated evaluator
all read the same definition.

A form's semantics is a function of a `Sem` context: it reads operand values
(registers as 64-bit values, immediates sign-extended to 64 bits, memory
operands as their address), implicit registers and flags, and writes results
back.  The context does not know what it is used for: composing a program into
one IR routine (semantics.py), generating the evaluator's code (codegen.py) and
validating a single instruction against Unicorn (validate.py) each back it
differently.

Values the architecture leaves undefined (x86 flags after some instructions,
bsf/bsr of zero) are `Sem.undefined` nodes: free inputs to a proof, so no
program that depends on them can be proven, and skipped when validating.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property

from arch import Arch
from sem.ir import Node, const, trunc, zext

REG, IMM, MEM = "reg", "imm", "mem"


@dataclass(frozen=True)
class OperandSpec:
    """One explicit operand of a form.

    REG: a register of class `regs`, written at `width` bits (x86 eax vs rax);
    `access` "r", "w" or "rw".  IMM: a constant in [lo, hi].  MEM: a base
    register plus a displacement in [lo, hi], accessing `width` bits
    (`access` "r" for a load, "w" for a store)."""

    kind: str
    width: int = 64
    access: str = "r"
    lo: int = 0
    hi: int = 0
    regs: str = "gpr"


def reg(width: int, access: str = "r", regs: str = "gpr") -> OperandSpec:
    return OperandSpec(REG, width, access, regs=regs)


def imm(lo: int, hi: int) -> OperandSpec:
    return OperandSpec(IMM, 64, "r", lo, hi)


def mem(width: int, access: str, lo: int = -2048, hi: int = 2047) -> OperandSpec:
    return OperandSpec(MEM, width, access, lo, hi)


Semantics = Callable[["Sem"], None]


@dataclass(frozen=True)
class Form:
    """One instruction form, e.g. `add r32, r32`."""

    name: str  # unique within its ISA
    mnemonic: str  # as written for the assembler
    operands: tuple[OperandSpec, ...]
    semantics: Semantics = field(compare=False, repr=False)
    feature: str | None = None  # CPU feature that gates it (None: the base ISA)
    latency: float = 1.0  # cycles, the fallback table's; measured timings replace it
    # A form whose text the project's assembler refuses gets raw bytes instead, from
    # (registers, immediate) (x86 `adcx`: see isa_x86_64._adx_bytes).
    encode: Callable[[tuple[int, ...], int], bytes] | None = field(
        default=None, compare=False, repr=False)
    # how the operands, once written, make the statement (default "mnemonic op, op")
    render: Callable[[list[str]], str] | None = field(default=None, compare=False, repr=False)
    # render's inverse where it renames operands: the operands as written, as the names
    # render was given (x86 `ah` read as `al`); None: as written
    unrender: Callable[[list[str]], list[str]] | None = field(
        default=None, compare=False, repr=False)
    fixed: tuple[str, ...] = ()  # operands written out but not chosen (x86 shifts by `cl`)
    # machine instructions the form stands for: 1, or more for a compound (riscv's branch
    # over a move, a conditional move); every instruction count counts them
    size: int = 1
    # the form (by name) that closes this form's latency chain where the form fed its own
    # result would walk out of its domain: `bsf` of its own index reaches 0 in a few steps,
    # whose result is undefined (AMD leaves the register, and times it as a move).  The
    # timing model then chains `form A, B; keeper B, A` and subtracts the keeper's latency
    chain_keeper: str | None = None

    # cached: the evaluator's encoding reads these for every instruction it decodes
    @cached_property
    def register_operands(self) -> tuple[int, ...]:
        """Positions of the operands that take a register slot (REG and MEM bases)."""
        return tuple(i for i, o in enumerate(self.operands) if o.kind in (REG, MEM))

    @cached_property
    def immediate_operand(self) -> int | None:
        """Position of the operand that takes the immediate slot (IMM, or MEM's displacement)."""
        found = [i for i, o in enumerate(self.operands) if o.kind in (IMM, MEM)]
        return found[0] if found else None

    @property
    def memory(self) -> OperandSpec | None:
        return next((o for o in self.operands if o.kind == MEM), None)


class Sem:
    """What a form's semantics reads and writes, over IR nodes.

    `inputs` maps ("op", i), ("reg", name), ("flag", name) and "mem" to nodes;
    a missing key is asked of `supply` (so a composition can read state lazily).
    Writes are recorded in order in `outputs` as (key, node)."""

    def __init__(self, supply: Callable[[object], Node], undefined: Callable[[int], Node]):
        self._supply = supply
        self._undefined = undefined
        self.inputs: dict[object, Node] = {}
        self.outputs: list[tuple[object, Node]] = []
        self.memory_addresses: list[tuple[Node, int]] = []  # (address, bytes) of every access
        self._mem: Node | None = None

    def _get(self, key) -> Node:
        if key not in self.inputs:
            self.inputs[key] = self._supply(key)
        return self.inputs[key]

    # operands -------------------------------------------------------------
    def __getitem__(self, i: int) -> Node:
        """Operand i: a register's 64-bit value, an immediate as 64 bits, or a memory address."""
        return self._get(("op", i))

    def low(self, i: int, width: int) -> Node:
        value = self[i]
        return value if width == 64 else trunc(value, width)

    def write(self, i: int, value: Node) -> None:
        if value.width != 64:
            raise ValueError(f"operand writes are 64-bit register values, got width {value.width}")
        self.outputs.append((("op", i), value))

    # implicit registers and flags --------------------------------------------------
    def reg(self, name: str) -> Node:
        return self._get(("reg", name))

    def set_reg(self, name: str, value: Node) -> None:
        if value.width != 64:
            raise ValueError(f"register writes are 64-bit values, got width {value.width}")
        self.outputs.append((("reg", name), value))

    def flag(self, name: str) -> Node:
        return self._get(("flag", name))

    def set_flag(self, name: str, value: Node) -> None:
        if value.width != 1:
            raise ValueError(f"flag {name} takes a 1-bit value, got width {value.width}")
        self.outputs.append((("flag", name), value))

    # memory --------------------------------------------------------------------
    @property
    def mem(self) -> Node:
        return self._mem if self._mem is not None else self._get("mem")

    def load(self, address: Node, width: int) -> Node:
        self.memory_addresses.append((address, width // 8))
        return Node("load", width, (self.mem, address), 0)

    def store(self, address: Node, value: Node) -> None:
        self.memory_addresses.append((address, value.width // 8))
        self._mem = Node("store", 0, (self.mem, address, value), 0)
        self.outputs.append(("mem", self._mem))

    def undefined(self, width: int) -> Node:
        return self._undefined(width)


@dataclass(frozen=True)
class PlatformAbi:
    """How a routine's inputs arrive and its result leaves, for one ISA's platform ABI."""

    args: tuple[str, ...]  # argument registers, in order
    result: str
    # 32-bit (and narrower) arguments: "undefined" upper bits (x86-64 System V) or
    # "sign" extended to 64 (riscv64 LP64, for signed and unsigned alike)
    narrow_args: str
    # 32-bit results: only the low bits count ("low") or sign-extended to 64 ("sign")
    narrow_result: str
    preserved: tuple[str, ...]  # callee-saved registers (and the stack pointer)
    # what makes a 32-bit value in the result register the ABI's result (riscv: sext.w)
    result_fixup: str | None = None


@dataclass(frozen=True, eq=False)  # one object per ISA: equal and hashed by identity
class Isa:
    """One instruction set: registers, flags, forms and how programs are written."""

    name: str
    arch: Arch  # the architecture object of the layers below (assemblers, probe ABI, Unicorn)
    registers: tuple[str, ...]  # 64-bit names by hardware number
    flags: tuple[str, ...]
    forms: tuple[Form, ...]
    abi: PlatformAbi
    scratch: tuple[str, ...]  # caller-saved registers a search may use beside args/result
    render_register: Callable[[int, int], str]  # (number, width) -> name
    render_memory: Callable[[int, int, int], str]  # (base number, displacement, width) -> text
    parse_register: Callable[[str], tuple[int, int] | None]  # name -> (number, width)
    assemble: Callable[[str, frozenset[str]], bytes]  # (text, features) -> bytes
    # (statements, features) -> each one's bytes, in one assembler run where that is cheaper
    assemble_each: Callable[[list[str], frozenset[str]], list[bytes]]
    return_text: str  # the return instruction
    zero_register: int | None = None  # riscv x0: reads 0, writes vanish
    aliases: Mapping[str, str] = field(default_factory=dict)  # other spellings of mnemonics
    # the real instructions an assembler pseudo-instruction stands for (riscv li, mv...)
    expand: Callable[[str, list[str]], list[tuple[str, list[str]]]] | None = None
    features: tuple[str, ...] = ()  # every feature some form needs
    # register classes besides "gpr" (every register): the registers an operand of that
    # class may name (x86 "legacy8": the four whose second byte has a name, ah..bh)
    register_classes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    # whether instructions differ in length (x86-64) so that as many instructions can take
    # fewer bytes (evolution/compaction.py); riscv64 without C: four bytes each
    variable_length: bool = False
    # no-op instructions by their length in bytes, to pad a code with (evolution/layout.py)
    nops: Mapping[int, bytes] = field(default_factory=dict)
    # a form of one cycle's latency on every core of the ISA (the integer add): a measured
    # model counts in its latency, timed in the same probes (evolution/timing_model.py)
    cycle_form: str = ""
    # a conditional jump in a compiler's listing (evolution/gcc.py reads gcc's code as its
    # paths for proof; the search writes no jumps): (mnemonic, operand texts) -> (its
    # condition over the machine state, its target operand's text), None for any other
    # instruction
    conditional_jump: Callable[[str, list[str]], tuple[Callable[[Sem], Node], str] | None] = \
        lambda mnemonic, operands: None
    jump_text: str = ""  # the unconditional jump's mnemonic in such a listing
    # form name -> the form that computes the same low 32 bits and sign-extends them
    # (riscv64's W forms): a lowering's 64-bit `addi` before a 32-bit result's closing
    # `addiw a0, x, 0` leaves that extension to do; as `addiw` it leaves none
    # (evolution/lift.py polish)
    word_forms: Mapping[str, str] = field(default_factory=dict)
    # two-address forms whose operands commute (x86 `and edi, esi` leaves in edi what `and
    # esi, edi` leaves in esi): polish writes them the other way round, so that a result
    # the lowering copies into the result register can be computed there
    commutative_forms: frozenset[str] = frozenset()
    by_name: Mapping[str, Form] = field(default_factory=dict, compare=False, repr=False)
    # form name -> 1-based index (forms.index compares whole dataclasses: slow in loops)
    index_by_name: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        names = [f.name for f in self.forms]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"{self.name}: form names must be unique, repeated: {sorted(dupes)}")
        for f in self.forms:  # the evaluator's row has three register slots and one immediate
            if len(f.register_operands) > 3 or sum(o.kind in (IMM, MEM) for o in f.operands) > 1:
                raise ValueError(f"{self.name} form {f.name!r} needs more than 3 registers and "
                                 "one immediate; split it into forms that fit")
        unknown = [f.name for f in self.forms if f.chain_keeper not in (None, *names)]
        if self.cycle_form and self.cycle_form not in names:
            unknown.append(f"the ISA (cycle form {self.cycle_form!r})")
        if unknown:
            raise ValueError(f"{self.name}: the chain keeper or cycle form of {unknown} is"
                             " not a form")
        object.__setattr__(self, "by_name", {f.name: f for f in self.forms})
        object.__setattr__(self, "index_by_name",
                           {f.name: k + 1 for k, f in enumerate(self.forms)})

    def number(self, name: str) -> int:
        return self.registers.index(name)

    def form_index(self, name: str) -> int:
        """1-based: index 0 of a program encoding is the UNUSED slot."""
        return self.index_by_name[name]

    def form(self, index: int) -> Form:
        return self.forms[index - 1]

    def in_class(self, regs: str) -> tuple[int, ...]:
        return self.register_classes.get(regs, tuple(range(len(self.registers))))

    def fits(self, form: str, regs: tuple[int, ...]) -> bool:
        """Every register one its operand of `form` may name (x86 `sh`: only rax-rbx have
        a second byte)."""
        f = self.by_name[form]
        return all(r in self.in_class(f.operands[k].regs)
                   for r, k in zip(regs, f.register_operands, strict=False))

    def available(self, features: frozenset[str]) -> tuple[Form, ...]:
        return tuple(f for f in self.forms if f.feature is None or f.feature in features)


FLAGS_BIT = 1 << 40  # in read/write masks: the flags (registers are bits 0..39)


@dataclass(frozen=True)
class FormEffects:
    """What a form reads and writes: operand positions, implicit registers, flags."""

    read_operands: tuple[int, ...]
    written_operands: tuple[int, ...]
    read_mask: int  # implicit registers (bit = number), and FLAGS_BIT when it reads a flag
    written_mask: int
    read_flags: tuple[str, ...] = ()  # by name
    written_flags: tuple[str, ...] = ()


@cache
def form_effects(isa: Isa, form: Form) -> FormEffects:
    """Runs the form's semantics on symbolic inputs and records the keys it touches."""
    def supply(key):
        if key == "mem":
            return Node("mem", 0)
        if key[0] == "flag":
            return trunc(Node("param", 8, (), 0), 1)
        return Node("param", 64, (), 0)

    def undefined(width: int) -> Node:
        value = Node("param", 64, (), 1)
        return value if width == 64 else trunc(value, width)

    sem = Sem(supply, undefined)
    form.semantics(sem)
    read_ops, read_mask, read_flags, written_flags = [], 0, [], []
    for key in sem.inputs:
        if key == "mem":
            continue
        kind, what = key
        if kind == "op" and form.operands[what].kind in (REG, MEM):
            read_ops.append(what)
        elif kind == "reg":
            read_mask |= 1 << isa.number(what)
        elif kind == "flag":
            read_mask |= FLAGS_BIT
            read_flags.append(what)
    written_ops, written_mask = [], 0
    for key, _ in sem.outputs:
        if key == "mem":
            continue
        kind, what = key
        if kind == "op":
            written_ops.append(what)
        elif kind == "reg":
            written_mask |= 1 << isa.number(what)
        else:
            written_mask |= FLAGS_BIT
            written_flags.append(what)
    # a memory operand's base register is read to form the address
    read_ops += [i for i, o in enumerate(form.operands) if o.kind == MEM and i not in read_ops]
    return FormEffects(tuple(read_ops), tuple(written_ops), read_mask, written_mask,
                       tuple(read_flags), tuple(written_flags))


# shared IR helpers ----------------------------------------------------------------

def low(x: Node, width: int) -> Node:
    return x if x.width == width else trunc(x, width)


def wide(x: Node) -> Node:
    """Zero-extend to 64 bits."""
    return x if x.width == 64 else zext(x, 64)


def bit(x: Node, i: int) -> Node:
    from sem.ir import lshr

    return trunc(lshr(x, i), 1) if i else trunc(x, 1)


def c(value: int, width: int) -> Node:
    return const(value, width)
