"""Steps of the fault scenarios: a steady stream of requests through each fault, and what the router and
the client saw of it, on one clock (`bgpconform.disruption`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest
from pytest_bdd import given, then, when

from bgpconform import observe
from bgpconform.bgp_states import SessionState
from bgpconform.cilium.bgp_peers import BgpPeer
from bgpconform.cilium.labels import AGENT_SELECTOR
from bgpconform.disruption.entry import entry_nodes
from bgpconform.disruption.probe import TrafficProbe
from bgpconform.disruption.timeline import RequestSample, RouterSample, Timeline
from bgpconform.evidence import Evidence
from bgpconform.expect import expect
from bgpconform.stage import Stage
from bgpconform.topology import Node
from bgpconform.waiting import WaitTimeout, wait_for
from bgpconform.walkthrough.machine import StageMachine

ROUTER_LAG = 2.0  # seconds a router may take, past a timer, to act on it and show it (sampling included)


@dataclass
class ProbeRun:
    """The probe of one scenario, the moment of its fault, and its timeline once stopped."""

    probe: TrafficProbe
    evidence: Evidence
    fault_at: float | None = None
    node: str | None = None
    withdrawn_at: float | None = None
    restarted_pod: str | None = None
    back_at: float | None = None
    timeline: Timeline | None = None
    undo: list[Callable[[], None]] = field(default_factory=list)

    def finish(self) -> Timeline:
        """Stop the probe (once) and put its timeline in the scenario's evidence."""
        if self.timeline is None:
            self.timeline = self.probe.stop()
            since = self.fault_at or 0.0
            shown = self.timeline.figures(since)
            summary = (
                f"{shown.requests} requests from the fault on, {shown.failed} failed, longest gap "
                f"{shown.longest_gap:g} s, {shown.session_flaps} session flaps, "
                f"{shown.withdrawals} withdrawals"
            )
            self.evidence.timeline(self.timeline.title, self.timeline.model_dump_json(), summary)
            for error in self.probe.sample_errors[:5]:
                self.evidence.text("router samples that failed", error)
        return self.timeline


def _last(samples: list[RouterSample]) -> str:
    if not samples:
        return "no router sample yet"
    last = samples[-1]
    return f"at {last.at:.1f} s: paths via {list(last.paths)}, sessions {last.sessions}"


@given("the outside client sends a steady stream of requests to the LB IP", target_fixture="probe_run")
def steady_stream(walkthrough: StageMachine, evidence: Evidence, request: pytest.FixtureRequest) -> ProbeRun:
    """New connections at the topology's `disruption.rate`, and the router sampled beside them; the step
    ends once the stream has been answered for `disruption.baseline` seconds and the router shows the
    LB route through every peering node, so the timeline shows the service before the fault too."""
    topology = walkthrough.topology
    url = walkthrough.service_url()
    prefix = IPv4Network(f"{walkthrough.service_address()}/32")
    probe = TrafficProbe(
        walkthrough.target.client,
        walkthrough.target.router,
        url=url,
        prefix=prefix,
        settings=topology.disruption,
        title=f"requests to {url} and the router's view of {prefix}",
    )
    run = ProbeRun(probe, evidence)
    probe.start()
    request.addfinalizer(lambda: _close(run))
    wait_for(
        probe.requests,
        lambda answered: any(r.ok for r in answered),
        expected=f"answers from {url} to the stream",
        timeout=topology.waits.http,
        describe=lambda answered: [r.error or r.status for r in answered[-3:]] or "no request ended yet",
    )
    baseline = topology.disruption.baseline
    wait_for(
        probe.requests,
        lambda answered: any(r.ok and r.ended >= baseline for r in answered),
        expected=f"the stream answered for its first {baseline:g} s (disruption.baseline)",
        timeout=baseline + topology.waits.http,
        describe=lambda answered: f"{len(answered)} requests ended, {sum(r.ok for r in answered)} answered",
    )
    peering = {str(node.address) for node in topology.bgp_nodes}
    wait_for(
        probe.router_samples,
        lambda samples: bool(samples) and peering <= set(samples[-1].paths),
        expected=f"the router's paths to {prefix} via every peering node {sorted(peering)}",
        timeout=topology.waits.routes,
        describe=_last,
    )
    return run


