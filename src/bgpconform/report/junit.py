"""Make pytest's junit.xml say what the harness means by a failure, within the JUnit schema.

pytest reports every failed call as <failure>. CI systems read <failure> as "the tested thing is
broken" and <error> as "the test could not run"; that is exactly non-conformant versus not assessed,
so a scenario the harness could not assess becomes an <error>, and both carry the verdict class in
their `type` attribute. Per-test <properties> are not in the schema CI systems validate against, so
the outcome travels in `type` rather than as a property.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from bgpconform.verdict import Outcome


def mark_outcomes(path: Path, outcomes: dict[str, Outcome]) -> None:
    """`outcomes` maps a test function's name to its outcome; other test cases are left alone."""
    tree = ET.parse(path)
    for case in tree.getroot().iter("testcase"):
        outcome = outcomes.get(case.get("name", ""))
        if outcome is None or outcome is Outcome.PASSED:
            continue
        for problem in [*case.findall("failure"), *case.findall("error")]:
            if outcome is Outcome.NOT_ASSESSED and problem.tag == "failure":
                problem.tag = "error"
            problem.set("type", str(outcome))
    _recount(tree.getroot())
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _recount(root: ET.Element) -> None:
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    for suite in suites:
        cases = list(suite.iter("testcase"))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))


def merge_suites(sources: list[Path], path: Path) -> None:
    """One junit.xml holding every source's <testsuite>, as CI reads a run split over processes."""
    root = ET.Element("testsuites")
    for source in sources:
        parsed = ET.parse(source).getroot()
        root.extend([parsed] if parsed.tag == "testsuite" else parsed.findall("testsuite"))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
