"""The RouterOS API wire format, server side: length-prefixed words, sentences ended by an empty word.

Decoding is incremental and bounded, because the server reads from anyone who connects: a length
prefix RouterOS reserves, a word longer than `max_word` or a sentence longer than `max_words` is a
`WireError` (the server answers `!fatal` and closes), never an allocation or a hang. Encoding is
librouteros's, the same code the adapter's client uses.
"""

from __future__ import annotations

from librouteros.protocol import encode_sentence

MAX_WORD = 64 * 1024
MAX_WORDS = 512
ENCODING = "utf-8"


class WireError(Exception):
    """The byte stream is not the API protocol; the connection cannot continue."""


def encode(words: list[str]) -> bytes:
    encoded: bytes = encode_sentence(*words, encoding=ENCODING)
    return encoded


def _length_size(first: int) -> int:
    """How many bytes the length takes, from its first byte (RouterOS API "API words")."""
    if first < 0x80:
        return 1
    if first < 0xC0:
        return 2
    if first < 0xE0:
        return 3
    if first < 0xF0:
        return 4
    if first == 0xF0:
        return 5
    raise WireError(f"reserved control byte 0x{first:02x} where a word length was expected")


def _length_value(prefix: bytes) -> int:
    if len(prefix) == 5:
        return int.from_bytes(prefix[1:], "big")
    masks = {1: 0x00, 2: 0x8000, 3: 0xC00000, 4: 0xE0000000}
    return int.from_bytes(prefix, "big") ^ masks[len(prefix)]


class SentenceDecoder:
    """Feed bytes as they arrive; get back the sentences they complete."""

    def __init__(self, max_word: int = MAX_WORD, max_words: int = MAX_WORDS) -> None:
        self.max_word = max_word
        self.max_words = max_words
        self._buffer = bytearray()
        self._words: list[str] = []

    @property
    def pending(self) -> bool:
        """Part of a sentence has arrived and the rest has not."""
        return bool(self._buffer or self._words)

    def feed(self, data: bytes) -> list[list[str]]:
        self._buffer += data
        sentences: list[list[str]] = []
        while self._buffer:
            size = _length_size(self._buffer[0])
            if len(self._buffer) < size:
                break
            length = _length_value(bytes(self._buffer[:size]))
            if length > self.max_word:
                raise WireError(f"word of {length} bytes is longer than the {self.max_word} allowed")
            if len(self._buffer) < size + length:
                break
            raw = bytes(self._buffer[size : size + length])
            del self._buffer[: size + length]
            if length == 0:
                if self._words:
                    sentences.append(self._words)
                self._words = []
                continue
            if len(self._words) >= self.max_words:
                raise WireError(f"sentence of more than {self.max_words} words")
            self._words.append(raw.decode(ENCODING, errors="replace"))
        return sentences
