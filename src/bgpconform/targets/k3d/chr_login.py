"""When a CHR container is ready: when its RouterOS API accepts a login, not when its port opens.

QEMU (and Docker's port proxy) accept TCP long before RouterOS has booted (FACTS.md), so only a real
login counts. A container that exits, or a router that refuses the credentials, ends the wait at once
with what was seen; otherwise the wait ends at its deadline naming what it expected and last saw,
with the container's state and last log lines.
"""

from __future__ import annotations

from bgpconform.routers.routeros import Endpoint, RouterApiError, RouterLoginError, RouterOsApi
from bgpconform.targets.k3d.containers import ContainerNotReady, StartedContainer
from bgpconform.targets.k3d.plan import API_PORT
from bgpconform.waiting import WaitTimeout, wait_for

ATTEMPT_TIMEOUT = 5.0  # one login attempt; a booting CHR may hold the connection without answering


def published_api(
    container: StartedContainer,
    username: str,
    password: str,
    *,
    credentials_hint: str = "the router credentials",
    port: int = API_PORT,
    attempt_timeout: float = ATTEMPT_TIMEOUT,
) -> RouterOsApi:
    """An API session (not yet logged in) to the container's API where it is published."""
    host, published = container.published(port)
    return RouterOsApi(
        Endpoint(host, published),
        username,
        password,
        timeout=attempt_timeout,
        credentials_hint=credentials_hint,
    )


def wait_for_api_login(container: StartedContainer, api: RouterOsApi, timeout: float) -> None:
    """Return once `api` logged in to the container's RouterOS; raise `ContainerNotReady` otherwise."""
    expected = f"a RouterOS API login at {api.endpoint} (container {container.name})"

    def attempt() -> bool:
        status = container.status()
        if status != "running":
            raise ContainerNotReady(
                f"container {container.name} is {status}, expected {expected}; its last log lines:\n"
                f"{container.log_tail()}"
            )
        try:
            api.login()
        except RouterLoginError as exc:  # the router is up and said no: waiting will not change that
            raise ContainerNotReady(f"expected {expected}; the router refused it: {exc}") from exc
        return True

    try:
        wait_for(
            attempt,
            bool,
            expected=expected,
            timeout=timeout,
            interval=0.2,
            max_interval=2.0,
            tolerate=(RouterApiError,),
        )
    except WaitTimeout as exc:
        raise ContainerNotReady(
            f"container {container.name} never accepted a RouterOS API login: {exc}\n"
            f"  container: {container.status()}; its last log lines:\n{container.log_tail()}"
        ) from exc
