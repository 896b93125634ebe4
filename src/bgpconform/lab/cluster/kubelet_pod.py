"""What the lab's kubelet remembers about each pod, and the pod status it derives from that.

The status follows kubelet 1.27's `generateAPIPodStatus`: container states and reasons
(`ContainerCreating`, `PodInitializing`, `ErrImagePull`, `ImagePullBackOff`, `CrashLoopBackOff`),
`getPhase`, and the four conditions with their false reasons and messages, so that `kubectl get pods`
prints `Init:1/6`, `0/1 Running`, `CrashLoopBackOff` as the walkthrough's cluster does.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bgpconform.lab.cluster.runtime import ContainerProgram, ProgramFactory
from bgpconform.lab.network import PodAttachment


def qualified_image(image: str) -> str:
    """The reference containerd reports for an image: `nginx:latest` -> `docker.io/library/nginx:latest`."""
    name, _, digest = image.partition("@")
    first, _, rest = name.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}" if rest else f"docker.io/library/{name}"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and not digest:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def image_id(image: str) -> str:
    """`<repository>@sha256:<digest>`; the digest is derived from the name, the lab pulls nothing."""
    reference = qualified_image(image)
    repository = reference.split("@", 1)[0]
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:
        repository = repository[: len(repository) - len(last)] + last.split(":", 1)[0]
    return f"{repository}@sha256:{hashlib.sha256(reference.encode()).hexdigest()}"


def new_container_id() -> str:
    return "containerd://" + secrets.token_hex(32)


def go_duration(seconds: float) -> str:
    """A Go `time.Duration` string (`10s`, `1m20s`, `5m0s`, `500ms`), as kubelet messages print them."""
    if seconds <= 0:
        return "0s"
    if seconds < 0.001:
        return f"{round(seconds * 1_000_000)}µs"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:g}s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    if minutes:
        return f"{minutes}m{secs}"
    return secs


@dataclass
class ContainerRecord:
    """One container of a pod: its current instance, its history, and its backoff."""

    name: str
    spec: dict[str, Any]
    init: bool
    state: dict[str, Any]
    factory: ProgramFactory | None = None  # set once the image "is present"
    program: ContainerProgram | None = None
    container_id: str = ""
    last_state: dict[str, Any] = field(default_factory=dict)
    restart_count: int = 0
    started: bool = False
    ready: bool = False
    ran: bool = False  # some instance was created: the status then names the resolved image
    run_since: float = 0.0
    init_deadline: float | None = None
    crash_steps: int = 0
    pull_steps: int = 0
    pull_failed_at: float | None = None
    pull_retry_at: float = 0.0
    pull_window: float = 0.0
    backoff_until: float = 0.0
    backoff_window: float = 0.0
    done: bool = False  # terminated for good (restart policy says no more)

    @property
    def image(self) -> str:
        return str(self.spec.get("image", ""))

    @property
    def field_path(self) -> str:
        return f"spec.{'initContainers' if self.init else 'containers'}{{{self.name}}}"

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def completed(self) -> bool:
        """An init container that ran to exit code 0."""
        terminated = self.state.get("terminated")
        return terminated is not None and int(terminated.get("exitCode", 1)) == 0

    def api_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            "state": self.state,
            "lastState": self.last_state,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "image": qualified_image(self.image) if self.ran else self.image,
            "imageID": image_id(self.image) if self.ran else "",
            "started": self.started,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


@dataclass
class PodRecord:
    """One pod the kubelet has admitted, keyed by uid (a pod recreated under its name is another pod)."""

    uid: str
    namespace: str
    name: str
    directory: Path
    host_network: bool
    restart_policy: str
    init: list[ContainerRecord]
    containers: list[ContainerRecord]
    start_time: str
    attachment: PodAttachment | None = None
    sandbox: bool = False
    sandbox_retry_at: float = 0.0
    killed: bool = False
    transitions: dict[str, tuple[str, str]] = field(default_factory=dict)
    written: dict[str, Any] | None = None

    @property
    def network_key(self) -> str:
        return f"{self.namespace}/{self.name}/{self.uid}"

    @property
    def initialized(self) -> bool:
        return all(c.completed for c in self.init)

    def all_records(self) -> list[ContainerRecord]:
        return [*self.init, *self.containers]


def waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    return {"waiting": state}


def new_pod_record(pod: dict[str, Any], directory: Path, start_time: str) -> PodRecord:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    has_init = bool(spec.get("initContainers"))
    # kubelet's default waiting reason: PodInitializing while a pod has init containers to run.
    default = "PodInitializing" if has_init else "ContainerCreating"

    def records(key: str, init: bool) -> list[ContainerRecord]:
        return [
            ContainerRecord(name=c["name"], spec=c, init=init, state=waiting(default))
            for c in spec.get(key) or []
        ]

    record = PodRecord(
        uid=meta["uid"],
        namespace=meta["namespace"],
        name=meta["name"],
        directory=directory,
        host_network=bool(spec.get("hostNetwork")),
        restart_policy=spec.get("restartPolicy") or "Always",
        init=records("initContainers", True),
        containers=records("containers", False),
        start_time=start_time,
    )
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("lastTransitionTime"):
            record.transitions[condition["type"]] = (condition["status"], condition["lastTransitionTime"])
    return record


def pod_phase(record: PodRecord) -> str:
    """kubelet 1.27 `getPhase`: Pending until every container started once, terminal per restartPolicy."""
    if not record.initialized:
        return "Pending"
    running = waiting_count = stopped = succeeded = 0
    for c in record.containers:
        if c.running:
            running += 1
        elif "terminated" in c.state:
            stopped += 1
            if int(c.state["terminated"].get("exitCode", 1)) == 0:
                succeeded += 1
        elif c.last_state.get("terminated") is not None:
            stopped += 1
        else:
            waiting_count += 1
    if waiting_count:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if record.restart_policy == "Always" and not record.killed:
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if record.restart_policy == "Never" or record.killed:
            return "Failed"
        return "Running"
    return "Pending"


def pod_conditions(record: PodRecord, phase: str, now: str, scheduled: dict[str, Any] | None) -> list[Any]:
    """Initialized, Ready, ContainersReady, PodScheduled in kubelet's order, with transition times kept."""
    terminal = phase in ("Succeeded", "Failed")
    incomplete = [c.name for c in record.init if not c.completed]
    unready = [c.name for c in record.containers if not c.ready]
    wanted: list[tuple[str, bool, str, str]] = []
    if incomplete:
        wanted.append(
            (
                "Initialized",
                False,
                "ContainersNotInitialized",
                f"containers with incomplete status: [{' '.join(incomplete)}]",
            )
        )
    else:
        wanted.append(("Initialized", True, "", ""))
    if terminal:
        ready = ("PodCompleted", "")
    elif incomplete or unready:
        names = unready if not incomplete else [c.name for c in record.containers]
        ready = ("ContainersNotReady", f"containers with unready status: [{' '.join(names)}]")
    else:
        ready = ("", "")
    wanted.append(("Ready", not ready[0], *ready))
    wanted.append(("ContainersReady", not ready[0], *ready))
    conditions: list[dict[str, Any]] = []
    for kind, ok, reason, message in wanted:
        status = "True" if ok else "False"
        previous = record.transitions.get(kind)
        if previous is None or previous[0] != status:
            record.transitions[kind] = (status, now)
        condition: dict[str, Any] = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": record.transitions[kind][1],
            # Explicit nulls: the status is a strategic merge patch, which would keep a stale reason.
            "reason": reason or None,
            "message": message or None,
        }
        conditions.append(condition)
    # The scheduler writes PodScheduled; a pod bound by hand gets True from the kubelet, as the real one does.
    if scheduled is None:
        record.transitions.setdefault("PodScheduled", ("True", now))
        scheduled = {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": record.transitions["PodScheduled"][1],
        }
    conditions.append(scheduled)
    return conditions


def pod_status(record: PodRecord, pod: dict[str, Any], host_ip: str, now: str) -> dict[str, Any]:
    """The status the kubelet PATCHes; `qosClass` and any condition it does not own are left as they are."""
    phase = pod_phase(record)
    existing = pod.get("status") or {}
    scheduled = next((c for c in existing.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": pod_conditions(record, phase, now, scheduled),
        "hostIP": host_ip,
        "startTime": record.start_time,
        "containerStatuses": [c.api_status() for c in record.containers],
    }
    if record.init:
        status["initContainerStatuses"] = [c.api_status() for c in record.init]
    ip = host_ip if record.host_network else (str(record.attachment.ip) if record.attachment else None)
    if record.sandbox and ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return status
