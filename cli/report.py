"""Printing the discovery report (discovery/report.py) with rich: titles in bold, the
memory map as a table (ASCII when stdout is not a terminal), plain text in pipes."""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli import terminal
from discovery.inventory import Inventory
from discovery.report import ReportLines, ReportTable, report


def _table(part: ReportTable, ascii_only: bool) -> Table:
    table = Table(title=part.title, title_justify="left",
                  box=box.ASCII if ascii_only else box.HEAVY_HEAD)
    for column in part.columns:
        table.add_column(column, justify="right" if column in part.right else "left")
    for row in part.rows:
        table.add_row(*row)
    return table


def render(inventory: Inventory, console: Console | None = None) -> None:
    """Print the inventory for a human (plain text when stdout is not a terminal)."""
    console = console or terminal.console(highlight=False)
    for part in report(inventory):
        if isinstance(part, ReportTable):
            console.print(_table(part, ascii_only=not console.is_terminal))
        elif isinstance(part, ReportLines):
            console.print(Text(part.title, style="bold"))
            for line in part.lines:
                console.print(Text(line), soft_wrap=True)
        console.print()


def render_text(inventory: Inventory, width: int = 200) -> str:
    """The same report as plain text (for logs and tests)."""
    buffer = io.StringIO()
    render(inventory, Console(file=buffer, width=width, force_terminal=False, color_system=None,
                              highlight=False))
    return buffer.getvalue()
