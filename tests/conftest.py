"""Fixtures the harness's own test packages share: an embedded API server per test and a client of it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bgpconform.kubeapi.client import Kube, new_api_client
from bgpconform.lab.apiserver.server import ApiServer
from bgpconform.lab.cluster.frozen import DETECTOR_VARIABLE

# Every lab these tests start, in this process or a child, freezes its informers' objects: a reader
# that changes one fails at that line (`bgpconform.lab.cluster.frozen`).
os.environ.setdefault(DETECTOR_VARIABLE, "1")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    api_server = ApiServer(tmp_path / "run", bookmark_interval=0.2)
    api_server.start()
    yield api_server
    api_server.stop()


@pytest.fixture
def kube(server: ApiServer) -> Iterator[Kube]:
    api: Any = new_api_client(str(server.kubeconfig_path))  # the client's close() is untyped
    yield Kube(api)
    api.close()
