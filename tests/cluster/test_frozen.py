"""The informer cache's contract under the mutation detector: shared objects that refuse changes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bgpconform.lab.cluster.frozen import DETECTOR_VARIABLE, cached, freeze

POD: dict[str, Any] = {
    "metadata": {"name": "simple-pod", "labels": {"app": "simple-pod"}},
    "status": {"conditions": [{"type": "Ready", "status": "True"}], "podIP": "10.136.1.5"},
}


@pytest.mark.parametrize(
    "change",
    [
        lambda pod: pod.__setitem__("spec", {}),
        lambda pod: pod["metadata"]["labels"].update({"x": "y"}),
        lambda pod: pod["metadata"].pop("name"),
        lambda pod: pod["status"]["conditions"].append({}),
        lambda pod: pod["status"]["conditions"][0].__setitem__("status", "False"),
        lambda pod: pod["status"]["conditions"].sort(key=str),
        lambda pod: pod["metadata"]["labels"].setdefault("x", "y"),
    ],
    ids=["set-key", "update-nested", "pop", "append", "nested-in-list", "sort", "setdefault"],
)
def test_every_way_of_changing_a_frozen_object_raises(change: Any) -> None:
    frozen = freeze(copy.deepcopy(POD))
    with pytest.raises(TypeError, match="read-only"):
        change(frozen)
    assert frozen == POD


def test_a_frozen_object_reads_serialises_and_copies_as_the_plain_one() -> None:
    frozen = freeze(copy.deepcopy(POD))
    assert isinstance(frozen, dict)
    assert isinstance(frozen["status"]["conditions"], list)
    assert json.loads(json.dumps(frozen)) == POD
    thawed = copy.deepcopy(frozen)
    thawed["status"]["conditions"].append({"type": "Initialized"})  # a deep copy is the reader's own
    assert type(thawed) is dict
    assert type(thawed["status"]["conditions"]) is list
    assert len(frozen["status"]["conditions"]) == 1


def test_the_cache_freezes_only_under_the_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DETECTOR_VARIABLE, "1")
    with pytest.raises(TypeError):
        cached(copy.deepcopy(POD))["spec"] = {}
    monkeypatch.delenv(DETECTOR_VARIABLE)
    plain = cached(copy.deepcopy(POD))
    plain["spec"] = {}
    assert type(plain) is dict
