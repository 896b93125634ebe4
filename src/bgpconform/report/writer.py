"""Writes a run's report directory and points `reports/latest` at it.

Files: report.json (the model), report.html, metrics.json, junit.xml and cucumber.json (pytest's and
pytest-bdd's own writers; copied here when the user sent them elsewhere), scenarios/*.json (each
scenario's evidence) and raw/ (the target's state). The last act is redacting the whole directory,
so no writer, ours or a plugin's, can leave a secret behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest

from bgpconform.report import summary
from bgpconform.report.junit import mark_outcomes
from bgpconform.report.model import RunReport

if TYPE_CHECKING:
    from bgpconform.report.redact import Redactor


class ReportSource(Protocol):
    """What the writer reads of the run's collector (a protocol, so the two modules do not import
    each other)."""

    config: pytest.Config
    directory: Path
    reports: Path
    raw_seconds: float
    raw_problems: list[str]

    def redactor(self) -> Redactor: ...


LATEST = "latest"
WRITE_SECONDS = pytest.StashKey[float]()  # how long writing took, for the benchmark


def write_report(collector: ReportSource, report: RunReport) -> Path:
    from bgpconform.report.html import render_html

    began = time.monotonic()
    directory = collector.directory
    directory.mkdir(parents=True, exist_ok=True)
    write_model_files(directory, report)
    _copy_plugin_files(collector, directory)
    junit = directory / "junit.xml"
    if junit.exists():
        mark_outcomes(junit, {s.node_id.rsplit("::", 1)[-1]: s.outcome for s in report.scenarios})
    (directory / "report.html").write_text(render_html(report), encoding="utf-8")
    collector.redactor().tree(directory)
    point_latest(collector.reports, directory)
    seconds = time.monotonic() - began
    collector.config.stash[WRITE_SECONDS] = seconds
    _tell(collector, directory, report, seconds)
    return directory


def write_model_files(directory: Path, report: RunReport) -> None:
    """report.json, metrics.json and scenarios/*.json: the model and what dashboards read of it."""
    (directory / "report.json").write_text(report.model_dump_json(indent=1), encoding="utf-8")
    (directory / "metrics.json").write_text(json.dumps(summary.metrics(report), indent=2), encoding="utf-8")
    scenarios = directory / "scenarios"
    scenarios.mkdir(exist_ok=True)
    for scenario in report.scenarios:
        name = scenario.node_id.rsplit("::", 1)[-1]
        (scenarios / f"{name}.json").write_text(scenario.model_dump_json(indent=1), encoding="utf-8")


def _copy_plugin_files(collector: ReportSource, directory: Path) -> None:
    """junit.xml and cucumber.json are written by their own plugins before this runs (trylast)."""
    option = collector.config.option
    for given, name in (
        (getattr(option, "xmlpath", None), "junit.xml"),
        (getattr(option, "cucumber_json_path", None), "cucumber.json"),
    ):
        if given and Path(given).exists() and Path(given).resolve() != (directory / name).resolve():
            shutil.copyfile(given, directory / name)


def point_latest(reports: Path, directory: Path) -> None:
    """Replace the link atomically, so a reader never finds `latest` missing."""
    link = reports / LATEST
    temporary = reports / f".{LATEST}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(directory.name)
    temporary.replace(link)


def _tell(collector: ReportSource, directory: Path, report: RunReport, seconds: float) -> None:
    reporter = collector.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("-", f"bgpconform verdict: {report.verdict}")
        provenance = report.run.provenance
        if provenance is not None and not provenance.all_real:
            emulated = "; ".join(provenance.emulated_names) or "nothing"
            reporter.write_line(f"not a release sign-off: emulated by the lab: {emulated}")
            for shortcut in provenance.shortcuts:
                reporter.write_line(f"shortcut in force: {shortcut}")
        reporter.write_line(f"report: {directory / 'report.html'}")
        reporter.write_line(
            f"report cost: written in {seconds:.2f} s, raw evidence read in {collector.raw_seconds:.2f} s"
        )
        for problem in collector.raw_problems:
            reporter.write_line(f"raw evidence incomplete: {problem}")
