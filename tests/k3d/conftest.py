"""A real Docker engine for the k3d container tests, and the CHR stand-in image built on it.

The engine is the one the environment names, else a private dockerd started for the session (no
iptables, no forwarding, stopped at the end); where neither works the tests skip with the reason.
One session at a time uses it: every test's networks carry the topology's subnets, which Docker
refuses to give twice, and a session stops the dockerd it started when it ends.
"""

from __future__ import annotations

import fcntl
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bgpconform.lab.routeros.standin_image import REPOSITORY, ensure_standin_image
from bgpconform.targets.k3d.docker_engine import Engine, EngineUnavailable, find_engine, start_engine
from bgpconform.topology import Topology, load_topology
from bgpconform.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
VERSIONS = ("7.8", "7.20")
LOCK = Path(tempfile.gettempdir()) / "bgpconform-k3d-container-tests.lock"
LOCK_TIMEOUT = 900.0  # another session's k3d container tests take well under a minute


@contextmanager
def _one_session_at_a_time() -> Iterator[None]:
    with LOCK.open("a") as handle:

        def take() -> bool:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True

        wait_for(
            take,
            bool,
            expected=f"the lock {LOCK} (held while another pytest session runs these tests)",
            timeout=LOCK_TIMEOUT,
            interval=0.5,
            max_interval=2.0,
            tolerate=(BlockingIOError,),
        )
        yield  # closing the file releases the lock


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    with _one_session_at_a_time():
        try:
            found = find_engine() or start_engine()
        except EngineUnavailable as exc:
            pytest.skip(str(exc))
        yield found
        found.stop()


@pytest.fixture(scope="session")
def standin(engine: Engine) -> str:
    """The stand-in's repository, with an image per RouterOS version the tests use."""
    for version in VERSIONS:
        ensure_standin_image(engine.client, version)
    ensure_standin_image(engine.client)
    return REPOSITORY


@pytest.fixture(scope="session")
def topology() -> Topology:
    return load_topology(REPO / "topologies" / "lab-routeros.yaml")


@pytest.fixture
def run_name() -> str:
    """Docker names of one test: unique, so a failed test's leftovers never meet the next test."""
    return f"bgpc-t{uuid.uuid4().hex[:8]}"
