"""The walkthrough's last step on the real lab wire: outside client -> router -> any node -> nginx in a pod.

One module-wide stage (sessions established, nginx in a pod, the service programmed on every node, its
LB IP announced by every worker) is built once; tests that change it put it back before they end.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from bgpconform.bgp_states import SessionState
from bgpconform.errors import CommandError, LabError
from bgpconform.lab.datapath import (
    SERVICE_CHAIN_PREFIX,
    Backend,
    ServiceDatapath,
    ServiceEntry,
    render_service_rules,
    service_chain,
)
from bgpconform.lab.lab import Lab
from bgpconform.lab.runs import list_namespaces, namespace_pids
from bgpconform.lab.workloads import STOCK_INDEX_HTML, NginxContainer
from bgpconform.topology import Node
from bgpconform.waiting import wait_for
from tests.lab.pod_networks import give_pod_networks

pytestmark = pytest.mark.lab

CURL_TIMEOUT = 28  # curl's exit code for "operation timed out"
CURL_CONNECT_FAILED = 7
# Source ports outside Linux's ephemeral range, never reused in a module, so no request meets the
# TIME_WAIT or conntrack entry of an earlier one.
_source_ports = itertools.count(20000)


@dataclass
class Stage:
    """What the walkthrough has by its last step, in the lab."""

    lab: Lab
    datapath: ServiceDatapath
    nginx: NginxContainer
    backend_node: Node
    service: str
    lb_ip: IPv4Address
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.lb_ip}:{self.port}/"

    @property
    def prefix(self) -> IPv4Network:
        return IPv4Network(f"{self.lb_ip}/32")

    @property
    def backends(self) -> list[tuple[IPv4Address, int]]:
        return [(self.nginx.pod.ip, self.nginx.port)]

    def serve(self) -> ServiceEntry:
        """Program the walkthrough's service with its one backend; a no-op when it is already so."""
        workload = self.lab.topology.workload
        return self.datapath.program(self.service, self.lb_ip, self.port, workload.protocol, self.backends)


SESSION_WAIT = 30.0  # the lab's own speakers dial every second (the topology's bgp.timers)


def _establish_and_announce(lab: Lab, prefix: IPv4Network) -> None:
    """Sessions up with every worker, then the /32 from each, as Cilium announces an LB IP (FACTS.md)."""
    lab.router.configure_peers(lab.topology_peers())
    lab.start_speakers()
    peers = {node.address for node in lab.topology.bgp_nodes}
    wait_for(
        lambda: {session.peer: session.state for session in lab.router.sessions()},
        lambda states: all(states.get(peer) is SessionState.ESTABLISHED for peer in peers),
        expected=f"sessions with {sorted(map(str, peers))} established",
        timeout=SESSION_WAIT,
    )
    lab.originate_everywhere(prefix, [node.name for node in lab.topology.bgp_nodes])
    wait_for(
        lambda: [set(route.nexthops) for route in lab.router.fib_routes(prefix)],
        lambda routes: routes == [peers],
        expected=f"one kernel route for {prefix} via {sorted(map(str, peers))} on the router",
        timeout=lab.topology.waits.routes,
    )


@pytest.fixture(scope="module")
def stage(lab: Lab) -> Iterator[Stage]:
    topology = lab.topology
    workload = topology.workload
    backend_node = topology.workers[0]
    pod_key = f"{workload.namespace}/{workload.pod_name}"
    give_pod_networks(lab)
    pod = lab.network.attach_pod(backend_node.name, pod_key)
    nginx = NginxContainer(
        pod, lab.run.directory / "containers" / workload.pod_name, port=workload.target_port
    )
    datapath = ServiceDatapath(lab.network)
    lb_ip = next(iter(topology.lb_pools[0].cidrs[0].hosts()))
    built = Stage(
        lab,
        datapath,
        nginx,
        backend_node,
        f"{workload.namespace}/{workload.service_name}",
        lb_ip,
        workload.port,
    )
    try:
        nginx.start()
        built.serve()
        _establish_and_announce(lab, built.prefix)
        yield built
    finally:
        built.datapath.remove(built.service)  # a test may have replaced the object
        nginx.stop()
        lab.network.detach_pod(pod_key)


