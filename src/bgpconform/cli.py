"""The `bgpconform` command: checks and housekeeping a person runs outside pytest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bgpconform.errors import BgpconformError


def _topology_check(args: argparse.Namespace) -> int:
    from bgpconform.topology import load_topology

    topology = load_topology(args.file)
    print(
        f"{args.file}: valid: cluster {topology.cluster.name}, {len(topology.nodes)} nodes "
        f"({len(topology.bgp_nodes)} peering), router {topology.router.kind} {topology.router.address} "
        f"AS {topology.router.asn}, {len(topology.lb_pools)} LB pool(s)"
    )
    return 0


def _lab_sweep(args: argparse.Namespace) -> int:
    from bgpconform.lab.prerequisites import check_lab_prerequisites
    from bgpconform.lab.runs import sweep_stale_runs

    check_lab_prerequisites()
    swept = sweep_stale_runs()
    for run in swept:
        namespaces = " ".join(run.namespaces) or "-"
        print(f"removed stale lab run {run.run_id} (owner pid {run.owner_pid}): {namespaces}")
    if not swept:
        print("no stale lab runs")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bgpconform", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    topology = commands.add_parser("topology", help="topology files")
    topology_commands = topology.add_subparsers(dest="topology_command", required=True)
    check = topology_commands.add_parser("check", help="validate a topology file")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=_topology_check)

    lab = commands.add_parser("lab", help="the lab target on this machine")
    lab_commands = lab.add_subparsers(dest="lab_command", required=True)
    sweep = lab_commands.add_parser("sweep", help="remove what killed lab runs left behind")
    sweep.set_defaults(handler=_lab_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BgpconformError as exc:
        print(f"bgpconform: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
