"""Typed report sections: dataclasses that serialise to the run report's JSON and back.

A report section is a dataclass deriving from :class:`ReportSection`. Its fields are the JSON
keys (a field whose key is not a Python name, ``from``, says so with :func:`key`); a field made
with :func:`optional` is left out of the JSON while it is ``None`` (a section that a run without
that listener does not have), any other ``None`` is written as ``null``. ``to_dict`` gives the
JSON-ready dict, ``from_dict`` reads one back and refuses a missing or unknown key by name, and
:func:`json_schema` writes the JSON Schema (draft 2020-12) of a section from the same fields, so
the schema file in ``docs/`` is generated, never written by hand.

Supported field types: ``bool``, ``int``, ``float``, ``str``, ``Any``, ``X | None``, ``list[X]``,
``dict[str, X]`` and nested sections. ``dict[str, Any]`` marks content that is open by design
(counters keyed by name, a backend's own health record).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from typing import Any, ClassVar, TypeVar

__all__ = ["REPORT_VERSION", "ReportSection", "VersionedReport", "ReportFormatError", "key",
           "optional", "json_schema", "section_fields", "check_field", "dumps"]

S = TypeVar("S", bound="ReportSection")

_KEY = "report_key"
_OMIT_NONE = "report_omit_none"
_CONST = "report_const"  # the schema admits only the field's default (the report's version)


REPORT_VERSION = 1
"""The report files' schema version: raised when a key is renamed, removed or changes meaning
(adding an optional section keeps it)."""


class ReportFormatError(ValueError):
    """A report that does not have a section's shape (names the path and what was expected)."""


def key(name: str, **kwargs: Any) -> Any:
    """A field whose JSON key is ``name`` (for keys that are not Python names, e.g. ``from``)."""
    metadata = {**kwargs.pop("metadata", {}), _KEY: name}
    return dataclasses.field(metadata=metadata, **kwargs)


def optional(**kwargs: Any) -> Any:
    """A field left out of the JSON while it is ``None`` (the section a run may not have)."""
    metadata = {**kwargs.pop("metadata", {}), _OMIT_NONE: True}
    return dataclasses.field(default=None, metadata=metadata, **kwargs)


@functools.lru_cache(maxsize=None)
def section_fields(cls: type) -> tuple[tuple[str, str, Any, bool, bool], ...]:
    """(attribute, JSON key, resolved type, omitted while None, required) of each field."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        required = (f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING)  # type: ignore[misc]
        out.append((f.name, f.metadata.get(_KEY, f.name), hints[f.name],
                    bool(f.metadata.get(_OMIT_NONE)), required))
    return tuple(out)


class ReportSection:
    """Base of the report's dataclasses: ``to_dict`` / ``from_dict`` over the declared fields."""

    title: ClassVar[str] = ""  # the schema's title; the class name when empty

    def to_dict(self) -> dict[str, Any]:
        """The section as JSON-ready values, keys in field order."""
        out: dict[str, Any] = {}
        for name, json_key, _tp, omit_none, _required in section_fields(type(self)):
            value = getattr(self, name)
            if value is None and omit_none:
                continue
            out[json_key] = _dump(value)
        return out

    @classmethod
    def from_dict(cls: type[S], data: Any, path: str = "") -> S:
        """Read a section back from its JSON dict.

        Raises:
            ReportFormatError: a missing or unknown key, or a value of the wrong type (named
                with its path in the report).
        """
        where = path or cls.__name__
        if not isinstance(data, dict):
            raise ReportFormatError(f"{where}: expected an object, got {type(data).__name__}")
        spec = section_fields(cls)
        known = {json_key for _n, json_key, *_ in spec}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ReportFormatError(f"{where}: unknown keys {unknown}; valid: {sorted(known)}")
        values: dict[str, Any] = {}
        for name, json_key, tp, _omit_none, required in spec:
            if json_key not in data:
                if required:
                    raise ReportFormatError(f"{where}: missing key {json_key!r}")
                continue
            values[name] = _load(tp, data[json_key], f"{where}.{json_key}")
        return cls(**values)

    # The JSON view, read-only, for scripts written against the report as a dict: ``report["x"]``
    # is ``report.to_dict()["x"]``; a key the section does not have raises KeyError.
    def __getitem__(self, json_key: str) -> Any:
        return self.to_dict()[json_key]

    def __contains__(self, json_key: object) -> bool:
        return json_key in self.to_dict()

    def get(self, json_key: str, default: Any = None) -> Any:
        """``to_dict().get(json_key, default)``."""
        return self.to_dict().get(json_key, default)

    def keys(self) -> Any:
        """The JSON keys this section writes."""
        return self.to_dict().keys()


def check_field(cls: type, name: str, value: Any) -> None:
    """Refuse a value that is not of the declared type of ``cls``'s field ``name``.

    Raises:
        ValueError: an unknown field (the valid ones named).
        TypeError: a value of another type than the field's.
    """
    spec = {n: tp for n, _k, tp, *_ in section_fields(cls)}
    if name not in spec:
        raise ValueError(f"{cls.__name__} has no field {name!r}; valid: {sorted(spec)}")
    if not _is_instance(spec[name], value):
        raise TypeError(f"{cls.__name__}.{name}: expected {spec[name]}, got "
                        f"{type(value).__name__}")


