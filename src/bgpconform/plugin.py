"""The pytest plugin: options, the session-wide topology and target, and clean shutdown on signals.

Registered through the `pytest11` entry point, so it is active wherever the package is installed;
everything it does is therefore lazy: a pytest run that never asks for the topology never reads it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from bgpconform.applicability import applicability
from bgpconform.errors import ConfigError, PrerequisiteError
from bgpconform.interrupts import stop_once
from bgpconform.mode import DESTRUCTIVE_MARK, Mode
from bgpconform.targets import TARGETS, planning_class, target_class, target_entry
from bgpconform.targets.options import TargetOptions
from bgpconform.topology import Override, Topology, load_topology

DEFAULT_TOPOLOGY = Path("topologies/lab.yaml")
DEFAULT_REPORTS = Path("reports")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bgpconform", "bgpconform conformance harness")
    group.addoption(
        "--target",
        choices=tuple(TARGETS),
        default="lab",
        help="where the system under test runs: lab (this machine, default), k3d, pi",
    )
    group.addoption(
        "--topology",
        type=Path,
        default=None,
        help=f"topology YAML (default: {DEFAULT_TOPOLOGY} under the rootdir)",
    )
    group.addoption(
        "--reports-dir",
        type=Path,
        default=None,
        help=f"where run reports are written (default: {DEFAULT_REPORTS} under the rootdir)",
    )
    group.addoption(
        "--dry-run",
        action="store_true",
        default=False,
        help="k3d: print every command, container and router change the run would make, then exit",
    )
    group.addoption(
        "--routeros-version",
        default=None,
        help="k3d: the RouterOS CHR version to run (default: router.routeros_version of the topology)",
    )
    group.addoption(
        "--cilium-version",
        default=None,
        help="the Cilium version: the one the lab emulates, k3d and install mode install, and verify "
        "mode expects (default: cluster.cilium_version of the topology)",
    )
    group.addoption(
        "--cilium-upgrade-to",
        default=None,
        help="the release features/7_upgrade.feature upgrades Cilium to, one minor at a time "
        "(default: cluster.upgrade_to of the topology; unset, that feature does not apply)",
    )
    group.addoption(
        "--cilium-cli-version",
        default=None,
        help="the cilium-cli release whose operations the harness performs, e.g. 0.18.7 (default: "
        "cluster.cilium_cli_version of the topology, else the walkthrough's 0.15.4)",
    )
    group.addoption(
        "--bgp-api",
        default=None,
        choices=("v1", "v2"),
        help="configure BGP with the v1 CiliumBGPPeeringPolicy or BGPv2 (default: bgp.api of the "
        "topology, else v1 before Cilium 1.16 and v2 from it)",
    )
    group.addoption(
        "--chr-image",
        default=None,
        help="k3d: the CHR image, without tag (default: evilfreelancer/docker-routeros)",
    )
    group.addoption(
        "--cilium-installer",
        choices=("cilium", "helm"),
        default="cilium",
        help="k3d and pi install mode: install Cilium with cilium-cli (default) or Helm",
    )
    group.addoption(
        "--mode",
        choices=("verify", "install"),
        default=None,
        help="pi: verify (default) checks the running cluster and adds only its own test objects; "
        "install uninstalls Cilium and replays the whole walkthrough (needs --allow-destructive)",
    )
    group.addoption(
        "--allow-destructive",
        action="store_true",
        default=False,
        help="pi: permit --mode=install on the cluster whose context the topology declares",
    )
    group.addoption(
        "--kubeconfig",
        type=Path,
        default=None,
        help="pi: the kubeconfig (default: cluster.kubeconfig of the topology, $KUBECONFIG, ~/.kube/config)",
    )
    group.addoption(
        "--kube-context",
        default=None,
        help="pi: the kube context (default: cluster.context of the topology, else the current context)",
    )
    group.addoption(
        "--keep-test-objects",
        action="store_true",
        default=False,
        help="pi: leave the pool, pod and services the run created (default: remove them at the end)",
    )
    group.addoption(
        "--lab-defect",
        action="append",
        default=[],
        metavar="NAME",
        help="lab: start the lab with this defect (a real way Cilium, k3s or the router goes wrong; "
        "repeatable; README lists them), to see what the suite and the report make of it",
    )
    group.addoption(
        "--lab-shortcut",
        action="append",
        default=[],
        metavar="NAME",
        help="lab: trade fidelity for speed this way (repeatable; README lists them; the report "
        "states every shortcut in force)",
    )
    group.addoption(
        "--shard",
        default=None,
        metavar="PLAN:N",
        help="lab: run only shard N of a plan `bgpconform suite --shards` wrote (that command runs "
        "every shard side by side and merges their reports)",
    )
    group.addoption(
        "--lab-seed",
        type=int,
        default=None,
        metavar="N",
        help="lab: the seed of the choices the lab makes at random where Cilium does (LB address, "
        "same-second pool ties); every lab report states the one it used, to replay a run",
    )
    group.addoption(
        "--no-report",
        action="store_true",
        default=False,
        help="write no report directory (the suite writes one by default)",
    )


PATH_OPTIONS = ("--topology", "--reports-dir", "--kubeconfig")


def _path_read_as_test_path(config: pytest.Config) -> str | None:
    """pytest finds its configuration before it knows plugin options, so in `--topology /x/t.yaml`
    it takes `/x/t.yaml` for a test path; outside the project that loses the project's ini file
    (and `testpaths` with it), and pytest would collect whatever lies in the current directory."""
    args = list(config.invocation_params.args)
    for option, value in itertools.pairwise(args):
        if option not in PATH_OPTIONS:
            continue
        home = config.inipath.parent if config.inipath is not None else None
        resolved = (config.invocation_params.dir / value).resolve()
        if home is None or not resolved.is_relative_to(home):
            found = f"its configuration file {config.inipath}" if config.inipath else "no configuration file"
            return (
                f"{option} {value}: pytest took {value} for a test path while it looked for its "
                f"configuration and found {found}, so it would collect the wrong tests; "
                f"fix: write it as {option}={value}"
            )
    return None


def _only_lists(config: pytest.Config) -> bool:
    """`--collect-only`, `--fixtures`, `--markers`: the session lists things and runs nothing."""
    option = config.option
    return bool(
        getattr(option, "collectonly", False)
        or getattr(option, "showfixtures", False)
        or getattr(option, "markers", False)
    )


def _runs_features(config: pytest.Config) -> bool:
    """The report belongs to the conformance suite: a session whose paths reach the features
    directory; the harness's own tests (`pytest tests`) write none."""
    base = config.getini("bdd_features_base_dir") or "features"
    features = (Path(config.rootpath) / base).resolve()
    if not features.is_dir():
        return False
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()
        if path == features or path.is_relative_to(features) or features.is_relative_to(path):
            return True
    return False


