"""The emulated Cilium 1.13 agent of one node: config, CRD wait, CNI config, BGP control plane, service NAT.

What it does, in the order a real agent does it (FACTS.md, "Cilium: CRD registration, config, logs"):
- reads ConfigMap `kube-system/cilium-config` once at start: a change only takes effect in a new
  agent, which is why `cilium config set` deletes the agent pods;
- with `enable-bgp-control-plane: "true"` it needs `ciliumbgppeeringpolicies.cilium.io`; while that is
  not served it is not ready (pod 0/1) and logs the walkthrough's `k8sError` line on every failed list,
  retrying with a capped backoff like client-go's reflector, and after `crd_wait_timeout` (Cilium's
  `crd-wait-timeout`, 5m) it exits fatally so the kubelet restarts it;
- once its resources sync it writes `05-cilium.conflist` (the kubelet then marks the node Ready) and
  runs two level-triggered controllers: BGP (`bgp_control` decisions applied to GoBGP speakers in the
  node's namespace) and the service datapath (`ServiceDatapath` for this node only);
- answers `cilium bgp peers [-o json]`, `cilium version` and `cilium status --brief` by exec.

Deviations from Cilium 1.13, none visible to a step beyond what is said here:
- BGP timers: as 1.13, none: GoBGP's defaults dial (first dial 5-10 s after a neighbor is added, then
  every 120-239 s; FACTS.md). The shortcut `short-bgp-timers` (`bgpconform.lab.shortcuts`) dials with
  the topology's `bgp.timers` instead, as cilium-cli's own BGP tests shorten them; `router-dials`
  makes one speaker per node listen on port 179, so the router's dial brings sessions up too (Cilium's
  GoBGP only dials out); reports say so.
- GoBGP is a separate `gobgpd` per virtual router instead of embedded; a change of ASN or neighbor set
  restarts it (Cilium adds and removes peers in place), resetting that router's sessions.
- The pod CIDR announced is the topology's (the wire routes it); the CiliumNode is created with it
  when the CRD is served and never overwritten.
- The reflector's backoff is 1 s doubling to `list_backoff_max` (5 s) instead of client-go's 0.8 s
  to 30 s, so the lab converges soon after the operator registers the CRD.
- Startup log lines resemble 1.13's; the version line names the lab instead of a git commit, and the
  fatal CRD-timeout wording is unverified.
- `cni-uninstall: "true"` (1.13's default) removes the CNI config when the agent stops for good (its
  DaemonSet gone: `cilium uninstall`), so the nodes go NotReady; 1.13 removes it at every shutdown and
  writes it again at the next start, a brief NotReady the lab leaves out. The datapath stays, as BPF
  maps outlive the agent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bgpconform.bgp_states import SessionState
from bgpconform.cilium.bgp_peers import (
    BgpPeer,
    GracefulRestart,
    PeerFamily,
    agent_json,
    format_uptime,
    tabwriter,
)
from bgpconform.cilium.versions import cilium_minor, image_version
from bgpconform.errors import HarnessError
from bgpconform.kubeapi.client import JSON_PATCH, ApiException, Kube, KubeResource, Resources, new_api_client
from bgpconform.lab import defects, shortcuts
from bgpconform.lab.apiserver.exec_registry import ExecResult
from bgpconform.lab.cilium.agent_services import Memo, desired_entries, slices_from_pods
from bgpconform.lab.cilium.bgp_control import (
    BgpDecision,
    NodeBgpConfig,
    PolicyConflict,
    VirtualRouter,
    node_bgp_config,
    node_bgp_config_v2,
)
from bgpconform.lab.cilium.crds import BGP_V2, BGP_V2_ALPHA, BGPP, bgp_crds
from bgpconform.lab.cilium.node_status import node_status
from bgpconform.lab.cilium.pod_network import NodeRoutesController, PodCidrWait
from bgpconform.lab.cilium.selectors import matches
from bgpconform.lab.cluster.controller import Controller
from bgpconform.lab.datapath import ServiceDatapath
from bgpconform.lab.gobgp import GoBgpSpeaker, Neighbor, SpeakerPeer, Timers

if TYPE_CHECKING:
    from bgpconform.lab.cluster.runtime import ContainerContext
    from bgpconform.lab.network import LabNetwork
    from bgpconform.topology import Node, Topology

log = logging.getLogger(__name__)

CONFIG_NAMESPACE = "kube-system"
CONFIG_MAP = "cilium-config"
CNI_CONFIG_NAME = "05-cilium.conflist"
AGENT_DAEMONSET = "cilium"  # as cilium-cli and Helm name it
BGP_CRD = "ciliumbgppeeringpolicies.cilium.io"
CILIUM_NODE_CRD = "ciliumnodes.cilium.io"
# The walkthrough's line (its line 178), `resource.go:183` being the reflector's caller in 1.13.
BGP_CRD_MISSING = (
    'level=error msg=k8sError error="github.com/cilium/cilium/pkg/k8s/resource/resource.go:183: '
    "Failed to watch *v2alpha1.CiliumBGPPeeringPolicy: failed to list *v2alpha1.CiliumBGPPeeringPolicy: "
    f'the server could not find the requested resource (get {BGP_CRD})" subsys=k8s'
)
# The 1.13 CNI config (`plugins/cilium-cni` default template, `cni-chaining-mode: none`).
CNI_CONFIG: dict[str, Any] = {
    "cniVersion": "0.3.1",
    "name": "cilium",
    "plugins": [{"type": "cilium-cni", "enable-debug": False, "log-file": "/var/run/cilium/cilium-cni.log"}],
}
_SECOND_NS = 1_000_000_000
_SOCKET_PATH_LIMIT = 100  # sun_path is 108 bytes; keep a margin


def _quote(value: str) -> str:
    """logfmt quoting as logrus' text formatter does it."""
    if value and re.fullmatch(r"[A-Za-z0-9\-._/@^+]+", value):
        return value
    return json.dumps(value)