def _close(run: ProbeRun) -> None:
    """After the scenario, pass or fail: undo its faults (the probe still watching), then stop the probe
    and record its timeline."""
    if run.undo and run.timeline is None:
        run.probe.mark("fault undone")
    while run.undo:
        run.undo.pop()()
    run.finish()


def _spare_peering_node(walkthrough: StageMachine) -> Node:
    """A peering node whose loss does not take the backend with it (no nginx pod on it)."""
    topology = walkthrough.topology
    workload = topology.workload
    kube = walkthrough.target.kube
    backends = {pod.node for pod in observe.pods(kube, workload.namespace, f"app={workload.app_label}")}
    candidates = [node for node in topology.bgp_nodes if node.name not in backends]
    expect(
        bool(candidates),
        "a peering node without an nginx pod, to take away without the backend",
        f"nginx runs on {sorted(backends)}, the peering nodes are {[n.name for n in topology.bgp_nodes]}",
    )
    return candidates[0]


def _sessions_back(walkthrough: StageMachine) -> None:
    try:
        walkthrough.wait_sessions(SessionState.ESTABLISHED, Stage.PEERING, "fault undone -> sessions up")
    except WaitTimeout:
        walkthrough.forget_stage()  # the next scenario starts from a fresh target


@when("a peering node that does not run nginx loses its link")
def node_loses_link(walkthrough: StageMachine, probe_run: ProbeRun) -> None:
    """Its link comes back after the scenario, and the run waits for its session before the next one."""
    node = _spare_peering_node(walkthrough)
    faults = walkthrough.target.faults

    def restore() -> None:
        faults.restore_node(node.name)
        _sessions_back(walkthrough)

    probe_run.node = node.name
    probe_run.fault_at = probe_run.probe.mark(f"{node.name} loses its link")
    faults.isolate_node(node.name)
    probe_run.undo.append(restore)


@when("the Cilium agent of a peering node that does not run nginx restarts")
def agent_restarts(walkthrough: StageMachine, probe_run: ProbeRun) -> None:
    """`kubectl delete pod` of that node's agent; its DaemonSet starts another."""
    node = _spare_peering_node(walkthrough)
    probe_run.node = node.name
    probe_run.fault_at = probe_run.probe.mark(f"the agent on {node.name} restarts")
    probe_run.restarted_pod = walkthrough.target.cilium.restart_agent(node.name)
    probe_run.undo.append(lambda: _sessions_back(walkthrough))


def _graceful_restart(walkthrough: StageMachine, evidence: Evidence, enabled: bool) -> None:
    """Set in the BGP configuration; a change resets the sessions, so the step waits until each peering
    node's agent reports the setting on an established session (`cilium bgp peers`)."""
    changed = walkthrough.set_graceful_restart(enabled)
    wanted = {node.name for node in walkthrough.topology.bgp_nodes}
    router = str(walkthrough.topology.router.address)

    def settings(peers: dict[str, list[BgpPeer]]) -> dict[str, str]:
        shown = {}
        for node in sorted(wanted):
            peer = next((p for p in peers.get(node, []) if p.peer_address == router), None)
            if peer is None:
                shown[node] = "no session"
                continue
            graceful = peer.graceful_restart
            on = graceful is not None and graceful.enabled
            shown[node] = f"{peer.session_state.value}, graceful restart {'on' if on else 'off'}"
        return shown

    state = f"established, graceful restart {'on' if enabled else 'off'}"
    waited = wait_for(
        lambda: settings(walkthrough.target.cilium.bgp_peers()),
        lambda shown: all(value == state for value in shown.values()),
        expected=f"every peering node's session with the router {state}",
        timeout=walkthrough.session_wait() + walkthrough.waits.routes,
    )
    evidence.json(f"cilium bgp peers ({'changed' if changed else 'already so'})", waited.value)


