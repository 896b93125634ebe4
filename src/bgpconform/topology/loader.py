"""Read a topology file and turn every way it can be wrong into a located, fixable message.

Pydantic knows what is wrong but not where in the file; the YAML node tree knows where but not what.
The loader joins the two by walking the composed tree along each error's location, so every problem
is reported at its own line and all of them are reported at once.
"""

from __future__ import annotations

import difflib
import hashlib
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bgpconform.topology.fields import Invalid, Loc, describe, format_loc
from bgpconform.topology.model import SHIPPED_EXAMPLE, Topology
from bgpconform.topology.problems import Problem, TopologyError

SHIPPED = "topologies/lab.yaml (the lab) or a copy of topologies/pi.example.yaml (real hardware)"

_LOADER_FIELDS = ("source", "digest")


@dataclass(frozen=True)
class Override:
    """A command-line option that replaces one topology field for this run (`--cilium-version 1.18.2`
    sets `cluster.cilium_version`); a problem with it names the option, not a line of the file."""

    option: str
    value: Any


Overrides = Mapping[Loc, Override]
_SECRET_WORDS = ("password", "passwd", "secret", "token")
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Above difflib's default 0.6, which offers 'cluster' for 'colour': a wrong guess is worse than none.
_CLOSE = 0.7

_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def load_topology(path: str | Path, overrides: Overrides | None = None) -> Topology:
    """Load and validate a topology file; any problem raises one `TopologyError` listing all of them.
    `overrides` replace fields (the run's options) before validation, so they are checked the same way."""
    shown = str(path)
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        _fail(shown, None, "no such file", f"pass an existing topology file, e.g. {SHIPPED}")
    except IsADirectoryError:
        inside = sorted(p.name for p in file.glob("*.yaml"))
        hint = (
            f"pass one of the YAML files in it: {', '.join(inside)}"
            if inside
            else f"pass a file, e.g. {SHIPPED}"
        )
        _fail(shown, None, "is a directory, not a topology file", hint)
    except PermissionError:
        _fail(
            shown,
            None,
            "cannot read the file: permission denied",
            "make it readable by the user running the harness",
        )
    except OSError as exc:
        _fail(
            shown, None, f"cannot read the file: {exc.strerror or exc}", "check the path and the file system"
        )
    return _parse(raw, shown, file.resolve(), overrides or {})


def parse_topology(text: str | bytes, source: str | Path = "<string>") -> Topology:
    """Validate topology text that is not in a file (tests, generated topologies); `source` names it."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return _parse(raw, str(source), Path(source))


def _fail(shown: str, line: int | None, message: str, fix: str) -> NoReturn:
    raise TopologyError([Problem(shown, line, None, message, fix)]) from None


def _parse(raw: bytes, shown: str, source: Path, overrides: Overrides | None = None) -> Topology:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(shown, raw[: exc.start].count(b"\n") + 1, "the file is not UTF-8 text", "save it as UTF-8")
    root, data, problems = _read_yaml(text, shown)
    if data is None:
        _fail(shown, 1, "the file is empty", f"start from a copy of {SHIPPED_EXAMPLE}")
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        _fail(
            shown,
            _line(root),
            f"the top level must be a mapping of sections, got {describe(data)}",
            "write cluster:, nodes:, router:, bgp:, lb_pools: and client: as top-level keys, "
            f"as in {SHIPPED_EXAMPLE}",
        )
    for key in _LOADER_FIELDS:
        if key in data:
            line, _ = _locate(root, (key,))
            problems.append(
                Problem(shown, line, key, "is set by the loader from the file itself", "remove it")
            )
            del data[key]
    for loc, override in (overrides or {}).items():
        _set(data, loc, override.value)
    try:
        topology = Topology.model_validate(
            {**data, "source": source, "digest": hashlib.sha256(raw).hexdigest()}
        )
    except ValidationError as exc:
        problems.extend(_translate_all(exc.errors(), shown, root))
        raise TopologyError([_blame_option(p, overrides or {}) for p in problems]) from None
    if problems:
        raise TopologyError(problems)
    return topology


def _set(data: dict[str, Any], loc: Loc, value: Any) -> None:
    """Put an option's value at `loc`, making the sections on the way if the file leaves them out."""
    node: Any = data
    for part in loc[:-1]:
        if not isinstance(node, dict):
            return  # the file's own shape is wrong there; validation says so
        node = node.setdefault(part, {})
    if isinstance(node, dict):
        node[loc[-1]] = value


def _blame_option(problem: Problem, overrides: Overrides) -> Problem:
    """A problem with an overridden field is the option's: say which, and drop the file's line."""
    for loc, override in overrides.items():
        if problem.path == format_loc(loc):
            return Problem(
                problem.file,
                None,
                f"{problem.path} (from {override.option} {override.value})",
                problem.message,
                f"{problem.fix}; or pass another {override.option}",
            )
    return problem


