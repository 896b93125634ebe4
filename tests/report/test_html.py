"""The HTML report read back as a document: what a release manager must find, and nothing fetched."""

from __future__ import annotations

import json
import re

from bgpconform.report.html import format_duration, render_html
from bgpconform.report.model import EvidenceItem, Provenance, RunReport, ScenarioResult
from bgpconform.verdict import Outcome
from tests.report.conftest import (
    AGENT_LOG,
    BGP_PEERS_HEADER,
    ESTABLISHED_STEP,
    ROUTER_DUMP,
    ROUTER_DUMP_FIRST_LINE,
    SCRIPT,
    SESSIONS,
    STARTED,
    Element,
    parse_html,
    squash,
)


def _step_item(root: Element, label: str) -> Element:
    """The <li> of the step whose keyword and text are `label`."""
    found = [li for li in root.find_all("li", "step") if squash(li.one("span", "text").text()) == label]
    assert len(found) == 1, f"expected one step {label!r}, found {len(found)}"
    return found[0]


def _scenario(root: Element, name: str) -> Element:
    found = [a for a in root.find_all("article", "scenario") if f"Scenario: {name}" in squash(a.text())]
    assert len(found) == 1
    return found[0]


def _table_headers(element: Element) -> list[list[str]]:
    return [
        [squash(th.text()) for th in table.find_all("th")]
        for table in element.find_all("table", "evidence-table")
    ]


def test_the_verdict_and_its_reason_are_the_banner(conformant: RunReport, non_conformant: RunReport) -> None:
    for report, css in ((conformant, "conformant"), (non_conformant, "non-conformant")):
        root = parse_html(render_html(report))
        banner = root.one("section", "banner")
        assert css in banner.classes
        assert squash(banner.one("div", "word").text()) == report.verdict.value
        assert report.verdict_reason in squash(banner.text())
        assert report.verdict.value in squash(root.one("title").text())


def test_what_was_tested_is_listed(non_conformant: RunReport) -> None:
    run = non_conformant.run
    facts = parse_html(render_html(non_conformant)).one("dl", "facts")
    listed = dict(
        zip(
            [squash(dt.text()) for dt in facts.find_all("dt")],
            [squash(dd.text()) for dd in facts.find_all("dd")],
            strict=True,
        )
    )
    assert listed["Target"] == run.target
    assert listed["Topology"] == run.topology_path
    assert listed["Topology sha256"] == run.topology_sha256
    assert listed["Harness"] == f"bgpconform {run.harness_version}, git {run.git_revision}"
    assert listed["Started"] == "2025-11-21 14:03:00+00:00"
    assert listed["Duration"] == format_duration(run.duration)
    assert listed["Run by"] == f"{run.user}@{run.host}"
    assert listed["Command"] == run.command
    for name, version in run.versions.items():
        assert listed[name] == version


def test_every_scenario_is_under_its_feature_in_order(non_conformant: RunReport) -> None:
    root = parse_html(render_html(non_conformant))
    features = root.find_all("section", "feature")
    assert [squash(f.one("h2").text()) for f in features] == [
        f"Feature: {name}" for name in dict.fromkeys(s.feature for s in non_conformant.scenarios)
    ]
    for scenario in non_conformant.scenarios:
        feature = next(f for f in features if squash(f.one("h2").text()) == f"Feature: {scenario.feature}")
        titles = [squash(h3.text()) for h3 in feature.find_all("h3")]
        assert f"Scenario: {scenario.name}" in titles
        article = _scenario(root, scenario.name)
        assert scenario.outcome.value in article.classes
        head = article.one("div", "scenario-head")
        assert squash(head.one("span", "badge").text()) == scenario.outcome.value
        assert format_duration(scenario.duration) in squash(head.text())


def test_scenarios_of_one_feature_stay_together(conformant: RunReport) -> None:
    first, second, *rest = conformant.scenarios
    conformant.scenarios = [first, *rest, second]  # the CNI feature's scenarios are not adjacent
    root = parse_html(render_html(conformant))
    cni = root.find_all("section", "feature")[0]
    assert [squash(h3.text()) for h3 in cni.find_all("h3")] == [
        f"Scenario: {first.name}",
        f"Scenario: {second.name}",
    ]


