"""``--viewer``: MuJoCo's passive viewer on the running simulation, where a display exists.

The viewer renders on its own thread from a copy of the state; :class:`PassiveViewer` is a tick
listener that hands it the world's state (``sync``) at most ``rate_hz`` times per wall-clock
second, on the control loop's thread, the only one that changes the state. Closing the window
leaves the run going.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from hal.optional import require

__all__ = ["PassiveViewer", "attach_viewer", "display_available"]

log = logging.getLogger(__name__)


def display_available() -> bool:
    """Whether a window can open: an X or Wayland display is set (macOS always has one)."""
    import sys

    return sys.platform == "darwin" or bool(os.environ.get("DISPLAY")
                                            or os.environ.get("WAYLAND_DISPLAY"))


class PassiveViewer:
    """Tick listener mirroring ``world`` into MuJoCo's passive viewer.

    Raises:
        RuntimeError: no display (raised by :meth:`open`).
    """

    def __init__(self, world: Any, rate_hz: float = 30.0) -> None:
        self.world = world
        self._period_ns = int(1e9 / rate_hz)
        self._next_ns = 0
        self._handle: Any = None

    def open(self) -> None:
        if not display_available():
            raise RuntimeError("--viewer needs a display (DISPLAY / WAYLAND_DISPLAY is not set); "
                               "use --video run.mp4 to render the run offscreen instead")
        viewer = require("mujoco.viewer", "--viewer")
        self._handle = viewer.launch_passive(self.world.model, self.world.data,
                                             show_left_ui=False, show_right_ui=False)

    def __call__(self, _record: Any) -> None:
        now = time.monotonic_ns()
        if self._handle is None or now < self._next_ns:
            return
        self._next_ns = now + self._period_ns
        if self._handle.is_running():
            self._handle.sync()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def attach_viewer(plan: Any) -> None:
    """Open the viewer once the server runs (an ``AppliancePlan`` hook pair).

    Raises:
        RuntimeError: no display.
    """
    if not display_available():
        PassiveViewer(None).open()  # raises the one-line reason

    def start(server: Any, _client: Any) -> None:
        viewer = PassiveViewer(server.devices.world)
        viewer.open()
        server.tick_listeners.append(viewer)
        plan.on_finished.append(lambda _server, _client: viewer.close())

    plan.on_started.append(start)
