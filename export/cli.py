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
from typing import Sequence

from export.exporter import ExportError, ExportOptions, export_checkpoint

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="krabby-export",
        description="Export a parkour checkpoint to ONNX (and TensorRT when it is installed and a "
                    "GPU is present), check parity against the torch reference, and write the "
                    "manifest the runtime opens engines through.")
    parser.add_argument("--checkpoint", required=True, help="the checkpoint (.pt) to export")
    parser.add_argument("--output", default=None,
                        help="directory, or path prefix (out/run7 → out/run7.onnx ...); default: "
                             "next to the checkpoint, named after it")
    parser.add_argument("--robot", default="go2",
                        help="robot the checkpoint was trained for: go2, a1 or a TOML file "
                             "(default go2)")
    parser.add_argument("--train-config", "--train_config", dest="train_config", default=None,
                        metavar="FILE",
                        help="the run's training config: legged_gym's class_to_dict JSON dump or "
                             "Isaac Lab's params/env.yaml; the manifest's training contract (rate, "
                             "joint order, gains, camera, command ranges) comes from it")
    parser.add_argument("--joint-order", "--joint_order", dest="joint_order", default=None,
                        choices=("legged_gym", "isaac_lab", "robot"),
                        help="joint order the policy was trained with, when no --train-config "
                             "says it (default legged_gym: FR, FL, RR, RL x hip, thigh, calf; "
                             "isaac_lab: hips, thighs, calves of FL, FR, RL, RR)")
    camera = parser.add_argument_group(
        "camera overrides",
        "replace what the training config (or the robot definition) says about the training "
        "depth camera; the manifest's training_contract.notes name each override")
    camera.add_argument("--camera-pitch-deg", type=float, default=None, metavar="DEG",
                        help="downward pitch of the training camera in degrees (positive looks "
                             "down), e.g. when the config holds two readings that disagree")
    camera.add_argument("--camera-hfov-deg", type=float, default=None, metavar="DEG",
                        help="horizontal field of view of the training camera in degrees")
    camera.add_argument("--camera-position", default=None, metavar="X,Y,Z",
                        help="mount of the training camera on the base in metres (x forward, "
                             "z up), e.g. 0.355,0,0.065")
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16",
                        help="TensorRT engine precision (default fp16); ONNX files are fp32")
    parser.add_argument("--require-engine", action="store_true",
                        help="fail (exit 1) when TensorRT engines cannot be built here")
    parser.add_argument("--parity-samples", type=int, default=32, metavar="N",
                        help="random inputs per graph for the parity checks (default 32; "
                             "structured inputs and a 50-step GRU rollout are added)")
    parser.add_argument("--optimization-level", type=int, default=3, metavar="L",
                        help="TensorRT builder optimisation level 0-5 (default 3)")
    parser.add_argument("--workspace-mib", type=int, default=1024, metavar="MIB",
                        help="TensorRT workspace limit in MiB (default 1024)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    return parser


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
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        options = ExportOptions(camera_pitch_deg=args.camera_pitch_deg,
                                camera_hfov_deg=args.camera_hfov_deg,
                                camera_position=args.camera_position,
                                output=args.output, robot=args.robot, precision=args.precision,
                                require_engine=args.require_engine,
                                parity_samples=args.parity_samples,
                                optimization_level=args.optimization_level,
                                workspace_mib=args.workspace_mib,
                                train_config=args.train_config, joint_order=args.joint_order)
        result = export_checkpoint(args.checkpoint, options, _progress_printer(args.quiet))
    except ExportError as exc:
        print(f"krabby-export: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("krabby-export: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI promise: one line, no traceback
        if args.debug:
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
