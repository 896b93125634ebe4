"""cilium-cli's operations, done the way the release in use does them, through the Kubernetes API only.

- `cilium config view` / `config set` (FACTS.md, "CRD registration, config, logs"): `set` patches
  ConfigMap `cilium-config` and deletes the agent pods (`k8s-app=cilium`) so that they restart with it;
  up to cilium-cli v0.18.6 the operator is NOT restarted, which is why the walkthrough's BGP policy CRD
  stays missing until the operator pod is deleted by hand (`restart_operator`); from v0.18.7 it is
  (`cli_versions.config_set_restarts_operator`).
- `cilium bgp peers` (FACTS.md, "`cilium bgp peers`"): exec `cilium bgp peers -o json` in container
  `cilium-agent` of every agent pod and key the result by the pod's node.

Every call goes over the API, so the same code drives the lab, k3d and a real cluster.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

import kubernetes.client

from bgpconform.cilium.bgp_peers import BgpPeer, parse_agent_json, peers_command
from bgpconform.cilium.cli_versions import WALKTHROUGH_CLI, config_set_restarts_operator
from bgpconform.cilium.labels import AGENT_CONTAINER, AGENT_SELECTOR, CONFIG_MAP, OPERATOR_SELECTOR
from bgpconform.errors import HarnessError
from bgpconform.kubeapi.client import MERGE_PATCH, Kube, Resources

__all__ = [
    "AGENT_CONTAINER",
    "AGENT_SELECTOR",
    "CONFIG_MAP",
    "OPERATOR_SELECTOR",
    "CiliumOperationError",
    "CiliumOperations",
]

EXEC_TIMEOUT = 30.0
ERROR_CHANNEL = 3


def _exit_status(text: str) -> tuple[int, str]:
    """The exit code and message from the exec's status channel (a `metav1.Status`).

    Success is 0; a command that ran and failed carries `ExitCode` in `details.causes`; anything else
    (no such container, the runtime refused) counts as -1 with the Status message.
    """
    if not text.strip():
        return -1, "the exec stream ended without an exit status"
    try:
        status = json.loads(text)
    except ValueError:
        return -1, text
    if status.get("status") == "Success":
        return 0, ""
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message")), str(status.get("message") or "")
            except (TypeError, ValueError):
                break
    return -1, str(status.get("message") or text)


class CiliumOperationError(HarnessError):
    """A cilium operation could not be carried out; the message says which pod and what it answered."""


def _name(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"]["name"])


class CiliumOperations:
    """cilium-cli's operations against the cluster `kube` talks to, Cilium living in `namespace`."""

    def __init__(
        self,
        kube: Kube,
        namespace: str = "kube-system",
        cilium_version: str = "1.13.4",
        cli_version: str = WALKTHROUGH_CLI,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.cilium_version = cilium_version
        self.cli_version = cli_version

    # -- config -----------------------------------------------------------------------------------
    def config_get(self) -> dict[str, str]:
        """`cilium config view`: the ConfigMap's data."""
        found = self.kube.get(Resources.CONFIGMAPS, CONFIG_MAP, self.namespace)
        return {str(k): str(v) for k, v in (found.get("data") or {}).items()}

    def config_set(self, key: str, value: str, *, restart: bool = True) -> list[str]:
        """`cilium config set KEY VALUE`: patch the ConfigMap, then delete the agent pods, and from
        cilium-cli v0.18.7 the operator pods too (`--restart=false` skips it). Returns the deleted pods."""
        self.kube.patch(
            Resources.CONFIGMAPS, CONFIG_MAP, {"data": {key: value}}, self.namespace, content_type=MERGE_PATCH
        )
        if not restart:
            return []
        deleted = self._delete_pods(AGENT_SELECTOR)
        if config_set_restarts_operator(self.cli_version):
            deleted += self._delete_pods(OPERATOR_SELECTOR)
        return deleted

    def restart_operator(self) -> list[str]:
        """What the walkthrough does by hand (`k delete pod ... cilium-operator-...`) and cilium-cli
        v0.18.7+ does after `config set`: delete the operator pods. Returns their names."""
        return self._delete_pods(OPERATOR_SELECTOR)

    def restart_agent(self, node: str) -> str:
        """`kubectl delete pod` of the agent on `node`, as an operator restarts one agent."""
        for pod in self.agent_pods():
            if (pod.get("spec") or {}).get("nodeName") == node and not pod["metadata"].get(
                "deletionTimestamp"
            ):
                self.kube.delete(Resources.PODS, _name(pod), self.namespace)
                return _name(pod)
        raise CiliumOperationError(f"no running Cilium agent pod on node {node}")

    def _delete_pods(self, selector: str) -> list[str]:
        deleted: list[str] = []
        for pod in self.kube.items(Resources.PODS, self.namespace, label_selector=selector):
            self.kube.delete(Resources.PODS, _name(pod), self.namespace)
            deleted.append(_name(pod))
        return deleted

    # -- pods -------------------------------------------------------------------------------------
    def agent_pods(self) -> list[dict[str, Any]]:
        """The agent pods (`k8s-app=cilium`), as the API returns them."""
        return self.kube.items(Resources.PODS, self.namespace, label_selector=AGENT_SELECTOR)

    def operator_pods(self) -> list[dict[str, Any]]:
        """The operator pods (`io.cilium/app=operator`)."""
        return self.kube.items(Resources.PODS, self.namespace, label_selector=OPERATOR_SELECTOR)

    def logs(self, pod: str, container: str) -> str:
        """`kubectl logs POD -c CONTAINER`: what the steps compare with the documented log lines."""
        return self.kube.pod_log(pod, container, self.namespace)

    # -- bgp --------------------------------------------------------------------------------------
    def bgp_peers(self) -> dict[str, list[BgpPeer]]:
        """`cilium bgp peers`: node name -> that agent's peers, from an exec in each agent pod.

        Pods being deleted or not yet on a node are skipped; any other pod whose exec fails or whose
        output does not parse fails the whole call, naming every pod that failed and what it said.
        """
        result: dict[str, list[BgpPeer]] = {}
        failures: list[str] = []
        for pod in self.agent_pods():
            meta, spec = pod["metadata"], pod.get("spec") or {}
            node = spec.get("nodeName")
            if meta.get("deletionTimestamp") or not node:
                continue
            try:
                stdout = self.exec(_name(pod), peers_command(self.cilium_version), container=AGENT_CONTAINER)
                result[str(node)] = parse_agent_json(stdout)
            except (CiliumOperationError, ValueError) as exc:
                failures.append(f"{_name(pod)} on {node}: {exc}")
        if failures:
            raise CiliumOperationError("cilium bgp peers failed:\n  " + "\n  ".join(failures))
        return result

    def exec(self, pod: str, command: list[str], *, container: str = AGENT_CONTAINER) -> str:
        """Run `command` in a container over the API's exec (WebSocket) and return its stdout.

        A separate `ApiClient` is used: `kubernetes.stream.stream` swaps the client's request method for
        the duration of the call, which would break other threads sharing `self.kube`'s client.
        `CoreV1Api` is imported here, on first use: with clients that load API classes lazily (37 and
        later) its module alone costs about a second of imports, which `bgpconform lab serve` would
        pay before its API answers.
        """
        from kubernetes.client.api.core_v1_api import CoreV1Api
        from kubernetes.stream import stream

        api_client = kubernetes.client.ApiClient(self.kube.api_client.configuration)
        try:
            core: Any = CoreV1Api(api_client)  # generated, untyped
            session: Any = stream(
                core.connect_get_namespaced_pod_exec,
                pod,
                self.namespace,
                command=command,
                container=container,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
            )
            try:
                session.run_forever(timeout=EXEC_TIMEOUT)
                stdout = str(session.read_stdout() or "")
                stderr = str(session.read_stderr() or "")
                status = str(session.read_channel(ERROR_CHANNEL) or "")
            finally:
                session.close()
                with contextlib.suppress(Exception):
                    session.sock.shutdown()  # after a server-side close, close() leaves the socket open
        except kubernetes.client.ApiException as exc:
            raise CiliumOperationError(
                f"exec {' '.join(command)} in {pod}/{container}: {exc.status} {exc.reason}"
            ) from exc
        finally:
            api_client.close()  # type: ignore[no-untyped-call]
        code, message = _exit_status(status)
        if code != 0:
            detail = (stderr or message or stdout).strip()
            raise CiliumOperationError(
                f"exec {' '.join(command)} in {pod}/{container} exited {code}"
                + (f": {detail}" if detail else "")
            )
        return stdout
