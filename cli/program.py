"""`./run`: invoke's task runner with MetaOS's command-line conventions.

- Grouped tasks are spelled with a space: `./run sem show REF` runs `sem.show`;
  a group alone lists its tasks.
- `./run TASK --help` and `./run --help TASK` both show a task's help, also for
  tasks that take positional arguments (invoke would take `--help` for one).
- `--debug` anywhere (or METAOS_DEBUG=1) shows the traceback of a failure.
- Every task ends through one error path (cli/errors.py): a user error is one
  line on stderr and exit status 2, a failure one line and status 1; a closed
  stdout (`./run ... | head`) ends quietly with status 0.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence

from invoke import Collection, Exit, ParseError, Program, UnexpectedExit

from cli.errors import UsageError, report

DEBUG_FLAG = "--debug"
DEBUG_ENV = "METAOS_DEBUG"
HELP_FLAG = "--help"
UNKNOWN = re.compile(r"No idea what '(?P<word>.*)' is!")  # invoke's ParseError for a stray word


def debug_requested(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> bool:
    """--debug on the command line, or METAOS_DEBUG set (not to 0)."""
    return DEBUG_FLAG in argv or environ.get(DEBUG_ENV, "") not in ("", "0")


def normalize(argv: Sequence[str], namespace: Collection) -> list[str]:
    """MetaOS spellings -> invoke's: drop --debug, join `GROUP TASK` into `GROUP.TASK`,
    move a task's --help in front of it (see the module docstring)."""
    args = [a for a in argv if a != DEBUG_FLAG]
    start = 1 if args[:1] == [HELP_FLAG] else 0
    if len(args) > start and args[start] in namespace.collections:
        group = namespace.collections[args[start]]
        if len(args) > start + 1 and args[start + 1] in group.tasks:
            args[start:start + 2] = [f"{args[start]}.{args[start + 1]}"]
        elif group.default is None and start == 0:
            return ["--list", args[0]]
    if start == 0 and args and not args[0].startswith("-") and HELP_FLAG in args[1:]:
        return [HELP_FLAG, args[0]]
    return args


def usage_of(error: str, argv: Sequence[str], namespace: Collection) -> str:
    """invoke's ParseError as a line that says what to do.  A word it could not place
    names the task (or group: `./run bench nosuch`) it came after; `argv` as normalized."""
    unknown = UNKNOWN.fullmatch(error)
    if unknown is None:
        return f"{error}; `./run --help TASK` shows a task's options"
    word = unknown["word"]
    before = argv[:argv.index(word)] if word in argv else []
    tasks = namespace.task_names
    owner = next((a for a in reversed(before) if a in tasks or a in namespace.collections), None)
    if owner in namespace.collections and not word.startswith("-"):
        names = ", ".join(sorted(namespace.collections[owner].tasks))
        return (f"'{word}' is not a task of {owner} nor an argument: its tasks are {names}"
                f" (`./run {owner} TASK`)")
    if owner is not None:
        spelled = owner.replace(".", " ")  # as typed: `./run sem show`
        return f"{spelled} takes no '{word}': `./run --help {spelled}` shows what it takes"
    if word.startswith("-"):
        return f"./run has no option '{word}': `./run --help` lists its options"
    return (f"no task '{word}': `./run --list` lists the tasks, `./run --help TASK` a task's"
            " options")


class MetaosProgram(Program):
    """invoke's Program, with the tasks of tasks.py and the error path of cli/errors.py."""

    def __init__(self, namespace: Collection) -> None:
        super().__init__(name="MetaOS", binary="./run")
        self._tasks = namespace

    def parse_core(self, argv: list[str] | None) -> None:
        # invoke turns off .pyc writing unless given --write-pyc; the modules the tasks
        # import lazily would then be compiled again on every run.  Keep Python's own
        # setting (PYTHONDONTWRITEBYTECODE, -B).
        writes = sys.dont_write_bytecode
        super().parse_core(argv)
        sys.dont_write_bytecode = writes

    def load_collection(self) -> None:
        self.collection = self._tasks

    def run(self, argv: list[str] | None = None, exit: bool = True) -> None:  # noqa: A002
        argv = list(sys.argv if argv is None else argv)
        debug = debug_requested(argv[1:])
        status, args = 0, argv[1:]
        try:
            try:
                # the steps of invoke's Program.run, whose own handling of Exit and
                # ParseError would print and exit before ours could
                self.create_config()
                args = normalize(argv[1:], self._tasks)
                self.parse_core([argv[0], *args])
                self.parse_collection()
                self.parse_tasks()
                self.parse_cleanup()
                self.update_config()
                self.execute()
                sys.stdout.flush()
            except ParseError as error:
                raise UsageError(usage_of(str(error), args, self._tasks)) from None
        except BrokenPipeError:
            # The reader went away (`./run ... | head`): stop quietly.  Point stdout at
            # /dev/null so the interpreter's final flush does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except UnexpectedExit as error:  # a subprocess (pytest...) said why it failed
            status = error.result.exited
        except Exit as error:
            if error.message:
                print(error.message, file=sys.stderr)
            status = error.code
        except SystemExit:
            raise
        except BaseException as error:  # noqa: BLE001 -- the one place every task error ends
            status = report(error, debug)
        if exit:
            sys.exit(status)


def main(argv: list[str] | None = None) -> None:
    import tasks  # the repository's task declarations (./run runs from the repository root)

    MetaosProgram(Collection.from_module(tasks)).run(argv)

