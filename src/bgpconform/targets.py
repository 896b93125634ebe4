"""The targets the harness knows, and which of them this version can drive."""

from __future__ import annotations

TARGETS = ("lab", "k3d", "pi")
IMPLEMENTED_TARGETS = ("lab", "pi")

_PLANNED = {
    "k3d": "k3s in Docker with a RouterOS CHR container, for nightly CI",
}


def target_not_implemented(target: str) -> str:
    """The message for a target that is registered but not yet driven by this version."""
    what = _PLANNED.get(target, "this target")
    return (
        f"--target={target} ({what}) is not implemented yet in this version of bgpconform; "
        "run with --target=lab (the default) for now"
    )
