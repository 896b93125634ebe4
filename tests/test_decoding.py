"""Large API answers are decoded with the collector paused, and it always runs again afterwards."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from bgpconform.kubeapi import decoding
from bgpconform.kubeapi.decoding import PAUSE_FROM_BYTES, decode_json


def _pod_list(pods: int) -> bytes:
    items = [
        {"metadata": {"name": f"pause-{i:04d}", "namespace": "bench", "labels": {"app": "x"}}, "spec": {}}
        for i in range(pods)
    ]
    return orjson.dumps({"kind": "PodList", "items": items})


@pytest.fixture
def collector_state() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_a_large_list_decodes_as_orjson_does_with_the_collector_paused_meanwhile(
    collector_state: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _pod_list(5000)
    assert len(body) >= PAUSE_FROM_BYTES
    collecting_while_decoding: list[bool] = []

    def loads(data: bytes) -> Any:
        collecting_while_decoding.append(gc.isenabled())
        return orjson.loads(data)

    monkeypatch.setattr(decoding, "orjson", SimpleNamespace(loads=loads))
    gc.enable()
    decoded = decode_json(body)
    assert decoded == orjson.loads(body)
    assert collecting_while_decoding == [False]
    assert gc.isenabled()


def test_the_collector_stays_off_when_it_was_off(collector_state: None) -> None:
    gc.disable()
    decode_json(_pod_list(5000))
    assert not gc.isenabled()


def test_decodes_side_by_side_leave_the_collector_running(collector_state: None) -> None:
    gc.enable()
    body = _pod_list(5000)
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def decode() -> None:
        try:
            start.wait(timeout=10)
            for _ in range(5):
                decode_json(body)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=decode) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    assert gc.isenabled()
