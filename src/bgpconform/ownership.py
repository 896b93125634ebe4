"""The labels that mark what the harness created, so a run (and an install-mode reset) removes those
objects and never one of the user's."""

from __future__ import annotations

HARNESS_LABEL = "bgpconform.io/owned"
RUN_LABEL = "bgpconform.io/run"  # which run created it: a run removes only its own objects
