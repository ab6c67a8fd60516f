"""Request and response models: one definition gives validation, JSON and OpenAPI.

A model is an attrs class whose fields are made with :func:`prop`. The
constraints given to ``prop`` are checked when a request is structured and are
written into the OpenAPI document, so the document can never drift from what
the handlers accept. Structuring is strict: a JSON string is never turned into
a number, a number never into a string, unknown keys are refused, and every
error names the field it is about.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

from bharatsend_core.domain.errors import InvalidArgument

__all__ = [
    "SCHEMA_KEY",
    "json_schema",
    "parse_query",
    "prop",
    "structure",
    "unstructure",
]

T = TypeVar("T")

#: The attrs metadata key holding a field's JSON Schema keywords.
SCHEMA_KEY: Final = "openapi"

_NUMERIC_BOUNDS: Final = ("minimum", "maximum")


def prop(
    default: Any = attrs.NOTHING,
    *,
    description: str = "",
    min_length: int | None = None,
    max_length: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    pattern: str | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    example: Any = None,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """An attrs field whose constraints are both enforced and published."""
    schema: dict[str, Any] = {}
    if description:
        schema["description"] = description
    for key, value in (
        ("minLength", min_length),
        ("maxLength", max_length),
        ("minimum", minimum),
        ("maximum", maximum),
        ("pattern", pattern),
        ("minItems", min_items),
        ("maxItems", max_items),
        ("example", example),
    ):
        if value is not None:
            schema[key] = value
    checks = {k: v for k, v in schema.items() if k not in ("description", "example")}
    validator = _validator(checks) if checks else None
    if factory is not None:
        return attrs.field(factory=factory, validator=validator, metadata={SCHEMA_KEY: schema})
    return attrs.field(default=default, validator=validator, metadata={SCHEMA_KEY: schema})


def _validator(checks: Mapping[str, Any]) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    compiled = re.compile(checks["pattern"]) if "pattern" in checks else None

    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        name = attribute.name
        if isinstance(value, str):
            if len(value) < checks.get("minLength", 0):
                raise InvalidArgument(
                    f"{name} must be at least {checks['minLength']} characters", field=name
                )
            if len(value) > checks.get("maxLength", len(value)):
                raise InvalidArgument(
                    f"{name} must be at most {checks['maxLength']} characters", field=name
                )
            if compiled is not None and not compiled.fullmatch(value):
                raise InvalidArgument(f"{name} has an invalid format", field=name)
        elif isinstance(value, int) and not isinstance(value, bool):
            if value < checks.get("minimum", value):
                raise InvalidArgument(f"{name} must be at least {checks['minimum']}", field=name)
            if value > checks.get("maximum", value):
                raise InvalidArgument(f"{name} must be at most {checks['maximum']}", field=name)
        elif isinstance(value, list | tuple):
            if len(value) < checks.get("minItems", 0):
                raise InvalidArgument(
                    f"{name} needs at least {checks['minItems']} item(s)", field=name
                )
            if len(value) > checks.get("maxItems", len(value)):
                raise InvalidArgument(
                    f"{name} takes at most {checks['maxItems']} items", field=name
                )

    return check


# --------------------------------------------------------------------------- structuring


def _strict(kind: type, label: str) -> Callable[[Any, type], Any]:
    def hook(value: Any, _type: type) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {label}, got a boolean")
        if not isinstance(value, kind):
            raise TypeError(f"expected {label}")
        return value

    return hook


def _json_object(value: Any, _type: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("expected a JSON object")
    return value


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(str, _strict(str, "a string"))
    converter.register_structure_hook(int, _strict(int, "an integer"))
    converter.register_structure_hook(bool, _strict(bool, "true or false"))

    def is_dict(t: Any) -> bool:
        return get_origin(t) is dict

    converter.register_structure_hook_func(is_dict, _json_object)

    def is_list(t: Any) -> bool:
        return get_origin(t) in (list, tuple)

    def list_hook(t: Any) -> Callable[[Any, Any], Any]:
        (item,) = get_args(t)[:1]

        def hook(value: Any, _type: Any) -> Any:
            if not isinstance(value, list):
                raise TypeError("expected a JSON array")
            items, errors = [], []
            for index, raw in enumerate(value):
                try:
                    items.append(converter.structure(raw, item))
                except Exception as exc:
                    exc.add_note(IterableValidationNote(f"@ index {index}", index, item))
                    errors.append(exc)
            if errors:
                raise IterableValidationError("invalid items", errors, t)
            return tuple(items) if get_origin(t) is tuple else items

        return hook

    converter.register_structure_hook_factory(is_list, list_hook)
    converter.register_unstructure_hook(datetime, _iso)
    return converter


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_converter: Final = _make_converter()


def structure(data: Any, model: type[T]) -> T:
    """A model from parsed JSON, or ``InvalidArgument`` naming the first bad field."""
    if not isinstance(data, dict):
        raise InvalidArgument("the request body must be a JSON object", field="body")
    try:
        return _converter.structure(data, model)
    except InvalidArgument:
        raise
    except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as exc:
        path, message = _first(exc)
        raise InvalidArgument(message, field=path or None) from None
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(str(exc), field="body") from None


def _first(exc: BaseException, path: str = "") -> tuple[str, str]:
    """The path and message of the first leaf error inside a cattrs error group."""
    if isinstance(exc, ForbiddenExtraKeysError):
        extra = sorted(exc.extra_fields)[0]
        return _join(path, extra), f"unknown field {extra!r}"
    if isinstance(exc, InvalidArgument):
        return _join(path, exc.field or ""), exc.message
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            step = ""
            for note in getattr(inner, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    step = note.name
                elif isinstance(note, IterableValidationNote):
                    step = f"[{note.index}]"
            sub = path + step if step.startswith("[") else _join(path, step)
            return _first(inner, sub)
    if isinstance(exc, KeyError):
        return path, f"{path.rsplit('.', 1)[-1] or 'a field'} is required"
    return path, str(exc) or type(exc).__name__


def _join(path: str, name: str) -> str:
    if not name:
        return path
    return f"{path}.{name}" if path else name


def unstructure(value: Any) -> Any:
    """Plain JSON-ready data from a model (datetimes as ISO 8601 in UTC)."""
    return _converter.unstructure(value)


# --------------------------------------------------------------------------- query strings


def parse_query(params: Mapping[str, list[str]], model: type[T]) -> T:
    """A query model from a query string; values are converted by the field types."""
    fields = {f.name: f for f in attrs.fields(model)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(model)
    values: dict[str, Any] = {}
    for name, raw in params.items():
        if name not in fields:
            raise InvalidArgument(f"unknown query parameter {name!r}", field=name)
        if len(raw) != 1:
            raise InvalidArgument(f"give {name} once", field=name)
        values[name] = _from_text(raw[0], hints[name], name)
    for name, attribute in fields.items():
        if attribute.default is attrs.NOTHING and name not in values:
            raise InvalidArgument(f"{name} is required", field=name)
    try:
        return model(**values)
    except TypeError as exc:
        raise InvalidArgument(str(exc), field=None) from None


def _from_text(text: str, hint: Any, name: str) -> Any:
    base = _without_none(hint)
    if base is int:
        if not re.fullmatch(r"-?\d{1,18}", text):
            raise InvalidArgument(f"{name} must be an integer", field=name)
        return int(text)
    if base is bool:
        if text not in ("true", "false"):
            raise InvalidArgument(f"{name} must be true or false", field=name)
        return text == "true"
    if base is datetime:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidArgument(
                f"{name} must be an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z", field=name
            ) from None
        if parsed.tzinfo is None:
            raise InvalidArgument(f"{name} needs a time zone (Z or +05:30)", field=name)
        return parsed
    if get_origin(base) is Literal:
        if text not in get_args(base):
            choices = ", ".join(get_args(base))
            raise InvalidArgument(f"{name} must be one of {choices}", field=name)
        return text
    return text


def _without_none(hint: Any) -> Any:
    if get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


# --------------------------------------------------------------------------- JSON Schema


def json_schema(hint: Any, components: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema (OpenAPI 3.1) of a type; attrs classes go to ``components``."""
    if hint is Any or hint is object:
        return {}
    if hint is str:
        return {"type": "string"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is datetime:
        return {"type": "string", "format": "date-time"}
    if hint is type(None):
        return {"type": "null"}
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [json_schema(a, components) for a in args]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (list, tuple):
        return {"type": "array", "items": json_schema(args[0], components)}
    if origin is dict or hint is dict:
        schema: dict[str, Any] = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            schema["additionalProperties"] = json_schema(args[1], components)
        return schema
    if attrs.has(hint):
        name = hint.__name__
        if name not in components:
            components[name] = {}  # reserve: recursive models terminate
            components[name] = _object_schema(hint, components)
        return {"$ref": f"#/components/schemas/{name}"}
    raise TypeError(f"no JSON Schema for {hint!r}")


def _object_schema(model: type, components: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(model)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(model):
        schema = dict(json_schema(hints[field.name], components))
        extra = dict(field.metadata.get(SCHEMA_KEY, {}))
        if extra:
            if "$ref" in schema:
                schema = {"allOf": [schema]}
            if "anyOf" in schema:
                # Constraints apply to the non-null branch.
                branches = [
                    {**b, **_applicable(extra, b)} if b.get("type") != "null" else b
                    for b in schema["anyOf"]
                ]
                schema["anyOf"] = branches
                if "description" in extra:
                    schema["description"] = extra["description"]
            else:
                schema.update(_applicable(extra, schema) | _notes(extra))
        properties[field.name] = schema
        if field.default is attrs.NOTHING:
            required.append(field.name)
    result: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if model.__doc__:
        result["description"] = model.__doc__.strip().splitlines()[0]
    if required:
        result["required"] = required
    return result


def _applicable(extra: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    keys = {
        "string": ("minLength", "maxLength", "pattern"),
        "integer": _NUMERIC_BOUNDS,
        "array": ("minItems", "maxItems"),
    }.get(str(kind), ())
    return {k: v for k, v in extra.items() if k in keys}


def _notes(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in extra.items() if k in ("description", "example")}
