"""Checks before a real-cluster run changes anything, each failure one line naming what to fix.

All checks run even after one fails, so a user fixes a rack in one pass: the API, the topology's
nodes, the router login, the versions the topology declares against what runs, and the outside
client's path to the router (the only way it may reach the LB IPs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bgpconform.cilium.labels import AGENT_SELECTOR
from bgpconform.cilium.versions import image_version
from bgpconform.errors import BgpconformError, PrerequisiteError
from bgpconform.kubeapi.client import Kube, Resources
from bgpconform.routers.port import RouterPort
from bgpconform.routers.routeros import RouterOsRouter
from bgpconform.targets.cluster.access import KubeAccess
from bgpconform.targets.curl_client import CurlClient
from bgpconform.topology import Topology


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


class PreflightFailed(PrerequisiteError):
    """The user's cluster, router or client is not ready for the run; nothing was changed."""

    def __init__(self, checks: list[Check]) -> None:
        self.checks = checks
        failed = [check.line() for check in checks if not check.ok]
        super().__init__("preflight failed, nothing was changed:\n  " + "\n  ".join(failed))


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _attempt(name: str, probe: Callable[[], Check]) -> Check:
    try:
        return probe()
    except (BgpconformError, OSError) as exc:
        return Check(name, False, _short(exc))
    except Exception as exc:  # the kubernetes client raises its own and urllib3's errors
        return Check(name, False, f"{type(exc).__name__}: {_short(exc)}")


class Preflight:
    def __init__(
        self,
        topology: Topology,
        access: KubeAccess,
        kube: Kube,
        router: RouterPort,
        client: CurlClient,
        *,
        cilium_expected: bool,
    ) -> None:
        self.topology = topology
        self.access = access
        self.kube = kube
        self.router = router
        self.client = client
        self.cilium_expected = cilium_expected  # verify mode: Cilium must already run

    def run(self) -> list[Check]:
        api = _attempt("Kubernetes API", self._api)
        checks = [api]
        if api.ok:
            checks += [_attempt("nodes", self._nodes), _attempt("k3s version", self._k3s_version)]
            if self.cilium_expected:
                checks.append(_attempt("Cilium version", self._cilium_version))
        checks += [_attempt("router login", self._router), _attempt("outside client", self._client)]
        return checks

    def _api(self) -> Check:
        version = self.kube.get_path("/version")
        return Check("Kubernetes API", True, f"{version.get('gitVersion', '?')} at {self.access}")

    def _nodes(self) -> Check:
        present = {node["metadata"]["name"] for node in self.kube.items(Resources.NODES)}
        missing = [node.name for node in self.topology.nodes if node.name not in present]
        if missing:
            return Check(
                "nodes",
                False,
                f"{', '.join(missing)} not in the cluster (it has: {', '.join(sorted(present)) or 'none'}); "
                f"fix: name the nodes in {self.topology.source} as `kubectl get nodes` does",
            )
        return Check("nodes", True, f"all {len(self.topology.nodes)} present")

    def _k3s_version(self) -> Check:
        declared = self.topology.cluster.k3s_version
        running = sorted(
            {
                node["status"]["nodeInfo"]["kubeletVersion"]
                for node in self.kube.items(Resources.NODES)
                if node["metadata"]["name"] in {n.name for n in self.topology.nodes}
            }
        )
        if running != [declared]:
            return Check(
                "k3s version",
                False,
                f"cluster.k3s_version is {declared} but the nodes run {', '.join(running) or 'nothing'}; "
                f"fix: set k3s_version in {self.topology.source} to what `kubectl get nodes` shows",
            )
        return Check("k3s version", True, declared)

    def _cilium_version(self) -> Check:
        declared = self.topology.cluster.cilium_version
        agents = self.kube.items(Resources.PODS, "kube-system", label_selector=AGENT_SELECTOR)
        images = {str(pod["spec"]["containers"][0]["image"]) for pod in agents}
        running = sorted({image_version(image) or image for image in images})
        if not running:
            return Check(
                "Cilium version",
                False,
                "no Cilium agent pods (k8s-app=cilium in kube-system), and verify mode checks a running "
                "Cilium; fix: install Cilium first, or run --mode=install",
            )
        if running != [declared]:
            return Check(
                "Cilium version",
                False,
                f"cluster.cilium_version is {declared} but the agents run {', '.join(running)}; "
                f"fix: set cilium_version in {self.topology.source} to the running version",
            )
        return Check("Cilium version", True, declared)

    def _router(self) -> Check:
        shown = self.router.version()
        if isinstance(self.router, RouterOsRouter):
            declared = self.topology.router.routeros_version
            running = self.router.routeros_version.number
            if running != declared:
                return Check(
                    "router login",
                    False,
                    f"logged in, but router.routeros_version is {declared} and the router runs {running}; "
                    f'fix: set routeros_version: "{running}" in {self.topology.source}',
                )
        return Check("router login", True, shown)

    def _client(self) -> Check:
        gateway = self.topology.router.north_address.ip
        problem = self.client.reaches(gateway)
        if problem is not None:
            return Check(
                "outside client",
                False,
                f"{self.client.place} cannot reach the router's north address {gateway}: {problem}; "
                "fix: check client.namespace / client.ssh and the client's route to the router",
            )
        return Check("outside client", True, f"{self.client.place} reaches {gateway}")