def _read_yaml(text: str, shown: str) -> tuple[yaml.Node | None, Any, list[Problem]]:
    """Compose and construct in one pass, so line numbers and values come from the same parse.

    Duplicate keys are looked for before constructing, because constructing resolves merge keys
    (`<<: *anchor`) by copying the anchor's pairs into the node, which would look like duplicates.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        duplicates = _duplicate_keys(root, shown) if root is not None else []
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        fix = "check the indentation and the quoting on this line and the one above"
        if "'\\t'" in problem:
            fix = "indent with spaces: YAML does not allow tabs"
        line = mark.line + 1 if mark is not None else None
        column = f" at column {mark.column + 1}" if mark is not None else ""
        _fail(shown, line, f"YAML syntax error{column}: {problem}", fix)
    except yaml.YAMLError as exc:
        _fail(shown, None, f"YAML error: {exc}", "check the file's YAML syntax")
    finally:
        loader.dispose()
    return root, data, duplicates


def _line(node: yaml.Node | None) -> int:
    return 1 if node is None else node.start_mark.line + 1


def _locate(root: yaml.Node, loc: Loc) -> tuple[int, yaml.Node | None]:
    """The line of the deepest part of `loc` that exists in the file, and its node if all of it exists."""
    node: yaml.Node = root
    line = _line(root)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            # The last of duplicate keys wins, as in the loaded data.
            match = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)]
            if not match:
                return line, None
            key, node = match[-1]
            line = _line(key)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = _line(node)
        else:
            return line, None
    return line, node


def _duplicate_keys(root: yaml.Node, shown: str) -> list[Problem]:
    """PyYAML keeps the last of duplicate keys without a word; half a section silently vanishing is worse."""
    problems: list[Problem] = []
    seen: set[int] = set()

    def walk(node: yaml.Node, loc: Loc) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                    if key.value in first:
                        problems.append(
                            Problem(
                                shown,
                                _line(key),
                                format_loc((*loc, key.value)),
                                f"duplicate key (first at line {first[key.value]})",
                                "keep only one: YAML would silently use the last",
                            )
                        )
                    else:
                        first[key.value] = _line(key)
                    walk(value, (*loc, key.value))
                else:
                    walk(value, loc)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*loc, i))

    walk(root, ())
    return problems


# --- pydantic errors to problems -----------------------------------------------------------------------


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            rest = [a for a in get_args(tp) if a is not type(None)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def _type_at(loc: Loc) -> Any:
    """The declared type at a location, to name allowed fields and options without hard-coding them."""
    tp: Any = Topology
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if not isinstance(part, str) or part not in tp.model_fields:
                return None
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return None
    return _unwrap(tp)


def _model_at(loc: Loc) -> type[BaseModel] | None:
    tp = _type_at(loc)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _is_secret_name(name: str) -> bool:
    low = name.lower()
    return not low.endswith("_env") and any(word in low for word in _SECRET_WORDS)


def _may_echo(loc: Loc) -> bool:
    """Never repeat a value that may be a secret: error messages end up in logs and reports."""
    return not any(isinstance(p, str) and (p == "credentials" or _is_secret_name(p)) for p in loc)


def _kind_of(value: object) -> str:
    kinds: list[tuple[type, str]] = [
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (list, "a list"),
        (dict, "a mapping"),
    ]
    if value is None:
        return "an empty value"
    return next((name for cls, name in kinds if isinstance(value, cls)), f"a {type(value).__name__}")


def _describe_as_written(value: object, node: yaml.Node | None) -> str:
    """Show numbers and booleans as typed (`7.10`, `yes`), not as YAML read them (`7.1`, `true`)."""
    if isinstance(node, yaml.ScalarNode) and isinstance(value, bool | int | float):
        kind = "boolean" if isinstance(value, bool) else "integer" if isinstance(value, int) else "number"
        return f"the {kind} {node.value}"
    return describe(value)


def _one_of(options: Sequence[object]) -> str:
    shown = [f"'{o}'" for o in options]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _translate_all(errors: Sequence[ErrorDetails], shown: str, root: yaml.Node) -> list[Problem]:
    """Translate every error, except a 'missing' field that an unknown key's 'did you mean' already names."""
    misspelt: set[Loc] = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            loc = tuple(error["loc"])
            guess = _closest_field(loc)
            if guess is not None:
                misspelt.add((*loc[:-1], guess))
    problems: list[Problem] = []
    for error in errors:
        if not (error["type"] == "missing" and tuple(error["loc"]) in misspelt):
            problems.extend(_translate(error, shown, root))
    return problems


def _display_loc(loc: Loc) -> str:
    """Mapping keys are shown as written even when YAML read them as numbers (`labels.1`, not `labels[1]`)."""
    shown: list[str | int] = []
    for i, part in enumerate(loc):
        parent = _type_at(loc[:i])
        shown.append(str(part) if get_origin(parent) is dict or (i == 0 and isinstance(part, int)) else part)
    return format_loc(tuple(shown))


