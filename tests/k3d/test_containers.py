"""The k3d target's container code against a real Docker engine, with the CHR stand-in for RouterOS.

No k3s image or k3d binary exists here, so the cluster itself is not created; everything around it
is real: networks with the topology's subnets, containers started through testcontainers at the
router's addresses, the API published on 127.0.0.1 and logged in to, the teardown.
"""

from __future__ import annotations

from dataclasses import replace
from typing import cast

import pytest

from bgpconform.errors import LabError, PrerequisiteError
from bgpconform.lab.routeros import standin_image
from bgpconform.routers.port import RouterPort, topology_peers
from bgpconform.routers.routeros import RouterOsRouter
from bgpconform.routers.routeros.commands import CONNECTION_PATH, INSTANCE_PATH
from bgpconform.targets.k3d.chr_login import published_api, wait_for_api_login
from bgpconform.targets.k3d.containers import (
    RUN_LABEL,
    ContainerNotReady,
    NetworkSpec,
    RunResources,
    StartedContainer,
)
from bgpconform.targets.k3d.docker_engine import Engine
from bgpconform.targets.k3d.node_links import DockerNodeLinks, node_containers
from bgpconform.targets.k3d.plan import ContainerSpec, K3dPlan, k3d_plan
from bgpconform.targets.k3d.target import K3dTarget
from bgpconform.topology import Topology

# Stand-in commands (the image's entrypoint is its Python): like QEMU before RouterOS is up, a port
# that accepts and never answers; a container that never serves at all; one that idles.
SILENT_LISTENER = (
    "import socket\nserver = socket.create_server(('0.0.0.0', 8728))\nheld = []\n"
    "while True:\n    held.append(server.accept())"
)
IDLE = "import threading; threading.Event().wait()"


def _plan(topology: Topology, run_name: str, standin: str, version: str = "7.8") -> K3dPlan:
    return k3d_plan(topology, run_name, routeros_version=version, chr_image=standin, kvm=False)


def _with_networks(resources: RunResources, plan: K3dPlan) -> None:
    for argv in plan.networks:
        resources.create_network(NetworkSpec.from_argv(argv))


def _named(engine: Engine, run_name: str) -> list[str]:
    """Every container and network whose name carries the run's, ours or not."""
    found = [f"container {c.name}" for c in engine.client.containers.list(all=True)]
    found += [f"network {n.name}" for n in engine.client.networks.list()]
    return [item for item in found if run_name in item]


def _standin_spec(spec: ContainerSpec, standin: str, code: str) -> ContainerSpec:
    return replace(spec, image=f"{standin}:latest", command=("-c", code))


@pytest.mark.parametrize("version", ["7.8", "7.20"])
def test_the_chr_serves_routeros_at_the_routers_address_and_takes_that_versions_commands(
    engine: Engine, standin: str, topology: Topology, run_name: str, version: str
) -> None:
    plan = _plan(topology, run_name, standin, version)
    chr_spec = plan.containers[0]
    south, north = chr_spec.networks
    with RunResources(engine, run_name) as resources:
        _with_networks(resources, plan)
        chr_container = resources.start(chr_spec)

        subnet = engine.client.networks.get(south).attrs["IPAM"]["Config"][0]["Subnet"]
        assert subnet == str(topology.cluster.node_subnet)
        assert chr_container.addresses() == {
            south: str(topology.router.address),
            north: str(topology.router.north_address.ip),
        }
        host, _ = chr_container.published(8728)
        assert host == "127.0.0.1"  # reached on loopback only

        api = published_api(chr_container, "admin", "")  # a fresh CHR's login
        wait_for_api_login(chr_container, api, timeout=30)
        router = RouterOsRouter.for_topology(api, topology)
        resource = router.resource()
        assert resource["version"].split()[0] == version
        assert resource["board-name"] == "bgpconform CHR stand-in"

        peers = topology_peers(topology)
        router.configure_peers(peers)
        api.close()

    connections = [change for change in router.changes if change.path == CONNECTION_PATH]
    assert [c.fields["remote.address"] for c in connections] == [str(p.address) for p in peers]
    if version == "7.8":  # the walkthrough's command
        assert all(c.fields.get("address-families") == "ip" and "afi" not in c.fields for c in connections)
        assert not [change for change in router.changes if change.path == INSTANCE_PATH]
    else:  # 7.20: an instance first, then connections naming it, with afi
        first = router.changes[0]
        assert (first.path, first.verb) == (INSTANCE_PATH, "add")
        assert all(c.fields.get("afi") == "ip" for c in connections)
        assert {c.fields.get("instance") for c in connections} == {first.fields["name"]}
    assert _named(engine, run_name) == []


