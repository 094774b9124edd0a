"""Fixtures for the MuJoCo backend tests.

Each test module skips itself where mujoco (the ``[sim]`` extra) is missing: a module-level skip
here, in a conftest, is an error instead of a skip when ``tests/sim`` is named on the command line.
"""

from __future__ import annotations

import pytest

from hal.robot import load_robot


@pytest.fixture(scope="session")
def go2():
    return load_robot("go2")
