"""The export manifest (``model.json``), read side: what an engine must match before it runs.

``krabby-export`` writes ``model.json`` next to ``model.onnx``, ``model.depth.onnx`` and (with
TensorRT) ``model.plan``/``model.depth.plan``. The runtime opens engines through it and refuses
one whose tensors, robot or build platform differ. The file is JSON (never pickle)::

    {
      "format_version": 1,
      "robot": {...RobotConfig.summary()...},
      "precision": "fp32",
      "graphs": {
        "actor": {"inputs":  {"obs": {"shape": [1, 753], "dtype": "float32"},
                              "depth_latent": {"shape": [1, 32], "dtype": "float32"}},
                  "outputs": {"actions": {"shape": [1, 12], "dtype": "float32"}},
                  "files": {"onnx": "model.onnx", "tensorrt": "model.plan"}},
        "depth": {...}
      },
      "files": {"model.onnx": {"sha256": "...", "bytes": 1234}, ...},
      "versions": {"torch": "2.13.0", "onnx": "1.23.2", "tensorrt": "10.3.0"},
      "tensorrt": {"version": "10.3.0", "device_name": "Orin"},      (null without plans)
      "parity": {...}, "observation_layout": {...}, ...
    }

Keys this reader does not know are kept in :attr:`Manifest.extra`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Mapping

import numpy as np

from engines.base import EngineMismatchError, TensorSpec

__all__ = [
    "MANIFEST_FORMAT_VERSION", "ManifestError", "GraphSpec", "FileRecord", "Manifest",
    "load_manifest", "manifest_path_for", "sha256_file",
]

MANIFEST_FORMAT_VERSION = 1
_KNOWN = {"format_version", "robot", "precision", "graphs", "files", "versions", "tensorrt",
          "parity"}


class ManifestError(ValueError):
    """The manifest file is missing, unreadable, or a field is absent or malformed."""


@dataclass(frozen=True)
class GraphSpec:
    """One exported graph: its tensors (in order) and its files by format (onnx, tensorrt)."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    files: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FileRecord:
    sha256: str
    bytes: int | None = None


@dataclass(frozen=True)
class Manifest:
    """A parsed ``model.json``; see the module docstring for the format."""

    path: Path
    format_version: int
    robot: Mapping[str, Any]
    graphs: Mapping[str, GraphSpec]
    files: Mapping[str, FileRecord]
    precision: str = "fp32"
    versions: Mapping[str, str | None] = field(default_factory=dict)
    tensorrt: Mapping[str, Any] | None = None
    parity: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def graph(self, name: str) -> GraphSpec:
        if name not in self.graphs:
            raise ManifestError(f"{self.path}: no {name!r} graph; it has {sorted(self.graphs)}")
        return self.graphs[name]

    def graph_for_file(self, filename: str | Path) -> str | None:
        """The graph a model file belongs to (by the manifest's file lists), or None."""
        name = Path(filename).name
        for graph in self.graphs.values():
            if name in graph.files.values():
                return graph.name
        return None

    def verify_file(self, model_path: str | Path) -> None:
        """Check ``model_path``'s sha256 against the manifest.

        Raises:
            EngineMismatchError: the file is not listed or its digest differs.
        """
        model_path = Path(model_path)
        record = self.files.get(model_path.name)
        if record is None:
            raise EngineMismatchError(f"{model_path.name} is not listed in {self.path} (files: "
                                      f"{sorted(self.files)}); re-export with krabby-export")
        digest = sha256_file(model_path)
        if digest != record.sha256:
            raise EngineMismatchError(f"{model_path} has sha256 {digest[:12]}…, the manifest "
                                      f"{self.path} records {record.sha256[:12]}…: the file was "
                                      "replaced or corrupted; re-export with krabby-export")

    def check_robot(self, robot: Any) -> None:
        """Refuse a manifest exported for another robot, other dimensions or joint order.

        Args:
            robot: a :class:`hal.robot.RobotConfig`.

        Raises:
            EngineMismatchError: naming every field that differs, with both values.
        """
        want = robot.summary()
        have = self.robot
        problems: list[str] = []
        for key in ("name", "action_dim", "joint_names_policy", "foot_names", "action_scale",
                    "action_clip", "default_angles"):
            if key not in want:
                continue
            if key not in have:
                problems.append(f"{key}: missing from the manifest")
                continue
            if not _same(have[key], want[key]):
                problems.append(f"{key}: manifest {have[key]!r} != robot {want[key]!r}")
        if problems:
            raise EngineMismatchError(
                f"{self.path} was exported for robot {have.get('name')!r}, which does not match "
                f"robot {robot.name!r} ({robot.source}): " + "; ".join(problems)
                + ". Export the checkpoint for this robot (krabby-export --robot ...)")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return a == b


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_path_for(model_path: str | Path) -> Path:
    """Where the manifest of a model file lives: ``model.depth.onnx`` -> ``model.json``."""
    model_path = Path(model_path)
    stem = model_path.name.split(".", 1)[0]
    return model_path.with_name(f"{stem}.json")


