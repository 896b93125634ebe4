"""The lab router's RouterOS API: a TCP server on loopback speaking the API wire protocol.

It runs in its own thread with its own asyncio loop, so one slow or hostile client never blocks
another or the harness. What it guarantees to any client: a malformed stream (bad length prefix,
oversized word or sentence, a sentence left half-sent for `stall_timeout`) ends that connection
with `!fatal`; an unknown command, a bad argument or a command before login is a `!trap`; nothing a
client sends raises out of the server. Every command is recorded (the login password hidden) for
the tests that check which commands the adapter sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from bgpconform.errors import LabError
from bgpconform.lab.routeros.menus import API, ARGUMENT, FAILURE, Trap
from bgpconform.lab.routeros.query import Query, QueryError, project
from bgpconform.lab.routeros.router import EmulatedRouter
from bgpconform.lab.routeros.wire import SentenceDecoder, WireError, encode

log = logging.getLogger(__name__)

LOGIN_FAILED = "invalid user name or password (6)"  # RouterOS 6.43+ wording
MAX_COMMANDS_BEFORE_LOGIN = 8
HIDDEN = "<hidden>"


@dataclass(frozen=True)
class ReceivedCommand:
    """One sentence a client sent and how the server answered (`!done`, `!trap: ...`, `!fatal: ...`)."""

    words: tuple[str, ...]
    answer: str

    @property
    def command(self) -> str:
        return self.words[0] if self.words else ""

    def attributes(self) -> dict[str, str]:
        pairs = (word[1:].partition("=") for word in self.words[1:] if word.startswith("="))
        return {name: value for name, _, value in pairs}


def _hide_secrets(words: list[str]) -> tuple[str, ...]:
    shown = []
    for word in words:
        name = word[1:].partition("=")[0] if word.startswith("=") else ""
        shown.append(f"={name}={HIDDEN}" if "password" in name.lower() else word)
    return tuple(shown)


class _Session:
    def __init__(self) -> None:
        self.user: str | None = None
        self.before_login = 0


class RouterOsApiServer:
    """Serves one `EmulatedRouter` to any number of API clients."""

    def __init__(
        self,
        router: EmulatedRouter,
        *,
        username: str,
        password: str,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        stall_timeout: float = 10.0,
        log_file: Path | None = None,
    ) -> None:
        self.router = router
        self._username = username
        self._password = password
        self.host = host
        self.port = port
        self.tls = tls
        self.stall_timeout = stall_timeout
        self.log_file = log_file
        self.commands: list[ReceivedCommand] = []
        self._commands_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> RouterOsApiServer:
        """Listen; after a `stop`, again on the port it had (a rebooted router keeps its address)."""
        self._started.clear()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, name="routeros-api", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise LabError(
                f"the lab's RouterOS API did not start listening on {self.host} within {timeout:g}s"
            )
        if self._start_error is not None:
            raise LabError(
                f"the lab's RouterOS API cannot listen on {self.host}:{self.port}: {self._start_error}"
            )
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._serve, self.host, self.port, ssl=self.tls)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            self._start_error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            # Closing each client's transport ends its read; the handlers then finish on their own.
            for writer in list(self._clients.values()):
                writer.transport.abort()
            if self._clients:
                await asyncio.wait(list(self._clients), timeout=timeout / 2)
            loop.stop()

        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(shutdown(), loop=loop))
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> RouterOsApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one client ------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients[task] = writer
        session = _Session()
        decoder = SentenceDecoder()
        try:
            while True:
                timeout = self.stall_timeout if decoder.pending else None
                try:
                    data = await asyncio.wait_for(reader.read(65536), timeout)
                except TimeoutError:
                    await self._fatal(writer, "sentence left unfinished", ())
                    return
                if not data:
                    return
                try:
                    sentences = decoder.feed(data)
                except WireError as exc:
                    await self._fatal(writer, str(exc), ())
                    return
                for words in sentences:
                    replies, close = await asyncio.to_thread(self._answer, session, words)
                    writer.write(b"".join(encode(reply) for reply in replies))
                    await writer.drain()
                    if close:
                        return
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            return
        finally:
            if task is not None:
                self._clients.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    async def _fatal(self, writer: asyncio.StreamWriter, reason: str, words: tuple[str, ...]) -> None:
        self._record(words, f"!fatal: {reason}")
        writer.write(encode(["!fatal", reason]))
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    def _record(self, words: tuple[str, ...], answer: str) -> None:
        entry = ReceivedCommand(words, answer)
        with self._commands_lock:
            self.commands.append(entry)
        if self.log_file is not None:
            with self.log_file.open("a", encoding="utf-8") as out:
                out.write(" ".join(words) + f"  -> {answer}\n")

    def _answer(self, session: _Session, words: list[str]) -> tuple[list[list[str]], bool]:
        """The reply sentences for one command, and whether the connection ends after them."""
        shown = _hide_secrets(words)
        command = words[0]
        attributes: dict[str, str] = {}
        queries: list[str] = []
        tag: str | None = None
        bad: str | None = None
        for word in words[1:]:
            if word.startswith("="):
                name, _, value = word[1:].partition("=")
                if not name:
                    bad = bad or word
                attributes[name] = value
            elif word.startswith(".tag="):
                tag = word[len(".tag=") :]
            elif word.startswith("?"):
                queries.append(word)
            else:
                bad = bad or word

        def sentence(*reply: str) -> list[str]:
            return [*reply, f".tag={tag}"] if tag is not None else list(reply)

        def trap(message: str, category: str) -> tuple[list[list[str]], bool]:
            self._record(shown, f"!trap: {message}")
            return [
                sentence("!trap", f"=category={category}", f"=message={message}"),
                sentence("!done"),
            ], False

        if command == "/quit":
            self._record(shown, "!fatal: session terminated on request")
            return [["!fatal", "session terminated on request"]], True
        if command == "/login":
            # Bytes, not text: compare_digest refuses non-ASCII str, and a client may send any name.
            name_ok = hmac.compare_digest(attributes.get("name", "").encode(), self._username.encode())
            password_ok = hmac.compare_digest(
                attributes.get("password", "").encode(), self._password.encode()
            )
            if name_ok and password_ok:
                session.user = self._username
                self._record(shown, "!done")
                return [sentence("!done")], False
            return trap(LOGIN_FAILED, API)
        if session.user is None:
            session.before_login += 1
            if session.before_login > MAX_COMMANDS_BEFORE_LOGIN:
                self._record(shown, "!fatal: too many commands before login")
                return [["!fatal", "too many commands before login"]], True
            return trap("not logged in", API)
        if bad is not None:
            return trap(f"unknown parameter {bad[:64]!r}", ARGUMENT)
        if command == "/cancel":
            self._record(shown, "!done")
            return [sentence("!done")], False
        try:
            query = Query.parse(queries)
            answer = self.router.run(command, attributes, queries)
        except QueryError as exc:
            return trap(str(exc), ARGUMENT)
        except Trap as exc:
            return trap(exc.message, exc.category)
        except Exception as exc:
            log.exception("the lab's RouterOS API failed on %s", command)
            return trap(f"failure: internal error: {type(exc).__name__}", FAILURE)
        replies: list[list[str]] = []
        if answer.printed:
            proplist = attributes[".proplist"].split(",") if ".proplist" in attributes else None
            rows = [project(row, proplist) for row in answer.rows if query.matches(row)]
            if "count-only" in attributes:
                self._record(shown, "!done")
                return [sentence("!done", f"=ret={len(rows)}")], False
            replies = [sentence("!re", *(f"={key}={value}" for key, value in row.items())) for row in rows]
            if not rows and self.router.dialect.sends_empty:
                replies.append(sentence("!empty"))
        done = sentence("!done", f"=ret={answer.ret}") if answer.ret is not None else sentence("!done")
        self._record(shown, "!done")
        return [*replies, done], False
