"""`hone doctor`: which sandbox isolation layers this machine gives, and how to add the missing ones."""

from __future__ import annotations

import os
import platform
import shutil
import sys

from rich.markup import escape
from rich.table import Table

from ._common import console, friendly


@friendly
def doctor_cmd() -> None:
    """Report the sandbox's isolation layers on this machine (a report: always exits 0)."""
    from hone.sandbox import isolation_report

    euid = os.geteuid() if hasattr(os, "geteuid") else -1
    bwrap = shutil.which("bwrap")
    machine = Table(title="machine", header_style="bold", show_header=False)
    machine.add_row("python", f"{platform.python_version()} ({escape(sys.executable)})")
    machine.add_row("kernel", f"{platform.system()} {platform.release()}")
    machine.add_row("root", "yes" if euid == 0 else f"no (uid {euid})")
    machine.add_row(
        "bwrap", f"found at {bwrap} (not used)" if bwrap else "not found (not needed: hone sets up namespaces itself)"
    )
    console.print(machine)
    try:
        report = isolation_report()
    except Exception as exc:  # a report, not a check: say what broke and exit 0
        console.print(f"[bold red]sandbox unavailable:[/] {escape(str(exc))}", soft_wrap=True)
        return
    table = Table(title="sandbox isolation layers", header_style="bold")
    table.add_column("layer")
    table.add_column("active")
    table.add_column("detail")
    table.add_column("how to add it")
    for layer in report.layers:
        active = "[green]yes[/]" if layer.active else "[bold red]no[/]"
        table.add_row(layer.name, active, escape(layer.detail), escape(layer.fix))
    console.print(table)
    console.print(report.summary())