def _get(stage: Stage, *, source_port: int | None = None, max_time: float = 2.0) -> str:
    """One request from the outside client to the LB IP, from a fresh source port."""
    port = source_port if source_port is not None else next(_source_ports)
    argv = ["curl", "-sS", "--fail", "--max-time", f"{max_time:g}", "--local-port", str(port), stage.url]
    return stage.lab.client_exec(argv, timeout=max_time + 5)


def _new_entries(now: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {node: count - before.get(node, 0) for node, count in now.items() if count - before.get(node, 0)}


def test_the_served_page_is_the_one_upstream_nginx_ships() -> None:
    assert "<title>Welcome to nginx!</title>" in STOCK_INDEX_HTML
    assert "html { color-scheme: light dark; }" in STOCK_INDEX_HTML
    packaged = Path("/usr/share/nginx/html/index.html")  # Debian ships upstream's html/index.html
    if not packaged.exists():
        pytest.skip(f"{packaged} is not installed to compare with")
    assert packaged.read_text() == STOCK_INDEX_HTML


def test_each_backend_gets_an_equal_share_of_new_connections() -> None:
    backends = tuple(Backend(IPv4Address(f"10.136.1.{i}"), 80) for i in (2, 3, 4))
    entry = ServiceEntry("default/my-service", IPv4Address("172.198.1.1"), 8080, "TCP", backends)
    rules = render_service_rules(entry)
    assert [
        rule.split("--probability ")[1].split()[0] if "--probability" in rule else None for rule in rules
    ] == [
        "0.3333333333",
        "0.5000000000",
        None,
    ]
    assert [rule.rsplit(" ", 1)[1] for rule in rules] == [str(b) for b in backends]
    assert service_chain("default/my-service").startswith(SERVICE_CHAIN_PREFIX)
    assert len(service_chain("default/my-service")) <= 28
    assert render_service_rules(ServiceEntry("a/b", IPv4Address("172.198.1.1"), 80, "TCP", ())) == []


def test_nginx_runs_in_its_pod_with_every_file_in_its_own_directory(stage: Stage) -> None:
    nginx = stage.nginx
    assert nginx.running
    config = nginx.config_path.read_text()
    # Every file-system path a directive names (not comments, not the URI of `location /`).
    directives = [
        line.split() for line in config.splitlines() if not line.lstrip().startswith(("#", "location"))
    ]
    paths = [token.rstrip(";") for words in directives for token in words if token.startswith("/")]
    assert paths, config
    assert all(Path(path).is_relative_to(nginx.directory) for path in paths), paths
    assert "resolver" not in config
    assert nginx.pid is not None
    assert set(nginx.pids) <= set(namespace_pids(nginx.pod.namespace))
    probes = [entry for entry in nginx.access_log() if entry.probe]
    assert probes, "the readiness probe's GET is in the access log"
    assert {entry.remote_addr for entry in probes} == {nginx.pod.ip}
    assert nginx.get() == STOCK_INDEX_HTML


def test_the_client_gets_the_stock_page_through_the_lb_ip(stage: Stage) -> None:
    page = wait_for(
        lambda: _get(stage),
        lambda body: "Welcome to nginx!" in body,
        expected=f"the client fetches the nginx page from {stage.url}",
        timeout=stage.lab.topology.waits.http,
        tolerate=(CommandError,),
    ).value
    assert page == STOCK_INDEX_HTML
    route = stage.lab.client_exec(["ip", "route", "get", str(stage.lb_ip)])
    assert f"via {stage.lab.topology.client.gateway}" in route


def test_requests_enter_through_several_nodes_and_all_reach_the_backend(stage: Stage) -> None:
    """Node counters say where each connection entered; nginx's log must agree, source by source."""
    stage.serve()
    nginx, datapath = stage.nginx, stage.datapath
    before = datapath.entries(stage.service)
    logged_before = len(nginx.requests())
    pages: list[str] = []

    def one_more_request() -> dict[str, int]:
        pages.append(_get(stage))
        return _new_entries(datapath.entries(stage.service), before)

    entered = wait_for(
        one_more_request,
        lambda seen: (
            len(seen) >= 2 and any(node != stage.backend_node.name for node in seen) and len(pages) >= 6
        ),
        expected="new connections entering through at least two nodes, one without the backend",
        timeout=30,
    ).value
    assert all(page == STOCK_INDEX_HTML for page in pages)
    assert sum(entered.values()) == len(pages)
    assert set(entered) <= {node.name for node in stage.lab.topology.bgp_nodes}

    logged = wait_for(
        lambda: nginx.requests()[logged_before:],
        lambda entries: len(entries) == len(pages),
        expected=f"{len(pages)} new requests in the backend's access log",
        timeout=5,
    ).value
    # SNAT as Cilium's default: a connection that entered elsewhere comes from that node's address; one
    # that entered on the backend's own node keeps the client's address.
    topology = stage.lab.topology
    expected_sources = {
        topology.client.address.ip if node == stage.backend_node.name else topology.node(node).address
        for node in entered
    }
    assert {entry.remote_addr for entry in logged} == expected_sources
    assert all(entry.status == 200 and entry.server_port == stage.nginx.port for entry in logged)


def test_a_node_without_the_backend_forwards_its_own_request_to_it(stage: Stage) -> None:
    stage.serve()
    other = next(node for node in stage.lab.topology.workers if node.name != stage.backend_node.name)
    page = stage.lab.node_exec(other.name, ["curl", "-sS", "--fail", "--max-time", "2", stage.url])
    assert page == STOCK_INDEX_HTML
    wait_for(
        lambda: [entry.remote_addr for entry in stage.nginx.requests()[-1:]],
        lambda last: last == [other.address],
        expected=f"the last request in the backend's log comes from {other.name} ({other.address})",
        timeout=5,
    )


def test_backend_changes_move_traffic_and_no_backend_drops(stage: Stage) -> None:
    lab, datapath = stage.lab, stage.datapath
    second_node = stage.lab.topology.workers[1]
    pod_key = f"{lab.topology.workload.namespace}/second-backend"
    pod = lab.network.attach_pod(second_node.name, pod_key)
    second = NginxContainer(pod, lab.run.directory / "containers" / "second-backend", port=stage.nginx.port)
    try:
        second.start()
        both = [*stage.backends, (pod.ip, second.port)]
        entry = datapath.program(stage.service, stage.lb_ip, stage.port, "TCP", both)
        assert len(entry.backends) == 2
        assert datapath.program(stage.service, stage.lb_ip, stage.port, "TCP", list(reversed(both))) == entry
        first_before = len(stage.nginx.requests())

        def requests_per_backend_after_one_more() -> tuple[int, int]:
            assert _get(stage) == STOCK_INDEX_HTML
            return len(stage.nginx.requests()) - first_before, len(second.requests())

        wait_for(
            requests_per_backend_after_one_more,
            lambda counts: all(count > 0 for count in counts),
            expected="new requests reach both backends",
            timeout=30,
        )
        translated = datapath.translations(stage.service)
        assert {backend for per in translated.values() for backend, n in per.items() if n} == set(
            entry.backends
        )

        datapath.program(stage.service, stage.lb_ip, stage.port, "TCP", [])
        with pytest.raises(CommandError) as failure:
            _get(stage, max_time=1)
        assert failure.value.returncode == CURL_TIMEOUT  # dropped, as Cilium does: no reset, no answer
        assert all(per == {} for per in datapath.translations(stage.service).values())
        drops = [
            line
            for dump in datapath.dump().values()
            for line in dump.splitlines()
            if "has no backends" in line
        ]
        assert len(drops) == len(lab.topology.nodes)
        assert any(not line.startswith("[0:") for line in drops), drops
    finally:
        stage.serve()
        second.stop()
        lab.network.detach_pod(pod_key)
    assert _get(stage) == STOCK_INDEX_HTML


def test_removing_the_service_stops_answers_and_its_rules(stage: Stage) -> None:
    lab, datapath = stage.lab, stage.datapath
    chain = service_chain(stage.service)
    try:
        datapath.remove(stage.service)
        datapath.remove(stage.service)  # idempotent
        assert stage.service not in datapath.services
        assert all(chain not in dump for dump in datapath.dump().values())
        # The /32 is still announced, so a packet bounces between router and nodes until its TTL runs
        # out: the client sees that ICMP error (curl exit 7) or, if it is lost, a timeout. Fresh source
        # ports make the router send the three attempts through different nodes.
        for _ in range(3):
            with pytest.raises(CommandError) as failure:
                _get(stage, max_time=1)
            assert failure.value.returncode in (CURL_TIMEOUT, CURL_CONNECT_FAILED)
    finally:
        stage.serve()
    assert all(f"-j {chain}" in dump for dump in datapath.dump().values())
    assert wait_for(
        lambda: _get(stage),
        lambda body: body == STOCK_INDEX_HTML,
        expected="the page again once the service is back",
        timeout=lab.topology.waits.http,
        tolerate=(CommandError,),
    ).value


def test_a_fresh_per_node_datapath_takes_over_and_removes_what_it_does_not_hold(stage: Stage) -> None:
    """A restarted agent's datapath (one node, empty memory) keeps serving and drops stale chains."""
    lab = stage.lab
    node = stage.backend_node.name
    others = [n.name for n in lab.topology.nodes if n.name != node]
    stale = "default/left-behind"
    stage.datapath.program(stale, IPv4Address("172.198.1.250"), 9090, "TCP", stage.backends)
    try:
        fresh = ServiceDatapath(lab.network, nodes=[node])
        assert fresh.nodes == (node,)
        entry = fresh.program(stage.service, stage.lb_ip, stage.port, "TCP", stage.backends)
        dumps = ServiceDatapath(lab.network).dump()
        assert service_chain(stale) not in dumps[node], (
            "the fresh datapath removed the chain it does not hold"
        )
        assert all(service_chain(stale) in dumps[other] for other in others), "other nodes untouched"
        assert f"-j {entry.chain}" in dumps[node]
        assert _get(stage) == STOCK_INDEX_HTML
        fresh.sync([entry])  # already so: no write, counters kept
        fresh.sync([])
        assert SERVICE_CHAIN_PREFIX not in ServiceDatapath(lab.network).dump()[node]
        with pytest.raises(LabError):
            ServiceDatapath(lab.network, nodes=["no-such-node"])
    finally:
        # The stage's object no longer knows what the node holds; a fresh one for every node takes over,
        # removing the stale service everywhere and rewriting the stage's.
        stage.datapath = ServiceDatapath(lab.network)
        stage.serve()
    dumps = stage.datapath.dump()
    assert all(service_chain(stale) not in dump for dump in dumps.values())
    assert wait_for(
        lambda: _get(stage),
        lambda body: body == STOCK_INDEX_HTML,
        expected="the page again once the node is reprogrammed",
        timeout=lab.topology.waits.http,
        tolerate=(CommandError,),
    ).value


def test_nginx_stop_leaves_no_process_and_no_files(lab: Lab) -> None:
    node = lab.topology.workers[-1]
    pod = lab.network.attach_pod(node.name, "default/short-lived")
    nginx = NginxContainer(pod, lab.run.directory / "containers" / "short-lived")
    try:
        assert nginx.start() >= 0
        assert nginx.get() == STOCK_INDEX_HTML
        pids = nginx.pids
        assert len(pids) >= 2, "a master and at least one worker"
        nginx.stop()
        nginx.stop()  # idempotent
        assert not nginx.running
        assert namespace_pids(pod.namespace) == []
        assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
        assert not nginx.directory.exists()
        assert nginx.recorded_access_log, "the access log is kept for evidence"
        assert nginx.access_log()[0].probe
    finally:
        nginx.stop()
        lab.network.detach_pod("default/short-lived")
    assert pod.namespace not in list_namespaces()