def logfmt(level: str, msg: str, subsys: str, **fields: object) -> str:
    """One logrus text line: level and msg first, then the fields sorted by key, subsys among them."""
    data = {**{k: str(v) for k, v in fields.items()}, "subsys": subsys}
    rest = " ".join(f"{key}={_quote(data[key])}" for key in sorted(data))
    return f"level={level} msg={_quote(msg)} {rest}"


def go_duration(seconds: float) -> str:
    """`time.Duration.String()`: `1.5s`, `6.645362s`; from a minute on, rounded to the second (`5m0s`)."""
    if seconds < 60:
        text = f"{seconds:.9f}".rstrip("0").rstrip(".")
        return f"{text or '0'}s"
    return format_uptime(round(seconds * _SECOND_NS))


class Agent:
    """One node's agent; `start()` returns at once, `ready()` tells when the pod would be 1/1."""

    def __init__(
        self,
        kube: Kube,
        *,
        node: Node,
        topology: Topology,
        network: LabNetwork,
        directory: Path,
        cni_config_dir: Path,
        log: Callable[[str], None],
        version: str = "1.13.4",
        crd_wait_timeout: float = 300.0,
        list_backoff_max: float = 5.0,
        resync: float = 5.0,
    ) -> None:
        self.kube = kube
        self.node = node
        self.topology = topology
        self.network = network
        self.directory = Path(directory)
        self.cni_config_dir = Path(cni_config_dir)
        self.log = log
        self.version = version
        self.crd_wait_timeout = crd_wait_timeout
        self.list_backoff_max = list_backoff_max
        self.resync = resync
        self.config: dict[str, str] | None = None
        self.bgp: BgpController | None = None
        self.services: ServiceController | None = None
        self.routes: NodeRoutesController | None = None
        self.pod_cidr: IPv4Network | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._exit_code: int | None = None
        self._thread: threading.Thread | None = None
        self._cilium_node_done = False

    # -- ContainerProgram ---------------------------------------------------------------------------
    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._main, name=f"cilium-agent-{self.node.name}", daemon=True)
        self._thread.start()

    def ready(self) -> bool:
        return self._ready.is_set() and self._exit_code is None and not self._stop.is_set()

    def exit_code(self) -> int | None:
        return self._exit_code

    def stop(self) -> None:
        """Shut down as the agent does on SIGTERM: controllers stop, every BGP session is withdrawn."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        for controller in (self.bgp, self.services, self.routes):
            if controller is not None:
                controller.stop()
        self._ready.clear()
        if (self.config or {}).get("cni-uninstall") == "true" and self._uninstalled():
            (self.cni_config_dir / CNI_CONFIG_NAME).unlink(missing_ok=True)

    def _uninstalled(self) -> bool:
        """Whether this agent stops for good: its DaemonSet is gone (`cilium uninstall`)."""
        try:
            return self.kube.get_or_none(Resources.DAEMONSETS, AGENT_DAEMONSET, CONFIG_NAMESPACE) is None
        except Exception:  # the API server is going down with the lab: not an uninstall
            return False

    @property
    def bgp_enabled(self) -> bool:
        return (self.config or {}).get("enable-bgp-control-plane") == "true"

    # -- start-up -----------------------------------------------------------------------------------
    def _main(self) -> None:
        began = time.monotonic()
        try:
            self.log(logfmt("info", f"Cilium {self.version} bgpconform-lab go version go1.19.10", "daemon"))
            config = self._read_config()
            if config is None:
                return
            self.config = config
            for key in sorted(config):
                self.log(logfmt("info", f"  --{key}='{config[key]}'", "daemon"))
            self.log(logfmt("info", "Initializing daemon", "daemon"))
            bgp = self.bgp_enabled
            if bgp and defects.active("agents-ready-without-policy-crd") and not self._policies_served():
                self._log_missing(self._unserved())  # says so once, then starts without BGP, ready
                bgp = False
            elif bgp and not self._wait_for_policies(began):
                return
            if not self._obtain_pod_network(config, began):
                return
            self.services = ServiceController(self)
            self.services.start()
            self.routes = NodeRoutesController(self.kube, self.network, self.node, resync=self.resync)
            self.routes.start()
            if bgp:
                self.bgp = BgpController(self)
                self.bgp.start()
            if not self._wait(lambda: all(c.synced() for c in self._controllers())):
                return
            self._write_cni_config()
            self._ready.set()
            self.log(
                logfmt(
                    "info",
                    "Daemon initialization completed",
                    "daemon",
                    bootstrapTime=go_duration(time.monotonic() - began),
                )
            )
        except Exception as exc:
            if self._stop.is_set():
                return
            log.exception("cilium agent on %s failed", self.node.name)
            self.log(logfmt("fatal", "Error while creating daemon", "daemon", error=str(exc)))
            self._exit_code = 1

    def _controllers(self) -> list[Controller]:
        return [c for c in (self.services, self.routes, self.bgp) if c is not None]

    def _obtain_pod_network(self, config: Mapping[str, str], began: float) -> bool:
        """This node's pod CIDR from Cilium's IPAM (`pod_network`), then its pod network; False if
        the agent stopped while waiting, or gave up on the CiliumNode CRD as on any other."""

        def log_line(level: str, msg: str, fields: Mapping[str, object]) -> None:
            self.log(logfmt(level, msg, "k8s", **fields))

        waiting = PodCidrWait(
            self.kube, self.node, config.get("ipam") or "cluster-pool", self._stop, log_line
        )
        cidr = waiting.obtain(began + self.crd_wait_timeout)
        if cidr is None:
            if waiting.crd_missing and not self._stop.is_set():
                self._crds_missing_fatal(CILIUM_NODE_CRD)
            return False
        self.pod_cidr = cidr
        gateway = self.network.assign_pod_cidr(self.node.name, cidr)
        waiting.announce_router_ip(gateway)
        return True

    def _wait(self, condition: Callable[[], bool], step: float = 0.05) -> bool:
        """Wait for `condition` until the agent stops; False when it stopped first."""
        while not self._stop.is_set():
            if condition():
                return True
            self._stop.wait(step)
        return False

    def _read_config(self) -> dict[str, str] | None:
        """The ConfigMap's data, read once; until it exists the agent waits (a pod's volume would too)."""
        said = False
        while not self._stop.is_set():
            found = self.kube.get_or_none(Resources.CONFIGMAPS, CONFIG_MAP, CONFIG_NAMESPACE)
            if found is not None:
                config = {str(k): str(v) for k, v in (found.get("data") or {}).items()}
                return config | self._node_overrides()
            if not said:
                self.log(
                    logfmt(
                        "warning", f"ConfigMap {CONFIG_NAMESPACE}/{CONFIG_MAP} not found, waiting", "daemon"
                    )
                )
                said = True
            self._stop.wait(1.0)
        return None

    def _node_overrides(self) -> dict[str, str]:
        """What CiliumNodeConfigs selecting this node set, in name order (the `config` init container's
        `build-config`; docs.cilium.io "Per-node configuration", docs/verified-facts.md)."""
        node = self.kube.get_or_none(Resources.NODES, self.node.name)
        labels = ((node or {}).get("metadata") or {}).get("labels") or {}
        overrides: dict[str, str] = {}
        configs = self.kube.items_if_served(Resources.CILIUM_NODE_CONFIGS, CONFIG_NAMESPACE)
        for config in sorted(configs, key=lambda c: str(c["metadata"]["name"])):
            spec = config.get("spec") or {}
            if matches(spec.get("nodeSelector") or {}, labels, nil_matches=True):
                overrides.update({str(k): str(v) for k, v in (spec.get("defaults") or {}).items()})
        return overrides

    @property
    def minor(self) -> tuple[int, int]:
        return cilium_minor(self.version, since=(1, 13), missing="no agent emulated for Cilium {version}")

    def _bgp_resources(self) -> list[KubeResource]:
        """What this release's BGP control plane watches (`crds.bgp_crds`)."""
        return [crd.resource for crd in bgp_crds(self.version)]

    def _unserved(self) -> list[KubeResource]:
        missing: list[KubeResource] = []
        for resource in self._bgp_resources():
            try:
                self.kube.listing(resource)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                missing.append(resource)
        return missing

    def _policies_served(self) -> bool:
        return not self._unserved()

    def _log_missing(self, missing: list[KubeResource]) -> None:
        """1.13-1.15: the reflector's k8sError for the v1 policy (the walkthrough's line); from 1.16
        the CRD wait's own line naming every missing CRD (FACTS.md; its exact wording unverified)."""
        if self.minor < (1, 16):
            self.log(BGP_CRD_MISSING)
            return
        names = " ".join(f"crd:{r.plural}.{r.group}" for r in missing)
        self.log(
            logfmt(
                "info", f"Still waiting for Cilium Operator to register the following CRDs: [{names}]", "k8s"
            )
        )

    def _crds_missing_fatal(self, crd: str) -> None:
        self.log(
            logfmt(
                "fatal",
                "Unable to find all Cilium CRDs necessary within "
                f"{go_duration(self.crd_wait_timeout)} timeout. Please ensure that Cilium Operator "
                "is running, as it's responsible for registering all the Cilium CRDs. "
                f"The following CRDs were not found: [crd:{crd}]",
                "k8s",
            )
        )
        self._exit_code = 1

    def _wait_for_policies(self, began: float) -> bool:
        """List the BGP resources until all are served, logging each failure; False on stop or timeout."""
        backoff = 1.0
        missing: list[KubeResource] = []
        while not self._stop.is_set():
            try:
                if self._rbac_lags_upgrade():
                    raise ApiException(status=403, reason=self._forbidden())
                missing = self._unserved()
                if not missing:
                    return True
                self._log_missing(missing)
                if defects.active("agents-never-notice-policy-crd"):
                    self._stop.wait()  # never lists again: the CRD's arrival goes unseen
                    return False
            except ApiException as exc:
                self.log(self._list_error(f"{exc.status} {exc.reason}"))
            except Exception as exc:
                self.log(self._list_error(str(exc)))
            if time.monotonic() - began >= self.crd_wait_timeout:
                self._crds_missing_fatal(" crd:".join(f"{r.plural}.{r.group}" for r in missing) or BGP_CRD)
                return False
            remaining = self.crd_wait_timeout - (time.monotonic() - began)
            self._stop.wait(max(0.0, min(backoff, remaining)))
            backoff = min(backoff * 2, self.list_backoff_max)
        return False

    def _rbac_lags_upgrade(self) -> bool:
        """The shape of cilium/cilium#45802 and #45829 (FACTS.md, the 1.19 row): during a rolling
        upgrade the new release's agents lack a permission their ClusterRole gains only later."""
        if not defects.active("agent-rbac-lags-upgrade"):
            return False
        installed = str(self.topology.cluster.cilium_version)
        return cilium_minor(self.version, since=(1, 13), missing="{version}") > cilium_minor(
            installed, since=(1, 13), missing="{version}"
        )

    def _forbidden(self) -> str:
        resource = bgp_crds(self.version)[0].resource
        return (
            f'Forbidden: {resource.plural}.{resource.group} is forbidden: User "system:serviceaccount:'
            f'kube-system:cilium" cannot list resource "{resource.plural}" in API group "{resource.group}" '
            "at the cluster scope"
        )

    @staticmethod
    def _list_error(reason: str) -> str:
        return logfmt(
            "error",
            "k8sError",
            "k8s",
            error="github.com/cilium/cilium/pkg/k8s/resource/resource.go:183: Failed to watch "
            "*v2alpha1.CiliumBGPPeeringPolicy: failed to list *v2alpha1.CiliumBGPPeeringPolicy: " + reason,
        )

    def _write_cni_config(self) -> None:
        """Write the conflist atomically: the kubelet must never read half a file."""
        self.cni_config_dir.mkdir(parents=True, exist_ok=True)
        target = self.cni_config_dir / CNI_CONFIG_NAME
        temporary = self.cni_config_dir / f".{CNI_CONFIG_NAME}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(CNI_CONFIG, indent=2) + "\n")
        os.replace(temporary, target)
        self.log(logfmt("info", f"Wrote CNI configuration file to {target}", "cni-config"))

    # -- the node's objects -------------------------------------------------------------------------
    @property
    def pod_cidrs(self) -> list[IPv4Network]:
        """This node's pod CIDRs, as IPAM gave them at start."""
        return [self.pod_cidr] if self.pod_cidr is not None else []

    # -- exec -----------------------------------------------------------------------------------------
    def peers(self) -> list[BgpPeer]:
        """This node's sessions as `cilium bgp peers` reports them (empty without a policy)."""
        return self.bgp.peers() if self.bgp is not None else []

    def exec(self, argv: list[str], stdin: bytes | None = None) -> ExecResult:
        """`kubectl exec` into container cilium-agent: the in-agent `cilium` (or `cilium-dbg`) CLI."""
        # `cilium-dbg` exists from 1.15, where `cilium` still answers too (FACTS.md).
        binaries = (
            ("cilium", "cilium-dbg")
            if cilium_minor(self.version, since=(1, 13), missing="{version}") >= (1, 15)
            else ("cilium",)
        )
        if not argv or os.path.basename(argv[0]) not in binaries:
            name = argv[0] if argv else ""
            message = (
                f'exec: "{name}": executable file not found in $PATH: unknown\n'
                if name
                else "no command given\n"
            )
            return ExecResult(stderr=message.encode(), exit_code=127 if name else 1)
        binary = os.path.basename(argv[0])
        words, output = _parse_flags(argv[1:])
        if words in (["bgp", "peers"], ["bgp", "neighbors"]):
            return self._bgp_peers(output)
        if words == ["version"]:
            line = f"{self.version} bgpconform-lab go version go1.19.10 linux/amd64"
            return ExecResult(stdout=f"Client: {line}\nDaemon: {line}\n".encode())
        if words == ["status"] and output == "brief":
            if self.ready():
                return ExecResult(stdout=b"OK\n")
            return ExecResult(stderr=b"error: agent is not ready\n", exit_code=1)
        shown = " ".join(words) or "<none>"
        message = f'Error: unknown command "{shown}" for "{binary}"\nRun \'{binary} --help\' for usage.\n'
        return ExecResult(stderr=message.encode(), exit_code=1)

    def _bgp_peers(self, output: str | None) -> ExecResult:
        if not self.bgp_enabled:
            return ExecResult(
                stderr=b"Error: cannot get peers list: [GET /bgp/peers][501] getBgpPeersDisabled "
                b" BGP Control Plane disabled\n\n",
                exit_code=1,
            )
        peers = self.peers()
        if output == "json":
            return ExecResult(stdout=agent_json(peers, self.version).encode())
        if output is not None and output != "brief":
            return ExecResult(stderr=f"Error: unknown output format {output}\n".encode(), exit_code=1)
        return ExecResult(stdout=agent_table(peers).encode())


