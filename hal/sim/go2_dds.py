"""``krabby-go2-sim``: the MuJoCo Go2 behind the robot's own wire (Unitree's SDK over Cyclone DDS).

A robot double for the Go2 backend (:mod:`hal.backends.unitree_go2`): it talks to the outside only
the way the robot does, through ``unitree_sdk2py`` on a named interface and DDS domain::

    krabby-go2-sim --network lo --domain-id 42 --duration 30 --report go2sim.json
    krabby-hal-server-jetson --motors go2 --network lo --domain-id 42 --camera none ...

- ``rt/lowstate`` (``LowState_``) every physics step, 500 Hz: per motor slot ``q``, ``dq``,
  ``tau_est`` (the applied torque), ``temperature``, ``lost``; the IMU's quaternion (w, x, y, z),
  gyroscope, accelerometer and rpy; foot forces (1 count = 1 N, the backend's default
  calibration); the 40 ``wireless_remote`` bytes (sticks centred, no button); ``tick``
  (milliseconds of simulated time); the CRC.
- ``rt/sportmodestate`` (``SportModeState_``) at 50 Hz: mode, position, velocity, yaw speed,
  body height (ground truth standing in for the robot's odometry).
- ``rt/lowcmd`` (``LowCmd_``): a message whose CRC is wrong is dropped and counted; otherwise each
  slot in servo mode (0x01) runs ``tau = tau_ff + kp·(q* − q) + kd·(dq* − dq)`` at every physics
  step (:meth:`hal.sim.world.MujocoWorld.set_motor_command`) until the next one; a slot in any
  other mode is passive. The robot keeps the last command when they stop.
- The motion switcher (service ``motion_switcher``: CheckMode 1001, ReleaseMode 1003) and the
  sport service's StandDown (1005), StandUp (1004) and Damp (1001). Until released the robot is in
  "sport mode": its own controller holds it standing and LowCmds are ignored (and counted, as
  the robot's own controller would fight them); StandDown lies it down; ReleaseMode leaves the
  motors passive until LowCmds arrive.

Ground truth (distance, heading, falls; :mod:`hal.sim.ground_truth`) is measured from the hand-over
proxy: the first moment after release that LowCmds drive the robot and its trunk is above
``--handover-height`` (it stood up), to the hand-back: a damping LowCmd (kp 0 on every motor) or
no LowCmd for 0.1 s. ``--fault`` rehearses wire faults (:mod:`hal.sim.go2_faults`).
``--camera-bind tcp://127.0.0.1:PORT`` publishes the simulated depth camera, the ZED's stand-in
(:mod:`hal.sim.depth_link`). The report (``--report``, JSON) holds the wire counters, the faults, the last applied command per
joint and the ``sim`` section.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
from pathlib import Path

from hal.report.schema import dumps
from hal.sim.go2_faults import WireFault, parse_wire_fault
from hal.unitree_dds import NETWORK_HELP, initialize_dds

__all__ = ["build_parser", "main"]

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="krabby-go2-sim", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", required=False, default=None, help=NETWORK_HELP)
    parser.add_argument("--domain-id", dest="domain_id", type=int, default=0,
                        help="DDS domain id (0 on the robot; give tests their own)")
    parser.add_argument("--robot", default="go2")
    parser.add_argument("--scene", default="flat", help="flat or parkour")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--physics-dt-ms", dest="physics_dt_ms", type=float, default=2.0,
                        help="physics step and LowState period (default 2 ms: 500 Hz)")
    parser.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    parser.add_argument("--report", help="write the report (JSON) here at exit")
    parser.add_argument("--fault", dest="faults", action="append", default=[], type=_fault_arg,
                        metavar="KIND[=VALUE][@T]", help="wire fault (hal.sim.go2_faults), repeatable")
    parser.add_argument("--handover-height", dest="handover_height", type=float, default=0.22,
                        help="ground truth starts when the commanded robot's trunk first rises "
                             "above this (m)")
    parser.add_argument("--fixed-base", dest="fixed_base", action="store_true",
                        help="bolt the trunk in the air (wire tests: the legs move freely)")
    parser.add_argument("--initial-pose", dest="initial_pose", type=_pose_arg, default=None,
                        metavar="Q0,...,Q11", help="initial joint angles, hardware order (rad)")
    parser.add_argument("--camera-bind", dest="camera_bind", metavar="tcp://127.0.0.1:PORT",
                        help="publish the simulated depth camera here, the ZED's stand-in for "
                             "krabby-hal-server-jetson --camera go2-sim (hal.sim.depth_link)")
    parser.add_argument("--camera-fps", dest="camera_fps", type=float, default=30.0,
                        help="with --camera-bind: frames per second (default 30)")
    parser.add_argument("--log-level", dest="log_level", default="INFO")
    return parser


def _fault_arg(text: str) -> WireFault:
    try:
        return parse_wire_fault(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _pose_arg(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--initial-pose {text!r}: 12 comma-separated numbers") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.network:
        print(f"krabby-go2-sim: --network is required: {NETWORK_HELP}", file=sys.stderr)
        return 2
    if args.camera_bind and not (math.isfinite(args.camera_fps) and args.camera_fps > 0):
        print(f"krabby-go2-sim: --camera-fps {args.camera_fps}: must be a positive number", file=sys.stderr)
        return 2
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        print(f"krabby-go2-sim: --duration {args.duration}: must be a positive number", file=sys.stderr)
        return 2
    try:
        from hal.sim.go2_double import SimulatedGo2

        initialize_dds(args.domain_id, args.network)
        go2 = SimulatedGo2(args)
    except Exception as exc:  # noqa: BLE001 - one line for the user
        print(f"krabby-go2-sim: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: go2.stop.set())
    try:
        go2.start_wire()
        print(f"krabby-go2-sim: ready on {args.network}, DDS domain {args.domain_id}: rt/lowstate at "
              f"{1e3 / args.physics_dt_ms:g} Hz; sport mode on until released", flush=True)
        go2.run()
    finally:
        report = go2.report()
        go2.close()
        if args.report:
            Path(args.report).write_text(dumps(report, indent=1))
        counters = report.wire.counters
        print("krabby-go2-sim: " + ", ".join(f"{k} {v}" for k, v in sorted(counters.items())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