@given("graceful restart is on for the peering nodes")
def graceful_restart_on(walkthrough: StageMachine, evidence: Evidence) -> None:
    _graceful_restart(walkthrough, evidence, True)


@given("graceful restart is off for the peering nodes")
def graceful_restart_off(walkthrough: StageMachine, evidence: Evidence) -> None:
    _graceful_restart(walkthrough, evidence, False)


@when("the nginx LoadBalancer service is deleted")
def service_deleted(walkthrough: StageMachine, probe_run: ProbeRun) -> None:
    probe_run.fault_at = probe_run.probe.mark("service deleted")
    walkthrough.delete_service()


@when("the router restarts")
def router_restarts(walkthrough: StageMachine, probe_run: ProbeRun) -> None:
    """As its make restarts (FRR's daemons from the saved configuration, RouterOS `/system/reboot`)."""
    probe_run.fault_at = probe_run.probe.mark("the router restarts")
    probe_run.undo.append(lambda: _sessions_back(walkthrough))
    walkthrough.target.faults.restart_router()


def wait_requests_until(probe_run: ProbeRun, until: float, request_timeout: float) -> None:
    """Until the stream has answered a request started at `until` (probe clock) or later, so a judgement
    of the requests up to then sees them all."""
    wait_for(
        probe_run.probe.requests,
        lambda answered: any(r.started >= until for r in answered),
        expected=f"requests answered until {until:.1f} s into the probe",
        timeout=max(0.0, until - probe_run.probe.now()) + request_timeout + 5,
        describe=lambda answered: (
            f"{len(answered)} answered, the last at {answered[-1].started:.1f} s"
            if answered
            else "no request answered"
        ),
    )


def _with_timeline_on_failure(step: Callable[..., None]) -> Callable[..., None]:
    """A Then step whose failure comes with the timeline that shows it: the probe is stopped and its
    timeline recorded before the failure is reported (otherwise the scenario's end records it)."""

    @functools.wraps(step)
    def judged(*args: Any, **kwargs: Any) -> None:
        try:
            step(*args, **kwargs)
        except Exception:
            kwargs["probe_run"].finish()
            raise

    return judged


@then("the router withdraws that node's path to the LB IP within the hold time")
@_with_timeline_on_failure
def path_withdrawn(walkthrough: StageMachine, evidence: Evidence, probe_run: ProbeRun) -> None:
    """The router's hold timer is the topology's (`bgp.timers.hold`); the path must leave its BGP table
    by then, give or take the router's own lag in acting and being sampled."""
    topology = walkthrough.topology
    node = next(n for n in topology.bgp_nodes if n.name == probe_run.node)
    fault_at = probe_run.fault_at or 0.0
    hold = topology.bgp.timers.hold
    hop = str(node.address)

    def withdrawn(samples: list[RouterSample]) -> bool:
        return any(s.at > fault_at and hop not in s.paths for s in samples)

    def wait() -> None:
        wait_for(
            probe_run.probe.router_samples,
            withdrawn,
            expected=f"the router's path to the LB IP via {hop} ({node.name}) gone within the hold time "
            f"({hold} s) of the link going down",
            timeout=max(0.0, fault_at + hold + ROUTER_LAG - probe_run.probe.now()),
            describe=_last,
        )

    wait()
    first = next(s for s in probe_run.probe.router_samples() if s.at > fault_at and hop not in s.paths)
    probe_run.withdrawn_at = first.at
    walkthrough.evidence.timing("faults", "fault -> path withdrawn at the router", first.at - fault_at)
    evidence.text("router samples", f"path via {hop} last seen before {first.at:.1f} s; {_last([first])}")