def _parse_flags(args: list[str]) -> tuple[list[str], str | None]:
    """Positional words and the `-o`/`--output` value (`--brief` counts as output "brief")."""
    words: list[str] = []
    output: str | None = None
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("-o", "--output") and index + 1 < len(args):
            output = args[index + 1]
            index += 2
            continue
        if arg.startswith(("--output=", "-o=")):
            output = arg.split("=", 1)[1]
        elif arg.startswith("-o") and len(arg) > 2:
            output = arg[2:]
        elif arg == "--brief":
            output = "brief"
        elif not arg.startswith("-"):
            words.append(arg)
        index += 1
    return words, output


def agent_table(peers: list[BgpPeer]) -> str:
    """The in-agent `cilium bgp peers` table of 1.13 (`cilium/cmd/bgp_peer_list.go` printSummary).

    Go's tabwriter (min width 5, padding 3); peers in that command's order; a peer without families
    prints no newline, as the Go code does.
    """
    ordered = list(peers)
    for i in range(1, len(ordered)):  # sort.Slice's insertion sort for short slices (see bgp_peers)
        j = i
        while j > 0 and (
            ordered[j].local_asn < ordered[j - 1].local_asn
            or ordered[j].peer_address < ordered[j - 1].peer_address
        ):
            ordered[j], ordered[j - 1] = ordered[j - 1], ordered[j]
            j -= 1
    parts = ["Local AS\tPeer AS\tPeer Address\tSession\tUptime\tFamily\tReceived\tAdvertised\n"]
    for peer in ordered:
        parts.append(f"{peer.local_asn}\t{peer.peer_asn}\t{peer.peer_address}\t{peer.session_state}\t")
        parts.append(f"{peer.uptime}\t")
        for position, family in enumerate(peer.families):
            if position > 0:
                parts.append("\t" * 5)
            parts.append(f"{family.afi}/{family.safi}\t{family.received}\t{family.advertised}\t\n")
    return tabwriter("".join(parts), minwidth=5, padding=3)


