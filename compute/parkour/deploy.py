"""The deploy computation: exactly the two graphs that are exported to ONNX
(docs/architecture.md#the-policy-graphs-and-the-manifest).

- :class:`ActorStep` (depth student):
  ``forward(obs [1,753], depth_latent [1,32]) -> actions [1,12]``.
  The estimator's output replaces obs[185:194], then the actor runs with history encoding and
  the depth latent in place of the scan encoder's output.
- :class:`TeacherActorStep` (scan teacher): ``forward(obs [1,753]) -> actions [1,12]``; the scan
  encoder runs on obs[53:185].
- :class:`DepthStep`: ``forward(depth [1,58,87], proprio [1,53], hidden_in [1,1,512])
  -> (latent_yaw [1,34], hidden_out [1,1,512])``. The caller zeroes proprio[6:8].

Sizes are those of a 12-joint robot; all of them follow the robot definition. The modules avoid
in-place writes to their inputs and data-dependent control flow so ``torch.onnx.export`` traces
them to a static graph.
"""

from __future__ import annotations

from hal.optional import require

from compute.parkour.networks import Actor, Estimator, PolicyArchitecture, RecurrentDepthEncoder

torch = require("torch", "the parkour deploy graphs")
nn = torch.nn

__all__ = ["ActorStep", "TeacherActorStep", "DepthStep"]


class _EstimatedActor(nn.Module):
    """Shared part of both actor steps: estimator output spliced into the observation."""

    def __init__(self, actor: Actor, estimator: Estimator) -> None:
        super().__init__()
        self.arch: PolicyArchitecture = actor.arch
        self.actor = actor
        self.estimator = estimator

    def _with_estimate(self, obs: torch.Tensor) -> torch.Tensor:
        a = self.arch
        start = a.num_prop + a.num_scan
        stop = start + a.num_priv_explicit
        priv_explicit = self.estimator(obs[:, : a.num_prop])
        # A new tensor instead of an in-place write: the exported graph must not alias its input.
        return torch.cat([obs[:, :start], priv_explicit, obs[:, stop:]], dim=1)


class ActorStep(_EstimatedActor):
    """Student actor step: observation + depth latent → raw actions (before clip and scale)."""

    def forward(self, obs: torch.Tensor, depth_latent: torch.Tensor) -> torch.Tensor:
        """Args: obs [1, obs_dim] float32, depth_latent [1, 32]. Returns actions [1, n_joints]."""
        return self.actor(self._with_estimate(obs), scan_latent=depth_latent)


class TeacherActorStep(_EstimatedActor):
    """Teacher actor step: the scan encoder runs on the observation's scan block."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Args: obs [1, obs_dim] float32. Returns actions [1, n_joints]."""
        return self.actor(self._with_estimate(obs), scan_latent=None)


class DepthStep(nn.Module):
    """One depth-encoder update with the GRU state as explicit input and output.

    The single GRU step is written out with matrix products (same parameters, same equations as
    ``nn.GRU``): it exports to plain MatMul/Sigmoid/Tanh nodes rather than the ONNX ``GRU`` op,
    which TensorRT turns into a loop construct and which ties all gates to one precision.
    """

    def __init__(self, encoder: RecurrentDepthEncoder) -> None:
        super().__init__()
        self.arch: PolicyArchitecture = encoder.arch
        self.encoder = encoder

    def forward(self, depth: torch.Tensor, proprio: torch.Tensor,
                hidden_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: depth [1,58,87], proprio [1,P] (yaw terms zeroed), hidden_in [1,1,512].

        Returns:
            latent_yaw [1, 34] (latent = [:32], yaw = [32:34]) and hidden_out [1, 1, 512].
        """
        enc = self.encoder
        image_latent = enc.base_backbone(depth)
        x = enc.combination_mlp(torch.cat([image_latent, proprio], dim=-1))
        h = hidden_in.squeeze(0)
        rnn = enc.rnn
        gi = torch.nn.functional.linear(x, rnn.weight_ih_l0, rnn.bias_ih_l0)
        gh = torch.nn.functional.linear(h, rnn.weight_hh_l0, rnn.bias_hh_l0)
        # Slices with constant bounds (not chunk()): the exported graph then has no shape ops.
        n = self.arch.depth_hidden_dim
        i_r, i_z, i_n = gi[:, :n], gi[:, n: 2 * n], gi[:, 2 * n:]
        h_r, h_z, h_n = gh[:, :n], gh[:, n: 2 * n], gh[:, 2 * n:]
        reset = torch.sigmoid(i_r + h_r)
        update = torch.sigmoid(i_z + h_z)
        candidate = torch.tanh(i_n + reset * h_n)
        h_new = candidate + update * (h - candidate)
        return enc.output_mlp(h_new), h_new.unsqueeze(0)
