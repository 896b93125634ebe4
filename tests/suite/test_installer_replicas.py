"""Installed as Helm installs it, Cilium runs two operator replicas on two nodes and one of them leads.

The chart's default `operator.replicas` is 2 (FACTS.md, "What a real cluster does that a lab may
not"); each replica campaigns for Lease `cilium-operator-resource-lock` and only the holder runs LB
IPAM (docs/verified-facts.md, "Cilium operator: leader election"). The suite must pass on such a
cluster exactly as on cilium-cli's single replica: the operator counted as every replica the
Deployment asks for, the walkthrough's operator restart replacing them all, and a new leader taking
over (the old one released the lease) in time for LB IPAM to hand out the address.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.suite.runner import node_id, run_suite

pytestmark = pytest.mark.lab

SCENARIOS = (
    "Installing Cilium makes every node Ready and runs the pending pods",
    "Agents wait for the BGP resources until the operator restarts",
    "A LoadBalancer service gets an address from the pool, announced by every peering node",
)


def _objects(raw: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((raw / "api-objects.yaml").read_text()) if doc]


def test_helm_leaves_two_operator_replicas_one_leading_and_the_suite_passes(tmp_path: Path) -> None:
    run = run_suite(tmp_path, *(node_id(title) for title in SCENARIOS), options=("--cilium-installer=helm",))
    for title in SCENARIOS:
        assert run.scenarios[title].passed, run.summary()
    latest = tmp_path / "reports" / "latest"
    versions = json.loads((latest / "report.json").read_text())["run"]["versions"]
    assert versions["installer"] == "the lab's, as Helm would install"

    objects = _objects(latest / "raw")
    (deployment,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "cilium-operator"
    ]
    assert deployment["spec"]["replicas"] == 2
    operators = [
        o
        for o in objects
        if o["kind"] == "Pod"
        and (o["metadata"].get("labels") or {}).get("io.cilium/app") == "operator"
        and not o["metadata"].get("deletionTimestamp")
    ]
    nodes = sorted(o["spec"]["nodeName"] for o in operators)
    assert len(set(nodes)) == len(nodes) == 2, nodes  # the chart's anti-affinity: a node each
    (lease,) = [
        o
        for o in objects
        if o["kind"] == "Lease" and o["metadata"]["name"] == "cilium-operator-resource-lock"
    ]
    holder = lease["spec"]["holderIdentity"]
    assert holder.rsplit("-", 1)[0] in nodes, (holder, nodes)

    logs = {
        o["metadata"]["name"]: (
            latest / "raw" / "logs" / f"kube-system_{o['metadata']['name']}_cilium-operator.log"
        ).read_text()
        for o in operators
    }
    leading = [name for name, text in logs.items() if "Leading the operator HA deployment" in text]
    assert len(leading) == 1, logs
    follower = next(text for name, text in logs.items() if name not in leading)
    assert "Waiting for leader election" in follower
    assert "Starting CRD identity garbage collector" not in follower  # leader's work only
