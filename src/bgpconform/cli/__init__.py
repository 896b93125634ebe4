"""The `bgpconform` command: checks and housekeeping a person runs outside pytest."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bgpconform.errors import BgpconformError, ConfigError


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


DEFAULT_TOPOLOGY = Path("topologies/lab.yaml")


def _topology_file(given: Path | None) -> Path:
    path = given if given is not None else DEFAULT_TOPOLOGY
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such topology file; run from the repository root or pass --topology FILE"
        )
    return path.resolve()


def _lab_up(args: argparse.Namespace) -> int:
    from bgpconform.cli.lab_commands import up
    from bgpconform.lab.defects import checked
    from bgpconform.lab.prerequisites import check_lab_prerequisites
    from bgpconform.lab.shortcuts import checked as shortcut_names
    from bgpconform.stage import parse_stage

    def check_topology() -> None:
        from bgpconform.topology import load_topology  # imported while the lab process starts

        load_topology(path)

    began = time.monotonic()
    check_lab_prerequisites()
    path = _topology_file(args.topology)
    parse_stage(args.stage)  # a bad stage name is reported here, listing the stages
    chosen = tuple(sorted(checked(args.defect)))  # and so is an unknown defect
    # and so is a bad file, not in the background process's log
    state = up(
        path,
        timeout=args.timeout,
        stage=args.stage,
        check=check_topology,
        defects=chosen,
        seed=args.seed,
        shortcuts=tuple(sorted(shortcut_names(args.shortcut))),
    )
    details = state.details
    total = time.monotonic() - began
    client = state.client_namespace
    print(f"lab {details['run_id']} is up in {total:.2f}s at stage {args.stage} (topology {path})")
    if args.stage == "minimal":
        print("A minimal k3s without CNI: nodes NotReady, coredns and local-path-provisioner Pending.")
    print()
    print(f"  export KUBECONFIG={state.kubeconfig}")
    print("  kubectl get nodes")
    print()
    print(
        f"Outside client ({details['client_address']}, north of the router): ip netns exec {client} curl ..."
    )
    print(f"Router (FRR): {details['router_vtysh']} -c 'show bgp summary'")
    if "routeros_api" in details:
        print(
            f"Router (RouterOS {details['routeros_version']} API): {details['routeros_api']}, login from "
            "the topology's credential variables, or admin with an empty password when they are unset"
        )
    if chosen:
        print(f"Started broken on purpose, with: {', '.join(chosen)} (bgpconform lab defects says how)")
    print("Stop and remove everything: bgpconform lab down")
    return 0


def _lab_status(args: argparse.Namespace) -> int:
    from bgpconform.cli.lab_commands import read_state
    from bgpconform.kubeapi.client import Kube, Resources, new_api_client

    state = read_state()
    if state is None or not state.alive:
        print("no lab is up")
        return 1
    details = state.details
    print(f"lab {details['run_id']} up (pid {state.pid}, topology {state.topology})")
    print(f"  export KUBECONFIG={state.kubeconfig}")
    print(f"  API {details['api_url']} (pid {details.get('api_pid')}, log {details.get('api_log')})")
    if "routeros_api" in details:
        print(f"  RouterOS {details['routeros_version']} API {details['routeros_api']}")
    if "seed" in details:
        print(f"  seed {details['seed']} (replay: bgpconform lab up --seed {details['seed']})")
    for name in details.get("shortcuts") or []:
        print(f"  shortcut in force: {name}")
    for name in details.get("defects") or []:
        print(f"  defect switched on: {name}")
    kube = Kube(new_api_client(state.kubeconfig))
    for node in kube.items(Resources.NODES):
        ready: dict[str, Any] = next(
            (c for c in node.get("status", {}).get("conditions", []) if c.get("type") == "Ready"), {}
        )
        status = "Ready" if ready.get("status") == "True" else "NotReady"
        print(f"  node {node['metadata']['name']}: {status}")
    namespaces = details["namespaces"]
    print(f"  client namespace {namespaces['client']}, router namespace {namespaces['router']}")
    return 0


def _lab_down(args: argparse.Namespace) -> int:
    from bgpconform.cli.lab_commands import down
    from bgpconform.lab.prerequisites import check_lab_prerequisites

    check_lab_prerequisites()
    state = down(timeout=args.timeout)
    if state is None:
        print("no lab was up; stale runs (if any) removed")
    else:
        print(f"lab {state.details['run_id']} is down; everything it made is removed")
    return 0


def _lab_defects(args: argparse.Namespace) -> int:
    from bgpconform.lab.defects import CATALOGUE, markdown_table

    if args.markdown:
        print(markdown_table(), end="")
        return 0
    for defect in CATALOGUE.values():
        print(f"{defect.name}\n  {defect.summary}\n  lives in: {defect.lives_in}\n  source: {defect.source}")
        print(f"  caught by: Then {defect.caught_by} (on topologies/{defect.topology})")
    return 0


def _lab_serve(args: argparse.Namespace) -> int:
    from bgpconform.cli.lab_commands import serve

    return serve(args.topology, args.stage, tuple(args.defect), args.seed, tuple(args.shortcut))


def _report_compare(args: argparse.Namespace) -> int:
    from bgpconform.report.compare import compare, load_report, render_html, render_text

    comparison = compare(load_report(args.old), load_report(args.new))
    if args.html is not None:
        try:
            args.html.write_text(render_html(comparison), encoding="utf-8")
        except OSError as exc:
            reason = exc.strerror or exc
            raise ConfigError(
                f"{args.html}: cannot write the HTML comparison ({reason}); pass --html a writable path"
            ) from None
    print(render_text(comparison), end="")
    if args.html is not None:
        print(f"HTML comparison written to {args.html}", file=sys.stderr)
    return 0


DEFAULT_MATRIX_TOPOLOGIES = "lab.yaml,lab-ebgp.yaml"


def _project_root(command: str) -> Path:
    """The directory the suite's pytest runs in: its `testpaths` (features/) and default topology hold
    only there, so a command started elsewhere is told where instead of running something else."""
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if (candidate / "features").is_dir() and (candidate / "topologies").is_dir():
            if candidate == here:
                return here
            raise ConfigError(
                f"bgpconform {command} runs the suite of the project it is started in; {here} is inside "
                f"the project at {candidate}; fix: cd {candidate} and run it there"
            )
    raise ConfigError(
        f"bgpconform {command}: {here} holds no features/ and topologies/, nor does any directory above "
        "it; fix: run it from the bgpconform project (where README.md's commands run)"
    )


def _suite(args: argparse.Namespace) -> int:
    """The suite on the lab split over labs side by side, then one merged report."""
    from bgpconform.report.merge import ShardOutcome
    from bgpconform.report.redact import Redactor
    from bgpconform.report.runinfo import file_sha256
    from bgpconform.shards.plan import Alike, collected, costs_for, deal
    from bgpconform.shards.runner import run_sharded
    from bgpconform.topology import load_topology

    root = _project_root("suite")
    pytest_args = list(args.pytest_args)
    topology: Path | None = None
    shortcuts: set[str] = set()
    for index, word in enumerate(pytest_args):
        name, _, value = word.partition("=")
        value = value or (pytest_args[index + 1] if index + 1 < len(pytest_args) else "")
        if name == "--target" and value != "lab":
            raise ConfigError(
                f"--target={value}: shards each start a lab of their own; a {value} target is one "
                "system; fix: run pytest on it without bgpconform suite --shards"
            )
        if name == "--topology":
            topology = root / value
        if name == "--lab-shortcut":
            shortcuts.add(value)
        if name in {"--reports-dir", "--shard"}:
            raise ConfigError(f"{name} is set per shard by bgpconform suite; fix: leave it out (use --out)")
        if name in {"--junitxml", "--junit-xml", "--cucumberjson", "--cucumber-json"}:
            raise ConfigError(
                f"{name}: every shard would write that one file; fix: leave it out and take junit.xml and "
                "cucumber.json, merged, from the run's report directory"
            )
    if topology is None:
        # Named for every shard and the plan alike: a session that only lists scenarios reads no
        # topology unless given one, and would then plan scenarios the version rules leave out.
        topology = root / DEFAULT_TOPOLOGY
        pytest_args.append(f"--topology={topology}")
    reports = (args.out or root / "reports").resolve()
    node_ids = collected(root, pytest_args)
    alike = Alike(file_sha256(topology), frozenset(shortcuts))
    costs, source = costs_for(args.costs_from or reports, alike)
    shards = deal(node_ids, args.shards, costs)
    print(f"suite: {len(node_ids)} scenario(s) over {len(shards)} lab(s) side by side ({source})", flush=True)
    for shard in shards:
        print(f"  shard {shard.number}: {len(shard.node_ids)} scenario(s), cost {shard.expected_seconds:.1f}")

    def progress(done: ShardOutcome) -> None:
        verdict = done.report.verdict.value if done.report else f"no report (exit {done.returncode})"
        print(f"  shard {done.number} {verdict} in {done.seconds:.1f} s ({done.log})", flush=True)

    done = run_sharded(
        shards,
        root,
        reports,
        pytest_args,
        command=shlex.join(["bgpconform", *sys.argv[1:]]),
        order=node_ids,
        redactor=Redactor.for_topology(load_topology(topology)),
        progress=progress,
    )
    directory, report = done.directory, done.report
    print(f"suite verdict: {report.verdict.value}: {report.verdict_reason}")
    provenance = report.run.provenance
    if provenance is not None:
        for shortcut in provenance.shortcuts:
            print(f"shortcut in force: {shortcut}")
    print(f"report: {directory / 'report.html'} (in {report.run.duration:.1f} s)")
    if done.interrupted:
        return 130  # as a shell reports a Ctrl-C
    return 0 if report.verdict.value == "conformant" else 1


def _matrix(args: argparse.Namespace) -> int:
    """The suite on the lab per Cilium release and BGP API, then one page over every run."""
    from bgpconform.matrix.cells import parse_versions, plan
    from bgpconform.matrix.runner import CellRun, run_matrix
    from bgpconform.report.matrix_page import MatrixRow, write_matrix

    root = _project_root("matrix")
    topologies = [t.strip() for t in args.topologies.split(",") if t.strip()]
    for name in topologies:
        if not (root / "topologies" / name).is_file():
            raise ConfigError(
                f"--topologies: topologies/{name} does not exist; fix: name files under topologies/, "
                f"e.g. {DEFAULT_MATRIX_TOPOLOGIES}"
            )
    cells = plan(topologies, parse_versions(args.versions))
    out = (args.out or root / "reports" / "matrix" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    print(f"matrix: {len(cells)} run(s) into {out}", flush=True)

    def progress(done: CellRun) -> None:
        verdict = done.report.verdict.value if done.report else _no_report(done.returncode)
        print(
            f"  {done.cell.topology:<20} {done.cell.label:<34} {verdict:<15} {done.seconds:6.1f} s",
            flush=True,
        )

    began = time.monotonic()
    matrix = run_matrix(
        cells, root, out, extra=tuple(args.pytest_args), progress=progress, side_by_side=args.side_by_side
    )
    runs = matrix.runs
    print(f"matrix: {len(runs)} run(s) in {time.monotonic() - began:.0f} s, {args.side_by_side} side by side")
    rows = [
        MatrixRow(
            topology=r.cell.topology,
            label=r.cell.label,
            command=r.shown_command,
            returncode=r.returncode,
            seconds=r.seconds,
            report_link=str(r.report_dir.relative_to(out) / "report.html") if r.report_dir else None,
            report=r.report,
        )
        for r in runs
    ]
    page = write_matrix(rows, out / "matrix.html")
    latest = out.parent / "latest"
    if out.parent.name == "matrix":
        latest.unlink(missing_ok=True)
        latest.symlink_to(out.name)
    print(f"matrix page: {page}")
    if matrix.interrupted:
        return 130  # as a shell reports a Ctrl-C
    return 0 if all(r.report is not None and r.report.verdict.value == "conformant" for r in runs) else 1


def _no_report(returncode: int | None) -> str:
    return "not run: the matrix was stopped first" if returncode is None else f"no report (exit {returncode})"


def _labs_at_once(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of labs; give 1 or more")
    return int(text)


def _labs_option(parser: argparse.ArgumentParser, flag: str, meaning: str, per_core: int = 1) -> None:
    """How many labs at once unless told: a lab mostly waits on timers, so a core carries one or more
    (README, Speed: what was measured on 2 cores)."""
    parser.add_argument(
        flag,
        type=_labs_at_once,
        default=per_core * max(1, os.cpu_count() or 1),
        metavar="N",
        help=f"{meaning} (default: {'one' if per_core == 1 else per_core} per core)",
    )


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
    listing = lab_commands.add_parser("defects", help="list the defects a lab can be started with")
    listing.add_argument("--markdown", action="store_true", help="print README.md's table of them")
    listing.set_defaults(handler=_lab_defects)
    sweep = lab_commands.add_parser("sweep", help="remove what killed lab runs left behind")
    sweep.set_defaults(handler=_lab_sweep)
    lab_up = lab_commands.add_parser(
        "up", help="start a lab in the background, as a minimal k3s install leaves a cluster"
    )
    lab_up.add_argument("--topology", type=Path, help=f"topology file (default {DEFAULT_TOPOLOGY})")
    lab_up.add_argument(
        "--stage",
        default="minimal",
        help="walkthrough stage to leave the lab at: minimal (default), cilium, bgp-enabled, bgp-ready, "
        "peering, lb-ipam",
    )
    lab_up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the lab")
    lab_up.add_argument(
        "--defect",
        action="append",
        default=[],
        metavar="NAME",
        help="start the lab with this defect (repeatable; `bgpconform lab defects` lists them)",
    )
    lab_up.add_argument(
        "--shortcut",
        action="append",
        default=[],
        metavar="NAME",
        help="trade fidelity for speed (repeatable): short-bgp-timers (the agents dial with the "
        "topology's timers, every 5-9 s as GoBGP allows, not on 1.13's GoBGP defaults of 120-239 s); "
        "router-dials (the nodes' speakers listen, so the router's 1 s connect retry brings sessions up)",
    )
    lab_up.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="N",
        help="seed of the lab's random choices (LB address, same-second pool ties); `lab status` shows it",
    )
    lab_up.set_defaults(handler=_lab_up)
    lab_status = lab_commands.add_parser("status", help="show the background lab")
    lab_status.set_defaults(handler=_lab_status)
    lab_down = lab_commands.add_parser("down", help="stop the background lab and remove everything")
    lab_down.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it to stop")
    lab_down.set_defaults(handler=_lab_down)
    serve = lab_commands.add_parser("serve", help=argparse.SUPPRESS)
    serve.add_argument("--topology", type=Path, required=True)
    serve.add_argument("--stage", default="minimal")
    serve.add_argument("--defect", action="append", default=[])
    serve.add_argument("--seed", type=int, default=None)
    serve.add_argument("--shortcut", action="append", default=[])
    serve.set_defaults(handler=_lab_serve)

    suite = commands.add_parser(
        "suite", help="the suite on the lab split over labs side by side, with one merged report"
    )
    _labs_option(suite, "--shards", "labs side by side, each running its share of the scenarios", per_core=2)
    suite.add_argument(
        "--costs-from",
        type=Path,
        default=None,
        metavar="REPORT",
        help="what deals the scenarios out by their durations: an earlier run's report.json, or a "
        "reports directory, whose newest one-lab runs on the same topology with the same shortcuts "
        "give each scenario its cost (default: --out's; without such runs its latest, else each "
        "counts the same)",
    )
    suite.add_argument("--out", type=Path, default=None, help="reports directory (default: reports/)")
    suite.add_argument("pytest_args", nargs="*", help="passed to every shard's pytest, after --")
    suite.set_defaults(handler=_suite)

    matrix = commands.add_parser(
        "matrix", help="the suite on the lab for each supported Cilium release and BGP API, and one page"
    )
    matrix.add_argument(
        "--versions",
        default=None,
        metavar="LIST",
        help="Cilium minors, comma separated, e.g. 1.13,1.16,1.19 (default: every one from 1.13 to 1.19)",
    )
    matrix.add_argument(
        "--topologies",
        default=DEFAULT_MATRIX_TOPOLOGIES,
        metavar="LIST",
        help=f"files under topologies/, comma separated (default: {DEFAULT_MATRIX_TOPOLOGIES})",
    )
    matrix.add_argument("--out", type=Path, default=None, help="directory for the runs and matrix.html")
    _labs_option(matrix, "--side-by-side", "labs run at once, each its own process", per_core=2)
    matrix.add_argument("pytest_args", nargs="*", help="passed to every run's pytest, after --")
    matrix.set_defaults(handler=_matrix)

    report = commands.add_parser("report", help="run reports")
    report_commands = report.add_subparsers(dest="report_command", required=True)
    report_compare = report_commands.add_parser(
        "compare", help="what changed between two runs: verdict, versions, scenario outcomes, timings"
    )
    report_compare.add_argument("old", type=Path, help="the earlier run's report directory or report.json")
    report_compare.add_argument("new", type=Path, help="the later run's (e.g. reports/latest)")
    report_compare.add_argument("--html", type=Path, metavar="FILE", help="also write the comparison as HTML")
    report_compare.set_defaults(handler=_report_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BgpconformError as exc:
        print(f"bgpconform: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bgpconform: interrupted", file=sys.stderr)  # what it started has been stopped by now
        return 130
