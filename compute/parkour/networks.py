"""Torch modules whose ``state_dict`` keys and shapes match the upstream parkour checkpoint.

The upstream training code (extreme-parkour's ``rsl_rl``) is not a dependency: these classes
rebuild the same module trees so that ``load_state_dict`` accepts the upstream tensors unchanged
(docs/architecture.md#the-checkpoint). Layer indices inside every ``nn.Sequential`` matter, because
they are the key names::

    actor.priv_encoder.{0,2}            Linear(29,64) ELU Linear(64,20) ELU
    actor.history_encoder.encoder.0     Linear(P,30) ELU
    actor.history_encoder.conv_layers.{0,2}  Conv1d(30,20,k4,s2) ELU Conv1d(20,10,k2) ELU Flatten
    actor.history_encoder.linear_output.0    Linear(30,20) ELU
    actor.scan_encoder.{0,2,4}          Linear(132,128) ELU Linear(128,64) ELU Linear(64,32) Tanh
    actor.actor_backbone.{0,2,4,6}      Linear(P+32+9+20,512) ELU ... Linear(128,A)
    estimator.{0,2,4}                   Linear(P,128) ELU Linear(128,64) ELU Linear(64,9)
    base_backbone.image_compression.{0,3,6,8}  Conv2d(1,32,5) MaxPool ELU Conv2d(32,64,3) ELU
                                        Flatten Linear(62400,128) ELU Linear(128,32)  (+ ELU)
    combination_mlp.{0,2}               Linear(32+P,128) ELU Linear(128,32)
    rnn.{weight,bias}_{ih,hh}_l0        GRU(32, 512, batch_first=True)
    output_mlp.0                        Linear(512,34) Tanh

``P`` (proprio) and ``A`` (actions) come from the robot definition, so an 18-joint hexapod
(P = 73) gets the same trees with wider input and output layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from compute.parkour.layout import ObservationLayout
from hal.optional import require
from hal.robot import RobotConfig

torch = require("torch", "the parkour policy networks")
nn = torch.nn

__all__ = [
    "PolicyArchitecture",
    "StateHistoryEncoder",
    "Actor",
    "ActorCritic",
    "Estimator",
    "DepthBackbone58x87",
    "RecurrentDepthEncoder",
]


@dataclass(frozen=True)
class PolicyArchitecture:
    """Every size that fixes a tensor shape in the checkpoint.

    The hidden sizes are the upstream training configuration; the input and output sizes come
    from the robot definition through :meth:`from_robot`.
    """

    num_prop: int
    num_scan: int
    num_priv_explicit: int
    num_priv_latent: int
    num_hist: int
    num_actions: int
    depth_latent_dim: int = 32
    depth_height: int = 58
    depth_width: int = 87
    actor_hidden_dims: tuple[int, ...] = (512, 256, 128)
    scan_encoder_dims: tuple[int, ...] = (128, 64, 32)
    priv_encoder_dims: tuple[int, ...] = (64, 20)
    critic_hidden_dims: tuple[int, ...] = (512, 256, 128)
    estimator_hidden_dims: tuple[int, ...] = (128, 64)
    depth_image_latent_dim: int = 128
    depth_combination_hidden_dim: int = 128
    depth_hidden_dim: int = 512
    yaw_dim: int = 2

    @classmethod
    def from_robot(cls, robot: RobotConfig) -> "PolicyArchitecture":
        lay = ObservationLayout.from_robot(robot)
        cam = robot.depth_camera
        arch = cls(
            num_prop=lay.proprio_dim,
            num_scan=lay.scan_dim,
            num_priv_explicit=lay.priv_explicit_dim,
            num_priv_latent=lay.priv_latent_dim,
            num_hist=lay.history_len,
            num_actions=robot.n_joints,
            depth_latent_dim=lay.depth_latent_dim,
            depth_height=cam.policy_height,
            depth_width=cam.policy_width,
        )
        if arch.scan_encoder_dims[-1] != arch.depth_latent_dim:
            raise ValueError(f"the scan encoder's output ({arch.scan_encoder_dims[-1]}) must equal "
                             f"the depth latent size ({arch.depth_latent_dim}): the depth latent "
                             "takes the scan latent's place in the actor")
        if arch.num_hist not in _HISTORY_CONVS:
            raise ValueError(f"history_len {arch.num_hist} has no upstream history encoder; "
                             f"valid: {sorted(_HISTORY_CONVS)}")
        return arch

    @property
    def obs_dim(self) -> int:
        return (self.num_prop + self.num_scan + self.num_priv_explicit + self.num_priv_latent
                + self.num_hist * self.num_prop)

    @property
    def depth_output_dim(self) -> int:
        """Latent plus yaw: the depth encoder's output (34 upstream)."""
        return self.depth_latent_dim + self.yaw_dim

    @property
    def depth_conv_flat_dim(self) -> int:
        """Flattened size after the depth convolutions (62400 for a 58×87 image)."""
        h = (self.depth_height - 4) // 2 - 2
        w = (self.depth_width - 4) // 2 - 2
        return 64 * h * w


