"""A pytest plugin for `bench_suite.py`: records every wait the harness's own thread made, with the
scenario it was made in, each scenario's wall time and the session's, into the JSON file named by
`BGPCONFORM_BENCH_WAITS`."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bgpconform.waiting import WaitRecord, observe_waits

OUTPUT_VARIABLE = "BGPCONFORM_BENCH_WAITS"

_records: list[tuple[str, WaitRecord]] = []
_current: list[str] = [""]
_durations: dict[str, float] = defaultdict(float)
_features: dict[str, str] = {}
_began: list[float] = []
_stop: list[Callable[[], None]] = []


def _keep_harness_waits(record: WaitRecord) -> None:
    """Waits in the lab's own threads (its daemons starting, its controllers) are the emulated
    system's time, already inside the harness thread's waits on that system; count them once."""
    if record.thread == threading.main_thread().name:
        _records.append((_current[0], record))


def pytest_configure(config: pytest.Config) -> None:
    _stop.append(observe_waits(_keep_harness_waits))


def pytest_sessionstart(session: pytest.Session) -> None:
    _began.append(time.monotonic())


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    _current[0] = nodeid


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    _features[request.node.nodeid] = Path(str(feature.filename)).stem


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.nodeid] += report.duration


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
                "scenarios": [
                    {"nodeid": nodeid, "feature": _features.get(nodeid, ""), "seconds": seconds}
                    for nodeid, seconds in _durations.items()
                ],
                "waits": [
                    {
                        "nodeid": nodeid,
                        "expected": r.expected,
                        "elapsed": r.elapsed,
                        "probes": r.probes,
                        "ok": r.succeeded,
                    }
                    for nodeid, r in _records
                ],
            },
            indent=1,
        )
    )
