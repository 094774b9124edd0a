"""Backends registered by kind and name, each with its own config dataclass and a factory.

A backend is one module and one registration::

    @dataclass(frozen=True)
    class MyCameraConfig:
        section: ClassVar[str] = "my_camera"
        exposure_ms: float = setting(4.0, flag="--my-camera-exposure", help="exposure, ms")

    def make_my_camera(robot: RobotConfig, config: MyCameraConfig) -> DeviceParts:
        from my_package.camera import MyCamera  # the heavy SDK only when it is built

        return DeviceParts(camera=MyCamera(config.exposure_ms))

    register_backend("camera", "my-camera", make_my_camera, config=MyCameraConfig,
                     help="my camera over USB", provides=("camera",))

The config dataclass is a :mod:`hal.config` section: an entry point that offers the backend's
kind puts it into its run configuration (:func:`backend_sections`), so its flags and ``--config``
table come from its fields. A config with no settings (the simulator's
:class:`~hal.sim.config.MujocoWorldConfig`, which its server computes) brings no flags: a command
that does not fill it runs the backend with its defaults.

Device kinds (camera, motors, imu, height_scanner) build :class:`DeviceParts`: a backend whose
hardware carries several parts says so with ``provides`` (the ZED's IMU comes with its camera, the
Go2's IMU and foot contacts with its motors, the simulator's every part with its one world), and
:func:`compose_devices` assembles the chosen backends' parts into the server's devices, the same
way for every server. Operator sources are built once the server runs:
``factory(context, config, *used)`` with a :class:`hal.operator.base.OperatorContext`, returning
the source, or None where its config (or the hardware) leaves it off.

Choices of ``--camera``/``--motors`` are read from the registry when the parser is built
(:func:`choices`), so a backend registered later is still a valid choice.

Registering imports nothing heavy: a factory imports its SDK (pyzed, the Unitree SDK, mujoco)
when it is called. The built-in backends are registered by :mod:`hal.backends.builtin`, loaded on
the first query. Policy-free: nothing here knows the policy.
"""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from hal.devices.aggregate import HalDevices
from hal.devices.base import (
    DepthCamera,
    FootContactSensor,
    HeightScanner,
    Imu,
    JointDriver,
    Steppable,
)
from hal.robot import RobotConfig

__all__ = ["KINDS", "PARTS", "Backend", "DeviceParts", "UnknownBackendError", "register_backend",
           "unregister_backend", "get_backend", "backend_names", "backends", "choices",
           "backend_sections", "providers", "build_backend", "compose_devices"]

log = logging.getLogger(__name__)

KINDS = ("camera", "motors", "imu", "height_scanner", "operator")
"""The kinds of backend: what ``--camera``, ``--motors``, ... choose among."""

PARTS = ("joints", "imu", "contacts", "camera", "height_scanner")
"""What a device backend may provide (the fields of :class:`DeviceParts`)."""

_BUILTINS = "hal.backends.builtin"


class UnknownBackendError(ValueError):
    """A backend name (or kind) nobody registered; the message lists the valid ones."""


@dataclass
class DeviceParts:
    """The (unconnected) devices one backend built.

    A motor backend gives the joints and, when its hardware has them, an IMU and foot contacts
    (the Go2); a camera backend gives the camera and, when it has one, an IMU (the ZED). A
    simulator gives every part, all views of one ``world``, and the world's clock.
    """

    joints: JointDriver | None = None
    imu: Imu | None = None
    contacts: FootContactSensor | None = None
    camera: DepthCamera | None = None
    height_scanner: HeightScanner | None = None
    world: Steppable | None = None  # a simulator the server advances once per tick
    clock_ns: Callable[[], int] | None = None  # the clock the parts stamp with, if not monotonic