def _is_instance(tp: Any, value: Any) -> bool:
    inner, nullable = _split_optional(tp)
    if value is None:
        return nullable or inner is Any
    if inner is Any:
        return True
    origin = typing.get_origin(inner)
    if origin is list:
        (item,) = typing.get_args(inner)
        return isinstance(value, list) and all(_is_instance(item, v) for v in value)
    if origin is dict:
        item = typing.get_args(inner)[1]
        return isinstance(value, dict) and all(_is_instance(item, v) for v in value.values())
    if inner is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if inner is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, inner)


@dataclasses.dataclass(kw_only=True)
class VersionedReport(ReportSection):
    """A report file's top level: carries the schema version it was written with."""

    report_version: int = dataclasses.field(default=REPORT_VERSION, metadata={_CONST: True})

    @classmethod
    def from_dict(cls: type[S], data: Any, path: str = "") -> S:
        """As :meth:`ReportSection.from_dict`, refusing a report of another version by name."""
        version = data.get("report_version") if isinstance(data, dict) else None
        if version is not None and version != REPORT_VERSION:
            raise ReportFormatError(f"{path or cls.__name__}: report_version {version!r}; this "
                                    f"reader knows version {REPORT_VERSION}")
        return super().from_dict(data, path)  # type: ignore[misc]


def _dump(value: Any) -> Any:
    if isinstance(value, ReportSection):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


def _split_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"report field type {tp}: only 'X | None' unions are supported")
        return rest[0], True
    return tp, False


def _load(tp: Any, value: Any, where: str) -> Any:
    inner, nullable = _split_optional(tp)
    if value is None:
        if nullable or inner is Any:
            return None
        raise ReportFormatError(f"{where}: null where {_type_name(inner)} was expected")
    if inner is Any:
        return value
    if isinstance(inner, type) and issubclass(inner, ReportSection):
        return inner.from_dict(value, where)
    origin = typing.get_origin(inner)
    if origin is list:
        if not isinstance(value, list):
            raise ReportFormatError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(inner)
        return [_load(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ReportFormatError(f"{where}: expected an object, got {type(value).__name__}")
        _key_type, item = typing.get_args(inner)
        return {k: _load(item, v, f"{where}.{k}") for k, v in value.items()}
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str)}.get(inner)
    if ok is None:
        raise TypeError(f"report field type {inner!r} at {where} is not supported")
    if not ok(value):
        raise ReportFormatError(f"{where}: expected {_type_name(inner)}, got {value!r}")
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def json_schema(cls: type[ReportSection], schema_id: str | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a section and every section it holds (``$defs``)."""
    defs: dict[str, Any] = {}
    root = _section_schema(cls, defs)
    out: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    if schema_id:
        out["$id"] = schema_id
    out.update(root)
    out["$defs"] = {name: defs[name] for name in sorted(defs)}
    return out


def _section_schema(cls: type[ReportSection], defs: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    consts = {f.name: f.default for f in dataclasses.fields(cls) if f.metadata.get(_CONST)}
    for name, json_key, tp, _omit_none, is_required in section_fields(cls):
        properties[json_key] = _type_schema(tp, defs)
        if name in consts:
            properties[json_key]["const"] = consts[name]
        if is_required:
            required.append(json_key)
    out: dict[str, Any] = {"title": cls.title or cls.__name__, "type": "object"}
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    if doc:
        out["description"] = " ".join(doc.split())
    out.update(properties=properties, required=required, additionalProperties=False)
    return out


def _type_schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    inner, nullable = _split_optional(tp)
    if inner is Any:
        return {}
    if isinstance(inner, type) and issubclass(inner, ReportSection):
        name = inner.__name__
        if name not in defs:
            defs[name] = {}  # placeholder against recursion
            defs[name] = _section_schema(inner, defs)
        schema: dict[str, Any] = {"$ref": f"#/$defs/{name}"}
        return {"anyOf": [schema, {"type": "null"}]} if nullable else schema
    origin = typing.get_origin(inner)
    if origin is list:
        schema = {"type": "array", "items": _type_schema(typing.get_args(inner)[0], defs)}
    elif origin is dict:
        item = _type_schema(typing.get_args(inner)[1], defs)
        schema = {"type": "object", "additionalProperties": item if item else True}
    else:
        names = {bool: "boolean", int: "integer", float: "number", str: "string"}
        if inner not in names:
            raise TypeError(f"report field type {inner!r} is not supported")
        schema = {"type": names[inner]}
    if nullable:
        schema["type"] = [schema["type"], "null"]
    return schema


def dumps(section: ReportSection, indent: int = 2) -> str:
    """The section as the report file's JSON text (NaN kept, as ``json.dumps`` writes it)."""
    return json.dumps(section.to_dict(), indent=indent, default=str) + "\n"
