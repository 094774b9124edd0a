"""krabby-export on bad input: one clear line, a non-zero status, no traceback, nothing written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

import export.parity as parity_module  # noqa: E402
from export.cli import main  # noqa: E402
from export.tensorrt_build import tensorrt_environment  # noqa: E402

NO_TENSORRT = not tensorrt_environment().usable


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["--quiet", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("krabby-export: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_missing_checkpoint_file(tmp_path, capsys):
    status, _, err = run_cli(capsys, "--checkpoint", str(tmp_path / "nope.pt"))
    assert status == 2
    assert_one_line_error(err, "nope.pt does not exist")
    assert listing(tmp_path) == []


def test_checkpoint_is_a_directory(tmp_path, capsys):
    status, _, err = run_cli(capsys, "--checkpoint", str(tmp_path))
    assert status == 2
    assert_one_line_error(err, "is a directory")


def test_not_a_checkpoint(tmp_path, capsys):
    bad = tmp_path / "model.pt"
    bad.write_text("this is not a checkpoint\n")
    status, _, err = run_cli(capsys, "--checkpoint", str(bad))
    assert status == 2
    assert_one_line_error(err, "not a checkpoint")
    assert listing(tmp_path) == ["model.pt"]


def test_missing_key(tmp_path, capsys, checkpoints):
    import torch

    data = torch.load(checkpoints["student"], weights_only=True)
    del data["estimator_state_dict"]["estimator.4.weight"]
    path = tmp_path / "model.pt"
    torch.save(data, path)
    status, _, err = run_cli(capsys, "--checkpoint", str(path))
    assert status == 2
    assert_one_line_error(err, "estimator_state_dict['estimator.4.weight'] is missing", "[9, 64]")
    assert listing(tmp_path) == ["model.pt"]


def test_dims_do_not_match_the_robot(tmp_path, capsys, checkpoints):
    path = tmp_path / "hex.pt"
    shutil.copy(checkpoints["hexapod"], path)
    status, _, err = run_cli(capsys, "--checkpoint", str(path), "--robot", "go2")
    assert status == 2
    assert_one_line_error(err, "does not fit robot 'go2'", "proprio 73, 18 actions")
    assert listing(tmp_path) == ["hex.pt"]


def test_unknown_robot(tmp_path, capsys, checkpoints):
    status, _, err = run_cli(capsys, "--checkpoint", str(checkpoints["student"]),
                             "--robot", "no_such_robot", "--output", f"{tmp_path}/")
    assert status == 2
    assert_one_line_error(err, "no_such_robot")
    assert listing(tmp_path) == []


def test_output_directory_not_writable(tmp_path, capsys, checkpoints):
    if os.geteuid() == 0:
        target = Path("/proc")  # root may write anywhere, but not into procfs
    else:
        target = tmp_path / "ro"
        target.mkdir()
        target.chmod(0o555)
    status, _, err = run_cli(capsys, "--checkpoint", str(checkpoints["student"]),
                             "--output", f"{target}/")
    assert status == 2
    assert_one_line_error(err, "not writable")


def test_output_prefix_rules(tmp_path, capsys, checkpoints):
    status, _, err = run_cli(capsys, "--checkpoint", str(checkpoints["teacher"]),
                             "--output", str(tmp_path / "missing" / "run7"))
    assert status == 2
    assert_one_line_error(err, "does not exist")
    status, _, err = run_cli(capsys, "--checkpoint", str(checkpoints["teacher"]),
                             "--output", str(tmp_path / "run.7"))
    assert status == 2
    assert_one_line_error(err, "must not contain '.'")
    status, out, _ = run_cli(capsys, "--checkpoint", str(checkpoints["teacher"]),
                             "--output", str(tmp_path / "run7"), "--parity-samples", "2")
    assert status == 0 and "run7.json" in out
    assert listing(tmp_path) == ["run7.json", "run7.onnx"]


def test_bad_option_values(tmp_path, capsys, checkpoints):
    status, _, err = run_cli(capsys, "--checkpoint", str(checkpoints["teacher"]),
                             "--parity-samples", "0")
    assert status == 2
    assert_one_line_error(err, "--parity-samples 0")


@pytest.mark.skipif(not NO_TENSORRT, reason="TensorRT is present: the engine gets built")
def test_require_engine_without_tensorrt(tmp_path, capsys, checkpoints):
    status, _, err = run_cli(capsys, "--checkpoint", str(checkpoints["teacher"]),
                             "--output", f"{tmp_path}/", "--require-engine")
    assert status == 1
    assert_one_line_error(err, "--require-engine", "cannot build TensorRT engines here")
    assert listing(tmp_path) == []


@pytest.mark.skipif(not NO_TENSORRT, reason="TensorRT is present: no hint is printed")
def test_without_tensorrt_prints_the_jetson_recipe(tmp_path, capsys, checkpoints):
    status, out, _ = run_cli(capsys, "--checkpoint", str(checkpoints["teacher"]),
                             "--output", f"{tmp_path}/", "--parity-samples", "2")
    assert status == 0
    assert "krabby-export --checkpoint teacher.pt" in out and "--require-engine" in out


def test_failed_parity_leaves_the_previous_export_intact(tmp_path, capsys, checkpoints,
                                                         monkeypatch):
    shutil.copy(checkpoints["teacher"], tmp_path / "model.pt")
    assert run_cli(capsys, "--checkpoint", str(tmp_path / "model.pt"), "--parity-samples", "2")[0] == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # An impossible tolerance: any float difference at all fails the check.
    monkeypatch.setitem(parity_module.TOLERANCES, ("onnxruntime", "fp32"),
                        parity_module.Tolerance(atol=0.0, rtol=0.0))
    status, _, err = run_cli(capsys, "--checkpoint", str(tmp_path / "model.pt"),
                             "--parity-samples", "16")
    if status == 0:
        pytest.skip("ONNX Runtime matched torch bit for bit on every input")
    assert status == 1
    assert_one_line_error(err, "parity check failed (onnxruntime, fp32)", "max abs error")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # untouched, no temp dirs


@pytest.mark.slow
def test_stale_artefacts_of_the_same_prefix_are_removed(tmp_path, capsys, checkpoints):
    shutil.copy(checkpoints["student"], tmp_path / "model.pt")
    assert run_cli(capsys, "--checkpoint", str(tmp_path / "model.pt"), "--parity-samples", "1")[0] == 0
    assert "model.depth.onnx" in listing(tmp_path)
    shutil.copy(checkpoints["teacher"], tmp_path / "model.pt")
    status, out, _ = run_cli(capsys, "--checkpoint", str(tmp_path / "model.pt"),
                             "--parity-samples", "1")
    assert status == 0 and "removed" in out
    assert listing(tmp_path) == ["model.json", "model.onnx", "model.pt"]


def test_progress_lines(tmp_path, capsys, checkpoints):
    assert main(["--checkpoint", str(checkpoints["teacher"]), "--output", f"{tmp_path}/",
                 "--parity-samples", "1"]) == 0
    err = capsys.readouterr().err
    assert "exporting the actor graph" in err and "done in" in err and "SYNTHETIC" in err


def test_console_script_no_traceback(tmp_path):
    script = Path(sys.executable).parent / "krabby-export"
    if not script.exists():
        pytest.skip("console script not installed (pip install -e .)")
    bad = tmp_path / "model.pt"
    bad.write_bytes(os.urandom(512))
    result = subprocess.run([str(script), "--checkpoint", str(bad)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "not a checkpoint" in result.stderr
