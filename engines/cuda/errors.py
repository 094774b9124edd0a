"""What a CUDA error code means on our machines, and what to do about it.

The CUDA runtime's codes are stable across releases; the ones a first run on a robot meets are
listed here with the fix, so the doctor and the backends say more than "install cuda-python".
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CUDA_ERROR_HINTS", "CudaStatus", "describe_cuda_error"]

#: cudaError_t value -> (name, what it usually means here and the fix).
CUDA_ERROR_HINTS: dict[int, tuple[str, str]] = {
    3: ("cudaErrorInitializationError", "the CUDA driver failed to initialise: reboot after a JetPack or "
                                        "driver update"),
    34: ("cudaErrorStubLibrary", "only the CUDA stub library is present: no NVIDIA driver is installed"),
    35: ("cudaErrorInsufficientDriver", "the CUDA driver is older than the runtime the binding needs: "
                                        "cuda-python 13 needs a CUDA 13 driver, JetPack 6 has CUDA 12.6; "
                                        "pip install 'cuda-python>=12.6.1,<13' (pip install 'krabby[jetson]')"),
    100: ("cudaErrorNoDevice", "no CUDA device is visible (CUDA_VISIBLE_DEVICES, a container without "
                               "--runtime nvidia, or no NVIDIA GPU)"),
    101: ("cudaErrorInvalidDevice", "the device ordinal does not exist"),
    803: ("cudaErrorSystemDriverMismatch", "the user-space driver and the kernel module differ: reboot"),
    804: ("cudaErrorCompatNotSupportedOnDevice", "forward-compatibility CUDA is not supported on this "
                                                 "device: use the CUDA that JetPack ships"),
    999: ("cudaErrorUnknown", "on a Jetson usually the user is not in the 'video' group "
                              "(sudo usermod -aG video $USER, then log in again), or the GPU driver is "
                              "not loaded"),
}


@dataclass(frozen=True)
class CudaStatus:
    """What probing a backend found: devices, or the error that hid them."""

    backend: str
    device_count: int
    error_code: int | None = None
    error_name: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.device_count > 0

    def describe(self) -> str:
        if self.ok:
            return f"{self.backend}: {self.device_count} device(s)"
        if self.error_code is None:
            return f"{self.backend}: no device ({self.detail or 'no error reported'})"
        return f"{self.backend}: {describe_cuda_error(self.error_code, self.error_name)}"


def describe_cuda_error(code: int, name: str = "") -> str:
    """``"CUDA error 35 (cudaErrorInsufficientDriver): the CUDA driver is older ..."``."""
    known_name, meaning = CUDA_ERROR_HINTS.get(int(code), ("", ""))
    label = name or known_name or "unknown error"
    return f"CUDA error {int(code)} ({label})" + (f": {meaning}" if meaning else "")
