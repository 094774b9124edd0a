"""``--video run.mp4``: the simulated run rendered offscreen, with a contact sheet beside it.

:class:`VideoRecorder` is a server tick listener. At ``fps`` frames per second of *simulated* time
it copies the world's joint state (a few dozen floats) into a queue; a thread of its own rebuilds
the scene from that copy, renders it with MuJoCo's OpenGL renderer in an offscreen context (EGL,
else OSMesa; ``MUJOCO_GL`` picks one), overlays the simulated time, the safety mode and the
commanded and actual forward speed (on a terrain also the course and the goals reached, with
the goals drawn as spheres: reached green, current yellow, ahead red), in a font sized to the
frame, and encodes H.264 into an MP4 (PyAV). The queue is unbounded
and never drops, so a run of T simulated seconds always has ``floor(T * fps) + 1`` frames (frame k
is the first tick at or after k / fps). The control loop's share is the copy and a queue put.

By default (``render_during_run`` False) the frames are rendered after the run ends: the GL
context and the file are opened at the start (so a missing EGL fails before the robot moves) but
no frame is drawn while the loop runs — on a small machine a software renderer competes with the
control loop for the CPU (measured: deadline misses 10 → 55 in 1000 ticks at 100 Hz on two shared
cores when rendering during the run). Snapshots cost ~200 bytes each.

The camera chases the trunk: it looks at it from ``chase_distance_m`` behind, along the trunk's
yaw smoothed over ``chase_smoothing_s``, ``chase_elevation_deg`` above. At the end a contact sheet
(``<name>_contact.png``: ``sheet_columns`` × ``sheet_rows`` frames evenly spread over the run, each
labelled with its time) is written beside the video.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hal.optional import MissingDependencyError, require

__all__ = ["VideoConfig", "VideoRecorder", "offscreen_gl_context", "contact_sheet_path"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoConfig:
    """Frame size and rate, camera and contact sheet.

    Attributes:
        width, height: pixels (even numbers: H.264 with 4:2:0 chroma needs them).
        fps: frames per second of simulated time.
        crf: x264 constant rate factor (lower: better and bigger).
        chase_distance_m, chase_elevation_deg, chase_smoothing_s: the chase camera.
        sheet_columns, sheet_rows: frames on the contact sheet.
        render_during_run: draw frames while the run goes on (spare cores or a GPU) instead of
            after it.
    """

    width: int = 640
    height: int = 360
    fps: float = 30.0
    crf: int = 23
    chase_distance_m: float = 1.8
    chase_elevation_deg: float = -20.0
    chase_smoothing_s: float = 0.5
    sheet_columns: int = 4
    sheet_rows: int = 3
    render_during_run: bool = False

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if value < 16 or value % 2:
                raise ValueError(f"video {name} {value}: use an even number of pixels >= 16")
        if not (math.isfinite(self.fps) and 0 < self.fps <= 240):
            raise ValueError(f"video fps {self.fps}: use 0 < fps <= 240")
        if self.sheet_columns < 1 or self.sheet_rows < 1:
            raise ValueError("the contact sheet needs at least one column and one row")


def contact_sheet_path(video: Path) -> Path:
    """Where the contact sheet of ``video`` goes: ``run.mp4`` → ``run_contact.png``."""
    return video.with_name(video.stem + "_contact.png")


def offscreen_gl_context(width: int, height: int) -> Any:
    """An OpenGL context for offscreen rendering, made current on the calling thread.

    ``MUJOCO_GL`` (``egl``, ``osmesa``, ``glfw``) chooses the backend; unset, EGL is tried first,
    then OSMesa.

    Raises:
        MissingDependencyError: no backend works; the message names the packages to install.
    """
    wanted = os.environ.get("MUJOCO_GL", "").strip().lower()
    order = [wanted] if wanted in ("egl", "osmesa", "glfw") else ["egl", "osmesa"]
    errors = []
    for backend in order:
        try:
            module = __import__(f"mujoco.{backend}", fromlist=["GLContext"])
            context = module.GLContext(width, height)
            context.make_current()
            return context
        except Exception as exc:  # noqa: BLE001 - each backend fails in its own way
            errors.append(f"{backend}: {type(exc).__name__}: {exc}")
    raise MissingDependencyError(
        "no offscreen OpenGL for --video (" + "; ".join(errors) + "). Install EGL "
        "(Debian/Ubuntu: apt-get install libegl1 libgl1) or OSMesa (libosmesa6) and set "
        "MUJOCO_GL=egl or MUJOCO_GL=osmesa")


@dataclass(frozen=True, slots=True)
class _Snapshot:
    index: int
    t_s: float
    qpos: np.ndarray
    mode: str
    speed_command_m_s: float | None
    goals_reached: int = 0


def font_scale(mujoco: Any, height_px: int) -> Any:
    """MuJoCo's font scale for a frame ``height_px`` high: text about 1/20 of the height."""
    scales = mujoco.mjtFontScale
    for limit, scale in ((300, scales.mjFONTSCALE_100), (500, scales.mjFONTSCALE_150),
                         (800, scales.mjFONTSCALE_200), (1200, scales.mjFONTSCALE_250)):
        if height_px < limit:
            return scale
    return scales.mjFONTSCALE_300


