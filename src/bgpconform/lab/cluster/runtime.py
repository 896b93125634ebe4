"""The contract between the emulated kubelet and what runs in a container.

The lab cannot pull images, so the kubelet maps an image to a program: a real process (nginx) or an
emulated component (the Cilium agent and operator). A program lives on its node and may touch the
node's namespaces through `ContainerContext.lab`; Kubernetes objects it reaches only through the API,
with a client made from `ContainerContext.kubeconfig`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bgpconform.lab.apiserver.exec_registry import ExecHandler

if TYPE_CHECKING:
    from bgpconform.lab.network import LabNetwork, PodAttachment
    from bgpconform.topology import Node, Topology


@dataclass
class ContainerContext:
    """What a program is given when its container starts."""

    pod: dict[str, Any]  # the pod as the kubelet last read it
    container: dict[str, Any]  # the container's spec
    node: Node
    topology: Topology
    network: LabNetwork
    kubeconfig: str
    directory: Path  # the container's own scratch directory, removed with the pod
    attachment: PodAttachment | None  # None for hostNetwork pods: they live in the node's namespace
    log: Callable[[str], None]  # append a line to the container's log (`kubectl logs`)
    register_exec: Callable[[ExecHandler], None]  # answer `kubectl exec` into this container
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        """The network namespace the container's processes run in."""
        if self.attachment is not None:
            return self.attachment.namespace
        return self.network.node_ns[self.node.name]

    @property
    def pod_namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def pod_name(self) -> str:
        return str(self.pod["metadata"]["name"])


class ContainerProgram(Protocol):
    """A running container: the kubelet starts it, probes it, and stops it."""

    def start(self) -> None:
        """Begin running; may return before the program is ready. Raise to fail the start."""

    def ready(self) -> bool:
        """The readiness probe's answer (a container without a probe answers True once started)."""

    def exit_code(self) -> int | None:
        """None while running; the exit code once the program has ended on its own."""

    def stop(self) -> None:
        """End the program and release what it holds; called once, also after it exited."""


ProgramFactory = Callable[[ContainerContext], ContainerProgram]


class ImageNotFound(LookupError):
    """No program for an image: the kubelet reports ErrImagePull, as a cluster cut off from registries."""


class ImageRegistry:
    """Image patterns (fnmatch, e.g. `nginx:*`, `quay.io/cilium/cilium:*`) to program factories."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, ProgramFactory]] = []

    def register(self, pattern: str, factory: ProgramFactory) -> None:
        self._entries.append((pattern, factory))

    def resolve(self, image: str) -> ProgramFactory:
        for pattern, factory in self._entries:
            if fnmatch.fnmatchcase(image, pattern) or fnmatch.fnmatchcase(_normalise(image), pattern):
                return factory
        raise ImageNotFound(image)


def _normalise(image: str) -> str:
    """`nginx` and `docker.io/library/nginx` are the same image as `nginx:latest`."""
    name = image.split("@", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        name += ":latest"
    return name
