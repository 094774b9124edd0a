"""Fixtures for the MuJoCo backend tests (skipped where mujoco is not installed)."""

from __future__ import annotations

import pytest

from hal.optional import available
from hal.robot import load_robot

if not available("mujoco"):
    pytest.skip("mujoco is not installed (pip install 'krabby[sim]')", allow_module_level=True)


@pytest.fixture(scope="session")
def go2():
    return load_robot("go2")