class _SceneRenderer:
    """MuJoCo's classic renderer on a context of its own (build and use on one thread)."""

    def __init__(self, mujoco: Any, model: Any, trunk_body: int, config: VideoConfig,
                 goals_xyz: np.ndarray | None = None) -> None:
        mj = self._mj = mujoco
        self.goals_xyz = goals_xyz
        self.config = config
        self.model = copy.deepcopy(model)
        self.model.vis.global_.offwidth = max(config.width, self.model.vis.global_.offwidth)
        self.model.vis.global_.offheight = max(config.height, self.model.vis.global_.offheight)
        self.gl = offscreen_gl_context(config.width, config.height)
        self.data = mj.MjData(self.model)
        self.context = mj.MjrContext(self.model, font_scale(mj, config.height))
        mj.mjr_setBuffer(mj.mjtFramebuffer.mjFB_OFFSCREEN, self.context)
        self.scene = mj.MjvScene(self.model, maxgeom=2000)
        self.option = mj.MjvOption()
        self.perturb = mj.MjvPerturb()
        self.camera = mj.MjvCamera()
        self.camera.type = mj.mjtCamera.mjCAMERA_FREE
        self.camera.distance = config.chase_distance_m
        self.camera.elevation = config.chase_elevation_deg
        self.viewport = mj.MjrRect(0, 0, config.width, config.height)
        self.pixels = np.empty((config.height, config.width, 3), dtype=np.uint8)
        self.trunk = trunk_body
        self._yaw: float | None = None

    def set_state(self, qpos: np.ndarray) -> None:
        self.data.qpos[:] = qpos
        self._mj.mj_forward(self.model, self.data)

    def _add_goals(self, reached: int) -> None:
        """Goal markers: reached green, current yellow, ahead red (spheres 8 cm across)."""
        mj, scene = self._mj, self.scene
        size = np.array([0.04, 0.0, 0.0])
        eye = np.eye(3).ravel()
        for k, xyz in enumerate(self.goals_xyz if self.goals_xyz is not None else ()):
            if scene.ngeom >= scene.maxgeom:
                break
            rgba = np.array([0.2, 0.8, 0.2, 0.9] if k < reached else
                            [1.0, 0.85, 0.1, 1.0] if k == reached else [0.9, 0.2, 0.2, 0.8],
                            dtype=np.float32)
            mj.mjv_initGeom(scene.geoms[scene.ngeom], mj.mjtGeom.mjGEOM_SPHERE, size, xyz, eye,
                            rgba)
            scene.ngeom += 1

    def render(self, dt_s: float, left: str, right: str, goals_reached: int = 0) -> np.ndarray:
        """Render the state of the last :meth:`set_state` with a text overlay (RGB, top row first)."""
        mj, m, d, cfg = self._mj, self.model, self.data, self.config
        pos = d.xpos[self.trunk]
        rot = d.xmat[self.trunk].reshape(3, 3)
        yaw = math.atan2(rot[1, 0], rot[0, 0])
        if self._yaw is None:
            self._yaw = yaw
        else:
            alpha = min(1.0, dt_s / cfg.chase_smoothing_s) if cfg.chase_smoothing_s > 0 else 1.0
            self._yaw += alpha * math.remainder(yaw - self._yaw, 2 * math.pi)
        self.camera.lookat[:] = pos
        self.camera.azimuth = math.degrees(self._yaw)
        mj.mjv_updateScene(m, d, self.option, self.perturb, self.camera,
                           mj.mjtCatBit.mjCAT_ALL, self.scene)
        self._add_goals(goals_reached)
        mj.mjr_render(self.viewport, self.scene, self.context)
        mj.mjr_overlay(mj.mjtFont.mjFONT_NORMAL, mj.mjtGridPos.mjGRID_TOPLEFT, self.viewport,
                       left, right, self.context)
        mj.mjr_readPixels(self.pixels, None, self.viewport, self.context)
        return np.flipud(self.pixels)

    def close(self) -> None:
        self.context.free()
        self.gl.free()


