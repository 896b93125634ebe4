"""Steps of the upgrade feature: Cilium upgraded one minor at a time, and a v1 peering policy moved to
BGPv2 node by node, under the traffic probe of the fault scenarios (`steps.fault_steps`), each change's
rollout and recovery timed on the probe's clock."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from pytest_bdd import then, when

from bgpconform import observe
from bgpconform.cilium import bgp_api, upgrades
from bgpconform.cilium.install import CiliumValues
from bgpconform.cilium.labels import AGENT_SELECTOR, OPERATOR_SELECTOR
from bgpconform.cilium.versions import image_version
from bgpconform.disruption.timeline import RouterSample
from bgpconform.evidence import Evidence
from bgpconform.expect import expect
from bgpconform.kubeapi.intstr import int_or_percent
from bgpconform.kubeapi.port import Resources
from bgpconform.topology import Topology
from bgpconform.waiting import WaitTimeout, wait_for
from bgpconform.walkthrough import manifests
from bgpconform.walkthrough.machine import StageMachine
from steps.fault_steps import ProbeRun, _last, _with_timeline_on_failure, wait_requests_until


@dataclass
class Change:
    """One change of a rollout (a minor upgraded to, a node moved): when it was asked for, took effect
    in the cluster, and was back at the router (probe clock)."""

    release: str  # what the change is: the release installed, or the node moved
    asked_at: float
    rolled_at: float | None = None
    back_at: float | None = None
    failure: str | None = None  # what did not happen in time, what was seen, and its likely cause


@dataclass
class Rollout:
    """The changes a scenario makes in turn, and what each one came to."""

    target: str
    path: list[str]
    changes: list[Change] = field(default_factory=list)


def _at_release(topology: Topology, release: str) -> Topology:
    """The run's topology with the release in force: the version-dependent reads of the steps (waits,
    resources, the in-pod CLI's name) follow the cluster as it is upgraded. The BGP API stays the one
    the run configured, which is what the cluster still holds."""
    cluster = topology.cluster.model_copy(update={"cilium_version": release})
    bgp = topology.bgp.model_copy(update={"api": topology.bgp_api.value})
    return topology.model_copy(update={"cluster": cluster, "bgp": bgp})


CiliumPods = tuple[list[observe.PodView], list[observe.PodView]]  # agents, operators


def _rolled(release: str, node_count: int) -> Callable[[CiliumPods], bool]:
    """Whether every agent (one per node) and every operator pod runs `release` and is ready."""

    def check(pods: CiliumPods) -> bool:
        agents, operators = pods
        running = [p for p in agents + operators if p.status != "Terminating"]
        return (
            len([p for p in agents if p.status != "Terminating"]) == node_count
            and bool(operators)
            and all(p.running_and_ready for p in running)
            and all(image_version(p.images[0]) == release for p in running if p.images)
        )

    return check


def _rollout_batches(walkthrough: StageMachine, nodes: int) -> int:
    """How many rounds the agents' DaemonSet rolls in: its `maxUnavailable` at a time (a number or a
    percentage of the nodes, rounded up as the DaemonSet controller does); one node a round if unread."""
    daemonset = walkthrough.target.kube.get_or_none(Resources.DAEMONSETS, "cilium", "kube-system") or {}
    strategy = (daemonset.get("spec") or {}).get("updateStrategy") or {}
    allowed = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1)
    at_once = int_or_percent(allowed, nodes, round_up=True)
    return math.ceil(nodes / max(1, at_once))


def _all_back(peering: set[str], since: float) -> Callable[[list[RouterSample]], bool]:
    """Whether the router's latest sample, taken after `since`, has every peering node's session
    established and its path to the LB IP."""

    def check(samples: list[RouterSample]) -> bool:
        if not samples or samples[-1].at <= since:
            return False
        last = samples[-1]
        return all(last.sessions.get(hop) == "established" for hop in peering) and peering <= set(last.paths)

    return check


def _pod_releases(pods: CiliumPods) -> str:
    shown = [
        f"{p.name} on {p.node}: {image_version(p.images[0]) if p.images else '?'} {p.status} {p.ready}"
        for p in pods[0] + pods[1]
    ]
    return "; ".join(shown) or "no Cilium pod"


@when("Cilium is upgraded one minor at a time to the target release", target_fixture="rollout")
def upgrade_minor_by_minor(
    walkthrough: StageMachine, probe_run: ProbeRun, request: pytest.FixtureRequest
) -> Rollout:
    """Each minor as its installer upgrades it, then waited for: the rollout (every agent and the
    operator on the release, ready), then every peering node's session and path at the router. A minor
    that does not come back ends the walk; the Then steps judge what was recorded."""
    target = walkthrough.target
    original = target.topology
    goal = original.cluster.upgrade_to
    assert goal is not None  # the feature's @cilium_upgrade tag: it runs only with a release to reach
    run = Rollout(str(goal), upgrades.upgrade_path(str(original.cluster.cilium_version), str(goal)))

    def restore() -> None:
        target.topology = original
        walkthrough.forget_stage()  # the cluster runs another release than the topology: start afresh

    request.addfinalizer(restore)
    kube = target.kube
    nodes = len(original.nodes)
    peering = {str(node.address) for node in original.bgp_nodes}
    installer = target.installer
    for release in run.path:
        at_release = _at_release(original, release)
        minor = Change(release, probe_run.probe.mark(f"upgrade to {release}"))
        if probe_run.fault_at is None:
            probe_run.fault_at = minor.asked_at
        run.changes.append(minor)
        installer.upgrade(
            CiliumValues.for_topology(at_release, installer.tool, enable_bgp_control_plane=True)
        )
        target.topology = at_release
        try:
            wait_for(
                lambda: (
                    observe.pods(kube, "kube-system", AGENT_SELECTOR),
                    observe.pods(kube, "kube-system", OPERATOR_SELECTOR),
                ),
                _rolled(release, nodes),
                expected=f"every agent ({nodes}) and the operator on Cilium {release}, running and ready",
                timeout=walkthrough.waits.pods_running * _rollout_batches(walkthrough, nodes)
                + walkthrough.waits.crd_registered,
                describe=_pod_releases,
            )
            minor.rolled_at = probe_run.probe.now()
            wait_for(
                probe_run.probe.router_samples,
                _all_back(peering, since=minor.rolled_at),
                expected=f"every peering node's session established and its path to the LB IP on "
                f"Cilium {release}",
                timeout=walkthrough.session_wait() + walkthrough.waits.routes,
                describe=_last,
            )
            minor.back_at = probe_run.probe.now()
        except WaitTimeout as exc:
            minor.failure = str(exc) + _left_behind(walkthrough, release, original)
            break
    return run


def _left_behind(walkthrough: StageMachine, release: str, original: Topology) -> str:
    """The cause, when the cluster still holds configuration the release no longer reads: the run's
    v1 peering policies, named as the API lists them."""
    cause = upgrades.api_left_behind(release, original.bgp_api)
    if cause is None:
        return ""
    policies = walkthrough.target.kube.items_if_served(Resources.BGP_PEERING_POLICIES)
    if not policies:
        return ""
    names = sorted(p["metadata"]["name"] for p in policies)
    return f"\n  cause: CiliumBGPPeeringPolicy {names} left in the cluster; {cause}"


def _change_lines(run: Rollout) -> list[str]:
    lines = []
    for minor in run.changes:
        rolled = (
            f"rolled out {minor.rolled_at - minor.asked_at:.1f} s" if minor.rolled_at else "not rolled out"
        )
        back = f", back at the router {minor.back_at - minor.asked_at:.1f} s" if minor.back_at else ""
        lines.append(f"{minor.release}: {rolled}{back} after it was asked for")
    return lines


@then(
    "after each minor every agent and the operator run it and every peering node's session and path "
    "to the LB IP come back"
)
@_with_timeline_on_failure
def every_minor_back(
    walkthrough: StageMachine, evidence: Evidence, probe_run: ProbeRun, rollout: Rollout
) -> None:
    evidence.text(
        "the upgrade, minor by minor",
        "\n".join([f"path: {' -> '.join(rollout.path)}", *_change_lines(rollout)]),
    )
    for minor in rollout.changes:
        if minor.rolled_at is not None:
            walkthrough.evidence.timing(
                "upgrade", f"upgrade to {minor.release} -> rolled out", minor.rolled_at - minor.asked_at
            )
        if minor.back_at is not None:
            walkthrough.evidence.timing(
                "upgrade",
                f"upgrade to {minor.release} -> sessions and paths back",
                minor.back_at - minor.asked_at,
            )
    failed = next((m for m in rollout.changes if m.failure is not None), None)
    reached = [m.release for m in rollout.changes if m.back_at is not None]
    expect(
        failed is None and reached == rollout.path,
        f"each of {rollout.path} rolled out with every session and path back",
        f"the upgrade to {failed.release} did not come back: {failed.failure}"
        if failed
        else f"reached {reached}",
    )


@then("the router keeps a path to the LB IP and no request fails throughout")
@_with_timeline_on_failure
def upgrade_undisrupted(
    walkthrough: StageMachine, evidence: Evidence, probe_run: ProbeRun, rollout: Rollout
) -> None:
    """Graceful restart's promise held through every BGP instance the rollout restarted: the router kept
    the restarting nodes' paths as stale until their new instances refreshed them (Cilium's operation
    guide, "Cilium Agent Down"), and the datapath answered meanwhile, from the first change asked for
    until `disruption.settle` after the last one was back."""
    settings = walkthrough.topology.disruption
    start = rollout.changes[0].asked_at if rollout.changes else 0.0
    end = max((m.back_at or m.asked_at for m in rollout.changes), default=start) + settings.settle

    wait_requests_until(probe_run, end, settings.request_timeout)
    timeline = probe_run.probe.snapshot()
    window: list[RouterSample] = [s for s in timeline.router if start <= s.at <= end]
    pathless = [s.at for s in window if not s.paths]
    during = [r for r in timeline.requests if start <= r.started < end]
    failed = [r for r in during if not r.ok]
    shown = timeline.figures(start)
    evidence.text(
        "throughout",
        f"{len(during)} requests, {len(failed)} failed, longest gap {shown.longest_gap:g} s, "
        f"{shown.session_flaps} session flaps, fewest next hops {shown.fewest_nexthops}",
    )
    expect(
        not pathless,
        f"a path to the LB IP at the router in every sample from {start:.1f} s to {end:.1f} s",
        f"no path at {len(pathless)} of {len(window)} samples, first at {pathless[0]:.1f} s"
        if pathless
        else "",
    )
    expect(
        bool(during) and not failed,
        f"every request from {start:.1f} s to {end:.1f} s answered",
        f"{len(failed)} of {len(during)} failed, longest gap {shown.longest_gap:g} s: "
        + "; ".join(f"#{r.sequence} at {r.started:.1f} s: {r.error or r.status}" for r in failed[:5]),
    )


@when(
    "each peering node in turn moves from the v1 peering policy to a BGPv2 cluster config",
    target_fixture="rollout",
)
def migrate_node_by_node(
    walkthrough: StageMachine, probe_run: ProbeRun, request: pytest.FixtureRequest
) -> Rollout:
    """The BGPv2 objects of the same promise first, selecting no node; then, node by node, the node
    joins BGPv2 (its CiliumBGPNodeConfig is made while the v1 policy still wins) and only then leaves
    the policy, and the step waits for its session and path at the router again."""
    target = walkthrough.target
    topology = walkthrough.topology
    kube = target.kube
    request.addfinalizer(walkthrough.forget_stage)  # the cluster no longer holds what the topology says
    kinds = bgp_api.v2_resources(str(topology.cluster.cilium_version))
    policy = kube.get(Resources.BGP_PEERING_POLICIES, topology.bgp.policy_name)
    policy_patch, objects = manifests.migration_to_v2(topology, policy)
    for resource, body in objects:
        walkthrough.create(resource, body)
    kube.patch(Resources.BGP_PEERING_POLICIES, topology.bgp.policy_name, policy_patch)
    nodes = list(topology.bgp_nodes)
    rollout = Rollout("BGPv2", [node.name for node in nodes])
    for node in nodes:
        change = Change(node.name, probe_run.probe.mark(f"{node.name} moves to BGPv2"))
        if probe_run.fault_at is None:
            probe_run.fault_at = change.asked_at
        rollout.changes.append(change)
        try:
            _label(walkthrough, node.name, manifests.JOINING)
            wait_for(
                functools.partial(kube.get_or_none, kinds.node_configs, node.name),
                lambda found: found is not None,
                expected=f"the operator's CiliumBGPNodeConfig for {node.name}",
                timeout=walkthrough.waits.crd_registered,
            )
            _label(walkthrough, node.name, manifests.MOVED)
            change.rolled_at = probe_run.probe.now()
            wait_for(
                probe_run.probe.router_samples,
                _all_back({str(node.address)}, since=change.rolled_at),
                expected=f"{node.name}'s session established and its path to the LB IP on BGPv2",
                timeout=walkthrough.session_wait() + walkthrough.waits.routes,
                describe=_last,
            )
            change.back_at = probe_run.probe.now()
        except WaitTimeout as exc:
            change.failure = str(exc)
            break
    return rollout


def _label(walkthrough: StageMachine, node: str, value: str) -> None:
    patch = {"metadata": {"labels": {manifests.MIGRATION_LABEL: value}}}
    walkthrough.target.kube.patch(Resources.NODES, node, patch)


@then("every peering node runs BGPv2 with its session established and its path to the LB IP")
@_with_timeline_on_failure
def every_node_on_v2(
    walkthrough: StageMachine, evidence: Evidence, probe_run: ProbeRun, rollout: Rollout
) -> None:
    """Each move came back at the router, the policy selects no node any more, and (1.17+) each node's
    CiliumBGPNodeConfig status, which only BGPv2's manager writes, shows its session established."""
    evidence.text("the migration, node by node", "\n".join(_change_lines(rollout)))
    failed = next((m for m in rollout.changes if m.failure is not None), None)
    expect(
        failed is None and [m.release for m in rollout.changes if m.back_at is not None] == rollout.path,
        f"each of {rollout.path} moved with its session and path back",
        f"{failed.release} did not come back: {failed.failure}" if failed else "not every node moved",
    )
    if not bgp_api.apis(str(walkthrough.topology.cluster.cilium_version)).node_status:
        return
    wanted = {node.name for node in walkthrough.topology.bgp_nodes}

    def wait() -> dict[str, str]:
        return wait_for(
            walkthrough.node_config_peer_states,
            lambda states: all(states.get(name) == "established" for name in wanted),
            expected=f"CiliumBGPNodeConfig status of {sorted(wanted)}: the router's peer established",
            timeout=walkthrough.waits.routes,
        ).value

    evidence.json("CiliumBGPNodeConfig status: the router's peeringState", wait())
