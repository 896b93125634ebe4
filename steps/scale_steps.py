"""Steps of the scale check (`features/8_scale.feature`): the run's own services, many at once."""

from __future__ import annotations

import pytest
from pytest_bdd import then, when

from bgpconform.expect import expect
from bgpconform.walkthrough.machine import StageMachine
from bgpconform.walkthrough.scale import ScaleRun, remove_leftovers


@when("the run creates its scale services in batches", target_fixture="scale_run")
def create_scale_services(walkthrough: StageMachine, request: pytest.FixtureRequest) -> ScaleRun:
    """Whatever a later step does, the scenario ends with none of the run's scale services left."""
    remove_leftovers(walkthrough)
    request.addfinalizer(lambda: remove_leftovers(walkthrough))
    run = ScaleRun(walkthrough)
    run.prepare()
    run.create_all()
    return run


@then("every scale service holds its own external IP from its pool")
def addresses_from_pools(scale_run: ScaleRun) -> None:
    finding = scale_run.every_address_from_its_pool()
    expect(finding.holds, finding.expected, finding.observed)


@then("the router has a path to every scale service's LB IP from every peering node")
def every_path(scale_run: ScaleRun) -> None:
    scale_run.wait_every_path()


@then("every scale service's LB IP answers HTTP from outside")
def every_answer(scale_run: ScaleRun) -> None:
    scale_run.wait_every_answer()


@when("the run removes its scale services in batches")
def remove_scale_services(scale_run: ScaleRun) -> None:
    scale_run.remove_all()


@then("the router withdraws every scale service's LB IP")
def every_withdrawal(scale_run: ScaleRun) -> None:
    scale_run.wait_every_withdrawal()
