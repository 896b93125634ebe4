"""The lab's kubelet: what a k3s v1.27.3 agent does for its node, as seen through the API.

One per topology node. It registers the Node (labels, podCIDR, the not-ready taint, NotReady with
kubelet 1.27's "cni plugin not initialized" message until a CNI config appears in the node's CNI
directory, as containerd decides NetworkReady: FACTS.md "k3s and k3d", walkthrough's first
`kubectl get nodes`), renews its Lease, and runs the pods bound to it: hostNetwork pods at once, the
others only once the network is ready (walkthrough: coredns and local-path-provisioner stay Pending
until Cilium runs), init containers one after the other (`Init:1/6` .. `Init:4/6` for the cilium
pods), then containers through the `ImageRegistry`, restarted with CrashLoopBackOff when they exit.

Deviations from a real kubelet, on purpose:
- One control loop ticking every `tick` seconds instead of per-pod workers and PLEG; container exits
  and readiness are polled each tick.
- Backoffs (`backoff_base`, default 1 s, doubling to 30x the base) are scaled down from the real 10 s
  doubling to 5 min, so a lab run is short; init containers run nothing and complete after
  `init_step` seconds each.
- No probes other than `ContainerProgram.ready()`, no volumes, resources, cgroups or eviction; no
  graceful termination period (the lab's API server deletes pods at once).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from bgpconform.kubeapi.client import STRATEGIC_MERGE_PATCH, ApiException, Kube, Resources
from bgpconform.lab import defects
from bgpconform.lab.apiserver.exec_registry import ExecHandler, ExecRegistry
from bgpconform.lab.apiserver.logs import LogSink
from bgpconform.lab.cluster import kubelet_node as nodes
from bgpconform.lab.cluster.controller import Controller
from bgpconform.lab.cluster.informer import Informer
from bgpconform.lab.cluster.kubelet_pod import (
    ContainerRecord,
    PodRecord,
    go_duration,
    new_container_id,
    new_pod_record,
    pod_status,
    qualified_image,
    waiting,
)
from bgpconform.lab.cluster.runtime import ContainerContext, ImageNotFound, ImageRegistry
from bgpconform.lab.network import LabNetwork
from bgpconform.topology import Node, Topology

log = logging.getLogger(__name__)

__all__ = ["CNI_NOT_INITIALIZED", "NETWORK_NOT_READY_EVENT", "Kubelet"]

CNI_NOT_INITIALIZED = nodes.CNI_NOT_INITIALIZED
# kubelet 1.27 `SyncPod`: a pod needing the pod network on a node whose runtime network is not ready is
# not started; the kubelet records event NetworkNotReady with `NetworkNotReadyErrorMsg: <network error>`
# and retries. No sandbox is attempted, so there is no FailedCreatePodSandBox at this stage.
NETWORK_NOT_READY_EVENT = "network is not ready: " + CNI_NOT_INITIALIZED
# libcni (containerd's CRI plugin) loads network configs with these extensions from the conf dir.
CNI_CONFIG_SUFFIXES = (".conf", ".conflist", ".json")
LEASE_DURATION = 40  # kubelet default nodeLeaseDurationSeconds
EVENT_REPEAT = 2.0  # how often a repeated warning bumps its Event's count, at most


class Kubelet(Controller):
    """The kubelet of one lab node; a level-triggered loop over the pods bound to it.

    Every keyword after `k3s_version` is a float (timings), so callers may pass them as `**dict`.
    """

    # The walkthrough's Raspberry Pis; a class attribute, so a subclass or a caller may change it.
    architecture = nodes.DEFAULT_ARCHITECTURE

    def __init__(
        self,
        kube: Kube,
        *,
        node: Node,
        topology: Topology,
        network: LabNetwork,
        images: ImageRegistry,
        logs: LogSink,
        exec_handlers: ExecRegistry,
        kubeconfig: str,
        directory: Path,
        k3s_version: str,
        init_step: float = 0.15,
        backoff_base: float = 1.0,
        tick: float = 0.1,
        status_report_interval: float = 60.0,
        lease_renew_interval: float = 10.0,
    ) -> None:
        super().__init__(kube, resync=tick)
        self.name = f"kubelet-{node.name}"
        self.node = node
        self.topology = topology
        self.network = network
        self.images = images
        self.logs = logs
        self.exec_handlers = exec_handlers
        self.kubeconfig = kubeconfig
        self.directory = Path(directory)
        self.k3s_version = k3s_version
        self.init_step = init_step
        self.backoff_base = backoff_base
        # Real: 10 s doubling to 5 min (MaxContainerBackOff); the same ratio, scaled.
        self.backoff_max = backoff_base * 30
        self.status_report_interval = status_report_interval
        self.lease_renew_interval = lease_renew_interval
        self.boot_id = str(uuid.uuid4())
        self.pods: Informer = self.inform(Resources.PODS, field_selector=f"spec.nodeName={node.name}")
        self._records: dict[str, PodRecord] = {}
        self._registered = False
        self._node_transitions: dict[str, tuple[str, str]] = {}
        self._reported_ready: bool | None = None
        self._last_report = 0.0
        self._lease_renewed_at: float | None = None
        self._lease_served = True
        self._events: dict[tuple[str, ...], tuple[str, int, float]] = {}
        self._shut_down = False

    # -- public ----------------------------------------------------------------------------------
    @property
    def cni_config_dir(self) -> Path:
        """k3s's `--cni-conf-dir` (`/var/lib/rancher/k3s/agent/etc/cni/net.d`), under the node's directory."""
        return self.directory / "etc" / "cni" / "net.d"

    @property
    def pods_dir(self) -> Path:
        return self.directory / "pods"

    def network_ready(self) -> bool:
        """containerd's NetworkReady: some parseable network config in the CNI config directory."""
        if defects.active("nodes-ready-without-cni"):
            return True
        if defects.active("node-never-network-ready") and self.node.name == max(
            node.name for node in self.topology.nodes
        ):
            return False  # the CNI config is there; this node's runtime never loads it
        try:
            entries = sorted(self.cni_config_dir.iterdir())
        except OSError:
            return False
        for entry in entries:
            if entry.suffix not in CNI_CONFIG_SUFFIXES or not entry.is_file():
                continue
            try:
                config = json.loads(entry.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(config, dict) and (config.get("plugins") or config.get("type")):
                return True
        return False

    def start(self) -> Kubelet:
        self.cni_config_dir.mkdir(parents=True, exist_ok=True)
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        super().start()
        return self

    def on_stop(self) -> None:
        """Stop every container program and remove every pod namespace; runs once even if called again."""
        if self._shut_down:
            return
        self._shut_down = True
        for record in list(self._records.values()):
            self._teardown(record)
        self._records.clear()

    # -- the loop --------------------------------------------------------------------------------
    def reconcile(self) -> None:
        ready = self.network_ready()
        self._sync_node(ready)
        self._renew_lease()
        pods = {pod["metadata"]["uid"]: pod for pod in self.pods.objects()}
        for uid in [uid for uid in self._records if uid not in pods]:
            self._teardown(self._records.pop(uid))
        failures = []
        for pod in pods.values():
            if self.stopping:
                return
            try:
                self._sync_pod(pod, ready)
            except Exception as exc:
                log.warning("%s: syncing pod %s failed: %s", self.name, pod["metadata"]["name"], exc)
                failures.append(exc)
        if failures:
            self.last_error = failures[-1]

    # -- node ------------------------------------------------------------------------------------
    def _sync_node(self, ready: bool) -> None:
        monotonic = time.monotonic()
        due = monotonic - self._last_report >= self.status_report_interval
        if self._registered and ready == self._reported_ready and not due:
            return
        heartbeat = nodes.now_rfc3339()
        conditions = nodes.node_conditions(ready, heartbeat, self._node_transitions)
        status = nodes.node_status(
            self.node,
            k3s_version=self.k3s_version,
            architecture=self.architecture,
            boot_id=self.boot_id,
            conditions=conditions,
        )
        if not self._registered:
            self._register(status)
        else:
            try:
                self.kube.patch(
                    Resources.NODES,
                    self.node.name,
                    {"status": status},
                    content_type=STRATEGIC_MERGE_PATCH,
                    subresource="status",
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self._registered = False  # deleted under us: register again, as kubelet does
                self._register(status)
        if self._reported_ready is not None and ready != self._reported_ready:
            reason = "NodeReady" if ready else "NodeNotReady"
            self._node_event(reason, f"Node {self.node.name} status is now: {reason}")
        self._reported_ready = ready
        self._last_report = monotonic

    def _register(self, status: dict[str, Any]) -> None:
        """Create the Node, or adopt an existing one (a kubelet restart), refreshing its own labels."""
        body = nodes.node_object(self.node, self.architecture, status)
        try:
            self.kube.create(Resources.NODES, body)
            log.info("%s: registered node %s", self.name, self.node.name)
        except ApiException as exc:
            if exc.status != 409:
                raise
            meta = {"labels": body["metadata"]["labels"], "annotations": body["metadata"]["annotations"]}
            self.kube.patch(Resources.NODES, self.node.name, {"metadata": meta})
            self.kube.patch(
                Resources.NODES,
                self.node.name,
                {"status": status},
                content_type=STRATEGIC_MERGE_PATCH,
                subresource="status",
            )
        self._registered = True
        self._node_event("Starting", "Starting kubelet.")

    def _renew_lease(self) -> None:
        """The node heartbeat kubelet renews every 10 s in kube-node-lease (if the server serves leases)."""
        monotonic = time.monotonic()
        if not self._lease_served or (
            self._lease_renewed_at is not None
            and monotonic - self._lease_renewed_at < self.lease_renew_interval
        ):
            return
        self._lease_renewed_at = monotonic
        spec = {"renewTime": nodes.now_micro()}
        try:
            self.kube.patch(Resources.LEASES, self.node.name, {"spec": spec}, "kube-node-lease")
            return
        except ApiException as exc:
            if exc.status != 404:
                raise
        lease = {
            "metadata": {"name": self.node.name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": self.node.name, "leaseDurationSeconds": LEASE_DURATION, **spec},
        }
        try:
            self.kube.create(Resources.LEASES, lease, "kube-node-lease")
        except ApiException as exc:
            if exc.status == 404:
                self._lease_served = False  # the lab's API server does not serve leases
                log.debug("%s: leases are not served; not renewing", self.name)
            elif exc.status != 409:
                raise

    # -- pods ------------------------------------------------------------------------------------
    def _sync_pod(self, pod: dict[str, Any], network_ready: bool) -> None:
        meta = pod["metadata"]
        record = self._records.get(meta["uid"])
        if record is None:
            record = new_pod_record(pod, self.pods_dir / meta["uid"], nodes.now_rfc3339())
            self._records[record.uid] = record
        if meta.get("deletionTimestamp"):
            if not record.killed:
                self._kill(record, pod)
                self._write_status(record, pod)
            return
        if record.killed:
            return
        if self._ensure_sandbox(record, pod, network_ready):
            self._run_init_containers(record, pod)
            if record.initialized:
                for container in record.containers:
                    self._sync_container(record, container, pod)
        status = self._write_status(record, pod)
        if status is not None and status["phase"] in ("Succeeded", "Failed"):
            # A terminal pod's sandbox is torn down; its status stays.
            self._kill(record, pod)

    def _ensure_sandbox(self, record: PodRecord, pod: dict[str, Any], network_ready: bool) -> bool:
        if record.sandbox:
            return True
        if record.host_network:
            record.sandbox = True
            return True
        if not network_ready:
            self._pod_event(pod, "NetworkNotReady", NETWORK_NOT_READY_EVENT, warning=True)
            return False
        if time.monotonic() < record.sandbox_retry_at:
            return False
        try:
            record.attachment = self.network.attach_pod(self.node.name, record.network_key)
        except Exception as exc:
            record.sandbox_retry_at = time.monotonic() + 1.0
            sandbox = new_container_id().removeprefix("containerd://")
            message = (
                "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network "
                f'for sandbox "{sandbox}": {exc}'
            )
            self._pod_event(pod, "FailedCreatePodSandBox", message, warning=True)
            return False
        record.sandbox = True
        return True

    def _run_init_containers(self, record: PodRecord, pod: dict[str, Any]) -> None:
        """One at a time, in order; each runs for `init_step` seconds and completes with exit code 0."""
        for container in record.init:
            if container.completed:
                continue
            now = time.monotonic()
            if container.init_deadline is None:
                if not self._pull(record, container, pod):
                    return
                container.container_id = new_container_id()
                container.ran = True
                container.state = {"running": {"startedAt": nodes.now_rfc3339()}}
                container.init_deadline = now + self.init_step
                self._container_events(pod, container)
            if now < container.init_deadline:
                return
            container.state = {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": container.state["running"]["startedAt"],
                    "finishedAt": nodes.now_rfc3339(),
                    "containerID": container.container_id,
                }
            }
            container.ready = True

    def _pull(self, record: PodRecord, container: ContainerRecord, pod: dict[str, Any]) -> bool:
        """Find the image's program: ErrImagePull, then ImagePullBackOff until the retry, if there is none."""
        if container.factory is not None:
            return True
        image = container.image
        now = time.monotonic()
        if container.pull_failed_at is not None and now < container.pull_retry_at:
            # The first half of a backoff window shows the pull error, the second the back-off.
            halfway = now - container.pull_failed_at >= container.pull_window / 2
            if halfway and container.state.get("waiting", {}).get("reason") != "ImagePullBackOff":
                container.state = waiting("ImagePullBackOff", f'Back-off pulling image "{image}"')
                self._pod_event(pod, "BackOff", f'Back-off pulling image "{image}"', container, True)
                self._pod_event(pod, "Failed", "Error: ImagePullBackOff", container, True)
            return False
        policy = container.spec.get("imagePullPolicy") or "IfNotPresent"
        if policy == "Always" or container.pull_failed_at is not None:
            self._pod_event(pod, "Pulling", f'Pulling image "{image}"', container)
        began = time.monotonic()
        try:
            factory = self.images.resolve(image)
        except ImageNotFound:
            reference = qualified_image(image)
            message = (
                f'rpc error: code = NotFound desc = failed to pull and unpack image "{reference}": '
                f'failed to resolve reference "{reference}": {reference}: not found'
            )
            container.state = waiting("ErrImagePull", message)
            container.pull_failed_at = now
            container.pull_window = min(self.backoff_base * 2**container.pull_steps, self.backoff_max)
            container.pull_retry_at = now + container.pull_window
            container.pull_steps += 1
            self._pod_event(pod, "Failed", f'Failed to pull image "{image}": {message}', container, True)
            self._pod_event(pod, "Failed", "Error: ErrImagePull", container, True)
            return False
        if policy == "Always" or container.pull_failed_at is not None:
            took = go_duration(time.monotonic() - began)
            message = f'Successfully pulled image "{image}" in {took} ({took} including waiting)'
            self._pod_event(pod, "Pulled", message, container)
        else:
            self._pod_event(pod, "Pulled", f'Container image "{image}" already present on machine', container)
        container.factory = factory
        container.pull_failed_at = None
        container.pull_retry_at = 0.0
        return True

    def _sync_container(self, record: PodRecord, container: ContainerRecord, pod: dict[str, Any]) -> None:
        if container.done:
            return
        now = time.monotonic()
        if container.program is not None:
            code = self._exit_code(container)
            if code is None:
                container.ready = self._probe(container)
                return
            self._exited(record, container, code, pod)
            if container.done:
                return
            now = time.monotonic()
        if now < container.backoff_until:
            if container.state.get("waiting", {}).get("reason") != "CrashLoopBackOff":
                message = (
                    f"back-off {go_duration(container.backoff_window)} restarting failed "
                    f"container={container.name} pod={record.name}_{record.namespace}({record.uid})"
                )
                container.state = waiting("CrashLoopBackOff", message)
                self._pod_event(
                    pod,
                    "BackOff",
                    f"Back-off restarting failed container {container.name} in pod "
                    f"{record.name}_{record.namespace}({record.uid})",
                    container,
                    True,
                )
            return
        if not self._pull(record, container, pod):
            return
        self._start(record, container, pod)

    def _start(self, record: PodRecord, container: ContainerRecord, pod: dict[str, Any]) -> None:
        assert container.factory is not None
        directory = record.directory / container.name
        directory.mkdir(parents=True, exist_ok=True)
        namespace, name, container_name = record.namespace, record.name, container.name

        def write_log(line: str) -> None:
            self.logs.append(namespace, name, container_name, line)

        def register_exec(handler: ExecHandler) -> None:
            self.exec_handlers.register(namespace, name, container_name, handler)

        context = ContainerContext(
            pod=pod,
            container=container.spec,
            node=self.node,
            topology=self.topology,
            network=self.network,
            kubeconfig=self.kubeconfig,
            directory=directory,
            attachment=record.attachment,
            log=write_log,
            register_exec=register_exec,
            extra={"cni_config_dir": self.cni_config_dir, "architecture": self.architecture},
        )
        started_at = nodes.now_rfc3339()
        container.container_id = new_container_id()
        container.ran = True
        container.run_since = time.monotonic()
        try:
            program = container.factory(context)
            container.program = program
            program.start()
        except Exception as exc:
            # containerd's StartError: the task never ran; counts as an exit with code 128.
            log.warning("%s: container %s/%s failed to start: %s", self.name, name, container_name, exc)
            container.state = {"running": {"startedAt": started_at}}
            self._pod_event(pod, "Failed", f"Error: {exc}", container, True)
            self._exited(record, container, 128, pod, reason="StartError", message=str(exc))
            return
        container.state = {"running": {"startedAt": started_at}}
        container.started = True
        container.ready = self._probe(container)
        self._container_events(pod, container)

    def _exited(
        self,
        record: PodRecord,
        container: ContainerRecord,
        code: int,
        pod: dict[str, Any],
        *,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        """Record the instance's end; schedule the restart the restart policy asks for, with backoff."""
        self._stop_program(container)
        started_at = container.state.get("running", {}).get("startedAt") or nodes.now_rfc3339()
        terminated: dict[str, Any] = {
            "exitCode": code,
            "reason": reason or ("Completed" if code == 0 else "Error"),
            "startedAt": started_at,
            "finishedAt": nodes.now_rfc3339(),
            "containerID": container.container_id,
        }
        if message:
            terminated["message"] = message
        container.started = False
        container.ready = False
        policy = record.restart_policy
        if policy == "Never" or (policy == "OnFailure" and code == 0):
            container.state = {"terminated": terminated}
            container.done = True
            return
        container.last_state = {"terminated": terminated}
        container.state = {"terminated": terminated}
        container.restart_count += 1
        now = time.monotonic()
        if now - container.run_since > 2 * self.backoff_max:
            container.crash_steps = 0  # ran long enough: the backoff starts over, as kubelet's does
        # kubelet restarts a container the first time at once; from the second exit it backs off.
        window = 0.0 if container.crash_steps == 0 else self.backoff_base * 2 ** (container.crash_steps - 1)
        container.backoff_window = min(window, self.backoff_max)
        container.backoff_until = now + container.backoff_window if window else 0.0
        container.crash_steps += 1

    def _kill(self, record: PodRecord, pod: dict[str, Any]) -> None:
        """Stop the pod's containers (deleted, or terminal) and tear its sandbox down."""
        record.killed = True
        for container in record.all_records():
            if container.program is not None:
                self._pod_event(pod, "Killing", f"Stopping container {container.name}", container)
                started_at = container.state.get("running", {}).get("startedAt", "")
                self._stop_program(container)
                container.state = {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": started_at,
                        "finishedAt": nodes.now_rfc3339(),
                        "containerID": container.container_id,
                    }
                }
                container.ready = False
                container.started = False
        self._release(record)

    def _teardown(self, record: PodRecord) -> None:
        """The pod is gone from the API: stop what is left, release its namespace, forget it."""
        for container in record.all_records():
            self._stop_program(container)
        self._release(record)
        self.exec_handlers.unregister(record.namespace, record.name)
        for key in [key for key in self._events if key[1] == record.uid]:
            del self._events[key]

    def _release(self, record: PodRecord) -> None:
        if record.attachment is not None:
            try:
                self.network.detach_pod(record.network_key)
            except Exception as exc:
                log.warning("%s: detaching pod %s failed: %s", self.name, record.name, exc)
        shutil.rmtree(record.directory, ignore_errors=True)

    def _stop_program(self, container: ContainerRecord) -> None:
        program, container.program = container.program, None
        if program is None:
            return
        try:
            program.stop()
        except Exception as exc:
            log.warning("%s: stopping container %s failed: %s", self.name, container.name, exc)

    def _exit_code(self, container: ContainerRecord) -> int | None:
        assert container.program is not None
        try:
            return container.program.exit_code()
        except Exception as exc:
            log.warning("%s: container %s: exit_code() failed: %s", self.name, container.name, exc)
            return 255

    def _probe(self, container: ContainerRecord) -> bool:
        if container.program is None:
            return False
        try:
            return bool(container.program.ready())
        except Exception as exc:
            log.debug("%s: readiness of %s failed: %s", self.name, container.name, exc)
            return False

    def _write_status(self, record: PodRecord, pod: dict[str, Any]) -> dict[str, Any] | None:
        """PATCH the status subresource when it differs from what this kubelet last wrote."""
        status = pod_status(record, pod, str(self.node.address), nodes.now_rfc3339())
        if status == record.written:
            return status
        try:
            self.kube.patch(
                Resources.PODS,
                record.name,
                {"status": status},
                record.namespace,
                content_type=STRATEGIC_MERGE_PATCH,
                subresource="status",
            )
        except ApiException as exc:
            if exc.status == 404:
                return None  # deleted meanwhile; the informer will say so
            raise
        record.written = status
        return status

    # -- events ----------------------------------------------------------------------------------
    def _container_events(self, pod: dict[str, Any], container: ContainerRecord) -> None:
        self._pod_event(pod, "Created", f"Created container {container.name}", container)
        self._pod_event(pod, "Started", f"Started container {container.name}", container)

    def _pod_event(
        self,
        pod: dict[str, Any],
        reason: str,
        message: str,
        container: ContainerRecord | None = None,
        warning: bool = False,
    ) -> None:
        meta = pod["metadata"]
        involved = {
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": "v1",
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if container is not None:
            involved["fieldPath"] = container.field_path
        self._event(meta["namespace"], involved, reason, message, warning)

    def _node_event(self, reason: str, message: str) -> None:
        # kubelet's node reference carries the node name as its uid.
        involved = {"kind": "Node", "name": self.node.name, "uid": self.node.name, "apiVersion": "v1"}
        self._event("default", involved, reason, message, False)

    def _event(
        self, namespace: str, involved: dict[str, str], reason: str, message: str, warning: bool
    ) -> None:
        """Record an Event as client-go's recorder does: a repeat bumps `count` on the first one."""
        key = (namespace, involved.get("uid", ""), involved.get("fieldPath", ""), reason, message)
        now = time.monotonic()
        stamp = nodes.now_rfc3339()
        try:
            known = self._events.get(key)
            if known is not None:
                name, count, last = known
                if now - last < EVENT_REPEAT:
                    return
                self.kube.patch(
                    Resources.EVENTS, name, {"count": count + 1, "lastTimestamp": stamp}, namespace
                )
                self._events[key] = (name, count + 1, now)
                return
            name = f"{involved['name']}.{uuid.uuid4().hex[:16]}"
            event = {
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": involved,
                "reason": reason,
                "message": message,
                "source": {"component": "kubelet", "host": self.node.name},
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
                "type": "Warning" if warning else "Normal",
                "eventTime": None,
                "reportingComponent": "kubelet",
                "reportingInstance": self.node.name,
            }
            self.kube.create(Resources.EVENTS, event, namespace)
            self._events[key] = (name, 1, now)
        except Exception as exc:
            # As client-go's recorder: an event that cannot be written is dropped, never fatal.
            log.debug("%s: event %s dropped: %s", self.name, reason, exc)