def _selected_labels(policies: list[dict[str, Any]]) -> dict[str, str]:
    """Labels that every policy's `nodeSelector.matchLabels` matches: what a node would carry if the
    agent took every node as selected."""
    labels: dict[str, str] = {}
    for policy in policies:
        selector = policy.get("spec", {}).get("nodeSelector") or {}
        labels.update(selector.get("matchLabels") or {})
    return labels


class BgpController(Controller):
    """Cilium's BGP control plane for one node: policies, its Node's labels and services -> speakers."""

    name = "cilium-bgp-control-plane"

    def __init__(self, agent: Agent) -> None:
        super().__init__(agent.kube, resync=agent.resync)
        self.agent = agent
        kinds = {crd.kind: crd.resource for crd in bgp_crds(agent.version)}
        # 1.13-1.18 read v1 policies; 1.16+ their node's CiliumBGPNodeConfig with the peer configs and
        # advertisements it refers to; a node a v1 policy selects runs v1 (FACTS.md, the 1.16 row).
        self.policies = self.inform(kinds[BGPP.kind]) if BGPP.kind in kinds else None
        v2 = BGP_V2 if agent.minor >= (1, 18) else BGP_V2_ALPHA
        self.v2_kinds = {crd.kind: crd.resource for crd in v2} if v2[0].kind in kinds else {}
        self.node_configs = self.peer_configs = self.advertisements = None
        if self.v2_kinds:
            self.node_configs = self.inform(
                self.v2_kinds["CiliumBGPNodeConfig"], field_selector=f"metadata.name={agent.node.name}"
            )
            self.peer_configs = self.inform(self.v2_kinds["CiliumBGPPeerConfig"])
            self.advertisements = self.inform(self.v2_kinds["CiliumBGPAdvertisement"])
        self._status_written: dict[str, Any] | None = None
        self._origin: str | None = None  # which API the node's BGP instances came from: v1 or v2
        self._established_since: dict[tuple[int, str], float] = {}
        self.nodes = self.inform(Resources.NODES, field_selector=f"metadata.name={agent.node.name}")
        self.service_cache = self.inform(Resources.SERVICES)
        self.decision: BgpDecision = None
        self._speakers: dict[int, GoBgpSpeaker] = {}
        self._speakers_lock = threading.Lock()
        self._restart_times: dict[IPv4Address, int] = {}  # as configured, which `bgp peers` reports
        self._never_withdrawn: set[IPv4Network] = set()  # the defect withdrawals-lost-in-a-burst
        self._decided = False
        # The node's state directory outlives the agent (`/var/run/cilium/state` on a host): an agent
        # that finds its mark there is a restarted one.
        self._state = agent.network.run.directory / "node-state" / agent.node.name / "bgp-announced"
        self._restarted = self._state.exists()

    def start(self) -> BgpController:
        super().start()
        self.agent.log(
            logfmt(
                "info",
                "Cilium BGP Control Plane Controller now running...",
                "bgp-control-plane",
                component="Controller.Run",
            )
        )
        return self

    def reconcile(self) -> None:
        node = self.nodes.get(self.agent.node.name)
        if node is None:
            return  # the agent waits for its own Node object
        labels = node.get("metadata", {}).get("labels") or {}
        policies = self.policies.objects() if self.policies is not None else []
        if defects.active("agent-ignores-node-selector"):
            labels = {**labels, **_selected_labels(policies)}
        services = self.service_cache.objects()
        decision = node_bgp_config(
            policies, labels, self.agent.pod_cidrs, services, policy_timers=self.agent.minor >= (1, 14)
        )
        origin = "v1" if decision is not None else None
        if decision is None and self.node_configs is not None:
            decision = node_bgp_config_v2(
                self.node_configs.get(self.agent.node.name),
                {p["metadata"]["name"]: p for p in self.peer_configs.objects()} if self.peer_configs else {},
                self.advertisements.objects() if self.advertisements else [],
                self.agent.pod_cidrs,
                services,
            )
            origin = "v2" if decision is not None else None
        if (
            origin == "v2"
            and self._origin == "v1"
            and defects.active("agent-keeps-v1-instance-after-migration")
        ):
            return  # the v1 instance is never torn down: the node stays where it was
        if origin is not None and self._origin is not None and origin != self._origin:
            # v1 and BGPv2 are separate managers: the node's instances of one stop, the other's start.
            self.on_stop()
        if origin is not None:
            self._origin = origin
        if isinstance(decision, NodeBgpConfig):
            decision = self._with_defects(decision)
        changed = not self._decided or decision != self.decision
        self.decision = decision
        self._decided = True
        if isinstance(decision, PolicyConflict):
            if changed:
                for line in decision.log_lines:
                    self.agent.log(line)
            self._apply([])
            return
        if decision is None:
            self._apply([])
            return
        if changed:
            for problem in decision.problems:
                self.agent.log(
                    logfmt("warning", problem, "bgp-control-plane", component="Controller.Reconcile")
                )
        self._apply(list(decision.routers))
        self._write_node_status()

    def _write_node_status(self) -> None:
        """From 1.17 the agent reports its peers in its CiliumBGPNodeConfig's status (PR #33411, every
        ~5 s: here on every pass, the resync being 5 s), each instance's peers with `peeringState`,
        `establishedTime`, route counts and the timers in force (FACTS.md, "Cilium: BGPv2")."""
        if self.node_configs is None or self.agent.minor < (1, 17) or self._origin != "v2":
            return  # written by BGPv2's manager: a node that runs v1 reports nothing there
        node_config = self.node_configs.get(self.agent.node.name)
        if node_config is None or defects.active("node-config-status-never-written"):
            return
        sessions: dict[int, list[SpeakerPeer]] = {}
        for asn, speaker in self.speakers().items():
            try:
                sessions[asn] = speaker.peers()
            except HarnessError:
                continue  # being replaced: reported unknown until it answers
        status = node_status(
            node_config, sessions, now=time.time(), established_since=self._established_since
        )
        if status == self._status_written:
            return
        try:
            self.kube.patch(
                self.v2_kinds["CiliumBGPNodeConfig"],
                self.agent.node.name,
                [{"op": "replace", "path": "/status", "value": status}],
                content_type=JSON_PATCH,
                subresource="status",
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            return
        self._status_written = status

    def _with_defects(self, decision: NodeBgpConfig) -> NodeBgpConfig:
        """The BGP control plane's reported bugs, each where the agent would have it (lab.defects)."""
        first_peering = defects.first_peering_node(self.agent.topology.bgp_nodes)
        no_pod_cidr = defects.active("pod-cidr-not-advertised")
        no_service = (
            defects.active("lb-ip-never-announced")
            or (defects.active("lb-ip-announced-by-one-node") and self.agent.node.name != first_peering)
            or (defects.active("lb-ip-not-readvertised-after-restart") and self._restarted)
        )
        capped = defects.active("agent-announces-at-most-32-services")
        every: tuple[IPv4Network, ...] = ()
        if defects.active("pod-cidr-announced-by-every-node") and self.agent.routes is not None:
            every = tuple(sorted({*self.agent.routes.routed, *self.agent.pod_cidrs}))
        routers = [
            replace(
                router,
                pod_cidrs=() if no_pod_cidr else (every if router.pod_cidrs and every else router.pod_cidrs),
                service_prefixes=()
                if no_service
                else (tuple(sorted(router.service_prefixes)[:32]) if capped else router.service_prefixes),
            )
            for router in decision.routers
        ]
        return replace(decision, routers=tuple(routers))

    def _apply(self, routers: list[VirtualRouter]) -> None:
        wanted = {router.local_asn: router for router in routers}
        with self._speakers_lock:
            current = dict(self._speakers)
        for asn in sorted(set(current) - set(wanted)):
            self._remove(asn, current[asn])
        for asn, router in wanted.items():
            speaker = current.get(asn)
            neighbors = self._neighbors(router)
            if speaker is not None and (speaker.neighbors != neighbors or not speaker.running):
                self._remove(asn, speaker)
                speaker = None
            if speaker is None:
                speaker = self._add(router, neighbors)
            originated = speaker.announced()
            desired = set(router.prefixes)
            for prefix in sorted(desired - originated):
                speaker.originate(prefix)
            if any(prefix.prefixlen == 32 for prefix in desired) and not self._state.exists():
                self._state.parent.mkdir(parents=True, exist_ok=True)
                self._state.touch()
            stale = originated - desired
            if defects.active("lb-ip-never-withdrawn"):
                stale = {prefix for prefix in stale if prefix.prefixlen != 32}
            gone = sorted(prefix for prefix in stale if prefix.prefixlen == 32)
            if defects.active("withdrawals-lost-in-a-burst") and len(gone) > 1:
                self._never_withdrawn.update(gone[1:])  # one reconcile, one withdrawal: the rest forgotten
            stale -= self._never_withdrawn
            for prefix in sorted(stale):
                speaker.withdraw(prefix)

    def _neighbors(self, router: VirtualRouter) -> list[Neighbor]:
        """Each neighbor with the timers its policy or peer config sets (1.14+); in 1.13, as its
        `AddNeighbor`, none, so GoBGP's defaults dial (FACTS.md) unless the shortcut
        `short-bgp-timers` gives the topology's."""
        wrong_asn = defects.active("agent-dials-wrong-peer-asn")
        if defects.active("agent-dials-no-neighbor"):
            return []
        neighbors: list[Neighbor] = []
        for wanted in router.neighbors:
            if wanted.restart_time is not None:
                self._restart_times[wanted.address] = wanted.restart_time
            else:
                self._restart_times.pop(wanted.address, None)
            timers = None  # 1.13: GoBGP's defaults
            if wanted.timers is not None:  # 1.14+ policies and BGPv2 peer configs set them
                timers = Timers(wanted.timers.connect_retry, wanted.timers.hold, wanted.timers.keepalive)
            elif shortcuts.active("short-bgp-timers"):
                given = self.agent.topology.bgp.timers
                timers = Timers(given.connect_retry, given.hold, given.keepalive)
            restart = None if defects.active("graceful-restart-not-advertised") else wanted.restart_time
            neighbors.append(
                Neighbor(wanted.address, wanted.asn + 1 if wrong_asn else wanted.asn, timers, restart)
            )
        return neighbors

    def _speaker_directory(self, asn: int) -> Path:
        """Under the agent's directory unless the socket path would be too long for a unix socket."""
        directory = self.agent.directory / "bgp" / str(asn)
        if len(str(directory / "gobgpd.sock")) <= _SOCKET_PATH_LIMIT:
            return directory
        digest = hashlib.sha1(f"{self.agent.node.name}/{asn}".encode()).hexdigest()[:10]
        return self.agent.network.run.directory / "agent-bgp" / digest

    def _add(self, router: VirtualRouter, neighbors: list[Neighbor]) -> GoBgpSpeaker:
        node = self.agent.node
        with self._speakers_lock:
            port_taken = any(other.listen for other in self._speakers.values())
        speaker = GoBgpSpeaker(
            node=node.name,
            namespace=self.agent.network.node_ns[node.name],
            directory=self._speaker_directory(router.local_asn),
            router_id=node.address,
            asn=router.local_asn,
            neighbors=neighbors,
            # One speaker per node can hold port 179; a node with several local ASNs dials from the rest.
            listen=shortcuts.active("router-dials") and not port_taken,
        )
        self.agent.log(
            logfmt(
                "info",
                f"Registering BGP servers for policy with local ASN {router.local_asn}",
                "bgp-control-plane",
                component="manager.registerBGPServer",
            )
        )
        speaker.start()
        with self._speakers_lock:
            self._speakers[router.local_asn] = speaker
        for neighbor in neighbors:
            self.agent.log(
                logfmt(
                    "info",
                    "Adding peer to BGP server",
                    "bgp-control-plane",
                    asn=router.local_asn,
                    component="gobgp.BgpServerInstance",
                    peer=f"{neighbor.address}/32",
                    peerASN=neighbor.asn,
                )
            )
        return speaker

    def _remove(self, asn: int, speaker: GoBgpSpeaker, *, graceful: bool = False) -> None:
        with self._speakers_lock:
            self._speakers.pop(asn, None)
        if graceful:
            speaker.kill()
        else:
            speaker.stop()
        self.agent.log(
            logfmt(
                "info",
                f"Removing BGP server with local ASN {asn}",
                "bgp-control-plane",
                component="manager.withdrawAll",
            )
        )

    def on_stop(self) -> None:
        """The agent going away: its embedded speakers go with it. With graceful restart configured
        they end without notification, so the router keeps the routes while the datapath, which outlives
        the agent, goes on forwarding (Cilium's operation guide, "Cilium Agent Down")."""
        with self._speakers_lock:
            speakers = dict(self._speakers)
        # cilium/cilium#31346's router log: "notification received: Cease/Peer De-configured" as the
        # agent was deleted, with graceful restart configured; the router then drops the routes.
        ceases = defects.active("agent-ceases-sessions-on-shutdown")
        for asn, speaker in speakers.items():
            graceful = any(n.restart_time for n in speaker.neighbors) and not ceases
            self._remove(asn, speaker, graceful=graceful)

    def speakers(self) -> dict[int, GoBgpSpeaker]:
        with self._speakers_lock:
            return dict(self._speakers)

    def peers(self) -> list[BgpPeer]:
        """Every session of every speaker; a speaker being replaced right now is left out."""
        found: list[BgpPeer] = []
        for speaker in self.speakers().values():
            try:
                facts = speaker.peers()
                originated = len(speaker.announced())
            except HarnessError:
                continue
            for peer in facts:
                advertised = peer.advertised
                if peer.state != SessionState.ESTABLISHED and defects.active(
                    "peers-count-routes-not-established"
                ):
                    advertised = originated  # #39861: what it would send, on a session sending nothing
                found.append(
                    BgpPeer.from_facts(
                        local_asn=peer.local_asn,
                        peer_asn=peer.peer_asn,
                        peer_address=str(peer.address),
                        session_state=peer.state,
                        uptime_seconds=peer.uptime_seconds,
                        families=[
                            PeerFamily("ipv4", "unicast", peer.received, peer.accepted, advertised),
                            PeerFamily("ipv6", "unicast"),
                        ],
                        graceful_restart=self._graceful(peer.address),
                    )
                )
        return found

    def _graceful(self, address: IPv4Address) -> GracefulRestart | None:
        restart = self._restart_times.get(address)
        return GracefulRestart(True, restart) if restart is not None else None


class ServiceController(Controller):
    """Kube-proxy replacement for this node: LoadBalancer frontends -> ready endpoints, in its netfilter.

    Endpoints come from EndpointSlices. Deviation: while the API server does not serve them, they are
    derived from the selected pods as the EndpointSlice controller would write them (Cilium itself
    would fall back to v1 Endpoints).
    """

    name = "cilium-service-datapath"

    def __init__(self, agent: Agent) -> None:
        super().__init__(agent.kube, resync=agent.resync)
        self.agent = agent
        self.service_cache = self.inform(Resources.SERVICES)
        self.slices = self.inform(Resources.ENDPOINT_SLICES, retry=2.0)
        self.pods = self.inform(Resources.PODS)
        self.datapath = ServiceDatapath(agent.network, nodes=[agent.node.name])
        self._reported: set[str] = set()
        self._worked: Memo = {}
        self._seen: tuple[object, ...] = ()
        self._passed_at = 0.0

    def _slices_served(self) -> bool:
        return self.slices.synced.is_set()

    def synced(self) -> bool:
        slices_missing = getattr(self.slices.last_error, "status", None) == 404
        return (
            self.service_cache.synced.is_set()
            and self.pods.synced.is_set()
            and (self._slices_served() or slices_missing)
        )

    def reconcile(self) -> None:
        # Woken by a change that does not touch what this pass reads (pods while slices are served,
        # the other informers' resyncs): nothing to do until the resync's heartbeat.
        read = (self.slices, self.service_cache) if self._slices_served() else (self.pods, self.service_cache)
        seen = (*(informer.generation for informer in read), self._slices_served())
        now = time.monotonic()
        if seen == self._seen and now - self._passed_at < self.resync * 0.9:
            return
        self._seen, self._passed_at = seen, now
        services = self.service_cache.objects()
        if self._slices_served():
            slices = self.slices.objects()
        else:
            slices = slices_from_pods(services, self.pods.objects())
        # Slices made from pods carry no resourceVersion to tell a change by: those are worked out anew.
        memo = self._worked if self._slices_served() else None
        entries, problems = desired_entries(services, slices, memo)
        for problem in problems:
            if problem not in self._reported:
                self.agent.log(logfmt("warning", problem, "service"))
        self._reported = set(problems)
        first_peering = defects.first_peering_node(self.agent.topology.bgp_nodes)
        if defects.active("service-nat-missing") or (
            defects.active("service-nat-on-one-node") and self.agent.node.name != first_peering
        ):
            entries = []  # the service map stays empty: LB IPs are announced but lead nowhere
        if defects.active("service-map-too-small"):
            entries = sorted(entries, key=lambda entry: entry.service)[:32]
        if defects.active("lb-traffic-served-only-on-backend-node"):
            local = self.agent.pod_cidrs
            entries = [e for e in entries if any(b.ip in cidr for b in e.backends for cidr in local)]
        self.datapath.sync(entries)

    def on_stop(self) -> None:
        """The service map outlives the agent, as Cilium's BPF maps do; the defect tears it down."""
        if defects.active("service-datapath-torn-down-on-agent-stop"):
            self.datapath.sync([])


class AgentProgram:
    """The kubelet's program for image `quay.io/cilium/cilium:*` (container `cilium-agent`).

    Expects `ctx.extra["cni_config_dir"]` (the node's `etc/cni/net.d`); optional
    `ctx.extra["crd_wait_timeout"]` (seconds, default 300) and `ctx.extra["resync"]`.
    """

    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx
        self.api_client = new_api_client(ctx.kubeconfig)
        image = str(ctx.container.get("image", ""))
        cni_dir = ctx.extra.get("cni_config_dir")
        self._missing_cni_dir = cni_dir is None
        self.agent = Agent(
            Kube(self.api_client),
            node=ctx.node,
            topology=ctx.topology,
            network=ctx.network,
            directory=ctx.directory,
            cni_config_dir=Path(cni_dir) if cni_dir is not None else ctx.directory / "net.d",
            log=ctx.log,
            version=image_version(image) or str(ctx.topology.cluster.cilium_version),
            crd_wait_timeout=float(ctx.extra.get("crd_wait_timeout", 300.0)),
            resync=float(ctx.extra.get("resync", 5.0)),
        )

    def start(self) -> None:
        if self._missing_cni_dir:
            raise HarnessError("the cilium agent program needs ctx.extra['cni_config_dir'] from the kubelet")
        self.ctx.register_exec(self.agent.exec)
        self.agent.start()

    def ready(self) -> bool:
        return self.agent.ready()

    def exit_code(self) -> int | None:
        return self.agent.exit_code()

    def stop(self) -> None:
        try:
            self.agent.stop()
        finally:
            with contextlib.suppress(Exception):
                self.api_client.close()  # type: ignore[no-untyped-call]
