"""Simulated HAL servers for the recorder tests."""

from __future__ import annotations

import itertools
import os

from dataclasses import replace

import pytest

from hal.server.base import HalServer, HalServerConfig
from hal.sim import MujocoWorldConfig, make_sim_devices

from tests.appliance.recording import RecordingJoints

__all__ = ["make_sim_server"]

_endpoint_counter = itertools.count()


def make_sim_server(robot, rate_hz: float = 50.0, realtime: bool = True,
                    budget_ms: float | None = None) -> tuple[HalServer, RecordingJoints]:
    """A MuJoCo-backed HAL server on unique inproc endpoints (not started)."""
    pytest.importorskip("mujoco")  # the [sim] extra
    sim = make_sim_devices(robot, MujocoWorldConfig(scene="flat", settle_s=0.3))
    joints = RecordingJoints(sim.joints)
    n = next(_endpoint_counter)
    config = HalServerConfig(control_rate_hz=rate_hz,
                             latency_budget_ms=budget_ms if budget_ms else 400.0 / rate_hz,
                             observation_endpoint=f"inproc://rec_obs_{os.getpid()}_{n}",
                             command_endpoint=f"inproc://rec_cmd_{os.getpid()}_{n}",
                             realtime=realtime)
    devices = replace(sim, joints=joints)
    return HalServer(robot, devices, config), joints
