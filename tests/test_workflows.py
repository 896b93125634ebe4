"""The GitHub workflows: valid against the workflow schema (check-jsonschema's vendored copy, no
network), and running what the README says they run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bgpconform.cilium.versions import MATRIX_RELEASES
from bgpconform.routers.routeros.dialect import Dialect
from bgpconform.topology import load_topology

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"


def _load(name: str) -> dict[Any, Any]:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def _runs(workflow: dict[Any, Any]) -> str:
    return "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])


@pytest.mark.parametrize("name", ["ci.yml", "nightly.yml"])
def test_the_workflow_is_valid_against_the_github_workflow_schema(name: str) -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(WORKFLOWS / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps: oops\n")
    checker = Path(sys.executable).with_name("check-jsonschema")
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0


def test_ci_runs_the_same_script_as_the_local_ci() -> None:
    assert "sudo bash .ci/run" in _runs(_load("ci.yml"))


def test_nightly_runs_k3d_for_every_supported_routeros_and_keeps_each_report() -> None:
    nightly = _load("nightly.yml")
    job = nightly["jobs"]["k3d"]
    versions = job["strategy"]["matrix"]["routeros"]
    assert {Dialect.of(v).families_field for v in versions} == {"address-families", "afi"}
    assert any(Dialect.of(v).needs_instance for v in versions)
    runs = _runs(nightly)
    assert "--target=k3d --dry-run" in runs
    assert "--target=k3d --topology=" in runs
    assert "install.sh" in runs and "cilium-linux-amd64.tar.gz" in runs  # noqa: PT018
    upload = [
        step for step in job["steps"] if str(step.get("uses", "")).startswith("actions/upload-artifact")
    ]
    assert upload and upload[0]["with"]["path"] == "reports/" and upload[0]["if"] == "always()"  # noqa: PT018


def test_nightly_covers_the_cilium_releases_of_the_version_matrix() -> None:
    """The k3d nightly runs the same releases as `./run matrix` on the lab."""
    releases = _load("nightly.yml")["jobs"]["k3d"]["strategy"]["matrix"]["cilium"]
    assert releases == list(MATRIX_RELEASES.values())


def test_nightly_upgrades_on_k3d_one_minor_at_a_time_to_the_newest_release() -> None:
    """features/7_upgrade.feature needs a release to reach; the nightly gives the upgrade topology's."""
    job = _load("nightly.yml")["jobs"]["k3d-upgrade"]
    command = " ".join(str(step.get("run", "")) for step in job["steps"])
    upgrade = load_topology(REPO / "topologies" / "lab-upgrade.yaml").cluster
    assert f"--cilium-version={upgrade.cilium_version}" in command
    assert f"--cilium-upgrade-to={upgrade.upgrade_to}" in command
    assert "--target=k3d" in command
