"""An operator source registered from this test module only, enabled by its own flag on the real
``krabby-hal-server-sim`` command line, built with the run's context and fed to the operator hub:
its command reaches the policy and the report's ``operator`` section. No other module knows it."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from typing import ClassVar

import pytest

from hal.config import setting
from hal.devices.registry import register_backend, unregister_backend
from hal.operator.base import OperatorContext, OperatorEvent, OperatorSource
from hal.server.sim.main import build_parser
from hal.server.sim.main import main as sim_main

NAME = "x-scripted"
BUILT: list[tuple[OperatorContext, "ScriptedOperatorSection"]] = []


@dataclass(frozen=True)
class ScriptedOperatorSection:
    """An operator that asks for one command, once, on its first poll."""

    section: ClassVar[str] = "scripted_operator"

    speed_m_s: float | None = setting(None, flag="--scripted-speed", metavar="M_S",
                                      help="this test's operator: ask for this forward speed")
    mode: str = setting("walk", flag="--scripted-mode", help="this test's operator: the mode")

    def __post_init__(self) -> None:
        if self.speed_m_s is not None and not math.isfinite(self.speed_m_s):
            raise ValueError(f"--scripted-speed {self.speed_m_s}: must be finite")


class ScriptedSource(OperatorSource):
    name = "scripted"

    def __init__(self, config: ScriptedOperatorSection) -> None:
        self.config = config
        self.polls = 0
        self.connected = False

    def connect(self) -> None:
        self.connected = True

    def close(self) -> None:
        self.connected = False

    def poll(self, now_ns: int) -> list[OperatorEvent]:
        self.polls += 1
        if self.polls != 1:
            return []
        return [OperatorEvent(self.name, forward_speed_m_s=self.config.speed_m_s,
                              yaw_rate_rad_s=0.25, mode=self.config.mode)]

    def stats(self) -> dict[str, int]:
        return {"polls": self.polls}


def make_scripted(context: OperatorContext,
                  config: ScriptedOperatorSection) -> OperatorSource | None:
    if config.speed_m_s is None:
        return None  # not enabled: it does not join the hub
    BUILT.append((context, config))
    return ScriptedSource(config)


@pytest.fixture
def scripted_operator():
    BUILT.clear()
    register_backend("operator", NAME, make_scripted, config=ScriptedOperatorSection,
                     help="a scripted operator (this test's own)")
    yield
    unregister_backend("operator", NAME)


def _argv(policy, tmp_path, *extra: str) -> list[str]:
    tag = f"regop_{os.getpid()}_{time.monotonic_ns()}"
    return ["--engine", str(policy), "--fast", "--duration", "2", "--control-rate", "50",
            "--log-level", "WARNING", "--observation-bind", f"inproc://{tag}_obs",
            "--command-bind", f"inproc://{tag}_cmd", "--estop-bind", "none",
            "--flight-recorder-s", "0", "--no-keyboard", "--no-status",
            "--report", str(tmp_path / "run.json"), *extra]


@pytest.mark.slow
def test_an_operator_source_registered_here_drives_the_simulated_appliance(
        scripted_operator, exported_policy, tmp_path, capsys):
    pytest.importorskip("mujoco")
    help_text = build_parser().format_help()
    assert "--scripted-speed" in help_text and "--scripted-mode" in help_text
    code = sim_main(_argv(exported_policy, tmp_path, "--scripted-speed", "0.3"))
    assert code == 0, capsys.readouterr().err
    # Built once, from its flag, with the run's context: the trained range and the yaw limit.
    assert len(BUILT) == 1
    context, config = BUILT[0]
    assert config == ScriptedOperatorSection(speed_m_s=0.3, mode="walk")
    assert context.max_yaw_rate_rad_s == 1.0 and context.speed_range_m_s[1] > 0.3
    assert context.server.robot.name == "go2"
    report = json.loads((tmp_path / "run.json").read_text())
    operator = report["operator"]
    assert operator["sources"] == {"scripted": {"polls": report["cycles"]}}  # keys off: alone
    changes = [e for e in operator["events"] if e["source"] == "scripted"]
    assert [(e["what"], e["forward_speed_m_s"], e["yaw_rate_rad_s"], e["mode"])
            for e in changes] == [("command", 0.3, 0.25, "walk")]
    assert operator["command_final"] == {"forward_speed_m_s": 0.3, "yaw_rate_rad_s": 0.25,
                                         "mode": "walk"}
    # The hub handed it to the policy: the inference client ran with it.
    assert report["command"] == {"forward_speed_m_s": 0.3, "mode": "walk",
                                 "yaw_rate_rad_s": 0.25}
    # The effective configuration records the source's own section.
    assert report["config"]["scripted_operator"] == {"speed_m_s": 0.3, "mode": "walk"}


@pytest.mark.slow
def test_a_registered_operator_source_its_config_leaves_off_does_not_join(
        scripted_operator, exported_policy, tmp_path, capsys):
    pytest.importorskip("mujoco")
    assert sim_main(_argv(exported_policy, tmp_path, "--duration", "0.5")) == 0, \
        capsys.readouterr().err
    assert BUILT == []
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["operator"]["sources"] == {}
    assert report["config"]["scripted_operator"] == {"speed_m_s": None, "mode": "walk"}


def test_its_flag_is_checked_by_its_own_section(scripted_operator, capsys):
    assert sim_main(["--scripted-speed", "nan", "--estop-bind", "none"]) == 2
    assert "--scripted-speed nan: must be finite" in capsys.readouterr().err


def test_the_go2_remote_is_offered_only_where_go2_motors_are():
    from hal.server.jetson.main import build_parser as jetson_parser

    assert "--no-go2-remote" in jetson_parser().format_help()
    assert "--no-go2-remote" not in build_parser().format_help()
