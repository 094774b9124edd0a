"""Stand-ins for the hardware libraries (pyzed, TensorRT, cuda-python, pycuda, unitree_sdk2py).

Each fake copies the *call signatures and return shapes* of the real library, taken from its
published sources or stubs (cited in each module), so code that passes the wrong number of
arguments or unpacks the wrong return shape fails here as it would on the robot. Behaviour is
scripted by the test (what a call returns), never computed to match the code under test.

:func:`install` puts a fake module tree into ``sys.modules`` for one test (``monkeypatch``).
"""

from __future__ import annotations

import sys
import types
from typing import Mapping

__all__ = ["install"]


def install(monkeypatch, modules: Mapping[str, types.ModuleType]) -> None:
    """Make each ``name -> module`` importable for the duration of one test."""
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