def test_the_stand_in_stops_cleanly_on_sigterm(
    engine: Engine, standin: str, topology: Topology, run_name: str
) -> None:
    plan = _plan(topology, run_name, standin)
    with RunResources(engine, run_name) as resources:
        _with_networks(resources, plan)
        chr_container = resources.start(plan.containers[0])
        api = published_api(chr_container, "admin", "")
        wait_for_api_login(chr_container, api, timeout=30)
        api.close()
        chr_container.container.get_wrapped_container().stop(timeout=20)  # SIGTERM, then waits
        assert chr_container.status() == "exited (code 0)"
        log = chr_container.log_tail()
        assert "RouterOS 7.8 API listening on 0.0.0.0:8728" in log
        assert log.endswith("stopped")


def test_teardown_removes_every_container_and_network_also_when_a_step_fails(
    engine: Engine, standin: str, topology: Topology, run_name: str
) -> None:
    plan = _plan(topology, run_name, standin)
    chr_spec, client_spec = plan.containers
    resources = RunResources(engine, run_name)

    def steps_then_a_failure() -> None:
        with resources:
            _with_networks(resources, plan)
            resources.start(chr_spec)
            resources.start(_standin_spec(client_spec, standin, IDLE))
            assert len(resources.leftovers()) == 4
            raise RuntimeError("a step in between failed")

    with pytest.raises(RuntimeError, match="a step in between failed"):
        steps_then_a_failure()
    assert resources.leftovers() == []
    assert _named(engine, run_name) == []
    resources.close()  # again: nothing left to do, no error


def test_teardown_tolerates_objects_already_gone(
    engine: Engine, standin: str, topology: Topology, run_name: str
) -> None:
    plan = _plan(topology, run_name, standin)
    with RunResources(engine, run_name) as resources:
        _with_networks(resources, plan)
        started = resources.start(_standin_spec(plan.containers[0], standin, IDLE))
        started.container.get_wrapped_container().remove(force=True)
        engine.client.networks.get(next(iter(plan.containers[0].networks))).remove()
    assert _named(engine, run_name) == []


def test_teardown_leaves_a_same_named_network_it_did_not_create(
    engine: Engine, standin: str, topology: Topology, run_name: str
) -> None:
    plan = _plan(topology, run_name, standin)
    south = NetworkSpec.from_argv(plan.networks[0])
    foreign = engine.client.networks.create(south.name, driver="bridge")
    try:
        with pytest.raises(LabError, match=south.name), RunResources(engine, run_name) as resources:
            resources.create_network(south)
        assert [n.name for n in engine.client.networks.list(names=[south.name])] == [south.name]
        assert RUN_LABEL not in (engine.client.networks.get(south.name).attrs.get("Labels") or {})
    finally:
        foreign.remove()
    assert _named(engine, run_name) == []


def _started(resources: RunResources, plan: K3dPlan, spec: ContainerSpec) -> StartedContainer:
    _with_networks(resources, plan)
    return resources.start(spec)


def test_a_port_that_accepts_but_never_logs_in_times_out_naming_expected_and_last_seen(
    engine: Engine, standin: str, topology: Topology, run_name: str
) -> None:
    plan = _plan(topology, run_name, standin)
    with RunResources(engine, run_name) as resources:
        silent = _started(resources, plan, _standin_spec(plan.containers[0], standin, SILENT_LISTENER))
        api = published_api(silent, "admin", "", attempt_timeout=1.0)
        with pytest.raises(ContainerNotReady) as caught:
            wait_for_api_login(silent, api, timeout=3)
    message = str(caught.value)
    assert "never accepted a RouterOS API login: timed out after" in message
    assert f"expected: a RouterOS API login at {api.endpoint} (container {run_name}-router)" in message
    assert "last probe error: RouterApiError:" in message  # what the last attempt saw
    assert "did not answer the login within 1s" in message or "closed the session during login" in message
    assert "container: running" in message