def test_steps_show_status_duration_and_background(non_conformant: RunReport) -> None:
    root = parse_html(render_html(non_conformant))
    background = _step_item(root.find_all("article", "scenario")[0], "Given a k3s cluster without a CNI")
    assert "background" in background.classes
    assert "background" in [squash(b.text()) for b in background.find_all("span", "badge")]
    failed = _step_item(root, ESTABLISHED_STEP)
    assert "failed" in failed.classes
    assert "background" not in failed.classes
    assert squash(failed.one("span", "duration").text()) == "1 min 00 s"


def test_evidence_is_under_the_step_that_recorded_it(conformant: RunReport) -> None:
    root = parse_html(render_html(conformant))
    nodes_step = _step_item(root, "Then every node is NotReady because the CNI plugin is not initialized")
    assert _table_headers(nodes_step) == [["NAME", "STATUS", "ROLES", "AGE", "VERSION"]]
    established = _step_item(root, ESTABLISHED_STEP)
    assert _table_headers(established) == [
        BGP_PEERS_HEADER,
        ["NAME", "REMOTE-ADDRESS", "REMOTE-AS", "STATE", "UPTIME", "RECEIVED", "ADVERTISED"],
    ]
    assert (
        _table_headers(_step_item(root, "When the router is configured to peer with every labelled node"))
        == []
    )


def test_bgp_peers_continuation_lines_keep_their_columns(conformant: RunReport) -> None:
    root = parse_html(render_html(conformant))
    table = _step_item(root, ESTABLISHED_STEP).find_all("table", "evidence-table")[0]
    rows = [[squash(td.text()) for td in tr.find_all("td")] for tr in table.find_all("tr")[1:]]
    assert len(rows) == 6
    assert rows[1] == ["", "", "", "", "", "", "ipv6/unicast", "0", "0"]
    assert rows[4][:2] == ["k3s-worker-node-03", "64512"]


def test_long_text_is_folded_and_short_text_is_not(non_conformant: RunReport) -> None:
    root = parse_html(render_html(non_conformant))
    folded = [squash(d.text()) for d in root.find_all("details")]
    assert any(squash(ROUTER_DUMP) in text for text in folded)
    assert any(squash(AGENT_LOG) in text for text in folded)
    pres_outside_details = [
        squash(pre.text())
        for pre in root.find_all("pre")
        if not any(pre in d.iter() for d in root.find_all("details"))
    ]
    assert "nginx EXTERNAL-IP 10.0.10.1" in pres_outside_details
    assert len(ROUTER_DUMP.splitlines()) > 15


def test_state_at_failure_is_under_the_failing_step(non_conformant: RunReport) -> None:
    root = parse_html(render_html(non_conformant))
    failing = _step_item(root, ESTABLISHED_STEP)
    state = failing.one("div", "state-at-failure")
    assert ROUTER_DUMP_FIRST_LINE in state.text()
    assert _table_headers(state) == [BGP_PEERS_HEADER]
    # what the step itself recorded stays outside the captured state
    assert len(_table_headers(failing)) == 2


def test_evidence_of_no_step_is_kept_apart(non_conformant: RunReport) -> None:
    article = _scenario(parse_html(render_html(non_conformant)), SESSIONS)
    other = article.one("div", "other-evidence")
    assert "operator said" in other.text()
    assert "(setup)" in other.text()


def test_a_failure_shows_expected_and_observed_side_by_side(non_conformant: RunReport) -> None:
    article = _scenario(parse_html(render_html(non_conformant)), SESSIONS)
    box = article.one("div", "failure")
    assert ESTABLISHED_STEP in squash(box.text())
    assert "NonConformance" in box.text()
    sides = box.one("div", "side-by-side").find_all("pre")
    failure = non_conformant.scenarios[3].failure
    assert failure is not None
    assert [pre.text() for pre in sides] == [failure.expected, failure.observed]
    # the box comes before the steps, next to the title
    children = [c for c in article.children if isinstance(c, Element)]
    assert children.index(box) < children.index(article.one("ol", "steps"))
    link = box.one("a")
    assert link.attrs["href"] == f"#{_step_item(article, ESTABLISHED_STEP).attrs['id']}"


