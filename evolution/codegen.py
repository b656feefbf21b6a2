"""The evaluator's code, generated from each form's IR semantics.

Every form becomes one numba function that runs the form over a batch of test
vectors: registers R[register, vector] (uint64), flags F[flag, vector] (uint8),
memory windows M[vector, byte] at DATA_ADDRESS, a fault mark per vector and the
vector's value for undefined results U[vector].  `execute` dispatches a whole
program (rows as in program.encode) over the vectors, instruction by
instruction.  Together with kernel_template.py (costs and the search) this is
written to one module file per ISA, under the user's cache directory and named
by the hash of its text, so numba's on-disk cache (cache=True) compiles each
version once.

IR values are held normalised: a w-bit value in the low w bits of a uint64,
the bits above zero.  numba turns mixed int64/uint64 arithmetic into floats,
so every operation is written with explicit uint64 (or int64) operands.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from evolution.isa import FLAGS_BIT, IMM, MEM, Form, Isa, Sem
from sem.ir import Node
from sem.vectors import DATA_ADDRESS

TEMPLATE = Path(__file__).with_name("kernel_template.py")
CHUNK = 16  # vectors run together; a candidate's evaluation may stop after any chunk


def _mask(w: int) -> int:
    return (1 << w) - 1


class _Emitter:
    """Python statements for one form's IR DAG, one local per node."""

    def __init__(self, constants: dict[int, str]):
        self.lines: list[str] = []
        self.names: dict[int, str] = {}
        self.constants = constants  # value -> global name (shared across the module)
        self.params: dict[int, str] = {}  # param position -> expression

    def const(self, value: int) -> str:
        if value not in self.constants:
            self.constants[value] = f"K{len(self.constants)}"
        return self.constants[value]

    def signed(self, x: str, w: int) -> str:
        """The w-bit value x as an int64."""
        if w == 64:
            return f"np.int64({x})"
        sign = self.const(1 << (w - 1))
        return f"(np.int64({x} ^ {sign}) - np.int64({sign}))"

    def emit(self, n: Node) -> str:
        key = id(n)
        if key in self.names:
            return self.names[key]
        args = [self.emit(a) for a in n.args]
        name = f"t{len(self.names)}"
        self.names[key] = name
        code = self._expression(n, args)
        if code is not None:
            self.lines.append(f"{name} = {code}")
        return name

    def _expression(self, n: Node, a: list[str]) -> str | None:
        w, op = n.width, n.op
        if op == "mem":
            return None  # the memory token: accesses are statements on M
        if op == "param":
            return self.params[n.attr]
        if op == "const":
            return self.const(n.attr)
        if op == "load":
            return f"load(M, FAULT, v, {a[1]}, {w // 8})"
        if op == "store":
            self.lines.append(f"store(M, FAULT, v, {a[1]}, {n.args[2].width // 8}, {a[2]})")
            return None
        code = self._operation(n, a)
        if code is None:
            raise ValueError(f"no evaluator code for IR operation {op!r}")
        return code

    def _operation(self, n: Node, a: list[str]) -> str | None:
        w, op, k = n.width, n.op, self.const
        x = a[0]
        y = a[1] if len(a) > 1 else None
        aw = n.args[0].width
        mask = k(_mask(w)) if w < 64 else None

        def wrap(e: str) -> str:
            return f"({e}) & {mask}" if mask else e

        def signed(v: str) -> str:
            return self.signed(v, aw)

        amount = f"({y} & {k(w - 1)})" if y is not None and w > 1 else ""
        if op == "mulhu":
            return f"mulhu64({x}, {y})" if w == 64 else f"({x} * {y}) >> {k(w)}"
        if op == "mulhs" and w == 64:
            return f"mulhs64({x}, {y})"
        if op == "rotr":
            left = f"(({k(w)} - {amount}) & {k(w - 1)})"
            return f"rotl({x}, {left}, {k(w)}, {k(_mask(w))})"
        if op == "sext":
            sign = k(1 << (aw - 1))
            return wrap(f"({x} ^ {sign}) - {sign}")
        table = {
            "add": lambda: wrap(f"{x} + {y}"),
            "sub": lambda: wrap(f"{x} - {y}"),
            "mul": lambda: wrap(f"{x} * {y}"),
            # x / 0 = all ones, x % 0 = x (sem/ir.py); numba's // would give 0
            "udiv": lambda: f"{x} // {y} if {y} != ZERO else {k(_mask(w))}",
            "urem": lambda: f"{x} % {y} if {y} != ZERO else {x}",
            "mulhs": lambda: wrap(f"np.uint64(({signed(x)} * {signed(y)}) >> np.int64({w}))"),
            "and": lambda: f"{x} & {y}",
            "or": lambda: f"{x} | {y}",
            "xor": lambda: f"{x} ^ {y}",
            "shl": lambda: wrap(f"{x} << {amount}"),
            "lshr": lambda: f"{x} >> {amount}",
            "ashr": lambda: wrap(f"np.uint64({signed(x)} >> np.int64({amount}))"),
            "rotl": lambda: f"rotl({x}, {amount}, {k(w)}, {k(_mask(w))})",
            "not": lambda: f"{x} ^ {k(_mask(w))}",
            "neg": lambda: wrap(f"{k(0)} - {x}"),
            "popcount": lambda: f"popcount64({x})",
            "clz": lambda: f"clz64({x}) - {k(64 - w)}",
            "ctz": lambda: f"ctz64({x}, {k(w)})",
            "eq": lambda: f"ONE if {x} == {y} else ZERO",
            "ne": lambda: f"ONE if {x} != {y} else ZERO",
            "ult": lambda: f"ONE if {x} < {y} else ZERO",
            "ule": lambda: f"ONE if {x} <= {y} else ZERO",
            "slt": lambda: f"ONE if {signed(x)} < {signed(y)} else ZERO",
            "sle": lambda: f"ONE if {signed(x)} <= {signed(y)} else ZERO",
            "select": lambda: f"{a[1]} if {x} != ZERO else {a[2]}",
            "zext": lambda: x,
            "trunc": lambda: f"{x} & {mask}",
        }
        return table[op]() if op in table else None


