"""A lab started by `bgpconform lab up`, and a pi topology that points at it as a user's rack would be
described: its kubeconfig and context, its RouterOS API or FRR vtysh, its outside client's namespace."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bgpconform.cli.lab_commands import LabState, read_state
from tests.suite.runner import ROOT

LAB_LOGIN = {"BGPCONFORM_ROUTER_USER": "admin", "BGPCONFORM_ROUTER_PASSWORD": ""}  # a fresh CHR's


def bgpconform(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bgpconform.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@contextmanager
def lab_at(topology: Path, stage: str) -> Iterator[LabState]:
    """`lab up --stage`, then `lab down` whatever happens."""
    started = bgpconform("lab", "up", "--topology", str(topology), "--stage", stage)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        state = read_state()
        assert state is not None
        assert state.alive
        yield state
    finally:
        stopped = bgpconform("lab", "down")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def pi_topology(base: Path, state: LabState, directory: Path, **changes: Any) -> Path:
    """`base` as a user would adapt it to a running cluster; `changes` override sections after that."""
    data = yaml.safe_load(base.read_text())
    details = state.details
    kubeconfig = yaml.safe_load(Path(state.kubeconfig).read_text())
    data["cluster"]["kubeconfig"] = state.kubeconfig
    data["cluster"]["context"] = kubeconfig["current-context"]
    if data["router"]["kind"] == "routeros":
        host, port = str(details["routeros_api"]).rsplit(":", 1)
        data["router"]["management"] = {"host": host, "port": int(port)}
    else:
        data["router"]["vtysh"] = {
            "namespace": details["namespaces"]["router"],
            "vty_socket": f"{details['run_directory']}/frr",
        }
    data["client"]["namespace"] = details["namespaces"]["client"]
    for section, values in changes.items():
        data[section] = {**data.get(section, {}), **values}
    written = directory / f"pi-{base.stem}.yaml"
    written.write_text(yaml.safe_dump(data, sort_keys=False))
    return written
