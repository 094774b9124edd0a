"""Torch backend: the reference implementation every other backend is checked against.

It wraps any ``torch.nn.Module`` (eager, or traced with TorchScript) behind the same buffers as
the other engines: the numpy arrays in ``engine.inputs`` are shared with CPU tensors
(``torch.from_numpy``), so the module reads exactly what the caller wrote, and results are copied
into the output arrays in place. A step runs under ``torch.inference_mode``.

Torch is imported lazily (through :mod:`hal.optional`), only when this backend is used.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from engines.base import Engine, EngineMismatchError, TensorSpec
from engines.cuda_memory import allocate_host
from hal.optional import require

__all__ = ["TorchConfig", "TorchEngine"]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class TorchConfig:
    """How the torch reference runs.

    Attributes:
        device: ``"cpu"`` or ``"cuda"`` (``cuda[:n]``); inputs are copied to it and outputs back.
        jit_trace: Trace the module with TorchScript (``torch.jit.trace``) at construction.
        num_threads: Set ``torch.set_num_threads`` (process-wide) when not None.
    """

    device: str = "cpu"
    jit_trace: bool = False
    num_threads: int | None = None

    def __post_init__(self) -> None:
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device {self.device!r}: use 'cpu' or 'cuda[:index]'")


class TorchEngine(Engine):
    """A torch module run on the engine buffers.

    Args:
        module: Called as ``module(*inputs)`` in ``input_specs`` order; returns one tensor or a
            tuple of tensors in ``output_names`` order.
        input_specs: Input names, shapes and dtypes.
        output_names: Output names; their shapes and dtypes are taken from one dry run on zeros.
        config: Device, TorchScript tracing, threads.
        source: A label for :meth:`describe` (e.g. the checkpoint path).

    Raises:
        EngineMismatchError: the module returns a different number of outputs than named.
    """

    backend = "torch"

    def __init__(self, module: Any, input_specs: Sequence[TensorSpec], output_names: Sequence[str],
                 config: TorchConfig | None = None, source: str = "torch module") -> None:
        super().__init__(source)
        torch = require("torch", "the torch engine")
        self._torch = torch
        self.config = config or TorchConfig()
        if self.config.num_threads is not None:
            torch.set_num_threads(self.config.num_threads)
        self._device = torch.device(self.config.device)
        if self._device.type != "cpu":
            module = copy.deepcopy(module).to(self._device)  # never move the caller's module
        module = module.eval() if hasattr(module, "eval") else module

        host_inputs = self._allocate(input_specs, allocate_host)
        self._host_in = [torch.from_numpy(a) for a in host_inputs.values()]
        if self._device.type == "cpu":
            self._args = list(self._host_in)
        else:
            self._args = [torch.empty_like(t, device=self._device) for t in self._host_in]

        with torch.inference_mode():
            if self.config.jit_trace:
                with warnings.catch_warnings():
                    # torch 2.10+ deprecates TorchScript; it is still the baseline we compare to.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    module = torch.jit.trace(module, tuple(self._args), check_trace=False)
            probe = self._as_tuple(module(*self._args))
        if len(probe) != len(output_names):
            raise EngineMismatchError(f"{source}: the module returns {len(probe)} output(s), but "
                                      f"{len(output_names)} are named: {list(output_names)}")
        self._module = module
        host_outputs = {name: allocate_host(tuple(t.shape), self._numpy_dtype(t))
                        for name, t in zip(output_names, probe)}
        self._host_out = [torch.from_numpy(a) for a in host_outputs.values()]
        self._set_buffers(host_inputs, host_outputs)

    @staticmethod
    def _as_tuple(result: Any) -> tuple[Any, ...]:
        return tuple(result) if isinstance(result, (tuple, list)) else (result,)

    def _numpy_dtype(self, tensor: Any) -> np.dtype:
        return np.dtype(str(tensor.dtype).replace("torch.", ""))

    def _run(self) -> None:
        torch = self._torch
        with torch.inference_mode():
            if self._device.type != "cpu":
                for dst, src in zip(self._args, self._host_in):
                    dst.copy_(src, non_blocking=True)
            result = self._module(*self._args)
            if not isinstance(result, (tuple, list)):
                result = (result,)
            for dst, src in zip(self._host_out, result):
                dst.copy_(src)

    def _details(self) -> dict[str, Any]:
        return {"device": str(self._device), "jit_trace": self.config.jit_trace,
                "torch": self._torch.__version__}

    def _close(self) -> None:
        self._module = None
        self._args = []
