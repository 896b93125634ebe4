"""The CHR stand-in image, built from this machine's files alone: no base image can be pulled here.

A real CHR (QEMU inside) cannot run where there is no registry or KVM, yet the k3d target's container
code must run against a real engine. The stand-in is `FROM scratch` with a rootfs assembled from this
machine: one Python interpreter (Debian's `/usr/bin/python3.11` when present, else the interpreter
this virtualenv was made from) at its own path, its standard library (without tests, IDLE, Tk and
build files), the shared libraries `ldd` says it and its extension modules need, and under `/app` the
bgpconform modules and third-party packages that `bgpconform.lab.routeros.standalone` imports, found
by importing it. It runs that module: the RouterOS API on 8728, without a BGP speaker.

The image is labelled with a hash of everything that went into it and rebuilt only when that changes;
each RouterOS version is a one-line image on top (`bgpconform/chr-standin:7.8`), so versions share
the large layer and a cached image costs one hash of the inputs (well under a second).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
from docker.errors import APIError, BuildError, ImageNotFound

from bgpconform.errors import PrerequisiteError
from bgpconform.routers.routeros.standin import STANDIN_REPOSITORY

REPOSITORY = STANDIN_REPOSITORY
SERVER_MODULE = "bgpconform.lab.routeros.standalone"
HASH_LABEL = "org.bgpconform.standin.inputs"
VERSION_LABEL = "org.bgpconform.standin.routeros"
RECIPE = "1"  # change when the layout below changes, so every cached image is rebuilt
APP_DIR = "/app"
API_PORT = 8728
DEBIAN_PYTHON = Path("/usr/bin/python3.11")
# Parts of the standard library the server never imports that are large or need more libraries.
SKIPPED_STDLIB = {
    "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "distutils",
    "site-packages", "dist-packages", "venv",
}  # fmt: skip
SKIPPED_EXTENSIONS = re.compile(
    r"^(_test|_ctypes_test|_?xx|_curses|readline|_dbm|_gdbm|_sqlite3|nis|ossaudiodev|_tkinter)"
)
_LDD_PATH = re.compile(r"^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$")
_LDD_MISSING = re.compile(r"^\s*(\S+)\s+=>\s+not found")


class StandinImageError(PrerequisiteError):
    """The stand-in image cannot be assembled or built here; the message says what is missing."""


@dataclass(frozen=True)
class Interpreter:
    """Where one Python keeps its executable, standard library and extension modules."""

    executable: Path
    stdlib: Path
    dynload: Path


@dataclass(frozen=True)
class Entry:
    """One file of the image: its absolute path inside, where it comes from, and its mode."""

    path: str
    source: Path
    mode: int


def choose_interpreter() -> Path:
    """Debian's python3.11 (a plain system layout), else the interpreter this virtualenv was made from."""
    if DEBIAN_PYTHON.exists():
        return DEBIAN_PYTHON
    return Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"


