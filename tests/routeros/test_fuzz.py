"""Fuzzing the lab RouterOS API: the decoder on arbitrary bytes, and a real server on arbitrary streams.

The server reads from anyone who connects to it, so its contract is about hostile input: every complete
sentence gets an answer ending in `!done`, a malformed stream gets `!fatal` and a close, and whatever a
client sends, the next client can still log in and print.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import librouteros
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgpconform.lab.routeros.lab_router import LabRouterOs
from bgpconform.lab.routeros.server import RouterOsApiServer
from bgpconform.lab.routeros.wire import SentenceDecoder, WireError, encode
from bgpconform.topology import load_topology
from bgpconform.waiting import wait_for
from tests.routeros.conftest import ROUTEROS_TOPOLOGY, routeros_lab
from tests.routeros.raw_client import LOGIN, TIMEOUT, attributes, connect, fatal_reason

REPLY_TYPES = {"!re", "!done", "!trap", "!fatal", "!empty"}

PURE = settings(max_examples=300, deadline=None)
SERVER = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- strategies ----------------------------------------------------------------------------------


@st.composite
def cut(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """`data` split at arbitrary points, as TCP may deliver it."""
    points = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    edges = [0, *points, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(edges)]


WORD_TEXT = st.text(min_size=1, max_size=24)
SENTENCES = st.lists(st.lists(WORD_TEXT, min_size=1, max_size=8), max_size=6)
ENCODED_SENTENCE = st.lists(WORD_TEXT, min_size=1, max_size=6).map(encode)
# Bytes that are mostly the protocol with garbage in between, so the fuzz gets past the first byte.
STREAMS = st.one_of(
    st.binary(max_size=512),
    st.lists(st.one_of(ENCODED_SENTENCE, st.binary(max_size=16)), max_size=8).map(b"".join),
)


@st.composite
def chunked_stream(draw: st.DrawFn) -> list[bytes]:
    return draw(cut(draw(STREAMS)))


@st.composite
def chunked_sentences(draw: st.DrawFn) -> tuple[list[list[str]], list[bytes]]:
    sentences = draw(SENTENCES)
    return sentences, draw(cut(b"".join(encode(sentence) for sentence in sentences)))


# -- the decoder on its own ----------------------------------------------------------------------


def feed_all(decoder: SentenceDecoder, chunks: list[bytes]) -> list[list[str]]:
    sentences: list[list[str]] = []
    for chunk in chunks:
        sentences += decoder.feed(chunk)
    return sentences


@PURE
@given(chunked_stream())
def test_decoder_returns_sentences_or_raises_wire_error(chunks: list[bytes]) -> None:
    """Arbitrary bytes never raise anything but WireError, and chunking never changes the sentences."""
    decoder = SentenceDecoder()
    try:
        chunked = feed_all(decoder, chunks)
    except WireError:
        chunked = None
    for sentence in chunked or []:
        assert isinstance(sentence, list)
        assert sentence, "an empty sentence is not a command"
        assert all(isinstance(word, str) and word for word in sentence)
    try:
        whole = SentenceDecoder().feed(b"".join(chunks))
    except WireError:
        whole = None
    assert whole == chunked


@PURE
@given(chunked_sentences())
def test_valid_sentences_round_trip_in_any_chunking(case: tuple[list[list[str]], list[bytes]]) -> None:
    sentences, chunks = case
    decoder = SentenceDecoder()
    assert feed_all(decoder, chunks) == sentences
    assert not decoder.pending


# -- the lab -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def routeros() -> Iterator[LabRouterOs]:
    """The lab on the RouterOS topology, logging in as a fresh CHR does (admin, empty password)."""
    with routeros_lab(load_topology(ROUTEROS_TOPOLOGY)) as lab:
        assert lab.routeros is not None
        yield lab.routeros


@pytest.fixture(scope="module")
def api_server(routeros: LabRouterOs) -> RouterOsApiServer:
    return routeros.server


def open_clients(server: RouterOsApiServer) -> int:
    """Connections the server is still serving (its handler tasks), to see none is left hanging."""
    return len(server._clients)


def assert_still_serves(server: RouterOsApiServer, baseline: int) -> None:
    """A fresh librouteros client logs in and prints, and no fuzzing connection outlives its socket."""
    api = librouteros.connect("127.0.0.1", "admin", "", port=server.port, timeout=TIMEOUT)
    try:
        rows = list(api.path("system", "resource"))
    finally:
        api.close()
    assert len(rows) == 1
    assert "version" in rows[0]
    wait_for(
        lambda: open_clients(server),
        lambda count: count <= baseline,
        expected=f"at most {baseline} client connections open on the lab's RouterOS API",
        timeout=TIMEOUT,
    )


def framing(data: bytes) -> tuple[list[list[str]], bool]:
    """The sentences the server's own framing finds in `data`, and whether the stream goes bad after
    them. Fed a byte at a time: the server may get the bytes before the bad part in an earlier read and
    answer them, so they count as owed."""
    decoder = SentenceDecoder()
    sentences: list[list[str]] = []
    try:
        for index in range(len(data)):
            sentences += decoder.feed(data[index : index + 1])
    except WireError:
        return sentences, True
    return sentences, False


def exchange(port: int, chunks: list[bytes], complete: int, malformed: bool) -> None:
    """Send `chunks` and read what the contract promises: an answer through `!done` for each of the
    `complete` sentences, or `!fatal` and the close. A close without `!fatal` is the handler crashing."""
    connection = connect(port)
    with connection.sock:
        try:
            for chunk in chunks:
                connection.sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):  # it may !fatal and close before the end
            pass
        answered = 0
        while malformed or answered < complete:
            sentence = connection.replies.sentence()
            assert sentence is not None, (
                f"the server closed the connection without !fatal after answering {answered} of "
                f"{complete} sentences"
            )
            assert sentence, "an empty reply sentence"
            assert sentence[0] in REPLY_TYPES, sentence
            if sentence[0] == "!fatal":
                assert len(sentence) == 2, sentence
                connection.assert_closed()
                return
            if sentence[0] == "!done":
                answered += 1
                assert answered <= complete, "more answers than sentences sent"


@pytest.mark.lab
@SERVER
@given(chunks=chunked_stream())
def test_server_survives_arbitrary_bytes(api_server: RouterOsApiServer, chunks: list[bytes]) -> None:
    """Garbage, and protocol with garbage in it, on one connection never takes the server down."""
    sentences, malformed = framing(b"".join(chunks))
    baseline = open_clients(api_server)
    exchange(api_server.port, chunks, len(sentences), malformed)
    assert_still_serves(api_server, baseline)


# Structurally valid sentences: known and unknown commands with odd arguments.
ODD = st.text(max_size=12)
NAMES = st.one_of(
    st.sampled_from(["", "name", "password", ".id", ".proplist", "count-only", "detail", "as", "a=b"]),
    ODD,
)
COMMANDS = st.one_of(
    st.sampled_from(
        [
            "/system/resource/print",
            "/system/identity/print",
            "/routing/bgp/connection/print",
            "/routing/bgp/session/print",
            "/routing/route/print",
            "/routing/bgp/connection/set",
            "/routing/bgp/connection/add",
            "/routing",
            "/cancel",
            "/login",
            "/",
        ]
    ),
    st.text(min_size=1, max_size=20),
    st.text(max_size=12).map(lambda text: "/" + text),
)
# Stack operations and digits, Unicode's included: `?#` takes anything `str.isdigit` accepts.
UNICODE_DIGITS = "".join(char for char in map(chr, range(0x110000)) if char.isdigit())
OPERATIONS = st.one_of(st.sampled_from("|&!.0123456789x"), st.sampled_from(UNICODE_DIGITS))
ATTRIBUTE = st.builds(lambda name, value: f"={name}={value}", NAMES, ODD)
QUERY = st.one_of(
    st.builds(
        lambda op, name, value: f"?{op}{name}={value}", st.sampled_from(["", "=", "<", ">"]), NAMES, ODD
    ),
    st.builds(lambda sign, name: f"?{sign}{name}", st.sampled_from(["", "-"]), NAMES),
    st.text(alphabet=OPERATIONS, max_size=6).map(lambda ops: "?#" + ops),
    ODD.map(lambda text: "?" + text),
)
LONG = st.integers(60_000, 70 * 1024).map(lambda size: "=comment=" + "x" * size)
WORD = st.one_of(
    ATTRIBUTE,
    QUERY,
    ODD.map(lambda text: ".tag=" + text),
    st.text(min_size=1, max_size=12),
    LONG,
)
PRINTS = st.sampled_from(["/system/resource/print", "/system/identity/print", "/routing/route/print"])
PRINT_WORDS = st.one_of(
    QUERY,
    st.sampled_from(["=.proplist=version,name", "=.proplist=", "=count-only=", "=detail="]),
    ODD.map(lambda text: ".tag=" + text),
)
SENTENCE = st.one_of(
    st.builds(lambda command, words: [command, *words], COMMANDS, st.lists(WORD, max_size=6)),
    # Prints with only words a print takes, so the queries are evaluated on rows rather than refused.
    st.builds(lambda command, words: [command, *words], PRINTS, st.lists(PRINT_WORDS, max_size=6)),
)


@st.composite
def session(draw: st.DrawFn) -> list[list[str]]:
    """Optionally a login (right, or wrong first), then a few sentences."""
    login = draw(st.sampled_from(["none", "right", "wrong", "wrong-then-right"]))
    sentences: list[list[str]] = []
    if login.startswith("wrong"):
        name = draw(st.one_of(st.just("admin"), ODD))
        sentences.append(["/login", f"=name={name}", f"=password={draw(st.text(min_size=1, max_size=8))}"])
    if login.endswith("right"):
        sentences.append(LOGIN)
    sentences += draw(st.lists(SENTENCE, max_size=6))
    return sentences


@pytest.mark.lab
@SERVER
@given(sentences=session(), tcp=st.data())
def test_server_survives_odd_sentences(
    api_server: RouterOsApiServer, sentences: list[list[str]], tcp: st.DataObject
) -> None:
    """Well-framed sentences with odd commands, arguments, queries, tags and oversized words, logged in
    or not, each get their answer; the server stays up for the next client."""
    chunks = tcp.draw(cut(b"".join(encode(sentence) for sentence in sentences)))
    framed, malformed = framing(b"".join(chunks))
    baseline = open_clients(api_server)
    exchange(api_server.port, chunks, len(framed), malformed)
    assert_still_serves(api_server, baseline)


# -- explicit cases ------------------------------------------------------------------------------


@pytest.mark.lab
def test_reserved_length_byte_is_fatal_and_closes(api_server: RouterOsApiServer) -> None:
    connection = connect(api_server.port)
    with connection.sock:
        connection.sock.sendall(b"\xf8")
        reply = connection.replies.sentence()
        assert reply is not None
        assert "0xf8" in fatal_reason(reply)
        connection.assert_closed()


@pytest.mark.lab
def test_a_gigabyte_word_is_refused_on_its_prefix(api_server: RouterOsApiServer) -> None:
    """Only the prefix and a few body bytes are sent: the `!fatal` cannot have waited for the body."""
    connection = connect(api_server.port)
    with connection.sock:
        connection.send(LOGIN)
        assert connection.replies.until_done() == [["!done"]]
        connection.sock.sendall(b"\xf0" + (1 << 30).to_bytes(4, "big") + b"=comment=")
        reply = connection.replies.sentence()
        assert reply is not None
        assert f"word of {1 << 30} bytes" in fatal_reason(reply)
        connection.assert_closed()


@pytest.mark.lab
def test_a_command_before_login_is_trapped(api_server: RouterOsApiServer) -> None:
    connection = connect(api_server.port)
    with connection.sock:
        trap, done = connection.command("/system/resource/print")
        assert trap[0] == "!trap"
        assert attributes(trap)["message"] == "not logged in"
        assert done == ["!done"]
        # The connection stays usable: logging in now works.
        assert connection.command(*LOGIN) == [["!done"]]
        replies = connection.command("/system/identity/print")
        assert [reply[0] for reply in replies] == ["!re", "!done"]


@pytest.mark.lab
def test_too_many_commands_before_login_are_fatal(api_server: RouterOsApiServer) -> None:
    connection = connect(api_server.port)
    with connection.sock:
        for _ in range(8):
            replies = connection.command("/system/resource/print")
            assert [reply[0] for reply in replies] == ["!trap", "!done"]
        (fatal,) = connection.command("/system/resource/print")
        assert fatal_reason(fatal) == "too many commands before login"
        connection.assert_closed()


@pytest.mark.lab
def test_wrong_password_is_trapped_and_the_right_one_still_works(api_server: RouterOsApiServer) -> None:
    connection = connect(api_server.port)
    with connection.sock:
        trap, done = connection.command("/login", "=name=admin", "=password=nope")
        assert trap[0] == "!trap"
        assert attributes(trap)["message"] == "invalid user name or password (6)"
        assert done == ["!done"]
        assert connection.command("/system/resource/print")[0][0] == "!trap"
        assert connection.command(*LOGIN) == [["!done"]]


@pytest.mark.lab
@pytest.mark.parametrize("logged_in", [False, True], ids=["before-login", "after-login"])
def test_quit_is_fatal_and_closes(api_server: RouterOsApiServer, logged_in: bool) -> None:
    connection = connect(api_server.port)
    with connection.sock:
        if logged_in:
            assert connection.command(*LOGIN) == [["!done"]]
        (fatal,) = connection.command("/quit")
        assert fatal_reason(fatal) == "session terminated on request"
        connection.assert_closed()


@pytest.mark.lab
def test_tag_is_on_every_reply_of_a_tagged_command_only(api_server: RouterOsApiServer) -> None:
    connection = connect(api_server.port)
    with connection.sock:
        assert connection.command(*LOGIN, ".tag=1") == [["!done", ".tag=1"]]
        replies = connection.command("/system/resource/print", ".tag=7")
        assert [reply[0] for reply in replies] == ["!re", "!done"]
        assert all(reply[-1] == ".tag=7" for reply in replies), replies
        assert all(reply.count(".tag=7") == 1 for reply in replies), replies
        trapped = connection.command("/no/such/print", ".tag=8")
        assert [reply[0] for reply in trapped] == ["!trap", "!done"]
        assert all(reply[-1] == ".tag=8" for reply in trapped), trapped
        untagged = connection.command("/system/identity/print")
        assert [reply[0] for reply in untagged] == ["!re", "!done"]
        assert not any(word.startswith(".tag") for reply in untagged for word in reply), untagged


@pytest.mark.lab
def test_a_half_sent_sentence_is_fatal_after_the_stall_timeout(routeros: LabRouterOs) -> None:
    """A second server on the same router with a short stall timeout, so the test waits half a second."""
    stall = 0.5
    with RouterOsApiServer(routeros.emulated, username="admin", password="", stall_timeout=stall) as server:
        connection = connect(server.port)
        with connection.sock:
            assert connection.command(*LOGIN) == [["!done"]]
            # Between sentences the server waits for as long as the client likes.
            connection.sock.settimeout(2 * stall)
            with pytest.raises(TimeoutError):
                connection.sock.recv(1)
            connection.sock.settimeout(TIMEOUT)
            sent = time.monotonic()
            connection.sock.sendall(encode(["/system/resource/print"])[:-1] + b"\x85=na")
            reply = connection.replies.sentence()
            waited = time.monotonic() - sent
            assert reply is not None
            assert fatal_reason(reply) == "sentence left unfinished"
            assert waited >= stall * 0.8, f"!fatal after {waited:.2f}s, before the {stall}s stall timeout"
            connection.assert_closed()
        assert server.commands[-1].answer == "!fatal: sentence left unfinished"


@pytest.mark.lab
def test_a_print_reaches_the_emulated_router(api_server: RouterOsApiServer) -> None:
    """The fuzz's liveness check means something only if a print returns the router's own rows."""
    connection = connect(api_server.port)
    with connection.sock:
        assert connection.command(*LOGIN) == [["!done"]]
        (row, done) = connection.command("/system/resource/print", "=.proplist=version,board-name")
        assert row[0] == "!re"
        assert list(attributes(row)) == ["version", "board-name"]
        assert attributes(row)["version"].startswith("7.8")
        assert done == ["!done"]


@pytest.mark.lab
@pytest.mark.parametrize(
    "sentences",
    [
        [["/login", "=name=é", "=password="]],
        [LOGIN, ["/system/resource/print", "?#²"]],
        [LOGIN, ["/system/resource/print", "?#" + "1" * 5000]],
    ],
    ids=["non-ascii-login-name", "superscript-digit-query", "5000-digit-query"],
)
def test_inputs_that_crash_the_handler_are_answered(
    api_server: RouterOsApiServer, sentences: list[list[str]]
) -> None:
    """Inputs the fuzz once found dropping the connection unanswered (a non-ASCII login name that
    hmac.compare_digest refused as text; `?#` digits that `int()` refuses): each gets its trap."""
    connection = connect(api_server.port)
    with connection.sock:
        connection.send(*sentences)
        for _ in sentences[:-1]:
            assert connection.replies.until_done() == [["!done"]]
        trap, done = connection.replies.until_done()
        assert trap[0] == "!trap"
        assert done == ["!done"]
