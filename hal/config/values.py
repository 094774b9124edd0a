"""A config file's values: the file read, and each value turned into its setting's type.

Used by :mod:`hal.config.parser`; a value that cannot be its setting's is a :class:`ConfigError`
naming the file, the table and the key, never a traceback later.
"""

from __future__ import annotations

import enum
import types
import typing
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "read_config_file", "coerce", "strip_optional"]


class ConfigError(ValueError):
    """A setting's value, or a config file, that cannot work; the message names it."""


def strip_optional(kind: Any) -> Any:
    """``X`` of ``X | None`` (any other type as it is)."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return kind


def read_config_file(path: str) -> dict[str, Any]:
    """The TOML file ``--config`` names, as tables.

    Raises:
        ConfigError: an unreadable file or one that is not TOML (named).
    """
    from hal.toml_compat import tomllib

    try:
        with open(path, "rb") as stream:
            return tomllib.load(stream)
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML: {exc}") from None


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               Path: "a path (a string)"}


def coerce(value: Any, kind: Any, where: str) -> Any:
    """A config file's (or the environment's) value as the field's type.

    A value of another type is refused here, by name, rather than passed on to fail later with a
    traceback (``robot = 5``) or be silently truncated (``action_dim = 12.5``).
    """
    kind = strip_optional(kind)
    origin = typing.get_origin(kind)
    if value is None:
        return None
    if origin in (tuple, list):
        items = value if isinstance(value, (list, tuple)) else None
        if items is None and origin is list:
            items = [value]  # one item for a repeatable flag: faults = "estop@1"
        if items is None:
            raise ConfigError(f"{where} = {value!r}: give a list")
        args = [a for a in typing.get_args(kind) if a is not Ellipsis]
        item_kind = args[0] if args else Any
        coerced = [coerce(item, item_kind, f"{where}[{i}]") for i, item in enumerate(items)]
        return tuple(coerced) if origin is tuple else coerced
    if kind in _TYPE_NAMES:
        return _coerce_scalar(value, kind, where)
    try:
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} = {value!r}: {exc}") from None
    return value


def _coerce_scalar(value: Any, kind: type, where: str) -> Any:
    """``value`` as ``kind`` (str, int, float, bool or Path); the environment's text is parsed."""
    wrong = ConfigError(f"{where} = {value!r}: give {_TYPE_NAMES[kind]}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise wrong
    if isinstance(value, bool):
        raise wrong
    if kind in (str, Path):
        if not isinstance(value, (str, Path)):
            raise wrong
        return kind(value)
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            raise wrong from None
    if kind is int and isinstance(value, int):
        return value
    if kind is float and isinstance(value, (int, float)):
        return float(value)
    raise wrong
