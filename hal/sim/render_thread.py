"""Depth frames ray-cast on their own thread, like a camera that delivers frames after exposure.

``mj_multiRay`` releases the GIL, so casting a frame (1.5–2 ms for 106×60 rays here) on a thread
keeps it off the control loop: at 500 Hz a synchronous frame would take a whole tick. The world
hands over a copy of its state at the capture instant (:func:`mujoco.mj_copyData`), so physics
goes on while the frame is cast; the frame carries the capture time and appears when it is done,
a couple of milliseconds later, as a real camera's would. A frame due while the previous one is
still being cast is skipped and counted (a camera overrun), never queued.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import numpy as np

__all__ = ["RenderThread"]

log = logging.getLogger(__name__)


class RenderThread:
    """Casts one frame at a time on a daemon thread.

    Args:
        mujoco: The imported ``mujoco`` module.
        model: The world's model.
        render: ``render(data, out)`` fills ``out`` from a state snapshot (the world's raycaster).
        frame_shape: (H, W) of the frames.
        deliver: ``deliver(frame, capture_ns)`` is called on the render thread with the finished
            frame (a buffer reused for the next frame: copy or swap it under your own lock).
    """

    def __init__(self, mujoco: Any, model: Any, render: Callable[[Any, np.ndarray], None],
                 frame_shape: tuple[int, int],
                 deliver: Callable[[np.ndarray, int], None]) -> None:
        self._mj = mujoco
        self._model = model
        self._render = render
        self._deliver = deliver
        self._snapshot = mujoco.MjData(model)
        self._frame = np.empty(frame_shape, dtype=np.float32)
        self._capture_ns = 0
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False
        self.skipped = 0
        self._thread = threading.Thread(target=self._run, name="krabby-sim-camera", daemon=True)
        self._thread.start()

    def submit(self, data: Any, capture_ns: int) -> bool:
        """Start casting a frame of ``data``'s current state; False (skipped) while still busy."""
        if not self._idle.is_set():
            self.skipped += 1
            return False
        self._idle.clear()
        self._mj.mj_copyData(self._snapshot, self._model, data)
        self._capture_ns = capture_ns
        self._wake.set()
        return True

    def wait_idle(self, timeout_s: float = 1.0) -> bool:
        """Block until the frame in flight (if any) was delivered."""
        return self._idle.wait(timeout_s)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            try:
                self._render(self._snapshot, self._frame)
                self._deliver(self._frame, self._capture_ns)
            except Exception:  # noqa: BLE001 - a failed frame is a dropped frame, not a crash
                log.exception("simulated depth frame failed")
            finally:
                self._idle.set()

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the thread (after the frame in flight). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout_s)
