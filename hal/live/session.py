"""``--live [HOST:]PORT`` for the appliance: the flag in, the server and publisher up, a report out.

:func:`add_live_arguments` adds the flags; :meth:`LiveSession.from_args` validates them before
any device connects; :meth:`LiveSession.attach` (an ``on_started``-style hook) starts
foxglove-sdk's WebSocket server on a context of its own — read-only, loopback unless a host is
named — and hangs the publisher's listeners on the server and the inference client;
:meth:`LiveSession.close` stops both after the loop ended.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any, Callable

from hal.live.publisher import LiveConfig, LivePublisher, PolicyView
from hal.live.sdk import foxglove_sdk, parse_live_address, start_live_server

__all__ = ["add_live_arguments", "LiveSession", "policy_view_for"]

log = logging.getLogger(__name__)


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("live view (Foxglove)")
    group.add_argument("--live", metavar="[HOST:]PORT",
                       help="stream the run to Foxglove over foxglove-sdk's WebSocket server "
                            "(read-only; loopback unless HOST is named — it is NOT "
                            "authenticated: reach a robot through ssh -L 8765:127.0.0.1:8765). "
                            "Open ws://127.0.0.1:PORT in Foxglove with docs/foxglove-layout.json")
    group.add_argument("--live-depth-hz", dest="live_depth_hz", type=float, default=10.0,
                       help="live rate of the policy's depth image and the camera's (default 10; "
                            "the camera's is half of it)")


def policy_view_for(robot: Any, is_student: bool) -> PolicyView:
    """Where the scan and the heading sit in the parkour observation (the training layout)."""
    from compute.parkour.layout import (SCAN_HEIGHT_OFFSET_M, YAW_SCALE, ObservationLayout,
                                        scan_points_xy)

    lay = ObservationLayout.from_robot(robot)
    return PolicyView(scan=lay.scan if lay.scan_dim else None, scan_points_xy=scan_points_xy(),
                      scan_offset_m=SCAN_HEIGHT_OFFSET_M, yaw=tuple(lay.yaw),
                      yaw_scale=YAW_SCALE if is_student else 1.0)


class LiveSession:
    """The live view of one appliance run.

    Args:
        host: Address to bind (loopback by default; another one logs a warning).
        port: Port (0: any free one; see :attr:`port` once started).
        config: Rates and bounds.
    """

    def __init__(self, host: str, port: int, config: LiveConfig | None = None) -> None:
        self.host, self.requested_port = host, port
        self.config = config or LiveConfig()
        self.server: Any = None
        self.context: Any = None
        self.publisher: LivePublisher | None = None
        self._detach: list[Callable[[], None]] = []
        self.port: int | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "LiveSession | None":
        """The session ``--live`` asks for, or None when it is off.

        Raises:
            ValueError: a bad address or rate (the message names it and the valid ones).
        """
        address = getattr(args, "live", None)
        if address is None:
            return None
        host, port = parse_live_address(address)
        depth_hz = float(getattr(args, "live_depth_hz", 10.0))
        if not 0 < depth_hz <= 30:
            raise ValueError(f"--live-depth-hz {depth_hz}: use a rate in (0, 30] Hz")
        foxglove_sdk()  # a missing SDK fails here, before any device connects
        return cls(host, port, LiveConfig(depth_rate_hz=depth_hz, camera_rate_hz=depth_hz / 2))

    def attach(self, server: Any, client: Any = None, scene: Any = None) -> None:
        """Start the WebSocket server and the publisher; hang the listeners.

        Args:
            server: The started :class:`~hal.server.base.HalServer`.
            client: The in-process inference client, or None.
            scene: The simulator's :class:`~hal.sim.foxglove_scene.SimScene`, or None.
        Raises:
            OSError: the address cannot be bound.
        """
        foxglove = foxglove_sdk()
        # Held for the run: the SDK closes a context's channels when the context is dropped.
        self.context = context = foxglove.Context()
        view = policy_view_for(client.robot, client.is_student) if client is not None else None
        command = (lambda: client.command) if client is not None else None
        self.publisher = publisher = LivePublisher(
            context, list(server.robot.joint_names_hardware), self.config, safety=server.safety,
            policy_view=view, scene=scene, command_source=command)
        self.server = start_live_server(self.host, self.requested_port, context)
        self.port = self.server.port
        server.tick_listeners.append(publisher.on_tick)
        self._detach.append(lambda: server.tick_listeners.remove(publisher.on_tick))
        if client is not None:
            client.actor_listeners.append(publisher.on_actor)
            client.depth_listeners.append(publisher.on_depth)
            self._detach.append(lambda: client.actor_listeners.remove(publisher.on_actor))
            self._detach.append(lambda: client.depth_listeners.remove(publisher.on_depth))
        publisher.start()
        log.info("live view: ws://%s:%d (Foxglove: open a connection to it; layout "
                 "docs/foxglove-layout.json)", self.host, self.port)

    def attach_operator(self, hub: Any) -> None:
        """Stream the operator hub's events (``/operator/event``)."""
        if self.publisher is not None:
            hub.change_listeners.append(self.publisher.on_operator_event)

    def close(self) -> None:
        """Detach, stop the publisher and the server (after the loop and the client stopped)."""
        for detach in self._detach:
            try:
                detach()
            except ValueError:
                pass
        self._detach.clear()
        if self.publisher is not None:
            self.publisher.close()
        if self.server is not None:
            self.server.stop()
            self.server = None

    def report(self) -> dict[str, Any]:
        """The run report's ``live`` section: address, messages sent and dropped per stream."""
        out: dict[str, Any] = {"host": self.host, "port": self.port}
        if self.publisher is not None:
            out.update(self.publisher.report())
        return out
