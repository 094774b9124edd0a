"""The one place optional heavy dependencies are imported.

Each is imported lazily, on first use, so the default install (simulator + ONNX Runtime) never
needs them. A missing one raises :class:`MissingDependencyError` whose message is the exact command
that installs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingDependencyError", "require", "available"]

# module -> how to install it
_INSTALL_HINTS: dict[str, str] = {
    "mujoco": "pip install 'krabby[sim]'",
    "torch": "pip install 'krabby[export]'  (torch==2.13.0)",
    "onnx": "pip install onnx  (in 'krabby[export]' and 'krabby[jetson]')",
    "onnxruntime": "pip install onnxruntime",
    "tensorrt": "on a Jetson: TensorRT comes with JetPack (sudo apt install nvidia-tensorrt python3-libnvinfer) "
                "and lives in the system Python: make the venv with python3 -m venv --system-site-packages; "
                "on x86: pip install 'krabby[tensorrt]'",
    "cuda.bindings": "pip install 'krabby[jetson]'  (cuda-python >=12.6.1,<13 for JetPack 6's CUDA 12.6)",
    "pycuda": "pip install 'krabby[pycuda]'",
    "pyzed.sl": "install the ZED SDK, then run its get_python_api.py "
                "(the registry's 'pyzed' package is an unrelated project)",
    "matplotlib": "pip install 'krabby[plots]'",
    "ray": "pip install 'krabby[ray]'",
    "yaml": "pip install 'krabby[export]'  (PyYAML)",
    "av": "pip install 'krabby[video]'",
    "PIL.Image": "pip install 'krabby[video]'",
    "serial": "pip install pyserial",
    "mcap": "pip install mcap",
    "foxglove": "pip install 'foxglove-sdk>=0.30.3,<0.31'  (a krabby dependency)",
    "google.protobuf": "pip install 'protobuf>=5.26'  (a krabby dependency)",
    "websockets": "pip install 'krabby[live]'  (websockets)",
    "unitree_sdk2py": ("install Unitree's SDK from its repository, editable: git clone "
                       "https://github.com/unitreerobotics/unitree_sdk2_python && pip install "
                       "--no-deps -e unitree_sdk2_python && pip install cyclonedds==11.0.1 "
                       "(README: the Go2 backend)"),
}


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message says how to install it."""


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = _INSTALL_HINTS.get(module, f"pip install {module.split('.')[0]}")
        what = f" (needed for {purpose})" if purpose else ""
        raise MissingDependencyError(
            f"{module} is not installed{what}: {hint}. Import error: {exc}") from None


def available(module: str) -> bool:
    """True if ``module`` imports (the import's own errors count as 'not available')."""
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken install is as unavailable as a missing one
        return False
    return True
