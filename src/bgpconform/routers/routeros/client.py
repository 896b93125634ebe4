"""One RouterOS API session over librouteros, with one clear message per way it can fail.

librouteros speaks the wire protocol (length-prefixed words, `!re`/`!done`/`!trap`/`!fatal`, plain
login since 6.43; FACTS.md); this module adds what a harness needs around it: TLS with or without
certificate checks, a reconnect when the router dropped the session, and errors that name the router,
the command that failed and the fix. The password never appears in a message or a command record.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import librouteros
from librouteros.exceptions import ConnectionClosed, FatalError, LibRouterosError, MultiTrapError, TrapError

from bgpconform.errors import HarnessError

Row = dict[str, str]


@dataclass(frozen=True)
class Endpoint:
    """Where the API listens: 8728 plain, 8729 TLS (`/ip/service` api and api-ssl)."""

    host: str
    port: int = 8728
    tls: bool = False
    verify_tls: bool = True
    ca_file: str | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}" + (" (TLS)" if self.tls else "")


class RouterApiError(HarnessError):
    """The router's API could not be used; `command` is what was being done."""

    def __init__(self, message: str, command: str) -> None:
        super().__init__(message)
        self.command = command


class RouterLoginError(RouterApiError):
    """The router answered and refused the credentials: retrying will not help."""


class _TextApi(librouteros.api.Api):  # type: ignore[misc]  # librouteros's Api is untyped for mypy
    """librouteros casts reply values to bool and int; the harness keeps RouterOS's own text
    (`multihop=yes`, `established=true`), so evidence reads as the router printed it."""

    def readSentence(self) -> tuple[str, dict[str, Any]]:
        reply_word, words = self.protocol.readSentence()
        pairs = (word.split("=", 2) for word in words if word.startswith("="))
        return reply_word, {parts[1]: parts[2] if len(parts) > 2 else "" for parts in pairs}


class RouterOsApi:
    """A logged-in API session; reconnects once when the router closed it between calls."""

    def __init__(
        self,
        endpoint: Endpoint,
        username: str,
        password: str,
        *,
        timeout: float = 10.0,
        credentials_hint: str = "the router credentials",
    ) -> None:
        self.endpoint = endpoint
        self._username = username
        self._password = password
        self.timeout = timeout
        self.credentials_hint = credentials_hint
        self._api: librouteros.api.Api | None = None

    # -- session ---------------------------------------------------------------------------------
    def _ssl_wrapper(self) -> Callable[[socket.socket], socket.socket] | None:
        if not self.endpoint.tls:
            return None
        context = ssl.create_default_context(cafile=self.endpoint.ca_file)
        if not self.endpoint.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return lambda sock: context.wrap_socket(sock, server_hostname=self.endpoint.host)

    def login(self) -> None:
        """Open the session; a login only counts when the router accepted the credentials."""
        self.close()
        where = f"RouterOS API at {self.endpoint}"
        action = f"/login (user {self._username!r})"
        try:
            self._api = librouteros.connect(
                self.endpoint.host,
                self._username,
                self._password,
                port=self.endpoint.port,
                timeout=self.timeout,
                ssl_wrapper=self._ssl_wrapper(),
                login_method=librouteros.login.plain,
                subclass=_TextApi,
            )
        except ConnectionRefusedError as exc:
            raise RouterApiError(
                f"{where} refused the connection ({exc.strerror}): the API service is off or listens "
                f"elsewhere; fix: enable it on the router (`/ip/service/enable {self._service}`) or set "
                "router.management.port",
                action,
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise RouterApiError(
                f"{where}: the router's certificate is not trusted ({exc.verify_message}); fix: install "
                "its CA on this machine, or set router.management.verify_tls: false for a self-signed one",
                action,
            ) from exc
        except TimeoutError as exc:
            raise RouterApiError(
                f"{where} did not answer the login within {self.timeout:g}s; fix: check "
                "router.management.host and that nothing filters the port",
                action,
            ) from exc
        except TrapError as exc:
            raise RouterLoginError(
                f"{where} refused the login of user {self._username!r}: {exc.message}; fix: check "
                f"{self.credentials_hint} and that the user's group has the 'api' policy",
                action,
            ) from exc
        except (FatalError, ConnectionClosed) as exc:
            raise RouterApiError(f"{where} closed the session during login: {exc}", action) from exc
        except (OSError, LibRouterosError) as exc:
            raise RouterApiError(f"{where} cannot be reached: {exc}", action) from exc

    @property
    def _service(self) -> str:
        return "api-ssl" if self.endpoint.tls else "api"

    def close(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            with contextlib.suppress(OSError, LibRouterosError):
                api.close()

    # -- commands --------------------------------------------------------------------------------
    def call(self, command: str, words: Iterable[str] = (), *, shown: str | None = None) -> list[Row]:
        """Run one API command; `shown` is how the command reads in an error (default: the words)."""
        words = list(words)
        shown = shown or " ".join([command, *words])
        for attempt in (1, 2):
            if self._api is None:
                self.login()
            assert self._api is not None
            try:
                rows = list(self._api.rawCmd(command, *words))
            except (ConnectionClosed, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if attempt == 2:
                    raise RouterApiError(
                        f"RouterOS API at {self.endpoint} closed the connection during `{shown}`: {exc}",
                        shown,
                    ) from exc
                continue
            except MultiTrapError as exc:
                messages = "; ".join(trap.message for trap in exc.traps)
                raise RouterApiError(f"RouterOS refused `{shown}`: {messages}", shown) from exc
            except TrapError as exc:
                raise RouterApiError(f"RouterOS refused `{shown}`: {exc.message}", shown) from exc
            except FatalError as exc:
                self.close()
                raise RouterApiError(
                    f"RouterOS API at {self.endpoint} ended the session during `{shown}`: {exc}", shown
                ) from exc
            except TimeoutError as exc:
                self.close()
                raise RouterApiError(
                    f"RouterOS API at {self.endpoint} did not answer `{shown}` within {self.timeout:g}s",
                    shown,
                ) from exc
            return [{key: str(value) for key, value in row.items()} for row in rows]
        raise AssertionError("unreachable")

    def call_dropping_session(self, command: str) -> None:
        """A command after which the router drops the session (`/system/reboot`): sent once, never
        retried, its answer or the closed connection both taken as done; the session is closed."""
        if self._api is None:
            self.login()
        assert self._api is not None
        try:
            list(self._api.rawCmd(command))
        except (ConnectionClosed, FatalError, OSError):
            pass
        except TrapError as exc:
            raise RouterApiError(f"RouterOS refused `{command}`: {exc.message}", command) from exc
        finally:
            self.close()

    def print(self, path: str, *query: str, proplist: Iterable[str] = ()) -> list[Row]:
        words = [f"=.proplist={','.join(proplist)}"] if proplist else []
        return self.call(f"{path}/print", [*words, *query])
