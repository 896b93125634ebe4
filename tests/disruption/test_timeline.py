"""The disruption figures, read off timelines whose answers are known by hand."""

from __future__ import annotations

from bgpconform.disruption.timeline import Mark, RequestSample, RouterSample, Timeline


def _request(sequence: int, started: float, ok: bool, elapsed: float = 0.1) -> RequestSample:
    return RequestSample(
        sequence=sequence,
        started=started,
        elapsed=elapsed,
        status=200 if ok else None,
        local_port=40000 + sequence,
        error="" if ok else "Connection timed out after 1000 milliseconds",
    )


def _sample(at: float, states: list[str], hops: list[str]) -> RouterSample:
    sessions = {f"192.168.1.20{i + 1}": state for i, state in enumerate(states)}
    return RouterSample(at=at, sessions=sessions, paths=tuple(hops), nexthops=tuple(hops))


UP3 = ["established"] * 3
ONE_DOWN = ["established", "idle", "established"]
HOPS3 = ["192.168.1.201", "192.168.1.202", "192.168.1.203"]
HOPS2 = ["192.168.1.201", "192.168.1.203"]

TIMELINE = Timeline(
    title="node 02 loses its link",
    duration=10.0,
    requests=(
        _request(1, 0.0, True),  # answered at 0.1
        _request(2, 1.0, True),  # 1.1
        _request(3, 2.0, False, elapsed=1.0),  # times out, ends at 3.0
        _request(4, 3.0, False, elapsed=1.0),  # ends at 4.0
        _request(5, 4.0, True),  # 4.1: the gap from 1.1 to 4.1 is 3.0 s
        _request(6, 9.0, True),  # 9.1: 5.0 s after the one before
    ),
    router=(
        _sample(0.0, UP3, HOPS3),
        _sample(2.0, UP3, HOPS3),
        _sample(4.0, ONE_DOWN, HOPS2),
        _sample(6.0, ONE_DOWN, HOPS2),
        _sample(8.0, UP3, HOPS3),
    ),
    marks=(Mark(at=1.5, label="link down"),),
)


def test_figures_over_the_whole_run() -> None:
    shown = TIMELINE.figures()
    assert shown.requests == 6
    assert shown.failed == 2
    assert shown.longest_gap == 5.0  # 4.1 -> 9.1
    assert shown.session_flaps == 1
    assert shown.withdrawals == 1
    assert shown.fewest_nexthops == 2
    assert shown.requests_per_second == 0.6


def test_figures_from_the_fault_on_leave_out_what_came_before() -> None:
    shown = TIMELINE.figures(since=1.5)
    assert shown.requests == 4
    assert shown.failed == 2
    assert shown.longest_gap == 5.0
    assert shown.session_flaps == 1


def test_a_stream_without_any_answer_is_one_gap_as_long_as_the_run() -> None:
    silent = Timeline(
        title="nothing answers",
        duration=4.0,
        requests=(_request(1, 0.0, False, 1.0), _request(2, 1.0, False, 1.0)),
        router=(),
        marks=(),
    )
    assert silent.figures().longest_gap == 4.0
    assert silent.figures().fewest_nexthops == 0


def test_a_timeline_survives_its_json_round_trip() -> None:
    assert Timeline.model_validate_json(TIMELINE.model_dump_json()) == TIMELINE
