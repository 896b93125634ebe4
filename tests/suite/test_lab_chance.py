"""The lab chooses at random where Cilium does, from a seed its report states, and replays it.

Cilium 1.13's LB IPAM starts its address scan at a random offset (FACTS.md, LB IPAM: never the lowest
free address by rule); the lab does the same from the run's seed. Two runs with one seed hand the
service the same address, two seeds (very likely) different ones, and the steps pass with whichever.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from bgpconform.report.model import RunReport
from tests.suite.runner import node_id, run_suite

pytestmark = pytest.mark.lab

ALLOCATES = "A LoadBalancer service gets an address from the pool, announced by every peering node"
POOL = IPv4Network("172.198.1.0/24")  # topologies/lab.yaml's first pool, the walkthrough's


def _allocated(directory: Path, seed: int) -> tuple[IPv4Address, str]:
    run = run_suite(directory, node_id(ALLOCATES), options=(f"--lab-seed={seed}",))
    assert run.scenarios[ALLOCATES].passed, run.summary()
    report = RunReport.model_validate_json((directory / "reports" / "latest" / "report.json").read_text())
    scenario = next(s for s in report.scenarios if s.name == ALLOCATES)
    (shown,) = [item.body for item in scenario.evidence if item.title == "kubectl get svc"]
    return IPv4Address(shown.split()[-1]), report.run.versions["lab seed"]


def test_one_seed_replays_the_address_choice_and_another_seed_chooses_anew(tmp_path: Path) -> None:
    first, stated = _allocated(tmp_path / "a", 11)
    again, _ = _allocated(tmp_path / "b", 11)
    other, _ = _allocated(tmp_path / "c", 12)
    assert stated == "11 (replay: --lab-seed 11)"
    assert first in POOL
    assert other in POOL
    assert again == first
    assert other != first  # a fresh seed may land on the same address (1 in 254); these two do not
