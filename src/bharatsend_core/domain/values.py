"""Cheap building blocks for the hot value objects: enum lookups and validated replacement.

The dispatch and receipt paths rebuild messages, parts and timeline entries
tens of thousands of times a second. Two stock tools dominate that cost:

- calling an enum class (``Status("sent")``) runs ``EnumMeta.__call__`` and
  ``Enum.__new__``, about 2 µs; :func:`enum_converter` answers from a dict;
- ``attrs.evolve`` re-runs ``__init__`` with every converter and validator,
  about 20 µs for a message. :func:`replace` copies the instance and runs
  the converters and validators of the *changed* fields only: the unchanged
  ones were checked when the original was built, and the object is frozen.

:func:`builder` gives a class's generated constructor that takes every field
by keyword and checks nothing, for storage adapters rebuilding values from
rows they wrote themselves (every value was validated on its way in, and the
schema's constraints hold it since); :func:`trusted` is the same as one call,
naming the missing and unknown fields when it refuses.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, TypeVar, cast

import attrs

__all__ = ["builder", "enum_converter", "replace", "trusted"]

E = TypeVar("E", bound=enum.Enum)
T = TypeVar("T")


def enum_converter(cls: type[E]) -> Callable[[Any], E]:
    """A converter equal to ``cls(value)`` that looks members and values up in a dict first."""
    table: dict[Any, E] = {}
    for member in cls:
        table[member.value] = member
        table[member] = member

    def convert(value: Any) -> E:
        try:
            return table[value]
        except (KeyError, TypeError):  # unhashable or unknown: let the enum say why
            return cls(value)

    convert.__name__ = f"to_{cls.__name__}"
    convert.__doc__ = f"``{cls.__name__}(value)``, from a lookup table."
    return convert


_Plan = tuple[
    Callable[[Any, Any], None],
    Callable[..., Any],
    tuple[str, ...],
    dict[str, tuple[Any, Any, "attrs.Attribute[Any]"]],
]
_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    """Per class: generated ``copy(source, target)`` and ``make(**fields)`` of every field,
    the field names, and each field's converter, validator and attribute.
    """
    plan = _PLANS.get(cls)
    if plan is None:
        fields = attrs.fields(cls)
        names = tuple(f.name for f in fields)
        # One straight-line function per class, the way attrs writes __init__:
        # a loop of getattr/setattr calls costs three times as much. ``make``
        # takes every field as a required keyword, so the interpreter's own
        # argument binding refuses a missing or unknown one; its helpers have
        # names no field would take (the fields are its parameters).
        copy = [f"    _bs_set(target, {n!r}, source.{n})" for n in names] or ["    pass"]
        make = [f"    _bs_set(_bs_obj, {n!r}, {n})" for n in names]
        namespace: dict[str, Any] = {
            "_bs_set": object.__setattr__,
            "_bs_new": object.__new__,
            "_bs_cls": cls,
        }
        keywords = "*, " + ", ".join(names) if names else ""
        source = "\n".join(
            [
                "def copy(source, target):",
                *copy,
                f"def make({keywords}):",
                "    _bs_obj = _bs_new(_bs_cls)",
                *make,
                "    return _bs_obj",
                "",
            ]
        )
        exec(source, namespace)  # noqa: S102
        plan = (
            namespace["copy"],
            namespace["make"],
            names,
            {f.name: (f.converter, f.validator, f) for f in fields},
        )
        _PLANS[cls] = plan
    return plan


def replace(instance: T, /, **changes: Any) -> T:
    """``attrs.evolve(instance, **changes)``, converting and validating only what changes.

    For frozen slotted attrs classes whose validators look at their own field
    only (a validator that reads another field must be re-run by the caller
    when that field changes). Unknown names raise ``TypeError`` as ``evolve`` does.

    Each (class, changed names) pair gets a straight-line function the first
    time, as :func:`_plan` does for whole instances: the state machine calls
    this a few times per message with the same few names, and a loop looking
    each name up cost twice as much.
    """
    cls = type(instance)
    evolve = _EVOLVERS.get((cls, *changes))
    if evolve is None:
        if len(_EVOLVERS) >= _EVOLVERS_MAX:
            return _replace_by_name(instance, changes)
        evolve = _evolver(cls, tuple(changes))
    return cast(T, evolve(instance, **changes))


_EVOLVERS: dict[tuple[Any, ...], Callable[..., Any]] = {}
#: Call sites name a handful of field sets; past this many, replace by name.
_EVOLVERS_MAX = 512


def _replace_by_name(instance: T, changes: dict[str, Any]) -> T:
    """:func:`replace` without generating code: copy, then set and check each change."""
    cls = type(instance)
    copy, _make, _names, by_name = _plan(cls)
    unknown = [name for name in changes if name not in by_name]
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {unknown[0]!r}")
    new = object.__new__(cls)
    copy(instance, new)
    for name, value in changes.items():
        converter = by_name[name][0]
        object.__setattr__(new, name, value if converter is None else converter(value))
    for name in changes:
        _converter, validator, attribute = by_name[name]
        if validator is not None:
            validator(new, attribute, getattr(new, name))
    return new


def _evolver(cls: type, changed: tuple[str, ...]) -> Callable[..., Any]:
    """The function behind :func:`replace` for ``cls`` and these changed field names."""
    _copy, _make, names, by_name = _plan(cls)
    unknown = [name for name in changed if name not in by_name]
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {unknown[0]!r}")
    namespace: dict[str, Any] = {
        "_bs_set": object.__setattr__,
        "_bs_new": object.__new__,
        "_bs_cls": cls,
    }
    keywords = f", *, {', '.join(changed)}" if changed else ""
    lines = [f"def evolve(_bs_source{keywords}):", "    _bs_obj = _bs_new(_bs_cls)"]
    for name in names:
        if name not in changed:
            lines.append(f"    _bs_set(_bs_obj, {name!r}, _bs_source.{name})")
            continue
        converter, _validator, _attribute = by_name[name]
        if converter is None:
            lines.append(f"    _bs_set(_bs_obj, {name!r}, {name})")
        else:
            namespace[f"_bs_c_{name}"] = converter
            lines.append(f"    _bs_set(_bs_obj, {name!r}, _bs_c_{name}({name}))")
    # Validators run once every change is in place, in the order given.
    for name in changed:
        _converter, validator, attribute = by_name[name]
        if validator is not None:
            namespace[f"_bs_v_{name}"] = validator
            namespace[f"_bs_a_{name}"] = attribute
            lines.append(f"    _bs_v_{name}(_bs_obj, _bs_a_{name}, _bs_obj.{name})")
    lines += ["    return _bs_obj", ""]
    exec("\n".join(lines), namespace)  # noqa: S102
    evolve: Callable[..., Any] = namespace["evolve"]
    _EVOLVERS[(cls, *changed)] = evolve
    return evolve


def trusted(cls: type[T], /, **values: Any) -> T:
    """An instance of a frozen slotted attrs class from already-checked values, every field given.

    No converter or validator runs: pass domain-typed values (enums, tuples).
    A missing or unknown field raises ``TypeError``.
    """
    _copy, make, names, by_name = _plan(cls)
    try:
        return cast(T, make(**values))
    except TypeError:
        missing = sorted(set(names) - set(values))
        unknown = sorted(set(values) - set(by_name))
        raise TypeError(f"{cls.__name__}: missing {missing}, unknown {unknown}") from None


def builder(cls: type[T]) -> Callable[..., T]:
    """:func:`trusted` for one class, as a function of the fields: ``builder(Part)(index=0, ...)``.

    For the loops that rebuild rows by the thousand: it skips packing the
    fields into a dict and out again, half the cost of a small class.
    """
    return cast(Callable[..., T], _plan(cls)[1])
