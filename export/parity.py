"""Parity of an exported graph with the torch reference, on random and structured inputs.

A *runner* maps named float32 inputs to named outputs (torch module, ONNX Runtime session or
TensorRT engine behind it). :func:`check_parity` feeds the reference and a candidate the same
inputs and records, per output, the largest absolute error, the largest reference magnitude
(the output's scale) and their ratio (the relative error). An output passes when::

    max_abs <= atol + rtol * scale

with a tolerance chosen by backend and precision (:data:`TOLERANCES`): ONNX Runtime in fp32 must
agree to ~1e-5, TensorRT fp16 to ~1e-2. Besides independent samples, the depth graph is run as a
50-step rollout in which every backend carries its *own* GRU state from step to step, so errors
that compound through the recurrence show up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from compute.parkour.graphs import DEPTH_IMAGE, DEPTH_LATENT, HIDDEN_IN, OBS, PROPRIO
from compute.parkour.layout import ObservationLayout
from compute.parkour.observation import ObservationBuilder, PolicyCommand
from export.onnx_export import GraphTensors

__all__ = [
    "Tolerance",
    "TOLERANCES",
    "tolerance_for",
    "OutputParity",
    "ParityReport",
    "Runner",
    "actor_cases",
    "depth_cases",
    "check_parity",
    "depth_rollout_parity",
]

Runner = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]
ROLLOUT_STEPS = 50


@dataclass(frozen=True)
class Tolerance:
    """Allowed error: ``atol + rtol × scale`` (scale = largest reference magnitude)."""

    atol: float
    rtol: float

    def to_dict(self) -> dict[str, float]:
        return {"atol": self.atol, "rtol": self.rtol}


TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("onnxruntime", "fp32"): Tolerance(atol=1e-5, rtol=1e-5),
    # TensorRT picks other kernels (and summation orders) than torch, even in fp32.
    ("tensorrt", "fp32"): Tolerance(atol=1e-4, rtol=1e-4),
    # fp16 weights and activations: ~3 significant digits, compounded through 4 layers.
    ("tensorrt", "fp16"): Tolerance(atol=2e-2, rtol=2e-2),
    ("onnxruntime", "fp16"): Tolerance(atol=2e-2, rtol=2e-2),
}


def tolerance_for(backend: str, precision: str) -> Tolerance:
    """The tolerance for a backend ("onnxruntime", "tensorrt") at a precision ("fp16", "fp32")."""
    try:
        return TOLERANCES[(backend, precision)]
    except KeyError:
        raise ValueError(f"no parity tolerance for backend {backend!r} at precision "
                         f"{precision!r}; known: {sorted(TOLERANCES)}") from None


@dataclass
class OutputParity:
    """Worst-case agreement of one output over all samples."""

    name: str
    tolerance: Tolerance
    max_abs: float = 0.0
    scale: float = 0.0
    samples: int = 0
    non_finite: int = 0

    def update(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        reference = np.asarray(reference, dtype=np.float64)
        candidate = np.asarray(candidate, dtype=np.float64)
        if reference.shape != candidate.shape:
            raise ValueError(f"output {self.name!r}: candidate shape {candidate.shape} != "
                             f"reference shape {reference.shape}")
        self.samples += 1
        if not np.isfinite(candidate).all():
            self.non_finite += 1
            return
        self.max_abs = max(self.max_abs, float(np.max(np.abs(candidate - reference))))
        self.scale = max(self.scale, float(np.max(np.abs(reference))))

    @property
    def max_rel(self) -> float:
        """``max_abs / scale`` (0 when the reference is all zeros)."""
        return self.max_abs / self.scale if self.scale > 0 else 0.0

    @property
    def allowed(self) -> float:
        return self.tolerance.atol + self.tolerance.rtol * self.scale

    @property
    def passed(self) -> bool:
        return self.samples > 0 and self.non_finite == 0 and self.max_abs <= self.allowed

    def to_dict(self) -> dict[str, Any]:
        return {"max_abs": self.max_abs, "max_rel": self.max_rel, "scale": self.scale,
                "allowed": self.allowed, **self.tolerance.to_dict(), "samples": self.samples,
                "non_finite": self.non_finite, "passed": self.passed}

    def describe(self) -> str:
        if self.non_finite:
            return f"{self.name}: {self.non_finite}/{self.samples} samples non-finite"
        return (f"{self.name}: max abs error {self.max_abs:.3g} (relative {self.max_rel:.3g}) "
                f"vs allowed {self.allowed:.3g}")


@dataclass
class ParityReport:
    """Parity of one backend at one precision, per graph and output."""

    backend: str
    precision: str
    graphs: dict[str, dict[str, OutputParity]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(o.passed for outputs in self.graphs.values() for o in outputs.values())

    def failures(self) -> list[str]:
        return [f"{graph} {o.describe()}" for graph, outputs in self.graphs.items()
                for o in outputs.values() if not o.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "precision": self.precision, "passed": self.passed,
                "graphs": {g: {n: o.to_dict() for n, o in outs.items()}
                           for g, outs in self.graphs.items()}}


# -- inputs ----------------------------------------------------------------------------------------

def _standing_observations(robot: Any, rng: np.random.Generator, steps: int) -> list[np.ndarray]:
    """Observations of a robot standing near its default pose, built by the real builder."""
    builder = ObservationBuilder(robot)
    hw_default = robot.to_hardware(robot.default_angles).astype(np.float32)
    out = []
    last_action = np.zeros(robot.n_joints, dtype=np.float32)
    for k in range(steps):
        half = rng.uniform(-0.05, 0.05, 3) / 2
        quat = np.array([1.0, half[0], half[1], half[2]], dtype=np.float32)
        hw = SimpleNamespace(
            joint_position_rad=hw_default + rng.normal(0, 0.05, robot.n_joints).astype(np.float32),
            joint_velocity_rad_s=rng.normal(0, 0.5, robot.n_joints).astype(np.float32),
            imu_quaternion_wxyz=quat / np.linalg.norm(quat),
            imu_angular_velocity_rad_s=rng.normal(0, 0.2, 3).astype(np.float32),
            foot_force_n=rng.uniform(0, 60, robot.n_feet).astype(np.float32))
        command = PolicyCommand(float(rng.uniform(0, 1.5)), "walk" if k % 4 == 3 else "parkour")
        yaw = rng.uniform(-0.5, 0.5, 2).astype(np.float32)
        out.append(builder.build(hw, command, yaw, last_action).copy())
        last_action = rng.normal(0, 0.5, robot.n_joints).astype(np.float32)
    return out


def actor_cases(tensors: GraphTensors, robot: Any, n_random: int,
                rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """Inputs for the actor graph: random, realistic (standing robot) and extreme."""
    shapes = dict(tensors.inputs)
    obs_shape = shapes[OBS]
    latent_shape = shapes.get(DEPTH_LATENT)

    def case(obs: np.ndarray, latent: np.ndarray | None) -> dict[str, np.ndarray]:
        feeds = {OBS: obs.reshape(obs_shape).astype(np.float32)}
        if latent_shape is not None:
            feeds[DEPTH_LATENT] = np.broadcast_to(latent, latent_shape).astype(np.float32)
        return feeds

    cases = []
    for _ in range(n_random):
        cases.append(case(rng.normal(0, 1, obs_shape),
                          rng.uniform(-1, 1, latent_shape) if latent_shape else None))
    for obs in _standing_observations(robot, rng, steps=max(4, n_random // 4)):
        cases.append(case(obs, rng.uniform(-1, 1, latent_shape) if latent_shape else None))
    clip = ObservationLayout.from_robot(robot).observation_clip
    for value, latent in ((0.0, 0.0), (clip, 1.0), (-clip, -1.0), (1.0, 0.5)):
        cases.append(case(np.full(obs_shape, value), np.float32(latent)))
    return cases


def _depth_images(shape: tuple[int, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """Preprocessed-depth patterns: all far (+0.5), all near (-0.5), a floor ramp, a step edge."""
    h, w = shape[-2:]
    ramp = np.linspace(-0.3, 0.5, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    step = ramp.copy()
    step[h // 2:, w // 3:] -= 0.3
    return [np.full(shape, 0.5, np.float32), np.full(shape, -0.5, np.float32),
            ramp.reshape(shape), step.reshape(shape),
            (ramp + rng.normal(0, 0.02, (h, w)).astype(np.float32)).reshape(shape)]


def depth_cases(tensors: GraphTensors, n_random: int,
                rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """Inputs for the depth graph: random frames/proprio/state and structured frames."""
    shapes = dict(tensors.inputs)

    def proprio() -> np.ndarray:
        p = rng.normal(0, 1, shapes[PROPRIO]).astype(np.float32)
        p[..., 6:8] = 0.0  # the caller zeroes the yaw terms
        return p

    cases = []
    for _ in range(n_random):
        cases.append({DEPTH_IMAGE: rng.uniform(-0.5, 0.5, shapes[DEPTH_IMAGE]).astype(np.float32),
                      PROPRIO: proprio(),
                      HIDDEN_IN: rng.uniform(-1, 1, shapes[HIDDEN_IN]).astype(np.float32)})
    for image in _depth_images(shapes[DEPTH_IMAGE], rng):
        for hidden in (np.zeros(shapes[HIDDEN_IN], np.float32),
                       rng.uniform(-1, 1, shapes[HIDDEN_IN]).astype(np.float32)):
            cases.append({DEPTH_IMAGE: image, PROPRIO: proprio(), HIDDEN_IN: hidden})
    return cases


# -- comparison ------------------------------------------------------------------------------------

def check_parity(reference: Runner, candidate: Runner, cases: Iterable[Mapping[str, np.ndarray]],
                 output_names: Iterable[str], tolerance: Tolerance,
                 progress: Callable[[], None] | None = None) -> dict[str, OutputParity]:
    """Run both runners on every case and collect the worst error per output."""
    results = {name: OutputParity(name, tolerance) for name in output_names}
    for feeds in cases:
        want = reference(feeds)
        got = candidate(feeds)
        for name, parity in results.items():
            parity.update(want[name], got[name])
        if progress is not None:
            progress()
    return results


def depth_rollout_parity(reference: Runner, candidate: Runner, tensors: GraphTensors,
                         tolerance: Tolerance, rng: np.random.Generator,
                         steps: int = ROLLOUT_STEPS) -> dict[str, OutputParity]:
    """A ``steps``-long depth rollout; each runner feeds its own ``hidden_out`` back in."""
    from compute.parkour.policy import DepthRecurrence

    shapes = dict(tensors.inputs)
    rollouts = [DepthRecurrence(_RunnerEngine(runner, shapes)) for runner in (reference, candidate)]
    images = _depth_images(shapes[DEPTH_IMAGE], rng)
    results = {"latent_yaw_rollout": OutputParity("latent_yaw_rollout", tolerance),
               "hidden_rollout": OutputParity("hidden_rollout", tolerance)}
    for step in range(steps):
        if step % 3 == 2:
            depth = images[step % len(images)]
        else:
            depth = rng.uniform(-0.5, 0.5, shapes[DEPTH_IMAGE]).astype(np.float32)
        proprio = rng.normal(0, 1, shapes[PROPRIO]).astype(np.float32)
        proprio[..., 6:8] = 0.0
        for rollout in rollouts:
            np.copyto(rollout.image, depth.reshape(rollout.image.shape))
        want, got = (rollout.step(proprio) for rollout in rollouts)
        results["latent_yaw_rollout"].update(want, got)
        results["hidden_rollout"].update(*(rollout.hidden for rollout in rollouts))
    return results


class _RunnerEngine:
    """A parity runner (feeds → outputs) seen as an engine: input buffers, outputs, ``run()``."""

    def __init__(self, runner: Runner, input_shapes: Mapping[str, tuple[int, ...]]) -> None:
        self._runner = runner
        self.inputs = {name: np.zeros(shape, np.float32) for name, shape in input_shapes.items()}
        self.outputs: dict[str, np.ndarray] = {}

    def run(self) -> None:
        for name, value in self._runner(self.inputs).items():
            self.outputs[name] = np.asarray(value, dtype=np.float32)
