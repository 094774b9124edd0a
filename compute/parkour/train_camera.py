"""The training depth camera as a training config dump of this family spells it.

A randomised value (a ``[lo, hi]`` range sampled uniformly, a ``{lower, upper}`` pair, or a Gaussian
``{mean, std}``) gives the contract its nominal value: the middle of the range, or the mean. Every
reading is named in the contract's notes; where a config holds two spellings that disagree, the one
the training code of that fork reads is taken, the other is named as unused, and a warning is
logged. ``krabby-export --camera-pitch-deg / --camera-hfov-deg / --camera-position`` override the
result (:class:`CameraOverrides`).

Sign convention: ``pitch_deg`` is positive when the optical axis points below the horizon. In Isaac
Gym the camera looks along its local +x, and legged_gym attaches it with
``Quat.from_euler_zyx(roll, pitch, yaw)``; a positive rotation about +y turns +x downwards, so a
positive ``depth.angle`` (degrees) or ``depth.rotation`` pitch (radians) is a downward pitch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np

from compute.parkour.config_dump import is_range, lookup, nominal
from compute.parkour.contract import CameraContract, ContractError

__all__ = ["CameraOverrides", "parse_position", "legged_gym_camera", "isaac_lab_camera",
           "pitch_down_deg"]

log = logging.getLogger(__name__)
_AGREE_DEG = 0.05  # two readings closer than this say the same thing


@dataclass(frozen=True)
class CameraOverrides:
    """User-given camera values that replace what the training config says (None: keep)."""

    pitch_deg: float | None = None
    horizontal_fov_deg: float | None = None
    position_m: tuple[float, float, float] | None = None

    def apply(self, camera: CameraContract) -> tuple[CameraContract, list[str]]:
        """``camera`` with the given values replaced, and a note per replaced value."""
        if self.pitch_deg is not None and not (math.isfinite(self.pitch_deg)
                                               and -90.0 <= self.pitch_deg <= 90.0):
            raise ContractError(f"--camera-pitch-deg {self.pitch_deg}: expected degrees in "
                                "[-90, 90], positive looking down")
        notes: list[str] = []
        changes: dict[str, Any] = {}
        for field_name, label, flag, value, unit in (
                ("pitch_deg", "pitch", "--camera-pitch-deg", self.pitch_deg, "° down"),
                ("horizontal_fov_deg", "horizontal FOV", "--camera-hfov-deg",
                 self.horizontal_fov_deg, "°"),
                ("position_m", "position", "--camera-position", self.position_m, " m")):
            if value is None:
                continue
            before = getattr(camera, field_name)
            changes[field_name] = tuple(value) if field_name == "position_m" else float(value)
            notes.append(f"camera {label} {_show(changes[field_name])}{unit} from {flag} "
                         f"(replacing {_show(before)}{unit} read from the training config or "
                         "robot definition)")
        for note in notes:
            log.info("training contract: %s", note)
        camera = replace(camera, **changes)
        camera.check()
        return camera, notes


def parse_position(text: str) -> tuple[float, float, float]:
    """``"X,Y,Z"`` (metres) as a tuple.

    Raises:
        ContractError: not three finite numbers separated by commas.
    """
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ContractError(f"--camera-position {text!r}: expected X,Y,Z in metres, e.g. "
                            "0.355,0,0.065")
    return values  # type: ignore[return-value]


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(f"{float(v):.4g}" for v in value) + ")"
    return f"{float(value):.4g}"


# -- legged_gym ---------------------------------------------------------------------------------

_WHY_ANGLE = ("extreme-parkour's attach_camera samples the pitch uniformly from depth.angle "
              "(degrees, positive down)")
_WHY_ROTATION = ("the Go2 forks' attach_camera sample roll/pitch/yaw uniformly between "
                 "depth.rotation.lower and .upper (radians) whenever the config has "
                 "depth.rotation, and then never read depth.angle")
_WHY_RANDOMIZE = ("with domain_rand.randomize_camera the depth-randomisation forks sample the "
                  "pitch from domain_rand.camera_angle_range (degrees) instead of depth.angle")


Reading = tuple[str, float, str]  # (source, value, why the training code reads it)


def _pitch_readings(depth: Mapping[str, Any], rand: Mapping[str, Any]) -> list[Reading]:
    """(source, pitch in degrees down, why), in the order the training code prefers them."""
    readings: list[Reading] = []
    if rand.get("randomize_camera") and "camera_angle_range" in rand:
        value = rand["camera_angle_range"]
        readings.append((f"domain_rand.camera_angle_range {value}",
                         nominal(value, "domain_rand.camera_angle_range"), _WHY_RANDOMIZE))
    if "rotation" in depth:
        rotation = depth["rotation"]
        if isinstance(rotation, Mapping) and "lower" in rotation and "upper" in rotation:
            lower, upper = rotation["lower"], rotation["upper"]
            if not (isinstance(lower, (list, tuple)) and isinstance(upper, (list, tuple))
                    and len(lower) == 3 and len(upper) == 3):
                raise ContractError(f"training config: depth.rotation lower/upper must be [roll, "
                                    f"pitch, yaw] in radians, found {dict(rotation)!r}")
            middle = [nominal([lo, hi], "depth.rotation") for lo, hi in zip(lower, upper)]
            for axis, value in (("roll", middle[0]), ("yaw", middle[2])):
                if abs(math.degrees(value)) > _AGREE_DEG:
                    log.warning("depth.rotation's middle %s %.3g° is not carried by the "
                                "contract (pitch only)", axis, math.degrees(value))
            readings.append((f"depth.rotation pitch [{lower[1]}, {upper[1]}] rad",
                             math.degrees(middle[1]), _WHY_ROTATION))
        else:
            readings.append((f"depth.rotation {rotation!r}", 0.0,
                             "the Go2 forks' attach_camera set no rotation (a level camera) when "
                             "depth.rotation is present but not {lower, upper}"))
    if "angle" in depth:
        readings.append((f"depth.angle {depth['angle']}", nominal(depth["angle"], "depth.angle"),
                         _WHY_ANGLE))
    return readings


def _choose(what: str, readings: list[Reading], unit: str,
            flag: str) -> tuple[float | None, list[str]]:
    """The first reading (the training code's), with notes naming it and any unused one."""
    if not readings:
        return None, []
    source, value, why = readings[0]
    ranged = "middle of the randomised range" if "[" in source or "range" in source else "as given"
    notes = [f"camera {what} {value:.4g}{unit} from {source} ({ranged}): {why}"]
    for other, other_value, _ in readings[1:]:
        if abs(other_value - value) <= _AGREE_DEG:
            notes.append(f"camera {what}: {other} agrees ({other_value:.4g}{unit}) and is unused")
            continue
        note = (f"camera {what} is ambiguous: {other} would give {other_value:.4g}{unit} but the "
                f"training code does not read it here; took {value:.4g}{unit} from {source}. "
                f"Override with {flag}")
        log.warning("training config: %s", note)
        notes.append(note)
    return value, notes


def _position(depth: Mapping[str, Any]) -> tuple[tuple[float, float, float] | None, str]:
    if "position" in depth:
        raw = depth["position"]
        if isinstance(raw, Mapping) and "mean" in raw:
            mean = raw["mean"]
            values = tuple(nominal(v, "depth.position.mean") for v in mean)
            how = (f"depth.position.mean {list(mean)} (Gaussian with std {raw.get('std')} in "
                   "training: the mean is the nominal mount)")
        elif isinstance(raw, Mapping) and "lower" in raw and "upper" in raw:
            values = tuple(nominal([lo, hi], "depth.position")
                           for lo, hi in zip(raw["lower"], raw["upper"]))
            how = f"depth.position lower {raw['lower']} / upper {raw['upper']} (middle)"
        elif isinstance(raw, (list, tuple)):
            values = tuple(nominal(v, "depth.position") for v in raw)
            ranged = any(is_range(v) for v in raw)
            how = f"depth.position {list(raw)}" + (" (middle of each range)" if ranged else "")
        else:
            raise ContractError(f"training config: depth.position must be [x, y, z], {{mean, std}} "
                                f"or {{lower, upper}}, found {raw!r}")
        if "position_rand" in depth:
            how += f" (± depth.position_rand {depth['position_rand']} around it in training)"
    elif "position1" in depth and "position2" in depth:
        first, second = depth["position1"], depth["position2"]
        values = (nominal([first[0], second[0]], "depth.position1/2"),
                  nominal([first[1], second[1]], "depth.position1/2"), float(first[2]))
        how = (f"depth.position1 {list(first)} / position2 {list(second)} (middle of x and y; "
               "training keeps z from position1)")
    else:
        return None, ""
    if len(values) != 3:
        raise ContractError(f"training config: the camera position needs x, y, z; found {values}")
    return values, how  # type: ignore[return-value]


def legged_gym_camera(data: Mapping[str, Any],
                      base: CameraContract) -> tuple[CameraContract, list[str]]:
    """The camera of a legged_gym ``class_to_dict`` dump, and notes on how it was read.

    ``base`` (the robot definition's camera) fills what the dump does not say.
    """
    depth = lookup(data, "depth", None)
    if not isinstance(depth, Mapping):
        return base, ["no depth section: camera from the robot definition"]
    rand = lookup(data, "domain_rand", {}) or {}
    notes: list[str] = []
    pitch, pitch_notes = _choose("pitch", _pitch_readings(depth, rand), "° down",
                                 "--camera-pitch-deg")
    notes += pitch_notes or [f"camera pitch {base.pitch_deg:g}° from the robot definition "
                             "(the config names no depth.angle or depth.rotation)"]
    fov_readings = []
    if rand.get("randomize_camera") and "camera_fov_range" in rand:
        fov_readings.append((f"domain_rand.camera_fov_range {rand['camera_fov_range']}",
                             nominal(rand["camera_fov_range"], "domain_rand.camera_fov_range"),
                             "with domain_rand.randomize_camera the FOV is sampled from it"))
    if "horizontal_fov" in depth:
        fov_readings.append((f"depth.horizontal_fov {depth['horizontal_fov']}",
                             nominal(depth["horizontal_fov"], "depth.horizontal_fov"),
                             "attach_camera sets camera_props.horizontal_fov from it"))
    fov, fov_notes = _choose("horizontal FOV", fov_readings, "°", "--camera-hfov-deg")
    notes += fov_notes
    position, how = _position(depth)
    notes.append(f"camera position from {how}" if position is not None
                 else "camera position from the robot definition (no depth.position)")
    width, height = depth.get("original", (base.width, base.height))
    camera = CameraContract(
        width=int(width), height=int(height),
        horizontal_fov_deg=base.horizontal_fov_deg if fov is None else fov,
        position_m=base.position_m if position is None else position,
        pitch_deg=base.pitch_deg if pitch is None else pitch,
        near_m=nominal(depth.get("near_clip", base.near_m), "depth.near_clip"),
        far_m=nominal(depth.get("far_clip", base.far_m), "depth.far_clip"),
        depth_type="z_depth",  # Isaac Gym's IMAGE_DEPTH is along the optical axis
        update_interval_steps=int(depth.get("update_interval", base.update_interval_steps)))
    return camera, notes


# -- Isaac Lab ----------------------------------------------------------------------------------

def _find_camera(scene: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    cameras = [(name, cfg) for name, cfg in scene.items()
               if isinstance(cfg, Mapping) and "data_types" in cfg and "offset" in cfg]
    cameras.sort(key=lambda item: "depth" not in item[0])
    return cameras[0] if cameras else None


def _rotation(w: float, x: float, y: float, z: float) -> np.ndarray:
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def pitch_down_deg(rot_wxyz: Any, convention: str) -> float:
    """Downward pitch of the optical axis of an Isaac Lab sensor offset ``rot`` (w, x, y, z).

    The optical axis in the offset's own frame: +x (``world``), +z (``ros``), −z (``opengl``).

    Raises:
        ContractError: an unknown convention.
    """
    forward = {"world": (1.0, 0.0, 0.0), "ros": (0.0, 0.0, 1.0), "opengl": (0.0, 0.0, -1.0)}
    if convention not in forward:
        raise ContractError(f"training config: camera offset convention {convention!r}; valid "
                            f"are {sorted(forward)}")
    axis = _rotation(*(float(v) for v in rot_wxyz)) @ np.array(forward[convention])
    return math.degrees(math.asin(max(-1.0, min(1.0, -float(axis[2])))))


def _add_euler_pitch(rot_wxyz: Any, pitch_rad: float) -> tuple[float, float, float, float]:
    """``rot`` with ``pitch_rad`` added to the pitch of its x-y-z Euler angles, as Isaac Lab's
    ``euler_xyz_from_quat`` / ``quat_from_euler_xyz`` pair does."""
    w, x, y, z = (float(v) for v in rot_wxyz)
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x)))) + pitch_rad
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (cy * cr * cp + sy * sr * sp, cy * sr * cp - sy * cr * sp,
            cy * cr * sp + sy * sr * cp, sy * cr * cp - cy * sr * sp)


