"""The fault port of a target that cannot pull a node's cable itself (a rack: the harness reaches its
nodes only through their APIs). Asking for the fault fails with what it would take, before anything
has changed."""

from __future__ import annotations

from bgpconform.targets.port import FaultUnsupported


class UnsupportedFaults:
    def __init__(self, target: str, remedy: str) -> None:
        self.target = target
        self.remedy = remedy

    def isolate_node(self, node: str) -> None:
        raise FaultUnsupported(
            f"the {self.target} target cannot take node {node} off its network: {self.remedy}"
        )

    def restore_node(self, node: str) -> None:
        raise FaultUnsupported(f"the {self.target} target cannot bring node {node} back: {self.remedy}")
