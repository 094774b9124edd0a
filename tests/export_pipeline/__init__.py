"""``krabby-export`` and ``krabby-build-engine``: checkpoint → ONNX → TensorRT, manifest, parity."""
