"""The written report in a real browser: it renders, shows what a reader needs, fetches nothing, prints.

Debian's chromium is driven through playwright; no browser is downloaded. A missing chromium is a
failure, not a skip: the report is what a release is signed from, so it must have been looked at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from bgpconform.report.compare import compare
from bgpconform.report.compare import render_html as render_comparison
from bgpconform.report.html import render_html
from bgpconform.report.model import EvidenceItem, RunReport
from tests.disruption.test_timeline import TIMELINE
from tests.report.conftest import ROUTER_DUMP_FIRST_LINE, build_conformant, build_non_conformant

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VIEWPORT = {"width": 1366, "height": 900}  # a laptop screen
BROWSER_TIMEOUT_MS = 15_000
CHROMIUM_MISSING = "chromium is not installed: apt-get install chromium (./run tests installs it)"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser | None]:
    """One chromium for the module; None when it is missing, so each test fails (not errors) saying so."""
    executable = shutil.which("chromium")
    if executable is None:
        yield None
        return
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@contextmanager
def _page(browser: Browser | None) -> Iterator[Page]:
    if browser is None:
        pytest.fail(CHROMIUM_MISSING)
    context = browser.new_context(viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]})
    try:
        page = context.new_page()
        page.set_default_timeout(BROWSER_TIMEOUT_MS)
        yield page
    finally:
        context.close()


def _open(page: Page, file: Path) -> list[str]:
    """Load the file and return every URL the page asked for."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(file.as_uri(), wait_until="load")
    return requested


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.parametrize(
    "report",
    [
        pytest.param(build_conformant(), id="conformant"),
        pytest.param(build_non_conformant(), id="non-conformant"),
    ],
)
def test_the_report_renders_and_shows_the_verdict_and_every_scenario(
    browser: Browser | None, tmp_path: Path, report: RunReport
) -> None:
    file = tmp_path / "report.html"
    file.write_text(render_html(report), encoding="utf-8")
    with _page(browser) as page:
        _check_report_page(page, file, tmp_path, report)


def _check_report_page(page: Page, file: Path, tmp_path: Path, report: RunReport) -> None:
    requested = _open(page, file)

    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    data = screenshot.read_bytes()
    width, height = _png_size(data)
    assert width == VIEWPORT["width"]
    assert height > 3 * VIEWPORT["height"]  # the whole page, not just the first screen
    assert len(data) > 100_000  # drawn content, not a blank page

    word = page.locator("#verdict .word")
    assert word.is_visible()
    assert word.inner_text() == report.verdict.value
    assert page.get_by_text(report.verdict_reason, exact=True).first.is_visible()
    body = page.inner_text("body")
    assert report.verdict_reason in body
    for scenario in report.scenarios:
        title = f"Scenario: {scenario.name}"
        assert page.get_by_text(title, exact=True).first.is_visible(), title
        assert title in body
    assert requested == [file.as_uri()]


def test_folded_text_is_shown_when_printed(browser: Browser | None, tmp_path: Path) -> None:
    file = tmp_path / "report.html"
    file.write_text(render_html(build_non_conformant()), encoding="utf-8")
    with _page(browser) as page:
        _check_print(page, file)


def _check_print(page: Page, file: Path) -> None:
    requested = _open(page, file)
    dump = page.locator("details pre", has_text=ROUTER_DUMP_FIRST_LINE)
    assert not dump.is_visible()  # folded on screen
    page.emulate_media(media="print")
    assert dump.is_visible()  # shown in print, without any script having run
    assert page.evaluate("document.querySelectorAll('details[open]').length") == 0
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF-")
    assert len(pdf) > 50_000
    assert requested == [file.as_uri()]


def test_the_comparison_renders_without_requests(browser: Browser | None, tmp_path: Path) -> None:
    file = tmp_path / "compare.html"
    file.write_text(render_comparison(compare(build_conformant(), build_non_conformant())), encoding="utf-8")
    with _page(browser) as page:
        _check_comparison_page(page, file)


def _check_comparison_page(page: Page, file: Path) -> None:
    requested = _open(page, file)
    assert page.locator("#verdict .word").inner_text() == "non-conformant"
    assert "Verdict changed: was conformant, now non-conformant." in page.inner_text("body")
    assert requested == [file.as_uri()]


def test_a_timeline_is_drawn_readably_with_its_figures(browser: Browser | None, tmp_path: Path) -> None:
    """A fault scenario's timeline: an inline SVG as wide as the page's evidence, its lanes and the
    fault's moment labelled, the figures beside it, and nothing fetched to draw it."""
    report = build_conformant()
    first = report.scenarios[0]
    item = EvidenceItem(
        step="Then requests keep succeeding through the other peering nodes",
        title=TIMELINE.title,
        kind="timeline",
        body=TIMELINE.model_dump_json(),
        at=first.evidence[0].at if first.evidence else 0.0,
    )
    scenarios = [first.model_copy(update={"evidence": [*first.evidence, item]}), *report.scenarios[1:]]
    file = tmp_path / "report.html"
    file.write_text(render_html(report.model_copy(update={"scenarios": scenarios})), encoding="utf-8")
    with _page(browser) as page:
        requested = _open(page, file)
        svg = page.locator("svg.timeline")
        svg.scroll_into_view_if_needed()
        assert svg.is_visible()
        box = svg.bounding_box()
        assert box is not None
        assert box["width"] >= 600, box
        assert box["height"] >= 120, box
        width, height = _png_size(svg.screenshot())
        assert width >= 600
        assert height >= 120
        drawn = str(svg.text_content())  # an SVG element has text, not inner text
        for label in ("requests", "session 192.168.1.202", "LB route next hops", "link down", "5 s"):
            assert label in drawn, label
        figures = page.locator("table.figures").inner_text()
        assert "failed requests" in figures
        assert "longest gap without an answer (s)" in figures
    assert requested == [file.as_uri()]
