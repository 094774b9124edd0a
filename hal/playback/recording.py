"""Sensor recordings: the file format, a loader that validates it, and a recorder for live devices.

Format (version 1): an **uncompressed** NumPy ``.npz`` archive of plain arrays, read with
``allow_pickle=False`` (no object arrays; strings are fixed-width unicode arrays). Times are
``int64`` nanoseconds on the recording machine's monotonic clock; only differences matter.

=============================  ============  ========  =============================================
array                          shape         dtype     meaning
=============================  ============  ========  =============================================
``format``                     ()            <U        ``"krabby-sensor-recording"``
``format_version``             ()            int64     1
``source``                     ()            <U        free text: what recorded it (``"mujoco go2"``)
``depth_m``                    (N, H, W)     float32   metric depth; NaN/±inf/0 invalid, as grabbed
``depth_timestamp_ns``         (N,)          int64     strictly increasing
``intrinsics``                 (6,)          float64   width, height, fx, fy, cx, cy (pixels)
``imu_timestamp_ns``           (M,)          int64     strictly increasing (M may be 0)
``imu_quaternion_wxyz``        (M, 4)        float64   base orientation in the world frame
``imu_angular_velocity_rad_s`` (M, 3)        float64   base frame
``imu_linear_acceleration_m_s2`` (M, 3)      float64   base frame, with gravity (+9.81 z at rest)
=============================  ============  ========  =============================================

Extra arrays are ignored by the loader, so later versions can add streams (joint states, contacts)
without breaking older readers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hal.devices.base import CameraIntrinsics, DepthCamera, Imu, Steppable

__all__ = [
    "RECORDING_FORMAT",
    "RECORDING_VERSION",
    "RecordingError",
    "Recording",
    "load_recording",
    "write_recording",
    "record_devices",
]

log = logging.getLogger(__name__)

RECORDING_FORMAT = "krabby-sensor-recording"
RECORDING_VERSION = 1


class RecordingError(ValueError):
    """A recording file is missing an array, or one has the wrong shape, dtype or order."""


@dataclass(frozen=True)
class Recording:
    """A validated sensor recording held in memory (see the module docstring for each field)."""

    depth_m: np.ndarray
    depth_timestamp_ns: np.ndarray
    intrinsics: CameraIntrinsics
    imu_timestamp_ns: np.ndarray
    imu_quaternion_wxyz: np.ndarray
    imu_angular_velocity_rad_s: np.ndarray
    imu_linear_acceleration_m_s2: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        self.validate()

    @property
    def n_frames(self) -> int:
        return int(self.depth_m.shape[0])

    @property
    def n_imu(self) -> int:
        return int(self.imu_timestamp_ns.shape[0])

    @property
    def frame_shape(self) -> tuple[int, int]:
        return int(self.depth_m.shape[1]), int(self.depth_m.shape[2])

    @property
    def duration_s(self) -> float:
        """From the first to the last depth frame."""
        return float(self.depth_timestamp_ns[-1] - self.depth_timestamp_ns[0]) / 1e9

    def imu_samples(self) -> np.ndarray:
        """IMU samples as (M, 10) vectors ``[qw qx qy qz wx wy wz ax ay az]``."""
        return np.concatenate([self.imu_quaternion_wxyz, self.imu_angular_velocity_rad_s,
                               self.imu_linear_acceleration_m_s2], axis=1)

    def validate(self) -> None:
        """Raise :class:`RecordingError` naming the first inconsistency."""
        def fail(message: str) -> RecordingError:
            return RecordingError(f"recording ({self.source or 'unnamed'}): {message}")

        depth = self.depth_m
        if depth.ndim != 3 or depth.dtype != np.float32 or depth.shape[0] == 0:
            raise fail(f"depth_m must be float32 [N>0, H, W], got {depth.dtype} {depth.shape}")
        _check_times(self.depth_timestamp_ns, depth.shape[0], "depth_timestamp_ns", fail)
        intr = self.intrinsics
        if (intr.height, intr.width) != depth.shape[1:]:
            raise fail(f"intrinsics are for {intr.width}x{intr.height} but frames are "
                       f"{depth.shape[2]}x{depth.shape[1]}")
        if not (intr.fx > 0 and intr.fy > 0):
            raise fail(f"intrinsics focal lengths must be positive, got fx={intr.fx} fy={intr.fy}")
        m = self.imu_timestamp_ns.shape[0] if self.imu_timestamp_ns.ndim == 1 else -1
        _check_times(self.imu_timestamp_ns, m, "imu_timestamp_ns", fail, allow_empty=True)
        for name, width in (("imu_quaternion_wxyz", 4), ("imu_angular_velocity_rad_s", 3),
                            ("imu_linear_acceleration_m_s2", 3)):
            arr = getattr(self, name)
            if arr.shape != (m, width) or arr.dtype != np.float64:
                raise fail(f"{name} must be float64 [{m}, {width}], got {arr.dtype} {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise fail(f"{name} holds non-finite values")


def _check_times(times: np.ndarray, n: int, name: str, fail, allow_empty: bool = False) -> None:
    if times.ndim != 1 or times.dtype != np.int64 or times.shape[0] != n:
        raise fail(f"{name} must be int64 [{n}], got {times.dtype} {times.shape}")
    if n == 0 and not allow_empty:
        raise fail(f"{name} is empty")
    if n > 1 and not np.all(np.diff(times) > 0):
        bad = int(np.argmax(np.diff(times) <= 0))
        raise fail(f"{name} must increase strictly; entry {bad + 1} ({times[bad + 1]}) follows {times[bad]}")


def write_recording(path: str | Path, recording: Recording) -> Path:
    """Write ``recording`` as an uncompressed ``.npz`` (the suffix is added if missing)."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz")
    intr = recording.intrinsics
    arrays = {
        "format": np.array(RECORDING_FORMAT),
        "format_version": np.array(RECORDING_VERSION, dtype=np.int64),
        "source": np.array(recording.source),
        "depth_m": recording.depth_m,
        "depth_timestamp_ns": recording.depth_timestamp_ns,
        "intrinsics": np.array([intr.width, intr.height, intr.fx, intr.fy, intr.cx, intr.cy], dtype=np.float64),
        "imu_timestamp_ns": recording.imu_timestamp_ns,
        "imu_quaternion_wxyz": recording.imu_quaternion_wxyz,
        "imu_angular_velocity_rad_s": recording.imu_angular_velocity_rad_s,
        "imu_linear_acceleration_m_s2": recording.imu_linear_acceleration_m_s2,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez(f, **arrays)
    return path


def load_recording(path: str | Path) -> Recording:
    """Load and validate a recording.

    Raises:
        RecordingError: the file is not a krabby recording, is of another version, or an array is
            missing or malformed. The message names the file and the array.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise RecordingError(f"{path}: not a readable .npz without pickled objects ({exc})") from None
    with archive:
        names = set(archive.files)
        required = {"format", "format_version", "depth_m", "depth_timestamp_ns", "intrinsics",
                    "imu_timestamp_ns", "imu_quaternion_wxyz", "imu_angular_velocity_rad_s",
                    "imu_linear_acceleration_m_s2"}
        missing = sorted(required - names)
        if missing:
            raise RecordingError(f"{path}: missing array(s) {missing}; is this a krabby sensor recording?")
        if str(archive["format"]) != RECORDING_FORMAT:
            raise RecordingError(f"{path}: format is {str(archive['format'])!r}, expected {RECORDING_FORMAT!r}")
        version = int(archive["format_version"])
        if version != RECORDING_VERSION:
            raise RecordingError(f"{path}: format version {version}; this krabby reads version {RECORDING_VERSION}")
        intr = archive["intrinsics"]
        if intr.shape != (6,):
            raise RecordingError(f"{path}: intrinsics must hold 6 values, got shape {intr.shape}")
        try:
            return Recording(
                depth_m=archive["depth_m"],
                depth_timestamp_ns=archive["depth_timestamp_ns"],
                intrinsics=CameraIntrinsics(width=int(intr[0]), height=int(intr[1]), fx=float(intr[2]),
                                            fy=float(intr[3]), cx=float(intr[4]), cy=float(intr[5])),
                imu_timestamp_ns=archive["imu_timestamp_ns"],
                imu_quaternion_wxyz=archive["imu_quaternion_wxyz"],
                imu_angular_velocity_rad_s=archive["imu_angular_velocity_rad_s"],
                imu_linear_acceleration_m_s2=archive["imu_linear_acceleration_m_s2"],
                source=str(archive["source"]) if "source" in names else "",
            )
        except RecordingError as exc:
            raise RecordingError(f"{path}: {exc}") from None


def record_devices(camera: DepthCamera, imu: Imu | None, n_frames: int, *, world: Steppable | None = None,
                   tick_s: float = 0.002, timeout_s: float = 60.0, source: str = "",
                   on_tick: Callable[[float], None] | None = None) -> Recording:
    """Record ``n_frames`` depth frames (and every new IMU sample) from connected devices.

    With ``world`` (a simulator) each poll advances it by ``tick_s`` of simulated time, so the
    recording follows simulated time however fast the machine is. Without, it polls in real time
    every ``tick_s`` until ``n_frames`` frames or ``timeout_s`` (wall time) have passed.
    ``on_tick(elapsed_s)`` runs before each poll (the simulator recorder moves the joints there).

    Raises:
        RuntimeError: fewer than ``n_frames`` frames arrived within ``timeout_s``.
    """
    if n_frames <= 0:
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    height, width = camera.frame_shape
    frame = np.empty((height, width), dtype=np.float32)
    frames: list[np.ndarray] = []
    frame_times: list[int] = []
    imu_rows: list[np.ndarray] = []
    imu_times: list[int] = []
    seq = 0
    intrinsics = None
    deadline = time.monotonic() + timeout_s
    ticks = 0
    while len(frames) < n_frames:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(frames)} of {n_frames} depth frames arrived within {timeout_s} s")
        if on_tick is not None:
            on_tick(ticks * tick_s)
        ticks += 1
        if world is not None:
            world.advance(tick_s)
        else:
            time.sleep(tick_s)
        if imu is not None:
            sample = imu.read()
            if not imu_times or sample.timestamp_ns > imu_times[-1]:
                imu_times.append(int(sample.timestamp_ns))
                imu_rows.append(np.concatenate([sample.quaternion_wxyz, sample.angular_velocity_rad_s,
                                                sample.linear_acceleration_m_s2]).astype(np.float64))
        info = camera.read_into(frame, seq)
        if info is not None:
            if frame_times and info.timestamp_ns <= frame_times[-1]:
                log.warning("depth frame seq %d has a timestamp that does not increase; skipped", info.seq)
            else:
                seq = info.seq
                intrinsics = info.intrinsics
                frames.append(frame.copy())
                frame_times.append(int(info.timestamp_ns))
    imu_array = np.array(imu_rows, dtype=np.float64).reshape(-1, 10)
    return Recording(
        depth_m=np.stack(frames).astype(np.float32),
        depth_timestamp_ns=np.array(frame_times, dtype=np.int64),
        intrinsics=intrinsics,
        imu_timestamp_ns=np.array(imu_times, dtype=np.int64),
        imu_quaternion_wxyz=imu_array[:, 0:4].copy(),
        imu_angular_velocity_rad_s=imu_array[:, 4:7].copy(),
        imu_linear_acceleration_m_s2=imu_array[:, 7:10].copy(),
        source=source,
    )
