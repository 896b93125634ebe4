"""A probe's timeline as one inline SVG: requests ok or failed over time, each session's state, the LB
route's next-hop count, and the fault's moments as dashed lines. No script, font or file outside it,
so a report opened from an archive shows it as it was written."""

from __future__ import annotations

from html import escape

from bgpconform.disruption.timeline import Timeline

WIDTH = 960
LEFT = 150  # room for lane labels
RIGHT = 20
REQUEST_LANE = 36
SESSION_ROW = 16
NEXTHOP_LANE = 60
AXIS = 28
OK, FAILED, UP, DOWN, MARK = "#2e7d32", "#c62828", "#66bb6a", "#ef9a9a", "#37474f"


def _x(at: float, duration: float) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * (max(0.0, min(at, duration)) / max(duration, 1e-9))


def _label(y: float, text: str) -> str:
    return f'<text x="{LEFT - 8}" y="{y:.1f}" text-anchor="end" class="lane">{escape(text)}</text>'


def _tick_step(duration: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300):
        if duration / step <= 12:
            return step
    return 600


def render(timeline: Timeline) -> str:
    """The SVG element for `timeline`."""
    duration = timeline.duration
    peers = sorted({peer for sample in timeline.router for peer in sample.sessions})
    most_hops = max((len(s.nexthops) for s in timeline.router), default=0)
    top = 22.0  # a row above the lanes for the moments' labels and the legend
    sessions_top = top + REQUEST_LANE + 12
    hops_top: float = sessions_top + SESSION_ROW * len(peers) + 12
    height = hops_top + NEXTHOP_LANE + AXIS
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-label="{escape(timeline.title)}">',
        "<style>text{font:11px sans-serif;fill:#263238}.lane{font-weight:bold}</style>",
    ]
    parts.append(
        f'<text x="{WIDTH - RIGHT}" y="{top - 8}" text-anchor="end">'
        f'<tspan fill="{OK}">| answered</tspan>  <tspan fill="{FAILED}">| failed</tspan>  '
        f'<tspan fill="{UP}">&#9632; established</tspan>  '
        f'<tspan fill="{DOWN}">&#9632; not established</tspan>'
        "</text>"
    )
    # requests: one tick per request at its start, up for ok, down for failed
    middle = top + REQUEST_LANE / 2
    parts.append(_label(middle + 4, "requests"))
    parts.append(f'<line x1="{LEFT}" y1="{middle}" x2="{WIDTH - RIGHT}" y2="{middle}" stroke="#cfd8dc"/>')
    for request in timeline.requests:
        x = _x(request.started, duration)
        if request.ok:
            parts.append(f'<line x1="{x:.1f}" y1="{middle}" x2="{x:.1f}" y2="{top + 2}" stroke="{OK}"/>')
        else:
            parts.append(
                f'<line x1="{x:.1f}" y1="{middle}" x2="{x:.1f}" y2="{top + REQUEST_LANE - 2}" '
                f'stroke="{FAILED}" stroke-width="2">'
                f"<title>{escape(request.error or 'failed')}</title></line>"
            )
    # sessions: one row per peer, coloured by state between samples
    samples = list(timeline.router)
    for row, peer in enumerate(peers):
        y = sessions_top + row * SESSION_ROW
        parts.append(_label(y + SESSION_ROW - 4, f"session {peer}"))
        for index, sample in enumerate(samples):
            end = samples[index + 1].at if index + 1 < len(samples) else duration
            state = sample.sessions.get(peer, "absent")
            x0, x1 = _x(sample.at, duration), _x(end, duration)
            colour = UP if state == "established" else DOWN
            parts.append(
                f'<rect x="{x0:.1f}" y="{y + 2}" width="{max(x1 - x0, 0.5):.1f}" height="{SESSION_ROW - 4}" '
                f'fill="{colour}"><title>{escape(peer)}: {escape(state)}</title></rect>'
            )
    # next hops of the LB route: a step line from 0 to the most seen
    parts.append(_label(hops_top + NEXTHOP_LANE / 2 + 4, "LB route next hops"))
    scale = max(most_hops, 1)
    points = []
    for index, sample in enumerate(samples):
        end = samples[index + 1].at if index + 1 < len(samples) else duration
        y = hops_top + NEXTHOP_LANE - (NEXTHOP_LANE - 8) * len(sample.nexthops) / scale
        points += [f"{_x(sample.at, duration):.1f},{y:.1f}", f"{_x(end, duration):.1f},{y:.1f}"]
    if points:
        parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#1565c0" stroke-width="2"/>')
    for count in sorted({0, most_hops}):
        y = hops_top + NEXTHOP_LANE - (NEXTHOP_LANE - 8) * count / scale
        parts.append(f'<text x="{LEFT + 2}" y="{y - 2:.1f}">{count}</text>')
    # the time axis
    axis_y = hops_top + NEXTHOP_LANE + 4
    parts.append(f'<line x1="{LEFT}" y1="{axis_y}" x2="{WIDTH - RIGHT}" y2="{axis_y}" stroke="#90a4ae"/>')
    step = _tick_step(duration)
    tick = 0.0
    while tick <= duration:
        x = _x(tick, duration)
        parts.append(f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 4}" stroke="#90a4ae"/>')
        parts.append(f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle">{tick:g} s</text>')
        tick += step
    # the scenario's moments
    for mark in timeline.marks:
        x = _x(mark.at, duration)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="{MARK}" '
            'stroke-dasharray="4 3"/>'
        )
        parts.append(f'<text x="{x + 3:.1f}" y="{top - 8}" class="mark">{escape(mark.label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
