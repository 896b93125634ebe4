"""The names Kubernetes controllers give the objects they make, so the lab's look like a real cluster's.

`pod_template_hash` follows `controller.ComputeHash` (kube-controller-manager, pkg/controller): FNV-32a
over the template, the collision count appended little-endian when set, the decimal sum encoded with
`rand.SafeEncodeString`. The template is rendered as sorted JSON rather than with Go's spew printer,
so the value is stable per template and has the real shape ("768959858c") without being byte-equal.
Random suffixes use the alphabet the API server's generateName uses (`apiserver.meta`): one source.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Mapping
from typing import Any

from bgpconform.lab.apiserver.meta import GENERATE_ALPHABET as SAFE_ALPHABET  # k8s utilrand alphabet
from bgpconform.lab.apiserver.meta import generated_name

__all__ = ["SAFE_ALPHABET", "fnv32a", "generated_name", "pod_template_hash", "random_suffix", "safe_encode"]

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def fnv32a(data: bytes, value: int = _FNV32_OFFSET) -> int:
    """Go's `hash/fnv` New32a; `value` continues an earlier sum, as successive `Write` calls do."""
    for byte in data:
        value = ((value ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """`rand.SafeEncodeString`: each byte mapped into an alphabet without vowels or look-alikes."""
    return "".join(SAFE_ALPHABET[byte % len(SAFE_ALPHABET)] for byte in text.encode())


def pod_template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """The `pod-template-hash` / `controller-revision-hash` label value of a pod template."""
    rendered = json.dumps(template, sort_keys=True, separators=(",", ":"), default=str).encode()
    value = fnv32a(rendered)
    if collision_count is not None:
        value = fnv32a(struct.pack("<I", collision_count & 0xFFFFFFFF), value)
    return safe_encode(str(value))


def random_suffix(n: int = 5) -> str:
    """A generateName-style suffix (`cilium-6fnjv`); the server picks real names from generateName."""
    if n == 5:
        return generated_name("")
    return "".join(random.choice(SAFE_ALPHABET) for _ in range(n))
