"""What the benchmarks that run labs side by side share: how many at once, and the rounds' median."""

from __future__ import annotations

import argparse
import os
import statistics


def labs_at_once_option(parser: argparse.ArgumentParser, flag: str, meaning: str) -> None:
    """Two labs per core unless told, as `bgpconform suite` and `bgpconform matrix` default to."""
    parser.add_argument(
        flag, type=int, default=2 * (os.cpu_count() or 1), help=f"{meaning} (default: two per core)"
    )


def print_median(walls: list[float], goal_seconds: float) -> None:
    if len(walls) > 1:
        print(
            f" median of {len(walls)} rounds: {statistics.median(walls):.1f} s "
            f"({min(walls):.1f} - {max(walls):.1f}; goal < {goal_seconds:.0f} s)"
        )
