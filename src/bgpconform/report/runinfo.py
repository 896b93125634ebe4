"""Who ran what, where and from which source: the header a sign-off quotes."""

from __future__ import annotations

import getpass
import hashlib
import secrets
import socket
import subprocess
from datetime import datetime
from importlib import metadata
from pathlib import Path

UNKNOWN = "unknown"


def new_run_id(started: datetime) -> str:
    """Sortable by time, unique between runs started in the same second."""
    return f"{started:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return UNKNOWN


def harness_version() -> str:
    try:
        return metadata.version("bgpconform")
    except metadata.PackageNotFoundError:
        return UNKNOWN


def git_revision(directory: Path) -> str:
    """The checkout's commit, marked `+dirty` when files differ from it: a report from uncommitted
    code must say so."""
    try:
        head = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return head + ("+dirty" if status else "")


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return UNKNOWN


def host() -> str:
    return socket.gethostname() or UNKNOWN
