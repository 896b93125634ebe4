"""`cilium install` and `cilium uninstall` for the lab: the manifests applied through the API.

The lab's kubelet then runs the DaemonSet's and the Deployment's pods with the emulated agent and
operator, exactly as a real cluster pulls and runs the images; nothing here starts a program itself.
"""

from __future__ import annotations

from typing import Any

from bgpconform.cilium.install import CiliumInstaller, CiliumValues
from bgpconform.kubeapi.client import ApiException, Kube, KubeResource
from bgpconform.lab.cilium.manifests import manifests

__all__ = ["LabCiliumInstaller"]


class LabCiliumInstaller(CiliumInstaller):
    """Create-or-replace on install (so a second install with other values updates in place),
    delete in reverse order on uninstall. The operator's CRDs and custom resources are left alone."""

    def __init__(self, kube: Kube, namespace: str = "kube-system", tool: str = "cilium") -> None:
        self.kube = kube
        self.tool = tool  # which installer the lab's stands for: the values it is given say what it left
        self.namespace = namespace
        self._installed: list[tuple[KubeResource, dict[str, Any]]] = []

    def install(self, values: CiliumValues) -> None:
        self.namespace = values.namespace
        objects = manifests(values)
        for resource, obj in objects:
            self._apply(resource, obj)
        self._installed = objects

    def upgrade(self, values: CiliumValues) -> None:
        """As Helm's upgrade: the same objects replaced with the new release's; the lab's DaemonSet and
        Deployment controllers then roll the pods as their update strategies say."""
        self.install(values)

    def _apply(self, resource: KubeResource, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace")
        for _ in range(5):
            found = self.kube.get_or_none(resource, meta["name"], namespace)
            try:
                if found is None:
                    self.kube.create(resource, obj, namespace)
                else:
                    merged_meta = dict(meta, resourceVersion=found["metadata"]["resourceVersion"])
                    self.kube.replace(resource, {**obj, "metadata": merged_meta})
                return
            except ApiException as exc:
                if exc.status not in (409,):  # created or changed meanwhile: read it again
                    raise
        raise RuntimeError(f"could not apply {resource.kind} {meta['name']}: it kept changing")

    def uninstall(self) -> None:
        objects = self._installed or manifests(CiliumValues(namespace=self.namespace))
        for resource, obj in reversed(objects):
            meta = obj["metadata"]
            try:
                self.kube.delete(resource, meta["name"], meta.get("namespace"))
            except ApiException as exc:
                if exc.status != 404:  # what is not there is already uninstalled, as cilium-cli takes it
                    raise
        self._installed = []
