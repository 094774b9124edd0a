"""The write side of ``model.json``: built here, validated by the runtime's own reader.

The format is the one :mod:`engines.manifest` reads (``load_manifest``, ``Manifest.check_robot``):
``format_version``, ``robot`` (``RobotConfig.summary()``: name, joint order, default angles, action
scale and clip, dims), ``precision``, ``graphs`` (tensors and files per graph), ``files`` (sha256
and size), ``versions``, ``tensorrt`` (version and GPU that built the plans, or null) and
``parity``; plus ``observation_layout``, ``source`` (the checkpoint) and ``export`` (settings).
:func:`write_manifest` writes through a temporary file, reads it back with
``load_policy_manifest`` and only then renames it into place, so a manifest on disk always parses.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from compute.parkour.graphs import load_policy_manifest
from compute.parkour.layout import ObservationLayout
from engines.manifest import MANIFEST_FORMAT_VERSION, Manifest, sha256_file

__all__ = ["collect_versions", "file_record", "build_manifest", "write_manifest"]


def _version(module: str) -> str | None:
    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        mod = sys.modules.get(module)
        return getattr(mod, "__version__", None) if mod is not None else None


def collect_versions(tensorrt_version: str | None = None) -> dict[str, str | None]:
    """Versions of everything that shaped the artefacts (None where not installed)."""
    torch = sys.modules.get("torch")
    return {
        "krabby": _version("krabby"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": getattr(torch, "__version__", None) if torch is not None else _version("torch"),
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "tensorrt": tensorrt_version,
    }


def file_record(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def build_manifest(*, robot: Any, policy: Any, contract: Mapping[str, Any], graphs: Mapping[str, Mapping[str, Any]],
                   files: Mapping[str, Path], precision: str,
                   tensorrt: Mapping[str, Any] | None, parity: Mapping[str, Any],
                   versions: Mapping[str, str | None],
                   export_settings: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as a JSON-ready dict.

    Args:
        robot: the :class:`hal.robot.RobotConfig` the checkpoint was exported for.
        policy: the :class:`compute.parkour.checkpoint.LoadedPolicy`.
        contract: the training contract (``TrainingContract.to_dict()``).
        graphs: per graph (``"actor"``, ``"depth"``): ``{"inputs", "outputs", "files"}``.
        files: every artefact by file name (hashed here).
        precision: the precision of the engines written (``"fp32"`` when only ONNX).
        tensorrt: the build record (``version``, ``device_name``, settings) or None.
        parity: the parity reports.
        versions: from :func:`collect_versions`.
        export_settings: opset, requested precision and the like.
    """
    return {
        "format_version": MANIFEST_FORMAT_VERSION,
        "kind": policy.kind,
        "robot": robot.summary(),
        "training_contract": dict(contract),
        "precision": precision,
        "graphs": {name: dict(spec) for name, spec in graphs.items()},
        "files": {name: file_record(path) for name, path in sorted(files.items())},
        "versions": dict(versions),
        "tensorrt": dict(tensorrt) if tensorrt is not None else None,
        "parity": dict(parity),
        "observation_layout": ObservationLayout.from_robot(robot).to_dict(),
        "source": {
            "checkpoint": policy.path.name,
            "sha256": policy.sha256,
            "iteration": policy.iteration,
            "kind": policy.kind,
            "synthetic": policy.synthetic,
        },
        "export": {
            "tool": "krabby-export",
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **dict(export_settings),
        },
    }


def write_manifest(data: Mapping[str, Any], path: Path) -> Manifest:
    """Write ``data`` to ``path`` atomically after checking that the runtime's reader accepts it.

    Raises:
        engines.manifest.ManifestError: the reader refuses the content (nothing is written).
        OSError: the file cannot be written.
    """
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        load_policy_manifest(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return load_policy_manifest(path)