def form_body(isa: Isa, form: Form, constants: dict[int, str]) -> list[str]:
    """The statements that run `form` on vector v (registers o0..o2, immediate IMM)."""
    e = _Emitter(constants)
    params: list[Node] = []

    def param(expr: str, width: int) -> Node:
        node = Node("param", width, (), len(params))
        e.params[node.attr] = expr
        params.append(node)
        return node

    slots = {pos: k for k, pos in enumerate(form.register_operands)}
    flag_index = {f: k for k, f in enumerate(isa.flags)}

    def supply(key) -> Node:
        if key == "mem":
            return Node("mem", 0)
        kind, what = key
        if kind == "reg":
            return param(f"R[{isa.number(what)}, v]", 64)
        if kind == "flag":
            return param(f"np.uint64(F[{flag_index[what]}, v])", 1)
        operand = form.operands[what]
        if operand.kind == IMM:
            return param("IMM", 64)
        base = param(f"R[o{slots[what]}, v]", 64)
        return base + param("IMM", 64) if operand.kind == MEM else base

    def undefined(width: int) -> Node:
        return param(f"(U[v] & {e.const(_mask(width))})", width)

    sem = Sem(supply, undefined)
    form.semantics(sem)
    # every value first (stores happen where the DAG puts them), then the writes
    values = [(key, e.emit(node)) for key, node in sem.outputs]
    body = list(e.lines)
    for key, name in values:
        if key == "mem":
            continue
        kind, what = key
        if kind == "flag":
            body.append(f"F[{flag_index[what]}, v] = np.uint8({name})")
        elif kind == "reg":
            body.append(f"R[{isa.number(what)}, v] = {name}")
        else:
            body.append(f"R[o{slots[what]}, v] = {name}")
    if isa.zero_register is not None:
        body.append(f"R[{isa.zero_register}, v] = ZERO")
    return body or ["pass"]


OUTLINED = 100  # statements: a longer form gets a function of its own (see _dispatch)


def _outlined(index: int, form: Form, body: list[str]) -> list[str]:
    return (["@njit(cache=True)",
             f"def f{index}(R, F, M, FAULT, U, nv, o0, o1, o2, IMM):  # {form.name}",
             "    for v in range(nv):"] + [f"        {line}" for line in body] + [""])


