"""Evolution: each board's own code for what the semantic core holds, searched for,
proven equivalent, checked on a machine.

Layer: above probes and sem (it may use sem, probes, arch, contract, toolchain).

    isa.py, isa_x86_64.py, isa_riscv64.py   instruction forms as data, each with its IR
                                            semantics, feature, assembler text, latency
    registry.py                             the ISAs and per-ISA tables, by ISA name
    program.py                              programs: forms + registers + immediate; text,
                                            assembly, parsing, the int64 rows kernels use
    semantics.py                            a program composed into one IR routine
    validate.py                             single-instruction probes: Unicorn, or a guest
    codegen.py, kernel_template.py          the evaluator and search kernels, generated
                                            from the semantics and compiled by numba
    testset.py                              machine-level test vectors (ABI placement)
    search.py, costmodel.py                 STOKE chains, the local search, the cost model
    sortnet.py, sortsearch.py, starts.py    correct programs to start from
    proof.py, proof_int.py, check.py        Z3 at full width; Unicorn after the proof
    evolve.py, targets.py                   the loop, and the goal boards

Only proven programs leave `evolve`: a candidate is proven by Z3 against the routine
under the platform ABI, then run in Unicorn against the interpreter.
"""
