"""Running external commands with their failures turned into evidence-carrying errors."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from bgpconform.errors import CommandError

DEFAULT_TIMEOUT = 30.0


def run(
    argv: Sequence[str],
    *,
    input_text: str | None = None,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; a non-zero exit becomes a `CommandError` carrying its output."""
    args = list(argv)
    try:
        done = subprocess.run(
            args, input=input_text, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise CommandError(args, 127, "", f"{args[0]}: not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(args, -1, "", f"no answer within {timeout:.0f}s") from exc
    if check and done.returncode != 0:
        raise CommandError(args, done.returncode, done.stdout, done.stderr)
    return done