def _run_python(executable: Path | str, code: str, what: str) -> Any:
    try:
        done = subprocess.run(
            [str(executable), "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        raise StandinImageError(f"cannot run {executable} to {what}: {exc.strerror}") from exc
    if done.returncode != 0:
        raise StandinImageError(f"{executable} could not {what}: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def describe_interpreter(executable: Path) -> Interpreter:
    data = _run_python(
        executable,
        "import json, os, sys, sysconfig, _asyncio; print(json.dumps([sys.executable, "
        "sysconfig.get_paths()['stdlib'], os.path.dirname(_asyncio.__file__), sys.version_info[:2]]))",
        "describe its layout",
    )
    exe, stdlib, dynload, version = data
    if tuple(version) < (3, 11):
        raise StandinImageError(f"{executable} is Python {version[0]}.{version[1]}; the stand-in needs 3.11+")
    return Interpreter(Path(exe).resolve(), Path(stdlib), Path(dynload))


def app_entries() -> list[Entry]:
    """What the server imports beyond the standard library, as files under `/app`: bgpconform's
    modules one by one, third-party packages whole (they may load files lazily)."""
    data = _run_python(
        sys.executable,
        # Modules `site` loaded before (such as setuptools' distutils hack) are not the server's.
        f"import json, sys, sysconfig; before = set(sys.modules); import {SERVER_MODULE}; "
        "paths = sysconfig.get_paths(); print(json.dumps([{n: getattr(m, '__file__', None) "
        "for n, m in sys.modules.items() if n not in before}, "
        "[paths['purelib'], paths['platlib']], [paths['stdlib'], paths['platstdlib']]]))",
        f"import {SERVER_MODULE}",
    )
    modules, site_dirs, stdlib_dirs = data
    sites = [Path(p).resolve() for p in site_dirs]
    stdlibs = [Path(p).resolve() for p in stdlib_dirs]
    ours = Path(modules["bgpconform"]).resolve().parent
    entries: dict[str, Entry] = {}
    for name, filename in sorted(modules.items()):
        if not filename:
            continue  # built into the interpreter
        path = Path(filename).resolve()
        site = next((root for root in sites if path.is_relative_to(root)), None)
        if path.is_relative_to(ours):
            relative = path.relative_to(ours.parent).as_posix()
            entries[relative] = Entry(f"{APP_DIR}/{relative}", path, 0o644)
        elif site is not None:
            top = site / path.relative_to(site).parts[0]
            for item in _files(top) if top.is_dir() else [top]:
                relative = item.relative_to(site).as_posix()
                entries[relative] = Entry(f"{APP_DIR}/{relative}", item, 0o644)
        elif not any(path.is_relative_to(root) for root in stdlibs):
            raise StandinImageError(
                f"{SERVER_MODULE} imports {name} from {path}, which is neither the standard library, "
                "bgpconform nor an installed package; the stand-in image would miss it"
            )
    return sorted(entries.values(), key=lambda entry: entry.path)


def _files(root: Path, skip_top: Iterable[str] = (), keep_bytecode: bool = False) -> list[Path]:
    skipped = set(skip_top)
    found: list[Path] = []
    for directory, names, filenames in os.walk(root):
        here = Path(directory)
        names[:] = sorted(
            name
            for name in names
            if not (here == root and (name in skipped or name.startswith("config-")))
            and (keep_bytecode or name != "__pycache__")
        )
        found += [here / name for name in sorted(filenames) if (here / name).exists()]  # no broken links
    return found


def stdlib_entries(interpreter: Interpreter) -> list[Entry]:
    entries = []
    for path in _files(interpreter.stdlib, SKIPPED_STDLIB, keep_bytecode=True):
        if path.parent == interpreter.dynload and SKIPPED_EXTENSIONS.match(path.name):
            continue
        entries.append(Entry(str(path), path, 0o755 if path.suffix == ".so" else 0o644))
    return entries


def library_entries(binaries: list[Path]) -> list[Entry]:
    """Every shared library the binaries load, at the path the dynamic loader resolved (ldd)."""
    try:
        done = subprocess.run(
            ["ldd", *map(str, binaries)], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        raise StandinImageError(
            f"cannot run ldd to list the interpreter's libraries: {exc.strerror}"
        ) from exc
    missing = sorted({m.group(1) for m in map(_LDD_MISSING.match, done.stdout.splitlines()) if m})
    if missing:
        raise StandinImageError(f"ldd cannot find libraries the interpreter needs: {', '.join(missing)}")
    paths = sorted({m.group(1) for m in map(_LDD_PATH.match, done.stdout.splitlines()) if m})
    if not paths:
        raise StandinImageError(f"ldd listed no libraries for {binaries[0]}: {done.stderr.strip()}")
    return [Entry(path, Path(path), 0o755) for path in paths if path not in map(str, binaries)]


@dataclass(frozen=True)
class Recipe:
    """Everything the base image is made of; `digest` names it."""

    interpreter: Interpreter
    entries: list[Entry]
    library_dirs: list[str]

    def dockerfile(self) -> str:
        command = ["-m", SERVER_MODULE, "--host", "0.0.0.0", "--port", str(API_PORT)]
        environment = {
            "PYTHONPATH": APP_DIR,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "LANG": "C.UTF-8",
            "LD_LIBRARY_PATH": ":".join(self.library_dirs),
        }
        return "\n".join(
            [
                "FROM scratch",
                "COPY rootfs/ /",
                *(f"ENV {key}={value}" for key, value in environment.items()),
                f"EXPOSE {API_PORT}",
                f"ENTRYPOINT {json.dumps([str(self.interpreter.executable)])}",
                f"CMD {json.dumps(command)}",
                "",
            ]
        )

    def digest(self) -> str:
        digest = hashlib.sha256(f"recipe {RECIPE}\n{self.dockerfile()}".encode())
        for entry in self.entries:
            digest.update(f"{entry.path}\0{entry.mode:o}\0".encode())
            digest.update(hashlib.sha256(entry.source.read_bytes()).digest())
        return digest.hexdigest()

    def write_context(self, out: IO[bytes]) -> None:
        """The build context: the Dockerfile and `rootfs/`, owned by root, timestamps zeroed."""
        with tarfile.open(fileobj=out, mode="w") as tar:
            _add_bytes(tar, "Dockerfile", self.dockerfile().encode(), 0o644)
            directories = {"tmp"}
            for entry in self.entries:
                parts = entry.path.strip("/").split("/")[:-1]
                directories.update("/".join(parts[: i + 1]) for i in range(len(parts)))
            for directory in sorted(directories):
                info = tarfile.TarInfo(f"rootfs/{directory}")
                info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
                tar.addfile(info)
            for entry in self.entries:
                _add_bytes(tar, f"rootfs{entry.path}", entry.source.read_bytes(), entry.mode)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def recipe(interpreter: Path | None = None) -> Recipe:
    described = describe_interpreter(interpreter or choose_interpreter())
    stdlib = stdlib_entries(described)
    extensions = [entry.source for entry in stdlib if entry.path.endswith(".so")]
    libraries = library_entries([described.executable, *extensions])
    executable = Entry(str(described.executable), described.executable, 0o755)
    entries = sorted([executable, *stdlib, *libraries, *app_entries()], key=lambda entry: entry.path)
    return Recipe(described, entries, sorted({entry.path.rsplit("/", 1)[0] for entry in libraries}))


def _labels(image: Any) -> dict[str, str]:
    return dict(image.labels or {})


def _current(client: docker.DockerClient, tag: str, labels: dict[str, str]) -> bool:
    try:
        image = client.images.get(tag)
    except ImageNotFound:
        return False
    return all(_labels(image).get(key) == value for key, value in labels.items())


def _build(client: docker.DockerClient, context: IO[bytes], tag: str, labels: dict[str, str]) -> None:
    context.seek(0)
    try:
        client.images.build(
            fileobj=context, custom_context=True, tag=tag, labels=labels, rm=True, forcerm=True, pull=False
        )
    except BuildError as exc:
        output = "".join(
            str(part.get("stream") or part.get("error") or "")
            for part in exc.build_log
            if isinstance(part, dict)
        )
        raise StandinImageError(f"building {tag} failed: {exc.msg}\n{output[-3000:]}") from exc
    except APIError as exc:
        raise StandinImageError(f"the Docker engine refused to build {tag}: {exc.explanation}") from exc


def ensure_standin_image(
    client: docker.DockerClient, routeros_version: str | None = None, *, interpreter: Path | None = None
) -> str:
    """The stand-in's tag for that RouterOS version (`latest`: the server's default, 7.8), building
    only what is missing or out of date."""
    made = recipe(interpreter)
    digest = made.digest()
    base = f"{REPOSITORY}:base-{digest[:12]}"
    if not _current(client, base, {HASH_LABEL: digest}):
        with tempfile.TemporaryFile() as context:
            made.write_context(context)
            _build(client, context, base, {HASH_LABEL: digest})
        _forget_older_bases(client, base)
    latest = f"{REPOSITORY}:latest"
    if not _current(client, latest, {HASH_LABEL: digest}):
        client.images.get(base).tag(REPOSITORY, "latest")
    if routeros_version is None:
        return latest
    tag = f"{REPOSITORY}:{routeros_version}"
    labels = {HASH_LABEL: digest, VERSION_LABEL: routeros_version}
    if not _current(client, tag, labels):
        command = ["-m", SERVER_MODULE, "--host", "0.0.0.0", "--port", str(API_PORT)]
        dockerfile = f"FROM {base}\nCMD {json.dumps([*command, '--version', routeros_version])}\n"
        with tempfile.TemporaryFile() as context:
            with tarfile.open(fileobj=context, mode="w") as tar:
                _add_bytes(tar, "Dockerfile", dockerfile.encode(), 0o644)
            _build(client, context, tag, labels)
    return tag


def _forget_older_bases(client: docker.DockerClient, current: str) -> None:
    """Old stand-ins only take disk space; one still used by a container stays until it is gone."""
    for image in client.images.list(name=REPOSITORY):
        for tag in image.tags:
            if tag.startswith(f"{REPOSITORY}:base-") and tag != current:
                with suppress(APIError):
                    client.images.remove(tag)
    with suppress(APIError):
        client.images.prune(filters={"dangling": True, "label": HASH_LABEL})
