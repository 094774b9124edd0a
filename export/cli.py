"""``krabby-export``: parkour checkpoint → ONNX graphs, TensorRT engines (when possible), manifest.

    krabby-export --checkpoint model.pt                      # next to the checkpoint
    krabby-export --checkpoint model.pt --output out/ --precision fp32 --robot a1
    krabby-export --checkpoint model.pt --require-engine     # on the Jetson: fail without TensorRT
    krabby-export --checkpoint model.pt --train-config env_cfg.json --camera-pitch-deg 22.5

Writes ``model.onnx`` (actor), ``model.depth.onnx`` (depth student only), ``model.plan`` /
``model.depth.plan`` (TensorRT present), and ``model.json`` (manifest with the parity report).
Exit status: 0 done, 1 a check or build failed, 2 bad input. Errors are one line, never a
traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from typing import ClassVar, Sequence

from export.settings import ProgressSection, TensorRTBuildSection
from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import FilesSection, PolicyFilesSection, RobotSection
from export.exporter import ExportError, ExportOptions, export_checkpoint

__all__ = ["build_parser", "main", "ExportConfig", "ExportSection", "CameraOverrideSection"]


@dataclass(frozen=True)
class ExportSection:
    """krabby-export's own settings: the training run's contract."""

    section: ClassVar[str] = "export"

    train_config: str | None = setting(None, aliases=("--train_config",), metavar="FILE",
                                       help="the run's training config: legged_gym's "
                                            "class_to_dict JSON dump or Isaac Lab's "
                                            "params/env.yaml; the manifest's training contract "
                                            "(rate, joint order, gains, camera, command ranges) "
                                            "comes from it")
    joint_order: str | None = setting(None, aliases=("--joint_order",),
                                      choices=("legged_gym", "isaac_lab", "robot"),
                                      help="joint order the policy was trained with, when no "
                                           "--train-config says it (default legged_gym: FR, FL, "
                                           "RR, RL x hip, thigh, calf; isaac_lab: hips, "
                                           "thighs, calves of FL, FR, RL, RR)")
    require_engine: bool = setting(False, help="fail (exit 1) when TensorRT engines cannot be "
                                               "built here")


@dataclass(frozen=True)
class CameraOverrideSection:
    """What the training config (or the robot definition) says about the training depth camera,
    replaced; the manifest's training_contract.notes name each override."""

    section: ClassVar[str] = "camera_override"
    title: ClassVar[str] = "camera overrides"

    camera_pitch_deg: float | None = setting(None, metavar="DEG",
                                             help="downward pitch of the training camera in "
                                                  "degrees (positive looks down), e.g. when the "
                                                  "config holds two readings that disagree")
    camera_hfov_deg: float | None = setting(None, metavar="DEG",
                                            help="horizontal field of view of the training camera "
                                                 "in degrees")
    camera_position: str | None = setting(None, metavar="X,Y,Z",
                                          help="mount of the training camera on the base in "
                                               "metres (x forward, z up), e.g. 0.355,0,0.065")


@dataclass(frozen=True)
class ExportConfig:
    """krabby-export's run configuration."""

    policy: PolicyFilesSection = part(PolicyFilesSection, only=("checkpoint",),
                                      required=("checkpoint",))
    files: FilesSection = part(FilesSection, only=("output",))
    robot: RobotSection = part(RobotSection)
    export: ExportSection = part(ExportSection)
    camera_override: CameraOverrideSection = part(CameraOverrideSection)
    tensorrt: TensorRTBuildSection = part(TensorRTBuildSection)
    progress: ProgressSection = part(ProgressSection)


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(
        ExportConfig, prog="krabby-export",
        description="Export a parkour checkpoint to ONNX (and TensorRT when it is installed and a "
                    "GPU is present), check parity against the torch reference, and write the "
                    "manifest. --output is a directory, or a path prefix (out/run7 -> "
                    "out/run7.onnx ...); by default next to the checkpoint, named after it.")


def _progress_printer(quiet: bool):
    if quiet:
        return None
    start_ns = time.monotonic_ns()

    def show(line: str) -> None:
        print(f"[{(time.monotonic_ns() - start_ns) / 1e9:6.1f} s] {line}", file=sys.stderr,
              flush=True)

    return show


def _summary(result) -> str:
    lines = [f"wrote {result.manifest_path}"]
    lines += [f"      {path}" for path in result.files]
    for backend in ("onnxruntime", "tensorrt"):
        report = result.parity.get(backend)
        if not report:
            continue
        worst = {f"{graph}.{name}": values["max_abs"] for graph, outputs in report["graphs"].items()
                 for name, values in outputs.items()}
        top = max(worst, key=worst.get)
        lines.append(f"parity torch vs {backend} ({report['precision']}): passed, worst max abs "
                     f"error {worst[top]:.3g} ({top})")
    for path in result.removed:
        lines.append(f"removed {path} (left from an earlier export, not part of this one)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the export; returns the exit status (0 ok, 1 failed check/build, 2 bad input)."""
    parser = build_parser()
    config = parse_cli(ExportConfig, argv, parser)
    logging.basicConfig(level=logging.DEBUG if config.progress.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        options = ExportOptions(camera_pitch_deg=config.camera_override.camera_pitch_deg,
                                camera_hfov_deg=config.camera_override.camera_hfov_deg,
                                camera_position=config.camera_override.camera_position,
                                output=config.files.output, robot=config.robot.robot,
                                precision=config.tensorrt.precision,
                                require_engine=config.export.require_engine,
                                parity_samples=config.tensorrt.parity_samples,
                                optimization_level=config.tensorrt.optimization_level,
                                workspace_mib=config.tensorrt.workspace_mib,
                                train_config=config.export.train_config, joint_order=config.export.joint_order)
        result = export_checkpoint(config.policy.checkpoint, options, _progress_printer(config.progress.quiet))
    except ExportError as exc:
        print(f"krabby-export: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("krabby-export: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI promise: one line, no traceback
        if config.progress.debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"krabby-export: error: unexpected {type(exc).__name__}: {first} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return 1
    print(_summary(result))
    if result.hint:
        print(result.hint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
