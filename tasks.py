"""MetaOS tasks (run them through ./run, which prepares the environment first).

    ./run demo          boot the default board and print what the machine is
    ./run test          the whole test suite (boot tests run under TCG)
"""

from invoke import task


@task
def test(c, k="", x=False):
    """Run the whole test suite (pytest). -k EXPR selects tests; -x stops at the first failure."""
    args = ["-q"]
    if k:
        args += ["-k", repr(k)]
    if x:
        args.append("-x")
    c.run(".venv/bin/python -m pytest " + " ".join(args), pty=False)
