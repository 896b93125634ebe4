"""A raw RouterOS API client for tests: reads reply words with the length encoding, to see what
librouteros hides (`!empty`, `.tag`, `!fatal` and the close after it)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from librouteros.protocol import decode_length, determine_length

from bgpconform.lab.routeros.wire import encode

TIMEOUT = 5.0  # per socket operation: a reply that takes longer is a server that stopped answering
LOGIN = ["/login", "=name=admin", "=password="]


class Replies:
    """Reads reply sentences word by word with the length encoding; EOF (or a reset) is None."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _take(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:  # the server closed with our bytes unread
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def word(self) -> str | None:
        first = self._take(1)
        if first is None:
            return None
        rest = self._take(determine_length(first))
        assert rest is not None, "the server closed inside a length prefix"
        body = self._take(decode_length(first + rest))
        assert body is not None, "the server closed inside a word"
        return body.decode("utf-8")

    def sentence(self) -> list[str] | None:
        words: list[str] = []
        while (word := self.word()) != "":
            if word is None:
                assert not words, f"the server closed in the middle of the reply {words}"
                return None
            words.append(word)
        return words

    def until_done(self) -> list[list[str]]:
        """One command's replies, through its `!done` (or a `!fatal`)."""
        replies: list[list[str]] = []
        while True:
            sentence = self.sentence()
            assert sentence is not None, f"the server closed after {replies} without !done or !fatal"
            replies.append(sentence)
            if sentence[0] in {"!done", "!fatal"}:
                return replies


@dataclass
class Connection:
    sock: socket.socket
    replies: Replies

    def send(self, *sentences: list[str]) -> None:
        self.sock.sendall(b"".join(encode(sentence) for sentence in sentences))

    def command(self, *words: str) -> list[list[str]]:
        self.send(list(words))
        return self.replies.until_done()

    def assert_closed(self) -> None:
        assert self.replies.sentence() is None, "the server kept the connection open"


def connect(port: int) -> Connection:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # chunks leave as they are cut
    return Connection(sock, Replies(sock))


def attributes(sentence: list[str]) -> dict[str, str]:
    return {name: value for name, _, value in (word[1:].partition("=") for word in sentence[1:])}


def fatal_reason(sentence: list[str]) -> str:
    assert sentence[0] == "!fatal", sentence
    return sentence[1]
