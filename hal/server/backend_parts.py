"""A server's run configuration extended with its registered backends' sections.

Both servers offer the registered operator sources (:func:`operator_parts`); the Jetson server
also offers every camera and motor backend (:mod:`hal.server.jetson.hardware`). Each backend's
config dataclass becomes one part of the run configuration, named by its ``section``: its flags
in ``--help``, its table in ``--config`` and in the report's ``config``. The run configuration's
type is built when the parser is (:func:`extend_config`), so a backend registered before then,
from any module, brings its flags without another module changing.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Iterable, Sequence

from hal.config import part, section_fields
from hal.devices.registry import Backend, backends

__all__ = ["is_settings_section", "section_parts", "offered_operator_backends", "operator_parts",
           "extend_config", "config_of", "has_part"]

Parts = list[tuple[str, type, Any]]

_lock = threading.Lock()
_types: dict[tuple, type] = {}


def is_settings_section(section: type) -> bool:
    """A :mod:`hal.config` section with at least one setting (a config with none, such as the
    simulator's world, which its server computes, is no part of the command line)."""
    return isinstance(getattr(section, "section", None), str) and any(
        True for _ in section_fields(section))


def section_parts(sections: Iterable[type], taken: set[str]) -> Parts:
    """(name, section, field) of each settings section, named by its ``section``; ``taken``
    (the names already used) gains them.

    Raises:
        ValueError: a section whose name is taken (the message names both).
    """
    parts: Parts = []
    for section in sections:
        if not is_settings_section(section):
            continue
        name = section.section
        if name in taken:
            raise ValueError(f"backend config {section.__name__}: section name {name!r} is taken; "
                             "give it its own section")
        taken.add(name)
        parts.append((name, section, part(section)))
    return parts


def offered_operator_backends(motors: Sequence[str]) -> tuple[Backend, ...]:
    """The registered operator sources a server with these motor backends offers: all but those
    that require motors it has not (the Go2's remote needs the ``go2`` motors)."""
    return tuple(b for b in backends("operator")
                 if not set(b.requires.get("motors", motors)).isdisjoint(motors))


def operator_parts(motors: Sequence[str], taken: set[str]) -> Parts:
    """The parts of the operator sources offered with ``motors`` (see
    :func:`offered_operator_backends`)."""
    sections: dict[type, None] = {}
    for backend in offered_operator_backends(motors):
        for section in (backend.config, *backend.uses):
            sections.setdefault(section, None)
    return section_parts(sections, taken)


def extend_config(base: type, name: str, parts: Parts) -> type:
    """``base`` (a frozen run configuration) with ``parts`` added: one type per set of parts, so
    two configurations parsed while the registry is unchanged compare equal."""
    key = (base, name, tuple((n, s) for n, s, _ in parts))
    with _lock:
        found = _types.get(key)
        if found is None:
            found = _types[key] = dataclasses.make_dataclass(name, parts, bases=(base,),
                                                             frozen=True)
    return found


def _part(config: Any, section: type) -> Any:
    """The run configuration's instance of ``section``, or None where it has none."""
    return next((getattr(config, f.name) for f in dataclasses.fields(config)
                 if type(getattr(config, f.name)) is section), None)


def config_of(config: Any, section: type) -> Any:
    """The run configuration's instance of ``section``, else the section's defaults."""
    found = _part(config, section)
    return section() if found is None else found


def has_part(config: Any, section: type) -> bool:
    """Whether ``section`` is a part of the run configuration (the command offers it)."""
    return _part(config, section) is not None
