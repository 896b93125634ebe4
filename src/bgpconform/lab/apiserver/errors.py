"""API errors rendered as the `Status` objects a real API server sends.

Clients parse these bodies: client-go builds "the server could not find the requested resource
(get ciliumbgppeeringpolicies.cilium.io)" from a 404 Status, the Python client keeps the body on
`ApiException`, and kubectl prints the message. So the reason, code, message and details follow
`k8s.io/apimachinery/pkg/api/errors` word for word where it matters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

NOT_FOUND_RESOURCE = "the server could not find the requested resource"


@dataclass(frozen=True)
class FieldError:
    """One entry of `field.ErrorList`: a path, an error type and an optional bad value and detail."""

    path: str
    type: str  # "Required value", "Invalid value", "Unsupported value", ...
    reason: str  # the StatusCause reason, e.g. FieldValueRequired
    detail: str = ""
    value: Any = None
    has_value: bool = False

    def body(self) -> str:
        """`field.Error.ErrorBody()`: the message without the path."""
        text = self.type
        if self.has_value:
            text += f": {go_value(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.path}: {self.body()}"


def go_value(value: Any) -> str:
    """Render a bad value the way `field.Error` does: strings quoted, numbers bare, null as null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "map[string]interface {}" + _go_map(value)
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(go_value(item) for item in value) + "}"
    return repr(value)


def _go_map(value: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}:{go_value(v)}" for k, v in sorted(value.items())) + "}"


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(path, "Required value", "FieldValueRequired", detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, "Invalid value", "FieldValueInvalid", detail, value, True)


def type_invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, "Invalid value", "FieldValueTypeInvalid", detail, value, True)


def not_supported(path: str, value: Any, allowed: list[Any]) -> FieldError:
    detail = "supported values: " + ", ".join(go_value(v) for v in allowed)
    return FieldError(path, "Unsupported value", "FieldValueNotSupported", detail, value, True)


def too_long(path: str, max_length: int) -> FieldError:
    return FieldError(path, "Too long", "FieldValueTooLong", f"may not be longer than {max_length}")


def too_many(path: str, actual: int, maximum: int) -> FieldError:
    return FieldError(
        path, "Too many", "FieldValueTooMany", f"must have at most {maximum} items", actual, True
    )


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(path, "Duplicate value", "FieldValueDuplicate", "", value, True)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(path, "Forbidden", "FieldValueForbidden", detail)


@dataclass
class ApiError(Exception):
    """An error answer: HTTP code, Status reason, message and details."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }
        if not self.details:
            body.pop("details")
        return body


def qualified(plural: str, group: str) -> str:
    """`schema.GroupResource.String()`: "pods", "deployments.apps", "ciliumnodes.cilium.io"."""
    return f"{plural}.{group}" if group else plural


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


def resource_not_found() -> ApiError:
    """The answer for a path no served resource matches, e.g. a custom resource whose CRD is absent."""
    return ApiError(404, "NotFound", NOT_FOUND_RESOURCE, {})


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{qualified(plural, group)} "{name}" not found', _details(name, group, plural)
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(plural, group)} "{name}" already exists',
        _details(name, group, plural),
    )


def conflict(plural: str, group: str, name: str, detail: str | None = None) -> ApiError:
    detail = (
        detail
        or "the object has been modified; please apply your changes to the latest version and try again"
    )
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {detail}',
        _details(name, group, plural),
    )


def invalid_object(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    """422 Invalid: `<Kind>.<group> "<name>" is invalid: <errors>`, with one cause per field error."""
    qualified_kind = f"{kind}.{group}" if group else kind
    listed = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    details = _details(name, group, kind)
    details["causes"] = [{"reason": e.reason, "message": e.body(), "field": e.path} for e in errors]
    return ApiError(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {listed}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden_error(plural: str, group: str, name: str, detail: str) -> ApiError:
    return ApiError(
        403,
        "Forbidden",
        f'{qualified(plural, group)} "{name}" is forbidden: {detail}',
        _details(name, group, plural),
    )


def method_not_allowed() -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def internal(message: str) -> ApiError:
    return ApiError(
        500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]}
    )
