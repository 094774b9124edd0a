"""Deploy graphs → ONNX files (docs/architecture.md#the-policy-graphs-and-the-manifest), checked
with ``onnx.checker``.

The two graphs of a loaded checkpoint are traced with the TorchScript exporter
(``torch.onnx.export(..., dynamo=False)``) at a fixed batch of 1, opset 17, with constant folding.
:func:`graph_tensors` fixes the tensor names, shapes and dtypes that the runtime, the manifest and
the parity check share::

    actor (student)  obs [1,753], depth_latent [1,32]        -> actions [1,12]
    actor (teacher)  obs [1,753]                             -> actions [1,12]
    depth            depth [1,58,87], proprio [1,53], hidden_in [1,1,512]
                     -> latent_yaw [1,34], hidden_out [1,1,512]

:func:`convert_to_fp16` rewrites an fp32 ONNX graph with float16 weights and arithmetic and
float32 inputs/outputs: the graph a strongly typed TensorRT network (TensorRT >= 10.12) needs to
build an fp16 engine, since such a network takes its precisions from the graph, not from a flag.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compute.parkour.graphs import (ACTIONS, ACTOR_GRAPH, DEPTH_GRAPH, DEPTH_IMAGE, DEPTH_LATENT,
                                     GRAPHS, HIDDEN_IN, HIDDEN_OUT, LATENT_YAW, OBS, PROPRIO)
from hal.optional import require

__all__ = [
    "OPSET",
    "GraphTensors",
    "graph_tensors",
    "export_graph",
    "check_onnx",
    "convert_to_fp16",
]

log = logging.getLogger(__name__)

OPSET = 17


@dataclass(frozen=True)
class GraphTensors:
    """Names and shapes (all float32) of one graph's inputs and outputs, in order."""

    inputs: tuple[tuple[str, tuple[int, ...]], ...]
    outputs: tuple[tuple[str, tuple[int, ...]], ...]

    @property
    def input_names(self) -> list[str]:
        return [name for name, _ in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [name for name, _ in self.outputs]

    def to_manifest(self) -> dict[str, dict[str, Any]]:
        """``{"inputs": {name: {shape, dtype}}, "outputs": {...}}`` as the manifest stores it."""
        def block(pairs):
            return {name: {"shape": list(shape), "dtype": "float32"} for name, shape in pairs}

        return {"inputs": block(self.inputs), "outputs": block(self.outputs)}


def graph_tensors(arch: Any, graph: str, student: bool = True) -> GraphTensors:
    """The tensors of the ``"actor"`` or ``"depth"`` graph for an architecture.

    Args:
        arch: a :class:`compute.parkour.networks.PolicyArchitecture` (any object with its sizes).
        graph: ``"actor"`` or ``"depth"``.
        student: the actor of a depth student takes ``depth_latent``; a teacher's does not.
    """
    if graph == ACTOR_GRAPH:
        inputs: tuple = ((OBS, (1, arch.obs_dim)),)
        if student:
            inputs += ((DEPTH_LATENT, (1, arch.depth_latent_dim)),)
        return GraphTensors(inputs, ((ACTIONS, (1, arch.num_actions)),))
    if graph == DEPTH_GRAPH:
        hidden = (1, 1, arch.depth_hidden_dim)
        return GraphTensors(
            ((DEPTH_IMAGE, (1, arch.depth_height, arch.depth_width)), (PROPRIO, (1, arch.num_prop)),
             (HIDDEN_IN, hidden)),
            ((LATENT_YAW, (1, arch.depth_output_dim)), (HIDDEN_OUT, hidden)))
    raise ValueError(f"graph {graph!r} is not one of {GRAPHS}")


def export_graph(module: Any, tensors: GraphTensors, path: str | Path, opset: int = OPSET) -> None:
    """Trace ``module`` with zero inputs of the given shapes and write the ONNX file to ``path``.

    Raises:
        RuntimeError: the exporter failed (its message is kept).
    """
    torch = require("torch", "ONNX export")
    args = tuple(torch.zeros(shape, dtype=torch.float32) for _, shape in tensors.inputs)
    module = module.eval()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo; we keep it on purpose (a
        # plain static graph for TensorRT) and do not want its notice on every export.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        buffer = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(module, args, buffer, input_names=tensors.input_names,
                              output_names=tensors.output_names, opset_version=opset,
                              do_constant_folding=True, dynamo=False, external_data=False)
    Path(path).write_bytes(buffer.getvalue())


def _shape_of(value_info: Any) -> tuple[int, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(int(d.dim_value) if d.HasField("dim_value") else -1 for d in dims)


def check_onnx(path: str | Path, tensors: GraphTensors) -> None:
    """``onnx.checker`` (full check, with shape inference) plus the exact I/O names and shapes.

    Raises:
        ValueError: the checker fails, or an input/output differs from ``tensors``.
    """
    onnx = require("onnx", "checking ONNX files")
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ValueError(f"{Path(path).name}: onnx.checker failed: {exc}") from None
    float32 = onnx.TensorProto.FLOAT
    found_in = [(i.name, _shape_of(i), i.type.tensor_type.elem_type) for i in model.graph.input]
    found_out = [(o.name, _shape_of(o), o.type.tensor_type.elem_type) for o in model.graph.output]
    want_in = [(n, tuple(s), float32) for n, s in tensors.inputs]
    want_out = [(n, tuple(s), float32) for n, s in tensors.outputs]
    if found_in != want_in or found_out != want_out:
        raise ValueError(f"{Path(path).name}: graph has inputs {found_in} and outputs {found_out}; "
                         f"expected {want_in} and {want_out} (name, shape, ONNX type)")
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    log.debug("%s: checker clean, opsets %s, %d nodes", path, opsets, len(model.graph.node))


def convert_to_fp16(src: str | Path, dst: str | Path) -> None:
    """Write a float16 version of an fp32 ONNX graph whose inputs and outputs stay float32.

    Every float32 initializer and constant becomes float16, every ``Cast`` to float32 becomes a
    cast to float16, and ``Cast`` nodes convert the float32 inputs on entry and the outputs on
    exit. Integer tensors (shapes, indices) are untouched.

    Raises:
        ValueError: the result does not pass ``onnx.checker`` (full check).
    """
    onnx = require("onnx", "fp16 conversion")
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    f32, f16 = TensorProto.FLOAT, TensorProto.FLOAT16

    def to_half(tensor: Any) -> Any:
        if tensor.data_type != f32:
            return tensor
        return numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16),
                                       tensor.name)

    for i, init in enumerate(list(graph.initializer)):
        graph.initializer[i].CopyFrom(to_half(init))
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                attr.t.CopyFrom(to_half(attr.t))
            elif attr.name == "to" and node.op_type == "Cast" and attr.i == f32:
                attr.i = f16

    renamed: dict[str, str] = {}
    entry_casts = []
    for value in graph.input:
        if value.type.tensor_type.elem_type == f32:
            internal = f"{value.name}__fp16"
            renamed[value.name] = internal
            entry_casts.append(helper.make_node("Cast", [value.name], [internal], to=f16,
                                                name=f"cast_in_{value.name}"))
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in renamed:
                node.input[k] = renamed[name]
    exit_casts = []
    for value in graph.output:
        if value.type.tensor_type.elem_type == f32:
            internal = f"{value.name}__fp16"
            # Producer and every consumer move to the fp16 tensor: an output that also feeds a
            # node (a GRU's new hidden state feeding the head) must keep feeding it in fp16.
            for node in graph.node:
                for k, name in enumerate(node.output):
                    if name == value.name:
                        node.output[k] = internal
                for k, name in enumerate(node.input):
                    if name == value.name:
                        node.input[k] = internal
            exit_casts.append(helper.make_node("Cast", [internal], [value.name], to=f32,
                                               name=f"cast_out_{value.name}"))
    nodes = entry_casts + list(graph.node) + exit_casts
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]  # stale float32 annotations; shape inference recomputes them
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ValueError(f"fp16 conversion of {Path(src).name} is not a valid graph: "
                         f"{exc}") from None
    onnx.save(model, str(dst))
