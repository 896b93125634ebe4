"""Cilium version strings, parsed once for every emulated behaviour that depends on the release."""

from __future__ import annotations

import re


def image_version(image: str) -> str | None:
    """`quay.io/cilium/cilium:v1.13.4@sha256:...` -> `1.13.4`; None without a release tag."""
    tag = image.split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
    found = re.fullmatch(r"v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)", tag)
    return found.group(1) if found else None


def cilium_minor(version: str, *, since: tuple[int, int], missing: str) -> tuple[int, int]:
    """`1.13`, `v1.13.4`, `1.15.0-rc.1` -> (1, 13); `missing` is the error for releases before `since`."""
    parts = version.strip().removeprefix("v").split(".")
    try:
        major, minor = int(parts[0]), int(parts[1].split("-")[0])
    except (IndexError, ValueError):
        raise ValueError(f"not a Cilium version: {version!r}") from None
    if (major, minor) < since:
        raise ValueError(missing.format(version=version))
    return major, minor


# The minors the harness knows, each concern's table covering every one of them (FACTS.md, "Cilium 1.13
# to 1.20"): 1.13 brought LB IPAM and the BGP control plane's LB announcements; 1.20 is not modelled yet.
FIRST_SUPPORTED = (1, 13)
LAST_SUPPORTED = (1, 19)
SUPPORTED_MINORS: tuple[tuple[int, int], ...] = tuple((1, minor) for minor in range(13, 20))

# One patch release per minor for the version matrix (`./run matrix`): the walkthrough's 1.13.4 and
# releases named in FACTS.md (1.18.2, 1.19.1) or seen in published charts and install scripts
# (1.14.3 and 1.15.5 in poseidon/typhoon and cilium/charts pull requests, 1.16.3, 1.17.5).
MATRIX_RELEASES: dict[tuple[int, int], str] = {
    (1, 13): "1.13.4",
    (1, 14): "1.14.3",
    (1, 15): "1.15.5",
    (1, 16): "1.16.3",
    (1, 17): "1.17.5",
    (1, 18): "1.18.2",
    (1, 19): "1.19.1",
}


def _shown(minor: tuple[int, int]) -> str:
    return f"{minor[0]}.{minor[1]}"


SUPPORTED_RANGE = f"{_shown(FIRST_SUPPORTED)} to {_shown(LAST_SUPPORTED)}"


def supported_minor(version: str) -> tuple[int, int]:
    """The minor of a release the harness can judge; ValueError names the supported range otherwise."""
    minor = cilium_minor(
        version,
        since=FIRST_SUPPORTED,
        missing=f"Cilium {{version}} is outside {SUPPORTED_RANGE}, the releases the harness knows",
    )
    if minor > LAST_SUPPORTED:
        raise ValueError(f"Cilium {version} is outside {SUPPORTED_RANGE}, the releases the harness knows")
    return minor
