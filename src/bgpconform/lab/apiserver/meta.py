"""ObjectMeta rules every resource shares: names, generateName, labels, the fields the server owns."""

from __future__ import annotations

import random
import re
import uuid
from typing import Any

from bgpconform.lab.apiserver import errors as e
from bgpconform.lab.apiserver.errors import FieldError

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]"
    "([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)

LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
QUALIFIED_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)

# Names that must be DNS labels; everything else is a DNS subdomain.
_LABEL_NAMED = {("", "namespaces"): "1123", ("", "services"): "1035"}

GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def generated_name(prefix: str) -> str:
    """`names.SimpleNameGenerator`: the prefix plus five random characters from its alphabet."""
    return prefix[:58] + "".join(random.choice(GENERATE_ALPHABET) for _ in range(5))


def new_uid() -> str:
    return str(uuid.uuid4())


def validate_name(group: str, plural: str, name: str) -> list[FieldError]:
    style = _LABEL_NAMED.get((group, plural))
    if style == "1123":
        ok, limit, message = DNS1123_LABEL.match(name), 63, LABEL_MESSAGE
    elif style == "1035":
        ok, limit, message = DNS1035_LABEL.match(name), 63, DNS1035_MESSAGE
    else:
        ok, limit, message = DNS1123_SUBDOMAIN.match(name), 253, SUBDOMAIN_MESSAGE
    problems: list[FieldError] = []
    if len(name) > limit:
        problems.append(e.invalid("metadata.name", name, f"must be no more than {limit} characters"))
    if not ok:
        problems.append(e.invalid("metadata.name", name, message))
    return problems


def validate_labels(meta: dict[str, Any]) -> list[FieldError]:
    problems: list[FieldError] = []
    labels = meta.get("labels")
    if labels is not None and not isinstance(labels, dict):
        return [e.invalid("metadata.labels", labels, "must be a map of strings")]
    for key, value in (labels or {}).items():
        problems.extend(_qualified_key("metadata.labels", key))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(
                e.invalid(
                    "metadata.labels",
                    value,
                    LABEL_VALUE_MESSAGE,
                )
            )
    annotations = meta.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        return [*problems, e.invalid("metadata.annotations", annotations, "must be a map of strings")]
    for key, value in (annotations or {}).items():
        problems.extend(_qualified_key("metadata.annotations", key))
        if not isinstance(value, str):
            problems.append(e.invalid(f"metadata.annotations[{key}]", value, "must be a string"))
    return problems


def _qualified_key(path: str, key: str) -> list[FieldError]:
    prefix, _, name = key.rpartition("/")
    if (prefix and not DNS1123_SUBDOMAIN.match(prefix)) or not name or len(name) > 63:
        return [
            e.invalid(
                path,
                key,
                "name part must be non-empty and at most 63 characters, with an optional "
                "DNS subdomain prefix and '/'",
            )
        ]
    if not _QUALIFIED_NAME.match(name):
        return [
            e.invalid(
                path,
                key,
                QUALIFIED_NAME_MESSAGE,
            )
        ]
    return []


def spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a write changes anything beyond metadata and status: what bumps metadata.generation."""
    skip = ("metadata", "status", "apiVersion", "kind")
    keys = (set(old) | set(new)) - set(skip)
    return any(old.get(key) != new.get(key) for key in keys)
