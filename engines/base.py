"""The engine interface: named buffers allocated once, filled in place, one ``run()`` per step.

An :class:`Engine` owns one host buffer per input and per output, allocated at construction
(pinned when CUDA is present, see :func:`engines.cuda_memory.allocate_host`). Callers write
inputs in place and read outputs in place::

    engine.inputs["obs"][...] = obs          # or build the observation directly in it
    engine.run()                             # one step; allocates no arrays
    actions = engine.outputs["actions"]      # the same array object on every step

The buffers are never replaced: ``engine.inputs[name]`` and ``engine.outputs[name]`` are the same
objects, at the same addresses, for the engine's whole life, so a caller may keep references.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

__all__ = [
    "TensorSpec", "EngineDescription", "EngineError", "EngineMismatchError", "EngineClosedError",
    "Engine", "TensorRunner", "compare_specs", "resolve_shape",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one engine input or output.

    A dimension of ``-1`` means "dynamic" (not fixed by the model file); an engine's own buffers
    always have concrete shapes.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))

    @property
    def is_static(self) -> bool:
        return all(d >= 0 for d in self.shape)

    def __str__(self) -> str:
        dims = ",".join("?" if d < 0 else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype.name}[{dims}]"

    def to_json(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype.name}


@dataclass(frozen=True)
class EngineDescription:
    """What :meth:`Engine.describe` returns: the backend and its tensors, in binding order."""

    backend: str
    source: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    details: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        ins = ", ".join(str(s) for s in self.inputs)
        outs = ", ".join(str(s) for s in self.outputs)
        return f"{self.backend} engine ({self.source}): inputs [{ins}] -> outputs [{outs}]"


class EngineError(RuntimeError):
    """An engine could not be opened or run."""


class EngineMismatchError(EngineError, ValueError):
    """An engine's tensors, or its manifest, disagree with what the caller expects."""


class EngineClosedError(EngineError):
    """``run()`` was called on a closed engine."""


def resolve_shape(spec: TensorSpec, override: Sequence[int] | None,
                  strict: bool = True) -> tuple[int, ...]:
    """Concrete shape for ``spec``: ``override`` where given (it must fit), dynamic dims -> 1.

    With ``strict=False`` the override only fills the model's dynamic dimensions; where it
    disagrees with a static one (or has another rank) the model's shape wins, and the caller is
    expected to report the difference itself (``open_engine`` compares against the manifest).

    Raises:
        EngineMismatchError: (strict) ``override`` has another rank or disagrees on a static
            dimension; or it leaves a dimension unknown.
    """
    if override is None:
        return tuple(1 if d < 0 else d for d in spec.shape)
    shape = tuple(int(d) for d in override)
    fits = len(shape) == len(spec.shape) and all(m < 0 or m == s for m, s in zip(spec.shape, shape))
    if not fits:
        if strict:
            raise EngineMismatchError(f"tensor {spec.name!r}: requested shape {list(shape)} does "
                                      f"not fit the model's {str(spec).split(': ')[1]}")
        if len(shape) != len(spec.shape):
            return tuple(1 if d < 0 else d for d in spec.shape)
        shape = tuple(m if m >= 0 else s for m, s in zip(spec.shape, shape))
    if any(d < 0 for d in shape):
        raise EngineMismatchError(f"tensor {spec.name!r}: shape {list(shape)} must be concrete")
    return shape


