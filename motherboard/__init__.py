"""The meta-motherboard: live boards onboard through discovery, bid for tasks, earn trust
from measured results, and may leave at any time.

    messages      what boards and the motherboard say to each other (the only interface)
    workload      tasks, Poisson streams, task graphs, the workload file format
    routines      the routines tasks name, and their inputs
    history       StarPU-style performance history per routine x implementation x board
    energy        the per-board energy model (and RAPL where the host exposes it)
    trust         Beta reputation, one view per observer, with evidence counts
    auction       the trust-weighted second-price (Vickrey) auction
    oracle        measures completion, checks answers against the interpreter
    agent         a board's agent: bids from its history, runs what it is awarded
    adversary     liars for tests and the demo
    market        the motherboard itself: a sans-IO state machine over those messages
    heft          HEFT (Topcuoglu et al. 2002), round-robin and random list schedulers
    sim           simulated boards and a virtual clock, behind the same messages
    live          real QEMU boards behind the same messages
    record        a run's record (JSON schema metaos.motherboard/1)
"""
