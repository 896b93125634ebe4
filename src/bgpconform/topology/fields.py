"""Scalar types of the topology and the error carrier its validators share.

Each type checks one value and says how to fix it in the user's terms (a DNS label, an AS number, a
prefix length), because pydantic's generic wording ("Input should be ...") does not tell a user what
Kubernetes or BGP will reject.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from bgpconform.cilium.versions import LAST_SUPPORTED, MATRIX_RELEASES, SUPPORTED_RANGE, supported_minor

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """One problem, located relative to the value whose validator found it."""

    loc: Loc
    message: str
    fix: str


class Invalid(ValueError):
    """Raised by validators so a single check can report several located problems, each with a fix."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(_issue_line(issue) for issue in self.issues))

    @classmethod
    def one(cls, message: str, fix: str, at: Loc = ()) -> Invalid:
        return cls([Issue(at, message, fix)])


def format_loc(loc: Loc) -> str:
    """Render a location the way a user would write it: `nodes[2].address`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _issue_line(issue: Issue) -> str:
    where = format_loc(issue.loc)
    return f"{where + ': ' if where else ''}{issue.message}; fix: {issue.fix}"


def describe(value: object) -> str:
    """Name a parsed YAML value in the user's terms, for 'expected X, got Y' messages."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string '{value}'"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


# --- scalar checks ------------------------------------------------------------------------------------


def _parse_address(value: object) -> object:
    if isinstance(value, IPv4Address):
        return value
    if not isinstance(value, str):
        raise Invalid.one(f"expected an IPv4 address, got {describe(value)}", "write it like 192.168.1.10")
    if "/" in value:
        bare = value.split("/", 1)[0]
        raise Invalid.one(
            f"'{value}' has a prefix length but this is a single address", f"drop the prefix: {bare}"
        )
    try:
        return IPv4Address(value)
    except ValueError:
        raise Invalid.one(
            f"'{value}' is not an IPv4 address",
            "write four numbers 0-255 separated by dots, e.g. 192.168.1.10",
        ) from None


def _parse_network(value: object) -> object:
    if isinstance(value, IPv4Network):
        return value
    if not isinstance(value, str):
        raise Invalid.one(f"expected an IPv4 network, got {describe(value)}", "write it like 10.136.1.0/24")
    if "/" not in value:
        raise Invalid.one(f"'{value}' has no prefix length", f"add one, e.g. {value}/24")
    try:
        return IPv4Network(value)
    except ValueError:
        pass
    try:
        loose = IPv4Network(value, strict=False)
    except ValueError:
        raise Invalid.one(
            f"'{value}' is not an IPv4 network", "write it as address/prefix-length, e.g. 10.136.1.0/24"
        ) from None
    raise Invalid.one(f"'{value}' has host bits set", f"use the network address: {loose}")


def _parse_interface(value: object) -> object:
    if isinstance(value, IPv4Interface):
        return value
    if not isinstance(value, str):
        raise Invalid.one(
            f"expected an IPv4 address with prefix length, got {describe(value)}",
            "write it like 198.51.100.1/24",
        )
    if "/" not in value:
        raise Invalid.one(
            f"'{value}' has no prefix length", f"add the length of its network, e.g. {value}/24"
        )
    try:
        iface = IPv4Interface(value)
    except ValueError:
        raise Invalid.one(
            f"'{value}' is not an IPv4 address with prefix length",
            "write it as address/prefix-length, e.g. 198.51.100.1/24",
        ) from None
    net = iface.network
    if net.prefixlen <= 30 and iface.ip in (net.network_address, net.broadcast_address):
        kind = "network" if iface.ip == net.network_address else "broadcast"
        raise Invalid.one(
            f"{iface.ip} is the {kind} address of {net}",
            f"use a host address, {net.network_address + 1} to {net.broadcast_address - 1}",
        )
    return iface


_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def _suggest_name(value: str, pattern: re.Pattern[str], limit: int) -> str:
    guess = re.sub(r"[^a-z0-9.-]+", "-", value.lower())
    if pattern is not _DNS1123_SUBDOMAIN:
        guess = guess.replace(".", "-")
    guess = guess.strip("-.")[:limit].strip("-.")
    if guess and guess != value and pattern.fullmatch(guess):
        return f", e.g. '{guess}'"
    return ""


