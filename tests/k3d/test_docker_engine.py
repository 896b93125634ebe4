"""Why no Docker engine can be had: one reason a test can skip with, naming the fix or the daemon's log."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bgpconform.targets.k3d.docker_engine import DOCKERD_FLAGS, EngineUnavailable, start_engine


def test_a_missing_dockerd_names_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineUnavailable, match=r"`dockerd` is not on PATH.*apt-get install docker\.io"):
        start_engine(tmp_path / "run", tmp_path / "data", timeout=5)


@pytest.mark.skipif(os.geteuid() != 0, reason="starting dockerd needs root")
def test_a_daemon_that_exits_at_once_is_reported_with_its_last_log_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `dockerd` that fails as a real one does on a machine without cgroups or storage."""
    binaries = tmp_path / "bin"
    binaries.mkdir()
    fake = binaries / "dockerd"
    fake.write_text(
        '#!/bin/sh\necho "args: $*"\necho "failed to start daemon: no storage driver" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{binaries}:{os.environ['PATH']}")
    with pytest.raises(EngineUnavailable) as caught:
        start_engine(tmp_path / "run", tmp_path / "data", timeout=30)
    message = str(caught.value)
    assert "dockerd exited with code 1 while starting" in message
    assert "failed to start daemon: no storage driver" in message
    assert all(flag in message for flag in DOCKERD_FLAGS)  # the host firewall is never touched