def test_a_failure_without_expected_and_observed_shows_its_message(non_conformant: RunReport) -> None:
    article = _scenario(parse_html(render_html(non_conformant)), non_conformant.scenarios[5].name)
    box = article.one("div", "failure")
    assert "not-assessed" in box.classes
    assert "address already in use" in box.one("pre").text()
    assert box.find_all("div", "side-by-side") == []


def test_timings_and_counts_are_shown(conformant: RunReport) -> None:
    root = parse_html(render_html(conformant))
    stages = root.one("table", "stages")
    rows = [[squash(td.text()) for td in tr.find_all("td")] for tr in stages.find_all("tr")[1:]]
    assert ["peering", "router configured -> sessions established", "6.20", "6.20"] in rows
    article = _scenario(root, SESSIONS)
    timing_rows = [
        [squash(td.text()) for td in tr.find_all("td")]
        for tr in article.one("table", "timings").find_all("tr")
    ]
    assert ["peering", "router configured -> sessions established", "6.20"] in timing_rows
    assert "sessions: 3" in squash(article.one("div", "scenario-meta").text())


def test_json_is_pretty_printed(conformant: RunReport) -> None:
    root = parse_html(render_html(conformant))
    pool = _step_item(root, "Given the first LB IP pool exists").one("pre").text()
    assert pool == json.dumps({"blocks": [{"cidr": "10.0.10.0/24"}], "disabled": False}, indent=2)


def test_a_table_that_does_not_parse_stays_preformatted(conformant: RunReport) -> None:
    scenario = conformant.scenarios[0]
    step = f"{scenario.steps[1].keyword} {scenario.steps[1].name}"
    scenario.evidence = [
        EvidenceItem(step=step, title="kubectl get nodes", kind="table", body="No resources found", at=0.0)
    ]
    item = _step_item(parse_html(render_html(conformant)), step)
    assert item.find_all("table") == []
    assert item.one("pre").text() == "No resources found"


def test_evidence_text_is_escaped(non_conformant: RunReport) -> None:
    scenario = non_conformant.scenarios[0]
    step = f"{scenario.steps[1].keyword} {scenario.steps[1].name}"
    scenario.evidence.append(
        EvidenceItem(step=step, title="pods", kind="table", body=f"NAME   STATUS\n{SCRIPT}   x", at=0.0)
    )
    non_conformant.verdict_reason += " " + SCRIPT
    html = render_html(non_conformant)
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    root = parse_html(html)
    scripts = root.find_all("script")
    assert len(scripts) == 1  # the page's own print helper, nothing from the evidence
    assert "alert" not in scripts[0].text()
    assert SCRIPT in root.one("section", "banner").text()
    assert SCRIPT in _step_item(root, step).text()


def test_nothing_outside_the_page_is_referenced(non_conformant: RunReport) -> None:
    html = render_html(non_conformant)
    root = parse_html(html)
    assert root.find_all("link") == []
    for element in root.iter():
        assert "src" not in element.attrs, element.tag
        href = element.attrs.get("href")
        assert href is None or href.startswith("#"), href
    style = "".join(s.text() for s in root.find_all("style"))
    assert "url(" not in style
    assert "@import" not in style
    assert not re.search(r"https?://", html)


def test_the_page_prints_in_full(conformant: RunReport) -> None:
    style = "".join(s.text() for s in parse_html(render_html(conformant)).find_all("style"))
    print_css = style[style.index("@media print") :]
    assert "details::details-content" in print_css
    assert "max-height: none" in print_css
    assert "break-inside: avoid" in print_css


def test_a_harness_error_is_shown_at_the_top(conformant: RunReport) -> None:
    conformant.harness_error = "the lab could not start: ip netns add failed"
    root = parse_html(render_html(conformant))
    assert "ip netns add failed" in root.one("section", "harness-error").text()


def test_an_empty_run_still_renders(conformant: RunReport) -> None:
    conformant.scenarios = []
    conformant.stages = []
    conformant.harness_error = "topology file missing"
    text = squash(parse_html(render_html(conformant)).text())
    assert "No scenario ran." in text
    assert "No stage timing was recorded." in text


