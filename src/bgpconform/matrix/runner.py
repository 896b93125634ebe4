"""Run a matrix: the suite once per cell, each in its own pytest process and report directory, then
one page over all of them (`bgpconform.report.matrix_page`).

A cell's run is exactly what a user would type (`pytest --topology=... --cilium-version=...
--bgp-api=... --reports-dir=...`), so a cell can be replayed alone from the command the page shows.
A stop (Ctrl-C, SIGTERM) reaches every cell running (`bgpconform.side_by_side`) and starts no more:
the page shows what ran, the rest as not run.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bgpconform.child_pytest import pytest_argv
from bgpconform.matrix.cells import Cell
from bgpconform.report.model import RunReport
from bgpconform.side_by_side import Children, run_child, stops_passed_on, wait_all


@dataclass(frozen=True)
class CellRun:
    """One finished cell: its command, exit status (None: not started, the matrix was stopped
    first), wall time and report (None if none was written)."""

    cell: Cell
    command: list[str]
    returncode: int | None
    seconds: float
    report_dir: Path | None
    report: RunReport | None

    @property
    def shown_command(self) -> str:
        return shlex.join(self.command)


def cell_command(cell: Cell, root: Path, reports: Path, extra: Sequence[str] = ()) -> list[str]:
    return pytest_argv(
        "-q",
        f"--topology={root / 'topologies' / cell.topology}",
        f"--cilium-version={cell.version}",
        f"--bgp-api={cell.api.value}",
        f"--reports-dir={reports}",
        *extra,
    )


def run_cell(cell: Cell, root: Path, out: Path, extra: Sequence[str] = (), *, children: Children) -> CellRun:
    reports = out / cell.slug
    command = cell_command(cell, root, reports, extra)
    if children.stopped:
        return CellRun(cell, command, None, 0.0, None, None)
    began = time.monotonic()
    returncode = run_child(command, cwd=root, log=out / f"{cell.slug}.log", children=children)
    seconds = time.monotonic() - began
    latest = reports / "latest"
    report_file = latest / "report.json"
    report = RunReport.model_validate_json(report_file.read_text()) if report_file.is_file() else None
    return CellRun(cell, command, returncode, seconds, latest.resolve() if report else None, report)


@dataclass(frozen=True)
class MatrixRuns:
    runs: list[CellRun]  # in the cells' order
    interrupted: bool  # a stop signal arrived: cells stopped early or never started


def run_matrix(
    cells: Sequence[Cell],
    root: Path,
    out: Path,
    *,
    extra: Sequence[str] = (),
    progress: Callable[[CellRun], None] = lambda _: None,
    side_by_side: int = 1,
) -> MatrixRuns:
    """Every cell's run, `side_by_side` labs at a time (each its own process, namespaces, run directory
    and loopback ports; a lab mostly waits on timers, so two cores carry two); `progress` hears of each
    as it finishes, and the result keeps the cells' order."""
    out.mkdir(parents=True, exist_ok=True)
    children = Children()
    with (
        stops_passed_on(children),
        ThreadPoolExecutor(max_workers=max(1, side_by_side), thread_name_prefix="matrix") as pool,
    ):
        futures = [pool.submit(run_cell, cell, root, out, extra, children=children) for cell in cells]
        wait_all(futures, children, progress)
        runs = [future.result() for future in futures]
    summary = [
        {
            "topology": r.cell.topology,
            "cilium": r.cell.version,
            "bgp_api": r.cell.api.value,
            "returncode": r.returncode,
            "seconds": round(r.seconds, 1),
            "verdict": r.report.verdict.value if r.report else None,
            "report": str(r.report_dir.relative_to(out)) if r.report_dir else None,
            "command": r.shown_command,
        }
        for r in runs
    ]
    (out / "matrix.json").write_text(json.dumps(summary, indent=2) + "\n")
    return MatrixRuns(runs, children.stopped)