def _name_check(pattern: re.Pattern[str], limit: int, kind: str, rule: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value == "":
            raise Invalid.one("is empty", f"give it a {kind}: {rule}")
        if len(value) <= limit and pattern.fullmatch(value):
            return value
        raise Invalid.one(
            f"'{value}' is not a valid {kind}", f"use {rule}{_suggest_name(value, pattern, limit)}"
        )

    return check


_dns_label = _name_check(
    _DNS1123_LABEL,
    63,
    "DNS-1123 label",
    "at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
)
_dns_subdomain = _name_check(
    _DNS1123_SUBDOMAIN,
    253,
    "DNS-1123 subdomain",
    "at most 253 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
)
_dns1035_label = _name_check(
    _DNS1035_LABEL,
    63,
    "DNS-1035 label",
    "at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit",
)


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= 63 and _LABEL_NAME.fullmatch(name) is not None


def _label_key(value: str) -> str:
    if _label_key_ok(value):
        return value
    raise Invalid.one(
        f"'{value}' is not a valid Kubernetes label key",
        "use an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' and '.', "
        "starting and ending with a letter or digit",
    )


def _label_value_ok(value: str) -> bool:
    return value == "" or (len(value) <= 63 and _LABEL_NAME.fullmatch(value) is not None)


def _labels(value: dict[str, str]) -> dict[str, str]:
    issues: list[Issue] = []
    for key, item in value.items():
        if not _label_key_ok(key):
            issues.append(
                Issue(
                    (key,),
                    f"'{key}' is not a valid Kubernetes label key",
                    "use an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' and '.', "
                    "starting and ending with a letter or digit",
                )
            )
        elif not _label_value_ok(item):
            issues.append(
                Issue(
                    (key,),
                    f"'{item}' is not a valid Kubernetes label value",
                    "use at most 63 letters, digits, '-', '_' and '.', "
                    "starting and ending with a letter or digit",
                )
            )
    if issues:
        raise Invalid(issues)
    return value


def _selector(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise Invalid.one(
            "is empty",
            "give the label the harness puts on peering nodes, e.g. node_selector: {bgp-policy: a}",
        )
    return value


def _label_value(value: str) -> str:
    if value and _label_value_ok(value):
        return value
    raise Invalid.one(
        f"'{value}' is not a valid Kubernetes label value",
        "use 1 to 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
    )


def _nonempty(value: str) -> str:
    if value.strip():
        return value
    raise Invalid.one("is empty", "give it a value")


def _image(value: str) -> str:
    if value and not any(c.isspace() for c in value):
        return value
    raise Invalid.one(f"'{value}' is not a container image reference", "write it like nginx:latest")


def _asn(value: int) -> int:
    if value == 23456:
        raise Invalid.one(
            "AS number 23456 is AS_TRANS, reserved for 4-byte AS transition (RFC 6793)",
            "use another AS number, e.g. 64512",
        )
    if 1 <= value <= 4294967295:
        return value
    raise Invalid.one(
        f"AS number {value} is out of range",
        "use 1..4294967295; private ranges are 64512-65534 and 4200000000-4294967294",
    )


def _port(value: int) -> int:
    if 1 <= value <= 65535:
        return value
    raise Invalid.one(f"port {value} is out of range", "use a port in 1..65535")


def _env_name(value: str) -> str:
    if _ENV_NAME.fullmatch(value):
        return value
    # The value is not echoed: a user who misread the field may have pasted the secret itself.
    raise Invalid.one(
        "is not a valid environment variable name (it names the variable that holds the value, "
        "it is not the value)",
        "use upper-case letters, digits and '_', not starting with a digit, e.g. BGPCONFORM_ROUTER_PASSWORD",
    )


def _version_check(pattern: str, example: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if compiled.fullmatch(value):
            return value
        raise Invalid.one(f"'{value}' is not a version", f"write it like {example}")

    return check


def _seconds(value: float) -> float:
    if value > 0 and math.isfinite(value):
        return value
    raise Invalid.one(f"{value:g} is not a positive number of seconds", "use a value above 0, e.g. 30")


def _seconds_between(low: int, high: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if low <= value <= high:
            return value
        raise Invalid.one(f"{value} is out of range", f"use {low}..{high} seconds")

    return check


def at_least_one(fix: str) -> Callable[[list[object]], list[object]]:
    def check(value: list[object]) -> list[object]:
        if value:
            return value
        raise Invalid.one("is empty", fix)

    return check


Address = Annotated[IPv4Address, BeforeValidator(_parse_address)]
Network = Annotated[IPv4Network, BeforeValidator(_parse_network)]
Interface = Annotated[IPv4Interface, BeforeValidator(_parse_interface)]
Label = Annotated[str, AfterValidator(_dns_label)]
Subdomain = Annotated[str, AfterValidator(_dns_subdomain)]
Asn = Annotated[int, AfterValidator(_asn)]
Port = Annotated[int, AfterValidator(_port)]
EnvName = Annotated[str, AfterValidator(_env_name)]
Seconds = Annotated[float, AfterValidator(_seconds)]
Labels = Annotated[dict[str, str], AfterValidator(_labels)]
Selector = Annotated[dict[str, str], AfterValidator(_labels), AfterValidator(_selector)]
NonEmpty = Annotated[str, AfterValidator(_nonempty)]
Image = Annotated[str, AfterValidator(_image)]
AppLabel = Annotated[str, AfterValidator(_label_value)]
LabelKey = Annotated[str, AfterValidator(_label_key)]
ServiceName = Annotated[str, AfterValidator(_dns1035_label)]
K3sVersion = Annotated[str, AfterValidator(_version_check(r"v\d+\.\d+\.\d+\+k3s\d+", "v1.27.3+k3s1"))]


def _supported_cilium(value: str) -> str:
    try:
        supported_minor(value)
    except ValueError as exc:
        raise Invalid.one(
            str(exc), f"choose a release from {SUPPORTED_RANGE}, e.g. {MATRIX_RELEASES[LAST_SUPPORTED]}"
        ) from None
    return value


CiliumVersion = Annotated[
    str,
    AfterValidator(_version_check(r"\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?", "1.13.4 (no leading 'v')")),
    AfterValidator(_supported_cilium),
]
CiliumCliVersion = Annotated[
    str, AfterValidator(_version_check(r"\d+\.\d+\.\d+", "\"0.15.4\" (quoted, no leading 'v')"))
]
RouterOsVersion = Annotated[str, AfterValidator(_version_check(r"\d+\.\d+(\.\d+)?", '"7.8" (quoted)'))]
ConnectRetry = Annotated[int, AfterValidator(_seconds_between(1, 65535))]
HoldTime = Annotated[int, AfterValidator(_seconds_between(3, 65535))]
Keepalive = Annotated[int, AfterValidator(_seconds_between(1, 65535))]
PoolCidrs = Annotated[list[Network], AfterValidator(at_least_one("list at least one, e.g. [172.198.1.0/24]"))]
