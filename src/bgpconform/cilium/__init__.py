"""Cilium operations over the Kubernetes API, the same on every target (lab, k3d, a real rack).

What cilium-cli v0.15 does for the walkthrough's steps (`cilium config set`, `cilium bgp peers`), and the
install contract each target implements (FACTS.md, "Cilium: CRD registration, config, logs").
"""

from bgpconform.cilium.install import CiliumInstaller, CiliumValues
from bgpconform.cilium.operations import CiliumOperationError, CiliumOperations

__all__ = ["CiliumInstaller", "CiliumOperationError", "CiliumOperations", "CiliumValues"]
