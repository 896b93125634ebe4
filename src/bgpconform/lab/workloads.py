"""The lab's container runtime: a real nginx in a pod's namespace, serving what `nginx:latest` serves.

The walkthrough's pod runs image `nginx:latest` on container port 80, and its last step prints the page
that image serves from outside (`curl 172.198.1.246:8080`): the stock upstream index page. The lab has
no container runtime, so the "container" is the machine's nginx binary started inside the pod's network
namespace with a generated configuration. Every path nginx would write (pid, logs, temp directories) and
the document root live in the container's own directory, so nothing under /etc, /var or /run is touched,
and `stop()` removes that directory after keeping the access log for evidence.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path

from bgpconform.commands import run
from bgpconform.errors import CommandError, LabError
from bgpconform.lab.netns import ns_argv
from bgpconform.lab.network import PodAttachment
from bgpconform.lab.runs import process_start_ticks, terminate_pids
from bgpconform.lab.supervisor import Daemon

NGINX_BINARY = "nginx"
# Readiness probes name themselves, so evidence can tell them from the traffic a step sends.
PROBE_USER_AGENT = "bgpconform-readiness-probe"

# The index page upstream nginx ships (`html/index.html` in the nginx source tree, what the official
# image serves), byte for byte; the walkthrough's final curl prints exactly this.
STOCK_INDEX_HTML = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Every temp path nginx has compiled in gets an explicit one, or nginx creates it under /var/lib/nginx.
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class AccessLogEntry:
    """One request as nginx logged it: who connected (after any NAT on the way) and what they got."""

    time: str
    remote_addr: IPv4Address
    remote_port: int
    server_addr: IPv4Address
    server_port: int
    request: str
    status: int
    body_bytes: int
    user_agent: str
    remote_user: str = ""
    referer: str = ""

    @property
    def probe(self) -> bool:
        return self.user_agent == PROBE_USER_AGENT

    def combined(self) -> str:
        """The line nginx's default `combined` format would log, as the official image shows in its log.

        `$time_local` is in UTC, the image's zone, whatever the machine's. Values are escaped as nginx's
        default `escape` does (`"`, `\\` and bytes outside 0x20-0x7e as `\\xHH`); the JSON log cannot
        tell an empty value from a missing one, so both print as nginx prints a missing one: `-`.
        """
        moment = datetime.fromisoformat(self.time).astimezone(UTC)
        time_local = f"{moment:%d}/{_MONTHS[moment.month - 1]}/{moment:%Y:%H:%M:%S} +0000"
        user, request, referer, agent = (
            _escape_default(v) for v in (self.remote_user, self.request, self.referer, self.user_agent)
        )
        return (
            f'{self.remote_addr} - {user} [{time_local}] "{request}" {self.status} {self.body_bytes} '
            f'"{referer}" "{agent}"'
        )


def _escape_default(value: str) -> str:
    """nginx's default log escaping; `-` for an empty value."""
    if not value:
        return "-"
    raw = value.encode("utf-8", "surrogateescape")
    return "".join(
        chr(byte) if 0x20 <= byte <= 0x7E and byte not in b'"\\' else f"\\x{byte:02X}" for byte in raw
    )


def render_nginx_conf(directory: Path, port: int) -> str:
    """An nginx.conf with every path inside `directory`, in the foreground, with no name lookups.

    The server block is the one the official image ships (`default.conf`: root, index, listen), minus
    IPv6, which the lab does not build. Addresses are numeric and there is no `resolver` or upstream,
    so nginx resolves nothing at start. The access log is JSON so a step can read source addresses;
    it carries what `combined` prints too, so a pod's log can show the lines the real image shows.
    """
    temp = "\n".join(f"    {name}_temp_path {directory / 'tmp' / name};" for name in _TEMP_PATHS)
    log_format = (
        '{"time":"$time_iso8601","remote_addr":"$remote_addr","remote_port":"$remote_port",'
        '"server_addr":"$server_addr","server_port":"$server_port","request":"$request",'
        '"status":"$status","body_bytes":"$body_bytes_sent","user_agent":"$http_user_agent",'
        '"remote_user":"$remote_user","referer":"$http_referer"}'
    )
    return f"""# Generated by bgpconform for a lab pod; every path is inside {directory}.
daemon off;
master_process on;
worker_processes 1;
user root root;
pid {directory / "nginx.pid"};
lock_file {directory / "nginx.lock"};
error_log {directory / "error.log"} notice;

events {{
    worker_connections 256;
}}

http {{
    types {{
        text/html html htm;
    }}
    default_type application/octet-stream;
{temp}
    log_format bgpconform escape=json '{log_format}';
    access_log {directory / "access.log"} bgpconform;
    sendfile on;
    keepalive_timeout 65;

    server {{
        listen {port};
        server_name localhost;
        location / {{
            root {directory / "html"};
            index index.html index.htm;
        }}
    }}
}}
"""


def parse_access_log(lines: list[str]) -> list[AccessLogEntry]:
    """Parse the JSON access log lines that `render_nginx_conf` asks nginx to write."""
    entries = []
    for line in lines:
        data = json.loads(line)
        entries.append(
            AccessLogEntry(
                time=data["time"],
                remote_addr=IPv4Address(data["remote_addr"]),
                remote_port=int(data["remote_port"]),
                server_addr=IPv4Address(data["server_addr"]),
                server_port=int(data["server_port"]),
                request=data["request"],
                status=int(data["status"]),
                body_bytes=int(data["body_bytes"]),
                user_agent=data["user_agent"],
                remote_user=data.get("remote_user", ""),
                referer=data.get("referer", ""),
            )
        )
    return entries


