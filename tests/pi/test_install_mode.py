"""Install mode wipes a cluster's CNI, so it runs only with `--allow-destructive` and on the kube
context the topology declares; each refusal is one line with its fix, before anything is contacted."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from bgpconform.cilium.install import CiliumValues
from bgpconform.errors import ConfigError, PrerequisiteError
from bgpconform.mode import check_install_allowed
from bgpconform.targets.cluster.access import resolve_kube_access
from bgpconform.targets.cluster.installer import ToolCiliumInstaller
from bgpconform.topology import Topology, load_topology
from tests.suite.runner import ROOT, run_suite

LAB_TOPOLOGY = ROOT / "topologies" / "lab.yaml"
UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing may be contacted before the refusal


def write_kubeconfig(path: Path, current: str = "rack") -> Path:
    names = ("rack", "other")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": UNREACHABLE}} for name in names],
        "users": [{"name": name, "user": {}} for name in names],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}} for name in names],
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def rack_topology(directory: Path, **cluster: str | None) -> Path:
    data = yaml.safe_load(LAB_TOPOLOGY.read_text())
    data["cluster"].update({key: value for key, value in cluster.items() if value is not None})
    written = directory / "rack.yaml"
    written.write_text(yaml.safe_dump(data, sort_keys=False))
    return written


@pytest.fixture
def rack(tmp_path: Path) -> Path:
    write_kubeconfig(tmp_path / "kubeconfig")
    return rack_topology(tmp_path, kubeconfig="kubeconfig", context="rack")


def test_install_mode_refuses_without_allow_destructive(rack: Path, tmp_path: Path) -> None:
    done = run_suite(tmp_path, topology=rack, options=("--target=pi", "--mode=install"))
    assert done.returncode == 4, done.output[-2000:]
    assert "--mode=install uninstalls Cilium" in done.output
    assert "fix: add --allow-destructive" in done.output
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


def test_install_mode_refuses_on_another_context(rack: Path, tmp_path: Path) -> None:
    options = ("--target=pi", "--mode=install", "--allow-destructive", "--kube-context=other")
    done = run_suite(tmp_path, topology=rack, options=options)
    assert done.returncode == 4, done.output[-2000:]
    assert "the kube context in use is 'other'" in done.output
    assert "declares cluster.context 'rack'" in done.output
    assert "fix: run with --kube-context=rack" in done.output


def test_install_mode_refuses_when_the_topology_declares_no_context(tmp_path: Path) -> None:
    write_kubeconfig(tmp_path / "kubeconfig", current="other")
    topology = rack_topology(tmp_path, kubeconfig="kubeconfig")
    options = ("--target=pi", "--mode=install", "--allow-destructive")
    done = run_suite(tmp_path, topology=topology, options=options)
    assert done.returncode == 4, done.output[-2000:]
    assert "cluster.context is not set" in done.output
    assert "add `context: other` under cluster" in done.output


def test_mode_is_refused_on_targets_the_run_builds(tmp_path: Path) -> None:
    done = run_suite(tmp_path, options=("--mode=verify",))
    assert done.returncode == 4
    assert "--mode applies to --target=pi" in done.output


def _topology(path: Path) -> Topology:
    return load_topology(path)


def test_install_mode_refuses_another_kubeconfig_with_the_same_context(rack: Path, tmp_path: Path) -> None:
    """Every k3s kubeconfig calls its context `default`: the name alone does not prove the cluster."""
    elsewhere = write_kubeconfig(tmp_path / "elsewhere.yaml")
    options = ("--target=pi", "--mode=install", "--allow-destructive", f"--kubeconfig={elsewhere}")
    done = run_suite(tmp_path, topology=rack, options=options)
    assert done.returncode == 4, done.output[-2000:]
    assert f"the kubeconfig in use is {elsewhere}" in done.output
    assert "fix: drop --kubeconfig or correct the topology" in done.output


def test_install_mode_without_its_installer_stops_before_anything(rack: Path, tmp_path: Path) -> None:
    options = ("--target=pi", "--mode=install", "--allow-destructive")
    done = run_suite(tmp_path, topology=rack, options=options, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert done.returncode == 4, done.output[-2000:]
    assert "`cilium` is not on PATH, and install mode needs it; fix: install cilium-cli" in done.output


def test_install_is_allowed_with_every_proof(rack: Path) -> None:
    topology = _topology(rack)
    access = resolve_kube_access(topology)
    check_install_allowed(topology, access.kubeconfig, access.context, allow_destructive=True)  # no refusal
    with pytest.raises(ConfigError, match="--allow-destructive"):
        check_install_allowed(topology, access.kubeconfig, access.context, allow_destructive=False)
    undeclared = _topology(rack_topology(rack.parent, context="rack"))
    with pytest.raises(ConfigError, match=r"cluster\.kubeconfig is not set"):
        check_install_allowed(undeclared, access.kubeconfig, "rack", allow_destructive=True)


def test_kube_access_precedence_option_then_topology_then_current_context(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", current="other")
    declared = _topology(rack_topology(tmp_path, kubeconfig="kubeconfig", context="rack"))
    assert resolve_kube_access(declared).context == "rack"
    assert resolve_kube_access(declared, context="other").context == "other"
    assert resolve_kube_access(declared).kubeconfig == kubeconfig.resolve()  # relative to the topology
    undeclared = _topology(rack_topology(tmp_path, kubeconfig=str(kubeconfig)))
    chosen = resolve_kube_access(undeclared)
    assert (chosen.context, chosen.server) == ("other", UNREACHABLE)
    env_only = _topology(rack_topology(tmp_path))
    assert resolve_kube_access(env_only, environ={"KUBECONFIG": str(kubeconfig)}).context == "other"


def test_kube_access_names_the_missing_file_and_the_unknown_context(tmp_path: Path) -> None:
    missing = _topology(rack_topology(tmp_path, kubeconfig="nowhere/kubeconfig"))
    with pytest.raises(
        ConfigError, match=r"cluster\.kubeconfig: kubeconfig .*nowhere/kubeconfig does not exist"
    ):
        resolve_kube_access(missing)
    write_kubeconfig(tmp_path / "kubeconfig")
    present = _topology(rack_topology(tmp_path, kubeconfig="kubeconfig"))
    with pytest.raises(
        ConfigError, match=r"--kube-context: context 'staging' is not in .* \(contexts: other, rack\)"
    ):
        resolve_kube_access(present, context="staging")


def test_a_missing_installer_says_what_to_install(
    rack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    installer = ToolCiliumInstaller(resolve_kube_access(_topology(rack)), "cilium")
    with pytest.raises(PrerequisiteError, match=r"`cilium` is not on PATH.*install cilium-cli"):
        installer.install(CiliumValues())
    helm = ToolCiliumInstaller(resolve_kube_access(_topology(rack)), "helm")
    with pytest.raises(PrerequisiteError, match=r"`helm` is not on PATH.*install Helm 3"):
        helm.uninstall()


def test_the_installer_points_the_tool_at_the_runs_cluster(
    rack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in `cilium` on PATH records what it was called with; the real CLI takes the same line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "called"
    tool = bin_dir / "cilium"
    tool.write_text(f'#!/bin/sh\necho "KUBECONFIG=$KUBECONFIG $*" >> {record}\n')
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    topology = _topology(rack)
    installer = ToolCiliumInstaller(resolve_kube_access(topology), "cilium")
    installer.install(CiliumValues.for_topology(topology))
    installer.uninstall()
    install, uninstall = record.read_text().splitlines()
    assert install.startswith(f"KUBECONFIG={(tmp_path / 'kubeconfig').resolve()} install --version=1.13.4")
    for flag in ("--set=kubeProxyReplacement=strict", "--set=k8sServicePort=6443", "--context=rack"):
        assert flag in install.split()
    assert uninstall.endswith("uninstall --wait --context=rack")
