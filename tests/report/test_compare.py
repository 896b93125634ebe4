"""Comparing two runs, in Python and through `bgpconform report compare` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bgpconform.disruption.timeline import Timeline
from bgpconform.errors import ConfigError
from bgpconform.report.compare import (
    ScenarioChange,
    TimingDelta,
    VersionChange,
    compare,
    load_report,
    render_html,
    render_text,
)
from bgpconform.report.model import EvidenceItem, RunReport, Verdict
from bgpconform.verdict import Outcome
from tests.disruption.test_timeline import TIMELINE
from tests.report.conftest import (
    CLIENT_PAGE,
    PEERING,
    REACHABILITY,
    SESSIONS,
    parse_html,
    squash,
    write_report,
)

CLI_DEADLINE = 60.0  # seconds; the command reads two files, so only a hang reaches it


def test_verdict_versions_and_outcomes(conformant: RunReport, non_conformant: RunReport) -> None:
    comparison = compare(conformant, non_conformant)
    assert comparison.verdict_changed
    assert (comparison.old_verdict, comparison.new_verdict) == (Verdict.CONFORMANT, Verdict.NON_CONFORMANT)
    assert comparison.versions == [VersionChange("cilium", "1.15.6", "1.16.1")]
    assert comparison.outcomes == [
        ScenarioChange(PEERING, SESSIONS, Outcome.PASSED, Outcome.NON_CONFORMANT),
        ScenarioChange(REACHABILITY, CLIENT_PAGE, Outcome.PASSED, Outcome.NOT_ASSESSED),
    ]
    assert comparison.added == []
    assert comparison.removed == []
    assert comparison.scenarios_compared == 6


def test_a_run_compared_with_itself_changes_nothing(conformant: RunReport) -> None:
    comparison = compare(conformant, conformant)
    assert not comparison.verdict_changed
    assert comparison.versions == []
    assert comparison.outcomes == []
    assert all(t.delta == 0 for t in comparison.timings)
    text = render_text(comparison)
    assert "Verdict: conformant (unchanged)" in text
    assert "Versions: unchanged" in text
    assert "Scenario outcomes: unchanged (6 scenarios in both runs)" in text


def test_timing_deltas_compare_medians(conformant: RunReport, non_conformant: RunReport) -> None:
    timings = {(t.stage, t.name): t for t in compare(conformant, non_conformant).timings}
    cilium = timings[("cilium", "install -> nodes Ready")]
    assert (cilium.old_median, cilium.new_median) == (40.1, 50.0)
    assert cilium.delta == pytest.approx(9.9)
    assert cilium.percent == pytest.approx(24.69, abs=0.01)
    ready = timings[("bgp-ready", "operator restart -> agents ready")]
    assert ready.new_median == pytest.approx(11.0)  # median of 9.9 and 12.1
    assert ready.percent == pytest.approx(11.11, abs=0.01)
    peering = timings[("peering", "router configured -> sessions established")]
    assert (peering.old_median, peering.new_median, peering.delta, peering.percent) == (6.2, None, None, None)


def test_a_zero_old_median_has_no_percentage() -> None:
    delta = TimingDelta("s", "t", 0.0, 1.5)
    assert delta.delta == 1.5
    assert delta.percent is None


def test_added_and_removed_scenarios(conformant: RunReport, non_conformant: RunReport) -> None:
    removed = non_conformant.scenarios.pop(0)
    extra = non_conformant.scenarios[0].model_copy(update={"name": "A brand new scenario"})
    non_conformant.scenarios.append(extra)
    comparison = compare(conformant, non_conformant)
    assert comparison.removed == [ScenarioChange(removed.feature, removed.name, Outcome.PASSED, None)]
    assert comparison.added == [ScenarioChange(extra.feature, extra.name, None, extra.outcome)]
    text = render_text(comparison)
    assert f"Scenarios removed:\n  {removed.feature} / {removed.name}: was passed" in text
    assert f"Scenarios added:\n  {extra.feature} / {extra.name}: passed" in text


def test_the_text_is_short_and_says_what_changed(conformant: RunReport, non_conformant: RunReport) -> None:
    text = render_text(compare(conformant, non_conformant))
    assert "Verdict: conformant -> non-conformant (CHANGED)" in text
    assert "  cilium: 1.15.6 -> 1.16.1" in text
    assert f"  {PEERING} / {SESSIONS}: passed -> non-conformant" in text
    assert f"  {REACHABILITY} / {CLIENT_PAGE}: passed -> not-assessed" in text
    lines = text.splitlines()
    cilium = next(line for line in lines if "install -> nodes Ready" in line)
    assert cilium.split() == [
        "cilium",
        "install",
        "->",
        "nodes",
        "Ready",
        "40.10",
        "50.00",
        "+9.90",
        "s",
        "(+24.7%)",
    ]
    peering = next(line for line in lines if "sessions established" in line)
    assert peering.endswith("only in the old run")
    assert len(lines) < 30


def test_the_html_comparison_is_self_contained(conformant: RunReport, non_conformant: RunReport) -> None:
    html = render_html(compare(conformant, non_conformant))
    root = parse_html(html)
    assert root.find_all("link") == []
    assert root.find_all("script") == []
    assert all("src" not in e.attrs and "href" not in e.attrs for e in root.iter())
    assert "http://" not in html
    assert "https://" not in html
    text = squash(root.text())
    assert "Verdict changed: was conformant, now non-conformant." in text
    assert SESSIONS in text
    assert "+9.90 s (+24.7%)" in text


def test_load_from_a_directory_a_file_and_a_latest_link(tmp_path: Path, conformant: RunReport) -> None:
    run = write_report(tmp_path / "reports" / "20251120-140300", conformant)
    latest = tmp_path / "reports" / "latest"
    latest.symlink_to(run.name)
    for path in (run, run / "report.json", latest):
        assert load_report(path) == conformant


def _config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_report(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_missing_directory(tmp_path: Path) -> None:
    message = _config_error(tmp_path / "nope")
    assert message.startswith(f"{tmp_path / 'nope'}: no such report directory or file")
    assert "reports/latest" in message


def test_a_directory_without_report_json(tmp_path: Path) -> None:
    assert _config_error(tmp_path).startswith(f"{tmp_path}: no report.json in this directory")


def test_a_broken_latest_link(tmp_path: Path) -> None:
    latest = tmp_path / "latest"
    latest.symlink_to("gone")
    assert _config_error(latest).startswith(f"{latest}: broken link to gone")


def test_invalid_json(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text('{"run": ', encoding="utf-8")
    message = _config_error(tmp_path)
    assert message.startswith(f"{tmp_path / 'report.json'}: not valid JSON (line 1 column 9")


def test_json_that_is_not_a_report(tmp_path: Path, conformant: RunReport) -> None:
    data = json.loads(conformant.model_dump_json())
    del data["run"]["topology_sha256"]
    (tmp_path / "report.json").write_text(json.dumps(data), encoding="utf-8")
    message = _config_error(tmp_path)
    assert message.startswith(f"{tmp_path / 'report.json'}: not a bgpconform run report (")
    assert "run.topology_sha256: Field required" in message


def test_a_report_of_another_schema(tmp_path: Path, conformant: RunReport) -> None:
    data = json.loads(conformant.model_dump_json())
    data["schema_version"] = 2
    (tmp_path / "report.json").write_text(json.dumps(data), encoding="utf-8")
    assert "report schema 2, this bgpconform reads schema 1" in _config_error(tmp_path)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bgpconform.cli", "report", "compare", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CLI_DEADLINE,
        check=False,
    )


def test_cli_prints_the_comparison_and_writes_html(
    tmp_path: Path, conformant: RunReport, non_conformant: RunReport
) -> None:
    write_report(tmp_path / "old", conformant)
    write_report(tmp_path / "new", non_conformant)
    result = _cli("old", "new", "--html", "out.html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == render_text(compare(conformant, non_conformant))
    assert "Verdict: conformant -> non-conformant (CHANGED)" in result.stdout
    html = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert SESSIONS in squash(parse_html(html).text())
    assert "out.html" in result.stderr


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        pytest.param("missing", "missing: no such report directory or file", id="missing"),
        pytest.param("empty", "empty: no report.json in this directory", id="no report.json"),
        pytest.param("invalid", "invalid/report.json: not valid JSON", id="invalid JSON"),
        pytest.param("schema", "schema/report.json: not a bgpconform run report", id="wrong schema"),
    ],
)
def test_cli_bad_input_is_one_line_without_traceback(
    tmp_path: Path, conformant: RunReport, setup: str, expected: str
) -> None:
    write_report(tmp_path / "good", conformant)
    bad = tmp_path / setup
    if setup != "missing":
        bad.mkdir()
    if setup == "invalid":
        (bad / "report.json").write_text("not json", encoding="utf-8")
    if setup == "schema":
        (bad / "report.json").write_text('{"verdict": "conformant"}', encoding="utf-8")
    result = _cli("good", setup, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"bgpconform: {expected}")


def test_cli_html_path_that_cannot_be_written(tmp_path: Path, conformant: RunReport) -> None:
    write_report(tmp_path / "run", conformant)
    result = _cli("run", "run", "--html", "no/such/dir/out.html", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("bgpconform: no/such/dir/out.html: cannot write the HTML comparison")


def _with_timeline(report: RunReport, timeline: Timeline) -> RunReport:
    first = report.scenarios[0]
    item = EvidenceItem(
        step="Then no request fails", title="probe", kind="timeline", body=timeline.model_dump_json(), at=0.0
    )
    scenarios = [first.model_copy(update={"evidence": [*first.evidence, item]}), *report.scenarios[1:]]
    return report.model_copy(update={"scenarios": scenarios})


def test_fault_scenarios_disruption_figures_side_by_side(
    conformant: RunReport, non_conformant: RunReport
) -> None:
    """The old run lost two requests after its fault and waited 5 s for an answer; the new one lost none."""
    calm = TIMELINE.model_copy(
        update={
            "requests": tuple(r.model_copy(update={"status": 200, "error": ""}) for r in TIMELINE.requests)
        }
    )
    comparison = compare(_with_timeline(conformant, TIMELINE), _with_timeline(non_conformant, calm))
    [change] = comparison.disruptions
    assert change.name == conformant.scenarios[0].name
    assert change.old is not None
    assert change.new is not None
    assert (change.old.failed, change.new.failed) == (2, 0)
    assert change.old.longest_gap == 5.0
    text = render_text(comparison)
    assert "Disruption under faults (from each fault on, old -> new):" in text
    row = next(line for line in text.splitlines() if "failed requests" in line)
    assert row.split()[-2:] == ["2", "0"]
    page = squash(parse_html(render_html(comparison)).text())
    assert "Disruption under faults" in page


def test_runs_without_fault_scenarios_show_no_disruption(
    conformant: RunReport, non_conformant: RunReport
) -> None:
    comparison = compare(conformant, non_conformant)
    assert comparison.disruptions == []
    assert "Disruption" not in render_text(comparison)