class VideoRecorder:
    """Tick listener that records ``path`` (see the module docstring).

    Args:
        world: the :class:`~hal.sim.world.MujocoWorld` (its model, data, trunk and clock).
        path: the ``.mp4`` to write; the contact sheet goes beside it.
        config: size, rate, camera, contact sheet.
        speed_command: returns the forward speed command in force (m/s), or None.

    Raises:
        MissingDependencyError: PyAV or Pillow is missing, or no offscreen OpenGL works
            (raised by :meth:`start`).
    """

    def __init__(self, world: Any, path: str | Path, config: VideoConfig | None = None,
                 speed_command: Callable[[], float] | None = None,
                 goals_reached: Callable[[], int] | None = None) -> None:
        self._av = require("av", "--video")
        self._image = require("PIL.Image", "--video's contact sheet")
        self.world = world
        self.path = Path(path)
        self.config = config or VideoConfig()
        self.speed_command = speed_command
        self.goals_reached = goals_reached
        terrain = getattr(world, "terrain", None)
        self.course = terrain.name if terrain is not None else getattr(world.config, "scene", "")
        self._goals_xyz = None
        if terrain is not None:
            self._goals_xyz = np.array([[x, y, terrain.height_at(x, y) + 0.3]
                                        for x, y in terrain.goals_m])
        self._period_ns = int(round(1e9 / self.config.fps))
        self._next_ns = 0
        self._queue: queue.Queue[_Snapshot | None] = queue.Queue()
        self._ready = threading.Event()
        self._run_over = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.frames_queued = 0
        self.frames_written = 0
        self.sheet_path: Path | None = None
        self._thumbs: list[tuple[float, np.ndarray, str, int]] = []  # t, pixels, mode, goals
        self._label: tuple[str, int] = ("", 0)  # the last frame's safety mode and goals reached
        self._thumb_stride = 1

    # -- control-loop side ---------------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> None:
        """Open the GL context and the file on the writer thread; raises what it could not open."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="krabby-video", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError(f"--video: the renderer did not start within {timeout_s} s")
        if self._error is not None:
            self._thread.join()
            raise self._error

    def __call__(self, record: Any) -> None:
        sim_ns = int(round(self.world.sim_time_s * 1e9))
        if sim_ns < self._next_ns:
            return
        command = self.speed_command() if self.speed_command is not None else None
        reached = self.goals_reached() if self.goals_reached is not None else 0
        mode = getattr(record.safety_mode, "value", str(record.safety_mode))
        self._queue.put(_Snapshot(self.frames_queued, sim_ns * 1e-9, self.world.data.qpos.copy(),
                                  mode, command, reached))
        self.frames_queued += 1
        self._next_ns += self._period_ns * (1 + (sim_ns - self._next_ns) // self._period_ns)

    def close(self, timeout_s: float = 600.0) -> None:
        """Finish the file (renders what is queued) and write the contact sheet. Safe twice."""
        if self._thread is None:
            return
        self._run_over.set()
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("--video: the writer did not finish within %.0f s", timeout_s)
        self._thread = None
        if self._error is not None:
            log.error("--video failed: %s", self._error)

    def report(self) -> dict[str, Any]:
        return {"path": str(self.path), "frames": self.frames_written, "fps": self.config.fps,
                "size": [self.config.width, self.config.height],
                "contact_sheet": str(self.sheet_path) if self.sheet_path else None,
                "error": str(self._error) if self._error else None}

    # -- writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        mj = require("mujoco", "the MuJoCo simulator")
        cfg = self.config
        try:
            renderer = _SceneRenderer(mj, self.world.model, self.world._trunk, cfg,
                                      self._goals_xyz)
            container = self._av.open(str(self.path), "w")
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        if not cfg.render_during_run:
            self._run_over.wait()
        try:
            stream = container.add_stream("libx264", rate=round(cfg.fps))
            stream.width, stream.height, stream.pix_fmt = cfg.width, cfg.height, "yuv420p"
            stream.options = {"crf": str(cfg.crf), "preset": "veryfast"}
            previous: tuple[float, np.ndarray] | None = None
            while (snap := self._queue.get()) is not None:
                pixels = self._frame(renderer, snap, previous)
                previous = (snap.t_s, renderer.data.xpos[renderer.trunk].copy())
                frame = self._av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts = snap.index
                for packet in stream.encode(frame):
                    container.mux(packet)
                self.frames_written += 1
                self._keep_thumbnail(snap.t_s, pixels)
            for packet in stream.encode(None):
                container.mux(packet)
        except BaseException as exc:  # noqa: BLE001 - reported by close()
            self._error = exc
        finally:
            container.close()
            renderer.close()
        if self._thumbs and self._error is None:
            self.sheet_path = self._write_sheet()

    def _frame(self, renderer: _SceneRenderer, snap: _Snapshot,
               previous: tuple[float, np.ndarray] | None) -> np.ndarray:
        dt = snap.t_s - previous[0] if previous is not None else 0.0
        renderer.set_state(snap.qpos)
        pos = renderer.data.xpos[renderer.trunk]
        rot = renderer.data.xmat[renderer.trunk].reshape(3, 3)
        actual = "n/a"
        if previous is not None and dt > 0:
            velocity = (pos[:2] - previous[1][:2]) / dt
            actual = f"{velocity[0] * rot[0, 0] + velocity[1] * rot[1, 0]:+.2f} m/s"
        command = (f"{snap.speed_command_m_s:+.2f} m/s" if snap.speed_command_m_s is not None
                   else "n/a")
        labels, values = "time\nsafety\nspeed cmd\nspeed", \
            f"{snap.t_s:6.2f} s\n{snap.mode}\n{command}\n{actual}"
        if self._goals_xyz is not None:
            labels += "\ncourse\ngoals"
            values += f"\n{self.course}\n{snap.goals_reached}/{len(self._goals_xyz)}"
        self._label = (snap.mode, snap.goals_reached)
        return renderer.render(dt, labels, values, snap.goals_reached)

    def _keep_thumbnail(self, t_s: float, pixels: np.ndarray) -> None:
        """Every ``_thumb_stride``-th frame at half size; thinned to at most 8 per sheet cell."""
        if self.frames_written % self._thumb_stride:
            return
        mode, reached = self._label
        self._thumbs.append((t_s, pixels[::2, ::2].copy(), mode, reached))
        cells = self.config.sheet_columns * self.config.sheet_rows
        if len(self._thumbs) > 8 * cells:
            self._thumbs = self._thumbs[::2]
            self._thumb_stride *= 2

    def _write_sheet(self) -> Path:
        cfg, Image = self.config, self._image
        cells = cfg.sheet_columns * cfg.sheet_rows
        picks = np.unique(np.linspace(0, len(self._thumbs) - 1, cells).round().astype(int))
        h, w = self._thumbs[0][1].shape[:2]
        from PIL import ImageDraw, ImageFont

        size = max(12, h // 10)  # legible at the sheet's own size
        try:
            font = ImageFont.load_default(size=size)
        except TypeError:  # Pillow < 10.1: the fixed bitmap font
            font = ImageFont.load_default()
        label = size + 8
        sheet = Image.new("RGB", (cfg.sheet_columns * w, cfg.sheet_rows * (h + label)), "white")
        draw = ImageDraw.Draw(sheet)
        goals = f" of {len(self._goals_xyz)}" if self._goals_xyz is not None else ""
        for cell, pick in enumerate(picks):
            t_s, thumb, mode, reached = self._thumbs[pick]
            x, y = (cell % cfg.sheet_columns) * w, (cell // cfg.sheet_columns) * (h + label)
            sheet.paste(Image.fromarray(thumb), (x, y + label))
            text = f"{t_s:.1f} s  {mode}" + (f"  goals {reached}{goals}" if goals else "")
            draw.text((x + 4, y + 3), text, fill="black", font=font)
        path = contact_sheet_path(self.path)
        sheet.save(path)
        return path