def _entries(walkthrough: StageMachine) -> dict[int, str]:
    by_address = {node.address: node.name for node in walkthrough.topology.nodes}
    client: IPv4Address = walkthrough.target.client.address
    found: dict[int, str] = {}
    for backend_node, log in walkthrough.nginx_logs():
        found |= entry_nodes(log, client, backend_node, by_address)
    return found


@then("requests keep succeeding through the other peering nodes")
@_with_timeline_on_failure
def traffic_carried(walkthrough: StageMachine, evidence: Evidence, probe_run: ProbeRun) -> None:
    """Requests on the dead path may fail until the router withdraws it (plus `disruption.settle` for
    those in flight); from then on every request must succeed, through the nodes still there, and no
    stretch without an answer may exceed `disruption.max_gap` (unset: hold time plus a request's timeout)."""
    settings = walkthrough.topology.disruption
    fault_at = probe_run.fault_at or 0.0
    withdrawn_at = probe_run.withdrawn_at if probe_run.withdrawn_at is not None else fault_at
    settled = withdrawn_at + settings.settle
    window_end = settled + max(3.0, 10 / settings.rate)  # at least ten requests after settling

    wait_requests_until(probe_run, window_end, settings.request_timeout)
    timeline = probe_run.probe.snapshot()
    after: list[RequestSample] = [r for r in timeline.requests if settled <= r.started < window_end]
    failed = [r for r in after if not r.ok]
    expect(
        bool(after) and not failed,
        f"every request from {settled:.1f} s on (the path withdrawn, plus {settings.settle:g} s) answered",
        f"{len(failed)} of {len(after)} failed: "
        + "; ".join(f"#{r.sequence} at {r.started:.1f} s: {r.error or r.status}" for r in failed[:5]),
    )
    shown = timeline.figures(fault_at)
    bound = settings.max_gap
    if bound is None:
        bound = walkthrough.topology.bgp.timers.hold + settings.request_timeout
    expect(
        shown.longest_gap <= bound,
        f"no stretch over {bound:g} s without a successful answer (disruption.max_gap, else hold time "
        "plus one request's timeout)",
        f"{shown.longest_gap:g} s without one",
    )
    # Only while the router has no path via the node (a restarted agent may bring it back meanwhile).
    node = next(n for n in walkthrough.topology.bgp_nodes if n.name == probe_run.node)
    returned = next(
        (x.at for x in timeline.router if x.at > withdrawn_at and str(node.address) in x.paths), window_end
    )
    withdrawn = [r for r in after if r.ended < returned - settings.sample_interval]
    entered = _entries(walkthrough)
    through = sorted({entered[r.sequence] for r in withdrawn if r.sequence in entered})
    evidence.json("entry nodes of the requests while the path was withdrawn (nginx's access log)", through)
    expect(
        probe_run.node not in through,
        f"no request entering through {probe_run.node} while the router had no path via it",
        f"entered through {through}",
    )


@then("the LB IP's route leaves the router within the hold time")
@_with_timeline_on_failure
def route_gone(walkthrough: StageMachine, evidence: Evidence, probe_run: ProbeRun) -> None:
    hold = walkthrough.topology.bgp.timers.hold
    fault_at = probe_run.fault_at or 0.0

    def gone(samples: list[RouterSample]) -> bool:
        return any(s.at > fault_at and not s.paths and not s.nexthops for s in samples)

    def wait() -> None:
        wait_for(
            probe_run.probe.router_samples,
            gone,
            expected=f"no path and no route to the LB IP at the router within the hold time ({hold} s)",
            timeout=max(0.0, fault_at + hold + ROUTER_LAG - probe_run.probe.now()),
            describe=_last,
        )

    wait()
    first = next(s for s in probe_run.probe.router_samples() if s.at > fault_at and not s.paths)
    walkthrough.evidence.timing("faults", "service deleted -> route gone at the router", first.at - fault_at)
    evidence.text("router samples", f"the LB route last seen before {first.at:.1f} s")


