"""The devices one HAL server drives, as one aggregate with one lifecycle and one clock."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from hal.devices.base import (
    DepthCamera,
    Device,
    FootContactSensor,
    HeightScanner,
    Imu,
    JointDriver,
    Steppable,
)

__all__ = ["HalDevices"]

log = logging.getLogger(__name__)


@dataclass
class HalDevices:
    """The devices of one robot, real or simulated.

    Attributes:
        joints / imu: Always present.
        contacts / camera / height_scanner: Present when the robot has them.
        world: A simulator the server advances once per tick (None on hardware).
        clock_ns: The clock the sensors stamp their samples with; the server's safety checks and
            pacing judge data ages on it. ``time.monotonic_ns`` on hardware; a simulator that
            runs faster than real time supplies its own.
    """

    joints: JointDriver
    imu: Imu
    contacts: FootContactSensor | None = None
    camera: DepthCamera | None = None
    world: Steppable | None = None
    height_scanner: HeightScanner | None = None
    clock_ns: Callable[[], int] = field(default=time.monotonic_ns)

    def all(self) -> list[Device]:
        """The devices that exist, joints first."""
        return [d for d in (self.joints, self.imu, self.contacts, self.camera,
                            self.height_scanner) if d is not None]

    def connect(self) -> None:
        """Connect every device not yet connected; on a failure close the ones opened."""
        opened = []
        try:
            for device in self.all():
                if not device.is_connected:
                    device.connect()
                opened.append(device)
        except Exception:
            for device in reversed(opened):
                device.close()
            raise

    def close(self) -> None:
        """Close every device (the joints last, damped by their backend), then the world."""
        for device in reversed(self.all()):
            try:
                device.close()
            except Exception:  # noqa: BLE001 - closing the rest matters more
                log.exception("closing %s failed", type(device).__name__)
        close_world = getattr(self.world, "close", None)
        if close_world is not None:
            close_world()

    def __enter__(self) -> "HalDevices":
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
