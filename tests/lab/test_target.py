"""The lab target's reset: the stage machine resets before its first stage, and a lab nobody has
touched since it started is that stage already; one that was handed out is rebuilt."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bgpconform.lab.runs import list_namespaces, namespace_prefix, read_record, state_root
from bgpconform.targets.lab import LabTarget
from bgpconform.topology import Topology

pytestmark = pytest.mark.lab


@pytest.fixture
def target(lab_topology: Topology) -> Iterator[LabTarget]:
    started = LabTarget(lab_topology, purpose="tests")
    try:
        started.start()
        yield started
    finally:
        started.stop()


def _run_id(target: LabTarget) -> str:
    return target.cluster.lab.run.run_id  # reading it hands the lab out, as any step's use does


def test_a_lab_handed_out_is_replaced_by_a_fresh_one_and_removed(target: LabTarget) -> None:
    first = _run_id(target)
    target.reset()
    second = _run_id(target)
    assert second != first
    assert not [ns for ns in list_namespaces() if ns.startswith(namespace_prefix(first))]
    assert not (state_root() / first).exists()


def _own_runs() -> set[str]:
    """The lab runs this process owns, by their ownership records (other labs may run beside it)."""
    return {
        directory.name
        for directory in state_root().iterdir()
        if (record := read_record(directory)) is not None and record.owner_pid == os.getpid()
    }


def test_a_lab_nobody_touched_since_it_started_is_kept(target: LabTarget) -> None:
    runs = _own_runs()
    assert len(runs) == 1
    target.reset()
    assert _own_runs() == runs  # no lab removed, none started
    target.reset()  # still untouched: `reset` hands nothing out
    assert _own_runs() == runs
    run_id = _run_id(target)
    target.reset()  # now handed out
    assert _run_id(target) != run_id
    assert _own_runs() == {_run_id(target)}
