"""One typed run configuration: ``--config run.toml`` holds any flag, the command line overrides
it, a bad value in it is one line naming it, and the report's ``config`` reproduces the run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from compute.parkour.client_main import ClientRunConfig
from compute.parkour.client_main import build_parser as client_parser
from hal.config import config_to_dict, parse_config
from hal.server.jetson.main import JetsonApplianceConfig
from hal.server.jetson.main import build_parser as jetson_parser
from hal.server.sim.main import SimApplianceConfig, config_from_argv
from hal.server.sim.main import build_parser as sim_parser
from hal.server.sim.main import main as sim_main


def toml_text(config: dict[str, Any]) -> str:
    """The report's ``config`` as a config file: one table per section; None (the setting's
    default, unset) has no TOML spelling and is left out."""
    lines = []
    for table, values in config.items():
        lines.append(f"[{table}]")
        for key, value in values.items():
            if value is not None:
                lines.append(f"{key} = {json.dumps(value)}")  # JSON scalars and lists are TOML
        lines.append("")
    return "\n".join(lines)


@pytest.fixture
def no_devices(monkeypatch):
    """Fails the test if the simulator's devices are built (they connect right after)."""
    import hal.sim

    def refuse(*_args, **_kwargs):
        raise AssertionError("a device was built before the configuration was checked")

    monkeypatch.setattr(hal.sim, "make_sim_devices", refuse)


FILE = """
[loop]
control_rate_hz = 50
estop_bind = "none"
observation_bind = "inproc://config_file_obs_{tag}"
command_bind = "inproc://config_file_cmd_{tag}"

[command]
speed_m_s = 0.3
mode = "walk"

[scene]
seed = 2

[sim]
fast = true

[sim_camera]
camera_fps = "policy"

[duration]
duration_s = 3.0

[safety]
policy_targets_past_limits = "clamp"

[recorder]
flight_recorder_s = 0

[operator]
max_yaw_rate_rad_s = 0.5

[keyboard]
enabled = false

[output]
log_level = "warning"
report = "{report}"
"""


@pytest.fixture(scope="module")
def file_run(exported_policy, tmp_path_factory):
    """A real ``--fast`` run from a config file, two of its values overridden on the command
    line: (argv, report)."""
    pytest.importorskip("mujoco")
    directory = tmp_path_factory.mktemp("config_run")
    report_path = directory / "run.json"
    path = directory / "run.toml"
    path.write_text(FILE.format(tag=os.getpid(), report=report_path))
    argv = ["--config", str(path), "--engine", str(exported_policy), "--speed", "0.8",
            "--seed", "5"]
    assert sim_main(argv) == 0
    return argv, json.loads(report_path.read_text())


def test_a_config_file_sets_the_run_and_the_command_line_overrides_it(file_run):
    argv, report = file_run
    config = report["config"]
    # From the file, and what the run did with them.
    assert config["loop"]["control_rate_hz"] == 50.0 == report["control_rate_hz"]
    assert config["loop"]["estop_bind"] == "none"
    assert config["command"]["mode"] == "walk" == report["command"]["mode"]
    assert config["sim"]["fast"] is True and config["sim_camera"]["camera_fps"] == "policy"
    assert config["safety"]["policy_targets_past_limits"] == "clamp"
    assert config["operator"] == {"max_yaw_rate_rad_s": 0.5, "status": True}
    # Each registered operator source has its own section (the Go2's remote needs Go2 motors).
    assert (config["keyboard"], config["gamepad"], config["teleop"]) == (
        {"enabled": False}, {"device": None}, {"bind": "none"})
    assert "go2_remote" not in config
    assert config["recorder"]["flight_recorder_s"] == 0.0 and "recorder" not in report
    assert config["output"]["log_level"] == "WARNING"
    # The command line over the file.
    assert config["command"]["speed_m_s"] == 0.8 == report["command"]["forward_speed_m_s"]
    assert config["scene"]["seed"] == 5
    # Untouched: the settings' own defaults.
    assert config["policy"]["device"] == "cpu" and config["sim"]["action_delay_ms"] == 0.0


def test_the_reports_config_fed_back_reproduces_the_run(file_run, tmp_path):
    argv, report = file_run
    back = tmp_path / "back.toml"
    back.write_text(toml_text(report["config"]))
    assert config_from_argv(["--config", str(back)]) == config_from_argv(argv)