def _pitch_noise(data: Mapping[str, Any], camera_name: str) -> tuple[float, str] | None:
    """The middle of a startup event's camera pitch noise (degrees), e.g. the Isaac Lab parkour
    port's ``random_camera_position`` with ``rot_noise_range: {pitch: [lo, hi]}``."""
    events = lookup(data, "events", {}) or {}
    for name, term in events.items():
        params = term.get("params") if isinstance(term, Mapping) else None
        noise = params.get("rot_noise_range") if isinstance(params, Mapping) else None
        if not isinstance(noise, Mapping) or noise.get("pitch") is None:
            continue
        sensor = params.get("sensor_cfg")
        if isinstance(sensor, Mapping) and sensor.get("name") not in (None, camera_name):
            continue
        return (nominal(noise["pitch"], f"events.{name}.params.rot_noise_range.pitch"),
                f"events.{name}.params.rot_noise_range.pitch {noise['pitch']}°")
    return None


def isaac_lab_camera(data: Mapping[str, Any], base: CameraContract,
                     policy_rate_hz: float) -> tuple[CameraContract, list[str]]:
    """The camera of an Isaac Lab ``env.yaml`` (the scene sensor with ``data_types``), and notes."""
    found = _find_camera(lookup(data, "scene"))
    if found is None:
        return base, ["no camera sensor in the scene: camera from the robot definition"]
    name, sensor = found
    offset = sensor.get("offset", {}) or {}
    pattern = sensor.get("pattern_cfg", {}) or {}
    fov = base.horizontal_fov_deg
    if "focal_length" in pattern and "horizontal_aperture" in pattern:
        fov = math.degrees(2 * math.atan(float(pattern["horizontal_aperture"])
                                         / (2 * float(pattern["focal_length"]))))
    rot = offset.get("rot", (1.0, 0.0, 0.0, 0.0))
    convention = str(offset.get("convention", "world"))
    notes = [f"camera position from scene.{name}.offset.pos "
             f"{list(offset.get('pos', base.position_m))}",
             f"camera pitch {pitch_down_deg(rot, convention):.4g}° down from "
             f"scene.{name}.offset.rot {list(rot)} ({convention} convention)"]
    noise = _pitch_noise(data, name)
    if noise is not None:
        middle_deg, source = noise
        if middle_deg:
            rot = _add_euler_pitch(rot, math.radians(middle_deg))
        notes.append(f"camera pitch {pitch_down_deg(rot, convention):.4g}° down: {source} "
                     f"randomises the offset's Euler pitch at startup, and the middle of that "
                     f"range ({middle_deg:g}°) is added to it")
    notes.append(f"camera horizontal FOV {fov:.4g}° from scene.{name}.pattern_cfg" if fov
                 != base.horizontal_fov_deg or "focal_length" in pattern else
                 "camera horizontal FOV from the robot definition (no focal_length/aperture)")
    types = [str(t) for t in sensor.get("data_types", [])]
    period_s = float(sensor.get("update_period", 0.0) or 0.0)
    interval = round(period_s * policy_rate_hz) if period_s > 0 else base.update_interval_steps
    camera = CameraContract(
        width=int(pattern.get("width", base.width)), height=int(pattern.get("height", base.height)),
        horizontal_fov_deg=fov,
        position_m=tuple(float(v) for v in  # type: ignore[arg-type]
                         offset.get("pos", base.position_m)),
        pitch_deg=pitch_down_deg(rot, convention), near_m=base.near_m,
        far_m=float(sensor.get("max_distance", base.far_m)),
        depth_type="distance_to_camera" if "distance_to_camera" in types else "z_depth",
        update_interval_steps=max(1, int(interval)))
    return camera, notes