def _dispatch(leaves: list[tuple[int, Form, list[str]]], depth: int) -> list[str]:
    """A balanced tree of comparisons (log2(forms) tests) down to each form's loop over
    the vectors, written in place: a call costs more than a short form's work on a chunk
    of vectors.  The few long forms (bit deposit, division: hundreds of statements) are
    called instead, which keeps `execute` small enough to compile in reasonable time."""
    pad = "    " * depth
    if len(leaves) == 1:
        index, form, body = leaves[0]
        if len(body) > OUTLINED:
            return [f"{pad}f{index}(R, F, M, FAULT, U, nv, o0, o1, o2, IMM)  # {form.name}"]
        return ([f"{pad}# {form.name}", f"{pad}for v in range(nv):"]
                + [f"{pad}    {line}" for line in body])
    mid = len(leaves) // 2
    return ([f"{pad}if op < {leaves[mid][0]}:"] + _dispatch(leaves[:mid], depth + 1)
            + [f"{pad}else:"] + _dispatch(leaves[mid:], depth + 1))


def module_source(isa: Isa) -> str:
    constants: dict[int, str] = {}
    leaves = [(isa.form_index(f.name), f, form_body(isa, f, constants)) for f in isa.forms]
    head = [f"# Generated by evolution.codegen from the {isa.name} forms; do not edit.",
            f"NREG = {len(isa.registers)}",
            f"CHUNK = {CHUNK}",
            f"FLAGS_BIT = np.int64({FLAGS_BIT})",
            f"DATA_ADDRESS = np.uint64({DATA_ADDRESS})",
            f"NFLAG = {max(1, len(isa.flags))}",
            f"ZERO_REGISTER = {-1 if isa.zero_register is None else isa.zero_register}",
            # machine instructions per form index (0: UNUSED); compounds count each
            f"SIZE = np.array({[0, *(f.size for f in isa.forms)]}, dtype=np.int64)"]
    head += [f"{name} = np.uint64({value})" for value, name in constants.items()]
    execute = ["@njit(cache=True)",
               "def execute(prog, n, R, F, M, FAULT, U, nv):",
               "    for k in range(n):",
               "        op = prog[k, 0]",
               "        if op == 0:",
               "            continue",
               "        o0, o1, o2 = prog[k, 1], prog[k, 2], prog[k, 3]",
               "        IMM = np.uint64(prog[k, 4])"]
    execute += _dispatch(leaves, 2)
    outlined = [line for leaf in leaves if len(leaf[2]) > OUTLINED for line in _outlined(*leaf)]
    return "\n".join([TEMPLATE.read_text(), *head, "", *outlined, *execute]) + "\n"


def cache_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "metaos" / "evolution"


def module_name(isa: Isa) -> tuple[str, str]:
    """(the name of the ISA's evaluator module, its source)."""
    source = module_source(isa)
    digest = hashlib.blake2b(source.encode(), digest_size=8).hexdigest()
    return f"metaos_eval_{isa.name}_{digest}", source


def compiled(isa: Isa, functions: tuple[str, ...]) -> bool:
    """Whether numba's on-disk cache holds compiled code of each of the ISA's module's
    `functions`."""
    name, _ = module_name(isa)
    return cached(cache_directory(), name, functions)


def cached(directory: Path, module: str, functions: tuple[str, ...]) -> bool:
    """Whether numba's cache holds each of `functions` of `module`, a module file in
    `directory`: numba keeps an index per compiled function beside its module, in
    __pycache__, named `<module>.<function>-<line>.py<version>.nbi`."""
    pycache = directory / "__pycache__"
    return all(any(pycache.glob(f"{module}.{f}-*.nbi")) for f in functions)


def load(isa: Isa) -> ModuleType:
    """The ISA's evaluator module, written to the cache directory if new and imported."""
    name, source = module_name(isa)
    if name in sys.modules:
        return sys.modules[name]
    path = cache_directory() / f"{name}.py"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(source)
        partial.replace(path)  # atomic: a process beside us may be writing the same file
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
