"""The generated evaluator agrees with the IR semantics (sem's interpreter reading
the composed program) on every form of both ISAs, on every register, flag and memory
byte, over random operands with edge values; and on random multi-instruction programs."""

from __future__ import annotations

import random

import numpy as np
import pytest

from evolution import evaluator
from evolution.codegen import CHUNK
from evolution.program import MachineProgram, random_insn
from evolution.registry import ISAS
from evolution.semantics import compose
from sem import interp
from sem.interp import Memory
from sem.vectors import DATA_ADDRESS

WINDOW = 64
EDGES = (0, 1, 2, 31, 32, 63, 64, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000,
         0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 2**64 - 1, 2**64 - 2, 0xFF, 0x8000)


def _pool(isa):
    usable = [i for i, name in enumerate(isa.registers)
              if name not in isa.abi.preserved and i != isa.zero_register]
    base = usable[0]
    return tuple(usable[:6]), base


def _state(isa, rng, base):
    nreg, nflag = len(isa.registers), max(1, len(isa.flags))
    R0 = np.zeros((1, nreg, CHUNK), dtype=np.uint64)
    F0 = np.zeros((1, nflag, CHUNK), dtype=np.uint8)
    M0 = np.frombuffer(rng.randbytes(CHUNK * WINDOW), dtype=np.uint8)
    M0 = M0.reshape(1, CHUNK, WINDOW).copy()
    U = np.array([[rng.getrandbits(64) for _ in range(CHUNK)]], dtype=np.uint64)
    for lane in range(CHUNK):
        for r in range(nreg):
            edge = rng.random() < 0.4
            x = rng.choice(EDGES) if edge else rng.getrandbits(rng.choice((6, 32, 64)))
            R0[0, r, lane] = x
        if isa.zero_register is not None:
            R0[0, isa.zero_register, lane] = 0
        R0[0, base, lane] = DATA_ADDRESS
        F0[0, :, lane] = [rng.getrandbits(1) for _ in range(nflag)]
    return R0, F0, M0, U


def _agree(isa, program, R0, F0, M0, U):
    final = evaluator.run(isa, program, R0, F0, M0, U)
    comp = compose(isa, program)
    for lane in range(CHUNK):
        regs = [int(x) for x in R0[0, :, lane]]
        flags = [int(x) for x in F0[0, : len(isa.flags), lane]]
        args = comp.inputs(regs, flags, int(U[0, lane]))
        memory = Memory(DATA_ADDRESS, bytes(M0[0, lane]))
        where = f"{program.insns} lane {lane} regs {[hex(r) for r in regs]} flags {flags}"
        assert not final.faulted[lane], where
        for r, node in enumerate(comp.registers):
            if node.op == "param" and node.attr == r:
                continue  # untouched
            want = interp.run(comp.routine(node), args, memory).result
            assert int(final.registers[r, lane]) == want, f"{isa.registers[r]}: {where}"
        for k, f in enumerate(isa.flags):
            want = interp.run(comp.routine(comp.flags[f]), args, memory).result
            assert int(final.flags[k, lane]) == want, f"flag {f}: {where}"
        if comp.memory is not comp.initial_memory:
            want = interp.run(comp.routine(None), args, memory).memory.data
            assert bytes(final.memory[lane]) == want, f"memory: {where}"


@pytest.mark.parametrize("isa_name", sorted(ISAS))
def test_every_form_agrees_with_its_ir_semantics(isa_name):
    isa = ISAS[isa_name]
    rng = random.Random(7)
    pool, base = _pool(isa)
    for form in isa.forms:
        for _ in range(2):
            insn = random_insn(isa, form, rng, pool, (base,), tuple(range(0, WINDOW - 8, 4)))
            _agree(isa, MachineProgram(isa.name, (insn,)), *_state(isa, rng, base))


@pytest.mark.parametrize("isa_name", sorted(ISAS))
def test_random_programs_agree_with_their_ir_semantics(isa_name):
    isa = ISAS[isa_name]
    rng = random.Random(11)
    pool, base = _pool(isa)
    cheap = [f for f in isa.forms if f.latency < 10]  # the divisions' IR is long to interpret
    checked = 0
    for _ in range(30):
        insns = tuple(random_insn(isa, rng.choice(cheap), rng, pool, (base,), (0, 8, 16))
                      for _ in range(6))
        program = MachineProgram(isa.name, insns)
        R0, F0, M0, U = _state(isa, rng, base)
        # a program may move the base: keep only programs whose accesses stay in the window
        final = evaluator.run(isa, program, R0, F0, M0, U)
        if final.faulted.any():
            continue
        _agree(isa, program, R0, F0, M0, U)
        checked += 1
    assert checked >= 15
