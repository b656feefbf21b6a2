"""The console tasks print on, where stdout is a pipe or a CI log: tables as wide as they
need (not rich's 80 columns, a wide table's cells wrapped a word to a line), and a live
table's last frame ending its line before the task's next one."""

from __future__ import annotations

import io
import sys

from rich.table import Table

from cli import terminal


def test_on_a_pipe_tables_get_pipe_width_unless_columns_says_otherwise(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.delenv("COLUMNS", raising=False)
    assert terminal.console().width == terminal.PIPE_WIDTH
    monkeypatch.setenv("COLUMNS", "100")
    assert terminal.console().width == 100
    assert terminal.console(width=60).width == 60


def test_a_live_tables_last_frame_ends_its_line_on_a_pipe():
    out = io.StringIO()
    console = terminal.console(file=out, width=40)
    table = Table(caption="the caption")
    table.add_column("board")
    table.add_row("q35:qemu64")
    with terminal.TaskLive(console=console, auto_refresh=False, transient=False) as live:
        live.update(table, refresh=True)
    console.print("makespan 1.00 s")
    lines = out.getvalue().splitlines()
    assert lines[-1] == "makespan 1.00 s"
    assert lines[-2].strip() == "the caption"
