"""The rich console tasks print tables and progress with.

rich ends the process with status 1 when stdout's reader has gone; here a closed
pipe raises BrokenPipeError instead, so it ends like any other task's output
(cli/program.py: quietly, status 0).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console


class TaskConsole(Console):
    def on_broken_pipe(self) -> None:
        raise BrokenPipeError("stdout's reader has gone")


def console(**options: Any) -> Console:
    """A console on stdout (plain text when stdout is not a terminal)."""
    return TaskConsole(**options)