@dataclass(frozen=True)
class Backend:
    """One registered backend.

    Attributes:
        kind: One of :data:`KINDS`.
        name: What the user types (``--camera zed``).
        factory: ``factory(robot, config, *used)`` builds the backend, unconnected: a
            :class:`DeviceParts` for device kinds; for operator sources
            ``factory(context, config, *used)`` gives the source or None (see the module's doc).
        config: Its config dataclass (a :mod:`hal.config` section), or None for a backend with no
            settings; the factory gets the configured instance.
        uses: Shared sections the factory also needs (``Go2NetworkSection``), passed after
            ``config`` in this order.
        provides: The :data:`PARTS` it builds (a robot without an IMU is refused before a
            device is built).
        requires: Other kinds' backends it only works with, by kind (the ``go2-sim`` camera comes
            with the ``go2`` motors of ``krabby-go2-sim``).
        check: Refuses a configuration the backend cannot run with (raises ValueError naming the
            flag), called before anything is built.
        help: One line for ``--help`` and the error listing the valid names.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    config: type | None = None
    uses: tuple[type, ...] = ()
    provides: tuple[str, ...] = ()
    requires: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    check: Callable[[Any], None] | None = None
    help: str = ""


_lock = threading.Lock()
_registry: dict[str, dict[str, Backend]] = {kind: {} for kind in KINDS}
_builtins_loaded = False


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UnknownBackendError(f"backend kind {kind!r}: valid are {list(KINDS)}")


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True  # before the import: the built-ins register through this module
    try:
        importlib.import_module(_BUILTINS)
    except BaseException:
        _builtins_loaded = False  # an empty registry must not pass for a loaded one
        raise


def register_backend(kind: str, name: str, factory: Callable[..., Any], *,
                     config: type | None = None, uses: tuple[type, ...] = (),
                     provides: tuple[str, ...] = (),
                     requires: Mapping[str, tuple[str, ...]] | None = None,
                     check: Callable[[Any], None] | None = None, help: str = "",
                     replace: bool = False) -> Backend:
    """Register ``factory`` as the ``kind`` backend ``name`` (see :class:`Backend`).

    Raises:
        UnknownBackendError: ``kind`` is not one of :data:`KINDS`.
        ValueError: ``name`` is taken (unless ``replace``), empty, or ``provides`` names a part
            that does not exist.
    """
    _check_kind(kind)
    _load_builtins()
    if not name or not isinstance(name, str):
        raise ValueError(f"a {kind} backend needs a non-empty name, got {name!r}")
    unknown = [p for p in provides if p not in PARTS]
    if unknown:
        raise ValueError(f"{kind} backend {name!r} provides {unknown}: valid parts are {list(PARTS)}")
    for other in (requires or {}):
        _check_kind(other)
    if kind == "operator" and config is None:
        raise ValueError(f"operator backend {name!r} needs a config dataclass: its settings say "
                         "whether it joins the operator hub")
    backend = Backend(kind, name, factory, config, tuple(uses), tuple(provides),
                      dict(requires or {}), check, help)
    with _lock:
        if name in _registry[kind] and not replace:
            raise ValueError(f"a {kind} backend named {name!r} is already registered (by "
                             f"{_registry[kind][name].factory.__module__})")
        _registry[kind][name] = backend
    log.debug("registered %s backend %r (%s)", kind, name, factory.__module__)
    return backend


def unregister_backend(kind: str, name: str) -> None:
    """Remove a registration (a test's own backend, when the test ends)."""
    get_backend(kind, name)
    with _lock:
        del _registry[kind][name]


def backend_names(kind: str) -> tuple[str, ...]:
    """The names registered for ``kind``, in registration order."""
    _check_kind(kind)
    _load_builtins()
    with _lock:
        return tuple(_registry[kind])


def backends(kind: str) -> tuple[Backend, ...]:
    """The backends registered for ``kind``, in registration order."""
    _check_kind(kind)
    _load_builtins()
    with _lock:
        return tuple(_registry[kind].values())


def get_backend(kind: str, name: str) -> Backend:
    """The ``kind`` backend registered as ``name``.

    Raises:
        UnknownBackendError: no such kind or name; the message lists the valid ones.
    """
    _check_kind(kind)
    _load_builtins()
    with _lock:
        found = _registry[kind].get(name)
        valid = list(_registry[kind])
    if found is None:
        raise UnknownBackendError(f"{kind} backend {name!r} is not registered: valid are {valid}")
    return found


def choices(kind: str) -> Callable[[], tuple[str, ...]]:
    """The valid names of ``kind``, read when a parser is built (``setting(choices=...)``)."""
    _check_kind(kind)
    return lambda: backend_names(kind)


def backend_sections(*kinds: str) -> tuple[type, ...]:
    """Every config dataclass (and shared section) the registered backends of ``kinds`` use,
    each once, in registration order: the sections an entry point offering them composes."""
    seen: dict[type, None] = {}
    for kind in kinds:
        for backend in backends(kind):
            for section in ((backend.config,) if backend.config else ()) + backend.uses:
                seen.setdefault(section, None)
    return tuple(seen)


def providers(part: str, kind: str | None = None) -> tuple[str, ...]:
    """The names of the registered backends (of ``kind``, else any device kind) that provide
    ``part`` (the cameras that carry an IMU: ``zed``, ``recorded``, ...)."""
    kinds = (kind,) if kind is not None else tuple(k for k in KINDS if k != "operator")
    return tuple(b.name for k in kinds for b in backends(k) if part in b.provides)


def build_backend(backend: Backend, robot: RobotConfig,
                  config_of: Callable[[type], Any]) -> DeviceParts:
    """Build a device backend for ``robot``, unconnected, from its configured sections
    (``config_of(section)``: the run's instance, or the section's defaults)."""
    args = [config_of(backend.config) if backend.config is not None else None]
    args += [config_of(section) for section in backend.uses]
    parts = backend.factory(robot, *args)
    if not isinstance(parts, DeviceParts):
        raise TypeError(f"{backend.kind} backend {backend.name!r} ({backend.factory.__module__}) "
                        f"returned {type(parts).__name__}, not DeviceParts")
    return parts


def compose_devices(robot: RobotConfig, chosen: Mapping[str, Backend],
                    config_of: Callable[[type], Any]) -> HalDevices:
    """The server's devices from the chosen backends (kind -> backend), built in the order
    given. Each part comes from the first backend that built it, except that a chosen camera
    backend's camera and height scanner come before any other's; the world and its clock come
    from the backend that built them (a simulator), else the clock is monotonic.

    Raises:
        ValueError: no backend gave joints or an IMU, or the joints are not the robot's.
    """
    built = {kind: build_backend(backend, robot, config_of) for kind, backend in chosen.items()}
    order = list(built.values())
    camera_first = ([built["camera"]] if "camera" in built else []) + [
        p for k, p in built.items() if k != "camera"]

    def first(name: str, among: list[DeviceParts]) -> Any:
        return next((getattr(p, name) for p in among if getattr(p, name) is not None), None)

    joints, imu = first("joints", order), first("imu", order)
    names = ", ".join(f"{k} {b.name!r}" for k, b in chosen.items())
    if joints is None:
        raise ValueError(f"{names}: no backend built a joint driver")
    if imu is None:
        raise ValueError(f"{names}: no backend built an IMU")
    if tuple(joints.joint_names) != robot.joint_names_hardware:
        raise ValueError(f"motor backend joints {list(joints.joint_names)} differ from robot "
                         f"{robot.name!r} hardware order {list(robot.joint_names_hardware)}")
    clock = first("clock_ns", order)
    return HalDevices(joints=joints, imu=imu, contacts=first("contacts", order),
                      camera=first("camera", camera_first), world=first("world", order),
                      height_scanner=first("height_scanner", camera_first),
                      **({"clock_ns": clock} if clock is not None else {}))
