"""How a task ends when something goes wrong: one line on stderr and an exit status.

    error: <what was wrong>; <what to do>

Usage errors (a bad option, an unknown name, a file that is not there) exit 2;
failures of the work itself exit 1; an interrupted task exits 130.  Library
layers raise their own exception types with one-line messages; KNOWN says which
of them are the user's to fix and which are failures.  Anything else is a bug:
one line that says so, and `--debug` shows the traceback.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass

USAGE = 2
FAILURE = 1
INTERRUPTED = 130


class UsageError(Exception):
    """A command line the task cannot run; the message says what to change."""


class Failure(Exception):
    """The work failed; the message says what happened and what to do."""


class Interrupted(Exception):
    """The user stopped the task (Ctrl-C); the message says what was kept."""


# Library exceptions whose messages already say what was wrong and what to do, by
# module and class name, first match wins.  Naming them keeps this module from
# importing every layer: an exception whose module was never imported cannot
# have been raised, so only the modules already loaded are consulted.
KNOWN: tuple[tuple[str, str, int], ...] = (
    ("cli.errors", "UsageError", USAGE),
    ("cli.errors", "Failure", FAILURE),
    ("cli.errors", "Interrupted", INTERRUPTED),
    ("arch.isa", "UnknownArch", USAGE),
    ("qemu.errors", "BoardError", USAGE),  # also QEMU's own "unable to find CPU model"
    ("sem.store", "UnknownRoutine", USAGE),
    ("sem.store", "NameTaken", USAGE),
    ("sem.store", "BadName", USAGE),
    ("sem.loader", "RoutineFileError", USAGE),
    ("sem.vectors", "NarrowDomain", USAGE),  # a routine file's precondition too narrow
    ("stores.ledger", "LedgerError", USAGE),
    ("cli.ledger", "CheckFailed", FAILURE),
    ("cli.sem", "BoardDisagrees", FAILURE),
    ("stores.db", "DatabaseFileError", FAILURE),
    ("qemu.errors", "QemuError", FAILURE),
    ("probes.run", "ProbeRunError", FAILURE),
    ("probes.campaign", "ProbesBroughtBoardDown", FAILURE),
    ("discovery.fingerprint", "FingerprintError", FAILURE),
    ("toolchain.program", "AssemblyError", FAILURE),
    ("kernel.x86_64.build", "ImageLayoutError", FAILURE),
    ("sem.implement", "ImplementationRejected", FAILURE),
    ("evolution.board_features", "BaseFormsDisagree", FAILURE),
)

OS_ERROR_ADVICE = {
    FileNotFoundError: "check the path",
    IsADirectoryError: "give a file, not a directory",
    NotADirectoryError: "check the path",
    PermissionError: "check the file's permissions",
}


@dataclass(frozen=True)
class Verdict:
    """What the user is told and the exit status."""

    line: str
    status: int
    details: str = ""  # the rest of a multi-line message, shown with --debug


def _known_status(error: BaseException) -> int | None:
    for module_name, class_name, status in KNOWN:
        module = sys.modules.get(module_name)
        kind = getattr(module, class_name, None) if module is not None else None
        if kind is not None and isinstance(error, kind):
            return status
    return None


def _split(message: str) -> tuple[str, str]:
    first, _, rest = message.strip().partition("\n")
    return first, rest


def judge(error: BaseException) -> Verdict:
    """The one line and exit status for an exception that ended a task."""
    status = _known_status(error)
    if status is not None:
        first, rest = _split(str(error))
        more = "; run with --debug for the details" if rest and status != USAGE else ""
        return Verdict(f"error: {first}{more}", status, rest)
    if isinstance(error, KeyboardInterrupt):
        return Verdict("interrupted", INTERRUPTED)
    if type(error) in OS_ERROR_ADVICE:
        if error.filename is None:  # raised with a message of its own
            return Verdict(f"error: {error}", USAGE)
        return Verdict(f"error: {error.filename}: {error.strerror}; {OS_ERROR_ADVICE[type(error)]}",
                       USAGE)
    if isinstance(error, SyntaxError) and error.filename:
        return Verdict(f"error: {error.filename}, line {error.lineno}: {error.msg}; fix the file",
                       USAGE)
    sqlite3 = sys.modules.get("sqlite3")  # loaded by whichever store raised
    if sqlite3 is not None and isinstance(error, sqlite3.DatabaseError):
        return Verdict(f"error: the database is unusable ({error}); give another with --db "
                       "or $METAOS_DB", FAILURE)
    first, _ = _split(str(error))
    return Verdict(f"error: unexpected {type(error).__name__}: {first}; this is a bug: run with "
                   "--debug for the traceback", FAILURE)


def report(error: BaseException, debug: bool) -> int:
    """Tell the user on stderr (the traceback too with `debug`); return the exit status."""
    verdict = judge(error)
    if debug:
        traceback.print_exception(error, file=sys.stderr)
        if verdict.details:
            print(verdict.details, file=sys.stderr)
    print(verdict.line, file=sys.stderr)
    return verdict.status
