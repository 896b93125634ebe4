"""A pytest plugin for the shard plan: writes the node ids a session would run to the file named by
`BGPCONFORM_SHARD_LISTING`, whatever `-q`/`-v` the user's arguments add to the terminal's listing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

LISTING_VARIABLE = "BGPCONFORM_SHARD_LISTING"


def pytest_collection_finish(session: pytest.Session) -> None:
    target = os.environ.get(LISTING_VARIABLE)
    if target:
        Path(target).write_text(json.dumps([item.nodeid for item in session.items]), encoding="utf-8")
