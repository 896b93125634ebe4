"""Prints the lab's bring-up, BGP convergence and teardown times on this machine.

Figures, not asserts: targets are network bring-up with FRR answering under 2 s, all sessions
Established within 1 s of GoBGP's connect attempt (GoBGP 3.10 waits about 5 s before it), and
teardown under 1 s.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from datetime import datetime
from pathlib import Path

from bgpconform.bgp_states import SessionState
from bgpconform.lab.lab import Lab
from bgpconform.topology import load_topology
from bgpconform.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
_TIME = re.compile(r"^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\.\d+)")
_ACCEPTED = re.compile(r"BGP connection from host (\S+)")
_ESTABLISHED = re.compile(r"(\S+) went from OpenConfirm to Established")


def connect_to_established(lab: Lab) -> tuple[list[float], float]:
    """Per peer, seconds from bgpd accepting the speaker's TCP connection to Established (its log),
    and the wall-clock time of the last accepted connection."""
    accepted: dict[str, datetime] = {}
    delays: list[float] = []
    last_accept = float("nan")
    for line in (lab.run.directory / "frr" / "bgpd.log").read_text(errors="replace").splitlines():
        stamp = _TIME.match(line)
        if not stamp:
            continue
        when = datetime.strptime(stamp.group(1), "%Y/%m/%d %H:%M:%S.%f")
        if (match := _ACCEPTED.search(line)) and match.group(1) not in accepted:
            accepted[match.group(1)] = when
            last_accept = when.timestamp()
        elif (match := _ESTABLISHED.search(line)) and match.group(1) in accepted:
            delays.append((when - accepted.pop(match.group(1))).total_seconds())
    return delays, last_accept


def one_round(topology_path: Path) -> dict[str, float]:
    topology = load_topology(topology_path)
    lab = Lab(topology, purpose="bench")
    began = time.monotonic()
    lab.start()
    bring_up = time.monotonic() - began
    try:
        lab.router.configure_peers(lab.topology_peers())
        peers = {node.address for node in topology.bgp_nodes}
        started = time.monotonic()
        lab.start_speakers()
        wait_for(
            lambda: {s.peer: s.state for s in lab.router.sessions()},
            lambda states: all(states.get(p) is SessionState.ESTABLISHED for p in peers),
            expected="all sessions established",
            timeout=60,
            interval=0.02,
            max_interval=0.05,
        )
        established = time.monotonic() - started
        observed_at = time.time()
        handshakes, last_accept = connect_to_established(lab)
    finally:
        lab.stop()
    return {
        "bring_up": bring_up,
        "network": lab.timings.network,
        "router": lab.timings.router,
        "established": established,
        "after_first_connect": max(handshakes) if handshakes else float("nan"),
        "observed_after_connect": observed_at - last_accept,
        "teardown": lab.timings.teardown,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topology", type=Path, default=REPO / "topologies" / "lab.yaml")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = [one_round(args.topology) for _ in range(args.rounds)]
    print(f"lab benchmark: {args.rounds} rounds, topology {args.topology}")
    rows = [
        ("network bring-up with FRR answering", "bring_up", "target < 2.0 s"),
        ("  of which namespaces and links", "network", ""),
        ("  of which FRR start", "router", ""),
        ("speakers started -> all Established", "established", "GoBGP first connect ~5 s"),
        ("connection accepted -> Established (worst peer)", "after_first_connect", "target < 1.0 s"),
        ("last connection -> harness saw all Established", "observed_after_connect", "target < 1.0 s"),
        ("teardown", "teardown", "target < 1.0 s"),
    ]
    for label, key, target in rows:
        values = [r[key] for r in rounds]
        print(f"  {label:<48} median {statistics.median(values):6.3f} s  max {max(values):6.3f} s  {target}")


if __name__ == "__main__":
    main()