def _start_report(config: pytest.Config) -> None:
    if config.getoption("--no-report") or not _runs_features(config) or _only_lists(config):
        return  # a session that only lists scenarios leaves no report directory behind
    from bgpconform.report.collector import COLLECTOR, ReportCollector

    collector = ReportCollector(
        config,
        reports_dir(config).resolve(),
        topology_path=topology_path(config).resolve(),
        loaded_topology=lambda: loaded_topology(config),
    )
    if not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(collector.directory / "junit.xml")
    if not getattr(config.option, "cucumber_json_path", None):
        config.option.cucumber_json_path = str(collector.directory / "cucumber.json")
    try:  # junit.xml and cucumber.json are written here by their own plugins, even if the run stops early
        collector.directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise pytest.UsageError(
            f"--reports-dir {collector.reports}: cannot create {collector.directory} ({exc.strerror}); "
            "fix: run as the user who owns it, or give --reports-dir=DIR a directory you can write"
        ) from None
    config.stash[COLLECTOR] = collector
    config.pluginmanager.register(collector, "bgpconform-report")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """`--dry-run` prints the plan and ends the run before anything is configured or created."""
    if not config.getoption("--dry-run"):
        return None
    target = config.getoption("--target")
    planning = planning_class(target)
    if planning is None:
        planned = [name for name, entry in TARGETS.items() if entry.plans]
        raise pytest.UsageError(
            f"--dry-run plans a {' or '.join(planned)} run; it has no meaning with --target={target}"
        )
    misread = _path_read_as_test_path(config)
    if misread is not None:
        raise pytest.UsageError(misread)
    try:
        topology = load_topology(topology_path(config), topology_overrides(config))
        print(planning.render_plan(topology, target_options(config)), end="", flush=True)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    return 0


