"""The live publisher: the run's state to foxglove-sdk channels, off the control loop.

The loop, the actor thread and the depth thread call :meth:`LivePublisher.on_tick`,
:meth:`~LivePublisher.on_actor` and :meth:`~LivePublisher.on_depth`. Each checks its stream's
:class:`~hal.live.mailbox.RateGate`, copies the few arrays it needs into a bounded
:class:`~hal.live.mailbox.Mailbox` and returns: no encoding, no socket, no lock, no wait. When no
client subscribes to a stream's channels the listener copies nothing at all. A worker thread
drains the mailboxes every ``worker_period_ms``, builds the messages and logs them on the SDK's
channels; the SDK's server sends them to the subscribed clients (and drops a slow client's oldest
messages past its backlog). Drops are counted per stream, reported and logged at a limited rate.

Topics (Foxglove schemas through foxglove-sdk, protobuf; krabby's own as JSON):

- ``/pose`` (``foxglove.PoseInFrame``) and ``/tf`` (``foxglove.FrameTransforms``): the base pose
  (ground truth in the simulator, the IMU's orientation at the origin on hardware) and, in the
  simulator, every link's transform from its parent; ``/scene`` (``foxglove.SceneUpdate``): the
  terrain and the robot's bodies (simulator);
- ``/camera/depth`` and ``/policy/depth`` (``foxglove.RawImage`` 32FC1): the depth frame as the
  camera gives it (metres) and as the policy sees it (58x87 after preprocessing);
- ``/policy/height_scan`` (``foxglove.PointCloud``, frame ``base``): the observation's scan;
- ``/joints`` (JSON): per joint the policy's target, the target after the safety layer and the
  measured position (hardware joint order); ``/joints/state`` (``foxglove.JointStates``);
- ``/safety/mode``, ``/safety/transition`` (JSON) and ``/log`` (``foxglove.Log``);
- ``/operator/command``, ``/operator/event``, ``/policy/heading``, ``/latency``, ``/live/stats``
  (JSON).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from hal.live import messages as fm
from hal.live.channels import LiveChannels
from hal.live.mailbox import Mailbox, RateGate
from hal.log_limit import RateLimitedLog

if TYPE_CHECKING:
    from hal.safety import SafetyLayer

__all__ = ["LiveConfig", "PolicyView", "LivePublisher"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveConfig:
    """Rates (Hz) per stream and the hand-over's bounds.

    Attributes:
        joints_rate_hz: ``/joints``, ``/joints/state``, ``/latency`` (at most 100).
        pose_rate_hz: ``/pose`` and ``/tf``.
        scene_rate_hz: ``/scene`` (static geometry: a low rate serves late joiners).
        depth_rate_hz: ``/policy/depth``. camera_rate_hz: ``/camera/depth``.
        policy_rate_hz: ``/policy/height_scan`` and ``/policy/heading``.
        status_rate_hz: ``/safety/mode`` and ``/operator/command`` (a change is sent at once).
        mailbox_size: Items per stream before the oldest is dropped.
        worker_period_ms: How often the worker drains the mailboxes.
    """

    joints_rate_hz: float = 100.0
    pose_rate_hz: float = 50.0
    scene_rate_hz: float = 1.0
    depth_rate_hz: float = 10.0
    camera_rate_hz: float = 5.0
    policy_rate_hz: float = 25.0
    status_rate_hz: float = 10.0
    mailbox_size: int = 8
    worker_period_ms: float = 5.0

    def __post_init__(self) -> None:
        for name in ("joints_rate_hz", "pose_rate_hz", "scene_rate_hz", "depth_rate_hz",
                     "camera_rate_hz", "policy_rate_hz", "status_rate_hz"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise ValueError(f"live {name} {value}: use 0 (off) to 100 Hz")
        if self.worker_period_ms <= 0:
            raise ValueError(f"live worker_period_ms {self.worker_period_ms}: must be positive")


@dataclass(frozen=True)
class PolicyView:
    """Where the policy's view sits in its observation (from the training layout).

    Attributes:
        scan: (start, stop) of the height scan block; None when the policy has none.
        scan_points_xy: (N, 2) scan points in the base's yaw frame, metres.
        scan_offset_m: training's scan is ``base_z - offset - terrain_z``.
        yaw: (start, stop) of the two heading terms.
        yaw_scale: the observation holds ``yaw_scale`` x the heading error (1.5 for a student's
            predicted yaw, 1 for a teacher's heading error).
    """

    scan: tuple[int, int] | None
    scan_points_xy: np.ndarray
    scan_offset_m: float
    yaw: tuple[int, int]
    yaw_scale: float


class LivePublisher:
    """Listeners for the loop and the policy's threads, and the thread that publishes.

    Args:
        context: The foxglove-sdk ``Context`` the server was started on.
        joint_names: Hardware joint order (the order of the tick's arrays).
        config: Rates and bounds.
        safety: The safety layer (its ``events()`` name each transition), or None.
        policy_view: Where the scan and heading sit in the observation, or None.
        scene: The simulator's scene source (``snapshot()``, ``base_pose(snap)``,
            ``transforms(stamp_ns, snap)``, ``scene_update(stamp_ns)``), or None.
        command_source: Returns the operator's command in force (``forward_speed_m_s``,
            ``yaw_rate_rad_s``, ``mode``), or None.
    """

    def __init__(self, context: Any, joint_names: list[str], config: LiveConfig | None = None,
                 safety: SafetyLayer | None = None, policy_view: PolicyView | None = None,
                 scene: Any = None,
                 command_source: Callable[[], Any] | None = None) -> None:
        self.config = cfg = config or LiveConfig()
        self.joint_names = list(joint_names)
        self.safety, self.view, self.scene = safety, policy_view, scene
        self.command_source = command_source
        self.channels = LiveChannels(context, with_scene=scene is not None)
        size = cfg.mailbox_size
        self.boxes = {name: Mailbox(name, size)
                      for name in ("joints", "pose", "camera", "policy", "depth", "events")}
        self._gates = {"joints": RateGate(cfg.joints_rate_hz), "pose": RateGate(cfg.pose_rate_hz),
                       "camera": RateGate(cfg.camera_rate_hz),
                       "policy": RateGate(cfg.policy_rate_hz),
                       "depth": RateGate(cfg.depth_rate_hz)}
        self._status_gate = RateGate(cfg.status_rate_hz)
        self._scene_gate = RateGate(cfg.scene_rate_hz)
        # Which streams a client subscribes to; the worker refreshes these, the listeners read them.
        self.wanted = {name: False for name in self._gates}
        self._last_mode: Any = None
        self._latest_mode: tuple[int, int, Any] | None = None  # (seq, t_ns, mode) the worker sent
        self._events_sent: set[tuple] = set()
        self._latest_tick = (0, 0)  # (seq, tick_ns) the worker saw last
        self.sent = {name: 0 for name in self.boxes}
        self.errors = 0
        self._warn = RateLimitedLog(log, interval_s=5.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._policy_target = np.full(len(self.joint_names), np.nan)  # none yet

    # -- producers (loop, actor and depth threads): copy what is due, never wait --------------

    def on_tick(self, record: Any) -> None:
        """Tick listener (control loop)."""
        t_ns = record.tick_ns
        mode = record.safety_mode
        if mode is not self._last_mode:
            self.boxes["events"].offer(("mode", record.seq, t_ns, self._last_mode, mode))
            self._last_mode = mode
        received = record.command
        if received is not None:  # the policy's target in force until its next command
            np.copyto(self._policy_target, received.message.target_rad)
        wanted, gates = self.wanted, self._gates
        if wanted["joints"] and gates["joints"].due(t_ns):
            joints = record.joints
            self.boxes["joints"].offer((
                record.seq, t_ns, mode, joints.position_rad.copy(),
                joints.velocity_rad_s.copy(), joints.torque_nm.copy(), self._policy_target.copy(),
                record.applied.target_rad.copy(), received is not None,
                record.obs_to_command_ns))
        if wanted["pose"] and gates["pose"].due(t_ns):
            snap = (self.scene.snapshot() if self.scene is not None
                    else record.imu.quaternion_wxyz.copy())
            self.boxes["pose"].offer((record.seq, t_ns, snap))
        frame = record.new_depth
        if frame is not None and wanted["camera"] and gates["camera"].due(t_ns):
            self.boxes["camera"].offer((record.depth_seq, t_ns, frame.copy()))

    def on_actor(self, record: Any) -> None:
        """Actor listener (actor thread): the scan, the heading terms and the step's timings."""
        if not self.wanted["policy"] or self.view is None:
            return
        now = time.monotonic_ns()
        if not self._gates["policy"].due(now):
            return
        obs, view = record.observation, self.view
        scan = obs[view.scan[0]:view.scan[1]].copy() if view.scan is not None else None
        self.boxes["policy"].offer((record.obs_seq, now, scan, obs[view.yaw[0]:view.yaw[1]].copy(),
                                    tuple(record.timings_ns)))

    def on_depth(self, record: Any) -> None:
        """Depth listener (depth thread): the preprocessed image the policy saw."""
        if not self.wanted["depth"]:
            return
        now = time.monotonic_ns()
        if self._gates["depth"].due(now):
            self.boxes["depth"].offer((record.frame_seq, now, record.depth.copy(),
                                       record.engine_ns))

    # -- worker thread ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread."""
        self._thread = threading.Thread(target=self._run, name="krabby-live", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        period_s = self.config.worker_period_ms / 1e3
        next_stats_ns = 0
        while not self._stop.is_set():
            try:
                self.publish_pending()
                now = time.monotonic_ns()
                if now >= next_stats_ns:
                    next_stats_ns = now + 1_000_000_000
                    self._publish_stats(now)
            except Exception as exc:  # noqa: BLE001 - the view may fail; the robot must not
                self.errors += 1
                self._warn.warning("error", "live view: %s: %s (the run goes on)",
                                   type(exc).__name__, exc)
            self._stop.wait(period_s)

    def refresh_wanted(self) -> None:
        """Which streams have a subscriber now (the listeners copy only those)."""
        ch = self.channels
        self.wanted["joints"] = ch.any_sinks("joints", "joint_states", "latency")
        self.wanted["pose"] = ch.any_sinks("pose", "tf")
        self.wanted["camera"] = ch.any_sinks("camera")
        self.wanted["policy"] = ch.any_sinks("scan", "heading", "latency")
        self.wanted["depth"] = ch.any_sinks("policy_depth", "latency")

    def publish_pending(self) -> None:
        """Drain every mailbox and log its messages (worker thread; tests may call it)."""
        self.refresh_wanted()
        for kind, *item in self.boxes["events"].take_all():
            if kind == "mode":
                self._publish_mode(*item)
            else:
                self.channels.operator.log(item[0], log_time=int(item[0].get("t_ns", 0)))
        for item in self.boxes["joints"].take_all():
            self._publish_joints(*item)
        for item in self.boxes["pose"].take_all():
            self._publish_pose(*item)
        for seq, t_ns, frame in self.boxes["camera"].take_all():
            self.channels.camera.log(fm.raw_image_32f(t_ns, "depth_camera", frame), log_time=t_ns)
            self.sent["camera"] += 1
        for item in self.boxes["policy"].take_all():
            self._publish_policy(*item)
        for seq, t_ns, image, engine_ns in self.boxes["depth"].take_all():
            self.channels.policy_depth.log(fm.raw_image_32f(t_ns, "depth_camera", image),
                                           log_time=t_ns)
            self.channels.latency.log({"t_ns": t_ns, "depth_engine_us": engine_ns / 1e3},
                                      log_time=t_ns)
            self.sent["depth"] += 1
        now = time.monotonic_ns()
        if self._status_gate.due(now):
            self._publish_status(now)
        if self.scene is not None and self._scene_gate.due(now) and self.channels.scene.has_sinks():
            self.channels.scene.log(self.scene.scene_update(self._latest_tick[1] or now),
                                    log_time=now)

    def _publish_joints(self, seq: int, t_ns: int, mode: Any, position: np.ndarray,
                        velocity: np.ndarray, torque: np.ndarray, target: np.ndarray,
                        applied: np.ndarray, new_command: bool, obs_to_command_ns: int) -> None:
        ch = self.channels
        self._latest_tick = (seq, t_ns)
        policy = [None if not np.isfinite(v) else float(v) for v in target]
        ch.joints.log({"seq": seq, "t_ns": t_ns, "mode": str(mode), "names": self.joint_names,
                       "measured_rad": position.tolist(), "policy_target_rad": policy,
                       "new_command": new_command, "safe_target_rad": applied.tolist()},
                      log_time=t_ns)
        ch.joint_states.log(fm.joint_states(t_ns, self.joint_names, position, velocity, torque),
                            log_time=t_ns)
        if obs_to_command_ns >= 0:
            ch.latency.log({"t_ns": t_ns, "seq": seq,
                            "obs_to_command_us": obs_to_command_ns / 1e3}, log_time=t_ns)
        self.sent["joints"] += 1

    def _publish_pose(self, seq: int, t_ns: int, snap: Any) -> None:
        ch = self.channels
        if self.scene is not None:
            position, quat = self.scene.base_pose(snap)
            ch.tf.log(self.scene.transforms(t_ns, snap), log_time=t_ns)
        else:  # hardware: the IMU's orientation; no position estimate
            position, quat = (0.0, 0.0, 0.0), snap
            ch.tf.log(fm.frame_transforms([fm.frame_transform(t_ns, "world", "base", position,
                                                                quat)]), log_time=t_ns)
        ch.pose.log(fm.pose_in_frame(t_ns, "world", position, quat), log_time=t_ns)
        self.sent["pose"] += 1

    def _publish_policy(self, obs_seq: int, t_ns: int, scan: np.ndarray | None,
                        yaw_terms: np.ndarray, timings_ns: tuple[int, ...]) -> None:
        ch, view = self.channels, self.view
        if scan is not None:
            points = np.empty((len(scan), 3), dtype=np.float32)
            points[:, :2] = view.scan_points_xy
            points[:, 2] = -(scan + view.scan_offset_m)  # terrain height below the base
            ch.scan.log(fm.point_cloud_xyz(t_ns, "base", points), log_time=t_ns)
        heading = (yaw_terms / view.yaw_scale).tolist()
        ch.heading.log({"obs_seq": obs_seq, "t_ns": t_ns, "observation": yaw_terms.tolist(),
                        "heading_error_rad": heading[0], "next_heading_error_rad": heading[1]},
                       log_time=t_ns)
        build, engine, post, send = timings_ns
        ch.latency.log({"t_ns": t_ns, "obs_seq": obs_seq, "actor_obs_build_us": build / 1e3,
                        "actor_engine_us": engine / 1e3, "actor_post_us": post / 1e3,
                        "actor_send_us": send / 1e3}, log_time=t_ns)
        self.sent["policy"] += 1

    def _publish_mode(self, seq: int, t_ns: int, previous: Any, mode: Any) -> None:
        ch = self.channels
        ch.mode.log({"seq": seq, "t_ns": t_ns, "mode": str(mode)}, log_time=t_ns)
        self._latest_mode = (seq, t_ns, mode)
        if self.safety is None:
            text = f"safety: {previous} -> {mode}"
            ch.log.log(fm.log_message(t_ns, "info", text), log_time=t_ns)
        else:
            for event in self.safety.events():
                key = (event.get("t_ns"), event.get("from"), event.get("to"),
                       event.get("reason"), event.get("detail"))
                if key in self._events_sent:
                    continue
                self._events_sent.add(key)
                msg = {"seq": seq, "t_ns": int(event.get("t_ns", 0)),
                       "from": str(event.get("from")), "to": str(event.get("to")),
                       "reason": str(event.get("reason", "")),
                       "detail": str(event.get("detail", ""))}
                ch.transition.log(msg, log_time=t_ns)
                level = "warning" if msg["to"] in ("damping", "estop") else "info"
                ch.log.log(fm.log_message(t_ns, level, f"safety: {msg['from']} -> {msg['to']} "
                                                       f"({msg['reason']}) {msg['detail']}"),
                           log_time=t_ns)
        self.sent["events"] += 1

    def _publish_status(self, now_ns: int) -> None:
        ch = self.channels
        latest = self._latest_mode
        if latest is not None:  # the mode in force, again, for clients that joined later
            seq, t_ns, mode = latest
            ch.mode.log({"seq": self._latest_tick[0] or seq, "t_ns": now_ns, "mode": str(mode)},
                        log_time=now_ns)
        if self.command_source is not None:
            command = self.command_source()
            if command is not None:
                ch.command.log({"t_ns": now_ns,
                                "forward_speed_m_s": float(command.forward_speed_m_s),
                                "yaw_rate_rad_s": float(getattr(command, "yaw_rate_rad_s", 0.0)),
                                "mode": str(command.mode)}, log_time=now_ns)

    def on_operator_event(self, entry: dict[str, Any]) -> None:
        """Operator hub change listener (loop thread): queue the event as it is."""
        self.boxes["events"].offer(("operator", dict(entry)))

    def _publish_stats(self, now_ns: int) -> None:
        dropped = self.dropped()
        self.channels.stats.log({"t_ns": now_ns, "sent": dict(self.sent), "dropped": dropped,
                                 "errors": self.errors}, log_time=now_ns)
        if any(dropped.values()):
            self._warn.warning("drops", "live view fell behind: dropped %s (the loop never waits "
                                        "for it)", {k: v for k, v in dropped.items() if v})

    # -- end and report --------------------------------------------------------------------------

    def dropped(self) -> dict[str, int]:
        return {name: box.dropped for name, box in self.boxes.items()}

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the worker (after the producers stopped)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def report(self) -> dict[str, Any]:
        """The run report's ``live`` section."""
        return {"sent": dict(self.sent), "dropped": self.dropped(),
                "offered": {name: box.offered for name, box in self.boxes.items()},
                "errors": self.errors}
