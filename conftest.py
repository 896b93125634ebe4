"""Root conftest: the harness's plugin is loaded through its entry point; the features' fixtures and
step definitions are plugins here, so every feature file sees every step."""

from __future__ import annotations

pytest_plugins = [
    "fixtures.target",
    "steps.cluster_steps",
    "steps.bgp_steps",
    "steps.lbipam_steps",
    "steps.reachability_steps",
    "steps.fault_steps",
    "steps.upgrade_steps",
    "steps.scale_steps",
]
