"""``krabby-export --train-config`` end to end: the manifest's contract carries the camera the
training code used, names the reading it took, lets the user override it, and the runtime applies it.

The Go2 fork dump (tests/data/train_configs/go2_fork_random_box_env_cfg.json, see its README) gives
the camera's pitch as ``depth.rotation`` 0.349066–0.436332 rad (middle 22.5° down) and also holds
an unused ``depth.angle`` [0, 1] (0.5°).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

pytest.importorskip("torch")

from export.cli import main  # noqa: E402

GO2_DUMP = Path(__file__).resolve().parents[1] / "data" / "train_configs" / \
    "go2_fork_random_box_env_cfg.json"


def _export(checkpoint: Path, out: Path, *extra: str) -> dict:
    assert main(["--checkpoint", str(checkpoint), "--output", f"{out}/", "--parity-samples", "2",
                 "--train-config", str(GO2_DUMP), *extra]) == 0
    return json.loads((out / f"{checkpoint.stem}.json").read_text())


def test_the_manifest_carries_the_pitch_training_used_and_says_why(tmp_path, checkpoints, go2,
                                                                    capsys, caplog):
    from compute.parkour.policy_engines import open_policy_engines

    with caplog.at_level(logging.WARNING):
        manifest = _export(checkpoints["teacher"], tmp_path)
    contract = manifest["training_contract"]
    assert contract["camera"]["pitch_deg"] == pytest.approx(22.5, abs=1e-3)
    assert contract["camera"]["horizontal_fov_deg"] == pytest.approx(88.0)
    assert contract["camera"]["position_m"] == [0.355, 0.0, 0.065]
    ambiguous = [note for note in contract["notes"] if "ambiguous" in note]
    assert len(ambiguous) == 1 and "depth.angle [0, 1]" in ambiguous[0]
    assert "--camera-pitch-deg" in ambiguous[0]
    assert any("torque limits from the robot definition" in n for n in contract["notes"])
    # Export says so as it runs: the warning, and the notes among the progress lines.
    assert any("depth.angle [0, 1]" in r.getMessage() for r in caplog.records)
    assert "training contract: camera pitch is ambiguous" in capsys.readouterr().err
    policy = open_policy_engines(go2, engine=tmp_path / "teacher.onnx")
    try:
        assert policy.robot.depth_camera.pitch_deg == pytest.approx(22.5, abs=1e-3)
        assert policy.robot.depth_camera.horizontal_fov_deg == pytest.approx(88.0)
    finally:
        policy.close()


def test_the_user_overrides_the_pitch(tmp_path, checkpoints):
    manifest = _export(checkpoints["teacher"], tmp_path, "--quiet", "--camera-pitch-deg", "20",
                       "--camera-position", "0.34,0,0.07")
    contract = manifest["training_contract"]
    assert contract["camera"]["pitch_deg"] == 20.0
    assert contract["camera"]["position_m"] == [0.34, 0.0, 0.07]
    assert any(note.startswith("camera pitch 20° down from --camera-pitch-deg")
               and "22.5" in note for note in contract["notes"])


def test_a_bad_override_is_one_line_and_writes_nothing(tmp_path, checkpoints, capsys):
    status = main(["--checkpoint", str(checkpoints["teacher"]), "--output", f"{tmp_path}/",
                   "--train-config", str(GO2_DUMP), "--camera-position", "0.3,0", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("krabby-export: error: --camera-position")
    assert list(tmp_path.iterdir()) == []