class NginxContainer:
    """A pod's nginx container: started under `Daemon` so the lab reaps it, ready only once it answers."""

    def __init__(
        self, pod: PodAttachment, directory: Path, *, port: int = 80, index_html: str = STOCK_INDEX_HTML
    ) -> None:
        self.pod = pod
        self.directory = directory
        self.port = port
        self.index_html = index_html
        self.config_path = directory / "nginx.conf"
        self.access_log_path = directory / "access.log"
        self.error_log_path = directory / "error.log"
        # Kept when stop() removes the directory: evidence outlives the container.
        self.recorded_access_log: list[str] = []
        self._recorded_access_log_bytes = b""
        self._daemon: Daemon | None = None
        self._workers: list[tuple[int, int | None]] = []

    @property
    def url(self) -> str:
        return f"http://{self.pod.ip}:{self.port}/"

    @property
    def running(self) -> bool:
        return self._daemon is not None and self._daemon.running

    @property
    def pid(self) -> int | None:
        """The master process; `ip netns exec` execs nginx, so it is the daemon's own pid."""
        return self._daemon.pid if self._daemon else None

    @property
    def pids(self) -> list[int]:
        """Master and workers, as seen when the container became ready."""
        master = [self.pid] if self.pid is not None else []
        return master + [pid for pid, _ in self._workers]

    def start(self, timeout: float = 10.0) -> float:
        """Write the config and page, start nginx, and wait until a GET from inside the pod gets the page.

        Returns how long readiness took. A second call on a running container does nothing.
        """
        if self.running:
            return 0.0
        self.recorded_access_log = []
        self._recorded_access_log_bytes = b""
        html = self.directory / "html"
        html.mkdir(parents=True, exist_ok=True)
        for name in _TEMP_PATHS:
            (self.directory / "tmp" / name).mkdir(parents=True, exist_ok=True)
        (html / "index.html").write_text(self.index_html)
        self.config_path.write_text(render_nginx_conf(self.directory, self.port))
        argv = [
            NGINX_BINARY,
            "-p", str(self.directory),
            "-c", str(self.config_path),
            "-e", str(self.error_log_path),  # the start-up error log, before the config is read
        ]  # fmt: skip
        name = f"nginx in pod {self.pod.namespace}"
        self._daemon = Daemon(name, ns_argv(self.pod.namespace, argv), self.directory / "nginx.out")
        self._daemon.start()
        try:
            elapsed = self._daemon.wait_ready(
                self._answers, f"GET {self.url} from inside the pod returns the index page", timeout
            )
        except LabError as exc:
            # nginx reports start-up problems in its error log, which stop() removes: keep them here.
            errors = self._error_log_tail()
            self.stop()
            raise LabError(f"{exc}\nnginx error log:\n{errors}") from exc
        self._workers = self._find_workers()
        return elapsed

    def _answers(self) -> bool:
        try:
            return self.get(user_agent=PROBE_USER_AGENT) == self.index_html
        except CommandError:
            return False

    def get(self, path: str = "/", *, timeout: float = 2.0, user_agent: str | None = None) -> str:
        """An HTTP GET from inside the pod's own namespace, as a kubelet probe or a sidecar would make."""
        argv = ["curl", "-sS", "--fail", "--max-time", f"{timeout:g}"]
        if user_agent:
            argv += ["-A", user_agent]
        argv.append(f"http://{self.pod.ip}:{self.port}{path}")
        return run(ns_argv(self.pod.namespace, argv), timeout=timeout + 5).stdout

    def _find_workers(self) -> list[tuple[int, int | None]]:
        """Children of the master, with start ticks so a later stop never signals a reused pid."""
        master = self.pid
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == master:
                pid = int(entry.name)
                found.append((pid, process_start_ticks(pid)))
        return found

    def _error_log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.error_log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no error log>"

    def access_log_lines(self) -> list[str]:
        """Raw access log lines: from the file while it exists, else the copy kept at stop()."""
        try:
            return self.access_log_path.read_text().splitlines()
        except OSError:
            return list(self.recorded_access_log)

    def access_log_since(self, offset: int) -> tuple[list[str], int]:
        """Complete lines after byte `offset`, and the offset after them, for a follower of the log.

        A line nginx is still writing stays for the next call. Reads the file while it exists, else the
        copy kept at stop(), which holds the same bytes: a follower reads on across stop() without
        losing or repeating a line. Bytes that are not UTF-8 survive as surrogate escapes.
        """
        try:
            with self.access_log_path.open("rb") as file:
                file.seek(offset)
                data = file.read()
        except OSError:
            data = self._recorded_access_log_bytes[offset:]
        complete = data[: data.rfind(b"\n") + 1]
        lines = complete.decode("utf-8", "surrogateescape").split("\n")[:-1]
        return lines, offset + len(complete)

    def access_log(self) -> list[AccessLogEntry]:
        return parse_access_log(self.access_log_lines())

    def requests(self) -> list[AccessLogEntry]:
        """Logged requests other than readiness probes."""
        return [entry for entry in self.access_log() if not entry.probe]

    def stop(self) -> None:
        """Stop nginx (master, then any worker left behind), keep the access log, remove every file."""
        if self._daemon is not None:
            self._daemon.stop()
            self._daemon = None
        leftover = [
            pid for pid, ticks in self._workers if ticks is not None and process_start_ticks(pid) == ticks
        ]
        if leftover:
            terminate_pids(leftover)
        self._workers = []
        if self.access_log_path.exists():
            self.recorded_access_log = self.access_log_path.read_text().splitlines()
            self._recorded_access_log_bytes = self.access_log_path.read_bytes()
        shutil.rmtree(self.directory, ignore_errors=True)
