"""The whole suite with the router driven as RouterOS (topologies/lab-routeros.yaml): it passes
unchanged, the report's router evidence reads like the walkthrough's `session/print` and
`/routing/route/print`, and the router password (a real login here) appears nowhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bgpconform.report.model import RunReport, Verdict
from tests.report_run import plant_secret
from tests.suite.runner import ROOT, SuiteRun, run_suite, scenario_titles

pytestmark = pytest.mark.lab

ROUTEROS_TOPOLOGY = ROOT / "topologies" / "lab-routeros.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SuiteRun, Path]:
    directory = tmp_path_factory.mktemp("routeros-run")
    # The lab router then accepts only this login, so every API call of the run carries the secret.
    topology, env = plant_secret.with_planted_credentials(ROUTEROS_TOPOLOGY, directory, user="ops")
    done = run_suite(directory, topology=topology, plugins=("tests.report_run.plant_secret",), env=env)
    return done, (directory / "reports" / "latest").resolve()


def _report(run: tuple[SuiteRun, Path]) -> RunReport:
    return RunReport.model_validate_json((run[1] / "report.json").read_text())


def _evidence(report: RunReport, title: str) -> list[str]:
    return [item.body for scenario in report.scenarios for item in scenario.evidence if item.title == title]


def test_the_whole_suite_passes_unchanged_against_routeros(run: tuple[SuiteRun, Path]) -> None:
    done, _ = run
    assert set(done.scenarios) == set(scenario_titles()), done.summary()
    assert [t for t, r in done.scenarios.items() if not r.passed] == [], done.summary()
    report = _report(run)
    assert report.verdict is Verdict.CONFORMANT, report.verdict_reason
    assert report.run.versions["router"].startswith("RouterOS 7.8 (stable)")


def test_session_evidence_reads_like_the_walkthroughs_session_print(run: tuple[SuiteRun, Path]) -> None:
    prints = _evidence(_report(run), "router: /routing/bgp/session/print")
    assert prints, "no step recorded the router's session print"
    for body in prints:
        lines = body.splitlines()
        assert lines[0] == "Flags: E - established"
        for index in (1, 2, 3):
            assert f' E name="PEER_TO_K3S_WN_{index}-1"' in body
            assert f"remote.address=192.168.1.20{index} .as=64512 .id=192.168.1.20{index}" in body
        assert body.count("local.role=ibgp .address=192.168.1.1 .as=64512") == 3
        assert body.count("output.default-originate=always") == 3
        assert all("uptime=" in line for line in lines if line.strip().startswith("multihop="))


def test_route_evidence_reads_like_the_walkthroughs_route_print(run: tuple[SuiteRun, Path]) -> None:
    report = _report(run)
    prints = _evidence(report, "router: /routing/route/print")
    assert prints
    last = prints[-1].splitlines()
    assert last[1] == "Columns: DST-ADDRESS, GATEWAY, AFI, DISTANCE, SCOPE, TARGET-SCOPE, IMMEDIATE-GW"
    # Cilium's IPAM hands the blocks out in the order the nodes arrive, so which worker got which /24
    # is read from the run's own CiliumNodes, as the walkthrough's reader would read them.
    pod_cidrs = _pod_cidrs_by_node_ip(run[1] / "raw" / "api-objects.yaml")
    worker_ips = {"192.168.1.201", "192.168.1.202", "192.168.1.203"}
    workers = {ip: cidr for ip, cidr in pod_cidrs.items() if ip in worker_ips}
    assert len(workers) == 3, pod_cidrs
    assert all(cidr.startswith("10.136.") and cidr.endswith(".0/24") for cidr in workers.values()), workers
    for gateway, cidr in workers.items():
        assert any(line.startswith("Ab") and f" {cidr} " in line and f" {gateway} " in line for line in last)
    service_ips = {
        json_ip for scenario in report.scenarios for item in scenario.evidence
        if item.title == "service status" for json_ip in _ips(item.body)
    }  # fmt: skip
    lb_lines = [line for line in last if "/32 " in line and " ip4 " in line]
    assert lb_lines, last
    # RouterOS 7.8: one of the three equal paths is active, the other two are candidates.
    assert sorted(line[:2] for line in lb_lines) == [" b", " b", "Ab"], lb_lines
    assert all(line.split()[-4] == "200" for line in lb_lines)  # iBGP distance
    assert service_ips is not None


def _pod_cidrs_by_node_ip(objects: Path) -> dict[str, str]:
    pod_cidrs: dict[str, str] = {}
    for document in yaml.safe_load_all(objects.read_text()):
        if not document or document.get("kind") != "CiliumNode":
            continue
        spec = document["spec"]
        internal = [a["ip"] for a in spec.get("addresses", []) if a.get("type") == "InternalIP"]
        for cidr in spec.get("ipam", {}).get("podCIDRs", []):
            pod_cidrs[internal[0]] = cidr
    return pod_cidrs


def _ips(body: str) -> list[str]:
    return [word.strip('",') for word in body.split() if word.strip('",').startswith("172.198.1.")]


def test_the_raw_router_dump_holds_every_print(run: tuple[SuiteRun, Path]) -> None:
    router = run[1] / "raw" / "router"
    names = {path.name for path in router.iterdir()}
    for expected in (
        "system_resource_print.txt",
        "routing_bgp_connection_print.txt",
        "routing_bgp_session_print.txt",
        "routing_bgp_advertisements_print.txt",
        "routing_route_print.txt",
        "changes_made_by_the_harness.txt",
    ):
        assert expected in names, names
    changes = (router / "changes_made_by_the_harness.txt").read_text()
    assert "/routing/bgp/connection/add address-families=ip as=64512" in changes
    advertisements = (router / "routing_bgp_advertisements_print.txt").read_text()
    assert "dst=0.0.0.0/0 local-pref=100 nexthop=192.168.1.1 origin=0" in advertisements


def test_the_router_password_appears_in_no_file_and_no_output(run: tuple[SuiteRun, Path]) -> None:
    done, latest = run
    leaks = [
        path.relative_to(latest).as_posix()
        for path in latest.rglob("*")
        if path.is_file() and plant_secret.PASSWORD.encode() in path.read_bytes()
    ]
    assert not leaks, leaks
    assert plant_secret.PASSWORD not in done.output
