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
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import (
    NETWORK_HELP,
    DurationSection,
    FaultSection,
    Go2NetworkSection,
    OutputSection,
    RobotSection,
    SceneSection,
    SimCameraSection,
)
from hal.report.schema import dumps
from hal.sim.go2_faults import parse_wire_fault
from hal.unitree_dds import initialize_dds

__all__ = ["build_parser", "main", "Go2SimConfig", "Go2SimSection"]

def _pose_arg(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--initial-pose {text!r}: 12 comma-separated numbers") from None


@dataclass(frozen=True)
class Go2SimSection:
    """krabby-go2-sim's own settings: physics, the hand-over proxy, the test rig."""

    section: ClassVar[str] = "go2_sim"
    title: ClassVar[str] = "the simulated Go2"

    physics_dt_ms: float = setting(2.0, metavar="MS",
                                   help="physics step and LowState period (2 ms: 500 Hz)")
    handover_height: float = setting(0.22, metavar="M",
                                     help="ground truth starts when the commanded robot's trunk "
                                          "first rises above this (m)")
    fixed_base: bool = setting(False, help="bolt the trunk in the air (wire tests: the legs move "
                                           "freely)")
    initial_pose: tuple[float, ...] | None = setting(None, parse=_pose_arg, metavar="Q0,...,Q11",
                                                     help="initial joint angles, hardware order "
                                                          "(rad)")
    camera_bind: str | None = setting(None, metavar="tcp://127.0.0.1:PORT",
                                      help="publish the simulated depth camera here, the ZED's "
                                           "stand-in for krabby-hal-server-jetson --camera go2-sim "
                                           "(hal.sim.depth_link); its rate is --camera-fps")


@dataclass(frozen=True)
class Go2SimConfig:
    """krabby-go2-sim's run configuration."""

    go2_network: Go2NetworkSection = part(Go2NetworkSection)
    robot: RobotSection = part(RobotSection)
    scene: SceneSection = part(SceneSection)
    go2_sim: Go2SimSection = part(Go2SimSection)
    sim_camera: SimCameraSection = part(SimCameraSection)
    faults: FaultSection = part(FaultSection)
    duration: DurationSection = part(DurationSection)
    output: OutputSection = part(OutputSection)


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(Go2SimConfig, prog="krabby-go2-sim",
                               description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    config = parse_cli(Go2SimConfig, argv, parser)
    try:
        faults = tuple(parse_wire_fault(text) for text in config.faults.faults)
    except ValueError as exc:
        parser.error(str(exc))
    config.output.configure_logging()
    if not config.go2_network.network:
        print(f"krabby-go2-sim: --network is required: {NETWORK_HELP}", file=sys.stderr)
        return 2
    try:
        camera_fps = config.sim_camera.fixed_fps()
    except ValueError as exc:
        print(f"krabby-go2-sim: {exc}", file=sys.stderr)
        return 2
    if config.go2_sim.camera_bind and not camera_fps > 0:
        print(f"krabby-go2-sim: --camera-fps {camera_fps}: must be a positive number", file=sys.stderr)
        return 2
    try:
        from hal.sim.go2_double import SimulatedGo2

        initialize_dds(config.go2_network.domain_id, config.go2_network.network)
        go2 = SimulatedGo2(config, faults)
    except Exception as exc:  # noqa: BLE001 - one line for the user
        print(f"krabby-go2-sim: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: go2.stop.set())
    try:
        go2.start_wire()
        net = config.go2_network
        print(f"krabby-go2-sim: ready on {net.network}, DDS domain {net.domain_id}: rt/lowstate at "
              f"{1e3 / config.go2_sim.physics_dt_ms:g} Hz; sport mode on until released", flush=True)
        go2.run()
    finally:
        report = go2.report()
        go2.close()
        if config.output.report:
            Path(config.output.report).write_text(dumps(report, indent=1))
        counters = report.wire.counters
        print("krabby-go2-sim: " + ", ".join(f"{k} {v}" for k, v in sorted(counters.items())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
