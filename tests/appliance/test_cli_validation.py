"""Command lines that make no sense: one clear line, exit 2, before any device connects."""

from __future__ import annotations

import shutil

import pytest

from compute.parkour.client_main import main as client_main
from hal.server.sim.main import main as sim_main


@pytest.fixture
def no_devices(monkeypatch):
    """Fails the test if the simulator's devices are built (they connect right after)."""
    import hal.sim

    def refuse(*_args, **_kwargs):
        raise AssertionError("a device was built before the command line was checked")

    monkeypatch.setattr(hal.sim, "make_sim_devices", refuse)


@pytest.mark.parametrize("flags,expected", [
    (["--control_rate", "0"], "--control-rate 0.0"),
    (["--control-rate", "nan"], "--control-rate nan"),
    (["--control_rate", "-5"], "--control-rate -5.0"),
    (["--control_rate", "5000"], "the loop cannot hold more"),
    (["--duration", "nan"], "--duration nan"),
    (["--duration", "-1"], "--duration -1.0"),
    (["--speed", "nan"], "--speed nan"),
    (["--latency_budget_ms", "50", "--control_rate", "100"], "below the control period"),
    (["--observation_bind", "tcp://*:5555", "--no-client"], "--keys DIR"),
    (["--keys", "/nonexistent/keys"], "does not exist"),
])
def test_bad_numbers_and_endpoints_are_one_line(flags, expected, capsys, no_devices):
    assert sim_main(["--estop_bind", "none", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err


@pytest.mark.parametrize("main, argv", [
    ("hal.server.jetson.main", ["--camera", "none", "--motors", "go2", "--network", "lo"]),
    ("hal.sim.go2_dds", ["--network", "lo"]),
])
def test_a_dds_domain_id_out_of_range_is_one_line_before_dds_starts(main, argv, capsys):
    import importlib

    with pytest.raises(SystemExit) as exit_or_code:
        raise SystemExit(importlib.import_module(main).main([*argv, "--domain-id", "999"]))
    assert exit_or_code.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err  # argparse's usage, then the one line
    assert "--domain-id 999: must be an integer in 0..232" in err.strip().splitlines()[-1], err


def test_an_engine_without_its_manifest_is_refused_unless_told(exported_policy, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("model.onnx", "model.depth.onnx"):
        shutil.copy(exported_policy.parent / name, bare / name)
    assert sim_main(["--engine", str(bare / "model.onnx"), "--estop_bind", "none",
                     "--duration", "0.2", "--fast"]) == 2
    err = capsys.readouterr().err
    assert "no manifest" in err and "--no-manifest" in err


def test_a_client_that_finds_no_server_exits_non_zero(exported_policy, capsys, curve_keys):
    from benchmarks.flood import free_endpoint

    code = client_main(["--engine", str(exported_policy), "--observation_endpoint",
                        free_endpoint(), "--command_endpoint", free_endpoint(),
                        "--keys", str(curve_keys["pilot_dir"]), "--server-timeout", "1"])
    assert code == 1
    err = capsys.readouterr().err
    assert "no observation from" in err and "is the HAL server running" in err


def test_a_client_refuses_tcp_without_keys(exported_policy, capsys):
    assert client_main(["--engine", str(exported_policy), "--observation_endpoint",
                        "tcp://127.0.0.1:1", "--command_endpoint", "tcp://127.0.0.1:2"]) == 2
    assert "needs this client's keys" in capsys.readouterr().err


@pytest.mark.parametrize("budget", [None, 0.0, 10.0, float("nan")])
def test_the_servers_config_refuses_a_budget_that_cannot_work(budget):
    """check_loop_timing lets None through (the command line's "not set"); the server's own
    configuration, which the loop paces by, does not."""
    from hal.server.base import HalServerConfig

    with pytest.raises(ValueError, match="latency_budget_ms"):
        HalServerConfig(control_rate_hz=100.0, latency_budget_ms=budget)