def _dims_agree(actual: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    return len(actual) == len(expected) and all(
        a < 0 or e < 0 or a == e for a, e in zip(actual, expected))


def compare_specs(actual: Iterable[TensorSpec], expected: Iterable[TensorSpec],
                  role: str) -> list[str]:
    """Every difference between two sets of tensors, as readable lines (empty if they agree).

    ``-1`` on either side matches any size. ``role`` ("input"/"output") goes into the lines.
    """
    have = {s.name: s for s in actual}
    want = {s.name: s for s in expected}
    problems: list[str] = []
    for name in want.keys() - have.keys():
        problems.append(f"{role} {name!r} expected ({want[name]}) but the engine has no such "
                        f"{role}; it has {sorted(have)}")
    for name in have.keys() - want.keys():
        problems.append(f"engine {role} {name!r} ({have[name]}) is not expected; expected "
                        f"{sorted(want)}")
    for name in sorted(have.keys() & want.keys()):
        a, e = have[name], want[name]
        if not _dims_agree(a.shape, e.shape):
            problems.append(f"{role} {name!r}: engine shape {list(a.shape)} != expected "
                            f"{list(e.shape)}")
        if a.dtype != e.dtype:
            problems.append(f"{role} {name!r}: engine dtype {a.dtype.name} != expected "
                            f"{e.dtype.name}")
    return sorted(problems)


Allocator = Callable[[tuple[int, ...], np.dtype], np.ndarray]


class TensorRunner(Protocol):
    """What a step over a graph needs: input buffers to fill, outputs to read, ``run()``.

    Every :class:`Engine` is one; so is anything else that maps named arrays to named arrays in
    place (the export's parity check runs a torch reference through it).
    """

    @property
    def inputs(self) -> Mapping[str, np.ndarray]: ...

    @property
    def outputs(self) -> Mapping[str, np.ndarray]: ...

    def run(self) -> None: ...


class Engine(ABC):
    """One inference graph with preallocated, named input and output buffers.

    Subclasses allocate their buffers in ``__init__`` (through :meth:`_set_buffers`) and
    implement :meth:`_run` (one step, reading ``self.inputs``, writing ``self.outputs``, creating
    no arrays) and :meth:`_close`.
    """

    #: Backend name ("onnxruntime", "tensorrt", "torch").
    backend: str = ""

    def __init__(self, source: str) -> None:
        self.source = source
        self._closed = False
        self._inputs: dict[str, np.ndarray] = {}
        self._outputs: dict[str, np.ndarray] = {}
        self.inputs: Mapping[str, np.ndarray] = MappingProxyType(self._inputs)
        self.outputs: Mapping[str, np.ndarray] = MappingProxyType(self._outputs)
        self.input_specs: tuple[TensorSpec, ...] = ()
        self.output_specs: tuple[TensorSpec, ...] = ()

    def _set_buffers(self, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> None:
        """Install the buffers (once); specs are derived from them, in the given order."""
        if self._inputs or self._outputs:
            raise EngineError("engine buffers are allocated once")
        for name, arr in [*inputs.items(), *outputs.items()]:
            if not arr.flags.c_contiguous or not arr.flags.writeable:
                raise EngineError(f"buffer {name!r} must be C-contiguous and writeable")
        self._inputs.update(inputs)
        self._outputs.update(outputs)
        self.input_specs = tuple(TensorSpec(n, a.shape, a.dtype) for n, a in inputs.items())
        self.output_specs = tuple(TensorSpec(n, a.shape, a.dtype) for n, a in outputs.items())

    @staticmethod
    def _allocate(specs: Sequence[TensorSpec], allocate: Allocator) -> dict[str, np.ndarray]:
        return {s.name: allocate(s.shape, s.dtype) for s in specs}

    # -- the step -----------------------------------------------------------------------------

    def run(self) -> None:
        """One inference step from ``self.inputs`` into ``self.outputs``; allocates no arrays."""
        if self._closed:
            raise EngineClosedError(f"{self.backend} engine ({self.source}) is closed")
        self._run()

    @abstractmethod
    def _run(self) -> None:
        """The backend's step."""

    def infer(self, **feeds: np.ndarray) -> dict[str, np.ndarray]:
        """Copy ``feeds`` into the inputs, run, and return *copies* of the outputs.

        A convenience for tests and tools, not for the control loop (it allocates the copies).

        Raises:
            EngineMismatchError: an unknown input name or a shape that does not fit.
        """
        for name, value in feeds.items():
            if name not in self._inputs:
                raise EngineMismatchError(f"unknown input {name!r}; inputs: {list(self._inputs)}")
            target = self._inputs[name]
            value = np.asarray(value)
            if value.shape != target.shape:
                raise EngineMismatchError(f"input {name!r}: got shape {list(value.shape)}, engine "
                                          f"expects {list(target.shape)}")
            np.copyto(target, value, casting="same_kind")
        self.run()
        return {name: out.copy() for name, out in self._outputs.items()}

    # -- description and lifetime ----------------------------------------------------------------

    def describe(self) -> EngineDescription:
        """Backend, source and the input/output tensors (name, shape, dtype)."""
        return EngineDescription(self.backend, self.source, self.input_specs, self.output_specs,
                                 self._details())

    def _details(self) -> dict[str, Any]:
        return {}

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Release the backend's resources (idempotent). The host arrays stay valid to read."""
        if not self._closed:
            self._closed = True
            self._close()

    def _close(self) -> None:
        """Backend-specific release."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"
