"""Checkpoint loading: what is accepted, and the message for everything that is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from compute.parkour import checkpoint as ckpt_module  # noqa: E402
from compute.parkour.checkpoint import CheckpointError, load_checkpoint, read_checkpoint  # noqa: E402
from compute.parkour.synthetic import main as make_main  # noqa: E402
from compute.parkour.synthetic import make_synthetic_checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def student(go2):
    return make_synthetic_checkpoint(go2, seed=1)


@pytest.fixture(scope="module")
def teacher(go2):
    return make_synthetic_checkpoint(go2, seed=2, teacher=True)


def save(tmp_path: Path, data, name="model.pt") -> Path:
    path = tmp_path / name
    torch.save(data, path)
    return path


def copy_sections(data):
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}


def test_student_and_teacher_load(student_path, teacher_path, go2):
    s = load_checkpoint(student_path, go2)
    assert s.is_student and s.kind == "student" and s.depth_step is not None
    assert s.synthetic and s.iteration == 0 and len(s.sha256) == 64
    t = load_checkpoint(teacher_path, go2)
    assert not t.is_student and t.depth_step is None
    assert not any(p.requires_grad for p in s.actor_step.parameters())
    assert not s.actor_step.training


def test_critic_optimizer_and_infos_are_not_checked(student, go2, tmp_path):
    data = copy_sections(student)
    model = data["model_state_dict"]
    # A critic of another size, an extra critic layer, no std: none is used at deploy.
    model["critic.0.weight"] = torch.zeros(256, 800)
    model["critic.8.weight"] = torch.zeros(1, 7)
    del model["std"]
    data["optimizer_state_dict"] = {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": []}
    data["iter"] = 12345
    data["infos"] = None
    policy = load_checkpoint(save(tmp_path, data), go2)
    assert policy.iteration == 12345 and not policy.synthetic


def test_teacher_critic_keys_of_any_shape_accepted(teacher, go2, tmp_path):
    data = copy_sections(teacher)
    data["model_state_dict"]["critic.0.weight"] = torch.zeros(512, 1000)
    assert load_checkpoint(save(tmp_path, data), go2).kind == "teacher"


def test_missing_key_is_named_with_expected_shape(student, go2, tmp_path):
    data = copy_sections(student)
    del data["depth_encoder_state_dict"]["rnn.weight_hh_l0"]
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(save(tmp_path, data), go2)
    msg = str(err.value)
    assert "depth_encoder_state_dict['rnn.weight_hh_l0'] is missing" in msg
    assert "[1536, 512]" in msg


def test_wrong_shape_names_key_expected_and_found(student, go2, tmp_path):
    data = copy_sections(student)
    data["estimator_state_dict"]["estimator.0.weight"] = torch.zeros(128, 50)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(save(tmp_path, data), go2)
    msg = str(err.value)
    assert "estimator_state_dict['estimator.0.weight'] has shape [128, 50], expected [128, 53]" in msg


def test_teacher_missing_actor_key(teacher, go2, tmp_path):
    data = copy_sections(teacher)
    del data["model_state_dict"]["actor.scan_encoder.4.bias"]
    with pytest.raises(CheckpointError, match=r"model_state_dict\['actor.scan_encoder.4.bias'\] is "
                                              r"missing \(expected shape \[32\]\)"):
        load_checkpoint(save(tmp_path, data), go2)


def test_student_missing_depth_actor_section(student, go2, tmp_path):
    data = copy_sections(student)
    del data["depth_actor_state_dict"]
    with pytest.raises(CheckpointError, match="missing 'depth_actor_state_dict'"):
        load_checkpoint(save(tmp_path, data), go2)


def test_missing_estimator_section(teacher, go2, tmp_path):
    data = copy_sections(teacher)
    del data["estimator_state_dict"]
    with pytest.raises(CheckpointError, match="missing 'estimator_state_dict'"):
        load_checkpoint(save(tmp_path, data), go2)


def test_unexpected_actor_key_means_other_architecture(student, go2, tmp_path):
    data = copy_sections(student)
    data["depth_actor_state_dict"]["actor_backbone.8.weight"] = torch.zeros(12, 12)
    with pytest.raises(CheckpointError, match="unexpected key"):
        load_checkpoint(save(tmp_path, data), go2)


def test_non_finite_weights_refused(teacher, go2, tmp_path):
    data = copy_sections(teacher)
    bad = data["estimator_state_dict"]["estimator.2.bias"].clone()
    bad[3] = float("nan")
    data["estimator_state_dict"]["estimator.2.bias"] = bad
    with pytest.raises(CheckpointError, match="estimator.2.bias.*NaN"):
        load_checkpoint(save(tmp_path, data), go2)


def test_checkpoint_for_another_robot_says_so(hexapod, go2, tmp_path):
    from compute.parkour.synthetic import write_synthetic_checkpoint

    path = write_synthetic_checkpoint(tmp_path / "hex.pt", hexapod, seed=0, teacher=True)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, go2)
    msg = str(err.value)
    assert "does not fit robot 'go2'" in msg
    assert "trained for proprio 73, 18 actions" in msg and "proprio 53, 12 actions" in msg


@pytest.mark.parametrize("content", [b"hello, not a checkpoint\n", os.urandom(4096), b""])
def test_not_a_checkpoint(content, go2, tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(path, go2)


class Exploit:  # a pickle that would run code if loaded without weights_only
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_code_is_not_executed(go2, tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model_state_dict": Exploit()}, path)
    with pytest.raises(CheckpointError, match="not a checkpoint.*weights_only"):
        load_checkpoint(path, go2)


def test_wrong_top_level(go2, tmp_path):
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(save(tmp_path, [torch.zeros(3)]), go2)
    with pytest.raises(CheckpointError, match="not a parkour checkpoint"):
        load_checkpoint(save(tmp_path, {"state_dict": {}}, "other.pt"), go2)


def test_not_a_file(go2, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path, go2)


def test_inspect_cli_reports_errors_in_one_line(tmp_path, capsys, student_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("nope")
    assert ckpt_module.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a checkpoint" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert ckpt_module.main([str(student_path), "--robot", "go2"]) == 0
    assert "student checkpoint" in capsys.readouterr().out


def test_make_checkpoint_cli(tmp_path, capsys, go2):
    out = tmp_path / "made.pt"
    assert make_main(["--output", str(out), "--robot", "go2", "--seed", "5", "--teacher"]) == 0
    assert "not a walking policy" in capsys.readouterr().out
    assert load_checkpoint(out, go2).kind == "teacher"
    assert not list(tmp_path.glob(".*tmp*"))  # no temp file left behind
    assert make_main(["--output", str(tmp_path / "missing" / "x.pt")]) == 2
    assert make_main(["--output", str(tmp_path)]) == 2
    assert make_main(["--output", str(out), "--robot", "no_such_robot"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 3


def test_make_checkpoint_console_script_no_traceback(tmp_path):
    script = Path(sys.executable).parent / "krabby-make-checkpoint"
    if not script.exists():
        pytest.skip("console script not installed (pip install -e .)")
    result = subprocess.run([str(script), "--output", str(tmp_path / "no" / "x.pt")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "does not exist" in result.stderr
