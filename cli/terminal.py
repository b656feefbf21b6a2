"""The rich console tasks print tables and progress with.

Where stdout is not a terminal (a pipe, a CI log) rich would lay tables out in 80
columns, wrapping a wide one's cells a word to a line; there they get PIPE_WIDTH
columns instead, unless COLUMNS says otherwise.

rich ends the process with status 1 when stdout's reader has gone; here a closed
pipe raises BrokenPipeError instead, so it ends like any other task's output
(cli/program.py: quietly, status 0).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console
from rich.live import Live


class TaskConsole(Console):
    def on_broken_pipe(self) -> None:
        raise BrokenPipeError("stdout's reader has gone")


PIPE_WIDTH = 200


def console(**options: Any) -> Console:
    """A console on stdout (plain text when stdout is not a terminal, PIPE_WIDTH wide)."""
    if "width" not in options and "COLUMNS" not in os.environ and not sys.stdout.isatty():
        options["width"] = PIPE_WIDTH
    return TaskConsole(**options)


class TaskLive(Live):
    """rich's Live, whose last frame ends its line where stdout is not a terminal: rich
    leaves it open there, and the task's next line would go on at its end."""

    def stop(self) -> None:
        started = self.is_started
        super().stop()
        if started and not self.console.is_terminal:
            self.console.line()
