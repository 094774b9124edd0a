"""Recording for the appliance (``krabby-hal-server-sim`` / ``-jetson``): settings in, report out.

:meth:`RecordingSession.from_section` turns the appliance's recorder settings (``--record PATH``,
``--record-frames``, ``--flight-recorder-s N``, ``--flight-recorder-dir DIR``:
:class:`hal.server.settings.RecorderSection`) into a session
whose :meth:`~RecordingSession.attach` is an ``AppliancePlan.on_started`` hook (it receives the
started server and client) and whose :meth:`~RecordingSession.close` runs after the client's
threads stopped and the server closed. SIGUSR1 asks the flight recorder for a dump.

A session can also be used directly::

    session = RecordingSession(record_path="run.mcap", flight_window_s=10)
    session.attach(server, client)      # before server.run()
    ...
    session.close(); session.report()
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hal.recorder.capture import DEFAULT_HIDDEN_SIZE, RecorderTap, layouts_for
from hal.recorder.file_recorder import FileRecorder, FileRecorderConfig
from hal.recorder.flight import FlightRecorder, FlightRecorderConfig

if TYPE_CHECKING:
    from hal.server.settings import RecorderSection

__all__ = ["RecordingSession", "run_info"]

log = logging.getLogger(__name__)


def run_info(server: Any, client: Any, starts: str, log_kind: str,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a log says about its run (stored as ``krabby.run`` metadata)."""
    robot = server.robot if server is not None else client.robot
    info: dict[str, Any] = {
        "log": log_kind, "starts": starts, "robot": robot.name, "robot_source": robot.source,
        "joint_names_hardware": list(robot.joint_names_hardware),
        "joint_names_policy": list(robot.joint_names_policy), "foot_names": list(robot.foot_names),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    if server is not None:
        info["control_rate_hz"] = server.config.control_rate_hz
        info["latency_budget_ms"] = server.config.latency_budget_ms
        info["realtime"] = server.config.realtime
        camera = server.devices.camera
        if camera is not None and camera.is_connected:
            k = camera.intrinsics
            info["camera"] = {"frame_shape": list(camera.frame_shape),
                              "intrinsics": {"width": k.width, "height": k.height, "fx": k.fx,
                                             "fy": k.fy, "cx": k.cx, "cy": k.cy}}
    if client is not None:
        info["command"] = {"forward_speed_m_s": client.command.forward_speed_m_s,
                           "mode": client.command.mode}
        info["depth_rate_hz"] = client.depth_rate_hz
        info["student"] = client.is_student
        info["engine_backend"] = getattr(client.actor, "backend", None)
        info["engine_source"] = getattr(client.actor, "source", None)
    info.update(extra or {})
    return info


class RecordingSession:
    """The recorders of one appliance run.

    Args:
        record_path: ``--record`` file, or None.
        flight_window_s: Flight recorder window (0 disables it).
        flight_dir: Where flight dumps go.
        record_frames: Log raw depth frames too (``--record`` only).
        file_config / flight_config: Finer settings (sizes, compression, post-trigger delay).
        extra_info: Added to the logs' run metadata (e.g. the policy path).
    """

    def __init__(self, record_path: str | Path | None = None, flight_window_s: float = 10.0,
                 flight_dir: str | Path = "flight", record_frames: bool = False,
                 file_config: FileRecorderConfig | None = None,
                 flight_config: FlightRecorderConfig | None = None,
                 extra_info: dict[str, Any] | None = None) -> None:
        if flight_window_s < 0:
            raise ValueError(f"flight recorder window {flight_window_s} s: use 0 (off) or more")
        self.record_path = Path(record_path) if record_path is not None else None
        self.flight_window_s = float(flight_window_s)
        self.flight_dir = Path(flight_dir)
        self.file_config = file_config or FileRecorderConfig(record_frames=record_frames)
        self.flight_config = flight_config
        self.extra_info = dict(extra_info or {})
        self.tap: RecorderTap | None = None
        self.file: FileRecorder | None = None
        self.flight: FlightRecorder | None = None
        self._previous_usr1: Any = None
        self._closed = False

    @classmethod
    def from_section(cls, settings: RecorderSection,
                     extra_info: dict[str, Any] | None = None) -> "RecordingSession | None":
        """The session the settings ask for, or None when recording is off.

        Raises:
            ValueError: a ``--record`` path that cannot be written (the message names it).
        """
        if not settings.enabled:
            return None
        record = settings.record
        if record is not None:
            path = Path(record)
            if path.is_dir():
                raise ValueError(f"--record {record} is a directory; give a file name such as "
                                 f"{path / 'run.mcap'}")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValueError(f"--record {record}: cannot create its directory ({exc})") from None
            if not os.access(path.parent, os.W_OK):
                raise ValueError(f"--record {record}: directory {path.parent} is not writable")
        return cls(record, settings.flight_recorder_s, settings.flight_recorder_dir,
                   settings.record_frames, extra_info=extra_info)

    def attach(self, server: Any, client: Any = None) -> None:
        """Create the recorders and hang the tap on ``server`` and ``client`` (an on_started hook:
        call it after both started, before ``server.run()``)."""
        camera = server.devices.camera
        frame_shape = tuple(camera.frame_shape) if camera is not None else None
        depth_engine = getattr(client, "depth", None) if client is not None else None
        hidden = (depth_engine.inputs["hidden_in"].size if depth_engine is not None
                  else DEFAULT_HIDDEN_SIZE)
        layouts = layouts_for(server.robot, hidden, frame_shape)
        sinks: list[Any] = []
        if self.record_path is not None:
            info = run_info(server, client, "client_start", "record", self.extra_info)
            try:
                self.file = FileRecorder(self.record_path, layouts, info, self.file_config,
                                         server.safety)
            except OSError as exc:
                raise ValueError(f"--record {self.record_path}: cannot create it ({exc})") from None
            sinks.append(self.file)
        if self.flight_window_s > 0:
            config = self.flight_config or FlightRecorderConfig(window_s=self.flight_window_s,
                                                                directory=self.flight_dir)
            depth_rate = client.depth_rate_hz if client is not None else 10.0
            info = run_info(server, client, "window", "flight", self.extra_info)
            self.flight = FlightRecorder(layouts, info, server.config.control_rate_hz, depth_rate,
                                         config, server.safety)
            sinks.append(self.flight)
        self.tap = RecorderTap(layouts, sinks)
        self.tap.attach(server, client)
        if self.file is not None:
            self.file.start()
        if self.flight is not None:
            self.flight.start()
            self._install_sigusr1()
            log.info("flight recorder: last %.0f s in memory (%.1f MB); dumps to %s on damping/"
                     "e-stop or SIGUSR1", self.flight_window_s, self.flight.memory_bytes / 2**20,
                     self.flight.config.directory)

    def _install_sigusr1(self) -> None:
        if not hasattr(signal, "SIGUSR1"):
            return
        flight = self.flight

        def on_usr1(_signum: int, _frame: Any) -> None:
            flight.request_dump("SIGUSR1")  # only sets a flag: safe inside the control loop

        try:
            self._previous_usr1 = signal.signal(signal.SIGUSR1, on_usr1)
        except ValueError:  # not the main thread: no signal trigger, the API still works
            self._previous_usr1 = None

    def dump_now(self, reason: str = "request") -> Path | None:
        """Write a flight recorder dump now (None when the flight recorder is off)."""
        return self.flight.dump(reason) if self.flight is not None else None

    def close(self) -> None:
        """Detach, finish the log, write pending dumps (after the client's threads stopped)."""
        if self._closed:
            return
        self._closed = True
        if self.tap is not None:
            self.tap.detach()
        if self._previous_usr1 is not None:
            try:
                signal.signal(signal.SIGUSR1, self._previous_usr1)
            except ValueError:
                pass
        if self.file is not None:
            self.file.close()
        if self.flight is not None:
            self.flight.close()

    def report(self) -> dict[str, Any]:
        """The run report's ``recorder`` section: written/dropped, listener cost, dumps."""
        out: dict[str, Any] = {}
        if self.tap is not None:
            for key, cpu in (("listener_us", False), ("listener_cpu_us", True)):
                costs = self.tap.cost_summary_us(cpu)
                out[key] = {kind: {k: costs[kind][k] for k in ("count", "p50", "p99", "max")}
                            for kind in costs}
        if self.file is not None:
            stats = self.file.stats()
            out.update(path=stats["path"], written=stats["written_total"],
                       dropped=stats["dropped_total"], written_by_kind=stats["written"],
                       dropped_by_kind=stats["dropped"], error=stats["error"])
        if self.flight is not None:
            out["flight"] = self.flight.stats()
        return out
