"""Where each quantity sits in the policy observation, derived from a robot definition
(docs/architecture.md#the-observation-and-the-actions).

For a 12-joint, 4-foot robot the observation has 753 entries::

    proprio [0:53] | scan [53:185] | priv_explicit [185:194] | priv_latent [194:223] |
    history [223:753]

and the proprioceptive block (``P = 13 + 3·joints + feet``) is::

    [0:3] angular velocity × 0.25 · [3:5] roll, pitch · [5] 0 · [6:8] 1.5 × yaw · [8:10] 0 ·
    [10] forward speed command · [11] parkour flag · [12] walk flag · joint position − default ·
    joint velocity × 0.05 · last raw action · foot contact − 0.5

This module has no torch dependency: the observation builder, the exporter and the manifest share
it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hal.robot import RobotConfig

__all__ = [
    "SCAN_POINTS_X_M",
    "SCAN_POINTS_Y_M",
    "SCAN_HEIGHT_OFFSET_M",
    "scan_points_xy",
    "scan_from_base_height",
    "ANG_VEL_SCALE",
    "JOINT_VEL_SCALE",
    "YAW_SCALE",
    "PolicyLayout",
    "ObservationLayout",
]

ANG_VEL_SCALE = 0.25
"""Base angular velocity scale in the observation (training ``obs_scales.ang_vel``)."""
JOINT_VEL_SCALE = 0.05
"""Joint velocity scale in the observation (training ``obs_scales.dof_vel``)."""
YAW_SCALE = 1.5
"""The deploy step writes ``YAW_SCALE × predicted yaw`` into proprio [6:8]."""

SCAN_POINTS_X_M = tuple(round(-0.45 + 0.15 * i, 2) for i in range(12))
"""legged_gym's ``measured_points_x``: -0.45 … 1.20 m ahead of the base (yaw-aligned frame)."""
SCAN_POINTS_Y_M = tuple(round(-0.75 + 0.15 * i, 2) for i in range(11))
"""legged_gym's ``measured_points_y``: -0.75 … 0.75 m to the left of the base."""
SCAN_HEIGHT_OFFSET_M = 0.3
"""Training's scan is ``clip(base_z - 0.3 - terrain_z, -1, 1)``, no scale."""


def scan_points_xy() -> np.ndarray:
    """The 132 scan points (x, y) in the order of the observation's scan block: legged_gym's
    ``meshgrid(x, y)`` (matrix indexing) flattened, so x varies slowest."""
    grid_x, grid_y = np.meshgrid(np.array(SCAN_POINTS_X_M), np.array(SCAN_POINTS_Y_M),
                                 indexing="ij")
    return np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)


def scan_from_base_height(base_height_m: np.ndarray | float, out: np.ndarray) -> np.ndarray:
    """Training's scan values from the base's height above the terrain at each point."""
    np.subtract(base_height_m, SCAN_HEIGHT_OFFSET_M, out=out)
    np.clip(out, -1.0, 1.0, out=out)
    return out


@dataclass(frozen=True)
class PolicyLayout:
    """Sizes of the non-proprioceptive observation blocks and the history
    (docs/architecture.md#the-observation-and-the-actions)."""

    scan_dim: int = 132
    priv_explicit_dim: int = 9
    priv_latent_dim: int = 29
    history_len: int = 10
    depth_latent_dim: int = 32
    observation_clip: float = 100.0


