"""What each RouterOS version accepts on the API, in one place for the adapter and the lab's server.

The BGP menus changed shape across RouterOS 7 (FACTS.md, "MikroTik RouterOS 7"): the connection's
address families are `address-families` up to 7.18 and `afi` from 7.19; from 7.20 a connection must
name a `/routing/bgp/instance`; BGP multipath exists from 7.22; `!empty` answers an empty print from
7.18. The adapter picks its commands from the version the router reports; the lab's server refuses
what its emulated version does not have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from bgpconform.errors import HarnessError

_VERSION = re.compile(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?")


@total_ordering
@dataclass(frozen=True)
class RouterOsVersion:
    """A RouterOS release number; `text` keeps what the router printed (`7.8 (stable)`)."""

    major: int
    minor: int
    patch: int = 0
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> RouterOsVersion:
        match = _VERSION.match(text)
        if match is None:
            raise HarnessError(f"cannot read a RouterOS version from {text!r}: expected e.g. '7.8 (stable)'")
        major, minor, patch = match.groups()
        return cls(int(major), int(minor), int(patch or 0), text.strip())

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, RouterOsVersion):
            return NotImplemented
        return self.key < other.key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RouterOsVersion):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def number(self) -> str:
        """`7.8`, `7.20.1`: the release without channel or build text."""
        return f"{self.major}.{self.minor}" + (f".{self.patch}" if self.patch else "")

    def __str__(self) -> str:
        return self.text or self.number


def at_least(major: int, minor: int) -> RouterOsVersion:
    return RouterOsVersion(major, minor)


EMPTY_REPLY_SINCE = at_least(7, 18)
AFI_FIELD_SINCE = at_least(7, 19)
INSTANCE_REQUIRED_SINCE = at_least(7, 20)
MULTIPATH_SINCE = at_least(7, 22)


@dataclass(frozen=True)
class Dialect:
    """The API shape of one RouterOS version, as far as the harness's menus go."""

    version: RouterOsVersion

    @classmethod
    def of(cls, version: str | RouterOsVersion) -> Dialect:
        parsed = version if isinstance(version, RouterOsVersion) else RouterOsVersion.parse(version)
        return cls(parsed)

    @property
    def families_field(self) -> str:
        """The connection field that lists address families."""
        return "afi" if self.version >= AFI_FIELD_SINCE else "address-families"

    @property
    def retired_families_field(self) -> str:
        return "address-families" if self.version >= AFI_FIELD_SINCE else "afi"

    @property
    def needs_instance(self) -> bool:
        """From 7.20 every connection belongs to a `/routing/bgp/instance` named with `instance=`."""
        return self.version >= INSTANCE_REQUIRED_SINCE

    @property
    def has_multipath(self) -> bool:
        """`/routing/bgp/instance multipath` (7.22+); before, one of equal paths is active."""
        return self.version >= MULTIPATH_SINCE

    @property
    def sends_empty(self) -> bool:
        """A print with no rows answers `!empty` before `!done` (7.18+)."""
        return self.version >= EMPTY_REPLY_SINCE
