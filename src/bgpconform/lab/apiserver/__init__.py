"""The lab's embedded Kubernetes API server.

A real-enough kube-apiserver for the official clients and kubectl: discovery, built-in resources,
CRDs with structural schemas, watch, the patch formats, server-side apply, and pod logs and exec
whose content the emulated components supply.
"""

from bgpconform.lab.apiserver.exec_registry import ExecHandler, ExecRegistry, ExecResult
from bgpconform.lab.apiserver.logs import LogRegistry
from bgpconform.lab.apiserver.server import ApiServer

__all__ = ["ApiServer", "ExecHandler", "ExecRegistry", "ExecResult", "LogRegistry"]
