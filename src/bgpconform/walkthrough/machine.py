"""The walkthrough as a stage machine: bring any target to any stage, from whatever stage it is in.

Stages, in order (FACTS.md and the walkthrough for what each one means):
  minimal      k3s without a CNI: nodes NotReady, CoreDNS and local-path Pending
  cilium       Cilium installed with BGP off: agents and operator run, nodes Ready
  bgp-enabled  `enable-bgp-control-plane=true`: agents restarted, waiting for the policy CRD
  bgp-ready    operator restarted: policy CRD served, agents ready
  peering      policy applied, peering nodes labelled, router configured: sessions established
  lb-ipam      pool, the nginx pod and its LoadBalancer service: IP allocated, /32 at the router

Going forward runs the walkthrough's actions. Going back from `lb-ipam` or `peering` removes what this
run added (labelled `bgpconform.io/owned` and `bgpconform.io/run=<run id>`); anything further back
resets the target. Every action goes through the target's ports, so the same machine drives the lab and
a real cluster, and every wait records its convergence time.

In verify mode (a real cluster the harness must not reinstall) the stages up to `peering` are checked,
never made: the same waits, read-only, and a cluster short of the stage fails them with what was seen.
Only `lb-ipam` is made, from the run's own pool, pod and service where the cluster has none.

The machine's waits hide their frames from a product failure (`__tracebackhide__`), so it points at
the step; a harness error keeps them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import Any, TypeVar

from bgpconform import checks, observe
from bgpconform.bgp_states import SessionState
from bgpconform.cilium import bgp_api, bgp_timers, cli_versions, node_config
from bgpconform.cilium.install import CiliumValues
from bgpconform.cilium.labels import AGENT_SELECTOR, OPERATOR_SELECTOR
from bgpconform.errors import HarnessError, NonConformance, product_failure
from bgpconform.evidence import Evidence
from bgpconform.kubeapi.port import KubeResource, Resources
from bgpconform.mode import Mode
from bgpconform.ownership import HARNESS_LABEL, RUN_LABEL
from bgpconform.stage import Stage
from bgpconform.targets.port import Target
from bgpconform.topology import Topology, Waits
from bgpconform.waiting import Waited, WaitTimeout, wait_for, wait_until
from bgpconform.walkthrough import manifests, newer

T = TypeVar("T")

BGP_CONFIG_KEY = "enable-bgp-control-plane"


class StageMachine:
    """Where the target stands in the walkthrough, and the actions that move it there from anywhere."""

    def __init__(
        self,
        target: Target,
        evidence: Evidence | None = None,
        *,
        mode: Mode = Mode.INSTALL,
        run_id: str = "bgpconform",
    ) -> None:
        self.target = target
        self.evidence = evidence or Evidence()
        self.mode = mode
        self.run_id = run_id
        self._stage: Stage | None = None  # None: unknown, so the next `bring_to` resets the target
        self._extra_objects = False  # a scenario added objects beyond its stage (extra pools, services)
        self._installed: tuple[Evidence, float] | None = None  # the scenario whose When installed, and when

    # -- what scenarios tell the machine -----------------------------------------------------------
    @property
    def stage(self) -> Stage | None:
        """Where the target stands, or None when nobody knows (a step failed midway)."""
        return self._stage

    def reached(self, stage: Stage) -> None:
        """A scenario walked the stage's actions itself, so the machine stands there now."""
        self._stage = stage

    def reached_at_least(self, stage: Stage) -> None:
        """As `reached`, but a later stage the machine already stands at is kept."""
        if self._stage is None or self._stage < stage:
            self._stage = stage

    def forget_stage(self) -> None:
        """After a failed step the target may be anywhere: the next scenario starts from a reset."""
        self._stage = None

    def added_extra_objects(self) -> None:
        """A scenario created objects beyond its stage; the next `bring_to` removes them first."""
        self._extra_objects = True

    @property
    def run_selector(self) -> str:
        """The label selector of every object this run created."""
        return f"{HARNESS_LABEL}=true,{RUN_LABEL}={self.run_id}"

    def create(
        self, resource: KubeResource, obj: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """Create an object labelled as this run's, so the run removes it and nothing else."""
        meta = obj.setdefault("metadata", {})
        meta["labels"] = {
            **meta.get("labels", {}),
            HARNESS_LABEL: "true",
            RUN_LABEL: self.run_id,
        }
        return self.target.kube.create(resource, obj, namespace)

    @property
    def topology(self) -> Topology:
        return self.target.topology

    # -- navigation --------------------------------------------------------------------------------
    def bring_to(self, stage: Stage) -> None:
        """Make the target be at `stage`, idempotently; safe after any scenario, passed or failed."""
        __tracebackhide__ = product_failure
        if self.mode is Mode.VERIFY:
            self._verify_to(stage)
            return
        if self._stage is not None and (self._stage > stage or self._extra_objects):
            self._retreat(stage)
        if self._stage is None:
            self.target.reset()
            self._stage = Stage.MINIMAL
            self.wait_nodes_registered()
        forward: dict[Stage, Callable[[], object]] = {
            Stage.CILIUM: self.install_cilium,
            Stage.BGP_ENABLED: self.enable_bgp,
            Stage.BGP_READY: self.make_bgp_ready,
            Stage.PEERING: self.peer,
            Stage.LB_IPAM: self.expose_nginx,
        }
        while self._stage < stage:
            forward[Stage(self._stage + 1)]()

    def _retreat(self, stage: Stage) -> None:
        if stage >= Stage.PEERING and self._stage is not None and self._stage >= Stage.PEERING:
            self.remove_harness_lb_objects()
            self._stage, self._extra_objects = Stage.PEERING, False
            return
        if stage == Stage.BGP_READY and self._stage is not None and self._stage >= Stage.BGP_READY:
            self.remove_harness_lb_objects()
            self.unpeer()
            self._stage, self._extra_objects = Stage.BGP_READY, False
            return
        self._stage, self._extra_objects = None, False

    def bring_to_at_least(self, stage: Stage) -> None:
        """For read-only scenarios: any later stage satisfies them as well, so nothing is undone."""
        __tracebackhide__ = product_failure
        if self._stage is not None and self._stage >= stage:
            return
        self.bring_to(stage)

    # -- verify mode -------------------------------------------------------------------------------
    def _verify_to(self, stage: Stage) -> None:
        __tracebackhide__ = product_failure
        if stage < Stage.CILIUM:
            raise HarnessError(
                f"verify mode cannot bring the cluster to stage {stage.label!r}: that means uninstalling "
                "Cilium; the scenario asking for it should have been deselected (tag @destructive)"
            )
        if self._stage is None or self._extra_objects or self._stage > stage:
            # This run's objects only (the cluster's own pool and service stay); after a failed step
            # (current None) too, so what that scenario left cannot fail the next one.
            self.remove_harness_lb_objects()
            if self._stage is not None:
                self._stage = min(self._stage, Stage.PEERING)
            self._extra_objects = False
        if self._stage is None or self._stage < min(stage, Stage.PEERING):
            for confirmed in range(Stage.CILIUM, min(stage, Stage.PEERING) + 1):
                self._confirm(Stage(confirmed))
            self._stage = min(stage, Stage.PEERING)
        if stage == Stage.LB_IPAM and self._stage < Stage.LB_IPAM:
            self.expose_nginx()
        self._stage = max(self._stage, stage)

    def _confirm(self, stage: Stage) -> None:
        """Check, without changing anything, that the cluster is at `stage`."""
        __tracebackhide__ = product_failure
        checks: dict[Stage, Callable[[], object]] = {
            Stage.CILIUM: self.confirm_cilium,
            Stage.BGP_ENABLED: self.confirm_bgp_enabled,
            Stage.BGP_READY: self.confirm_bgp_ready,
            Stage.PEERING: lambda: self.wait_sessions(
                SessionState.ESTABLISHED, Stage.PEERING, "verify: every session established"
            ),
        }
        try:
            checks[stage]()
        except WaitTimeout as exc:
            raise NonConformance(
                f"verify mode expects the cluster at stage {stage.label!r} already; it is not:\n{exc}",
                expected=exc.expected,
                observed=exc.observed,
            ) from exc

    def confirm_cilium(self) -> None:
        __tracebackhide__ = product_failure
        kube = self.target.kube
        self._wait(
            Stage.CILIUM,
            "verify: every node Ready",
            lambda: wait_until(
                lambda: observe.nodes(kube),
                checks.EveryNodeReady(self.every_node_ready.nodes, named_only=True),
                timeout=self.waits.nodes_ready,
            ),
        )
        self._wait(
            Stage.CILIUM,
            "verify: Cilium agents and operator running",
            lambda: wait_for(
                lambda: (
                    observe.pods(kube, "kube-system", AGENT_SELECTOR)
                    + observe.pods(kube, "kube-system", OPERATOR_SELECTOR)
                ),
                lambda views: (
                    any("operator" in v.name for v in views)
                    and sum("operator" not in v.name for v in views) >= len(self.topology.nodes)
                    and all(v.status == "Running" for v in views)
                ),
                expected=f"{len(self.topology.nodes)} Cilium agents and an operator Running",
                timeout=self.waits.pods_running,
                describe=observe.pod_table,
            ),
        )

    def confirm_bgp_ready(self) -> None:
        __tracebackhide__ = product_failure
        self.wait_policy_resource()
        self.wait_agents_ready()

    def bgp_setting_per_node(self) -> dict[str, node_config.Setting]:
        """enable-bgp-control-plane as each peering node's agent reads it (ConfigMap, then overrides)."""
        nodes = [node.name for node in self.topology.bgp_nodes]
        return node_config.per_node(self.target.kube, BGP_CONFIG_KEY, nodes)

    def confirm_bgp_enabled(self) -> None:
        __tracebackhide__ = product_failure
        settings = self.bgp_setting_per_node()
        finding = checks.SettingOnEveryNode(BGP_CONFIG_KEY, "true")(settings)
        if not finding.holds:
            seen = "; ".join(f"{n}: {BGP_CONFIG_KEY}={s.value!r} ({s.source})" for n, s in settings.items())
            raise NonConformance(
                f"verify mode expects the BGP control plane enabled; {seen}",
                expected=finding.expected,
                observed=finding.observed,
            )

    def _wait(self, stage: Stage, name: str, waited: Callable[[], Waited[T]]) -> T:
        __tracebackhide__ = product_failure  # a timeout points at the step that asked for the stage
        result = waited()
        self.evidence.timing(stage.label, name, result.elapsed)
        return result.value

    @property
    def waits(self) -> Waits:
        return self.topology.waits

    # -- minimal -----------------------------------------------------------------------------------
    @property
    def every_node_ready(self) -> checks.EveryNodeReady:
        return checks.EveryNodeReady(frozenset(node.name for node in self.topology.nodes))

    def wait_nodes_registered(self) -> list[observe.NodeView]:
        __tracebackhide__ = product_failure
        registered = checks.EveryNodeRegistered(frozenset(node.name for node in self.topology.nodes))
        return self._wait(
            Stage.MINIMAL,
            "start -> every node registered",
            lambda: wait_until(
                lambda: observe.nodes(self.target.kube), registered, timeout=self.waits.nodes_ready
            ),
        )

    # -- cilium ------------------------------------------------------------------------------------
    def start_cilium_install(self) -> None:
        """`cilium install` with the walkthrough's settings, and nothing more: what a scenario's When
        does, leaving its Then steps to wait for what the install promises."""
        installer = self.target.installer
        self._installed = (self.evidence, time.monotonic())
        installer.install(CiliumValues.for_topology(self.topology, installer.tool))
        self._stage = Stage.CILIUM

    def since_install(self, name: str) -> None:
        """In a Then after its scenario's own install: the time from `cilium install` to what the Then
        saw, under the stage's timings as a Background's install records them (none otherwise)."""
        if self._installed is not None and self._installed[0] is self.evidence:
            self.evidence.timing(Stage.CILIUM.label, name, time.monotonic() - self._installed[1])

    def install_cilium(self) -> None:
        """`cilium install`, then every node Ready and every pod running (the stage, as a Background
        needs it)."""
        __tracebackhide__ = product_failure
        began = time.monotonic()
        self.start_cilium_install()
        kube = self.target.kube
        self._wait(
            Stage.CILIUM,
            "install -> every node Ready",
            lambda: wait_until(
                lambda: observe.nodes(kube), self.every_node_ready, timeout=self.waits.nodes_ready
            ),
        )
        self._wait(
            Stage.CILIUM,
            "install -> every pod Running and ready",
            lambda: wait_until(
                lambda: observe.pods(kube),
                checks.PodsRunningAndReady("every pod"),
                timeout=self.waits.pods_running,
            ),
        )
        self.evidence.timing(Stage.CILIUM.label, "install -> cluster settled", time.monotonic() - began)
        self._stage, self._installed = Stage.CILIUM, None  # timed here: no Then times it again

    # -- bgp ---------------------------------------------------------------------------------------
    def start_enable_bgp(self) -> list[str]:
        """`cilium config set enable-bgp-control-plane true` and nothing more (a scenario's When);
        returns the agent pods it deleted."""
        replaced = self.target.cilium.config_set(BGP_CONFIG_KEY, "true")
        self._stage = Stage.BGP_ENABLED
        return replaced

    def wait_agents_replaced(self, before: frozenset[str]) -> list[observe.PodView]:
        """Every node's agent replaced by a running new one, none of `before` left."""
        __tracebackhide__ = product_failure
        kube = self.target.kube
        nodes = frozenset(node.name for node in self.topology.nodes)
        return self._wait(
            Stage.BGP_ENABLED,
            "config set -> every agent replaced",
            lambda: wait_until(
                lambda: observe.pods(kube, "kube-system", AGENT_SELECTOR),
                checks.AgentsReplaced(before, nodes),
                timeout=self.waits.pods_running,
            ),
        )

    def wait_operators_replaced(self, before: frozenset[str]) -> list[observe.PodView]:
        """Every operator pod of `before` replaced by a new one that runs ready (CRDs registered)."""
        __tracebackhide__ = product_failure
        kube = self.target.kube
        return self._wait(
            Stage.BGP_ENABLED,
            "config set -> every operator replaced",
            lambda: wait_until(
                lambda: observe.pods(kube, "kube-system", OPERATOR_SELECTOR),
                checks.PodsReplaced("the Cilium operator", before),
                timeout=self.waits.pods_running + self.waits.crd_registered,
            ),
        )

    @property
    def config_set_restarts_operator(self) -> bool:
        """Whether the run's cilium-cli restarts the operator on `config set` (v0.18.7+, FACTS.md)."""
        return cli_versions.config_set_restarts_operator(str(self.topology.cluster.cilium_cli_version))

    def enable_bgp(self) -> list[str]:
        """The config change and the restarts it brings (the stage, as a Background needs it)."""
        __tracebackhide__ = product_failure
        kube = self.target.kube
        agents = frozenset(p.name for p in observe.pods(kube, "kube-system", AGENT_SELECTOR))
        operators = frozenset(p.name for p in observe.pods(kube, "kube-system", OPERATOR_SELECTOR))
        replaced = self.start_enable_bgp()
        self.wait_agents_replaced(agents)
        if self.config_set_restarts_operator:
            self.wait_operators_replaced(operators)
        return replaced

    @property
    def bgp_resources(self) -> tuple[KubeResource, ...]:
        """What must be served to configure BGP on the topology's API (`bgp_api`, FACTS.md)."""
        return bgp_api.configuration_resources(
            str(self.topology.cluster.cilium_version), self.topology.bgp_api
        )

    def served_bgp_resources(self) -> list[str]:
        """Which of `bgp_resources` the API serves now, as `plural` under their group version."""
        served: list[str] = []
        for group_version in sorted({r.api_version for r in self.bgp_resources}):
            names = {r.get("name") for r in self.target.kube.api_resources(group_version)}
            served += [
                r.plural for r in self.bgp_resources if r.api_version == group_version and r.plural in names
            ]
        return served

    def policy_resource_served(self) -> bool:
        return len(self.served_bgp_resources()) == len(self.bgp_resources)

    def restart_operator(self) -> list[str]:
        """Delete the operator pod (the walkthrough's fix) and wait for its successor to run."""
        __tracebackhide__ = product_failure
        kube = self.target.kube
        before = {p.name for p in observe.pods(kube, "kube-system", OPERATOR_SELECTOR)}
        deleted = self.target.cilium.restart_operator()
        self._wait(
            Stage.BGP_READY,
            "operator pod deleted -> new operator running",
            lambda: wait_for(
                lambda: observe.pods(kube, "kube-system", OPERATOR_SELECTOR),
                lambda views: (
                    bool(views)
                    and not {v.name for v in views} & before
                    and all(v.running_and_ready for v in views)
                ),
                expected=f"a new cilium-operator pod running in place of {sorted(before)}",
                timeout=self.waits.pods_running,
                describe=observe.pod_table,
            ),
        )
        return deleted

    def wait_policy_resource(self) -> None:
        __tracebackhide__ = product_failure
        self._wait(
            Stage.BGP_READY,
            "new operator running -> policy CRD served",
            lambda: wait_for(
                self.served_bgp_resources,
                lambda served: len(served) == len(self.bgp_resources),
                expected="served: " + ", ".join(f"{r.plural} ({r.api_version})" for r in self.bgp_resources),
                timeout=self.waits.crd_registered,
            ),
        )

    def wait_agents_ready(self) -> list[observe.PodView]:
        __tracebackhide__ = product_failure
        return self._wait(
            Stage.BGP_READY,
            "policy CRD served -> every agent ready",
            lambda: wait_until(
                lambda: observe.pods(self.target.kube, "kube-system", AGENT_SELECTOR),
                checks.PodsRunningAndReady("every agent"),
                timeout=self.waits.pods_running,
            ),
        )

    def make_bgp_ready(self) -> None:
        """The walkthrough's operator restart by hand, which a cilium-cli from v0.18.7 has already done."""
        __tracebackhide__ = product_failure
        if not self.config_set_restarts_operator:
            self.restart_operator()
        self.wait_policy_resource()
        self.wait_agents_ready()
        self._stage = Stage.BGP_READY

    # -- peering -----------------------------------------------------------------------------------
    def apply_policy(self) -> list[dict[str, Any]]:
        """The BGP configuration in the cluster (each object created unless there): the peering policy
        on v1, the peer config, advertisement and cluster config on v2, as the API server keeps them."""
        kube = self.target.kube
        kept: list[dict[str, Any]] = []
        for resource, body in manifests.bgp_configuration(self.topology):
            found = kube.get_or_none(resource, body["metadata"]["name"])
            kept.append(found if found is not None else self.create(resource, body))
        return kept

    def set_graceful_restart(self, enabled: bool) -> bool:
        """Graceful restart on or off in the BGP configuration the harness applied (1.14+ policies and
        BGPv2 peer configs carry it); True when something changed, which resets the sessions."""
        kube = self.target.kube
        restart_time = self.topology.disruption.graceful_restart_time
        changed = False
        for resource, body in manifests.bgp_configuration(self.topology):
            found = kube.get_or_none(resource, body["metadata"]["name"])
            patch = manifests.graceful_restart_patch(found, enabled, restart_time) if found else None
            if patch is not None:
                kube.patch(resource, body["metadata"]["name"], patch)
                changed = True
        return changed

    def label_peering_nodes(self) -> None:
        labels = dict(self.topology.bgp.node_selector)
        for node in self.topology.bgp_nodes:
            self.target.kube.patch(Resources.NODES, node.name, {"metadata": {"labels": labels}})

    def configure_router(self) -> None:
        self.target.router.configure_peers(self.target.router_peers())

    def peering_states(self) -> dict[str, str]:
        per_node = self.target.cilium.bgp_peers()
        router = str(self.topology.router.address)
        return {
            node: next((str(p.session_state) for p in peers if p.peer_address == router), "none")
            for node, peers in per_node.items()
        }

    def node_config_peer_states(self) -> dict[str, str]:
        """BGPv2 1.17+: the router's `peeringState` in each CiliumBGPNodeConfig's status ("none" when
        the status does not list it)."""
        kinds = bgp_api.v2_resources(str(self.topology.cluster.cilium_version))
        router = str(self.topology.router.address)
        states: dict[str, str] = {}
        for written in self.target.kube.items_if_served(kinds.node_configs):
            instances = (written.get("status") or {}).get("bgpInstances") or []
            peers = [p for instance in instances for p in instance.get("peers") or []]
            found = next((p for p in peers if p.get("peerAddress") == router), None)
            states[written["metadata"]["name"]] = str((found or {}).get("peeringState") or "none")
        return states

    def wait_sessions(self, state: SessionState, stage: Stage, name: str) -> dict[str, str]:
        __tracebackhide__ = product_failure
        wanted = checks.SessionsInState(frozenset(node.name for node in self.topology.bgp_nodes), state)
        return self._wait(
            stage,
            name,
            lambda: wait_until(self.peering_states, wanted, timeout=self.session_wait()),
        )

    def pod_cidrs(self) -> dict[str, tuple[IPv4Network, str]]:
        """Each peering node's IPv4 pod CIDR as the cluster assigned it, and where it was read.

        Cilium's IPAM decides it, not the topology (FACTS.md, "What a real cluster does"): cluster-pool
        writes `CiliumNode.spec.ipam.podCIDRs`, `ipam.mode=kubernetes` takes `Node.spec.podCIDR`. The
        topology's `pod_cidr` is used only when the cluster says nothing at all, and the source says
        so; a node with none anywhere is a node IPAM never served, a non-conformance."""
        __tracebackhide__ = product_failure
        kube = self.target.kube
        found: dict[str, tuple[IPv4Network, str]] = {}
        cilium_nodes = {n["metadata"]["name"]: n for n in kube.items_if_served(Resources.CILIUM_NODES)}
        missing: list[str] = []
        for node in self.topology.bgp_nodes:
            cilium_cidrs = (
                ((cilium_nodes.get(node.name) or {}).get("spec") or {}).get("ipam", {}).get("podCIDRs")
            )
            ipv4 = [IPv4Network(c) for c in cilium_cidrs or [] if ":" not in c]
            if ipv4:
                found[node.name] = (ipv4[0], f"CiliumNode {node.name} spec.ipam.podCIDRs")
                continue
            api_node = kube.get_or_none(Resources.NODES, node.name) or {}
            assigned = (api_node.get("spec") or {}).get("podCIDR")
            if assigned and ":" not in assigned:
                found[node.name] = (IPv4Network(assigned), f"Node {node.name} spec.podCIDR")
            elif node.pod_cidr is not None:
                found[node.name] = (node.pod_cidr, "the topology (the cluster assigns none)")
            else:
                missing.append(node.name)
        if missing:
            raise NonConformance(
                f"no pod CIDR assigned to {', '.join(missing)}",
                expected="every peering node with a pod CIDR in its CiliumNode (spec.ipam.podCIDRs) or Node",
                observed=f"none for {', '.join(missing)}; assigned: "
                + (", ".join(f"{n} {c}" for n, (c, _) in found.items()) or "none"),
            )
        return found

    def session_wait(self) -> float:
        """The topology's bound, or as long as the Cilium version's nodes take to redial (FACTS.md)."""
        chosen = self.waits.sessions_established
        if chosen is not None:
            return chosen
        version = str(self.topology.cluster.cilium_version)
        retry = self.topology.bgp.timers.connect_retry  # what the harness's policy sets from 1.14
        return bgp_timers.node_dialling(version, policy_connect_retry=retry).established_within

    def peer(self) -> None:
        """The stage as a Background needs it. The router learns the nodes first, so each node's first
        dial (5-10 s after its policy selects it) succeeds; in the walkthrough's order the router comes
        last and 1.13's nodes redial only 120-239 s later (FACTS.md). The scenario that asserts the
        transition keeps the walkthrough's order and pays that wait."""
        __tracebackhide__ = product_failure
        self.configure_router()
        self.apply_policy()
        self.label_peering_nodes()
        self.wait_sessions(
            SessionState.ESTABLISHED, Stage.PEERING, "router configured -> every session established"
        )
        self._stage = Stage.PEERING

    def unpeer(self) -> None:
        kube = self.target.kube
        for resource, body in reversed(manifests.bgp_configuration(self.topology)):
            kube.delete(resource, body["metadata"]["name"])
        unlabel = {"metadata": {"labels": {key: None for key in self.topology.bgp.node_selector}}}
        for node in self.topology.nodes:
            kube.patch(Resources.NODES, node.name, unlabel)
        self.target.router.remove_peers()

    # -- lb-ipam -----------------------------------------------------------------------------------
    def create_newer_than(
        self, resource: KubeResource, obj: dict[str, Any], older: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Create `obj` (as this run's) stamped a later second than `older` (`walkthrough.newer`)."""
        return newer.create_newer_than(
            self.target.kube,
            lambda body: self.create(resource, body),
            resource,
            obj,
            older,
            delete_timeout=self.waits.crd_registered,
        )

    def create_pool(self, index: int = 0) -> dict[str, Any]:
        pool = manifests.lb_pool(self.topology.lb_pools[index], str(self.topology.cluster.cilium_version))
        existing = self.target.kube.get_or_none(Resources.LB_IP_POOLS, pool["metadata"]["name"])
        return existing or self.create(Resources.LB_IP_POOLS, pool)

    def ensure_namespace(self) -> None:
        """The topology may put the workload in a namespace of its own; create it once, keep it after."""
        name = self.topology.workload.namespace
        if self.target.kube.get_or_none(Resources.NAMESPACES, name) is None:
            self.create(Resources.NAMESPACES, manifests.namespace(name))

    def create_nginx(self) -> None:
        self.ensure_namespace()
        pod = manifests.nginx_pod(self.topology)
        meta = pod["metadata"]
        if self.target.kube.get_or_none(Resources.PODS, meta["name"], meta["namespace"]) is None:
            self.create(Resources.PODS, pod, meta["namespace"])

    def create_service(self, name: str | None = None, annotations: dict[str, str] | None = None) -> str:
        self.ensure_namespace()
        service = manifests.lb_service(self.topology, name, annotations=annotations)
        meta = service["metadata"]
        if self.target.kube.get_or_none(Resources.SERVICES, meta["name"], meta["namespace"]) is None:
            self.create(Resources.SERVICES, service, meta["namespace"])
        return str(meta["name"])

    def service(self, name: str | None = None) -> dict[str, Any]:
        workload = self.topology.workload
        return self.target.kube.get(Resources.SERVICES, name or workload.service_name, workload.namespace)

    def delete_service(self) -> None:
        """The walkthrough's service deleted, as a user would; the next `bring_to` exposes nginx again."""
        workload = self.topology.workload
        self.target.kube.delete(Resources.SERVICES, workload.service_name, workload.namespace)
        self._extra_objects = True

    def service_address(self, name: str | None = None) -> IPv4Address:
        """The LB IP the walkthrough's service holds now."""
        ingress = self.service(name).get("status", {}).get("loadBalancer", {}).get("ingress") or []
        if not ingress or not ingress[0].get("ip"):
            raise HarnessError(f"service {name or self.topology.workload.service_name} has no LB IP yet")
        return IPv4Address(ingress[0]["ip"])

    def service_url(self, name: str | None = None) -> str:
        """`http://<LB IP>:<port>/` of the walkthrough's service, as the outside client asks for it."""
        return f"http://{self.service_address(name)}:{self.topology.workload.port}/"

    def nginx_logs(self) -> list[tuple[str, str]]:
        """Each nginx pod's node and access log (`kubectl logs`), where the steps read entry nodes."""
        workload = self.topology.workload
        pods = observe.pods(self.target.kube, workload.namespace, f"app={workload.app_label}")
        return [
            (pod.node, self.target.kube.pod_log(pod.name, manifests.NGINX_CONTAINER, pod.namespace))
            for pod in pods
        ]

    def wait_service_ip(self, name: str | None = None) -> IPv4Address:
        __tracebackhide__ = product_failure
        status = self._wait(
            Stage.LB_IPAM,
            "service created -> external IP allocated",
            lambda: wait_for(
                lambda: self.service(name).get("status", {}),
                lambda status: bool(status.get("loadBalancer", {}).get("ingress")),
                expected=f"service {name or self.topology.workload.service_name} to get an external IP",
                timeout=self.waits.ip_allocated,
            ),
        )
        return IPv4Address(status["loadBalancer"]["ingress"][0]["ip"])

    def router_next_hops(self, prefixes: Sequence[IPv4Network]) -> dict[IPv4Network, set[IPv4Address]]:
        """Per prefix, the next hops of the router's BGP routes to it."""
        router = self.target.router
        return {
            prefix: {hop for route in router.bgp_routes(prefix) for hop in route.nexthops}
            for prefix in prefixes
        }

    def wait_route(self, address: IPv4Address) -> set[IPv4Address]:
        __tracebackhide__ = product_failure
        prefix = IPv4Network(f"{address}/32")
        wanted = checks.RoutesViaNodes({prefix: frozenset(node.address for node in self.topology.bgp_nodes)})
        table = self._wait(
            Stage.LB_IPAM,
            "external IP allocated -> /32 at the router from every peering node",
            lambda: wait_until(lambda: self.router_next_hops([prefix]), wanted, timeout=self.waits.routes),
        )
        return set(table[prefix])

    def wait_nginx_running(self) -> list[observe.PodView]:
        __tracebackhide__ = product_failure
        workload = self.topology.workload
        return self._wait(
            Stage.LB_IPAM,
            "nginx pod created -> Running and ready",
            lambda: wait_until(
                lambda: observe.pods(self.target.kube, workload.namespace, f"app={workload.app_label}"),
                checks.PodsRunningAndReady(f"pod {workload.pod_name}"),
                timeout=self.waits.pods_running,
            ),
        )

    def expose_nginx(self) -> None:
        """The stage ends with nginx serving behind an announced LB IP (the walkthrough's order)."""
        __tracebackhide__ = product_failure
        self.create_pool()
        self.create_nginx()
        self.wait_nginx_running()
        self.create_service()
        address = self.wait_service_ip()
        self.wait_route(address)
        self._stage = Stage.LB_IPAM

    def remove_run_objects(self) -> None:
        """At the end of a run on a cluster it did not build: its services, pods, pools and namespaces."""
        self.remove_harness_lb_objects()
        for namespace in self.target.kube.items(Resources.NAMESPACES, label_selector=self.run_selector):
            self.target.kube.delete(Resources.NAMESPACES, namespace["metadata"]["name"])

    def remove_harness_lb_objects(self) -> None:
        kube = self.target.kube
        selector = self.run_selector
        for service in kube.items(Resources.SERVICES, label_selector=selector):
            kube.delete(Resources.SERVICES, service["metadata"]["name"], service["metadata"]["namespace"])
        for pod in kube.items(Resources.PODS, label_selector=selector):
            kube.delete(Resources.PODS, pod["metadata"]["name"], pod["metadata"]["namespace"])
        for pool in kube.items_if_served(Resources.LB_IP_POOLS, label_selector=selector):
            kube.delete(Resources.LB_IP_POOLS, pool["metadata"]["name"])
        wait_for(
            lambda: (
                kube.items(Resources.SERVICES, label_selector=selector)
                + kube.items(Resources.PODS, label_selector=selector)
            ),
            lambda left: not left,
            expected="this run's services and pods removed",
            timeout=self.waits.pods_running,
            describe=lambda left: [o["metadata"]["name"] for o in left],
        )