@dataclass(frozen=True)
class ObservationLayout:
    """Index ranges (start, stop) of every observation field for one robot.

    Build it with :meth:`from_robot`; all ranges are half-open ``(start, stop)`` pairs into the
    flat observation vector (the proprio fields also index a single proprio frame, which starts
    at 0).
    """

    n_joints: int
    n_feet: int
    proprio_dim: int
    scan_dim: int
    priv_explicit_dim: int
    priv_latent_dim: int
    history_len: int
    depth_latent_dim: int
    observation_clip: float

    # Fields inside the proprio frame.
    ang_vel: tuple[int, int] = (0, 3)
    roll_pitch: tuple[int, int] = (3, 5)
    yaw: tuple[int, int] = (6, 8)
    forward_speed: int = 10
    parkour_flag: int = 11
    walk_flag: int = 12

    @classmethod
    def from_robot(cls, robot: RobotConfig, sizes: "PolicyLayout | None" = None) -> "ObservationLayout":
        """The layout for ``robot``'s joint and foot counts: proprio = 13 + 3·joints + feet."""
        lay = sizes or PolicyLayout()
        return cls(
            n_joints=robot.n_joints,
            n_feet=robot.n_feet,
            proprio_dim=13 + 3 * robot.n_joints + robot.n_feet,
            scan_dim=lay.scan_dim,
            priv_explicit_dim=lay.priv_explicit_dim,
            priv_latent_dim=lay.priv_latent_dim,
            history_len=lay.history_len,
            depth_latent_dim=lay.depth_latent_dim,
            observation_clip=lay.observation_clip,
        )

    # -- proprio fields ------------------------------------------------------------------------
    @property
    def joint_pos(self) -> tuple[int, int]:
        return (13, 13 + self.n_joints)

    @property
    def joint_vel(self) -> tuple[int, int]:
        start = 13 + self.n_joints
        return (start, start + self.n_joints)

    @property
    def last_action(self) -> tuple[int, int]:
        start = 13 + 2 * self.n_joints
        return (start, start + self.n_joints)

    @property
    def contact(self) -> tuple[int, int]:
        start = 13 + 3 * self.n_joints
        return (start, start + self.n_feet)

    # -- blocks of the full observation ---------------------------------------------------------
    @property
    def proprio(self) -> tuple[int, int]:
        return (0, self.proprio_dim)

    @property
    def scan(self) -> tuple[int, int]:
        start = self.proprio_dim
        return (start, start + self.scan_dim)

    @property
    def priv_explicit(self) -> tuple[int, int]:
        start = self.proprio_dim + self.scan_dim
        return (start, start + self.priv_explicit_dim)

    @property
    def priv_latent(self) -> tuple[int, int]:
        start = self.priv_explicit[1]
        return (start, start + self.priv_latent_dim)

    @property
    def history(self) -> tuple[int, int]:
        start = self.priv_latent[1]
        return (start, start + self.history_len * self.proprio_dim)

    @property
    def obs_dim(self) -> int:
        return self.history[1]

    @property
    def action_dim(self) -> int:
        return self.n_joints

    @property
    def latent_yaw_dim(self) -> int:
        """The depth step's output: the latent and the two yaw values."""
        return self.depth_latent_dim + 2

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description for the export manifest."""
        return {
            "obs_dim": self.obs_dim,
            "proprio_dim": self.proprio_dim,
            "action_dim": self.action_dim,
            "history_len": self.history_len,
            "depth_latent_dim": self.depth_latent_dim,
            "observation_clip": self.observation_clip,
            "blocks": {
                "proprio": list(self.proprio),
                "scan": list(self.scan),
                "priv_explicit": list(self.priv_explicit),
                "priv_latent": list(self.priv_latent),
                "history": list(self.history),
            },
            "proprio_fields": {
                "ang_vel": list(self.ang_vel),
                "roll_pitch": list(self.roll_pitch),
                "yaw": list(self.yaw),
                "forward_speed": [self.forward_speed, self.forward_speed + 1],
                "parkour_flag": [self.parkour_flag, self.parkour_flag + 1],
                "walk_flag": [self.walk_flag, self.walk_flag + 1],
                "joint_pos": list(self.joint_pos),
                "joint_vel": list(self.joint_vel),
                "last_action": list(self.last_action),
                "contact": list(self.contact),
            },
            "scales": {
                "ang_vel": ANG_VEL_SCALE,
                "joint_vel": JOINT_VEL_SCALE,
                "yaw": YAW_SCALE,
            },
        }
