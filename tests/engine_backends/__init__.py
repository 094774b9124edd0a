"""The engine backends (TensorRT, ONNX Runtime, torch) and the CUDA memory layer."""
