"""Where the lab may trade faithfulness for speed, each by name, off unless asked for.

The lab is as slow as a real cluster by default (Cilium 1.13's BGP dials on GoBGP's default timers:
first dial 5-10 s after a neighbor is added, then every 120-239 s; FACTS.md, "BGP control plane v1").
A shortcut is chosen with `pytest --lab-shortcut NAME` or `bgpconform lab up --shortcut NAME`, and a
run that used one says so in its report (`shortcuts in force`, at the top). A lab process runs one lab,
so the active set is process-wide, set where the defects' is (`LabCluster.start`, `lab serve`).
"""

from __future__ import annotations

from bgpconform.lab.switches import Switches

SHORTCUTS: dict[str, str] = {
    "short-bgp-timers": (
        "the agents dial with the topology's bgp.timers (connect retry "
        "{connect_retry} s, which GoBGP raises to at least 5 s: a dial every 5-9 s) instead of the "
        "timers Cilium {cilium_version} leaves to GoBGP (first dial 5-10 s, then every 120-239 s)"
    ),
    "router-dials": (
        "the nodes' BGP speakers listen on port 179, so the router's dial (its connect retry "
        "{connect_retry} s) brings a session up as well as the node's; Cilium's GoBGP only dials "
        "out (ListenPort -1; BGPv2 listens only where localPort is set), and GoBGP's first dial comes "
        "5-9 s after a neighbor is added or a session is lost"
    ),
}

_switches = Switches("--lab-shortcut", "shortcut", SHORTCUTS)
checked = _switches.checked
activate = _switches.activate
active = _switches.active


def describe(name: str, **facts: object) -> str:
    """The shortcut as a report states it, with the run's values filled in."""
    return f"{name}: {SHORTCUTS[name].format(**facts)}"
