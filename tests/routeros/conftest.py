"""Labs whose router is RouterOS (the lab's RouterOS API over FRR), one per emulated version."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import yaml

from bgpconform.lab.lab import Lab
from bgpconform.routers.routeros import RouterOsRouter
from bgpconform.topology import Topology, load_topology

REPO = Path(__file__).resolve().parents[2]
ROUTEROS_TOPOLOGY = REPO / "topologies" / "lab-routeros.yaml"
CREDENTIAL_VARIABLES = ("BGPCONFORM_ROUTER_USER", "BGPCONFORM_ROUTER_PASSWORD")


def routeros_topology(directory: Path, version: str, *, ecmp: bool = False) -> Topology:
    """lab-routeros.yaml emulating another RouterOS version."""
    data = yaml.safe_load(ROUTEROS_TOPOLOGY.read_text())
    data["router"]["routeros_version"] = version
    data["router"]["ecmp"] = ecmp
    path = directory / f"lab-routeros-{version}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_topology(path)


@contextmanager
def routeros_lab(topology: Topology) -> Iterator[Lab]:
    with pytest.MonkeyPatch.context() as env:
        for name in CREDENTIAL_VARIABLES:  # the lab router's default login: admin, empty password
            env.delenv(name, raising=False)
        with Lab(topology, purpose="tests") as lab:
            yield lab


def adapter(lab: Lab) -> RouterOsRouter:
    router = lab.router
    assert isinstance(router, RouterOsRouter)
    return router


LabFactory = Callable[[str], Lab]


@pytest.fixture(scope="module")
def lab_for(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFactory]:
    """A lab per emulated version, started on first use and kept for the module."""
    labs: dict[str, Lab] = {}
    with ExitStack() as stack:

        def get(version: str) -> Lab:
            if version not in labs:
                topology = routeros_topology(tmp_path_factory.mktemp("routeros"), version)
                labs[version] = stack.enter_context(routeros_lab(topology))
            return labs[version]

        yield get