def _field(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ManifestError(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        raise ManifestError(f"{where}.{key}: expected {'/'.join(k.__name__ for k in kinds)}, "
                            f"found {value!r}")
    return value


def _tensors(data: Mapping[str, Any], where: str) -> tuple[TensorSpec, ...]:
    specs = []
    for name, entry in data.items():
        here = f"{where}.{name}"
        if not isinstance(entry, Mapping):
            raise ManifestError(f"{here}: expected {{shape, dtype}}, found {entry!r}")
        shape = _field(entry, "shape", list, here)
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            raise ManifestError(f"{here}.shape: expected a list of integers, found {shape!r}")
        dtype = _field(entry, "dtype", str, here)
        try:
            np_dtype = np.dtype(dtype)
        except TypeError:
            raise ManifestError(f"{here}.dtype: {dtype!r} is not a numpy dtype name") from None
        specs.append(TensorSpec(str(name), tuple(shape), np_dtype))
    return tuple(specs)


def load_manifest(path: str | Path, *, graphs: Collection[str] | None = None) -> Manifest:
    """Read and validate ``model.json``.

    Args:
        path: The manifest file.
        graphs: The graph names the caller's policy defines; a manifest naming another graph is
            refused. None accepts any name: engines know no policy, the policy side passes its
            own (``compute.parkour.graphs.GRAPHS``).

    Raises:
        ManifestError: the file is missing or not JSON, the format version is unknown, a field
            is missing or malformed, or a graph is not one of ``graphs``; the message names the
            file and the field.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} does not exist; export with krabby-export")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not a readable JSON manifest: {exc}") from None
    if not isinstance(data, Mapping):
        raise ManifestError(f"{path}: expected a JSON object, found {type(data).__name__}")
    where = str(path)
    version = _field(data, "format_version", int, where)
    if version > MANIFEST_FORMAT_VERSION or version < 1:
        raise ManifestError(f"{path}: format_version {version} is not supported (this krabby reads "
                            f"1..{MANIFEST_FORMAT_VERSION}); upgrade krabby or re-export")
    robot = _field(data, "robot", dict, where)
    graphs_raw = _field(data, "graphs", dict, where)
    graph_specs: dict[str, GraphSpec] = {}
    for gname, graw in graphs_raw.items():
        here = f"{where}.graphs.{gname}"
        if graphs is not None and gname not in graphs:
            raise ManifestError(f"{here}: unknown graph; valid: {list(graphs)}")
        if not isinstance(graw, Mapping):
            raise ManifestError(f"{here}: expected an object, found {graw!r}")
        files = graw.get("files", {})
        if not isinstance(files, Mapping) or not all(isinstance(v, str) for v in files.values()):
            raise ManifestError(f"{here}.files: expected {{format: filename}}, found {files!r}")
        graph_specs[gname] = GraphSpec(
            gname, _tensors(_field(graw, "inputs", dict, here), f"{here}.inputs"),
            _tensors(_field(graw, "outputs", dict, here), f"{here}.outputs"), dict(files))
    files: dict[str, FileRecord] = {}
    for fname, fraw in _field(data, "files", dict, where).items():
        here = f"{where}.files.{fname}"
        if not isinstance(fraw, Mapping):
            raise ManifestError(f"{here}: expected {{sha256, bytes}}, found {fraw!r}")
        size = fraw.get("bytes")
        files[fname] = FileRecord(_field(fraw, "sha256", str, here),
                                  int(size) if isinstance(size, int) else None)
    versions = data.get("versions", {})
    tensorrt = data.get("tensorrt")
    if tensorrt is not None and not isinstance(tensorrt, Mapping):
        raise ManifestError(f"{where}.tensorrt: expected an object or null, found {tensorrt!r}")
    return Manifest(
        path=path, format_version=version, robot=dict(robot), graphs=graph_specs, files=files,
        precision=str(data.get("precision", "fp32")),
        versions=dict(versions) if isinstance(versions, Mapping) else {},
        tensorrt=dict(tensorrt) if tensorrt is not None else None,
        parity=dict(data.get("parity") or {}),
        extra={k: v for k, v in data.items() if k not in _KNOWN},
    )
