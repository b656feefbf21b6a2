"""The command line: the only layer that prints.

    program.py      how ./run runs a task (invoke), spellings, the one error path
    errors.py       which exceptions are the user's to fix (exit 2) or failures (exit 1)
    arguments.py    options as typed -> values (numbers, choices, the board)
    terminal.py     the rich console tables and progress print on
    schemas.py      the JSON documents, each named by schema and version
    discover.py     build, discover, demo, boot, console
    report.py       the discovery report printed (discovery/report.py holds its content)
    probe.py        probe campaigns and the capability store's listing
    probe_tables.py their tables, one per kind of family summary
    sem.py          the semantic core's commands
    ledger.py       the ledger's commands
    suite.py        ./run test

tasks.py (the repository root) declares each task and its help and calls one
function here.  A new layer adds cli/<layer>.py with its commands (raising its
layer's exceptions, listed in errors.KNOWN with their exit status) and declares
them in tasks.py, as a group when it has several (`./run evolve run` for
`evolve.run` works for any group).  Modules import what a command uses inside
the command when it is costly, so that each task loads only what it needs.
"""
