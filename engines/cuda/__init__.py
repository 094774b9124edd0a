"""CUDA-from-Python backends (cuda-python, pycuda) behind one interface.

Use :mod:`engines.cuda_memory` rather than these modules directly: it picks the backend at
runtime and builds pinned buffers, device buffers, streams, events and graphs on it.
"""

from engines.cuda.base import CudaBackend, CudaError, DeviceInfo, HostSpan, PinnedAllocation

__all__ = ["CudaBackend", "CudaError", "DeviceInfo", "HostSpan", "PinnedAllocation"]