# Upstream history encoder convolutions per history length: (kernel, stride) per Conv1d layer.
_HISTORY_CONVS: dict[int, tuple[tuple[int, int], ...]] = {
    10: ((4, 2), (2, 1)),
    20: ((6, 2), (4, 2)),
    50: ((8, 4), (5, 1), (5, 1)),
}
_CHANNELS = 10


class StateHistoryEncoder(nn.Module):
    """Per-step projection, 1-D convolutions over time, linear output (upstream layout)."""

    def __init__(self, num_prop: int, num_hist: int, output_dim: int) -> None:
        super().__init__()
        act = nn.ELU()
        self.num_hist = num_hist
        self.num_prop = num_prop
        self.encoder = nn.Sequential(nn.Linear(num_prop, 3 * _CHANNELS), act)
        layers: list[nn.Module] = []
        convs = _HISTORY_CONVS[num_hist]
        c_ins = [3 * _CHANNELS, 2 * _CHANNELS] + [_CHANNELS] * (len(convs) - 2)
        c_outs = [2 * _CHANNELS] + [_CHANNELS] * (len(convs) - 1)
        for (kernel, stride), c_in, c_out in zip(convs, c_ins, c_outs):
            layers += [nn.Conv1d(c_in, c_out, kernel_size=kernel, stride=stride), act]
        layers.append(nn.Flatten())
        self.conv_layers = nn.Sequential(*layers)
        self.linear_output = nn.Sequential(nn.Linear(3 * _CHANNELS, output_dim), act)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """``history`` [B, T, P] → latent [B, output_dim]."""
        batch = history.shape[0]
        projection = self.encoder(history.reshape(batch * self.num_hist, self.num_prop))
        output = self.conv_layers(projection.reshape(batch, self.num_hist, 3 * _CHANNELS)
                                  .permute(0, 2, 1))
        return self.linear_output(output)


