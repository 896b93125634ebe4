"""The emulated cilium-operator (`operator-generic`): CRD registration at start, then LB IPAM.

What it reproduces (FACTS.md, "CRD registration, config, logs" and "LB IPAM"; walkthrough, the operator
restart and its `k logs ... | grep CRD`):
- It reads ConfigMap `cilium-config` once, at start; a later `cilium config set` changes nothing here
  until the operator pod is replaced. That is why the walkthrough's BGP policy CRD appears only after
  `k delete pod ... cilium-operator-...`.
- It registers the CRDs that configuration calls for (`crds.crds_for_config`): the LB pool always, the
  BGP peering policy only if `enable-bgp-control-plane` was "true". For each missing CRD it logs
  `Creating CRD (CustomResourceDefinition)...`, for each present one whose schema-version label is older
  `Updating CRD (CustomResourceDefinition)...`, and `CRD (CustomResourceDefinition) is installed and
  up-to-date` once each is established, then `Starting CRD identity garbage collector`. The real operator
  does the CRDs in parallel goroutines; the emulation logs the ones already present first, then the
  ones it created, each group in the walkthrough's order, which reproduces the walkthrough's lines.
- Then LB IPAM runs as a level-triggered controller over pools and services, deciding with
  `lbipam.LBIPAM` and writing each changed status through the `status` subresource as a JSON patch
  under field manager `cilium-operator-lb-ipam`.

- Every replica registers the CRDs, then campaigns for the leader lease (`leader`); only the leader
  runs cluster-pool IPAM (`cluster_pool`: the nodes' pod CIDRs) and LB IPAM, and a replica that loses
  the lease exits, as the real one does, to be restarted.

Deviations: no identity or CiliumNode garbage collection, no CNP status handling, no
health endpoint (readiness is "CRDs registered"). Log lines are logrus text format without timestamps,
as the operator writes them; the version line's build details are not the real commit's.
"""

from __future__ import annotations

import json
import platform
import random
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bgpconform.cilium.versions import cilium_minor, image_version
from bgpconform.kubeapi.client import (
    JSON_PATCH,
    ApiException,
    Kube,
    KubeResource,
    Resources,
    new_api_client,
)
from bgpconform.lab import chance, defects
from bgpconform.lab.cilium import crds as cilium_crds
from bgpconform.lab.cilium import leader
from bgpconform.lab.cilium.bgp_node_configs import NodeConfigController
from bgpconform.lab.cilium.cluster_pool import ClusterPoolAllocator
from bgpconform.lab.cilium.crds import SCHEMA_VERSION_LABEL, CiliumCRD
from bgpconform.lab.cilium.lbipam import (
    BGP_LOAD_BALANCER_CLASS,
    FIELD_MANAGER,
    LBIPAM,
    LBIPAMResult,
    status_patch,
)
from bgpconform.lab.cilium.leader import ElectionTimers, LeaderElector
from bgpconform.lab.cluster.controller import Controller
from bgpconform.lab.cluster.runtime import ContainerContext
from bgpconform.waiting import WaitTimeout, wait_for

__all__ = ["CONFIG_MAP", "LBIPAMController", "Operator", "OperatorProgram", "logfmt"]

CONFIG_MAP = "cilium-config"
SUBSYS = "cilium-operator-generic"
DEFAULT_IDENTITY_GC_INTERVAL = "15m0s"
_GO_VERSION = "go1.20.5"  # unverified for the 1.13.4 build
_PLAIN = re.compile(r"^[A-Za-z0-9\-._/@^+]*$")

LogFn = Callable[[str], None]


def logfmt(level: str, msg: str, **fields: object) -> str:
    """One logrus text-formatter line: `level=... msg=... key=value...`, fields sorted by key.

    Values are quoted (Go `%q`) only when they hold a character outside `[A-Za-z0-9-._/@^+]`, as logrus
    does; that is why the walkthrough shows `name=CiliumBGPPeeringPolicy/v2alpha1` bare.
    """

    def value(text: object) -> str:
        rendered = str(text)
        return rendered if _PLAIN.match(rendered) else json.dumps(rendered, ensure_ascii=False)

    parts = [f"level={level}", f"msg={value(msg)}"]
    parts.extend(f"{key}={value(fields[key])}" for key in sorted(fields))
    return " ".join(parts)


