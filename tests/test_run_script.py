"""The README's commands refuse clearly when they cannot work, before changing anything."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is needed to drop root")
@pytest.mark.skipif(os.geteuid() != 0, reason="the check drops from root to nobody")
def test_run_refuses_without_root() -> None:
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(REPO / "run"), "tests"],
        capture_output=True, text=True, check=False, cwd="/",
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "bgpconform: run as root: the lab creates network namespaces and starts routing daemons"
        " (sudo ./run tests)"
    )


def test_run_names_its_commands_on_a_bad_one() -> None:
    done = subprocess.run(
        ["bash", str(REPO / "run"), "nonsense"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "bgpconform: usage: ./run suite|tests|matrix|bench|lint|setup [pytest args]"
