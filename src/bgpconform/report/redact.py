"""Keep secrets out of everything a run writes: a report directory is shared, attached to tickets and
archived, so router passwords, tokens and kubeconfig credentials are replaced before a byte lands.

Two nets: the values of secrets the harness knows (the router credentials the topology names, and
their base64 forms, as kubeconfigs and Secrets carry them), and the shapes credentials take in text
(`token: ...`, `client-key-data: ...`, `Authorization: Bearer ...`, `password ...`), whatever the value.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from bgpconform.topology import Topology

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words

_SHAPES = (
    # kubeconfig and Kubernetes objects: `token: x`, `client-key-data: x`, JSON "token": "x"
    re.compile(
        r"""(?P<key>["']?(?:token|client-key-data|client-certificate-data|password|secret|"""
        r"""id-token|refresh-token|access-token)["']?[ \t]*[:=][ \t]*)"""
        r"""(?P<value>"[^"\\]*"|'[^'\\]*'|[^\s,}"'\\]+)""",
        re.IGNORECASE,
    ),
    re.compile(r"(?P<key>Authorization:[ \t]*(?:Bearer|Basic)[ \t]+)(?P<value>[^\s\"'\\]+)", re.IGNORECASE),
    # router CLIs: `neighbor X password x`; RouterOS `password=x` is covered above
    re.compile(r"(?P<key>\bpassword[ \t]+)(?P<value>[^\s\"'\\]+)", re.IGNORECASE),
    # PEM private keys
    re.compile(
        r"(?P<key>-----BEGIN [A-Z ]*PRIVATE KEY-----)(?P<value>.*?)(?=-----END [A-Z ]*PRIVATE KEY-----)",
        re.DOTALL,
    ),
)


# A match never crosses a line (a YAML key with a nested mapping has no value to hide), and values
# stop at quotes and backslashes, so a credential inside a JSON string (where a line break is the two
# characters `\n`) is replaced without eating the escape or the closing quote.


def _replace_value(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[:1] in {'"', "'"} else ""
    return f"{match.group('key')}{quote}{REDACTED}{quote}"


class Redactor:
    """Replaces known secret values and credential-shaped text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for secret in secrets:
            if len(secret) < MIN_SECRET_LENGTH:
                continue
            values.add(secret)
            values.add(base64.b64encode(secret.encode()).decode())
        # Longest first, so a secret that contains another is replaced whole.
        self._values = sorted(values, key=len, reverse=True)

    @classmethod
    def for_topology(cls, topology: Topology | None, environ: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if environ is None else environ
        secrets: list[str] = []
        if topology is not None and topology.router.credentials is not None:
            credentials = topology.router.credentials
            secrets += [env[name] for name in (credentials.password_env,) if name in env]
        return cls(secrets)

    def text(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, REDACTED)
        for shape in _SHAPES:
            text = shape.sub(_replace_value, text)
        return text

    def file(self, path: Path) -> None:
        """Rewrite one file in place; files that are not UTF-8 text (screenshots) are left as they are."""
        try:
            original = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            return
        cleaned = self.text(original)
        if cleaned != original:
            path.write_text(cleaned, encoding="utf-8")

    def tree(self, directory: Path) -> None:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.is_symlink():
                self.file(path)
