"""A stand-in for cilium-cli on the PATH of an install-mode run against a lab (no cilium-cli can be had
here). `install` applies what the lab's installer applies for the walkthrough's values, `uninstall
--wait` deletes it and waits for Cilium's pods to go, leaving the CRDs as cilium-cli does (FACTS.md),
`version --client` names itself; each through the kubeconfig and `--context` cilium-cli is given. The
cluster under it, and everything the harness then does, is the lab's."""

from __future__ import annotations

import os
import sys

from bgpconform.cilium.install import CiliumValues
from bgpconform.cilium.labels import AGENT_SELECTOR, OPERATOR_SELECTOR
from bgpconform.kubeapi.client import Kube, Resources, new_api_client
from bgpconform.lab.cilium.install import LabCiliumInstaller
from bgpconform.topology import load_topology
from bgpconform.waiting import wait_for

TOPOLOGY_VARIABLE = "BGPCONFORM_FAKE_CILIUM_TOPOLOGY"


def main(argv: list[str]) -> int:
    if argv[:2] == ["version", "--client"]:
        print("cilium-cli: v0.15.4 (bgpconform test stand-in)")
        return 0
    context = next((a.split("=", 1)[1] for a in argv if a.startswith("--context=")), None)
    kube = Kube(new_api_client(os.environ["KUBECONFIG"], context=context))
    installer = LabCiliumInstaller(kube)
    if argv[0] == "install":
        installer.install(CiliumValues.for_topology(load_topology(os.environ[TOPOLOGY_VARIABLE])))
        print("Cilium was successfully installed (stand-in)")
        return 0
    if argv[0] == "uninstall":
        installer.uninstall()
        if "--wait" in argv:
            wait_for(
                lambda: (
                    kube.items(Resources.PODS, "kube-system", label_selector=AGENT_SELECTOR)
                    + kube.items(Resources.PODS, "kube-system", label_selector=OPERATOR_SELECTOR)
                ),
                lambda pods: not pods,
                expected="every Cilium pod gone",
                timeout=60,
            )
        print("Cilium was successfully uninstalled (stand-in)")
        return 0
    print(f"stand-in cilium-cli: {' '.join(argv)}: not supported", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