@pytest.mark.parametrize("table, line, expected", [
    ("loop", "control_rate_hz = 5000", "--control-rate 5000.0: must be a number in (0, 1000]"),
    ("loop", 'control_rate_hz = "fast"', "[loop] control_rate_hz = 'fast'"),
    ("loop", "latency_budget = 3", "[loop] has no setting ['latency_budget']"),
    ("command", 'mode = "run"', "[command] mode = 'run': valid are ['parkour', 'walk']"),
    ("faults", 'faults = ["bogus@1"]', "unknown fault 'bogus'"),
    ("sim_camera", 'camera_fps = "fast"', "--camera-fps 'fast'"),
    ("episode", "episode_s = -1", "--episode-s -1.0: must be a positive number"),
    ("output", 'log_level = "chatty"', "[output] log_level = 'CHATTY': valid are"),
    ("recorder", "flight_recorder_s = -1", "--flight-recorder-s -1.0"),
    ("live", 'live = "host:port"', "port 'port' is not a number"),
    ("operator", "max_yaw_rate_rad_s = nan", "--max-yaw-rate"),
    ("safety", 'policy_targets_past_limits = "ignore"', "valid are ['pass', 'clamp']"),
    ("motors", "kp = 20", "unknown section [motors]"),
    # A value of another type is named here, not a traceback later or silently truncated.
    ("robot", "robot = 5", "[robot] robot = 5: give a string"),
    ("loop", "observation_bind = 5", "[loop] observation_bind = 5: give a string"),
    ("policy", "action_dim = 12.5", "[policy] action_dim = 12.5: give an integer"),
    ("loop", "no_client = 1", "[loop] no_client = 1: give true or false"),
    ("faults", "faults = [1]", "[faults] faults[0] = 1: give a string"),
    ("faults", 'faults = "estop@1"\n[policy]\nengine = ["m.onnx"]',
     "[policy] engine = ['m.onnx']: give a string"),
])
def test_a_bad_value_in_the_file_is_one_line_naming_it(table, line, expected, tmp_path, capsys,
                                                       no_devices):
    path = tmp_path / "bad.toml"
    path.write_text(f"[{table}]\n{line}\n")
    assert sim_main(["--config", str(path), "--fast"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err


def test_a_file_that_is_no_toml_is_one_line(tmp_path, capsys, no_devices):
    path = tmp_path / "bad.toml"
    path.write_text("[loop\n")
    assert sim_main(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not valid TOML" in err[0], err


@pytest.mark.parametrize("root, parser, argv", [
    (SimApplianceConfig, sim_parser, ["--engine", "m.onnx", "--fault", "estop@1", "--fault",
                                      "nan-actions@2", "--scene", "gap:0.3", "--no-randomize",
                                      "--latency-budget-ms", "4", "--no-gc-control", "--live",
                                      "0", "--video", "v.mp4", "--video-size", "320x240"]),
    (JetsonApplianceConfig, jetson_parser, ["--checkpoint", "m.pt", "--obs_dim", "753",
                                            "--no-status", "--record", "r.mcap",
                                            "--record-frames", "--teleop-bind", "tcp://*:5561",
                                            "--insecure", "--camera", "none"]),
    (ClientRunConfig, client_parser, ["--observation-endpoint", "tcp://r:1",
                                      "--command-endpoint", "tcp://r:2", "--server-timeout", "3",
                                      "--stats", "s.json", "--device", "cuda"]),
])
def test_every_commands_config_round_trips_through_a_file(root, parser, argv, tmp_path):
    assert issubclass(parser().config_root, root)
    root = parser().config_root  # the command's own: with its backends' sections
    config = parse_config(root, argv, parser())
    path = tmp_path / "run.toml"
    path.write_text(toml_text(config_to_dict(config)))
    assert parse_config(root, ["--config", str(path)], parser()) == config


def test_the_jetson_infers_on_cuda_and_the_simulator_and_client_on_cpu():
    assert parse_config(JetsonApplianceConfig, [], jetson_parser()).policy.device == "cuda"
    assert parse_config(SimApplianceConfig, [], sim_parser()).policy.device == "cpu"
    client = ["--observation-endpoint", "tcp://r:1", "--command-endpoint", "tcp://r:2"]
    assert parse_config(ClientRunConfig, client, client_parser()).policy.device == "cpu"


def test_one_default_per_setting_where_two_disagreed():
    """--speed was 0.5 on the flag and 0.0 in the operator's fallback; --flight-recorder-s 10 on
    the flag and 0 in the recorder's. Each now has the flag's, in one place."""
    config = config_from_argv([])
    assert config.command.speed_m_s == 0.5
    assert config.recorder.flight_recorder_s == 10.0 and config.recorder.enabled


def test_the_client_names_a_missing_endpoint(capsys):
    from compute.parkour.client_main import main as client_main

    assert client_main(["--observation-endpoint", "tcp://r:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--command-endpoint is required" in err[0], err


def test_the_sections_do_not_need_a_namespace():
    """Code takes the typed sections: a session built from them, none from flags."""
    from hal.recorder.appliance import RecordingSession
    from hal.server.settings import RecorderSection

    assert RecordingSession.from_section(RecorderSection(flight_recorder_s=0)) is None
    session = RecordingSession.from_section(RecorderSection(flight_recorder_s=2.5,
                                                            flight_recorder_dir="dumps"))
    assert session.flight_window_s == 2.5 and session.flight_dir == Path("dumps")
