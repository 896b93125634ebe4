"""A pytest plugin for `bench_suite.py`: records every wait the harness's own thread made, and the
session's wall time, into the JSON file named by `BGPCONFORM_BENCH_WAITS`."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bgpconform.waiting import WaitRecord, observe_waits

OUTPUT_VARIABLE = "BGPCONFORM_BENCH_WAITS"

_records: list[WaitRecord] = []
_began: list[float] = []
_stop: list[Callable[[], None]] = []


def _keep_harness_waits(record: WaitRecord) -> None:
    """Waits in the lab's own threads (its daemons starting, its controllers) are the emulated
    system's time, already inside the harness thread's waits on that system; count them once."""
    if record.thread == threading.main_thread().name:
        _records.append(record)


def pytest_configure(config: pytest.Config) -> None:
    _stop.append(observe_waits(_keep_harness_waits))


def pytest_sessionstart(session: pytest.Session) -> None:
    _began.append(time.monotonic())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    wall = time.monotonic() - _began[0]
    for stop in _stop:
        stop()
    output = Path(os.environ[OUTPUT_VARIABLE])
    output.write_text(
        json.dumps(
            {
                "session_wall": wall,
                "exit_status": int(exitstatus),
                "waits": [
                    {"expected": r.expected, "elapsed": r.elapsed, "probes": r.probes, "ok": r.succeeded}
                    for r in _records
                ],
            },
            indent=1,
        )
    )
