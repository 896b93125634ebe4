"""How Cilium's own objects are found: names and label selectors `cilium install` gives them.

Kept apart from the operations so light importers (the stage machine behind `lab up`) do not load
the Kubernetes client's streaming support.
"""

from __future__ import annotations

CONFIG_MAP = "cilium-config"
AGENT_SELECTOR = "k8s-app=cilium"
OPERATOR_SELECTOR = "io.cilium/app=operator"
OPERATOR_DEPLOYMENT = "cilium-operator"  # in the Cilium namespace, as cilium-cli and Helm name it
AGENT_CONTAINER = "cilium-agent"
