"""How the matrix and the shards start pytest: the features' plugins load, the unused ones do not."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bgpconform.child_pytest import pytest_argv

ROOT = Path(__file__).resolve().parents[1]


def test_a_child_run_loads_the_features_plugins_and_not_the_dev_tools_ones() -> None:
    done = subprocess.run(
        pytest_argv("--trace-config", "--collect-only", "-q", "--topology", "topologies/lab.yaml"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    registered = "\n".join(line for line in done.stdout.splitlines() if line.startswith("PLUGIN registered"))
    for loaded in ("pytest_bdd.plugin", "bgpconform.plugin"):
        assert loaded in registered, registered
    for unused in ("hypothesis", "cacheprovider"):
        assert unused not in registered, registered
    assert "test_walkthrough.py::" in done.stdout  # the features are collected as before
