"""Read a training run's config dump as plain data: one loader for every reader of these files.

Two formats of this family, recognised by content (:func:`dump_kind`):

- **legged_gym** (extreme-parkour and its forks): the env config turned into a dict by
  ``legged_gym.utils.helpers.class_to_dict`` and written as JSON (``control``, ``init_state``,
  ``sim``, ``depth``, ``domain_rand`` ... at the top level).
- **Isaac Lab**: the run's ``params/env.yaml`` (``decimation``, ``sim``, ``scene``, ``actions``,
  ``commands``, ``events`` ...), written by ``isaaclab.utils.io.dump_yaml`` with python tags such as
  ``!!python/tuple`` and ``!!python/name:``; they are read as plain lists, mappings and strings.

The training contract (:mod:`compute.parkour.train_config`) and the domain-randomisation reader both
start from :func:`read_config_dump`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from compute.parkour.contract import ContractError

__all__ = ["DUMP_KINDS", "read_config_dump", "dump_kind", "env_config", "lookup", "nominal",
           "is_range"]

DUMP_KINDS = ("legged_gym", "isaac_lab")
_MISSING = object()


def read_config_dump(path: str | Path) -> dict[str, Any]:
    """The config dump at ``path`` as a dict (JSON by the ``.json`` suffix, YAML otherwise).

    Raises:
        ContractError: no such file, not valid JSON/YAML, or not a mapping at the top level.
    """
    path = Path(path)
    if not path.is_file():
        raise ContractError(f"--train-config {path}: no such file")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(f"--train-config {path}: not valid JSON: {exc}") from None
    else:
        data = _load_yaml(text, path)
    if not isinstance(data, Mapping):
        raise ContractError(f"--train-config {path}: expected a mapping at the top level, found "
                            f"{type(data).__name__}")
    return dict(data)


def dump_kind(data: Mapping[str, Any], where: str = "training config") -> str:
    """``"legged_gym"`` or ``"isaac_lab"`` (see the module docstring).

    Raises:
        ContractError: neither, naming the keys each needs and the top-level keys found.
    """
    if "control" in data and "init_state" in data:
        return "legged_gym"
    if "scene" in data and "decimation" in data:
        return "isaac_lab"
    raise ContractError(f"{where}: neither a legged_gym config dump (control, init_state) nor an "
                        f"Isaac Lab env.yaml (scene, decimation); top-level keys: "
                        f"{sorted(data)[:12]}")


def env_config(data: Mapping[str, Any],
               where: str = "training config") -> tuple[str, Mapping[str, Any], str]:
    """The env config in ``data``: (kind, the mapping, its key or ``""`` at the top level).

    A run's dump is the env config itself, or a wrapper holding it one level down (for example
    ``{"env_cfg": {...}, "train_cfg": {...}}``); the first mapping that :func:`dump_kind`
    recognises is taken.

    Raises:
        ContractError: no env config at the top level or one level down.
    """
    try:
        return dump_kind(data, where), data, ""
    except ContractError as exc:
        for key, value in data.items():
            if isinstance(value, Mapping):
                try:
                    return dump_kind(value), value, str(key)
                except ContractError:
                    continue
        raise exc


def _load_yaml(text: str, path: Path) -> Any:
    from hal.optional import require

    yaml = require("yaml", "reading Isaac Lab training configs")

    class Loader(yaml.SafeLoader):
        """Isaac Lab dumps tuples, slices and callables with python tags; read them as data."""

    def python_tag(loader, _suffix, node):
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        return loader.construct_scalar(node)

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", python_tag)
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ContractError(f"--train-config {path}: not valid YAML: {exc}") from None


def lookup(data: Mapping[str, Any], dotted: str, default: Any = _MISSING) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; ``default`` when a key is missing (error without one).

    Raises:
        ContractError: a key is missing and no default was given.
    """
    node: Any = data
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            if default is _MISSING:
                raise ContractError(f"training config: {dotted} is missing")
            return default
        node = node[key]
    return node


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def is_range(value: Any) -> bool:
    """True for a ``[lo, hi]`` pair of numbers (how these configs spell a randomised value)."""
    return (isinstance(value, (list, tuple)) and len(value) == 2
            and all(_is_number(v) for v in value))


def nominal(value: Any, what: str) -> float:
    """A number, or the middle of a ``[lo, hi]`` randomisation range (training samples it
    uniformly; the middle is the centre of what the policy saw, taken as the nominal value).

    Raises:
        ContractError: neither, naming ``what`` and the value.
    """
    if is_range(value):
        return (float(value[0]) + float(value[1])) / 2.0
    if not _is_number(value):
        raise ContractError(f"training config: {what} must be a number or [lo, hi], found "
                            f"{value!r}")
    return float(value)