def _truthy(config: Mapping[str, str], key: str, default: bool) -> bool:
    raw = config.get(key)
    return default if raw is None else raw.strip().lower() == "true"


def _resource_version(obj: Mapping[str, Any]) -> int:
    raw = str((obj.get("metadata") or {}).get("resourceVersion") or "0")
    return int(raw) if raw.isdigit() else 0


def _schema_version(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in text.strip().removeprefix("v").split("."))
    except ValueError:
        return None


class LBIPAMController(Controller):
    """LB IPAM over the API: informers on pools and services, `LBIPAM` decides, statuses are patched.

    The informers lag behind the operator's own writes; the status each write returned is used instead
    of an older cached object until the cache catches up, so a pass never decides from a state the
    operator has already changed (which, with a random allocation order, would hand out a second IP).
    """

    name = "cilium-operator-lb-ipam"

    def __init__(
        self,
        kube: Kube,
        *,
        version: str,
        log: LogFn,
        ipv4: bool = True,
        ipv6: bool = False,
        lb_classes: Sequence[str] = (),
        rng: random.Random | None = None,
        resync: float = 5.0,
    ) -> None:
        super().__init__(kube, resync=resync)
        self.log = log
        self.engine = LBIPAM(
            version=version, lb_classes=lb_classes, ipv4_enabled=ipv4, ipv6_enabled=ipv6, rng=rng
        )
        self.pools = self.inform(Resources.LB_IP_POOLS)
        self.services = self.inform(Resources.SERVICES)
        self.last_result: LBIPAMResult | None = None
        self._written: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._reported: set[str] = set()

    def _fresh(self, plural: str, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The cached objects, each replaced by the operator's own later write of it if there is one."""
        fresh: list[dict[str, Any]] = []
        for obj in objects:
            meta = obj.get("metadata") or {}
            key = (plural, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
            mine = self._written.get(key)
            if mine is not None:
                same_object = (mine.get("metadata") or {}).get("uid") == meta.get("uid")
                if same_object and _resource_version(mine) > _resource_version(obj):
                    fresh.append(mine)
                    continue
                del self._written[key]
            fresh.append(obj)
        present = {
            (plural, str(o["metadata"].get("namespace") or ""), str(o["metadata"]["name"])) for o in objects
        }
        for key in [k for k in self._written if k[0] == plural and k not in present]:
            del self._written[key]
        return fresh

    def _write(
        self, resource: KubeResource, name: str, namespace: str | None, status: dict[str, Any]
    ) -> None:
        # A `replace` of `/status` also works on a pool without status yet: kube-apiserver's json-patch
        # v4 lets `replace` create a missing member (evanphx/json-patch#204), and so does the lab's.
        written = self._patch(resource, name, namespace, status_patch(status))
        if written is not None:
            self._written[(resource.plural, namespace or "", name)] = written

    def _patch(
        self, resource: KubeResource, name: str, namespace: str | None, patch: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        try:
            return self.kube.patch(
                resource,
                name,
                patch,
                namespace,
                content_type=JSON_PATCH,
                subresource="status",
                field_manager=FIELD_MANAGER,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None  # deleted meanwhile: the next pass no longer sees it
            if exc.status == 422:
                self._report(f"Unable to update status of {resource.kind} '{name}': {exc.body}")
                return None
            raise

    def _report(self, message: str) -> None:
        if message not in self._reported:
            self._reported.add(message)
            self.log(logfmt("error", message, subsys="lbipam"))

    def reconcile(self) -> None:
        pools = self._fresh(Resources.LB_IP_POOLS.plural, self.pools.objects())
        services = self._fresh(Resources.SERVICES.plural, self.services.objects())
        result = self.engine.reconcile(pools, services)
        for name, status in result.pool_patches().items():
            self._write(Resources.LB_IP_POOLS, name, None, status)
        for (namespace, name), status in result.service_patches().items():
            self._write(Resources.SERVICES, name, namespace, status)
        for error in result.errors:
            self._report(error)
        self.last_result = result


class Operator:
    """The operator's behaviour on one API connection: `start`, `ready`, `exit_code`, `stop`.

    `rng` switches LB IPAM from lowest-free allocation to 1.13's random-start scan (`lbipam`).
    """

    def __init__(
        self,
        kube: Kube,
        log: LogFn,
        version: str = "1.13.4",
        *,
        namespace: str = "kube-system",
        rng: random.Random | None = None,
        api_host: str | None = None,
        resync: float = 5.0,
        crd_timeout: float = 60.0,
        hostname: str = "localhost",
        election_rng: random.Random | None = None,
        election_timers: ElectionTimers | None = None,
    ) -> None:
        cilium_minor(version, since=(1, 13), missing="the lab emulates no operator for Cilium {version}")
        self.kube = kube
        self.log = log
        self.version = version.removeprefix("v")
        self.namespace = namespace
        self.rng = rng
        self.api_host = api_host or str(kube.api_client.configuration.host)
        self.resync = resync
        self.crd_timeout = crd_timeout
        self.config: dict[str, str] = {}
        self.registered: list[CiliumCRD] = []
        self.created: list[CiliumCRD] = []
        self.lbipam: LBIPAMController | None = None
        self.cluster_pool: ClusterPoolAllocator | None = None
        self.bgp_node_configs: NodeConfigController | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._exit: int | None = None
        self._thread: threading.Thread | None = None
        election_rng = election_rng or random.Random()
        self.elector = LeaderElector(
            kube,
            namespace,
            leader.identity(hostname, election_rng),
            rng=election_rng,
            timers=election_timers,
            on_new_leader=self._new_leader,
        )

    # -- ContainerProgram ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="cilium-operator", daemon=True)
        self._thread.start()

    def ready(self) -> bool:
        return self._ready.is_set() and self._exit is None

    def exit_code(self) -> int | None:
        return self._exit

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=15)
        with self._lock:
            controller, self.lbipam = self.lbipam, None
            allocator, self.cluster_pool = self.cluster_pool, None
            node_configs, self.bgp_node_configs = self.bgp_node_configs, None
        for running in (controller, allocator, node_configs):
            if running is not None:
                running.stop()
        if self._exit is None:  # ReleaseOnCancel, once the leader's work has stopped; a process that
            self.elector.release()  # died (log.Fatal) released nothing: its lease is waited out

    # -- startup ---------------------------------------------------------------------------------
    def _info(self, msg: str, subsys: str = SUBSYS, **fields: object) -> None:
        self.log(logfmt("info", msg, subsys=subsys, **fields))

    def _fatal(self, msg: str, error: object, subsys: str = SUBSYS) -> None:
        self.log(logfmt("fatal", msg, error=error, subsys=subsys))
        self._exit = 1

    def _main(self) -> None:
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        self._info(f"Cilium Operator {self.version} go version {_GO_VERSION} linux/{arch}")
        self._info("Establishing connection to apiserver", subsys="k8s", host=self.api_host)
        config = self._read_config()
        if config is None:
            return
        self._info("Connected to apiserver", subsys="k8s")
        self.config = config
        try:
            self.register_crds()
        except Exception as exc:
            if not self._stop.is_set():
                self._fatal("Unable to create custom resource definition", exc)
            return
        if self._stop.is_set():
            return
        self._ready.set()  # no readiness probe: a replica waiting for the lease is healthy too
        if not self._lead():
            return
        self._start_ipam(config)
        interval = config.get("identity-gc-interval") or DEFAULT_IDENTITY_GC_INTERVAL
        if config.get("identity-allocation-mode", "crd") == "crd":
            self._info("Starting CRD identity garbage collector", interval=interval)
        self._start_lbipam(config)
        self._start_bgp_node_configs()
        self._info("Starting CNP derivative handler")
        self._info("Starting CCNP derivative handler")
        self._info("Initialization complete")
        if defects.active("operator-restarts-on-config-change"):
            threading.Thread(target=self._exit_on_config_change, name="operator-config", daemon=True).start()
        if not self.elector.renew_until_lost(self._stop):
            self._info("Leader election lost", **{"operator-id": self.elector.me})
            self._exit = 1

    def _lead(self) -> bool:
        """Campaign for the lease (`bgpconform.lab.cilium.leader`); True once this replica leads."""
        self._info("Waiting for leader election")
        if not self.elector.acquire(self._stop):
            return False
        self._info("Leading the operator HA deployment")
        return not self._stop.is_set()

    def _new_leader(self, holder: str) -> None:
        if holder != self.elector.me:
            self._info("Leader re-election complete", newLeader=holder, operatorID=self.elector.me)

    def _exit_on_config_change(self) -> None:
        """Defect: a watch on cilium-config that exits the operator, so it restarts on the new config."""
        while not self._stop.wait(0.5):
            now = self._read_config()
            if now is not None and now != self.config:
                self._fatal("cilium-config changed, restarting to apply it", "configuration changed")
                self._stop.set()
                return

    def _read_config(self) -> dict[str, str] | None:
        """`cilium-config` as it is now, read once (FACTS.md); transient API errors are retried."""
        while not self._stop.is_set():
            try:
                found = self.kube.get(Resources.CONFIGMAPS, CONFIG_MAP, self.namespace)
            except ApiException as exc:
                if exc.status == 404:
                    self._fatal(f"Unable to read ConfigMap {self.namespace}/{CONFIG_MAP}", "not found")
                    return None
                self._stop.wait(0.5)
                continue
            except Exception:
                self._stop.wait(0.5)
                continue
            data = found.get("data") or {}
            return {str(k): str(v) for k, v in data.items()}
        return None

    def register_crds(self) -> list[CiliumCRD]:
        """Create or update every CRD the configuration read at start calls for, logging as 1.13 does."""
        wanted = cilium_crds.crds_for_config(self.config, self.version)
        present: list[CiliumCRD] = []
        created: list[CiliumCRD] = []
        raced: list[CiliumCRD] = []
        existing: dict[str, dict[str, Any]] = {}
        for crd in wanted:
            found = self.kube.get_or_none(Resources.CRDS, crd.name)
            if found is None:
                self.log(
                    logfmt(
                        "info", "Creating CRD (CustomResourceDefinition)...", name=crd.log_name, subsys="k8s"
                    )
                )
                try:
                    self.kube.create(Resources.CRDS, self._definition(crd))
                except ApiException as exc:
                    if exc.status != 409:
                        raise
                    raced.append(crd)  # another operator created it: createUpdateCRD returns quietly
                    continue
                created.append(crd)
            else:
                existing[crd.name] = found
                present.append(crd)
        for crd in present:
            self._update_if_older(crd, existing[crd.name])
        for crd in [*present, *created]:
            self._wait_established(crd)
            self.log(
                logfmt(
                    "info",
                    "CRD (CustomResourceDefinition) is installed and up-to-date",
                    name=crd.log_name,
                    subsys="k8s",
                )
            )
        self.registered = [crd for crd in wanted if crd in present or crd in created or crd in raced]
        self.created = created
        return self.registered

    def _definition(self, crd: CiliumCRD) -> dict[str, Any]:
        definition = crd.definition(self.version)
        if crd is cilium_crds.BGPP and defects.active("operator-registers-policy-crd-unserved"):
            for version in definition["spec"]["versions"]:
                version["served"] = False
        if crd in cilium_crds.bgp_crds(self.version) and defects.active("operator-bgp-crd-not-structural"):
            for version in definition["spec"]["versions"]:
                version["schema"]["openAPIV3Schema"].pop("type", None)
        return definition

    def _update_if_older(self, crd: CiliumCRD, found: dict[str, Any]) -> None:
        """`needsUpdateV1`: no schema, no schema-version label, or an older one -> replace the spec."""
        wanted = self._definition(crd)
        ours = _schema_version(wanted["metadata"]["labels"][SCHEMA_VERSION_LABEL])
        labels = (found.get("metadata") or {}).get("labels") or {}
        theirs = _schema_version(str(labels.get(SCHEMA_VERSION_LABEL, "")))
        versions = (found.get("spec") or {}).get("versions") or [{}]
        has_schema = bool((versions[0].get("schema") or {}).get("openAPIV3Schema"))
        if has_schema and theirs is not None and ours is not None and theirs >= ours:
            return
        self.log(
            logfmt("info", "Updating CRD (CustomResourceDefinition)...", name=crd.log_name, subsys="k8s")
        )
        found = dict(found)
        found["metadata"] = dict(found["metadata"], labels=wanted["metadata"]["labels"])
        found["spec"] = wanted["spec"]
        self.kube.replace(Resources.CRDS, found)

    def _wait_established(self, crd: CiliumCRD) -> None:
        def established() -> bool:
            found = self.kube.get_or_none(Resources.CRDS, crd.name) or {}
            conditions = (found.get("status") or {}).get("conditions") or []
            return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

        try:
            wait_for(
                established,
                bool,
                expected=f"CRD {crd.name} established",
                timeout=self.crd_timeout,
                tolerate=(ApiException,),
            )
        except WaitTimeout:
            if not self._stop.is_set():
                raise

    def _start_ipam(self, config: Mapping[str, str]) -> None:
        """The leader's pod IPAM: cluster-pool hands out CiliumNode pod CIDRs (`cluster_pool`);
        `kubernetes` leaves them to the Nodes' own, which the agents copy."""
        mode = config.get("ipam") or "cluster-pool"
        self._info("Initializing IPAM", mode=mode)
        if mode != "cluster-pool":
            return
        allocator = ClusterPoolAllocator(self.kube, config, resync=self.resync)
        with self._lock:
            if self._stop.is_set():
                return
            self.cluster_pool = allocator
            allocator.start()

    def _start_bgp_node_configs(self) -> None:
        """BGPv2 (1.16+): the leader derives each selected node's CiliumBGPNodeConfig from the cluster
        configs (`bgp_node_configs`), once their CRDs are registered."""
        kinds = {crd.kind: crd.resource for crd in self.registered if crd.kind.startswith("CiliumBGP")}
        if "CiliumBGPClusterConfig" not in kinds or "CiliumBGPNodeConfig" not in kinds:
            return
        self._info("Starting BGP cluster config reconciler", subsys="bgp-cp-operator")
        controller = NodeConfigController(self.kube, kinds, resync=self.resync)
        with self._lock:
            if self._stop.is_set():
                return
            self.bgp_node_configs = controller
            controller.start()

    def _start_lbipam(self, config: Mapping[str, str]) -> None:
        """LB IPAM always runs (dormant until the first pool); 1.14+ also serve the BGP LB class."""
        bgp = _truthy(config, "enable-bgp-control-plane", False)
        newer = cilium_minor(self.version, since=(1, 13), missing="{version}") >= (1, 14)
        controller = LBIPAMController(
            self.kube,
            version=self.version,
            log=self.log,
            ipv4=_truthy(config, "enable-ipv4", True),
            ipv6=_truthy(config, "enable-ipv6", False),
            lb_classes=(BGP_LOAD_BALANCER_CLASS,) if bgp and newer else (),
            rng=self.rng,
            resync=self.resync,
        )
        with self._lock:
            if self._stop.is_set():
                return
            self.lbipam = controller
            controller.start()


class OperatorProgram:
    """The operator as the kubelet runs it for image `quay.io/cilium/operator-generic:*`.

    It has its own API client from the pod's kubeconfig and logs to the container's log. The version is
    the image tag's (the topology's Cilium version when the tag has none). LB IPAM's random choices
    (the allocator's start, same-second pool ties) come from the run's seed (`bgpconform.lab.chance`);
    `ctx.extra["lbipam_rng"]`, a `random.Random`, overrides it.
    """

    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx
        self.kube = Kube(new_api_client(ctx.kubeconfig))
        image = str(ctx.container.get("image") or "")
        version = image_version(image) or str(ctx.topology.cluster.cilium_version)
        env = {
            str(e.get("name")): str(e.get("value")) for e in ctx.container.get("env") or [] if "value" in e
        }
        host = env.get("KUBERNETES_SERVICE_HOST")
        api_host = f"https://{host}:{env.get('KUBERNETES_SERVICE_PORT', '443')}" if host else None
        rng = ctx.extra.get("lbipam_rng")
        self.operator = Operator(
            self.kube,
            ctx.log,
            version,
            namespace=ctx.pod_namespace,
            rng=rng if isinstance(rng, random.Random) else chance.stream("lbipam"),
            api_host=api_host,
            hostname=ctx.node.name,  # hostNetwork: the pod's hostname is its node's
            election_rng=chance.stream("operator-election"),
        )

    def start(self) -> None:
        self.operator.start()

    def ready(self) -> bool:
        return self.operator.ready() and not defects.active("operator-never-ready")

    def exit_code(self) -> int | None:
        return self.operator.exit_code()

    def stop(self) -> None:
        self.operator.stop()
        self.kube.api_client.close()  # type: ignore[no-untyped-call]
