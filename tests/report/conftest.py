# ruff: noqa: E501 (command output is quoted verbatim, and it is wider than the code's lines)
"""Run reports shaped like real runs, and a small DOM for reading the HTML written from them.

The reports carry what steps record on a real lab: `kubectl` and `cilium bgp peers` tables (with the
per-family continuation lines), JSON objects, agent logs and a router dump long enough to be folded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bgpconform.report.model import (
    EvidenceItem,
    Failure,
    RunInfo,
    RunReport,
    ScenarioResult,
    StageSummary,
    StepResult,
    Timing,
    Verdict,
)
from bgpconform.verdict import Outcome

STARTED = datetime(2025, 11, 20, 14, 3, 0, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script>"

NODES_NOT_READY = "\n".join(
    [
        "NAME                 STATUS     ROLES                  AGE   VERSION",
        "k3s-control-plane    NotReady   control-plane,master   41s   v1.30.6+k3s1",
        "k3s-worker-node-01   NotReady   <none>                 33s   v1.30.6+k3s1",
        "k3s-worker-node-02   NotReady   <none>                 33s   v1.30.6+k3s1",
        "k3s-worker-node-03   NotReady   <none>                 32s   v1.30.6+k3s1",
    ]
)
NODES_READY = NODES_NOT_READY.replace("NotReady", "Ready   ")
PODS = "\n".join(
    [
        "NAMESPACE     NAME                                      READY   STATUS    RESTARTS   IP           NODE",
        "kube-system   cilium-4xk2p                              1/1     Running   0          10.0.1.11    k3s-worker-node-01",
        "kube-system   cilium-operator-6b8f7d9c5-q2wlz           1/1     Running   0          10.0.1.10    k3s-control-plane",
        "kube-system   coredns-7b98449c4-hv2gx                   1/1     Running   0          10.42.0.17   k3s-control-plane",
        "kube-system   local-path-provisioner-6795b5f9d8-n7x9c   1/1     Running   0                       k3s-control-plane",
    ]
)
BGP_PEERS_HEADER = [
    "Node",
    "Local AS",
    "Peer AS",
    "Peer Address",
    "Session State",
    "Uptime",
    "Family",
    "Received",
    "Advertised",
]
# cilium-cli's tabwriter output, trailing padding included: one more line per extra address family.
BGP_PEERS_ESTABLISHED = (
    "Node                 Local AS   Peer AS   Peer Address   Session State   Uptime   Family         Received   Advertised\n"
    "k3s-worker-node-01   64512      64501     10.0.1.1       established     5m12s    ipv4/unicast   1          2    \n"
    "                                                                                  ipv6/unicast   0          0    \n"
    "k3s-worker-node-02   64512      64501     10.0.1.1       established     5m11s    ipv4/unicast   1          2    \n"
    "                                                                                  ipv6/unicast   0          0    \n"
    "k3s-worker-node-03   64512      64501     10.0.1.1       established     5m9s     ipv4/unicast   1          2    \n"
    "                                                                                  ipv6/unicast   0          0    \n"
)
BGP_PEERS_ACTIVE = (
    "Node                 Local AS   Peer AS   Peer Address   Session State   Uptime   Family         Received   Advertised\n"
    "k3s-worker-node-01   64512      64501     10.0.1.1       active          0s       ipv4/unicast   0          0    \n"
    "                                                                                  ipv6/unicast   0          0    \n"
    "k3s-worker-node-02   64512      64501     10.0.1.1       active          0s       ipv4/unicast   0          0    \n"
    "                                                                                  ipv6/unicast   0          0    \n"
    "k3s-worker-node-03   64512      64501     10.0.1.1       established     30s      ipv4/unicast   1          2    \n"
    "                                                                                  ipv6/unicast   0          0    \n"
)
ROUTER_SESSIONS = "\n".join(
    [
        "NAME                 REMOTE-ADDRESS   REMOTE-AS   STATE         UPTIME   RECEIVED   ADVERTISED",
        "k3s-worker-node-01   10.0.1.11        64512       established   5m12s    1          1",
        "k3s-worker-node-02   10.0.1.12        64512       established   5m11s    1          1",
        "k3s-worker-node-03   10.0.1.13        64512       established   5m9s     1          1",
    ]
)
ROUTER_DUMP_FIRST_LINE = "IPv4 Unicast Summary (VRF default):"
ROUTER_DUMP = "\n".join(
    [
        ROUTER_DUMP_FIRST_LINE,
        "BGP router identifier 10.0.1.1, local AS number 64501 vrf-id 0",
        "BGP table version 6",
        "RIB entries 9, using 1728 bytes of memory",
        "Peers 3, using 2172 KiB of memory",
        "",
        "Neighbor        V         AS   MsgRcvd   MsgSent   TblVer  InQ OutQ  Up/Down State/PfxRcd   PfxSnt Desc",
        "10.0.1.11       4      64512         0         0        0    0    0    never       Active        0 N/A",
        "10.0.1.12       4      64512         0         0        0    0    0    never       Active        0 N/A",
        "10.0.1.13       4      64512        14        16        0    0    0 00:00:30            1        2 N/A",
        "",
        "Total number of neighbors 3",
        "",
        "BGP table version is 6, local router ID is 10.0.1.1, vrf id 0",
        "Default local pref 100, local AS 64501",
        "Status codes:  s suppressed, d damped, h history, * valid, > best, = multipath,",
        "               i internal, r RIB-failure, S Stale, R Removed",
        "Origin codes:  i - IGP, e - EGP, ? - incomplete",
        "",
        "   Network          Next Hop            Metric LocPrf Weight Path",
        "*> 0.0.0.0/0        0.0.0.0                  0         32768 i",
        "*> 10.42.3.0/24     10.0.1.13                              0 64512 i",
        "",
        "Displayed  2 routes and 2 total paths",
    ]
)
AGENT_LOG = "\n".join(
    f'time="2025-11-20T14:04:{second:02d}Z" level=warning msg="Failed to watch *v2alpha1.CiliumBGPPeeringPolicy:'
    f' the server could not find the requested resource" subsys=k8s'
    for second in range(10, 32)
)
POOL = '{"blocks": [{"cidr": "10.0.10.0/24"}], "disabled": false}'


def _step(
    keyword: str, name: str, duration: float, status: str = "passed", background: bool = False
) -> StepResult:
    return StepResult.model_validate(
        {"keyword": keyword, "name": name, "status": status, "duration": duration, "background": background}
    )


def _evidence(step: str, title: str, kind: str, body: str, offset: float) -> EvidenceItem:
    return EvidenceItem.model_validate(
        {"step": step, "title": title, "kind": kind, "body": body, "at": STARTED.timestamp() + offset}
    )


def _node_id(name: str) -> str:
    return "features/test_walkthrough.py::test_" + re.sub(r"\W+", "_", name.lower()).strip("_")


CNI = "A CNI brings a minimal k3s cluster up"
CONTROL_PLANE = "Enabling Cilium's BGP control plane"
PEERING = "BGP peering between the peering nodes and the router"
LB_IPAM = "LoadBalancer IP address management"
REACHABILITY = "Reaching nginx from outside the cluster through the LB IP"

WITHOUT_CNI = "Without a CNI every node waits and the cluster's own pods stay pending"
INSTALL_CILIUM = "Installing Cilium makes every node Ready and runs the pending pods"
AGENTS_WAIT = "Agents wait for the BGP resources until the operator restarts"
SESSIONS = "Sessions are active until the router knows the nodes, then established"
LB_SERVICE = "A LoadBalancer service gets an address from the pool, announced by every peering node"
CLIENT_PAGE = "The outside client gets the nginx page through the LB IP"

ESTABLISHED_STEP = "Then every labelled node's session with the router is established on both sides"


def _scenarios() -> list[ScenarioResult]:
    without_cni = ScenarioResult(
        feature=CNI,
        name=WITHOUT_CNI,
        node_id=_node_id(WITHOUT_CNI),
        outcome=Outcome.PASSED,
        duration=3.4,
        steps=[
            _step("Given", "a k3s cluster without a CNI", 2.9, background=True),
            _step("Then", "every node is NotReady because the CNI plugin is not initialized", 0.3),
            _step("And", "the cluster DNS and storage pods are Pending", 0.2),
        ],
        evidence=[
            _evidence(
                "Then every node is NotReady because the CNI plugin is not initialized",
                "kubectl get nodes",
                "table",
                NODES_NOT_READY,
                3.0,
            ),
        ],
        counts={"nodes": 4},
    )
    install = ScenarioResult(
        feature=CNI,
        name=INSTALL_CILIUM,
        node_id=_node_id(INSTALL_CILIUM),
        outcome=Outcome.PASSED,
        duration=48.7,
        steps=[
            _step("Given", "a k3s cluster without a CNI", 2.8, background=True),
            _step("When", "Cilium is installed", 31.2),
            _step(
                "Then",
                "a Cilium agent runs on every node and every replica of the Cilium operator is ready",
                9.1,
            ),
            _step("And", "every node is Ready", 4.2),
            _step("And", "the cluster DNS and storage pods are Running", 1.4),
        ],
        evidence=[
            _evidence("And every node is Ready", "kubectl get nodes", "table", NODES_READY, 50.0),
            _evidence(
                "And the cluster DNS and storage pods are Running", "kubectl get pods -A", "table", PODS, 52.0
            ),
        ],
        timings=[Timing(stage="cilium", name="install -> nodes Ready", seconds=40.1)],
        counts={"nodes": 4, "pods": 4},
    )
    agents_wait = ScenarioResult(
        feature=CONTROL_PLANE,
        name=AGENTS_WAIT,
        node_id=_node_id(AGENTS_WAIT),
        outcome=Outcome.PASSED,
        duration=71.0,
        steps=[
            _step("Given", "Cilium is installed with the BGP control plane disabled", 40.3, background=True),
            _step("When", "the BGP control plane is enabled in the Cilium configuration", 12.0),
            _step(
                "And",
                "the Cilium agents are not ready and log that the BGP resources are missing",
                8.5,
            ),
            _step("When", "the Cilium operator is restarted", 6.1),
            _step("And", "every Cilium agent is ready", 4.1),
        ],
        evidence=[
            _evidence(
                "And the Cilium agents are not ready and log that the BGP resources are missing",
                "cilium-agent log (k3s-worker-node-01)",
                "text",
                AGENT_LOG,
                120.0,
            ),
        ],
        timings=[
            Timing(stage="bgp-enabled", name="config change -> agents restarted", seconds=11.8),
            Timing(stage="bgp-ready", name="operator restart -> agents ready", seconds=9.9),
        ],
    )
    sessions = ScenarioResult(
        feature=PEERING,
        name=SESSIONS,
        node_id=_node_id(SESSIONS),
        outcome=Outcome.PASSED,
        duration=95.5,
        steps=[
            _step("Given", "the BGP control plane is enabled and ready", 61.0, background=True),
            _step("And", "every labelled node has a session with the router in state active", 3.1),
            _step("When", "the router is configured to peer with every labelled node", 0.8),
            _step("Then", "every labelled node's session with the router is established on both sides", 6.4),
        ],
        evidence=[
            _evidence(
                "And every labelled node has a session with the router in state active",
                "cilium bgp peers",
                "table",
                BGP_PEERS_ACTIVE,
                200.0,
            ),
            _evidence(ESTABLISHED_STEP, "cilium bgp peers", "table", BGP_PEERS_ESTABLISHED, 210.0),
            _evidence(ESTABLISHED_STEP, "router sessions", "table", ROUTER_SESSIONS, 210.5),
        ],
        timings=[Timing(stage="peering", name="router configured -> sessions established", seconds=6.2)],
        counts={"sessions": 3},
    )
    lb_service = ScenarioResult(
        feature=LB_IPAM,
        name=LB_SERVICE,
        node_id=_node_id(LB_SERVICE),
        outcome=Outcome.PASSED,
        duration=22.0,
        steps=[
            _step(
                "Given",
                "BGP peering between the labelled nodes and the router is established",
                9.0,
                background=True,
            ),
            _step("Given", "the first LB IP pool exists", 0.4),
            _step("When", "a LoadBalancer service is created for it", 0.3),
            _step(
                "Then",
                "the service gets an external IP inside the first pool, never its first or last address",
                2.2,
            ),
        ],
        evidence=[
            _evidence("Given the first LB IP pool exists", "CiliumLoadBalancerIPPool", "json", POOL, 300.0),
            _evidence(
                "Then the service gets an external IP inside the first pool, never its first or last address",
                "kubectl get svc",
                "text",
                "nginx  EXTERNAL-IP 10.0.10.1",
                303.0,
            ),
        ],
        timings=[Timing(stage="lb-ipam", name="service created -> external IP", seconds=2.1)],
    )
    client_page = ScenarioResult(
        feature=REACHABILITY,
        name=CLIENT_PAGE,
        node_id=_node_id(CLIENT_PAGE),
        outcome=Outcome.PASSED,
        duration=4.0,
        steps=[
            _step(
                "Given", "the nginx service has an external IP announced to the router", 3.1, background=True
            ),
            _step("When", "the outside client requests the service's external IP and port", 0.2),
            _step("Then", "it gets the nginx welcome page", 0.1),
        ],
        evidence=[
            _evidence(
                "Then it gets the nginx welcome page",
                "HTTP answer",
                "text",
                "HTTP/1.1 200 OK\nServer: nginx\n\n<title>Welcome to nginx!</title>",
                330.0,
            ),
        ],
        counts={"requests": 1},
    )
    return [without_cni, install, agents_wait, sessions, lb_service, client_page]


def _stages(scenarios: list[ScenarioResult]) -> list[StageSummary]:
    by_stage: dict[str, dict[str, list[float]]] = {}
    for scenario in scenarios:
        for timing in scenario.timings:
            by_stage.setdefault(timing.stage, {}).setdefault(timing.name, []).append(timing.seconds)
    return [StageSummary(stage=stage, timings=timings) for stage, timings in by_stage.items()]


def _counts(scenarios: list[ScenarioResult]) -> dict[str, int]:
    return {outcome.value: sum(1 for s in scenarios if s.outcome is outcome) for outcome in Outcome}


def _run(run_id: str, versions: dict[str, str], started: datetime) -> RunInfo:
    return RunInfo(
        run_id=run_id,
        target="lab",
        topology_path="topologies/lab.yaml",
        topology_sha256="3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550",
        versions=versions,
        harness_version="0.1.0",
        git_revision="fdb0bdc",
        started_at=started,
        duration=412.5,
        user="release",
        host="lab-runner-01",
        command="pytest --target=lab --topology=topologies/lab.yaml",
    )


VERSIONS = {"k3s": "v1.30.6+k3s1", "cilium": "1.15.6", "cilium-cli": "v0.16.11", "router": "FRRouting 8.4.4"}


def build_conformant() -> RunReport:
    scenarios = _scenarios()
    return RunReport(
        run=_run("20251120-140300-a1b2", dict(VERSIONS), STARTED),
        verdict=Verdict.CONFORMANT,
        verdict_reason="all 6 scenarios passed",
        scenarios=scenarios,
        stages=_stages(scenarios),
        counts=_counts(scenarios),
    )


def build_non_conformant() -> RunReport:
    """The same run on a newer Cilium: peering fails on two nodes, the reachability lab broke."""
    scenarios = _scenarios()
    sessions = scenarios[3]
    sessions.outcome = Outcome.NON_CONFORMANT
    sessions.duration = 131.0
    sessions.steps[-1] = _step("Then", sessions.steps[-1].name, 60.2, status="failed")
    sessions.timings = []
    sessions.evidence = [
        sessions.evidence[0],
        _evidence(ESTABLISHED_STEP, "cilium bgp peers", "table", BGP_PEERS_ACTIVE, 270.0),
        _evidence(
            ESTABLISHED_STEP + " (state at failure)", "router: show bgp summary", "text", ROUTER_DUMP, 271.0
        ),
        _evidence(
            ESTABLISHED_STEP + " (state at failure)", "cilium bgp peers", "table", BGP_PEERS_ACTIVE, 271.5
        ),
        _evidence("(setup)", "operator log " + SCRIPT, "text", "operator said " + SCRIPT, 190.0),
    ]
    sessions.failure = Failure(
        step=ESTABLISHED_STEP,
        kind="NonConformance",
        message="sessions not established after 60 s: expected: ... observed: ...",
        expected="k3s-worker-node-01: established\nk3s-worker-node-02: established\nk3s-worker-node-03: established",
        observed="k3s-worker-node-01: active\nk3s-worker-node-02: active\nk3s-worker-node-03: established",
    )
    client = scenarios[5]
    client.outcome = Outcome.NOT_ASSESSED
    client.steps = [_step("Given", client.steps[0].name, 30.0, status="failed", background=True)]
    client.evidence = []
    client.counts = {}
    client.failure = Failure(
        step="Given the nginx service has an external IP announced to the router",
        kind="LabError",
        message="nginx in namespace k3s-worker-node-02 did not start: address already in use",
    )
    scenarios[1].timings = [Timing(stage="cilium", name="install -> nodes Ready", seconds=50.0)]
    scenarios[2].timings.append(
        Timing(stage="bgp-ready", name="operator restart -> agents ready", seconds=12.1)
    )
    report = RunReport(
        run=_run("20251121-091500-c3d4", {**VERSIONS, "cilium": "1.16.1"}, STARTED + timedelta(days=1)),
        verdict=Verdict.NON_CONFORMANT,
        verdict_reason=f"1 scenario non-conformant ({SESSIONS}); 1 not assessed",
        scenarios=scenarios,
        stages=_stages(scenarios),
        counts=_counts(scenarios),
    )
    return report


@pytest.fixture
def conformant() -> RunReport:
    return build_conformant()


@pytest.fixture
def non_conformant() -> RunReport:
    return build_non_conformant()


def write_report(directory: Path, report: RunReport) -> Path:
    """A report directory as a run leaves it: `report.json` inside."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    return directory


# -- a DOM small enough to trust, strict about nesting so a broken template fails loudly --------------
VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    children: list[Element | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str, cls: str | None = None) -> list[Element]:
        return [e for e in self.iter() if e.tag == tag and (cls is None or cls in e.classes)]

    def one(self, tag: str, cls: str | None = None) -> Element:
        found = self.find_all(tag, cls)
        assert len(found) == 1, f"expected one <{tag} class={cls}>, found {len(found)}"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        open_tag = self.stack[-1].tag
        assert open_tag == tag, f"</{tag}> closes <{open_tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Element:
    builder = _Builder()
    builder.feed(text)
    builder.close()
    assert builder.stack == [builder.root], f"unclosed: {[e.tag for e in builder.stack[1:]]}"
    return builder.root


def squash(text: str) -> str:
    """Text with runs of whitespace as one space, as a reader sees it."""
    return " ".join(text.split())
