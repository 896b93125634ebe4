"""Each way the RouterOS API can fail gives one clear message naming the router, the command and the
fix, and never the password: wrong login, API service off, a router that accepts TCP but never
answers (CHR booting under QEMU), a dropped session, an untrusted TLS certificate."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgpconform.errors import ConfigError
from bgpconform.lab.lab import Lab
from bgpconform.lab.routeros.server import RouterOsApiServer
from bgpconform.routers.routeros import (
    Endpoint,
    RouterApiError,
    RouterLoginError,
    RouterOsApi,
    RouterOsRouter,
)
from bgpconform.topology import load_topology
from bgpconform.waiting import WaitTimeout
from tests.routeros.conftest import ROUTEROS_TOPOLOGY, LabFactory

pytestmark = pytest.mark.lab

WRONG_PASSWORD = "not-the-Pa55word-42"


def _endpoint(lab: Lab, **options: object) -> Endpoint:
    assert lab.routeros is not None
    return Endpoint("127.0.0.1", lab.routeros.server.port, **options)  # type: ignore[arg-type]


def test_wrong_credentials_say_so_name_the_variables_and_hide_the_password(lab_for: LabFactory) -> None:
    lab = lab_for("7.8")
    api = RouterOsApi(_endpoint(lab), "admin", WRONG_PASSWORD, credentials_hint="$USER_VAR and $PASS_VAR")
    with pytest.raises(RouterLoginError) as caught:
        api.login()
    message = str(caught.value)
    assert "refused the login of user 'admin': invalid user name or password (6)" in message
    assert "$USER_VAR and $PASS_VAR" in message
    assert WRONG_PASSWORD not in message
    assert lab.routeros is not None
    recorded = " ".join(" ".join(c.words) for c in lab.routeros.server.commands)
    assert WRONG_PASSWORD not in recorded
    assert "=password=<hidden>" in recorded
    log = (lab.run.directory / "routeros" / "routeros-api.log").read_text()
    assert WRONG_PASSWORD not in log
    assert "=password=<hidden>" in log


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_closed_api_port_names_the_service_to_enable() -> None:
    api = RouterOsApi(Endpoint("127.0.0.1", _free_port()), "admin", "")
    with pytest.raises(RouterApiError, match=r"refused the connection .*`/ip/service/enable api`"):
        api.login()
    tls = RouterOsApi(Endpoint("127.0.0.1", _free_port(), tls=True), "admin", "")
    with pytest.raises(RouterApiError, match="/ip/service/enable api-ssl"):
        tls.login()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts TCP and never answers, like CHR's QEMU before RouterOS has booted (FACTS.md)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def test_a_router_that_never_answers_times_out_with_the_login_named(silent_port: int) -> None:
    api = RouterOsApi(Endpoint("127.0.0.1", silent_port), "admin", "", timeout=0.3)
    with pytest.raises(RouterApiError, match=r"did not answer the login within 0.3s") as caught:
        api.login()
    assert caught.value.command == "/login (user 'admin')"


def test_waiting_for_the_router_needs_a_login_not_an_open_port(silent_port: int) -> None:
    api = RouterOsApi(Endpoint("127.0.0.1", silent_port), "admin", "", timeout=0.2)
    router = RouterOsRouter(api, name="chr", asn=64512, router_id="192.168.1.1")
    with pytest.raises(WaitTimeout) as caught:
        router.wait_for_login(timeout=1.0)
    assert caught.value.expected == f"a RouterOS API login at 127.0.0.1:{silent_port}"
    assert "did not answer the login" in (caught.value.last_error or "")


def test_a_session_the_router_ends_is_reported_and_the_next_call_logs_in_again(lab_for: LabFactory) -> None:
    lab = lab_for("7.8")
    api = RouterOsApi(_endpoint(lab), "admin", "")
    with pytest.raises(
        RouterApiError, match="ended the session during `/quit`: session terminated on request"
    ):
        api.call("/quit")
    assert api.print("/system/identity") == [{"name": "mikrotik"}]


def test_lab_credentials_come_from_the_topologys_variables_or_a_fresh_chr() -> None:
    topology = load_topology(ROUTEROS_TOPOLOGY)
    assert topology.router.fresh_login({}) == ("admin", "")
    both = {"BGPCONFORM_ROUTER_USER": "ops", "BGPCONFORM_ROUTER_PASSWORD": "s3cret-value"}
    assert topology.router.fresh_login(both) == ("ops", "s3cret-value")
    with pytest.raises(
        ConfigError, match="BGPCONFORM_ROUTER_USER is set but BGPCONFORM_ROUTER_PASSWORD is not"
    ):
        topology.router.fresh_login({"BGPCONFORM_ROUTER_USER": "ops"})


# -- TLS (8729) --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, as a CHR's api-ssl service would present."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "router.crt", directory / "router.key"
    argv = [
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=router", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def tls_server(lab_for: LabFactory, certificate: tuple[Path, Path]) -> Iterator[RouterOsApiServer]:
    lab = lab_for("7.8")
    assert lab.routeros is not None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    with RouterOsApiServer(lab.routeros.emulated, username="admin", password="", tls=context) as server:
        yield server


def test_tls_with_a_self_signed_certificate_is_refused_unless_trusted(
    tls_server: RouterOsApiServer, certificate: tuple[Path, Path]
) -> None:
    endpoint = Endpoint("127.0.0.1", tls_server.port, tls=True)
    with pytest.raises(RouterApiError, match=r"certificate is not trusted .*verify_tls: false"):
        RouterOsApi(endpoint, "admin", "").login()
    trusted = RouterOsApi(
        Endpoint("127.0.0.1", tls_server.port, tls=True, ca_file=str(certificate[0])), "admin", ""
    )
    assert trusted.print("/system/identity") == [{"name": "mikrotik"}]
    unverified = RouterOsApi(Endpoint("127.0.0.1", tls_server.port, tls=True, verify_tls=False), "admin", "")
    assert unverified.print("/system/resource", proplist=["version"]) == [{"version": "7.8 (stable)"}]