def _agent_back(walkthrough: StageMachine, probe_run: ProbeRun) -> float:
    """The moment (probe clock) the restarted node's new agent runs ready and the router shows its
    session established again; waited for within the topology's session wait."""
    if probe_run.back_at is not None:
        return probe_run.back_at
    kube = walkthrough.target.kube
    node = next(n for n in walkthrough.topology.bgp_nodes if n.name == probe_run.node)
    hop = str(node.address)
    fault_at = probe_run.fault_at or 0.0

    def look() -> tuple[bool, list[RouterSample]]:
        agents = [p for p in observe.pods(kube, "kube-system", AGENT_SELECTOR) if p.node == node.name]
        ready = any(p.name != probe_run.restarted_pod and p.running_and_ready for p in agents)
        return ready, probe_run.probe.router_samples()

    def back(seen: tuple[bool, list[RouterSample]]) -> bool:
        ready, samples = seen
        return (
            ready
            and bool(samples)
            and samples[-1].at > fault_at
            and samples[-1].sessions.get(hop) == "established"
        )

    def wait() -> None:
        wait_for(
            look,
            back,
            expected=f"a new Cilium agent ready on {node.name} and its session with the router established",
            timeout=walkthrough.session_wait() + walkthrough.waits.pods_running,
            describe=lambda seen: f"agent ready: {seen[0]}; {_last(seen[1])}",
        )

    wait()
    probe_run.back_at = probe_run.probe.now()
    walkthrough.evidence.timing(
        "faults", "agent deleted -> new agent's session up", probe_run.back_at - fault_at
    )
    return probe_run.back_at


@then("the router keeps every path to the LB IP until the agent is back")
@_with_timeline_on_failure
def paths_kept(walkthrough: StageMachine, evidence: Evidence, probe_run: ProbeRun) -> None:
    """Graceful restart's promise (FACTS.md; Cilium's operation guide, "Cilium Agent Down"): the router
    keeps the restarting node's routes as stale while its agent is away, and the new agent refreshes
    them, so no sample from the restart until `disruption.settle` after the agent is back lacks a path."""
    settings = walkthrough.topology.disruption
    fault_at = probe_run.fault_at or 0.0
    back_at = _agent_back(walkthrough, probe_run)
    until = back_at + settings.settle

    def wait() -> None:
        wait_for(
            probe_run.probe.router_samples,
            lambda samples: bool(samples) and samples[-1].at >= until,
            expected=f"router samples until {until:.1f} s",
            timeout=settings.settle + settings.sample_interval + 10,
            describe=_last,
        )

    wait()
    peering = {str(node.address) for node in walkthrough.topology.bgp_nodes}
    window = [s for s in probe_run.probe.router_samples() if fault_at <= s.at <= until]
    missing = [(s.at, sorted(peering - set(s.paths))) for s in window if not peering <= set(s.paths)]
    if missing:
        timeline = probe_run.probe.snapshot()
        shown = timeline.figures(fault_at)
        expect(
            False,
            f"paths to the LB IP via every peering node {sorted(peering)} from the restart to {until:.1f} s",
            f"missing at {missing[0][0]:.1f} s: {missing[0][1]} ({len(missing)} of {len(window)} samples); "
            f"measured: {shown.failed} failed requests, longest gap {shown.longest_gap:g} s",
        )
    evidence.text(
        "router samples", f"{len(window)} samples from the restart on, every one with {sorted(peering)}"
    )


