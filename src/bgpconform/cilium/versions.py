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
