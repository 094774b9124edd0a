"""Raw policy actions → PD joint targets in hardware order
(docs/architecture.md#the-observation-and-the-actions).

Per step::

    targets = processor.process(actions)      # actions: [1, n] or [n], policy order, raw
    # targets is processor.target_rad_hardware; gains are processor.kp_hardware / kd_hardware

``target = default + action_scale × clip(action, ±action_clip)`` (0.25 and 4.8 in training, so a
target moves at most 1.2 rad from the default), then reordered from policy to hardware order.
The raw action is kept (policy order) for the next observation's "last action" field. Every
array is preallocated; :meth:`process` allocates none. NaN actions stay NaN in the targets: the
safety layer, which sees every command, rejects them.
"""

from __future__ import annotations

import numpy as np

from hal.robot import RobotConfig

__all__ = ["ActionProcessor"]


class ActionProcessor:
    """Clip, scale, offset and reorder actions into preallocated hardware-order arrays.

    Attributes:
        target_rad_hardware: joint position targets (rad), hardware order; rewritten each step.
        kp_hardware, kd_hardware: PD gains per joint, hardware order (constant).
        last_raw_action: the latest raw action, policy order (the observation's last action).
        clipped_action: the latest clipped action, policy order.
    """

    def __init__(self, robot: RobotConfig) -> None:
        self.robot = robot
        n = robot.n_joints
        self.action_clip = float(robot.action_clip)
        self.action_scale = float(robot.action_scale)
        # 0-d float32 constants: ufuncs then create no temporaries for them.
        self._clip_hi = np.array(self.action_clip, dtype=np.float32)
        self._clip_lo = np.array(-self.action_clip, dtype=np.float32)
        self._scale = np.array(self.action_scale, dtype=np.float32)
        self._policy_to_hardware = np.ascontiguousarray(robot.policy_to_hardware, dtype=np.intp)
        self._default = np.asarray(robot.default_angles, dtype=np.float32).copy()
        self.kp_hardware = np.asarray(robot.to_hardware(robot.kp), dtype=np.float32).copy()
        self.kd_hardware = np.asarray(robot.to_hardware(robot.kd), dtype=np.float32).copy()
        self.kp_hardware.flags.writeable = False
        self.kd_hardware.flags.writeable = False
        self.default_hardware = np.asarray(robot.to_hardware(self._default), dtype=np.float32)
        self.default_hardware.flags.writeable = False
        self.last_raw_action = np.zeros(n, dtype=np.float32)
        self._last_raw_2d = self.last_raw_action.reshape(1, n)  # same memory, for [1, n] input
        self.clipped_action = np.zeros(n, dtype=np.float32)
        self._target_policy = np.zeros(n, dtype=np.float32)
        self.target_rad_hardware = np.zeros(n, dtype=np.float32)

    def reset(self) -> None:
        """Forget the last action (a new episode starts from zero, as in training)."""
        self.last_raw_action[:] = 0.0
        self.clipped_action[:] = 0.0
        np.copyto(self.target_rad_hardware, self.default_hardware)

    def process(self, actions: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Turn one raw action into joint targets.

        Args:
            actions: the actor's output, shape (n,) or (1, n), policy order.
            out: optional hardware-order target array (float32, shape (n,)); defaults to
                :attr:`target_rad_hardware`.

        Returns:
            The target array (``out`` or :attr:`target_rad_hardware`).
        """
        shape = actions.shape
        if shape == self._last_raw_2d.shape:
            np.copyto(self._last_raw_2d, actions)
        elif shape == self.last_raw_action.shape:
            np.copyto(self.last_raw_action, actions)
        else:
            n = self.last_raw_action.shape[0]
            raise ValueError(f"actions have shape {shape}, expected ({n},) or (1, {n})")
        target = self.target_rad_hardware if out is None else out
        np.minimum(self.last_raw_action, self._clip_hi, out=self.clipped_action)
        np.maximum(self.clipped_action, self._clip_lo, out=self.clipped_action)
        np.multiply(self.clipped_action, self._scale, out=self._target_policy)
        np.add(self._target_policy, self._default, out=self._target_policy)
        # mode="clip" writes straight into ``target`` (mode="raise" buffers); indices are valid.
        self._target_policy.take(self._policy_to_hardware, out=target, mode="clip")
        return target
