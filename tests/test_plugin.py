"""The pytest plugin's options and its answers to bad input, through a real pytest run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bgpconform.errors import PrerequisiteError
from bgpconform.lab.prerequisites import check_lab_prerequisites
from tests.suite.runner import run_suite

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[1]


def test_k3d_without_its_tools_says_what_to_install_and_creates_nothing(tmp_path: Path) -> None:
    topology = REPO / "topologies" / "lab-routeros.yaml"
    bare_path = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    done = run_suite(tmp_path, topology=topology, options=("--target=k3d",), env=bare_path)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.output[-2000:]
    assert "nothing was created" in done.output
    assert "`k3d` is not on PATH; fix: install k3d" in done.output
    assert "`cilium` (the Cilium installer) is not on PATH" in done.output


def test_pi_without_a_kubeconfig_says_where_it_looked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(pytester.path / "no-such-kubeconfig"))
    result = pytester.runpytest_subprocess("--target=pi", f"--topology={REPO / 'topologies' / 'lab.yaml'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*$KUBECONFIG: kubeconfig */no-such-kubeconfig does not exist; fix: point*"])


def test_unknown_target_is_refused(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--target=kind")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --target: invalid choice: 'kind'*"])


def test_a_bad_topology_is_one_clear_message_without_traceback(pytester: pytest.Pytester) -> None:
    bad = pytester.path / "bad.yaml"
    bad.write_text((REPO / "topologies" / "lab.yaml").read_text().replace("asn: 64512", "asn: 0", 1))
    result = pytester.runpytest_subprocess(f"--topology={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert f"{bad}:" in text
    assert "router.asn" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ("--cilium-version=1.12.9",),
            "*cluster.cilium_version (from --cilium-version 1.12.9): Cilium 1.12.9 is outside 1.13 to 1.19*",
        ),
        (
            ("--cilium-version=1.19.1", "--bgp-api=v1"),
            "*bgp.api (from --bgp-api v1): Cilium 1.19.1 has no CiliumBGPPeeringPolicy*fix: set bgp.api: v2*",
        ),
        (
            ("--cilium-version=1.15.5", "--bgp-api=v2"),
            "*bgp.api (from --bgp-api v2): Cilium 1.15.5 has no working BGPv2*; fix: set bgp.api: v1*",
        ),
        (
            ("--cilium-cli-version=latest",),
            "*cluster.cilium_cli_version (from --cilium-cli-version latest): 'latest' is not a version*",
        ),
    ],
)
def test_a_version_or_api_option_the_release_cannot_take_is_one_line_with_the_fix(
    pytester: pytest.Pytester, options: tuple[str, ...], message: str
) -> None:
    result = pytester.runpytest_subprocess(f"--topology={REPO / 'topologies' / 'lab.yaml'}", *options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_the_cilium_cli_option_decides_which_config_set_scenario_runs(pytester: pytest.Pytester) -> None:
    """v0.18.7 restarts the operator on `config set` (FACTS.md): the scenario waiting for a restart by
    hand gives way to the one where the resources come at once, and the report says why."""
    features = REPO / "features"
    shown = {}
    for cli in ("0.18.6", "v0.18.7"):
        result = pytester.runpytest_subprocess(
            f"--rootdir={REPO}",
            "-c",
            str(REPO / "pyproject.toml"),
            f"--topology={REPO / 'topologies' / 'lab.yaml'}",
            f"--cilium-cli-version={cli}",
            "--collect-only",
            "-q",
            str(features / "test_walkthrough.py"),
        )
        shown[cli] = result.stdout.str()
    assert "agents_wait_for_the_bgp_resources_until_the_operator_restarts" in shown["0.18.6"]
    assert "restarts_the_operator_too" not in shown["0.18.6"]
    assert "restarts_the_operator_too" in shown["v0.18.7"]
    assert "agents_wait_for_the_bgp_resources_until_the_operator_restarts" not in shown["v0.18.7"]


def test_the_topology_fixture_reads_the_given_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_names(topology):
            assert topology.cluster.name == "k3s-rpi"
            assert [n.name for n in topology.bgp_nodes] == [
                "k3s-worker-node-01", "k3s-worker-node-02", "k3s-worker-node-03"]
        """
    )
    result = pytester.runpytest_subprocess(f"--topology={REPO / 'topologies' / 'lab.yaml'}")
    result.assert_outcomes(passed=1)


def test_missing_programs_are_named_with_their_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("bgpconform.lab.prerequisites.FRR_DAEMON_DIR", tmp_path)
    from bgpconform.lab import prerequisites

    tools = tuple(
        prerequisites.Tool(t.name, str(tmp_path / t.name) if t.path else None, t.package)
        for t in prerequisites.LAB_TOOLS
    )
    monkeypatch.setattr(prerequisites, "LAB_TOOLS", tools)
    with pytest.raises(PrerequisiteError) as caught:
        check_lab_prerequisites()
    message = str(caught.value)
    assert "missing programs: ip, zebra, bgpd, vtysh, gobgpd, gobgp, nginx, iptables" in message
    assert "apt-get install frr gobgpd iproute2 iptables nginx-light" in message


def test_a_topology_outside_the_project_given_as_a_separate_value_is_refused_with_the_fix(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pytester.makeini("[pytest]\ntestpaths = suite\n")
    pytester.mkpydir("suite").joinpath("test_here.py").write_text("def test_here():\n    pass\n")
    pytester.makepyfile(test_stray="def test_stray():\n    raise AssertionError('not in testpaths')\n")
    outside = tmp_path_factory.mktemp("elsewhere") / "rack.yaml"
    outside.write_text((REPO / "topologies" / "lab.yaml").read_text())

    refused = pytester.runpytest_subprocess("--topology", str(outside))
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(
        [f"*--topology {outside}: pytest took *fix: write it as --topology={outside}"]
    )

    accepted = pytester.runpytest_subprocess(f"--topology={outside}")
    assert accepted.ret == pytest.ExitCode.OK
    accepted.stdout.fnmatch_lines(["*1 passed*"])


def test_a_lab_run_without_root_stops_in_one_line_with_the_fix(tmp_path: Path) -> None:
    """As a user who is not root would run it (the effective uid is faked: the lab refuses on it)."""
    (tmp_path / "not_root.py").write_text("import os\n\nos.geteuid = lambda: 1000\n")
    reports = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "not_root", f"--rootdir={REPO}",
         f"--reports-dir={reports}", "features"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "the lab cannot run on this machine: it needs root" in output
    assert "fix: run as root" in output
    assert "Traceback" not in output
    assert not reports.exists()  # nothing half-written: no run directory, no cucumber.json crash


def test_listing_the_scenarios_needs_no_root_and_leaves_no_report(tmp_path: Path) -> None:
    (tmp_path / "not_root.py").write_text("import os\n\nos.geteuid = lambda: 1000\n")
    reports = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "not_root", f"--rootdir={REPO}",
         f"--reports-dir={reports}", "--collect-only", "-q", "features"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == pytest.ExitCode.OK, done.stdout + done.stderr
    assert "features/test_walkthrough.py::test_" in done.stdout
    assert not reports.exists()