def target_options(config: pytest.Config) -> TargetOptions:
    """The command line as the targets read it."""
    return TargetOptions(
        mode=run_mode(config),
        kubeconfig=config.getoption("--kubeconfig"),
        context=config.getoption("--kube-context"),
        installer=config.getoption("--cilium-installer"),
        allow_destructive=config.getoption("--allow-destructive"),
        routeros_version=config.getoption("--routeros-version"),
        cilium_version=config.getoption("--cilium-version"),
        chr_image=config.getoption("--chr-image"),
        lab_defects=tuple(config.getoption("--lab-defect")),
        lab_shortcuts=tuple(config.getoption("--lab-shortcut")),
        lab_seed=config.getoption("--lab-seed"),
    )


@pytest.hookimpl(tryfirst=True)  # before junitxml and pytest-bdd read their output paths
def pytest_configure(config: pytest.Config) -> None:
    misread = _path_read_as_test_path(config)
    if misread is not None:
        raise pytest.UsageError(misread)
    target = config.getoption("--target")
    entry = target_entry(target)
    mode_option = config.getoption("--mode")
    if mode_option is not None and len(entry.modes) == 1:
        with_modes = [f"--target={name}" for name, other in TARGETS.items() if len(other.modes) > 1]
        raise pytest.UsageError(
            f"--mode applies to {' and '.join(with_modes)}; the {target} target is built by the run and "
            "always replays the whole walkthrough"
        )
    if config.getoption("--lab-shortcut") and not entry.takes_defects:
        raise pytest.UsageError(f"--lab-shortcut speeds up the lab; it has no meaning with --target={target}")
    if config.getoption("--shard") is not None and not entry.takes_defects:
        raise pytest.UsageError(
            f"--shard splits the suite over labs of its own; --target={target} is one system, which "
            "shards side by side would fight over"
        )
    if config.getoption("--lab-seed") is not None and not entry.takes_defects:
        raise pytest.UsageError(
            f"--lab-seed seeds the lab's random choices; it has no meaning with --target={target}"
        )
    if config.getoption("--lab-defect") and not entry.takes_defects:
        raise pytest.UsageError(
            f"--lab-defect starts the lab broken on purpose; it has no meaning with --target={target}"
        )
    # A cluster the user owns is checked before anything is collected, and so is any target of a run
    # of the features (which loads the target anyway): a lab run without root, say, ends here in one
    # line instead of failing later in the fixtures. A session that runs no features loads no target.
    check_target = entry.user_cluster or (_runs_features(config) and not _only_lists(config))
    if config.getoption("--topology") is not None or check_target:
        try:
            config.stash[_topology_key] = load_topology(topology_path(config), topology_overrides(config))
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    if check_target:
        _check_target_options(config)
    # SIGTERM and SIGHUP behave like Ctrl-C, so pytest runs fixture teardown and the lab is removed;
    # the run stops once, however many of them arrive.
    config.stash[_restore_signals_key] = stop_once()
    _start_report(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    restore = config.stash.get(_restore_signals_key, None)
    if restore is not None:
        restore()


_restore_signals_key = pytest.StashKey[Callable[[], None]]()


_topology_key = pytest.StashKey[Topology]()


def run_mode(config: pytest.Config) -> Mode:
    """The target's default unless the command line chose: verify on a user's cluster, install on one
    the run builds."""
    given = config.getoption("--mode")
    return Mode(given) if given is not None else target_entry(config.getoption("--target")).modes[0]


def _check_target_options(config: pytest.Config) -> None:
    """Install mode's refusals, a missing kubeconfig or a lab without root stop the run before anything
    is collected."""
    chosen = target_class(config.getoption("--target"))
    try:
        chosen.from_options(config.stash[_topology_key], target_options(config)).check_options()
    except (ConfigError, PrerequisiteError) as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Scenarios whose version rule the topology's Cilium does not meet are left out (and listed in the
    report); verify mode runs only the scenarios that leave the CNI and the peering as they were."""
    _select_by_version(config, items)
    _select_shard(config, items)
    if run_mode(config) is not Mode.VERIFY:
        return
    kept = [item for item in items if item.get_closest_marker(DESTRUCTIVE_MARK) is None]
    dropped = [item for item in items if item.get_closest_marker(DESTRUCTIVE_MARK) is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _select_shard(config: pytest.Config, items: list[pytest.Item]) -> None:
    given = config.getoption("--shard")
    if given is None:
        return
    from bgpconform.shards.plan import read_shard

    try:
        _, wanted = read_shard(given)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    dropped = [item for item in items if item.nodeid not in wanted]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.nodeid in wanted]


def _select_by_version(config: pytest.Config, items: list[pytest.Item]) -> None:
    topology = loaded_topology(config)
    if topology is None:
        return  # a session that only lists scenarios: every one is shown
    version, api = str(topology.cluster.cilium_version), topology.bgp_api
    cli = str(topology.cluster.cilium_cli_version)
    upgrade_to = str(topology.cluster.upgrade_to) if topology.cluster.upgrade_to is not None else None
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    decided: list[str] = []
    for item in items:
        scale = topology.scale.services if topology.scale is not None else None
        marks = {mark.name for mark in item.iter_markers()}
        verdict = applicability(marks, version, api, cli, upgrade_to, scale=scale)
        if verdict is not None:
            name = _scenario_name(item)
            decided.append(
                f"{name}: {'applied' if verdict.applies else 'not applicable'} ({verdict.rule}; "
                f"this run: Cilium {version}, BGP {api.value}, cilium-cli v{cli}"
                + (f", upgrade to {upgrade_to}" if upgrade_to else "")
                + ")"
            )
        (kept if verdict is None or verdict.applies else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    from bgpconform.report.collector import COLLECTOR

    collector = config.stash.get(COLLECTOR, None)
    if collector is not None:
        collector.record_version_rules(decided)


def _scenario_name(item: pytest.Item) -> str:
    """The scenario's title as the feature writes it (the report's name for it)."""
    from bgpconform.report.collector import scenario_template

    template = scenario_template(item)
    return str(template.name) if template is not None else item.name


def loaded_topology(config: pytest.Config) -> Topology | None:
    """The topology if the session has read it (the report's redactor needs its secret names)."""
    return config.stash.get(_topology_key, None)


def topology_overrides(config: pytest.Config) -> dict[tuple[str | int, ...], Override]:
    """The topology fields the command line replaces for this run."""
    overrides: dict[tuple[str | int, ...], Override] = {}
    version = config.getoption("--cilium-version")
    if version is not None:
        overrides["cluster", "cilium_version"] = Override("--cilium-version", version)
    upgrade_to = config.getoption("--cilium-upgrade-to")
    if upgrade_to is not None:
        overrides["cluster", "upgrade_to"] = Override("--cilium-upgrade-to", upgrade_to.removeprefix("v"))
    cli = config.getoption("--cilium-cli-version")
    if cli is not None:
        overrides["cluster", "cilium_cli_version"] = Override("--cilium-cli-version", cli.removeprefix("v"))
    api = config.getoption("--bgp-api")
    if api is not None:
        overrides["bgp", "api"] = Override("--bgp-api", api)
    return overrides


def topology_path(config: pytest.Config) -> Path:
    given: Path | None = config.getoption("--topology")
    if given is not None:
        return given
    return Path(config.rootpath) / DEFAULT_TOPOLOGY


def reports_dir(config: pytest.Config) -> Path:
    given: Path | None = config.getoption("--reports-dir")
    return given if given is not None else Path(config.rootpath) / DEFAULT_REPORTS


@pytest.fixture(scope="session")
def topology(pytestconfig: pytest.Config) -> Topology:
    """The validated topology every step takes its names, addresses and ASNs from."""
    if _topology_key not in pytestconfig.stash:
        try:
            pytestconfig.stash[_topology_key] = load_topology(
                topology_path(pytestconfig), topology_overrides(pytestconfig)
            )
        except ConfigError as exc:
            pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    return pytestconfig.stash[_topology_key]


@pytest.fixture(scope="session")
def target_name(pytestconfig: pytest.Config) -> str:
    return str(pytestconfig.getoption("--target"))
