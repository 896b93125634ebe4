"""Kubernetes `metav1.LabelSelector` matching, with the nil-selector meaning each Cilium field gives it.

A selector object is `{matchLabels: {k: v}, matchExpressions: [{key, operator, values}]}`; every part must
hold (AND). Operators are `In`, `NotIn`, `Exists`, `DoesNotExist`, spelled exactly so; `In`/`NotIn` need at
least one value and `Exists`/`DoesNotExist` none, as `LabelSelectorAsSelector` enforces. `NotIn` and
`DoesNotExist` match objects that lack the key. An empty selector (`{}`) matches everything.

What a missing (nil) selector means is not Kubernetes' choice but each field's (FACTS.md):
- CiliumLoadBalancerIPPool `spec.serviceSelector`: nil = all services ("Cilium: LB IPAM"; the operator
  skips the match when the selector is nil).
- CiliumBGPPeeringPolicy `virtualRouters[].serviceSelector`: nil = announce no services, hence the
  walkthrough's `NotIn` dummy expression to select all ("Cilium: BGP control plane v1").
- CiliumBGPPeeringPolicy `spec.nodeSelector`: nil = all nodes ("Cilium: BGP control plane v1").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Label key: optional DNS-subdomain prefix and a name of at most 63 characters; value: at most 63.
_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(ValueError):
    """The selector would be rejected by `LabelSelectorAsSelector`, so it selects nothing reliably."""


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise SelectorError(f"invalid label key {key!r}")
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _PREFIX.match(prefix)):
        raise SelectorError(f"invalid label key {key!r}: bad prefix")
    if len(name) > 63 or not _NAME.match(name):
        raise SelectorError(f"invalid label key {key!r}")
    return key


def _check_value(value: object) -> str:
    if not isinstance(value, str) or len(value) > 63 or (value and not _NAME.match(value)):
        raise SelectorError(f"invalid label value {value!r}")
    return value


@dataclass(frozen=True)
class Requirement:
    """One `key op values` term; `matchLabels` entries become `In` with a single value."""

    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        return not present  # DoesNotExist


@dataclass(frozen=True)
class LabelSelector:
    """A parsed, validated label selector; no requirements means it matches everything."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> LabelSelector:
        """Parse a selector object, raising `SelectorError` where Kubernetes would refuse it."""
        if not isinstance(obj, Mapping):
            raise SelectorError(f"a label selector must be an object, not {type(obj).__name__}")
        requirements: list[Requirement] = []
        match_labels = obj.get("matchLabels") or {}
        if not isinstance(match_labels, Mapping):
            raise SelectorError("matchLabels must be an object")
        for key, value in match_labels.items():
            requirements.append(Requirement(_check_key(key), "In", frozenset({_check_value(value)})))
        expressions = obj.get("matchExpressions") or []
        if not isinstance(expressions, list):
            raise SelectorError("matchExpressions must be a list")
        for expr in expressions:
            if not isinstance(expr, Mapping):
                raise SelectorError("each matchExpressions entry must be an object")
            key = _check_key(expr.get("key"))
            operator = expr.get("operator")
            values = expr.get("values") or []
            if operator not in _OPERATORS:
                raise SelectorError(f"{operator!r} is not a valid label selector operator")
            if not isinstance(values, list):
                raise SelectorError(f"values of {key!r} must be a list")
            if operator in ("In", "NotIn") and not values:
                raise SelectorError(f"for 'in', 'notin' operators, values set can't be empty ({key!r})")
            if operator in ("Exists", "DoesNotExist") and values:
                raise SelectorError(f"values set must be empty for exists and does not exist ({key!r})")
            requirements.append(Requirement(key, operator, frozenset(_check_value(v) for v in values)))
        return cls(tuple(requirements))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        found = labels or {}
        return all(requirement.matches(found) for requirement in self.requirements)


def matches(
    selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None, *, nil_matches: bool
) -> bool:
    """Match `labels` against a selector object; `nil_matches` says what an absent selector means."""
    if selector is None:
        return nil_matches
    return LabelSelector.parse(selector).matches(labels)


def pool_selects_service(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """LB IPAM pool `serviceSelector`: nil = all services (FACTS.md, "Cilium: LB IPAM")."""
    return matches(selector, labels, nil_matches=True)


def bgp_selects_service(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """BGP v1 virtual router `serviceSelector`: nil = no services (FACTS.md, "BGP control plane v1")."""
    return matches(selector, labels, nil_matches=False)


def bgp_selects_node(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """BGP v1 policy `nodeSelector`: nil = all nodes (FACTS.md, "Cilium: BGP control plane v1")."""
    return matches(selector, labels, nil_matches=True)