def _mlp(dims: list[int], last_activation: nn.Module | None) -> nn.Sequential:
    """Linear layers with ELU between them (and ``last_activation`` after the last, if any)."""
    act = nn.ELU()
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims, dims[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2:
            layers.append(act)
        elif last_activation is not None:
            layers.append(last_activation)
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """The parkour actor: priv/history/scan encoders and the backbone (upstream ``Actor``)."""

    def __init__(self, arch: PolicyArchitecture) -> None:
        super().__init__()
        self.arch = arch
        priv_out = arch.priv_encoder_dims[-1]
        self.priv_encoder = _mlp([arch.num_priv_latent, *arch.priv_encoder_dims], nn.ELU())
        self.history_encoder = StateHistoryEncoder(arch.num_prop, arch.num_hist, priv_out)
        self.scan_encoder = _mlp([arch.num_scan, *arch.scan_encoder_dims], nn.Tanh())
        backbone_in = arch.num_prop + arch.scan_encoder_dims[-1] + arch.num_priv_explicit + priv_out
        self.actor_backbone = _mlp([backbone_in, *arch.actor_hidden_dims, arch.num_actions], None)

    def forward(self, obs: torch.Tensor, scan_latent: torch.Tensor | None = None) -> torch.Tensor:
        """Actions from a full observation, using the history encoder (deploy mode).

        Args:
            obs: [B, obs_dim] with priv_explicit already filled (by the estimator at deploy).
            scan_latent: [B, 32] replaces the scan encoder's output (the depth latent of a
                student); None runs the scan encoder on the observation's scan block.
        """
        a = self.arch
        proprio = obs[:, : a.num_prop]
        if scan_latent is None:
            scan_latent = self.scan_encoder(obs[:, a.num_prop: a.num_prop + a.num_scan])
        start = a.num_prop + a.num_scan
        priv_explicit = obs[:, start: start + a.num_priv_explicit]
        history = obs[:, a.obs_dim - a.num_hist * a.num_prop:]
        hist_latent = self.history_encoder(history.reshape(-1, a.num_hist, a.num_prop))
        return self.actor_backbone(torch.cat([proprio, scan_latent, priv_explicit, hist_latent], 1))


class ActorCritic(nn.Module):
    """``ActorCriticRMA``'s parameters: ``actor.*``, ``critic.*`` and ``std``.

    Only the actor runs at deploy; the critic and ``std`` exist so a synthetic checkpoint has the
    upstream layout.
    """

    def __init__(self, arch: PolicyArchitecture, num_critic_obs: int | None = None) -> None:
        super().__init__()
        self.actor = Actor(arch)
        critic_in = arch.obs_dim if num_critic_obs is None else num_critic_obs
        self.critic = _mlp([critic_in, *arch.critic_hidden_dims, 1], None)
        self.std = nn.Parameter(torch.ones(arch.num_actions))


class Estimator(nn.Module):
    """Predicts priv_explicit (base velocity etc.) from proprio; keys ``estimator.{0,2,4}``."""

    def __init__(self, arch: PolicyArchitecture) -> None:
        super().__init__()
        self.estimator = _mlp([arch.num_prop, *arch.estimator_hidden_dims, arch.num_priv_explicit],
                              None)

    def forward(self, proprio: torch.Tensor) -> torch.Tensor:
        return self.estimator(proprio)


class DepthBackbone58x87(nn.Module):
    """Depth image → 32-d latent (upstream ``DepthOnlyFCBackbone58x87``, ELU output)."""

    def __init__(self, arch: PolicyArchitecture) -> None:
        super().__init__()
        act = nn.ELU()
        self.image_compression = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=5),
            nn.MaxPool2d(kernel_size=2, stride=2),
            act,
            nn.Conv2d(32, 64, kernel_size=3),
            act,
            nn.Flatten(),
            nn.Linear(arch.depth_conv_flat_dim, arch.depth_image_latent_dim),
            act,
            nn.Linear(arch.depth_image_latent_dim, arch.depth_latent_dim),
        )
        self.output_activation = act

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` [B, H, W] → [B, 32]."""
        return self.output_activation(self.image_compression(images.unsqueeze(1)))


class RecurrentDepthEncoder(nn.Module):
    """Depth backbone, proprio combination, GRU, output head (upstream ``RecurrentDepthBackbone``).

    The GRU's hidden state is explicit: :meth:`forward` takes and returns it, so the exported
    graph carries it as an input and an output.
    """

    def __init__(self, arch: PolicyArchitecture) -> None:
        super().__init__()
        act = nn.ELU()
        self.arch = arch
        self.base_backbone = DepthBackbone58x87(arch)
        self.combination_mlp = nn.Sequential(
            nn.Linear(arch.depth_latent_dim + arch.num_prop, arch.depth_combination_hidden_dim),
            act,
            nn.Linear(arch.depth_combination_hidden_dim, arch.depth_latent_dim),
        )
        self.rnn = nn.GRU(input_size=arch.depth_latent_dim, hidden_size=arch.depth_hidden_dim,
                          batch_first=True)
        self.output_mlp = nn.Sequential(nn.Linear(arch.depth_hidden_dim, arch.depth_output_dim),
                                        nn.Tanh())

    def forward(self, depth: torch.Tensor, proprio: torch.Tensor,
                hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step with ``nn.GRU`` (the reference the deploy graph is checked against).

        Args:
            depth: [B, 58, 87] preprocessed depth.
            proprio: [B, P] proprio with the yaw terms [6:8] zeroed.
            hidden: [1, B, 512] GRU state.

        Returns:
            (latent_yaw [B, 34], hidden [1, B, 512]).
        """
        image_latent = self.base_backbone(depth)
        latent = self.combination_mlp(torch.cat([image_latent, proprio], dim=-1))
        out, hidden = self.rnn(latent[:, None, :], hidden)
        return self.output_mlp(out[:, 0]), hidden
