"""The settings krabby-export and krabby-build-engine share, declared once.

Both build TensorRT engines with the same builder settings and report progress the same way;
each command composes these sections into its run configuration (:mod:`hal.config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hal.config import setting

__all__ = ["TensorRTBuildSection", "ProgressSection", "PRECISIONS"]

PRECISIONS = ("fp16", "fp32")


@dataclass(frozen=True)
class TensorRTBuildSection:
    """How TensorRT engines are built and checked."""

    section: ClassVar[str] = "tensorrt"
    title: ClassVar[str] = "TensorRT build"

    precision: str = setting("fp16", choices=PRECISIONS,
                             help="TensorRT engine precision; ONNX files are fp32")
    optimization_level: int = setting(3, metavar="L", help="TensorRT builder optimisation level 0-5")
    workspace_mib: int = setting(1024, metavar="MIB", help="TensorRT workspace limit in MiB")
    parity_samples: int = setting(32, metavar="N",
                                  help="random inputs per graph for the parity checks (krabby-export "
                                       "adds structured inputs and a 50-step GRU rollout)")


@dataclass(frozen=True)
class ProgressSection:
    """What the command says while it works."""

    section: ClassVar[str] = "progress"

    quiet: bool = setting(False, help="no progress lines")
    debug: bool = setting(False, help="show tracebacks and debug logging")
