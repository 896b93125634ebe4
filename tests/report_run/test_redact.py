"""The redactor on the shapes secrets take in what a run writes, JSON-escaped text included."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from bgpconform.report.redact import REDACTED, Redactor
from bgpconform.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]


def test_known_values_and_their_base64_are_replaced() -> None:
    redactor = Redactor(["s3cret-value"])
    encoded = base64.b64encode(b"s3cret-value").decode()
    assert redactor.text(f"a s3cret-value b {encoded}") == f"a {REDACTED} b {REDACTED}"


def test_too_short_values_are_not_treated_as_secrets() -> None:
    assert Redactor(["ab"]).text("tab cab") == "tab cab"


def test_credential_shapes_are_replaced_whatever_the_value() -> None:
    redactor = Redactor()
    text = (
        "users:\n- user:\n    token: abc.def\n    client-key-data: LS0tLS1\n"
        "Authorization: Bearer eyJhbGciOi\n neighbor 10.0.0.1 password hunter22\n"
        "/user add name=admin password=hunter33\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n"
    )
    cleaned = redactor.text(text)
    for secret in ("abc.def", "LS0tLS1", "eyJhbGciOi", "hunter22", "hunter33", "MIIEow"):
        assert secret not in cleaned
    assert cleaned.count(REDACTED) == 6
    assert "-----END RSA PRIVATE KEY-----" in cleaned


def test_json_stays_valid_when_a_string_holds_a_credential() -> None:
    document = json.dumps({"body": "users:\n  token: tkn-123\n  password: pw-456\n", "n": 1})
    cleaned = Redactor(["pw-456"]).text(document)
    parsed = json.loads(cleaned)
    assert "tkn-123" not in parsed["body"]
    assert "pw-456" not in parsed["body"]
    assert parsed["n"] == 1


def test_the_topology_names_the_password_variable(tmp_path: Path) -> None:
    text = (ROOT / "topologies" / "lab.yaml").read_text()
    text = text.replace(
        "  ecmp: true", "  ecmp: true\n  credentials: {username_env: U_VAR, password_env: P_VAR}", 1
    )
    path = tmp_path / "t.yaml"
    path.write_text(text)
    redactor = Redactor.for_topology(load_topology(path), {"U_VAR": "admin", "P_VAR": "router-pw-9"})
    assert redactor.text("login admin router-pw-9") == f"login admin {REDACTED}"


def test_files_are_rewritten_and_binary_files_left_alone(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    text_file = tmp_path / "sub" / "a.txt"
    text_file.write_text("token: zzz-top\n")
    binary = tmp_path / "shot.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe token: kept")
    Redactor().tree(tmp_path)
    assert text_file.read_text() == f"token: {REDACTED}\n"
    assert binary.read_bytes().endswith(b"token: kept")


def test_yaml_keys_with_nested_values_are_left_intact() -> None:
    text = "volumes:\n- name: clustermesh-secrets\n  secret:\n    secretName: cilium-clustermesh\n"
    assert Redactor().text(text) == text
