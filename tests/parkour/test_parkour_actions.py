"""Action processing: clip, scale, default offset, policy → hardware order, gains."""

from __future__ import annotations

import numpy as np
import pytest

from compute.parkour.actions import ActionProcessor


def test_clip_scale_offset_go2(go2):
    processor = ActionProcessor(go2)
    raw = np.array([[0.0, 1.0, -1.0, 4.8, -4.8, 10.0, -10.0, 0.5, 2.0, -3.0, 100.0, 0.1]],
                   dtype=np.float32)
    target = processor.process(raw)
    clipped = [0.0, 1.0, -1.0, 4.8, -4.8, 4.8, -4.8, 0.5, 2.0, -3.0, 4.8, 0.1]
    # go2's hardware order equals its policy order.
    defaults = [-0.1, 0.8, -1.5, 0.1, 0.8, -1.5, -0.1, 1.0, -1.5, 0.1, 1.0, -1.5]
    np.testing.assert_allclose(target, [d + 0.25 * a for d, a in zip(defaults, clipped)],
                               atol=1e-6)
    np.testing.assert_array_equal(processor.last_raw_action, raw[0])  # before the clip
    np.testing.assert_allclose(processor.clipped_action, clipped, atol=1e-6)
    np.testing.assert_array_equal(processor.kp_hardware, 40.0)
    np.testing.assert_array_equal(processor.kd_hardware, 1.0)
    assert target is processor.target_rad_hardware


def test_policy_to_hardware_order(shuffled):
    processor = ActionProcessor(shuffled)
    action = np.arange(12, dtype=np.float32) * 0.1  # policy joint i gets 0.1 i
    target = processor.process(action)
    policy_index = {name: i for i, name in enumerate(shuffled.joint_names_policy)}
    for h, name in enumerate(shuffled.joint_names_hardware):
        i = policy_index[name]
        assert target[h] == pytest.approx(shuffled.default_angles[i] + 0.25 * 0.1 * i, abs=1e-6)
        assert processor.kp_hardware[h] == pytest.approx(shuffled.kp[i])
        assert processor.kd_hardware[h] == pytest.approx(shuffled.kd[i])


def test_hexapod_and_external_output(hexapod):
    processor = ActionProcessor(hexapod)
    out = np.zeros(18, dtype=np.float32)
    result = processor.process(np.full(18, 1.0, np.float32), out=out)
    assert result is out
    np.testing.assert_allclose(out, hexapod.to_hardware(hexapod.default_angles) + 0.25, atol=1e-6)


def test_bad_shape_and_reset(go2):
    processor = ActionProcessor(go2)
    with pytest.raises(ValueError, match=r"expected \(12,\) or \(1, 12\)"):
        processor.process(np.zeros(11, np.float32))
    processor.process(np.ones(12, np.float32))
    processor.reset()
    assert not processor.last_raw_action.any()
    np.testing.assert_allclose(processor.target_rad_hardware, go2.default_angles)


def test_nan_is_passed_on_for_the_safety_layer(go2):
    processor = ActionProcessor(go2)
    action = np.zeros(12, np.float32)
    action[3] = np.nan
    target = processor.process(action)
    assert np.isnan(target[3]) and np.isfinite(np.delete(target, 3)).all()
