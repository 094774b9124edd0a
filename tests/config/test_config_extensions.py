"""hal.config's positionals, per-command required settings, subcommands and shared declarations,
through real commands' parsers (krabby-replay, krabby-export, krabby-keys, krabby-eval, krabby-bench).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hal.config import ConfigError, parse_command, parse_config, setting_of
from hal.config.sections import ENGINE


def test_a_positional_comes_from_the_command_line_or_the_config_file(tmp_path: Path) -> None:
    from hal.recorder.replay import ReplayConfig, build_parser

    config = parse_config(ReplayConfig, ["run.mcap", "--tolerance", "0.5"], build_parser())
    assert (config.replay.log, config.replay.tolerance, config.robot.robot) == ("run.mcap", 0.5, None)
    (tmp_path / "r.toml").write_text('[replay]\nlog = "from_file.mcap"\n')
    # a positional is required on the command line (argparse), and the command line wins
    config = parse_config(ReplayConfig, ["cli.mcap", "--config", str(tmp_path / "r.toml")],
                          build_parser())
    assert config.replay.log == "cli.mcap"


def test_an_optional_positional_absent_keeps_its_default() -> None:
    from hal.safety.estop import EstopConfig, build_parser

    config = parse_config(EstopConfig, ["tcp://robot:5560", "ESTOP"], build_parser())
    assert (config.estop.command, config.estop.reason) == ("ESTOP", "")
    with pytest.raises(SystemExit) as exc:
        parse_config(EstopConfig, ["tcp://robot:5560", "HALT"], build_parser())
    assert exc.value.code == 2


def test_a_required_setting_may_come_from_the_config_file(tmp_path: Path, capsys) -> None:
    from export.cli import ExportConfig, build_parser

    with pytest.raises(SystemExit) as exc:
        parse_config(ExportConfig, [], build_parser())
    assert exc.value.code == 2
    assert "the following arguments are required: --checkpoint" in capsys.readouterr().err
    (tmp_path / "e.toml").write_text('[policy]\ncheckpoint = "model.pt"\n[tensorrt]\nprecision = "fp32"\n')
    config = parse_config(ExportConfig, ["--config", str(tmp_path / "e.toml")], build_parser())
    assert (config.policy.checkpoint, config.tensorrt.precision) == ("model.pt", "fp32")


def test_a_list_setting_from_the_config_file_checks_each_choice(tmp_path: Path) -> None:
    from benchmarks.__main__ import BenchConfig, build_parser

    (tmp_path / "b.toml").write_text('[bench]\ncases = ["sim_step", "e2e"]\n')
    config = parse_config(BenchConfig, ["--config", str(tmp_path / "b.toml")], build_parser())
    assert config.bench.cases == ["sim_step", "e2e"]
    (tmp_path / "b.toml").write_text('[bench]\ncases = ["sim_step", "warp"]\n')
    with pytest.raises(ConfigError, match="warp"):
        parse_config(BenchConfig, ["--config", str(tmp_path / "b.toml")], build_parser())


def test_subcommands_each_have_their_configuration() -> None:
    from hal.keys_cli import build_parser

    name, config = parse_command(build_parser(), ["add", "robot", "alice", "--role", "operator",
                                                  "--out", "alice-keys"])
    assert name == "add"
    assert (config.client.robot_dir, config.client.name, config.client.role, config.files.out) == \
        (Path("robot"), "alice", "operator", "alice-keys")
    name, config = parse_command(build_parser(), ["list", "robot"])
    assert (name, config.keys.directory) == ("list", Path("robot"))
    with pytest.raises(SystemExit):  # --role is add's, not revoke's
        parse_command(build_parser(), ["revoke", "robot", "alice", "--role", "operator"])


def test_a_shared_setting_reused_with_like_is_one_declaration() -> None:
    from hal.config.sections import PolicyFilesSection
    from hal.eval.cli import EvalConfig, EvalPolicySection, build_parser

    fields = {f.name: f for f in EvalPolicySection.__dataclass_fields__.values()}
    policy = {f.name: f for f in PolicyFilesSection.__dataclass_fields__.values()}
    assert setting_of(policy["engine"]) == ENGINE
    assert setting_of(fields["engines"]).repeat and setting_of(fields["engines"]).help == ENGINE.help
    config = parse_config(EvalConfig, ["--engine", "a.onnx", "--engine", "b.onnx"], build_parser())
    assert config.policy.engines == ["a.onnx", "b.onnx"]
    assert (config.command.speed_m_s, config.output.report, config.output.log_level) == \
        (1.0, "eval.json", "WARNING")


def test_help_marks_a_setting_the_command_requires() -> None:
    """A part(required=...) setting is checked after --config is read (not by argparse, which
    would refuse a file that gives it), so its help says it is required."""
    from export.cli import build_parser as export_parser
    from hal.keys_cli import build_parser as keys_parser

    def help_of(parser, flag: str) -> str:
        return next(a.help for a in parser._actions if flag in a.option_strings)

    assert help_of(export_parser(), "--checkpoint").endswith("(required)")
    assert not help_of(export_parser(), "--output").endswith("(required)")
    add = keys_parser().subparsers["add"]
    assert help_of(add, "--role").endswith("(required)")
    assert help_of(add, "--out").endswith("(required)")


@pytest.mark.parametrize("given, level", [("warning", "WARNING"), ("warn", "WARNING"),
                                          ("FATAL", "CRITICAL"), ("debug", "DEBUG")])
def test_log_level_takes_the_names_logging_takes(given: str, level: str) -> None:
    """--log-level warn worked while the flag was passed to logging unchecked; it still does."""
    from hal.recorder.replay import ReplayConfig, build_parser

    config = parse_config(ReplayConfig, ["run.mcap", "--log-level", given], build_parser())
    assert config.output.log_level == level
