"""The Cilium port: cilium-cli's operations as the steps use them, whatever carries them out.

`CiliumOperations` does them over any cluster's API; a target may offer another implementation.
"""

from __future__ import annotations

from typing import Any, Protocol

from bgpconform.cilium.bgp_peers import BgpPeer
from bgpconform.cilium.labels import AGENT_CONTAINER


class CiliumPort(Protocol):
    def config_get(self) -> dict[str, str]:
        """`cilium config view`."""

    def config_set(self, key: str, value: str, *, restart: bool = True) -> list[str]:
        """`cilium config set KEY VALUE`; returns the pods it deleted."""

    def restart_operator(self) -> list[str]:
        """Delete the operator pods; returns their names."""

    def restart_agent(self, node: str) -> str:
        """Delete the agent pod on `node` (its DaemonSet starts another); returns the deleted pod."""

    def agent_pods(self) -> list[dict[str, Any]]: ...

    def operator_pods(self) -> list[dict[str, Any]]: ...

    def logs(self, pod: str, container: str) -> str: ...

    def bgp_peers(self) -> dict[str, list[BgpPeer]]:
        """`cilium bgp peers`: node name -> that agent's peers."""

    def exec(self, pod: str, command: list[str], *, container: str = AGENT_CONTAINER) -> str: ...