def test_evidence_of_a_repeated_step_goes_to_the_occurrence_that_ran(conformant: RunReport) -> None:
    steps = conformant.scenarios[2].steps
    restart = steps[3]
    steps.append(restart.model_copy())
    label = f"{restart.keyword} {restart.name}"
    conformant.scenarios[2].evidence = [
        EvidenceItem(step=label, title="first restart", kind="text", body="one", at=STARTED.timestamp()),
        EvidenceItem(step="And every Cilium agent is ready", title="ready", kind="text", body="ok", at=0.0),
        EvidenceItem(step=label, title="second restart", kind="text", body="two", at=0.0),
    ]
    article = _scenario(parse_html(render_html(conformant)), conformant.scenarios[2].name)
    items = article.find_all("li", "step")
    assert "first restart" in items[3].text()
    assert "second restart" not in items[3].text()
    assert "second restart" in items[5].text()


def test_format_duration() -> None:
    assert format_duration(0.421) == "0.42 s"
    assert format_duration(12.34) == "12.3 s"
    assert format_duration(125.4) == "2 min 05 s"
    assert format_duration(3725.0) == "1 h 02 min"


def test_a_scenario_without_steps_says_so(conformant: RunReport) -> None:
    conformant.scenarios.append(
        ScenarioResult(
            feature="Extra", name="Never started", node_id="x::y", outcome=Outcome.NOT_ASSESSED, duration=0.0
        )
    )
    assert "No step ran." in squash(_scenario(parse_html(render_html(conformant)), "Never started").text())


def _provenance_box(root: Element) -> dict[str, list[str]]:
    """Each <dt> of the provenance box with its list items (or its text when it has none)."""
    facts = root.one("dl", "provenance-facts")
    terms = [squash(dt.text()) for dt in facts.find_all("dt")]
    values = [
        [squash(li.text()) for li in dd.find_all("li")] or [squash(dd.text())] for dd in facts.find_all("dd")
    ]
    return dict(zip(terms, values, strict=True))


def _with_provenance(report: RunReport, **fields: list[str]) -> RunReport:
    run = report.run.model_copy(update={"provenance": Provenance(**fields)})
    return report.model_copy(update={"run": run})


def test_a_lab_report_says_at_the_top_that_k3s_and_cilium_were_emulated(conformant: RunReport) -> None:
    lab = _with_provenance(
        conformant,
        real=["the router's BGP: FRR (bgpd, zebra)"],
        emulated=["k3s v1.27.3+k3s1: API server and kubelets are the lab's own", "Cilium 1.13.4: agent"],
        defects=["pod-cidr-not-advertised"],
    )
    root = parse_html(render_html(lab))
    line = squash(root.one("section", "banner").one("div", "provenance-line").text())
    assert line == (
        "Not a release sign-off: emulated by the lab: k3s v1.27.3+k3s1; Cilium 1.13.4. "
        "Started broken on purpose: pod-cidr-not-advertised."
    )
    box = _provenance_box(root)
    assert box["Real"] == ["the router's BGP: FRR (bgpd, zebra)"]
    assert box["Emulated"] == [
        "k3s v1.27.3+k3s1: API server and kubelets are the lab's own",
        "Cilium 1.13.4: agent",
    ]
    assert box["Shortcuts in force"] == ["none"]
    assert box["Defects switched on"] == ["pod-cidr-not-advertised"]
    page = render_html(lab)
    assert page.index("provenance-line") < page.index('id="tested"')  # read before anything else


def test_a_report_on_the_users_own_cluster_says_everything_was_real(conformant: RunReport) -> None:
    pi = _with_provenance(conformant, real=["k3s and Cilium: the cluster k3s-rpi (verify mode)"])
    root = parse_html(render_html(pi))
    line = squash(root.one("section", "banner").one("div", "provenance-line").text())
    assert line == "Every part of the system under test was the real software."
    assert _provenance_box(root)["Emulated"] == ["nothing"]
    unknown = squash(parse_html(render_html(conformant)).one("section", "provenance").text())
    assert "Not known: the target never said what it was made of." in unknown
