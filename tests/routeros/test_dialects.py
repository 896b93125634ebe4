"""The lab's RouterOS refuses what its emulated version does not have, the way RouterOS does (a trap
naming the parameter or the menu), and a refused command changes nothing, on the API or in FRR."""

from __future__ import annotations

import json

import pytest

from bgpconform.lab.lab import Lab
from bgpconform.routers.routeros import RouterApiError
from bgpconform.routers.routeros.commands import CONNECTION_PATH, INSTANCE_PATH
from tests.routeros.conftest import LabFactory, adapter
from tests.routeros.raw_client import LOGIN, connect

pytestmark = pytest.mark.lab

BASE = {"as": "64512", "remote.address": "192.168.1.201", "local.role": "ibgp", "name": "T1"}


def _words(fields: dict[str, str]) -> list[str]:
    return [f"={key}={value}" for key, value in fields.items()]


def _refused(lab: Lab, command: str, fields: dict[str, str]) -> str:
    router = adapter(lab)
    before = router.api.print(CONNECTION_PATH)
    with pytest.raises(RouterApiError) as caught:
        router.api.call(command, _words(fields))
    assert router.api.print(CONNECTION_PATH) == before  # nothing changed
    return str(caught.value)


def _frr_neighbors(lab: Lab) -> set[str]:
    return set(json.loads(lab._frr.transport.vtysh("show bgp neighbors json") or "{}"))  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("version", "field", "value"),
    [
        ("7.8", "afi", "ip"),
        ("7.18", "afi", "ip"),
        ("7.19", "address-families", "ip"),
        ("7.8", "instance", "default"),
    ],
)
def test_a_field_the_version_lacks_is_an_unknown_parameter(
    lab_for: LabFactory, version: str, field: str, value: str
) -> None:
    message = _refused(lab_for(version), f"{CONNECTION_PATH}/add", {**BASE, field: value})
    assert f"unknown parameter {field}" in message
    assert f"`{CONNECTION_PATH}/add" in message  # the error names the command that failed


def test_the_instance_menu_does_not_exist_before_7_20(lab_for: LabFactory) -> None:
    with pytest.raises(RouterApiError, match="no such command prefix"):
        adapter(lab_for("7.19")).api.print(INSTANCE_PATH)


def test_from_7_20_a_connection_must_name_an_existing_instance(lab_for: LabFactory) -> None:
    lab = lab_for("7.20")
    assert "instance must be set" in _refused(lab, f"{CONNECTION_PATH}/add", {**BASE, "afi": "ip"})
    message = _refused(lab, f"{CONNECTION_PATH}/add", {**BASE, "afi": "ip", "instance": "nope"})
    assert "input does not match any value of instance" in message


def test_multipath_exists_on_the_instance_only_from_7_22(lab_for: LabFactory) -> None:
    router = adapter(lab_for("7.20"))
    with pytest.raises(RouterApiError, match="unknown parameter multipath"):
        router.api.call(f"{INSTANCE_PATH}/add", _words({"name": "i", "as": "64512", "multipath": "4"}))
    assert router.api.print(INSTANCE_PATH) == []


def test_an_instance_in_use_cannot_be_removed(lab_for: LabFactory) -> None:
    lab = lab_for("7.20")
    router = adapter(lab)
    instance = router.api.call(f"{INSTANCE_PATH}/add", _words({"name": "in-use", "as": "64512"}))[0]["ret"]
    connection = router.api.call(
        f"{CONNECTION_PATH}/add", _words({**BASE, "name": "uses-it", "afi": "ip", "instance": "in-use"})
    )[0]["ret"]
    assert "192.168.1.201" in _frr_neighbors(lab)  # the connection became an FRR neighbor
    with pytest.raises(RouterApiError, match="is used by connection 'uses-it'"):
        router.api.call(f"{INSTANCE_PATH}/remove", [f"=.id={instance}"])
    router.api.call(f"{CONNECTION_PATH}/remove", [f"=.id={connection}"])
    router.api.call(f"{INSTANCE_PATH}/remove", [f"=.id={instance}"])
    assert router.api.print(INSTANCE_PATH) == []
    assert "192.168.1.201" not in _frr_neighbors(lab)  # and went away with it


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({**BASE, "remote.address": "not-an-address"}, "invalid value for argument remote.address"),
        ({**BASE, "local.role": "friend"}, "invalid value for argument local.role"),
        ({**BASE, "hold-time": "soon"}, "invalid value for argument hold-time"),
        ({key: value for key, value in BASE.items() if key != "local.role"}, "local.role must be set"),
        ({**BASE, "as": "65001"}, "runs one BGP instance, AS 64512"),
    ],
)
def test_bad_values_are_refused_and_leave_frr_alone(
    lab_for: LabFactory, fields: dict[str, str], message: str
) -> None:
    lab = lab_for("7.8")
    assert message in _refused(lab, f"{CONNECTION_PATH}/add", fields)
    assert "192.168.1.201" not in _frr_neighbors(lab)


def test_items_are_addressed_by_id_or_name_and_names_are_unique(lab_for: LabFactory) -> None:
    lab = lab_for("7.8")
    router = adapter(lab)
    item = router.api.call(f"{CONNECTION_PATH}/add", _words(BASE))[0]["ret"]
    assert item.startswith("*")
    assert "already exists" in _refused(
        lab, f"{CONNECTION_PATH}/add", {**BASE, "remote.address": "192.168.1.9"}
    )
    router.api.call(f"{CONNECTION_PATH}/disable", ["=.id=T1"])
    assert router.api.print(CONNECTION_PATH, "?name=T1")[0]["disabled"] == "true"
    assert "192.168.1.201" not in _frr_neighbors(lab)  # a disabled connection is no FRR neighbor
    router.api.call(f"{CONNECTION_PATH}/enable", [f"=.id={item}"])
    assert "192.168.1.201" in _frr_neighbors(lab)
    router.api.call(f"{CONNECTION_PATH}/remove", [f"=.id={item}"])
    with pytest.raises(RouterApiError, match="no such item"):
        router.api.call(f"{CONNECTION_PATH}/remove", [f"=.id={item}"])


def test_print_takes_proplist_and_queries(lab_for: LabFactory) -> None:
    router = adapter(lab_for("7.8"))
    rows = router.api.print("/system/resource", proplist=["version", "board-name"])
    assert rows == [{"version": "7.8 (stable)", "board-name": "bgpconform-lab (FRR)"}]
    connected = router.api.print("/routing/route", "?connect=true", proplist=["dst-address"])
    assert {row["dst-address"] for row in connected} == {"192.168.1.0/24", "198.51.100.0/24"}
    assert router.api.print("/routing/route", "?connect=true", "?#!") == []  # nothing but connected routes


def _raw_print(port: int, command: str) -> list[str]:
    """Reply words of one print on a raw socket, to see what librouteros hides (`!empty`)."""
    connection = connect(port)
    with connection.sock:
        assert connection.command(*LOGIN) == [["!done"]]
        return [sentence[0] for sentence in connection.command(command)]


def test_an_empty_print_answers_empty_from_7_18_only(lab_for: LabFactory) -> None:
    for version, expected in (
        ("7.8", ["!done"]),
        ("7.18", ["!empty", "!done"]),
        ("7.20", ["!empty", "!done"]),
    ):
        lab = lab_for(version)
        assert lab.routeros is not None
        assert _raw_print(lab.routeros.server.port, "/routing/bgp/session/print") == expected, version