def test_a_router_refusing_the_login_fails_at_once_without_showing_the_password(
    engine: Engine, standin: str, topology: Topology, run_name: str
) -> None:
    plan = _plan(topology, run_name, standin)
    with RunResources(engine, run_name) as resources:
        _with_networks(resources, plan)
        chr_container = resources.start(
            plan.containers[0], environment={"BGPCONFORM_ROUTER_PASSWORD": "not-the-harness-password"}
        )
        api = published_api(chr_container, "admin", "wrong-password", credentials_hint="$ROUTER_PASSWORD")
        with pytest.raises(ContainerNotReady) as caught:
            wait_for_api_login(chr_container, api, timeout=30)
    message = str(caught.value)
    assert f"expected a RouterOS API login at {api.endpoint}" in message
    assert "invalid user name or password (6)" in message
    assert "$ROUTER_PASSWORD" in message
    assert "wrong-password" not in message
    assert "not-the-harness-password" not in message


def test_a_container_that_exits_ends_the_wait_with_its_last_log_lines(
    engine: Engine, standin: str, topology: Topology, run_name: str
) -> None:
    plan = _plan(topology, run_name, standin)
    with RunResources(engine, run_name) as resources:
        spec = _standin_spec(plan.containers[0], standin, "raise SystemExit('no RouterOS in here')")
        gone = _started(resources, plan, spec)
        with pytest.raises(ContainerNotReady) as caught:  # whether it exited before or during the wait
            wait_for_api_login(gone, published_api(gone, "admin", "", attempt_timeout=1.0), timeout=30)
    message = str(caught.value)
    assert f"container {run_name}-router is exited (code 1)" in message
    assert "no RouterOS in here" in message


def test_k3d_target_without_k3d_stops_before_creating_anything(
    engine: Engine, standin: str, topology: Topology, run_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    target = K3dTarget(topology, _plan(topology, run_name, standin), engine=engine)
    with pytest.raises(PrerequisiteError) as caught:
        target.start()
    message = str(caught.value)
    assert "nothing was created" in message
    assert "`k3d` is not on PATH" in message
    assert "https://k3d.io" in message
    assert "https://github.com/k3d-io/k3d/releases" in message
    assert "`cilium` (the Cilium installer) is not on PATH" in message
    assert not target.started
    assert _named(engine, run_name) == []
    assert target.commands == []


def test_the_stand_in_image_is_reused_while_its_inputs_are_unchanged(engine: Engine, standin: str) -> None:
    before = engine.client.images.get(f"{standin}:7.8")
    tag = standin_image.ensure_standin_image(engine.client, "7.8")
    after = engine.client.images.get(tag)
    assert after.id == before.id
    assert after.labels[standin_image.HASH_LABEL] == standin_image.recipe().digest()
    assert after.labels[standin_image.VERSION_LABEL] == "7.8"


def test_a_nodes_cable_is_pulled_and_plugged_back_with_its_address(
    engine: Engine, standin: str, topology: Topology, run_name: str
) -> None:
    """`faults.isolate_node` takes the node container off the nodes' network; `restore_node` puts it
    back with the address the topology gives it (k3d names node containers by role and order)."""
    plan = _plan(topology, run_name, standin)
    south = next(iter(plan.containers[0].networks))
    nodes = node_containers(topology, run_name)
    worker = topology.workers[0]
    spec = ContainerSpec(
        name=nodes[worker.name].container,
        image=f"{standin}:latest",
        networks={south: str(worker.address)},
        command=("-c", IDLE),
        ready_when="running",
    )
    with RunResources(engine, run_name) as resources:
        _with_networks(resources, plan)
        node = resources.start(spec)
        no_router = cast(RouterPort, None)  # pulling a cable never touches the router
        links = DockerNodeLinks(engine.client, south, nodes, no_router)
        links.isolate_node(worker.name)
        assert south not in node.addresses()
        links.restore_node(worker.name)
        assert node.addresses()[south] == str(worker.address)
    assert _named(engine, run_name) == []
