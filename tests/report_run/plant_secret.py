"""A pytest plugin for a child suite run that puts known secrets where a careless report would copy
them: the router password (named by the topology, in the environment), a ConfigMap and a Secret in
the cluster (so in the API dump), and evidence text in credential shapes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from bgpconform.evidence import Evidence
from bgpconform.kubeapi.client import Resources
from bgpconform.walkthrough.machine import StageMachine

PASSWORD = "planted-Pa55word-7f3a9c2e"  # the router password; the topology names its variable
TOKEN = "planted-token-5b61d0aa94"  # unknown to the harness: only its shape gives it away
PASSWORD_VARIABLE = "BGPCONFORM_TEST_ROUTER_PASSWORD"
USER_VARIABLE = "BGPCONFORM_TEST_ROUTER_USER"
PLANTED = (PASSWORD, TOKEN, base64.b64encode(PASSWORD.encode()).decode())


def with_planted_credentials(
    topology: Path, directory: Path, user: str = "admin"
) -> tuple[Path, dict[str, str]]:
    """A copy of `topology` whose router credentials name this module's variables, and the child
    environment that sets them (the password is the planted one)."""
    data = yaml.safe_load(topology.read_text())
    data["router"]["credentials"] = {"username_env": USER_VARIABLE, "password_env": PASSWORD_VARIABLE}
    copy = directory / f"{topology.stem}-with-credentials.yaml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return copy, {USER_VARIABLE: user, PASSWORD_VARIABLE: PASSWORD}


def pytest_bdd_after_step(  # noqa: PLR0917 (the hook's signature)
    request: pytest.FixtureRequest,
    feature: Any,
    scenario: Any,
    step: Any,
    step_func: Any,
    step_func_args: Any,
) -> None:
    walkthrough: StageMachine = request.getfixturevalue("walkthrough")
    evidence: Evidence = request.getfixturevalue("evidence")
    evidence.text("router login", f"/user print where name=admin password={PASSWORD}")
    evidence.text("kubeconfig", f"users:\n- name: admin\n  user:\n    token: {TOKEN}\n")
    kube = walkthrough.target.kube  # after every step: a reset replaces the lab and its objects
    if kube.get_or_none(Resources.CONFIGMAPS, "router-login", "default") is None:
        kube.create(
            Resources.CONFIGMAPS,
            {"metadata": {"name": "router-login"}, "data": {"password": PASSWORD, "note": f"pw {PASSWORD}"}},
            "default",
        )
    if kube.get_or_none(Resources.SECRETS, "router-login", "default") is None:
        kube.create(
            Resources.SECRETS,
            {"metadata": {"name": "router-login"}, "stringData": {"password": PASSWORD}},
            "default",
        )