def _translate(error: ErrorDetails, shown: str, root: yaml.Node) -> list[Problem]:
    loc: Loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, Invalid):
        problems = []
        for issue in cause.issues:
            where = (*loc, *issue.loc)
            problems.append(
                Problem(shown, _locate(root, where)[0], _display_loc(where), issue.message, issue.fix)
            )
        return problems
    if error["type"] == "invalid_key" or (loc and loc[-1] == "[key]"):
        loc = loc[:-1] if loc and loc[-1] == "[key]" else loc
        line, key = _locate_key(root, loc)
        value = error["input"]
        fix = f'quote it: "{key.value}"' if key is not None else "write it as a string"
        return [Problem(shown, line, _display_loc(loc), f"keys must be strings, got {describe(value)}", fix)]
    line, node = _locate(root, loc)
    message, fix = _explain(error, loc, node)
    return [Problem(shown, line, _display_loc(loc) or None, message, fix)]


def _locate_key(root: yaml.Node, loc: Loc) -> tuple[int, yaml.ScalarNode | None]:
    line, parent = _locate(root, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for key, _ in parent.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(loc[-1]):
                return _line(key), key
    return line, None


def _explain(error: ErrorDetails, loc: Loc, node: yaml.Node | None) -> tuple[str, str]:
    kind = error["type"]
    value = error["input"]
    if kind == "missing":
        return _explain_missing(loc)
    if kind == "extra_forbidden":
        return _explain_unknown(loc)
    if kind == "literal_error":
        options = get_args(_type_at(loc)) or ()
        got = describe(value) if _may_echo(loc) else _kind_of(value)
        close = (
            difflib.get_close_matches(value, [str(o) for o in options], n=1, cutoff=_CLOSE)
            if isinstance(value, str)
            else []
        )
        fix = f"did you mean '{close[0]}'?" if close else f"use {_one_of(options)}"
        return f"expected {_one_of(options)}, got {got}", fix
    if kind in _EXPECTED:
        return _explain_type(_EXPECTED[kind], loc, value, node)
    message = error["msg"].removeprefix("Value error, ")
    return message, f"see {SHIPPED_EXAMPLE} for a valid example"


def _explain_missing(loc: Loc) -> tuple[str, str]:
    parent, name = loc[:-1], str(loc[-1])
    where = f"under '{format_loc(parent)}'" if parent else "at the top level"
    owner = _model_at(parent)
    info = owner.model_fields.get(name) if owner is not None else None
    if info is not None and info.examples:
        return "missing required field", f"add '{name}: {info.examples[0]}' {where}"
    return "missing required field", f"add '{name}:' {where}, as in {SHIPPED_EXAMPLE}"


def _explain_unknown(loc: Loc) -> tuple[str, str]:
    parent, name = loc[:-1], str(loc[-1])
    if parent[:1] == ("router",) and _is_secret_name(name):
        return (
            "secrets are never inline in a topology file",
            "remove it, store the secret in an environment variable and put that variable's name "
            "in credentials.password_env",
        )
    listing = f"(allowed here: {', '.join(_allowed_fields(parent))})"
    guess = _closest_field(loc)
    fix = f"did you mean '{guess}'? {listing}" if guess is not None else f"remove it {listing}"
    return f"unknown field '{name}'", fix


def _allowed_fields(loc: Loc) -> list[str]:
    owner = _model_at(loc)
    return [n for n, f in owner.model_fields.items() if not f.exclude] if owner is not None else []


def _closest_field(loc: Loc) -> str | None:
    """The allowed field an unknown key at `loc` most likely misspells, if any is close enough."""
    close = difflib.get_close_matches(str(loc[-1]), _allowed_fields(loc[:-1]), n=1, cutoff=_CLOSE)
    return close[0] if close else None


def _explain_type(expected: str, loc: Loc, value: object, node: yaml.Node | None) -> tuple[str, str]:
    if value is None:
        owner = _model_at(loc[:-1]) if loc and isinstance(loc[-1], str) else None
        info = owner.model_fields.get(str(loc[-1])) if owner is not None else None
        example = f", e.g. {info.examples[0]}" if info is not None and info.examples else ""
        default = (
            " or delete the line to use the default" if info is not None and not info.is_required() else ""
        )
        if loc and isinstance(loc[-1], int):
            return f"has no value, expected {expected}", f"write {expected} here or delete the empty entry"
        return f"has no value, expected {expected}", f"give it a value{example}{default}"
    got = _describe_as_written(value, node) if _may_echo(loc) else _kind_of(value)
    message = f"expected {expected}, got {got}"
    if expected == "a string" and isinstance(value, bool | int | float) and isinstance(node, yaml.ScalarNode):
        return message, f'quote it: "{node.value}"'
    if expected in ("an integer", "a number") and isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return message, f"write {expected} here"
        return message, "remove the quotes"
    if expected == "an integer" and isinstance(value, float):
        return message, "write a whole number"
    if expected == "a list":
        return message, "write a list: one '- item' per line, or [a, b]"
    if expected == "a mapping":
        return message, "write a mapping: indented 'key: value' lines, or {key: value}"
    return message, f"write {expected} here"
