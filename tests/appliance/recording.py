"""Recorders shared by the appliance tests: every command the joint driver received, and a copy of
what each control tick saw and applied (the server reuses the applied command's arrays)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hal.devices.base import CONTROL_MODE_DAMP, JointCommand, JointDriver
from hal.safety.events import Mode
from hal.server.base import HalServer, TickRecord

__all__ = ["RecordingJoints", "Tick", "TickLog"]


class RecordingJoints(JointDriver):
    """The real simulated joint driver, with every command written to it kept for inspection."""

    def __init__(self, inner: JointDriver) -> None:
        self.inner = inner
        self.written: list[JointCommand] = []

    @property
    def is_connected(self) -> bool:
        return self.inner.is_connected

    @property
    def joint_names(self):
        return self.inner.joint_names

    def connect(self) -> None:
        self.inner.connect()

    def close(self) -> None:
        self.inner.close()

    def read(self):
        return self.inner.read()

    def write(self, command: JointCommand) -> None:
        self.written.append(JointCommand(command.target_rad.copy(), command.kp.copy(),
                                         command.kd.copy(), command.mode, command.timestamp_ns))
        self.inner.write(command)


@dataclass
class Tick:
    """One control tick, copied out of its :class:`TickRecord`."""

    seq: int
    mode: Mode  # the safety layer's mode after the tick
    has_command: bool
    non_finite: bool
    command_target: np.ndarray | None  # the policy's targets as received (hardware order)
    target: np.ndarray  # applied
    kp: np.ndarray
    kd: np.ndarray
    damped: bool  # applied in CONTROL_MODE_DAMP
    q: np.ndarray  # the joint state the safety layer judged
    dq: np.ndarray
    joints_ns: int
    imu_ns: int
    depth_ns: int | None  # timestamp of the newest depth frame in the server's slots
    depth_seq: int
    feet_n: np.ndarray | None
    imu_quat: np.ndarray


class TickLog(list):
    """A tick listener that keeps a :class:`Tick` per control tick."""

    def __init__(self, server: HalServer | None = None) -> None:
        super().__init__()
        self.server = server

    def __call__(self, record: TickRecord) -> None:
        applied, received = record.applied, record.command
        publisher = self.server.publisher if self.server is not None else None
        depth_ns = publisher.depth_timestamp_ns if publisher is not None and record.depth_seq \
            else None
        self.append(Tick(
            seq=record.seq, mode=record.safety_mode, has_command=received is not None,
            non_finite=bool(received is not None and received.non_finite),
            command_target=None if received is None else
            np.array(received.message.target_rad, dtype=np.float64),
            target=applied.target_rad.copy(), kp=applied.kp.copy(), kd=applied.kd.copy(),
            damped=applied.mode == CONTROL_MODE_DAMP,
            q=record.joints.position_rad.copy(), dq=record.joints.velocity_rad_s.copy(),
            joints_ns=record.joints.timestamp_ns, imu_ns=record.imu.timestamp_ns,
            depth_ns=depth_ns, depth_seq=record.depth_seq,
            feet_n=None if record.contacts is None else record.contacts.force_n.copy(),
            imu_quat=np.array(record.imu.quaternion_wxyz, dtype=np.float64)))

    def by_seq(self, seq: int) -> Tick:
        first = self[0].seq
        tick = self[seq - first]
        assert tick.seq == seq
        return tick