@then("no request fails")
@_with_timeline_on_failure
def no_request_fails(walkthrough: StageMachine, evidence: Evidence, probe_run: ProbeRun) -> None:
    """From the fault until `disruption.settle` after the agent is back, every request answered."""
    fault_at = probe_run.fault_at or 0.0
    until = _agent_back(walkthrough, probe_run) + walkthrough.topology.disruption.settle

    wait_requests_until(probe_run, until, walkthrough.topology.disruption.request_timeout)
    timeline = probe_run.probe.snapshot()
    during = [r for r in timeline.requests if fault_at <= r.started < until]
    failed = [r for r in during if not r.ok]
    shown = timeline.figures(fault_at)
    expect(
        bool(during) and not failed,
        f"every request from the restart to {until:.1f} s answered",
        f"{len(failed)} of {len(during)} failed, longest gap {shown.longest_gap:g} s: "
        + "; ".join(f"#{r.sequence} at {r.started:.1f} s: {r.error or r.status}" for r in failed[:5]),
    )


@then("the node's session is established again and its path to the LB IP comes back")
@_with_timeline_on_failure
def path_back(walkthrough: StageMachine, evidence: Evidence, probe_run: ProbeRun) -> None:
    node = next(n for n in walkthrough.topology.bgp_nodes if n.name == probe_run.node)
    hop = str(node.address)
    fault_at = probe_run.fault_at or 0.0
    _agent_back(walkthrough, probe_run)

    def wait() -> None:
        wait_for(
            probe_run.probe.router_samples,
            lambda samples: (
                bool(samples) and samples[-1].sessions.get(hop) == "established" and hop in samples[-1].paths
            ),
            expected=f"the router's session with {node.name} established and its path to the LB IP via {hop}",
            timeout=walkthrough.waits.routes,
            describe=_last,
        )

    wait()
    came = probe_run.probe.now()
    walkthrough.evidence.timing("faults", "agent deleted -> path back at the router", came - fault_at)
    evidence.text("router samples", f"path via {hop} back by {came:.1f} s")


@then("every session with the router is established again and the LB IP's paths come back")
@_with_timeline_on_failure
def router_back(walkthrough: StageMachine, evidence: Evidence, probe_run: ProbeRun) -> None:
    """Within the Cilium version's session wait (the nodes redial as their connect retry allows,
    `bgpconform.cilium.bgp_timers`) plus `waits.routes` for the paths. A router that came back
    without some neighbors is told apart from speakers that have not dialled yet."""
    topology = walkthrough.topology
    peering = {str(node.address): node.name for node in topology.bgp_nodes}
    fault_at = probe_run.fault_at or 0.0
    bound = walkthrough.session_wait() + walkthrough.waits.routes

    def back(sample: RouterSample) -> bool:
        established = all(sample.sessions.get(hop) == "established" for hop in peering)
        return sample.at > fault_at and established and set(peering) <= set(sample.paths)

    def describe(samples: list[RouterSample]) -> str:
        if not samples or samples[-1].at <= fault_at:
            return "no router sample since the restart"
        last = samples[-1]
        unknown = sorted(f"{name} ({hop})" for hop, name in peering.items() if hop not in last.sessions)
        shown = f"{_last(samples)}"
        if unknown:
            shown += f"; the router has no neighbor for {unknown}: its configuration came back without them"
        return shown

    def wait() -> None:
        wait_for(
            probe_run.probe.router_samples,
            lambda samples: any(back(s) for s in samples),
            expected=f"every peering node's session established at the router and its path to the LB IP, "
            f"within {bound:g} s of the restart (the Cilium version's session wait plus waits.routes)",
            timeout=max(0.0, fault_at + bound - probe_run.probe.now()),
            describe=describe,
        )

    wait()
    samples = probe_run.probe.router_samples()
    first = next(s for s in samples if back(s))
    down = [s for s in samples if fault_at < s.at < first.at]
    walkthrough.evidence.timing("faults", "router restart -> sessions and paths back", first.at - fault_at)
    evidence.text(
        "router samples",
        f"every session and path back at {first.at:.1f} s ({first.at - fault_at:.1f} s after the restart); "
        f"{len(down)} samples between, {len(probe_run.probe.sample_errors)} failed while the router was away",
    )
