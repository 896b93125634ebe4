"""The lab RouterOS API's wire codec: length prefixes of every size, chunking, and the bounds that keep a
hostile client from making the server allocate or hang."""

from __future__ import annotations

import pytest

from bgpconform.lab.routeros.wire import MAX_WORD, MAX_WORDS, SentenceDecoder, WireError, encode

# (word length, bytes its length prefix takes): both sides of every boundary of the encoding.
LENGTHS = [
    (1, 1),
    (0x7F, 1),
    (0x80, 2),
    (0x3FFF, 2),
    (0x4000, 3),
    (0x1FFFFF, 3),
    (0x200000, 4),
]


def _roomy() -> SentenceDecoder:
    """A decoder that accepts the 2 MiB words the four-byte prefixes need."""
    return SentenceDecoder(max_word=0x200000)


@pytest.mark.parametrize(("length", "prefix"), LENGTHS)
def test_word_round_trips_at_each_length_boundary(length: int, prefix: int) -> None:
    word = "x" * length
    data = encode([word, "=b=c"])
    # The prefix size is librouteros's; checking it makes sure each case crosses the boundary it names.
    assert len(data) == prefix + length + 1 + len("=b=c") + 1
    decoder = _roomy()
    assert decoder.feed(data) == [[word, "=b=c"]]
    assert not decoder.pending


def test_five_byte_prefix_is_read() -> None:
    """0xF0 announces a four-byte length; librouteros never writes it but RouterOS may."""
    data = b"\xf0" + (5).to_bytes(4, "big") + b"/quit" + b"\x00"
    assert SentenceDecoder().feed(data) == [["/quit"]]


@pytest.mark.parametrize("length", [1, 0x7F, 0x80, 0x3FFF, 0x4000])
def test_byte_at_a_time_gives_the_same_sentences(length: int) -> None:
    """TCP may split anywhere, including inside a length prefix."""
    sentences = [["/login", "=name=admin", "=password="], ["/x/print", "y" * length], ["/quit"]]
    data = b"".join(encode(sentence) for sentence in sentences)
    decoder = SentenceDecoder()
    got: list[list[str]] = []
    for index in range(len(data)):
        got += decoder.feed(data[index : index + 1])
    assert got == sentences
    assert not decoder.pending


def test_several_sentences_in_one_chunk_come_out_in_order() -> None:
    sentences = [["/a"], ["/b", "=c=d", "?e"], ["/f", ".tag=7"]]
    decoder = SentenceDecoder()
    assert decoder.feed(b"".join(encode(sentence) for sentence in sentences)) == sentences


def test_a_chunk_ending_mid_sentence_keeps_the_rest_for_later() -> None:
    first, second = encode(["/a", "=b=c"]), encode(["/d"])
    data = first + second
    decoder = SentenceDecoder()
    assert decoder.feed(data[: len(first) + 2]) == [["/a", "=b=c"]]
    assert decoder.pending
    assert decoder.feed(data[len(first) + 2 :]) == [["/d"]]
    assert not decoder.pending


def test_empty_sentence_yields_nothing() -> None:
    """A lone zero byte ends a sentence of no words: not a command, so nothing to answer."""
    decoder = SentenceDecoder()
    assert decoder.feed(b"\x00") == []
    assert decoder.feed(b"\x00\x00" + encode(["/a"])) == [["/a"]]
    assert not decoder.pending


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert SentenceDecoder().feed(b"\x02\xff\xfe\x00") == [["\ufffd\ufffd"]]


@pytest.mark.parametrize("control", [0xF1, 0xF8, 0xFF])
def test_reserved_control_byte_raises(control: int) -> None:
    with pytest.raises(WireError, match=f"0x{control:02x}"):
        SentenceDecoder().feed(bytes([control]))


def test_reserved_control_byte_after_a_word_raises() -> None:
    decoder = SentenceDecoder()
    with pytest.raises(WireError):
        decoder.feed(encode(["/a"])[:-1] + b"\xf8")


@pytest.mark.parametrize(
    ("max_word", "prefix"),
    [
        (0x80, (0x8000 | 0x81).to_bytes(2, "big")),
        (MAX_WORD, (0xC00000 | (MAX_WORD + 1)).to_bytes(3, "big")),
        (MAX_WORD, (0xE0000000 | (1 << 27)).to_bytes(4, "big")),
        (MAX_WORD, b"\xf0" + (1 << 30).to_bytes(4, "big")),
    ],
    ids=["two-byte", "three-byte", "four-byte", "five-byte"],
)
def test_oversized_word_raises_on_its_prefix_alone(max_word: int, prefix: bytes) -> None:
    """The declared length is refused before a byte of the body arrives, so nothing is buffered."""
    with pytest.raises(WireError, match="longer than"):
        SentenceDecoder(max_word=max_word).feed(prefix)


def test_oversized_word_is_judged_against_max_word() -> None:
    decoder = SentenceDecoder(max_word=10)
    assert decoder.feed(encode(["x" * 10])) == [["x" * 10]]
    with pytest.raises(WireError, match="11 bytes"):
        decoder.feed(b"\x0b")


def test_split_oversized_prefix_raises_once_complete() -> None:
    prefix = (0xC00000 | (MAX_WORD + 1)).to_bytes(3, "big")
    decoder = SentenceDecoder()
    assert decoder.feed(prefix[:2]) == []
    assert decoder.pending
    with pytest.raises(WireError):
        decoder.feed(prefix[2:])


def test_too_many_words_raise() -> None:
    decoder = SentenceDecoder(max_words=3)
    assert decoder.feed(encode(["a", "b", "c"])) == [["a", "b", "c"]]
    with pytest.raises(WireError, match="more than 3 words"):
        decoder.feed(encode(["a", "b", "c", "d"]))


def test_default_word_limit_applies() -> None:
    decoder = SentenceDecoder()
    assert decoder.feed(encode(["w"] * MAX_WORDS)) == [["w"] * MAX_WORDS]
    with pytest.raises(WireError):
        decoder.feed(encode(["w"] * (MAX_WORDS + 1)))


def test_pending_tracks_a_partial_sentence() -> None:
    data = encode(["/a", "=b=c"])
    decoder = SentenceDecoder()
    assert not decoder.pending
    decoder.feed(data[:1])  # half a word's length and body
    assert decoder.pending
    decoder.feed(data[1:3])  # the first word complete, the sentence not
    assert decoder.pending
    assert decoder.feed(data[3:]) == [["/a", "=b=c"]]
    assert not decoder.pending
